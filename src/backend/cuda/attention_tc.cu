/* attention_tc: tensor-core flash attention (FlashAttention-2 style) for the prefill rows of
 * the language model's paged causal attention: BF16 mma.sync (m16n8k16) with FP32
 * accumulation and an online softmax, planned by cuda_attn_tc.c.
 *
 * One thread block = (tile, query head). A tile is up to 16 * NW consecutive new rows of one
 * sequence (NW = 4 or 8 warps); warp w owns tile rows 16w .. 16w+15 and keeps, in registers,
 * its Q fragment (BF16), its FP32 output accumulator (16 x head_dim) and the softmax state
 * (running max m, partial row sum l) of its rows. The block walks the keys 0 .. pos0+n_rows-1
 * in tiles of TC_BN = 64: K and V tiles come from the paged cache with 16-byte cp.async into
 * padded shared-memory rows (row = head_dim + 8 elements, so the 8 row addresses of an
 * ldmatrix fall in distinct banks), and each warp computes
 *   S = Q K^T (ldmatrix of K rows = the col-major B operand),
 *   online softmax in the log2 domain (scale * log2 e folded in, ex2.approx),
 *   O = O * alpha + P V (P re-packed to BF16 straight from the S accumulators as the A
 *   operand; ldmatrix.trans of V rows = the col-major B operand).
 * Pipeline: two stages of (K tile, V tile); tile t+1 loads into the other stage while tile t
 * is computed, one __syncthreads per key tile orders the stage reuse (a whole tile's mma
 * work hides the L2 latency of the next one).
 * Causality: tile row r sits at position pos0 + r and sees keys 0 .. pos0 + r; the mask runs
 * only where a key tile reaches past the warp's first row, and a warp skips the mma work of
 * key tiles that lie wholly past its last row (it still joins every barrier and copy).
 * Key j of sequence s lives in cache row block_tables[s][j / bs] * bs + j % bs.
 * Numerics: Q rounded to BF16 (round to nearest even, as kern_common.cuh), K/V BF16 already,
 * S accumulated in FP32, P rounded to BF16 for the P V mma, FP32 accumulators and row sums,
 * one FP32 division by the row sum at the end, o rounded once if BF16.
 *
 * Invariants:
 *   1. every (new row, q head) of the planned tiles is written by exactly one thread of one
 *      block; padding rows (r >= n_rows) run with Q = 0 and are never stored;
 *   2. a block reads cache rows only at keys < pos0 + n_rows of its own sequence's block
 *      table; tile rows past that are zero-filled, so masked scores and V rows stay finite;
 *   3. the first key tile (keys 0..63) holds key 0, visible to every row, so after it every
 *      row's running max is finite: later fully masked rows get alpha = 1 and p = 0, and
 *      exp2(-inf - -inf) never runs;
 *   4. a cp.async target is written only after a barrier that follows every warp's last read
 *      of that stage, and read only after cp.async.wait_group plus a barrier.
 * The PTX sits in small helpers (tc_*); bench/kernels/emu/emu_mma.h defines the same helpers
 * with the same per-lane fragment semantics for the CPU emulator (EMU_MMA_H).
 * Owner thread of the stream. */
#include "backend/cuda/kern_common.cuh"
#include "backend/cuda/kernels_tc.h"

#define TC_BN KTC_BLOCK_N

/* ---- PTX helpers (sm_80+) ---- */
#ifndef EMU_MMA_H
static __device__ __forceinline__ uint32_t tc_smem_addr(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* d += a * b for one m16n8k16 tile: a = 4 registers of the row-major 16x16 BF16 A fragment,
 * b0 b1 = the col-major 16x8 BF16 B fragment, d = the 16x8 FP32 C/D fragment. */
static __device__ __forceinline__ void tc_mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                              uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Four 8x8 BF16 matrices from shared memory; lane l gives the address of row l % 8 of matrix
 * l / 8 and receives, in r[j], row l / 4 elements 2(l % 4), 2(l % 4) + 1 of matrix j. */
static __device__ __forceinline__ void tc_ldsm_x4(uint32_t (&r)[4], const uint16_t *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(tc_smem_addr(row)));
}

/* The same, transposed: r[j] holds column l / 4, rows 2(l % 4) and 2(l % 4) + 1 of matrix j. */
static __device__ __forceinline__ void tc_ldsm_x4_trans(uint32_t (&r)[4], const uint16_t *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(tc_smem_addr(row)));
}

/* Asynchronous 16-byte copy global -> shared; valid = false writes 16 zero bytes instead
 * (src is not read then, but must still be a mapped address). */
