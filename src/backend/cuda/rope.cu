/* rope: rotary embeddings on the CUDA backend, in place: the language model's M-RoPE (NeoX
 * rotate-half pairs (j, j + head_dim/2), frequency j driven by position row t, h or w by
 * section) and the vision tower's 2-D rotary (frequencies split between patch row and
 * column).
 * Numerics match backend/cpu/rope.c and rope2d.c: inv_freq comes from the host, computed by
 * the CPU backend's own functions (bit-identical); the angle is one FP32 product; cos/sin in
 * FP32 (CUDA's accurate cosf/sinf, no fast-math: within 2 ulp of glibc). M-RoPE on F32 rotates
 * with separately rounded products and sum (__fmul_rn/__fadd_rn keep nvcc from contracting
 * to FMA, as -std=c11 keeps gcc from it); on BF16 it rounds cos/sin, each product and the sum
 * to BF16 as the reference does. The 2-D rotary computes in FP32 and rounds once at the store.
 * Invariant: one thread owns one pair (row, head, j) and is the only one to read or write its
 * two elements. Owner thread of the stream. */
#include "backend/cuda/kern_common.cuh"

#define ROPE_THREADS 256

static __global__ void rope_kernel(struct kmat t, int64_t n, int64_t n_heads, int32_t head_dim,
                                   const int32_t *pos, const float *inv_freq, int32_t sec0,
                                   int32_t sec1) {
    int32_t half = head_dim / 2;
    int64_t total = n * n_heads * half;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int32_t j = (int32_t)(i % half);
        int64_t h = (i / half) % n_heads, r = i / ((int64_t)half * n_heads);
        int row = j < sec0 ? 0 : j < sec0 + sec1 ? 1 : 2;
        float th = __fmul_rn((float)pos[(int64_t)row * n + r], inv_freq[j]);
        float c = cosf(th), s = sinf(th);
        int64_t c0 = h * head_dim + j;
        float x0 = k_ld(t, r, c0), x1 = k_ld(t, r, c0 + half);
        if (t.dt == BE_F32) {
            k_st(t, r, c0, __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s)));
            k_st(t, r, c0 + half, __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s)));
        } else {
            float cj = k_round_bf16(c), sj = k_round_bf16(s);
            float a0 = k_round_bf16(__fmul_rn(x0, cj)), b0 = k_round_bf16(__fmul_rn(x1, sj));
            float a1 = k_round_bf16(__fmul_rn(x1, cj)), b1 = k_round_bf16(__fmul_rn(x0, sj));
            k_st(t, r, c0, __fsub_rn(a0, b0));
            k_st(t, r, c0 + half, __fadd_rn(a1, b1));
        }
    }
}

static __global__ void rope2d_kernel(struct kmat t, int64_t n, int64_t n_heads, int32_t head_dim,
                                     const int32_t *pos, const float *inv_freq) {
    int32_t half = head_dim / 2, nf = head_dim / 4;
    int64_t total = n * n_heads * half;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int32_t j = (int32_t)(i % half);
        int64_t h = (i / half) % n_heads, r = i / ((int64_t)half * n_heads);
        /* slots [0, nf) turn by the patch row, [nf, 2nf) by the patch column */
        float p = j < nf ? (float)pos[r] : (float)pos[n + r];
        float th = __fmul_rn(p, inv_freq[j < nf ? j : j - nf]);
        float c = cosf(th), s = sinf(th);
        int64_t c0 = h * head_dim + j;
        float x0 = k_ld(t, r, c0), x1 = k_ld(t, r, c0 + half);
        k_st(t, r, c0, __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s)));
        k_st(t, r, c0 + half, __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s)));
    }
}

extern "C" cudaError_t kl_rope(cudaStream_t s, struct kmat t, int64_t n, int64_t n_heads,
                               int32_t head_dim, const int32_t *pos, const float *inv_freq,
                               int32_t sec0, int32_t sec1) {
    int64_t total = n * n_heads * (head_dim / 2);
    rope_kernel<<<k_blocks(total, ROPE_THREADS), ROPE_THREADS, 0, s>>>(t, n, n_heads, head_dim, pos,
                                                                       inv_freq, sec0, sec1);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_rope2d(cudaStream_t s, struct kmat t, int64_t n, int64_t n_heads,
                                 int32_t head_dim, const int32_t *pos, const float *inv_freq) {
    int64_t total = n * n_heads * (head_dim / 2);
    rope2d_kernel<<<k_blocks(total, ROPE_THREADS), ROPE_THREADS, 0, s>>>(t, n, n_heads, head_dim,
                                                                         pos, inv_freq);
    return cudaGetLastError();
}
