/* matmul_avx2: AVX2/FMA kernel with FP32 activations. BF16 weights become FP32 by a 16-bit
 * left shift (exact), so the math equals the portable path up to summation order.
 *
 * Tiles of up to 4 rows (tokens) x 2 columns (outputs): each 8-wide weight load feeds four
 * FMAs, and 8 accumulators + 2 weights + 1 activation fit the 16 YMM registers. k is walked
 * in steps of 8; the k % 8 tail is added in scalar code.
 * Invariant: touches only columns [n0, n1) of y. Called on pool threads. The functions carry
 * their own target attribute so the rest of the build stays generic. */
#include "backend/cpu/matmul.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define AVX2_FN     __attribute__((target("avx2,fma")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

AVX2_INLINE __m256 load_w8(const uint16_t *p) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

AVX2_INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* One MR x NR tile at rows r0.., columns c0..; MR, NR are constants at every call site. */
AVX2_INLINE void tile(const struct mm_job *j, int64_t r0, int64_t c0, int MR, int NR) {
    const float *x = (const float *)j->x + r0 * j->x_stride;
    const uint16_t *w = j->w + c0 * j->w_stride;
    int64_t xs = j->x_stride, ws = j->w_stride, k8 = j->k & ~(int64_t)7;
    __m256 acc[4][2];
#pragma GCC unroll 4
    for (int a = 0; a < MR; a++)
#pragma GCC unroll 2
        for (int b = 0; b < NR; b++) acc[a][b] = _mm256_setzero_ps();
    for (int64_t kk = 0; kk < k8; kk += 8) {
        __m256 wv[2];
#pragma GCC unroll 2
        for (int b = 0; b < NR; b++) wv[b] = load_w8(w + b * ws + kk);
#pragma GCC unroll 4
        for (int a = 0; a < MR; a++) {
            __m256 xv = _mm256_loadu_ps(x + a * xs + kk);
#pragma GCC unroll 2
            for (int b = 0; b < NR; b++) acc[a][b] = _mm256_fmadd_ps(xv, wv[b], acc[a][b]);
        }
    }
    for (int a = 0; a < MR; a++) {
        for (int b = 0; b < NR; b++) {
            float s = hsum8(acc[a][b]);
            for (int64_t kk = k8; kk < j->k; kk++)
                s += x[a * xs + kk] * bf16_to_f32(w[b * ws + kk]);
            mm_store(j, r0 + a, c0 + b, s);
        }
    }
}

#define TILE_CASE(MR, NR)                                                                          \
    case (MR)*8 + (NR):                                                                            \
        tile(j, r, c, MR, NR);                                                                     \
        break

AVX2_FN void mm_avx2(const struct mm_job *j, int64_t n0, int64_t n1, float *tmp) {
    (void)tmp;
    for (int64_t c = n0; c < n1; c += 2) {
        int nr = n1 - c >= 2 ? 2 : 1;
        for (int64_t r = 0; r < j->m; r += 4) {
            int mr = j->m - r >= 4 ? 4 : (int)(j->m - r);
            switch (mr * 8 + nr) {
                TILE_CASE(1, 1);
                TILE_CASE(1, 2);
                TILE_CASE(2, 1);
                TILE_CASE(2, 2);
                TILE_CASE(3, 1);
                TILE_CASE(3, 2);
                TILE_CASE(4, 1);
                TILE_CASE(4, 2);
                default:
                    break;
            }
        }
    }
}

#else
void mm_avx2(const struct mm_job *j, int64_t n0, int64_t n1, float *tmp) {
    mm_portable(j, n0, n1, tmp); /* never selected: cpu_isa_supported() is false off x86 */
}
#endif
