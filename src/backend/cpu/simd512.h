/* simd512: AVX-512F building blocks shared by the CPU kernels (attention_avx512.c,
 * attention_varlen_avx512.c, matmul_avx512_tf.c, vec_x86.c). Header-only, always inlined into
 * callers compiled with an AVX-512F target; include only on x86 after <immintrin.h>. Any thread. */
#ifndef VELA_BACKEND_CPU_SIMD512_H
#define VELA_BACKEND_CPU_SIMD512_H

#include <immintrin.h>

#define SIMD512_INLINE static inline __attribute__((always_inline, target("avx512f")))

/* e^x for x <= 0 (scores minus their running max): a Cephes-style polynomial, about 1 ulp,
 * with scalef for the power of two; inputs below -87.3 give ~1e-38 (lanes that must be 0 are
 * masked by the caller). */
SIMD512_INLINE __m512 simd512_exp_neg(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.33654f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 z = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(z, n);
}

/* f32_to_bf16 (util/bf16.h) on 16 lanes, bit for bit: add 0x7fff plus the kept half's lowest
 * bit (round to nearest even) and keep the high half; a NaN keeps its high half with the
 * quiet bit set. One BF16 per 32-bit lane (narrow with _mm512_cvtepi32_epi16). */
SIMD512_INLINE __m512i simd512_to_bf16(__m512 x) {
    __m512i u = _mm512_castps_si512(x);
    __m512i hi = _mm512_srli_epi32(u, 16);
    __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_or_epi32(r, nan, hi, _mm512_set1_epi32(0x40));
}

/* 32 BF16 values (one vector) -> FP32 in pair order: the 16 even elements to d[0..16), the
 * 16 odd ones to d[16..32) (a shift and a mask, no per-element conversion); d 64-byte
 * aligned. The FP32-FMA matmul and the prefill attention widen their BF16 operands so. */
SIMD512_INLINE void simd512_widen_pairs(float *d, __m512i v) {
    _mm512_store_ps(d, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
    _mm512_store_ps(d + 16,
                    _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xffff0000u))));
}
/* Where element i (< 32) of a block sits once widened in pair order, and which element sits
 * at position e. */
#define SIMD512_PAIR_AT(i)   (((i)&1) * 16 + ((i) >> 1))
#define SIMD512_PAIR_ELEM(e) ((e) < 16 ? 2 * (e) : 2 * ((e)-16) + 1)

/* In-register transpose of 16 vectors of 16 32-bit elements: r[i][j] -> r[j][i]. Three
 * rounds: pairs of rows interleaved as 32-bit, then 64-bit elements, then 128-bit lanes
 * gathered twice (pure data movement, so it serves floats and integers alike). */
SIMD512_INLINE void simd512_transpose16(__m512 r[16]) {
    __m512 a[16], b[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) { /* b[4k+e] lane L: rows 4k..4k+3 at column 4L + e */
        __m512d x0 = _mm512_castps_pd(a[4 * k]), x1 = _mm512_castps_pd(a[4 * k + 1]);
        __m512d x2 = _mm512_castps_pd(a[4 * k + 2]), x3 = _mm512_castps_pd(a[4 * k + 3]);
        b[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(x0, x2));
        b[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(x0, x2));
        b[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(x1, x3));
        b[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(x1, x3));
    }
#pragma GCC unroll 4
    for (int e = 0; e < 4; e++) { /* gather lane L of b[e], b[4+e], b[8+e], b[12+e] */
        __m512 c0 = _mm512_shuffle_f32x4(b[e], b[4 + e], 0x88);
        __m512 c1 = _mm512_shuffle_f32x4(b[e], b[4 + e], 0xdd);
        __m512 c2 = _mm512_shuffle_f32x4(b[8 + e], b[12 + e], 0x88);
        __m512 c3 = _mm512_shuffle_f32x4(b[8 + e], b[12 + e], 0xdd);
        r[e] = _mm512_shuffle_f32x4(c0, c2, 0x88);
        r[8 + e] = _mm512_shuffle_f32x4(c0, c2, 0xdd);
        r[4 + e] = _mm512_shuffle_f32x4(c1, c3, 0x88);
        r[12 + e] = _mm512_shuffle_f32x4(c1, c3, 0xdd);
    }
}

/* The same for integer vectors (BF16 pairs, accumulators viewed as 32-bit lanes). */
SIMD512_INLINE void simd512_transpose16_si(__m512i v[16]) {
    __m512 r[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_castsi512_ps(v[i]);
    simd512_transpose16(r);
    for (int i = 0; i < 16; i++) v[i] = _mm512_castps_si512(r[i]);
}

#endif
