/* matmul_avx512: AVX-512 BF16 kernel (vdpbf16ps). Activations arrive as BF16 rows padded
 * with zeros to a multiple of 32 (matmul.c converts them once per call); weights are read in
 * place. Each vdpbf16ps multiplies 32 BF16 pairs exactly and adds them into 16 FP32 lanes.
 *
 * Tiles of up to 4 rows (tokens) x 4 columns (outputs): 16 accumulators, each 32-wide weight
 * load is reused by 4 tokens and each activation load by 4 outputs. A tile keeps its four
 * weight rows (4 x k x 2 bytes) hot in L1/L2 while it walks every token of the chunk, so the
 * weights come from memory once per call. The k % 32 tail of a weight row is read with a
 * masked load (zeros beyond k), matching the zero padding of the activations.
 *
 * The first token tile of each column block prefetches the weight rows MM_PF_ROWS ahead into
 * L2, so a thread's memory stream overlaps its compute (about 1.5x at m = 1 and 8 in an
 * interleaved A/B, docs/BENCHMARKS.md). The L2 hint (prefetcht1) and a distance of 12 rows
 * measured about 10% faster at m = 1 than prefetcht0 at 16 rows: an L1 prefetch holds one of
 * the core's few L1 miss buffers until the line arrives, which caps the requests in flight. A full
 * 4x4 tile with F32 output reduces its 16 accumulators with one transposing shuffle tree (45
 * shuffles and adds instead of about 128 for 16 horizontal sums), which matters when k is short (28
 * dot-product steps at k = 896). Invariant: touches only columns [n0, n1) of y. Called on pool
 * threads. */
#include "backend/cpu/matmul.h"

#include <stdbool.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#ifndef MM_PF_ROWS
#define MM_PF_ROWS 12 /* weight rows ahead to prefetch: three column blocks (21 KB at k = 896) */
#endif
/* Elements ahead in its own rows that a one-token tile (m = 1) pulls from L2 into L1. Tiles of
 * 2-4 tokens pull the next block's rows at the same k, which at m = 1 and k = 4864 is 39 KB
 * ahead and with the block being read overflows the 48 KB L1: 512 (1 KB per row) measured 5%
 * faster on the 0.5b down_proj at m = 1, the same on its other shapes, and 4% slower at m = 4,
 * where four tokens per weight leave the next block's lines time to stay (docs/BENCHMARKS.md). */
#define MM_L1_PF 512

#define AVX512_TARGET "avx512f,avx512bf16,avx512bw,avx512vl"
#define AVX512_FN     __attribute__((target(AVX512_TARGET)))
#define AVX512_INLINE static inline __attribute__((always_inline, target(AVX512_TARGET)))

AVX512_INLINE __m512bh load_bh(const uint16_t *p) {
    return (__m512bh)_mm512_loadu_si512((const void *)p);
}

AVX512_INLINE __m512bh load_bh_mask(const uint16_t *p, __mmask32 m) {
    return (__m512bh)_mm512_maskz_loadu_epi16(m, (const void *)p);
}

/* Sums of the 128-bit lanes of a and b: [a0+a2, a1+a3, b0+b2, b1+b3] (lanes of 4 floats). */
AVX512_INLINE __m512 fold_256(__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
}

