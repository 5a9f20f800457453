/* attention_varlen_avx512: the AVX-512F piece kernel of attention_varlen.c for F32 q, k, v
 * and o with head_dim a multiple of 16 (80 on every Qwen2.5-VL size): up to VA_QT query
 * rows against the keys of their segment, in chunks of VA_KB keys.
 *
 * Per chunk: scores of every query (one 16-wide FMA chain per query over head_dim, reused
 * across the queries of the tile for each key row loaded), an online softmax whose
 * exponentials are evaluated 16 at a time (a Cephes-style polynomial, about 1 ulp, with
 * scalef for the power of two), then P·V with the tile's accumulators held in registers while
 * the chunk's value rows stream past. Numerics are FP32 throughout like the portable path;
 * only the summation order and the exp implementation differ (a few ulps).
 * Invariant: writes only the nq rows x head_dim columns of o given. Called on pool threads. */
#include "backend/cpu/vit_ops.h"

#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define VA512_TARGET "avx512f"
#define VA512_FN     __attribute__((target(VA512_TARGET)))
#define VA512_INLINE static inline __attribute__((always_inline, target(VA512_TARGET)))
#define VA512_QT     4  /* query rows per piece, as attention_varlen.c's VA_QT */
#define VA512_KB     64 /* keys per chunk */
#define VA512_MAX_HD 256

/* e^x for x <= 0 (scores minus their running max); inputs below -87.3 give ~1e-38. */
VA512_INLINE __m512 exp512(__m512 x) {
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

/* Softmax update of one query row for the chunk's scores s[0..nk): returns the new max and
 * replaces s by the exponentials; *alpha receives the factor for the old accumulator. */
VA512_INLINE float chunk_softmax(float *s, int32_t nk, float mx, float *sum, float *alpha) {
    __m512 vm = _mm512_set1_ps(mx);
    for (int32_t t = 0; t < nk; t += 16) {
        __mmask16 m = nk - t >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (nk - t)) - 1);
        vm = _mm512_mask_max_ps(vm, m, vm, _mm512_maskz_loadu_ps(m, s + t));
    }
    float nmx = _mm512_reduce_max_ps(vm);
    *alpha = expf(mx - nmx); /* 0 on the first chunk (mx = -inf) */
    __m512 acc = _mm512_setzero_ps(), vn = _mm512_set1_ps(nmx);
    for (int32_t t = 0; t < nk; t += 16) {
        __mmask16 m = nk - t >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (nk - t)) - 1);
        __m512 p = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + t), vn));
        _mm512_mask_storeu_ps(s + t, m, p);
        acc = _mm512_mask_add_ps(acc, m, acc, p);
    }
    *sum = *sum * *alpha + _mm512_reduce_add_ps(acc);
    return nmx;
}

VA512_FN void va_piece_avx512(const float *q, int64_t q_stride, int32_t nq, const float *k,
                              int64_t k_stride, const float *v, int64_t v_stride, int64_t n_keys,
                              int32_t hd, float scale, float *o, int64_t o_stride) {
    int32_t nc = hd / 16;
    float acc[VA512_QT][VA512_MAX_HD], sc[VA512_QT][VA512_KB], mx[VA512_QT], sum[VA512_QT];
    const float *qr[VA512_QT];
    for (int32_t i = 0; i < VA512_QT; i++) { /* rows past nq repeat row 0; never stored */
        qr[i] = q + (i < nq ? i : 0) * q_stride;
        mx[i] = -INFINITY, sum[i] = 0.0f;
        for (int32_t d = 0; d < hd; d++) acc[i][d] = 0.0f;
    }
    for (int64_t k0 = 0; k0 < n_keys; k0 += VA512_KB) {
        int32_t nk = (int32_t)(n_keys - k0 < VA512_KB ? n_keys - k0 : VA512_KB);
        for (int32_t t = 0; t < nk; t++) {
            const float *kr = k + (k0 + t) * k_stride;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int32_t c = 0; c < nc; c++) {
                __m512 kc = _mm512_loadu_ps(kr + 16 * c);
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(qr[0] + 16 * c), kc, a0);
                a1 = _mm512_fmadd_ps(_mm512_loadu_ps(qr[1] + 16 * c), kc, a1);
                a2 = _mm512_fmadd_ps(_mm512_loadu_ps(qr[2] + 16 * c), kc, a2);
                a3 = _mm512_fmadd_ps(_mm512_loadu_ps(qr[3] + 16 * c), kc, a3);
            }
            sc[0][t] = _mm512_reduce_add_ps(a0) * scale;
            sc[1][t] = _mm512_reduce_add_ps(a1) * scale;
            sc[2][t] = _mm512_reduce_add_ps(a2) * scale;
            sc[3][t] = _mm512_reduce_add_ps(a3) * scale;
        }
        float alpha[VA512_QT];
        for (int32_t i = 0; i < nq; i++)
            mx[i] = chunk_softmax(sc[i], nk, mx[i], &sum[i], &alpha[i]);
        for (int32_t c = 0; c < nc; c++) {
            __m512 a[VA512_QT];
            for (int32_t i = 0; i < nq; i++)
                a[i] = _mm512_mul_ps(_mm512_loadu_ps(acc[i] + 16 * c), _mm512_set1_ps(alpha[i]));
            for (int32_t t = 0; t < nk; t++) {
                __m512 vc = _mm512_loadu_ps(v + (k0 + t) * v_stride + 16 * c);
                for (int32_t i = 0; i < nq; i++)
                    a[i] = _mm512_fmadd_ps(_mm512_set1_ps(sc[i][t]), vc, a[i]);
            }
            for (int32_t i = 0; i < nq; i++) _mm512_storeu_ps(acc[i] + 16 * c, a[i]);
        }
    }
    for (int32_t i = 0; i < nq; i++) {
        __m512 inv = _mm512_set1_ps(1.0f / sum[i]);
        for (int32_t c = 0; c < nc; c++)
            _mm512_storeu_ps(o + i * o_stride + 16 * c,
                             _mm512_mul_ps(_mm512_loadu_ps(acc[i] + 16 * c), inv));
    }
}

#else /* not x86: never selected (attention_varlen.c checks the CPU features) */

void va_piece_avx512(const float *q, int64_t q_stride, int32_t nq, const float *k, int64_t k_stride,
                     const float *v, int64_t v_stride, int64_t n_keys, int32_t hd, float scale,
                     float *o, int64_t o_stride) {
    (void)q, (void)q_stride, (void)nq, (void)k, (void)k_stride, (void)v, (void)v_stride;
    (void)n_keys, (void)hd, (void)scale, (void)o, (void)o_stride;
}

#endif
