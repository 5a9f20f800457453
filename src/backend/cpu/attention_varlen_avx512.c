/* attention_varlen_avx512: the AVX-512F tile kernel of attention_varlen.c for F32 q, k, v and
 * o with head_dim a multiple of 16 (80 on every Qwen2.5-VL size): up to VA_AVX512_ROWS query
 * rows of one segment and one head against every key of that segment.
 *
 * Layout: everything runs with the tile's query rows in the 16 lanes of a vector ("row
 * vectors", rv = row / 16), so the softmax needs no horizontal work at all:
 *   - the q rows are loaded once per tile, scaled, and transposed (16x16 in registers) into
 *     qt[d][row];
 *   - per chunk of VA512_KC keys, the score of key t for 16 rows is sum_d qt[d] * K[t][d]:
 *     FMAs with a broadcast K scalar read straight from the strided K row (no transpose of K);
 *   - online softmax lane-wise: running max and sum per row, the chunk's maximum is a vertical
 *     max over its keys, exponentials 16 rows at a time (a Cephes-style polynomial, about
 *     1 ulp, scalef for the power of two);
 *   - P·V into the transposed accumulator acc[d][row] += p[t][row] * V[t][d], again with a
 *     broadcast V scalar, a block of head_dim x row vectors held in registers while the chunk's
 *     V rows stream past;
 *   - at the end acc / sum is transposed back into the tile's o rows.
 * The inner loops are instantiated for 1..4 row vectors (NR) so their accumulators stay in
 * registers; the next chunk's K and V rows are prefetched while this one computes, a few per
 * block of keys (they are rows of a fused qkv tensor, pages apart, which the hardware
 * prefetcher does not follow; issued all at once they would fill the line fill buffers).
 *
 * Numerics are FP32 throughout like the portable path: q is scaled before the dot product
 * instead of the score after it, and the summation order and the exp differ (a few ulps).
 * Lanes of rows past the tile's end hold zero queries: they compute harmless values that
 * are never stored.
 * Invariant: writes only the nq rows x head_dim columns of o given; reads only the n_keys
 * key and value rows given. Scratch is one struct va512_scratch on the calling thread's stack
 * (about 140 KB). Called on pool threads. */
#include "backend/cpu/vit_ops.h"

#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "backend/cpu/simd512.h"

#define VA512_TARGET "avx512f"
#define VA512_FN     static __attribute__((target(VA512_TARGET)))
#define VA512_INLINE static inline __attribute__((always_inline, target(VA512_TARGET)))
#define VA512_RV     (VA_AVX512_ROWS / 16) /* row vectors per tile */
#define VA512_KC     32                    /* keys per chunk: softmax state updates per chunk */
#define VA512_MAX_HD 256

struct va512_scratch {
    _Alignas(64) float qt[VA512_MAX_HD][VA_AVX512_ROWS];  /* q tile x scale, transposed */
    _Alignas(64) float acc[VA512_MAX_HD][VA_AVX512_ROWS]; /* unnormalized output, transposed */
    _Alignas(64) float p[VA512_KC][VA_AVX512_ROWS];       /* chunk scores, then weights */
    _Alignas(64) float mx[VA_AVX512_ROWS];                /* running max per row */
    _Alignas(64) float sum[VA_AVX512_ROWS];               /* running softmax sum per row */
    _Alignas(64) float alpha[VA_AVX512_ROWS];             /* the chunk's rescale factor */
};

/* Rows [0, nq) of q times scale into qt (zero rows up to the row vector's end); acc, max and
 * sum reset. */
VA512_FN void va512_tile_init(struct va512_scratch *s, const float *q, int64_t q_stride, int32_t nq,
                              int32_t hd, float scale) {
    __m512 vs = _mm512_set1_ps(scale), zero = _mm512_setzero_ps();
    for (int32_t rv = 0; rv * 16 < nq; rv++) {
        for (int32_t d0 = 0; d0 < hd; d0 += 16) {
            __m512 r[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) {
                int32_t row = rv * 16 + i;
                r[i] =
                    row < nq ? _mm512_mul_ps(_mm512_loadu_ps(q + row * q_stride + d0), vs) : zero;
            }
            simd512_transpose16(r);
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) {
                _mm512_store_ps(&s->qt[d0 + i][16 * rv], r[i]);
                _mm512_store_ps(&s->acc[d0 + i][16 * rv], zero);
            }
        }
        _mm512_store_ps(s->mx + 16 * rv, _mm512_set1_ps(-INFINITY));
        _mm512_store_ps(s->sum + 16 * rv, zero);
    }
}

/* p[t][rows] = scores of keys t < nk (rows k, stride k_stride) for NR row vectors, TK keys at
 * a time (a partial last block repeats key nk - 1; its extra scores are never read). Also
 * prefetches the next chunk's nn K rows (kn, stride k_stride) and V rows (vn, v_stride). */
