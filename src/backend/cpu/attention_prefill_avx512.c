/* attention_prefill_avx512: the prefill sub-tiles of cpu_attention_avx512 (attention_avx512.c)
 * over a BF16 cache: up to ATT512P_MAX_QV query vectors (rows x query heads of one kv head)
 * against the keys of their sequence, laid out like the FP32-FMA matmul tile, with the query
 * vectors across the lanes.
 *
 * Why: the general kernel keeps keys across the lanes, so every FMA of its scores and of
 * P·V takes a broadcast load of its own (a query element, a softmax weight) and each query
 * group re-widens the V rows; in a long prefill that ran at 46% of the FMA peak and was
 * load-bound (docs/BENCHMARKS.md). Here each broadcast feeds one FMA per 16 query vectors
 * (two at 17-32), the K and V rows of a chunk are widened once, and the softmax's running max
 * and sums are vertical operations across keys instead of reductions across lanes.
 *
 * Per chunk of 16 keys (key k is cache row bt[k / bs] * bs + k % bs):
 *   1. the K and V rows are widened to F32 into kf and vf, each 32-element block in pair
 *      order (16 even then 16 odd elements: a shift and a mask per 32), as the matmul does;
 *   2. scores: st[t] (a vector per 16 query vectors) = sum_d kf[t][d] * qt[d], in passes of
 *      8 keys (16 accumulators with two query vectors);
 *   3. scale, causal mask (key k is seen by the lanes whose position is >= k), online
 *      softmax per lane: new max, alpha = exp(old - new), p = exp(score - new), sums;
 *   4. P·V: acc[d] = acc[d] * alpha + sum_t p[t] * vf[t][d], in passes of 8 elements of d.
 * The tile's output is acc / sum per lane, written once at the end. Nothing is prefetched: a
 * prefill's own K and V rows were just stored and sit in cache (prefetching the next chunk
 * measured 5% slower).
 *
 * Numerics: FP32 scores, softmax and accumulation as the general kernel; only the summation
 * order and the exp polynomial's rounding differ.
 * Invariants: lanes past the tile's query vectors have position -1, so no key is valid for
 * them and they never reach o; the K rows and scores past a short chunk are zeros, so the
 * scores of absent keys are finite before the mask drops them (P·V reads only present keys); only
 * cache rows named by the sequence's block table at keys below ke are read. Scratch on the calling
 * pool thread's stack (about 98 KB). */
#include "backend/backend_impl.h"
#include "backend/cpu/attn_ops.h"
#include "util/bf16.h"

#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "backend/cpu/simd512.h"

/* CPU_ISA_AVX512 guarantees F, BW and VL (cpu_features.c). */
#define ATTP_TARGET "avx512f,avx512bw,avx512vl"
#define ATTP_FN     static __attribute__((target(ATTP_TARGET)))
#define ATTP_INLINE static inline __attribute__((always_inline, target(ATTP_TARGET)))

/* Keys per chunk (32 measured 3-6% slower) and keys per score pass / elements of d per P·V
 * pass (8: 16 accumulators with two vectors of query lanes). */
#define ATTP_KC 16
#define ATTP_KT 8

_Static_assert(ATT512P_MAX_QV == 32, "two vectors of query lanes");

struct attp_scratch {
    _Alignas(64) float qt[ATT512_MAX_HEAD_DIM][ATT512P_MAX_QV];  /* queries, transposed */
    _Alignas(64) float acc[ATT512_MAX_HEAD_DIM][ATT512P_MAX_QV]; /* unnormalized output */
    _Alignas(64) float kf[ATTP_KC][ATT512_MAX_HEAD_DIM];         /* K chunk, pair order */
    _Alignas(64) float vf[ATTP_KC][ATT512_MAX_HEAD_DIM];         /* V chunk, pair order */
    _Alignas(64) float st[ATTP_KC][ATT512P_MAX_QV];              /* scores, then weights */
};

static inline const uint16_t *attp_row(const struct tensor *t, int64_t r, int64_t c) {
    return (const uint16_t *)be_tensor_addr(t, r, c);
}

/* hd BF16 elements of a cache row -> F32 in pair order (hd a multiple of 32). */
ATTP_INLINE void attp_widen(float *d, const uint16_t *row, int32_t hd) {
    for (int32_t d0 = 0; d0 < hd; d0 += 32)
        simd512_widen_pairs(d + d0, _mm512_loadu_si512(row + d0));
}

/* Query vector j of the tile as a lane: its row and head. */
static inline void attp_qv(const struct att512p_tile *a, int j, int64_t *row, int64_t *head) {
    *row = a->r0 + j / a->ng;
    *head = a->h0 + j % a->ng;
}

