/* matmul_avx512_tn: the AVX-512 BF16 kernel for chunks of many rows (prefill, large batches).
 *
 * mm_avx512 (matmul_avx512.c) takes dot products along k, so every output ends in a
 * horizontal sum of 16 lanes: about 3 shuffles and adds per output against k / 32
 * vdpbf16ps, 10% more work at k = 896. Here the lanes are tokens instead: the activations of
 * a group of 16 rows are packed once per chunk ("token-interleaved": pair p of the group is
 * one 64-byte vector whose lane t is (x[t][2p], x[t][2p+1]) in BF16), and vdpbf16ps with a
 * broadcast weight pair (w[n][2p], w[n][2p+1]) adds both products into 16 rows of output n
 * at once. A tile is 16 rows x 16 outputs (16 accumulators; per k pair one activation load
 * and 16 broadcasts from the weight rows, used in place); it ends with one 16 x 16 transpose
 * and 16 row stores instead of 256 horizontal sums.
 *
 * Numerics are mm_avx512's: BF16 activations (round to nearest even), exact products, FP32
 * sums (in another order), bias in FP32, one rounding for a BF16 y.
 * Invariants: a kernel call touches only columns [n0, n1) of y and reads weight rows
 * [n0, n1) (and prefetches rows up to 16 past n1, inside w); packed groups hold zeros in the
 * rows past m and the pairs past k, so padding never adds to an output. Pool threads. */
#include "backend/cpu/matmul.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/simd512.h"

#define TN_TARGET "avx512f,avx512bf16,avx512bw,avx512vl"
#define TN_FN     __attribute__((target(TN_TARGET)))
#define TN_INLINE static inline __attribute__((always_inline, target(TN_TARGET)))

/* 32 activations of one row from k0 (fewer at the end of k), as 16 BF16 pairs. */
TN_INLINE __m512i row_pairs(const void *row, enum be_dtype dt, int64_t k0, int64_t k) {
    int64_t n = k - k0 < 32 ? k - k0 : 32;
    if (dt == BE_BF16) {
        __mmask32 m = n >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << n) - 1);
        return _mm512_maskz_loadu_epi16(m, (const uint16_t *)row + k0);
    }
    const float *f = (const float *)row + k0;
    __mmask16 m0 = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
    __mmask16 m1 = n >= 32 ? 0xffff : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
    __m512 lo = _mm512_maskz_loadu_ps(m0, f), hi = _mm512_maskz_loadu_ps(m1, f + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

TN_FN void mm_avx512_pack_tn(uint32_t *dst, int64_t kp, const void *src, enum be_dtype dt,
                             int64_t src_stride, int64_t rows, int64_t k) {
    size_t es = dt == BE_F32 ? 4 : 2;
    for (int64_t g = 0; g * 16 < rows; g++) {
        uint32_t *d = dst + g * kp * 16;
        int64_t nr = rows - g * 16 < 16 ? rows - g * 16 : 16;
        for (int64_t p0 = 0; p0 < kp; p0 += 16) {
            __m512i v[16];
            for (int t = 0; t < 16; t++) {
                const char *row =
                    (const char *)src + (size_t)(g * 16 + t) * (size_t)src_stride * es;
                v[t] =
                    t < nr && 2 * p0 < k ? row_pairs(row, dt, 2 * p0, k) : _mm512_setzero_si512();
            }
            simd512_transpose16_si(v);
            for (int i = 0; i < 16; i++) _mm512_store_si512((void *)(d + (p0 + i) * 16), v[i]);
        }
    }
}

/* Outputs [c0, c0 + 16) (the first nr real; the others repeat row c0 and are not stored) of
 * the 16 rows of group g. */
TN_INLINE void tile(const struct mm_job *j, int64_t g, int64_t c0, int nr, bool pf) {
    int64_t kp = j->x_stride; /* pairs per group row, a multiple of 16 */
    const uint32_t *xg = (const uint32_t *)j->x + g * kp * 16;
    const uint16_t *w[16];
    for (int b = 0; b < 16; b++) w[b] = j->w + (c0 + (b < nr ? b : 0)) * j->w_stride;
    int64_t kfull = j->k / 2; /* whole pairs; an odd k's last element is handled below */
    __m512i acc[16];
    for (int b = 0; b < 16; b++) acc[b] = _mm512_setzero_si512();
    for (int64_t p = 0; p < kfull; p++) {
        if (pf && (p & 15) == 0) /* the next block's rows, one line each per 16 pairs */
            for (int b = 0; b < 16; b++)
                _mm_prefetch((const char *)(w[0] + (16 + b) * j->w_stride + 2 * p), _MM_HINT_T1);
        __m512bh xv = (__m512bh)_mm512_load_si512((const void *)(xg + p * 16));
#pragma GCC unroll 16
        for (int b = 0; b < 16; b++) {
            uint32_t pair;
            memcpy(&pair, w[b] + 2 * p, sizeof pair);
            acc[b] = (__m512i)_mm512_dpbf16_ps((__m512)acc[b], xv,
                                               (__m512bh)_mm512_set1_epi32((int)pair));
        }
    }
    if (j->k & 1) { /* last element alone: its pair partner is zero in x, so pair it with 0 */
        __m512bh xv = (__m512bh)_mm512_load_si512((const void *)(xg + kfull * 16));
        for (int b = 0; b < 16; b++)
            acc[b] = (__m512i)_mm512_dpbf16_ps((__m512)acc[b], xv,
                                               (__m512bh)_mm512_set1_epi32(w[b][j->k - 1]));
    }
    simd512_transpose16_si(acc); /* acc[t] = row 16g + t, outputs c0 .. c0 + 15 */
    __mmask16 m = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    __m512 bias = _mm512_setzero_ps();
    if (j->bias && j->bias_dtype == BE_F32) {
        bias = _mm512_maskz_loadu_ps(m, (const float *)j->bias + c0);
    } else if (j->bias) {
        __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)j->bias + c0);
        bias = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    int64_t rows = j->m - g * 16 < 16 ? j->m - g * 16 : 16;
    for (int64_t t = 0; t < rows; t++) {
        __m512 yv = _mm512_add_ps(_mm512_castsi512_ps(acc[t]), bias);
        int64_t r = g * 16 + t;
        if (j->y_dtype == BE_F32)
            _mm512_mask_storeu_ps((float *)j->y + r * j->y_stride + c0, m, yv);
        else
            _mm256_mask_storeu_epi16((uint16_t *)j->y + r * j->y_stride + c0, m,
                                     (__m256i)_mm512_cvtneps_pbh(yv));
    }
}

TN_FN void mm_avx512_tn(const struct mm_job *j, int64_t n0, int64_t n1) {
    int64_t groups = (j->m + 15) / 16;
    for (int64_t c = n0; c < n1; c += 16) {
        int nr = n1 - c >= 16 ? 16 : (int)(n1 - c);
        bool pf = c + 32 <= j->n;
        for (int64_t g = 0; g < groups; g++) tile(j, g, c, nr, pf && g == 0);
    }
}

#else
void mm_avx512_tn(const struct mm_job *j, int64_t n0, int64_t n1) {
    mm_portable(j, n0, n1); /* never selected: cpu_isa_supported() is false off x86 */
}
void mm_avx512_pack_tn(uint32_t *dst, int64_t kp, const void *src, enum be_dtype dt,
                       int64_t src_stride, int64_t rows, int64_t k) {
    (void)dst, (void)kp, (void)src, (void)dt, (void)src_stride, (void)rows, (void)k;
}
#endif