/* [a0+a1, a2+a3, b0+b1, b2+b3] over 128-bit lanes. */
AVX512_INLINE __m512 fold_128(__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Within each 128-bit lane: [a0+a1, a2+a3, b0+b1, b2+b3]. */
AVX512_INLINE __m512 fold_pairs(__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Reduces the 16 accumulators of a full tile to one vector whose element 4a + b is the
 * total of acc[a][b] (a transposing tree: 45 shuffles and adds instead of 16 separate
 * horizontal sums), adds the bias and stores four rows of four F32 outputs. */
AVX512_INLINE void store_4x4(const struct mm_job *j, int64_t r0, int64_t c0, __m512 acc[4][4]) {
    __m512 v[16], t[8], u[4], w0, w1;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) v[b * 4 + a] = acc[a][b]; /* the order the tree wants */
    for (int i = 0; i < 8; i++) t[i] = fold_256(v[2 * i], v[2 * i + 1]);
    for (int i = 0; i < 4; i++) u[i] = fold_128(t[2 * i], t[2 * i + 1]);
    w0 = fold_pairs(u[0], u[1]);
    w1 = fold_pairs(u[2], u[3]);
    __m512 f = fold_pairs(w0, w1);
    if (j->bias) {
        __m128 bv;
        if (j->bias_dtype == BE_F32) {
            bv = _mm_loadu_ps((const float *)j->bias + c0);
        } else {
            __m128i h = _mm_loadl_epi64((const __m128i *)((const uint16_t *)j->bias + c0));
            bv = _mm_castsi128_ps(_mm_slli_epi32(_mm_cvtepu16_epi32(h), 16));
        }
        f = _mm512_add_ps(f, _mm512_broadcast_f32x4(bv));
    }
    float *y = (float *)j->y + r0 * j->y_stride + c0;
    _mm_storeu_ps(y, _mm512_castps512_ps128(f));
    _mm_storeu_ps(y + j->y_stride, _mm512_extractf32x4_ps(f, 1));
    _mm_storeu_ps(y + 2 * j->y_stride, _mm512_extractf32x4_ps(f, 2));
    _mm_storeu_ps(y + 3 * j->y_stride, _mm512_extractf32x4_ps(f, 3));
}

/* One MR x NR tile at rows r0.., columns c0..; MR, NR and PF are constants at every call
 * site. The tile prefetches PF of the four weight rows MM_PF_ROWS ahead, from row pf0. */
AVX512_INLINE void tile(const struct mm_job *j, int64_t r0, int64_t c0, int MR, int NR, int PF,
                        int pf0) {
    const uint16_t *x = (const uint16_t *)j->x + r0 * j->x_stride;
    const uint16_t *w = j->w + c0 * j->w_stride;
    int64_t xs = j->x_stride, ws = j->w_stride, k = j->k, k32 = k & ~(int64_t)31;
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int a = 0; a < MR; a++)
#pragma GCC unroll 4
        for (int b = 0; b < NR; b++) acc[a][b] = _mm512_setzero_ps();
    const char *pf = (const char *)(w + (MM_PF_ROWS + pf0) * ws);
    for (int64_t kk = 0; kk < k32; kk += 32) {
#pragma GCC unroll 4
        for (int b = 0; b < PF; b++) _mm_prefetch(pf + (b * ws + kk) * 2, _MM_HINT_T1);
        if (PF == 4 && MR == 1) {       /* one token: pull its rows into L1, MM_L1_PF ahead */
            int64_t pk = kk + MM_L1_PF; /* past a row's end: the next block's rows */
#pragma GCC unroll 4
            for (int b = 0; b < 4; b++)
                _mm_prefetch((const char *)(pk < k ? w + b * ws + pk : w + (4 + b) * ws + pk - k),
                             _MM_HINT_T0);
        } else if (PF == 4) { /* a lone tile: also pull the next block from L2 into L1 */
#pragma GCC unroll 4
            for (int b = 0; b < 4; b++)
                _mm_prefetch((const char *)(w + (4 + b) * ws + kk), _MM_HINT_T0);
        }
        __m512bh wv[4];
#pragma GCC unroll 4
        for (int b = 0; b < NR; b++) wv[b] = load_bh(w + b * ws + kk);
#pragma GCC unroll 4
        for (int a = 0; a < MR; a++) {
            __m512bh xv = load_bh(x + a * xs + kk);
#pragma GCC unroll 4
            for (int b = 0; b < NR; b++) acc[a][b] = _mm512_dpbf16_ps(acc[a][b], xv, wv[b]);
        }
    }
    if (k32 < k) {
        __mmask32 m = (__mmask32)((1ull << (k - k32)) - 1);
        __m512bh wv[4];
#pragma GCC unroll 4
        for (int b = 0; b < NR; b++) wv[b] = load_bh_mask(w + b * ws + k32, m);
#pragma GCC unroll 4
        for (int a = 0; a < MR; a++) {
            __m512bh xv = load_bh(x + a * xs + k32);
#pragma GCC unroll 4
            for (int b = 0; b < NR; b++) acc[a][b] = _mm512_dpbf16_ps(acc[a][b], xv, wv[b]);
        }
    }
    if (MR == 4 && NR == 4 && j->y_dtype == BE_F32) {
        store_4x4(j, r0, c0, acc);
        return;
    }
    for (int a = 0; a < MR; a++)
        for (int b = 0; b < NR; b++) mm_store(j, r0 + a, c0 + b, _mm512_reduce_add_ps(acc[a][b]));
}

#define TILE_CASE(MR, NR)                                                                          \
    case (MR)*8 + (NR):                                                                            \
        tile(j, r, c, MR, NR, 0, 0);                                                               \
        break
