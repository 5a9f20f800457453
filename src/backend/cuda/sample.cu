/* sample: greedy sampling on the CUDA backend: one thread block per logits row finds the
 * lowest index of the largest value (torch.argmax's tie rule, as engine/sampler.c's
 * argmax_row: NaN and -inf never win; -1 when nothing beats -inf), so only ids cross to the
 * host. Owner thread of the stream. */
#include "backend/cuda/kern_common.cuh"

#define ARGMAX_THREADS 256

/* (v, i) wins over (bv, bi): a real index beats none, a larger value wins, ties go low. */
static __device__ __forceinline__ bool better(float v, int32_t i, float bv, int32_t bi) {
    if (i < 0) return false;
    if (bi < 0) return true;
    return v > bv || (v == bv && i < bi);
}

/* The block's winner of every thread's (bv, bi) by better(); thread 0 stores its index. */
static __device__ void block_best(float bv, int32_t bi, int32_t *out) {
    __shared__ float sv[ARGMAX_THREADS / 32];
    __shared__ int32_t si[ARGMAX_THREADS / 32];
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        int32_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (better(ov, oi, bv, bi)) bv = ov, bi = oi;
    }
    if ((threadIdx.x & 31) == 0) sv[threadIdx.x / 32] = bv, si[threadIdx.x / 32] = bi;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < ARGMAX_THREADS / 32; w++)
            if (better(sv[w], si[w], bv, bi)) bv = sv[w], bi = si[w];
        *out = bi;
    }
}

static __global__ void argmax_kernel(int32_t *ids, struct kmat logits, int64_t cols) {
    int64_t r = blockIdx.x;
    float bv = -INFINITY;
    int32_t bi = -1;
    for (int64_t c = threadIdx.x; c < cols; c += ARGMAX_THREADS) {
        float v = k_ld(logits, r, c);
        if (v > bv) bv = v, bi = (int32_t)c; /* strictly: -inf and NaN never taken */
    }
    block_best(bv, bi, &ids[r]);
}

extern "C" cudaError_t kl_argmax(cudaStream_t s, int32_t *ids, struct kmat logits, int64_t rows,
                                 int64_t cols) {
    if (rows > 0x7fffffff) return cudaErrorInvalidValue;
    argmax_kernel<<<(unsigned)rows, ARGMAX_THREADS, 0, s>>>(ids, logits, cols);
    return cudaGetLastError();
}

/* ---- be_sample: the Gumbel-max draw (backend.h), one block per row ---- */

/* util/rng.h's rng_at (splitmix64 at base + i * golden), written again for the device. */
static __device__ __forceinline__ uint64_t rng_at_dev(uint64_t base, uint64_t i) {
    uint64_t z = base + i * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* backend.h's standard Gumbel variable; logf (not __logf) to stay within an ulp or two of
 * the CPU's. */
static __device__ __forceinline__ float gumbel_dev(uint64_t key, int64_t i) {
    float u = ((float)(rng_at_dev(key, (uint64_t)i) >> 40) + 0.5f) * (1.0f / 16777216.0f);
    return -logf(-logf(u));
}

static __global__ void sample_kernel(int32_t *ids, struct kmat logits, int64_t cols,
                                     const struct ksample_row *rows) {
    int64_t r = blockIdx.x;
    struct ksample_row p = rows[r];
    bool greedy = p.temperature < 1e-5f;
    float inv_t = greedy ? 1.0f : 1.0f / p.temperature;
    float bv = -INFINITY;
    int32_t bi = -1;
    for (int64_t c = threadIdx.x; c < cols; c += ARGMAX_THREADS) {
        float x = k_ld(logits, r, c);
        if (!(x > -INFINITY)) continue; /* -inf and NaN never win */
        float v = greedy ? x : x * inv_t + gumbel_dev(p.key, c);
        if (bi < 0 || v > bv) bv = v, bi = (int32_t)c;
    }
    block_best(bv, bi, &ids[r]);
}

extern "C" cudaError_t kl_sample(cudaStream_t s, int32_t *ids, struct kmat logits, int64_t rows,
                                 int64_t cols, const struct ksample_row *params) {
    if (rows > 0x7fffffff) return cudaErrorInvalidValue;
    sample_kernel<<<(unsigned)rows, ARGMAX_THREADS, 0, s>>>(ids, logits, cols, params);
    return cudaGetLastError();
}
