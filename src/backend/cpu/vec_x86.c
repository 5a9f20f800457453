/* vec_x86: AVX2+FMA and AVX-512F versions of the vec_ops kernels, compiled with per-function
 * target attributes so the rest of the library stays baseline x86-64; vec.c picks one at run
 * time from cpu_features.
 *
 * exp(z) for silu: z is clamped to [-88, 88] (exp(88) < FLT_MAX, so 1 + exp(-x) never becomes
 * inf: silu(x) for x < -88 comes out as a tiny negative number instead of -0, and for x > 88
 * exp(-x) underflows to 0 and silu(x) = x). Range reduction: n = round(z · log2 e) and
 * r = z - n · ln2 in two FMA steps (Cody-Waite: ln2 split into a short high part and a low
 * correction) so r is exact to FP32 even at |z| = 88, |r| <= ln2 / 2. exp(r) is its degree-7
 * Taylor polynomial (truncation error below 6e-9 relative on that range; the same thing as a
 * polynomial for 2^f with f = r / ln2), and 2^n is built from exponent bits (n in [-127, 127];
 * n = -127 gives 0, which only happens when exp(-x) < 1e-38 is negligible next to 1). The
 * division is an exact IEEE divide, so silu agrees with the libm path to a few ulp.
 * Invariant: element i of y is computed from element i of the inputs only, after they are
 * loaded, so exact aliasing is safe. Any thread. */
#include "backend/cpu/vec_simd.h"
#include "util/bf16.h"

#include <stddef.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "backend/cpu/simd512.h"

#define EXP_CLAMP  88.0f
#define EXP_LOG2E  1.44269504088896341f
#define EXP_LN2_HI 0.693359375f
#define EXP_LN2_LO (-2.12194440e-4f)
/* 1/k! for k = 7 .. 2 (k = 1 and 0 are 1). */
#define EXP_C7 1.98412698e-4f
#define EXP_C6 1.38888889e-3f
#define EXP_C5 8.33333333e-3f
#define EXP_C4 4.16666667e-2f
#define EXP_C3 1.66666667e-1f
#define EXP_C2 0.5f

/* ---- AVX-512F ---- */

#define V512_FN     __attribute__((target("avx512f")))
#define V512_INLINE static inline __attribute__((always_inline, target("avx512f")))

/* exp(z) for z already clamped to [-88, 88]. */
V512_INLINE __m512 exp512(__m512 z) {
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(z, _mm512_set1_ps(EXP_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_HI), z);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(EXP_C7);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_C6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_C5));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_C4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_C3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_C2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512i e =
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

V512_INLINE __m512 silu512(__m512 x) {
    __m512 c =
        _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-EXP_CLAMP)), _mm512_set1_ps(EXP_CLAMP));
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), c));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

V512_FN static void silu_mul_512(float *y, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 s = silu512(_mm512_loadu_ps(g + i));
        _mm512_storeu_ps(y + i, _mm512_mul_ps(s, _mm512_loadu_ps(u + i)));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 s = silu512(_mm512_maskz_loadu_ps(m, g + i));
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, u + i)));
    }
}

V512_FN static void add_512(float *y, const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(
            y + i, m,
            _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
    }
}

/* Four independent accumulators (64 FP32 partial sums of at most n / 64 terms each), then
 * one double reduction: close to the double-sum reference for row lengths in use. */
V512_FN static double sumsq_512(const float *x, int64_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
        __m512 v2 = _mm512_loadu_ps(x + i + 32), v3 = _mm512_loadu_ps(x + i + 48);
        a0 = _mm512_fmadd_ps(v0, v0, a0);
        a1 = _mm512_fmadd_ps(v1, v1, a1);
        a2 = _mm512_fmadd_ps(v2, v2, a2);
        a3 = _mm512_fmadd_ps(v3, v3, a3);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        a0 = _mm512_fmadd_ps(v, v, a0);
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        a1 = _mm512_fmadd_ps(v, v, a1);
    }
    float lanes[4][16];
    _mm512_storeu_ps(lanes[0], a0);
    _mm512_storeu_ps(lanes[1], a1);
    _mm512_storeu_ps(lanes[2], a2);
    _mm512_storeu_ps(lanes[3], a3);
    double ss = 0.0;
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 16; j++) ss += lanes[k][j];
    return ss;
}

V512_FN static void scale_mul_512(float *y, const float *x, float s, const float *g, int64_t n) {
    __m512 vs = _mm512_set1_ps(s);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), vs);
        _mm512_storeu_ps(y + i, _mm512_mul_ps(v, _mm512_loadu_ps(g + i)));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, g + i)));
    }
}