#define TILE_CASE_PF(MR, PF, CODE)                                                                 \
    case (MR)*8 + 4 + 64 * (CODE):                                                                 \
        tile(j, r, c, MR, 4, PF, pf0);                                                             \
        break

AVX512_FN void mm_avx512(const struct mm_job *j, int64_t n0, int64_t n1, float *tmp) {
    (void)tmp;
    /* The prefetches of a column block are spread over its first token tiles (4 rows in a
     * lone tile, 2 in each of the first two, 1 in each of the first four): issued in one
     * burst they fill the core's miss queues and stall the loads the tile computes with
     * (spreading them made a layer's matmuls about 18% faster at m = 8 and 7% at m = 32 in
     * an interleaved A/B, docs/BENCHMARKS.md). */
    int64_t tiles = (j->m + 3) / 4;
    int per = tiles >= 4 ? 1 : tiles >= 2 ? 2 : 4, code = per == 4 ? 3 : per;
    for (int64_t c = n0; c < n1; c += 4) {
        int nr = n1 - c >= 4 ? 4 : (int)(n1 - c);
        /* Weights MM_PF_ROWS rows ahead stream in while this block computes; past the end of
         * this thread's chunk too (the rows are another chunk's, still inside w), so a
         * chunk's last blocks do not stall. */
        bool pf = nr == 4 && c + MM_PF_ROWS + 4 <= j->n;
        for (int64_t r = 0; r < j->m; r += 4) {
            int mr = j->m - r >= 4 ? 4 : (int)(j->m - r);
            int pf0 = (int)(r / 4) * per;
            switch (mr * 8 + nr + (pf && pf0 < 4 ? 64 * code : 0)) {
                TILE_CASE_PF(1, 1, 1);
                TILE_CASE_PF(2, 1, 1);
                TILE_CASE_PF(3, 1, 1);
                TILE_CASE_PF(4, 1, 1);
                TILE_CASE_PF(1, 2, 2);
                TILE_CASE_PF(2, 2, 2);
                TILE_CASE_PF(3, 2, 2);
                TILE_CASE_PF(4, 2, 2);
                TILE_CASE_PF(1, 4, 3);
                TILE_CASE_PF(2, 4, 3);
                TILE_CASE_PF(3, 4, 3);
                TILE_CASE_PF(4, 4, 3);
                TILE_CASE(1, 1);
                TILE_CASE(1, 2);
                TILE_CASE(1, 3);
                TILE_CASE(1, 4);
                TILE_CASE(2, 1);
                TILE_CASE(2, 2);
                TILE_CASE(2, 3);
                TILE_CASE(2, 4);
                TILE_CASE(3, 1);
                TILE_CASE(3, 2);
                TILE_CASE(3, 3);
                TILE_CASE(3, 4);
                TILE_CASE(4, 1);
                TILE_CASE(4, 2);
                TILE_CASE(4, 3);
                TILE_CASE(4, 4);
                default:
                    break;
            }
        }
    }
}

/* Converts rows of F32 activations to BF16 (round to nearest even), zero-padding each row
 * to dst_stride; used by matmul.c before mm_avx512. */
AVX512_FN void mm_avx512_pack_f32(uint16_t *dst, int64_t dst_stride, const float *src,
                                  int64_t src_stride, int64_t rows, int64_t k) {
    for (int64_t r = 0; r < rows; r++) {
        const float *s = src + r * src_stride;
        uint16_t *d = dst + r * dst_stride;
        int64_t i = 0;
        for (; i + 16 <= k; i += 16)
            _mm256_storeu_si256((__m256i *)(d + i),
                                (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(s + i)));
        if (i < k) {
            __mmask16 m = (__mmask16)((1u << (k - i)) - 1);
            __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, s + i));
            _mm256_mask_storeu_epi16(d + i, m, (__m256i)v);
        }
        for (int64_t p = k; p < dst_stride; p++) d[p] = 0;
    }
}

#else
void mm_avx512(const struct mm_job *j, int64_t n0, int64_t n1, float *tmp) {
    mm_portable(j, n0, n1, tmp); /* never selected: cpu_isa_supported() is false off x86 */
}
void mm_avx512_pack_f32(uint16_t *dst, int64_t dst_stride, const float *src, int64_t src_stride,
                        int64_t rows, int64_t k) {
    (void)dst, (void)dst_stride, (void)src, (void)src_stride, (void)rows, (void)k;
}
#endif
