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

/* The largest of v over the block, returned to every thread. */
static __device__ float block_max(float v, double *red) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x / 32] = v;
    __syncthreads();
    float t = -INFINITY;
    for (int w = 0; w < ARGMAX_THREADS / 32; w++) t = fmaxf(t, (float)red[w]);
    __syncthreads();
    return t;
}

/* A key that orders like the float (backend/cpu/sample.c's order_key). */
static __device__ __forceinline__ uint32_t order_key(float f) {
    uint32_t u = __float_as_uint(f);
    return u & 0x80000000u ? ~u : u | 0x80000000u;
}

/* Scaled logit c of row r, or NaN when it is not finite (never kept). */
static __device__ __forceinline__ float scaled(const struct kmat &lg, int64_t r, int64_t c,
                                               float inv_t) {
    float x = k_ld(lg, r, c);
    return x > -INFINITY ? x * inv_t : __uint_as_float(0x7fc00000u);
}

/* Over the row: the count (k > 0) or the softmax mass of the scaled logits with key >= t. */
static __device__ double at_least(const struct kmat &lg, int64_t r, int64_t cols, float inv_t,
                                  float zmax, uint32_t t, bool count, double *red) {
    double s = 0.0;
    for (int64_t c = threadIdx.x; c < cols; c += ARGMAX_THREADS) {
        float z = scaled(lg, r, c, inv_t);
        if (z == z && order_key(z) >= t) s += count ? 1.0 : exp((double)(z - zmax));
    }
    return k_block_sum(s, red);
}

/* backend.h's threshold search: the largest key t >= lo with at_least(t) >= target. */
static __device__ uint32_t search(const struct kmat &lg, int64_t r, int64_t cols, float inv_t,
                                  float zmax, uint32_t lo, bool count, double target, double *red) {
    uint32_t res = 0;
    for (int bit = 31; bit >= 0; bit--) {
        uint32_t cand = res | 1u << bit, t = cand > lo ? cand : lo;
        if (at_least(lg, r, cols, inv_t, zmax, t, count, red) >= target) res = cand;
    }
    return res > lo ? res : lo;
}

static __global__ void sample_kernel(int32_t *ids, struct kmat logits, int64_t cols,
                                     const struct ksample_row *rows) {
    __shared__ double red[ARGMAX_THREADS / 32];
    int64_t r = blockIdx.x;
    struct ksample_row p = rows[r];
    bool greedy = p.temperature < 1e-5f;
    float inv_t = greedy ? 1.0f : 1.0f / p.temperature;
    uint32_t lo = 0;
    float zmin = -INFINITY;
    bool top_p = p.top_p > 0.0f && p.top_p < 1.0f;
    if (!greedy && (p.top_k > 0 || top_p || p.min_p > 0.0f)) { /* the filters */
        float zmax = -INFINITY;
        double n = 0.0;
        for (int64_t c = threadIdx.x; c < cols; c += ARGMAX_THREADS) {
            float z = scaled(logits, r, c, inv_t);
            if (z == z) zmax = fmaxf(zmax, z), n += 1.0;
        }
        zmax = block_max(zmax, red);
        n = k_block_sum(n, red);
        if (p.top_k > 0 && (double)p.top_k < n)
            lo = search(logits, r, cols, inv_t, zmax, 0, true, (double)p.top_k, red);
        if (top_p) {
            double mass = at_least(logits, r, cols, inv_t, zmax, lo, false, red);
            lo = search(logits, r, cols, inv_t, zmax, lo, false, (double)p.top_p * mass, red);
        }
        if (p.min_p > 0.0f) zmin = zmax + logf(p.min_p);
    }
    float bv = -INFINITY;
    int32_t bi = -1;
    for (int64_t c = threadIdx.x; c < cols; c += ARGMAX_THREADS) {
        float z = scaled(logits, r, c, inv_t);
        if (!(z == z) || order_key(z) < lo || z < zmin) continue; /* -inf, NaN, filtered */
        float v = greedy ? z : z + gumbel_dev(p.key, c);
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