/* qt[d][j] = q[row_j][head_j * hd + d] (zeros in the lanes past nq); acc zeroed. */
ATTP_FN void attp_init(const struct att512p_tile *a, struct attp_scratch *s, int nq) {
    int32_t hd = a->head_dim;
    for (int j = 0; j < ATT512P_MAX_QV; j++) {
        int64_t row, head;
        attp_qv(a, j, &row, &head);
        const void *q = j < nq ? be_tensor_addr(a->q, row, head * hd) : NULL;
        for (int32_t d = 0; d < hd; d++) {
            s->qt[d][j] = !q                      ? 0.0f
                          : a->q->dtype == BE_F32 ? ((const float *)q)[d]
                                                  : bf16_to_f32(((const uint16_t *)q)[d]);
            s->acc[d][j] = 0.0f;
        }
    }
}

/* Scores of keys [t0, t0 + ATTP_KT) into st, for NV (1 or 2) vectors of query lanes. */
ATTP_INLINE void attp_scores(struct attp_scratch *s, int t0, int32_t hd, const int NV) {
    __m512 c0[ATTP_KT], c1[ATTP_KT];
#pragma GCC unroll 8
    for (int t = 0; t < ATTP_KT; t++) c0[t] = c1[t] = _mm512_setzero_ps();
    for (int32_t d0 = 0; d0 < hd; d0 += 32) {
#pragma GCC unroll 32
        for (int i = 0; i < 32; i++) {
            __m512 q0 = _mm512_load_ps(s->qt[d0 + i]);
            __m512 q1 = NV == 2 ? _mm512_load_ps(s->qt[d0 + i] + 16) : q0;
#pragma GCC unroll 8
            for (int t = 0; t < ATTP_KT; t++) {
                __m512 k = _mm512_set1_ps(s->kf[t0 + t][d0 + SIMD512_PAIR_AT(i)]);
                c0[t] = _mm512_fmadd_ps(k, q0, c0[t]);
                if (NV == 2) c1[t] = _mm512_fmadd_ps(k, q1, c1[t]);
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < ATTP_KT; t++) {
        _mm512_store_ps(s->st[t0 + t], c0[t]);
        if (NV == 2) _mm512_store_ps(s->st[t0 + t] + 16, c1[t]);
    }
}

/* Online softmax of one vector of query lanes (v) over the chunk's nk keys from k0: st
 * becomes the weights; returns alpha, the factor of the earlier accumulators. */
ATTP_INLINE __m512 attp_softmax(struct attp_scratch *s, int v, __m512i pos, int64_t k0, int nk,
                                float scale, __m512 *mx, __m512 *sum) {
    __mmask16 valid[ATTP_KC];
    __m512 sc[ATTP_KC], cmax = _mm512_set1_ps(-INFINITY);
    for (int t = 0; t < ATTP_KC; t++) {
        valid[t] = t < nk ? _mm512_cmpge_epi32_mask(pos, _mm512_set1_epi32((int)(k0 + t))) : 0;
        sc[t] = _mm512_mul_ps(_mm512_load_ps(s->st[t] + 16 * v), _mm512_set1_ps(scale));
        cmax = _mm512_mask_max_ps(cmax, valid[t], cmax, sc[t]);
    }
    __m512 nmx = _mm512_max_ps(*mx, cmax);
    /* exp(old - new): 1 where the max held; ~1e-38 where old is -inf (it scales zeros); a
     * lane that has seen no key yet (new = -inf) gives NaN - clamped to ~1e-38 by exp_neg,
     * whose first operand is the NaN - and again only scales zeros */
    __m512 alpha = simd512_exp_neg(_mm512_sub_ps(*mx, nmx));
    __m512 psum = _mm512_setzero_ps();
    for (int t = 0; t < ATTP_KC; t++) {
        __m512 p = _mm512_maskz_mov_ps(valid[t], simd512_exp_neg(_mm512_sub_ps(sc[t], nmx)));
        _mm512_store_ps(s->st[t] + 16 * v, p);
        psum = _mm512_add_ps(psum, p);
    }
    *mx = nmx;
    *sum = _mm512_fmadd_ps(*sum, alpha, psum);
    return alpha;
}

/* acc = acc * alpha + sum over the chunk's nk keys of weight x V, in passes of ATTP_KT
 * elements of d (pair order within each 32). */
ATTP_INLINE void attp_pv(struct attp_scratch *s, int nk, int32_t hd, __m512 alpha0, __m512 alpha1,
                         const int NV) {
    for (int32_t d0 = 0; d0 < hd; d0 += 32) {
#pragma GCC unroll 4
        for (int i0 = 0; i0 < 32; i0 += ATTP_KT) {
            __m512 c0[ATTP_KT], c1[ATTP_KT];
#pragma GCC unroll 8
            for (int i = 0; i < ATTP_KT; i++) {
                c0[i] = _mm512_mul_ps(_mm512_load_ps(s->acc[d0 + i0 + i]), alpha0);
                c1[i] = NV == 2 ? _mm512_mul_ps(_mm512_load_ps(s->acc[d0 + i0 + i] + 16), alpha1)
                                : c0[i];
            }
            for (int t = 0; t < nk; t++) {
                __m512 p0 = _mm512_load_ps(s->st[t]);
                __m512 p1 = NV == 2 ? _mm512_load_ps(s->st[t] + 16) : p0;
#pragma GCC unroll 8
                for (int i = 0; i < ATTP_KT; i++) {
                    __m512 x = _mm512_set1_ps(s->vf[t][d0 + SIMD512_PAIR_AT(i0 + i)]);
                    c0[i] = _mm512_fmadd_ps(x, p0, c0[i]);
                    if (NV == 2) c1[i] = _mm512_fmadd_ps(x, p1, c1[i]);
                }
            }
#pragma GCC unroll 8
            for (int i = 0; i < ATTP_KT; i++) {
                _mm512_store_ps(s->acc[d0 + i0 + i], c0[i]);
                if (NV == 2) _mm512_store_ps(s->acc[d0 + i0 + i] + 16, c1[i]);
            }
        }
    }
}

/* acc / sum of lane j into o[row_j][head_j * hd ..], rounded once where o is BF16. */
ATTP_FN void attp_store(const struct att512p_tile *a, struct attp_scratch *s, int nq,
                        const float *sum) {
    int32_t hd = a->head_dim;
    for (int j = 0; j < nq; j++) {
        int64_t row, head;
        attp_qv(a, j, &row, &head);
        float inv = 1.0f / sum[j];
        void *o = be_tensor_addr(a->o, row, head * hd);
        for (int32_t d = 0; d < hd; d++) {
            float x = s->acc[d][j] * inv;
            if (a->o->dtype == BE_F32)
                ((float *)o)[d] = x;
            else
                ((uint16_t *)o)[d] = f32_to_bf16(x);
        }
    }
}

/* The chunk loop for NV vectors of query lanes. */
ATTP_INLINE void attp_run(const struct att512p_tile *a, struct attp_scratch *s, int nq,
                          const int NV) {
    int32_t hd = a->head_dim, bs = a->block_size;
    int64_t col = a->kvh * hd, ib = 0;
    int32_t off = 0;
    __m512 mx[2] = {_mm512_set1_ps(-INFINITY), _mm512_set1_ps(-INFINITY)};
    __m512 sum[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    __m512i pos[2];
    for (int v = 0; v < 2; v++) { /* lane j's position; -1 past nq: no key is valid there */
        _Alignas(64) int32_t p[16];
        for (int l = 0; l < 16; l++) {
            int j = 16 * v + l;
            p[l] = j < nq ? (int32_t)(a->pos0 + j / a->ng) : -1;
        }
        pos[v] = _mm512_load_si512(p);
    }
    const uint16_t *kp[ATTP_KC], *vp[ATTP_KC];
    for (int64_t k0 = 0; k0 < a->ke; k0 += ATTP_KC) {
        int nk = a->ke - k0 < ATTP_KC ? (int)(a->ke - k0) : ATTP_KC;
        for (int t = 0; t < nk; t++) {
            int64_t slot = (int64_t)a->bt[ib] * bs + off;
            kp[t] = attp_row(a->kc, slot, col);
            vp[t] = attp_row(a->vc, slot, col);
            if (++off == bs) off = 0, ++ib;
        }
        for (int t = 0; t < ATTP_KC; t++) {
            if (t < nk) {
                attp_widen(s->kf[t], kp[t], hd);
                attp_widen(s->vf[t], vp[t], hd);
            } else { /* absent keys: finite zeros, masked out by the softmax */
                for (int32_t d = 0; d < hd; d += 16)
                    _mm512_store_ps(s->kf[t] + d, _mm512_setzero_ps());
                _mm512_store_ps(s->st[t], _mm512_setzero_ps());
                _mm512_store_ps(s->st[t] + 16, _mm512_setzero_ps());
            }
        }
        for (int t0 = 0; t0 < nk; t0 += ATTP_KT) attp_scores(s, t0, hd, NV);
        __m512 al0 = attp_softmax(s, 0, pos[0], k0, nk, a->scale, &mx[0], &sum[0]);
        __m512 al1 = NV == 2 ? attp_softmax(s, 1, pos[1], k0, nk, a->scale, &mx[1], &sum[1]) : al0;
        attp_pv(s, nk, hd, al0, al1, NV);
    }
    _Alignas(64) float sums[ATT512P_MAX_QV];
    _mm512_store_ps(sums, sum[0]);
    _mm512_store_ps(sums + 16, sum[1]);
    attp_store(a, s, nq, sums);
}

ATTP_FN void attp_run1(const struct att512p_tile *a, struct attp_scratch *s, int nq) {
    attp_run(a, s, nq, 1);
}

ATTP_FN void attp_run2(const struct att512p_tile *a, struct attp_scratch *s, int nq) {
    attp_run(a, s, nq, 2);
}

void cpu_att512p_run(const struct att512p_tile *a) {
    struct attp_scratch s; /* on the calling pool thread's stack */
    int nq = a->nr * a->ng;
    attp_init(a, &s, nq);
    if (nq > 16)
        attp_run2(a, &s, nq);
    else
        attp_run1(a, &s, nq);
}

#else
void cpu_att512p_run(const struct att512p_tile *a) {
    (void)a; /* never called: cpu_attention_avx512 runs on x86 only */
}
#endif