VA512_INLINE void va512_scores(struct va512_scratch *s, const int NR, const int TK, const float *k,
                               int64_t k_stride, int32_t nk, int32_t hd, const float *kn,
                               const float *vn, int64_t v_stride, int32_t nn) {
    for (int32_t t0 = 0; t0 < nk; t0 += TK) {
        const float *kr[8];
        __m512 a[8][VA512_RV];
        /* the next chunk's rows, a few per key block: all at once they fill the fill buffers */
        for (int32_t t = t0; t < t0 + TK && t < nn; t++)
            for (int32_t d = 0; d < hd; d += 16) {
                __builtin_prefetch(kn + t * k_stride + d);
                __builtin_prefetch(vn + t * v_stride + d);
            }
#pragma GCC unroll 8
        for (int j = 0; j < TK; j++) {
            kr[j] = k + (t0 + j < nk ? t0 + j : nk - 1) * k_stride;
#pragma GCC unroll 4
            for (int rv = 0; rv < NR; rv++) a[j][rv] = _mm512_setzero_ps();
        }
        for (int32_t d = 0; d < hd; d++) {
            __m512 qv[VA512_RV];
#pragma GCC unroll 4
            for (int rv = 0; rv < NR; rv++) qv[rv] = _mm512_load_ps(&s->qt[d][16 * rv]);
#pragma GCC unroll 8
            for (int j = 0; j < TK; j++) {
                __m512 kb = _mm512_set1_ps(kr[j][d]);
#pragma GCC unroll 4
                for (int rv = 0; rv < NR; rv++) a[j][rv] = _mm512_fmadd_ps(qv[rv], kb, a[j][rv]);
            }
        }
#pragma GCC unroll 8
        for (int j = 0; j < TK; j++)
#pragma GCC unroll 4
            for (int rv = 0; rv < NR; rv++) _mm512_store_ps(&s->p[t0 + j][16 * rv], a[j][rv]);
    }
}

/* Online softmax of the chunk for nrv row vectors: new running max, p[t] = e^(score - max),
 * alpha = e^(old max - new max) (about 1e-38 at the first chunk, where it scales zeros). */
VA512_FN void va512_softmax(struct va512_scratch *s, int32_t nrv, int32_t nk) {
    for (int32_t rv = 0; rv < nrv; rv++) {
        __m512 m0 = _mm512_load_ps(s->mx + 16 * rv), m = m0;
        for (int32_t t = 0; t < nk; t++) m = _mm512_max_ps(m, _mm512_load_ps(&s->p[t][16 * rv]));
        __m512 al = simd512_exp_neg(_mm512_sub_ps(m0, m));
        __m512 l0 = _mm512_mul_ps(_mm512_load_ps(s->sum + 16 * rv), al), l1 = _mm512_setzero_ps();
        int32_t t = 0;
        for (; t + 2 <= nk; t += 2) { /* two sums: the adds are a dependency chain */
            __m512 e0 = simd512_exp_neg(_mm512_sub_ps(_mm512_load_ps(&s->p[t][16 * rv]), m));
            __m512 e1 = simd512_exp_neg(_mm512_sub_ps(_mm512_load_ps(&s->p[t + 1][16 * rv]), m));
            _mm512_store_ps(&s->p[t][16 * rv], e0);
            _mm512_store_ps(&s->p[t + 1][16 * rv], e1);
            l0 = _mm512_add_ps(l0, e0), l1 = _mm512_add_ps(l1, e1);
        }
        if (t < nk) {
            __m512 e0 = simd512_exp_neg(_mm512_sub_ps(_mm512_load_ps(&s->p[t][16 * rv]), m));
            _mm512_store_ps(&s->p[t][16 * rv], e0);
            l0 = _mm512_add_ps(l0, e0);
        }
        _mm512_store_ps(s->mx + 16 * rv, m);
        _mm512_store_ps(s->sum + 16 * rv, _mm512_add_ps(l0, l1));
        _mm512_store_ps(s->alpha + 16 * rv, al);
    }
}

/* acc[d][rows] = acc * alpha + sum_t p[t][rows] * V[t][d] for NR row vectors, D columns of
 * head_dim at a time (D divides 16, so it divides head_dim). */
VA512_INLINE void va512_pv(struct va512_scratch *s, const int NR, const int D, const float *v,
                           int64_t v_stride, int32_t nk, int32_t hd) {
    __m512 al[VA512_RV];
#pragma GCC unroll 4
    for (int rv = 0; rv < NR; rv++) al[rv] = _mm512_load_ps(s->alpha + 16 * rv);
    for (int32_t d0 = 0; d0 < hd; d0 += D) {
        __m512 a[8][VA512_RV];
#pragma GCC unroll 8
        for (int j = 0; j < D; j++)
#pragma GCC unroll 4
            for (int rv = 0; rv < NR; rv++)
                a[j][rv] = _mm512_mul_ps(_mm512_load_ps(&s->acc[d0 + j][16 * rv]), al[rv]);
        const float *vr = v + d0;
        for (int32_t t = 0; t < nk; t++, vr += v_stride) {
            __m512 pv[VA512_RV];
#pragma GCC unroll 4
            for (int rv = 0; rv < NR; rv++) pv[rv] = _mm512_load_ps(&s->p[t][16 * rv]);
#pragma GCC unroll 8
            for (int j = 0; j < D; j++) {
                __m512 vb = _mm512_set1_ps(vr[j]);
#pragma GCC unroll 4
                for (int rv = 0; rv < NR; rv++) a[j][rv] = _mm512_fmadd_ps(pv[rv], vb, a[j][rv]);
            }
        }
#pragma GCC unroll 8
        for (int j = 0; j < D; j++)
#pragma GCC unroll 4
            for (int rv = 0; rv < NR; rv++) _mm512_store_ps(&s->acc[d0 + j][16 * rv], a[j][rv]);
    }
}