static __device__ __forceinline__ void tc_cp16(uint16_t *dst, const uint16_t *src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(tc_smem_addr(dst)),
                 "l"(src), "r"(valid ? 16 : 0)
                 : "memory");
}

static __device__ __forceinline__ void tc_cp_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

/* Waits until at most N of this thread's committed copy groups are still in flight. */
template <int N> static __device__ __forceinline__ void tc_cp_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

/* 2^x by the special-function unit (relative error about 2^-22; -inf gives 0). */
static __device__ __forceinline__ float tc_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

/* Two FP32 values rounded to nearest even as a BF16 pair: lo in bits 0..15, hi in 16..31. */
static __device__ __forceinline__ uint32_t tc_pack_bf16(float lo, float hi) {
    uint32_t r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}
#endif

/* ---- the kernel's steps ---- */

/* Cache row of key `key` through the sequence's block table bt. */
static __device__ __forceinline__ int64_t tc_cache_row(const struct ktc_params &p,
                                                       const int32_t *bt, int32_t key) {
    if (p.bs_shift >= 0)
        return ((int64_t)bt[key >> p.bs_shift] << p.bs_shift) + (key & (p.block_size - 1));
    return (int64_t)bt[key / p.block_size] * p.block_size + key % p.block_size;
}

/* Queues the copy of keys key0 .. key0+TC_BN-1 of one kv head (columns col0 .. col0+HD-1 of
 * the K or V cache) into a padded tile; keys >= n_keys are zero-filled (invariant 2). */
template <int HD, int NT>
static __device__ __forceinline__ void
tc_load_tile(uint16_t *dst, const struct kmat &src, int64_t col0, const struct ktc_params &p,
             const int32_t *bt, int32_t key0, int32_t n_keys) {
    constexpr int CH = HD / 8; /* 16-byte chunks per row */
    static_assert(TC_BN * CH % NT == 0, "every thread copies the same number of chunks");
    const uint16_t *base = (const uint16_t *)src.p + col0;
#pragma unroll
    for (int it = 0; it < TC_BN * CH / NT; it++) {
        int i = (int)threadIdx.x + it * NT, j = i / CH, c = i % CH;
        int32_t key = key0 + j;
        bool valid = key < n_keys;
        const uint16_t *g = base;
        if (valid) g = base + tc_cache_row(p, bt, key) * src.stride + c * 8;
        tc_cp16(dst + j * (HD + 8) + c * 8, g, valid);
    }
}

/* This lane's A fragments of Q (tile rows r_lo and r_lo + 8), rounded to BF16; rows past the
 * tile are zero. Register i of step kk holds row r_lo + 8 (i & 1), columns
 * 16 kk + 8 (i >> 1) + 2 tq and the next one. */
template <int HD>
static __device__ __forceinline__ void
tc_load_q(uint32_t (&qf)[HD / 16][4], const struct ktc_params &p, const struct ktc_tile &t,
          int32_t h, int32_t r_lo, int tq) {
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int32_t r = r_lo + (i & 1) * 8;
            int64_t col = (int64_t)h * HD + kk * 16 + (i >> 1) * 8 + 2 * tq;
            float x0 = 0.0f, x1 = 0.0f;
            if (r < t.n_rows) {
                x0 = k_ld(p.q, (int64_t)t.row0 + r, col);
                x1 = k_ld(p.q, (int64_t)t.row0 + r, col + 1);
            }
            qf[kk][i] = (uint32_t)k_f32_to_bf16(x0) | (uint32_t)k_f32_to_bf16(x1) << 16;
        }
    }
}

/* s = Q K^T for the warp's 16 rows and the TC_BN keys of sK: s[n] is the 16x8 C fragment of
 * keys 8n .. 8n+7. One ldmatrix.x4 gives the B fragments of two key groups: matrices
 * (keys +0..7, dims +0..7), (keys +0..7, dims +8..15), (keys +8..15, dims +0..7),
 * (keys +8..15, dims +8..15). */
template <int HD>
static __device__ __forceinline__ void tc_scores(float (&s)[TC_BN / 8][4],
                                                 const uint32_t (&qf)[HD / 16][4],
                                                 const uint16_t *sK, int lane) {
#pragma unroll
    for (int n = 0; n < TC_BN / 8; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
    const uint16_t *rows = sK + ((lane >> 4) * 8 + (lane & 7)) * (HD + 8) + ((lane >> 3) & 1) * 8;
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) {
#pragma unroll
        for (int np = 0; np < TC_BN / 16; np++) {
            uint32_t b[4];
            tc_ldsm_x4(b, rows + np * 16 * (HD + 8) + kk * 16);
            tc_mma(s[2 * np], qf[kk], b[0], b[1]);
            tc_mma(s[2 * np + 1], qf[kk], b[2], b[3]);
        }
    }
}

