/* norm: RMSNorm (and the vision tower's LayerNorm) on the CUDA backend, one thread block per
 * row.
 * Matches backend/cpu/norm.c: the sum of squares in double (so the result does not hinge on
 * summation order), inv = 1 / sqrtf(mean + eps) in FP32, y = x * inv, rounded to BF16 before
 * the gain when y is BF16 (the reference's cast order), then times the gain.
 * Invariant: a row's sum is complete (a block barrier) before any of it is written, and each
 * element is rewritten by the thread that read it, so y may alias x. Owner thread of the
 * stream. */
#include "backend/cuda/kern_common.cuh"

#define NORM_THREADS 256

/* Row r of y = x * inv * gain, inv from this thread's part ss of the row's sum of squares
 * (the block's threads together hold the whole row's). The block's barrier comes before any
 * write, so y may alias x. */
static __device__ void norm_finish(struct kmat y, struct kmat x, struct kmat gain, float eps,
                                   int64_t cols, int64_t r, double ss) {
    __shared__ double partial[NORM_THREADS / 32];
    __shared__ float inv_s;
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x / 32] = ss;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int w = 0; w < NORM_THREADS / 32; w++) t += partial[w];
        inv_s = 1.0f / sqrtf((float)(t / (double)cols) + eps);
    }
    __syncthreads();
    float inv = inv_s;
    bool round_first = y.dt == BE_BF16;
    for (int64_t c = threadIdx.x; c < cols; c += NORM_THREADS) {
        float v = __fmul_rn(k_ld(x, r, c), inv);
        if (round_first) v = k_round_bf16(v);
        k_st(y, r, c, __fmul_rn(v, k_ld(gain, 0, c)));
    }
}

static __global__ void rms_norm_kernel(struct kmat y, struct kmat x, struct kmat gain, float eps,
                                       int64_t cols) {
    int64_t r = blockIdx.x;
    double ss = 0.0;
    for (int64_t c = threadIdx.x; c < cols; c += NORM_THREADS) {
        float v = k_ld(x, r, c);
        ss += (double)v * (double)v;
    }
    norm_finish(y, x, gain, eps, cols, r, ss);
}

/* be_add_rms_norm: h += x as the add kernel does (one FP32 add, h's rounding), the sum of
 * squares over the stored values, then the norm of h into y. Each element of h is written and
 * read back by one thread; x is read before the barrier in norm_finish, so y may be x. */
static __global__ void add_rms_norm_kernel(struct kmat h, struct kmat y, struct kmat x,
                                           struct kmat gain, float eps, int64_t cols) {
    int64_t r = blockIdx.x;
    double ss = 0.0;
    for (int64_t c = threadIdx.x; c < cols; c += NORM_THREADS) {
        k_st(h, r, c, k_ld(h, r, c) + k_ld(x, r, c));
        float v = k_ld(h, r, c); /* as stored: rounded when h is BF16 */
        ss += (double)v * (double)v;
    }
    norm_finish(y, h, gain, eps, cols, r, ss);
}

/* LayerNorm (backend/cpu/layer_norm.c): double sums over a two-pass mean, (x - mean) · inv in
 * FP32, then · gain + bias without contraction; a BF16 y rounded once. */
static __global__ void layer_norm_kernel(struct kmat y, struct kmat x, struct kmat gain,
                                         struct kmat bias, float eps, int64_t cols) {
    __shared__ double partial[NORM_THREADS / 32];
    int64_t r = blockIdx.x;
    double s = 0.0;
    for (int64_t c = threadIdx.x; c < cols; c += NORM_THREADS) s += (double)k_ld(x, r, c);
    double mean = k_block_sum(s, partial) / (double)cols;
    double ss = 0.0;
    for (int64_t c = threadIdx.x; c < cols; c += NORM_THREADS) {
        double d = (double)k_ld(x, r, c) - mean;
        ss += d * d;
    }
    ss = k_block_sum(ss, partial);
    float m = (float)mean, inv = 1.0f / sqrtf((float)(ss / (double)cols) + eps);
    for (int64_t c = threadIdx.x; c < cols; c += NORM_THREADS) {
        float v = __fmul_rn(__fsub_rn(k_ld(x, r, c), m), inv);
        k_st(y, r, c, __fadd_rn(__fmul_rn(v, k_ld(gain, 0, c)), k_ld(bias, 0, c)));
    }
}

extern "C" cudaError_t kl_layer_norm(cudaStream_t s, struct kmat y, struct kmat x, struct kmat gain,
                                     struct kmat bias, float eps, int64_t rows, int64_t cols) {
    if (rows > 0x7fffffff) return cudaErrorInvalidValue;
    layer_norm_kernel<<<(unsigned)rows, NORM_THREADS, 0, s>>>(y, x, gain, bias, eps, cols);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_add_rms_norm(cudaStream_t s, struct kmat h, struct kmat y, struct kmat x,
                                       struct kmat gain, float eps, int64_t rows, int64_t cols) {
    if (rows > 0x7fffffff) return cudaErrorInvalidValue;
    add_rms_norm_kernel<<<(unsigned)rows, NORM_THREADS, 0, s>>>(h, y, x, gain, eps, cols);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_rms_norm(cudaStream_t s, struct kmat y, struct kmat x, struct kmat gain,
                                   float eps, int64_t rows, int64_t cols) {
    if (rows > 0x7fffffff) return cudaErrorInvalidValue;
    rms_norm_kernel<<<(unsigned)rows, NORM_THREADS, 0, s>>>(y, x, gain, eps, cols);
    return cudaGetLastError();
}