/* Every chunk of keys for NR row vectors. Register blocks: NR x TK score accumulators and
 * D x NR output accumulators, 8 to 16 of them (enough independent FMA chains to cover the
 * latency, few enough to leave registers for the operands). */
VA512_INLINE void va512_keys(struct va512_scratch *s, const int NR, const float *k,
                             int64_t k_stride, const float *v, int64_t v_stride, int64_t n_keys,
                             int32_t hd) {
    const int TK = NR <= 2 ? 8 : 4, D = NR <= 2 ? 8 : 4;
    for (int64_t k0 = 0; k0 < n_keys; k0 += VA512_KC) {
        int32_t nk = (int32_t)(n_keys - k0 < VA512_KC ? n_keys - k0 : VA512_KC);
        int64_t left = n_keys - k0 - nk;
        int32_t nn = (int32_t)(left < VA512_KC ? left : VA512_KC); /* keys of the next chunk */
        const float *kc = k + k0 * k_stride, *vc = v + k0 * v_stride;
        const float *kn = nn > 0 ? kc + nk * k_stride : kc, *vn = nn > 0 ? vc + nk * v_stride : vc;
        va512_scores(s, NR, TK, kc, k_stride, nk, hd, kn, vn, v_stride, nn);
        va512_softmax(s, NR, nk);
        va512_pv(s, NR, D, vc, v_stride, nk, hd);
    }
}

/* One instance per row-vector count, so each keeps its accumulators in registers. */
VA512_FN void va512_keys_n(struct va512_scratch *s, int32_t nrv, const float *k, int64_t k_stride,
                           const float *v, int64_t v_stride, int64_t n_keys, int32_t hd) {
    switch (nrv) {
        case 1:
            va512_keys(s, 1, k, k_stride, v, v_stride, n_keys, hd);
            break;
        case 2:
            va512_keys(s, 2, k, k_stride, v, v_stride, n_keys, hd);
            break;
        case 3:
            va512_keys(s, 3, k, k_stride, v, v_stride, n_keys, hd);
            break;
        default:
            va512_keys(s, VA512_RV, k, k_stride, v, v_stride, n_keys, hd);
            break;
    }
}

/* o rows [0, nq) = acc / sum, transposed back to row-major. */
VA512_FN void va512_tile_store(struct va512_scratch *s, int32_t nq, int32_t hd, float *o,
                               int64_t o_stride) {
    for (int32_t rv = 0; rv * 16 < nq; rv++) {
        __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_load_ps(s->sum + 16 * rv));
        for (int32_t d0 = 0; d0 < hd; d0 += 16) {
            __m512 r[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                r[i] = _mm512_mul_ps(_mm512_load_ps(&s->acc[d0 + i][16 * rv]), inv);
            simd512_transpose16(r);
            for (int32_t i = 0; i < 16 && rv * 16 + i < nq; i++)
                _mm512_storeu_ps(o + (rv * 16 + i) * o_stride + d0, r[i]);
        }
    }
}

__attribute__((target(VA512_TARGET))) void
va_tile_avx512(const float *q, int64_t q_stride, int32_t nq, const float *k, int64_t k_stride,
               const float *v, int64_t v_stride, int64_t n_keys, int32_t hd, float scale, float *o,
               int64_t o_stride) {
    /* on this thread's stack; only the rows and columns in use are touched */
    struct va512_scratch s;
    va512_tile_init(&s, q, q_stride, nq, hd, scale);
    va512_keys_n(&s, (nq + 15) / 16, k, k_stride, v, v_stride, n_keys, hd);
    va512_tile_store(&s, nq, hd, o, o_stride);
}

#else /* not x86: never selected (attention_varlen.c checks the CPU features) */

void va_tile_avx512(const float *q, int64_t q_stride, int32_t nq, const float *k, int64_t k_stride,
                    const float *v, int64_t v_stride, int64_t n_keys, int32_t hd, float scale,
                    float *o, int64_t o_stride) {
    (void)q, (void)q_stride, (void)nq, (void)k, (void)k_stride, (void)v, (void)v_stride;
    (void)n_keys, (void)hd, (void)scale, (void)o, (void)o_stride;
}

#endif