/* Causal mask: key key0 + 8n + 2tq + j is hidden from the lane's row at position pos_lo + 8i
 * when it lies past that position. */
static __device__ __forceinline__ void tc_mask(float (&s)[TC_BN / 8][4], int32_t key0,
                                               int32_t pos_lo, int tq) {
#pragma unroll
    for (int n = 0; n < TC_BN / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int32_t key = key0 + n * 8 + 2 * tq + (e & 1);
            if (key > pos_lo + (e >> 1) * 8) s[n][e] = -INFINITY;
        }
}

/* Online softmax of one key tile: raises the running max m (log2 domain, scale folded in),
 * rescales the accumulator and partial row sum by alpha = 2^(m_old - m_new) and turns s into
 * p = 2^(s * c - m_new). Each of the 4 lanes of a row holds a partial sum over its columns;
 * the max is shared across them so the partial sums scale alike (summed at the end). */
template <int HD>
static __device__ __forceinline__ void tc_softmax(float (&s)[TC_BN / 8][4], float (&m)[2],
                                                  float (&l)[2], float (&acc)[HD / 8][4], float c) {
#pragma unroll
    for (int i = 0; i < 2; i++) {
        float mx = -INFINITY;
#pragma unroll
        for (int n = 0; n < TC_BN / 8; n++) mx = fmaxf(mx, fmaxf(s[n][2 * i], s[n][2 * i + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m[i], mx * c); /* finite from the first tile on (inv. 3) */
        const float alpha = tc_exp2(m[i] - m_new);
        m[i] = m_new;
        float sum = 0.0f;
#pragma unroll
        for (int n = 0; n < TC_BN / 8; n++)
#pragma unroll
            for (int j = 0; j < 2; j++) {
                float pj = tc_exp2(fmaf(s[n][2 * i + j], c, -m_new));
                s[n][2 * i + j] = pj;
                sum += pj;
            }
        l[i] = l[i] * alpha + sum;
#pragma unroll
        for (int d = 0; d < HD / 8; d++) acc[d][2 * i] *= alpha, acc[d][2 * i + 1] *= alpha;
    }
}

/* acc += P V: P (the warp's 16 rows x TC_BN keys, from the S fragments) as BF16 A fragments;
 * one ldmatrix.x4.trans gives the B fragments of two 8-column groups of V: matrices
 * (keys +0..7, dims +0..7), (keys +8..15, dims +0..7), (keys +0..7, dims +8..15),
 * (keys +8..15, dims +8..15). */
template <int HD>
static __device__ __forceinline__ void
tc_pv(float (&acc)[HD / 8][4], const float (&s)[TC_BN / 8][4], const uint16_t *sV, int lane) {
    const uint16_t *rows = sV + (((lane >> 3) & 1) * 8 + (lane & 7)) * (HD + 8) + (lane >> 4) * 8;
#pragma unroll
    for (int kk = 0; kk < TC_BN / 16; kk++) {
        const uint32_t a[4] = {tc_pack_bf16(s[2 * kk][0], s[2 * kk][1]),
                               tc_pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                               tc_pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                               tc_pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
        for (int dp = 0; dp < HD / 16; dp++) {
            uint32_t b[4];
            tc_ldsm_x4_trans(b, rows + kk * 16 * (HD + 8) + dp * 16);
            tc_mma(acc[2 * dp], a, b[0], b[1]);
            tc_mma(acc[2 * dp + 1], a, b[2], b[3]);
        }
    }
}

/* o = acc / (row sum) for the lane's rows that lie in the tile. */
template <int HD>
static __device__ __forceinline__ void
tc_store_o(const struct ktc_params &p, const struct ktc_tile &t, int32_t h, int32_t r_lo, int tq,
           const float (&acc)[HD / 8][4], const float (&l)[2]) {
#pragma unroll
    for (int i = 0; i < 2; i++) {
        float sum = l[i];
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        const float inv = 1.0f / sum;
        const int32_t r = r_lo + 8 * i;
        if (r >= t.n_rows) continue;
        const int64_t row = (int64_t)t.row0 + r;
#pragma unroll
        for (int d = 0; d < HD / 8; d++) {
            int64_t col = (int64_t)h * HD + d * 8 + 2 * tq;
            k_st(p.o, row, col, acc[d][2 * i] * inv);
            k_st(p.o, row, col + 1, acc[d][2 * i + 1] * inv);
        }
    }
}

template <int HD, int NW>
static __global__ void __launch_bounds__(NW * 32) tc_attn_kernel(const struct ktc_params p) {
    constexpr int NT = NW * 32, TILE = TC_BN * (HD + 8);
    extern __shared__ float sm[];
    uint16_t *sKV = (uint16_t *)sm; /* stage b: K at sKV + 2b TILE, V at sKV + (2b+1) TILE */
    const struct ktc_tile t = p.tiles[blockIdx.x / p.n_q_heads];
    const int32_t h = (int32_t)(blockIdx.x % p.n_q_heads);
    const int64_t kv_col = (int64_t)(h / p.group) * HD;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, tq = lane % 4;
    const int32_t r_lo = warp * 16 + lane / 4; /* the lane's tile rows: r_lo, r_lo + 8 */
    const int32_t n_keys = t.pos0 + t.n_rows, n_kt = (n_keys + TC_BN - 1) / TC_BN;
    const int32_t *bt = p.block_tables + (int64_t)t.seq * p.max_blocks;
    const int32_t warp_pos0 = t.pos0 + warp * 16; /* position of the warp's first row */

    tc_load_tile<HD, NT>(sKV, p.k, kv_col, p, bt, 0, n_keys);
    tc_load_tile<HD, NT>(sKV + TILE, p.v, kv_col, p, bt, 0, n_keys);
    tc_cp_commit();
    uint32_t qf[HD / 16][4];
    tc_load_q<HD>(qf, p, t, h, r_lo, tq);
    float acc[HD / 8][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
#pragma unroll
    for (int d = 0; d < HD / 8; d++) acc[d][0] = acc[d][1] = acc[d][2] = acc[d][3] = 0.0f;

    for (int32_t kt = 0; kt < n_kt; kt++) {
        const int32_t key0 = kt * TC_BN;
        const uint16_t *sK = sKV + (kt & 1) * 2 * TILE, *sV = sK + TILE;
        tc_cp_wait<0>();
        /* tile kt landed for every thread; every warp is done with tile kt-1, whose stage the
         * prefetch below refills */
        __syncthreads();
        if (kt + 1 < n_kt) {
            uint16_t *next = sKV + ((kt + 1) & 1) * 2 * TILE;
            tc_load_tile<HD, NT>(next, p.k, kv_col, p, bt, key0 + TC_BN, n_keys);
            tc_load_tile<HD, NT>(next + TILE, p.v, kv_col, p, bt, key0 + TC_BN, n_keys);
            tc_cp_commit();
        }
        /* live: some key of the tile is visible to one of the warp's rows (warp-uniform) */
        if (key0 <= warp_pos0 + 15) {
            float s[TC_BN / 8][4];
            tc_scores<HD>(s, qf, sK, lane);
            if (key0 + TC_BN - 1 > warp_pos0) tc_mask(s, key0, t.pos0 + r_lo, tq);
            tc_softmax<HD>(s, m, l, acc, p.scale_log2);
            tc_pv<HD>(acc, s, sV, lane);
        }
    }
    tc_cp_wait<0>();
    tc_store_o<HD>(p, t, h, r_lo, tq, acc, l);
}

extern "C" size_t kl_attn_tc_smem(int32_t head_dim) {
    return (size_t)4 * TC_BN * (size_t)(head_dim + 8) * sizeof(uint16_t);
}

/* The kernel for (head_dim, warps), launched through a plain-named pointer: the emulator's
 * rewrite of launches (bench/kernels/emu/run.sh) matches a bare identifier before the
 * launch brackets. */
template <int HD, int NW> static cudaError_t tc_launch(cudaStream_t s, const struct ktc_params *p) {
    void (*kern)(const struct ktc_params) = tc_attn_kernel<HD, NW>;
    size_t smem = kl_attn_tc_smem(HD);
    cudaError_t rc = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          (int)smem); /* above the default 48 KiB at HD 128 */
    if (rc != cudaSuccess) return rc;
    dim3 grid((unsigned)p->n_tiles * (unsigned)p->n_q_heads);
    kern<<<grid, NW * 32, smem, s>>>(*p);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_attn_tc(cudaStream_t s, const struct ktc_params *p) {
    bool wide = p->rows_per_tile == 128;
    if (p->head_dim == 128) return wide ? tc_launch<128, 8>(s, p) : tc_launch<128, 4>(s, p);
    if (p->head_dim == 64) return wide ? tc_launch<64, 8>(s, p) : tc_launch<64, 4>(s, p);
    return cudaErrorInvalidValue;
}