/* f32_to_bf16 16 elements at a time (simd512_to_bf16). */
V512_FN static void to_bf16_512(uint16_t *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i),
                            _mm512_cvtepi32_epi16(simd512_to_bf16(_mm512_loadu_ps(x + i))));
    if (i < n) { /* AVX-512F only here: a masked narrowing store, no 16-bit masked ops */
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_cvtepi32_storeu_epi16(y + i, m,
                                          simd512_to_bf16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

static const struct vec_ops g_avx512 = {
    .name = "avx512",
    .silu_mul = silu_mul_512,
    .add = add_512,
    .sumsq = sumsq_512,
    .scale_mul = scale_mul_512,
    .to_bf16 = to_bf16_512,
};

/* ---- AVX2 + FMA: 8 lanes; a tail shorter than 8 goes through a zero-padded copy ---- */

#define V256_FN     __attribute__((target("avx2,fma")))
#define V256_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

V256_INLINE __m256 exp256(__m256 z) {
    __m256 n = _mm256_round_ps(_mm256_mul_ps(z, _mm256_set1_ps(EXP_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_HI), z);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(EXP_C7);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_C6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_C5));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_C4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_C3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_C2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

V256_INLINE __m256 silu_mul256(__m256 x, __m256 u) {
    __m256 c =
        _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-EXP_CLAMP)), _mm256_set1_ps(EXP_CLAMP));
    __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), c));
    return _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

V256_FN static void silu_mul_256(float *y, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, silu_mul256(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
    if (i < n) {
        float tg[8] = {0}, tu[8] = {0}, ty[8];
        size_t k = (size_t)(n - i) * sizeof(float);
        memcpy(tg, g + i, k);
        memcpy(tu, u + i, k);
        _mm256_storeu_ps(ty, silu_mul256(_mm256_loadu_ps(tg), _mm256_loadu_ps(tu)));
        memcpy(y + i, ty, k);
    }
}

V256_FN static void add_256(float *y, const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++) y[i] = a[i] + b[i];
}

V256_FN static double sumsq_256(const float *x, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        __m256 v2 = _mm256_loadu_ps(x + i + 16), v3 = _mm256_loadu_ps(x + i + 24);
        a0 = _mm256_fmadd_ps(v0, v0, a0);
        a1 = _mm256_fmadd_ps(v1, v1, a1);
        a2 = _mm256_fmadd_ps(v2, v2, a2);
        a3 = _mm256_fmadd_ps(v3, v3, a3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        a0 = _mm256_fmadd_ps(v, v, a0);
    }
    float lanes[4][8];
    _mm256_storeu_ps(lanes[0], a0);
    _mm256_storeu_ps(lanes[1], a1);
    _mm256_storeu_ps(lanes[2], a2);
    _mm256_storeu_ps(lanes[3], a3);
    double ss = 0.0;
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 8; j++) ss += lanes[k][j];
    for (; i < n; i++) ss += (double)x[i] * x[i];
    return ss;
}

V256_FN static void scale_mul_256(float *y, const float *x, float s, const float *g, int64_t n) {
    __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(v, _mm256_loadu_ps(g + i)));
    }
    for (; i < n; i++) y[i] = (x[i] * s) * g[i];
}

/* simd512_to_bf16 (simd512.h) on 8 lanes (the compare is signed, on values with the sign bit
 * cleared). */
V256_FN static void to_bf16_256(uint16_t *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i));
        __m256i hi = _mm256_srli_epi32(u, 16);
        __m256i lsb = _mm256_and_si256(hi, _mm256_set1_epi32(1));
        __m256i r = _mm256_srli_epi32(
            _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                         _mm256_set1_epi32(0x7f800000));
        r = _mm256_blendv_epi8(r, _mm256_or_si256(hi, _mm256_set1_epi32(0x40)), nan);
        /* 32 -> 16 bits: packus works per 128-bit lane, so gather the two halves after it */
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
        _mm_storeu_si128((__m128i *)(y + i), _mm256_castsi256_si128(p));
    }
    for (; i < n; i++) y[i] = f32_to_bf16(x[i]);
}

static const struct vec_ops g_avx2 = {
    .name = "avx2",
    .silu_mul = silu_mul_256,
    .add = add_256,
    .sumsq = sumsq_256,
    .scale_mul = scale_mul_256,
    .to_bf16 = to_bf16_256,
};

const struct vec_ops *const vec_ops_avx2 = &g_avx2;
const struct vec_ops *const vec_ops_avx512 = &g_avx512;

#else

const struct vec_ops *const vec_ops_avx2 = NULL;
const struct vec_ops *const vec_ops_avx512 = NULL;

#endif
