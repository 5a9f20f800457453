/* attention_avx512: the AVX-512 kernel of cpu_attention (attention.c) for head_dim up to
 * ATT512_MAX_HEAD_DIM: causal attention over the paged KV cache for a flattened batch of
 * prefill chunks and decode tokens, grouped-query heads.
 *
 * One work item is (tile of up to `rt` consecutive rows, tile of `kvt` consecutive kv heads,
 * head tile of up to ATT512_GT query heads of each of those kv heads). Tiles are cut from the
 * end of the flattened batch; a tile that straddles sequences is run as one sub-tile per
 * sequence. A sub-tile holds nq = kv heads x rows x heads query vectors ("qv", index
 * j = (kv * rows + row) * heads + head), loaded once as F32.
 *
 * kvt is 1 in prefill. In decode (fewer than two rows per sequence) a tile takes as many kv
 * heads as fit (kvt x heads <= ATT512_MAX_QV, the tile's span of a row within
 * ATT512_PF_ROW_BYTES, and enough work left for every thread: att512_kv_tile), so each chunk reads
 * one contiguous span of every cache row instead of each kv head's slice in a separate item. Decode
 * reads the cache once, cold, from memory: with whole rows a batch-32 decode call ran 1.27x faster
 * (docs/BENCHMARKS.md), the reads being sequential within each block instead of half-row slices
 * interleaved with another item's.
 *
 * Per chunk of 16 keys (key k is cache row bt[k / bs] * bs + k % bs, so any block size works)
 * and per kv head of the tile:
 *   1. the K rows are widened to F32 and transposed (16x16 in registers) into kt[d][16], so a
 *      score vector of 16 keys is sum_d q[j][d] * kt[d]: FMAs with a broadcast q scalar, no
 *      horizontal sums (BF16 rows are transposed as 32-bit pairs first, then widened);
 *   2. for each group of up to ATT512_QB qv (the accumulators stay in registers): scores,
 *      scale, causal mask (lanes past the qv's position or past the chunk are dropped), online
 *      softmax (running max per qv; the sum is kept lane-wise and reduced at the end; exp
 *      vectorized), then P·V: acc[j][d..d+16) += p[j][t] * V[t][d..d+16) with the group's
 *      accumulators for 16-column slices in registers (2-4 slices when the group is small,
 *      see ATT512_CHAINS) while the chunk's V rows stream past.
 * Rows whose position lies before the chunk (the first rows of a tile, last chunk only) are
 * skipped, so no key is ever scored for a row that may not see it. The next chunk's K and V
 * rows are prefetched while this one computes (decode reads the cache once, cold); a tile
 * with one group per kv head (decode) spreads those prefetches over the groups' score loops,
 * a row at a time, instead of issuing them at once, which kept the FMAs waiting on full line
 * fill buffers.
 * Small batches get shorter tiles so that each thread still has several items.
 *
 * A prefill sub-tile of more than ATT512_QB query vectors (several groups per kv head) over a
 * BF16 cache with head_dim a multiple of 32 runs cpu_att512p_run instead
 * (attention_prefill_avx512.c: query vectors across the lanes; 1.13-1.18x faster than this
 * kernel on the 0.5b's long prompts); decode, split-K and the other cases stay here.
 *
 * Split-K ("flash-decoding"): when even one-row tiles leave fewer than ATT512_ITEMS_PER_THREAD
 * items per thread (decode of a few sequences), each item's keys are cut into splits of at
 * least ATT512_SPLIT_MIN_KEYS, handed out as separate units. A split writes its partial
 * (max, sum, unnormalized acc per qv) to the backend's split scratch (struct be_cpu
 * attn_scratch, sized once); the last unit of the item to finish (atomic counter) merges the
 * partials with the log-sum-exp rule and writes o.
 *
 * Numerics: FP32 scores, softmax and accumulation like the portable path; only the summation
 * order, the exp polynomial (about 1 ulp) and, under split-K, the FP32 merge differ, well
 * within 1e-5 relative.
 *
 * Invariants:
 *   1. each output (row, head) slice is written by exactly one thread, once (a split item's by
 *      its last finisher, after every partial is released to it);
 *   2. items are handed out from an atomic counter, last tiles first: in a prefill they have
 *      the longest contexts, so the threads finish together;
 *   3. only cache rows reachable through the block table of the row's own sequence, at key
 *      indices <= the largest position in the sub-tile, are read; keys past a row's own
 *      position get weight exactly 0;
 *   4. per-thread scratch is one struct att512_scratch on the worker's stack (about 88 KB),
 *      split partials live in the backend's preallocated split scratch (one slot per unit, no
 *      two units share one); nothing is allocated.
 * Owner thread calls; work runs on the pool. */
#include "backend/cpu/attn_ops.h"
#include "backend/cpu/cpu_ops.h"
#include "util/bf16.h"

#include <math.h>
#include <stdbool.h>
#include <stdatomic.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "backend/cpu/simd512.h"

/* CPU_ISA_AVX512 guarantees F, BW and VL (cpu_features.c); BW gives masked 16-bit loads. */
#define ATT512_TARGET "avx512f,avx512bw,avx512vl"
#define ATT512_FN     static __attribute__((target(ATT512_TARGET)))
#define ATT512_INLINE static inline __attribute__((always_inline, target(ATT512_TARGET)))

#define ATT512_KC 16 /* keys per chunk: one zmm of scores */
/* Query heads per head tile, as attention.c's ATT_GT: the real GQA groups (5, 7, 8) fit. */
#define ATT512_GT 8
/* Query vectors per register group: 8 accumulators plus operands fit the 32 zmm registers,
 * and 8 independent FMA chains cover the FMA latency. */
#define ATT512_QB 8
/* Query vectors per tile and rows per tile: more rows share each transposed chunk, fewer
 * keep enough items for the threads and bound the scratch (q and acc are qv x head_dim). */
#define ATT512_MAX_QV   32
#define ATT512_MAX_ROWS 8
_Static_assert(ATT512_MAX_QV <= ATT512P_MAX_QV, "a prefill tile fits cpu_att512p_run");
/* Bytes of one cache row a tile may span (all its kv heads): the most the score loops
 * prefetch at one step (a row of K and one of V). */
#define ATT512_PF_ROW_BYTES (ATT512_MAX_HEAD_DIM * 4)
/* Items per pool thread below which tiles get fewer rows: a tile of decode rows (one per
 * sequence) runs them one after another, and the atomic hand-out balances only whole items. */
#define ATT512_ITEMS_PER_THREAD 4
/* Split-K: fewest keys per split (below that the merge and the extra hand-outs cost about as
 * much as the keys), and the most items one call may split (bounds the counters, which live
 * in the context on the caller's stack). */
#define ATT512_SPLIT_MIN_KEYS  256
#define ATT512_SPLIT_MAX_ITEMS 256

struct att512_scratch {
    _Alignas(64) float kt[ATT512_MAX_HEAD_DIM][ATT512_KC];      /* K chunk, transposed */
    _Alignas(64) float q[ATT512_MAX_QV][ATT512_MAX_HEAD_DIM];   /* (qv, head_dim) */
    _Alignas(64) float acc[ATT512_MAX_QV][ATT512_MAX_HEAD_DIM]; /* unnormalized output */
    _Alignas(64) float p[ATT512_MAX_QV][ATT512_KC];             /* weights of the chunk */
    _Alignas(64) float lsum[ATT512_MAX_QV][ATT512_KC];          /* softmax sums, per lane */
    float mx[ATT512_MAX_QV];                                    /* running max per qv */
    int64_t pos[ATT512_MAX_QV];                                 /* sequence position per qv */
    const void *vrow[ATT512_KC]; /* V row t of the chunk in the cache (F32 or BF16) */
    /* The next chunk's K and V rows when the tile has one group per kv head (decode): the
     * groups' score loops prefetch one row (pf_row_bytes of K and of V) every pf_every head_dim
     * steps, until row pf_next reaches pf_rows (none pending); pf_wait: steps to the next. */
    const char *pf_k[ATT512_KC], *pf_v[ATT512_KC];
    size_t pf_row_bytes;
    int pf_rows, pf_next, pf_every, pf_wait;
    bool v_bf16; /* widened as the P·V loop reads them: each once per group */
};

struct att512_ctx {
    struct tensor *o;
    const struct tensor *q, *kc, *vc;
    const struct attn_meta *m;
    int64_t n_rows, n_kv, group;
    int64_t gt, n_htiles;   /* heads per head tile (balanced), head tiles per kv head */
    int64_t kvt, n_kvtiles; /* kv heads per kv tile (divides n_kv), kv tiles */
    int64_t rt, n_rtiles;   /* rows per row tile, row tiles */
    atomic_llong next;
    /* Split-K (decode at long contexts, few items): item it runs as units
     * [ustart[it], ustart[it + 1]) of the atomic hand-out, each over its own key range; the
     * partials go to part (one stride of floats per unit) and the last unit of an item to
     * finish merges them (done[it] counts finished units). n_split_items 0: no split. */
    int64_t n_split_items, n_units;
    int32_t ustart[ATT512_SPLIT_MAX_ITEMS + 1];
    atomic_int done[ATT512_SPLIT_MAX_ITEMS];
    float *part;
    size_t part_stride; /* floats per unit: nq max, sum, then nq x head_dim acc */
};

/* What one sub-tile works on: rows [r0, r0 + nr) of one sequence, kv heads kvh .. kvh + nkv - 1,
 * and of kv head kvh + i the query heads h0 + i * group .. + ng - 1. */
struct att512_tile {
    int64_t r0, kvh, h0, group;
    int nr, nkv, ng, nq;
    const int32_t *bt; /* the sequence's block table */
};

/* The row and query head of qv j of a sub-tile (j = (kv * nr + row) * ng + head). */
static inline void att512_qv(const struct att512_tile *tl, int j, int64_t *row, int64_t *head) {
    int per_kv = tl->nr * tl->ng, kv = j / per_kv, r = j % per_kv;
    *row = tl->r0 + r / tl->ng;
    *head = tl->h0 + kv * tl->group + r % tl->ng;
}

static inline const void *att512_at(const struct tensor *t, int64_t r, int64_t c) {
    size_t es = t->dtype == BE_F32 ? 4 : 2;
    return (const char *)t->buf->base + t->offset_bytes +
           ((size_t)r * (size_t)t->row_stride + (size_t)c) * es;
}

static inline __mmask16 att512_mask(int32_t n) { /* lanes [0, n), n in [0, 16] */
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

/* Elements [d0, d0 + 16) of an F32 or BF16 row as F32; lanes outside m read as 0 (the head_dim
 * tail: it is even, so a BF16 tail is whole 16-bit elements). */
ATT512_INLINE __m512 att512_load(const void *row, enum be_dtype dt, int32_t d0, __mmask16 m) {
    if (dt == BE_F32) return _mm512_maskz_loadu_ps(m, (const float *)row + d0);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)row + d0);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* att512_load_kt for a BF16 cache: the rows are transposed as 32-bit pairs of elements
 * (d, d + 1), 32 columns per transpose, and widened after it (the low half shifted up, the
 * high half masked): half the shuffles and no per-element conversion. */
ATT512_INLINE void att512_load_kt_bf16(struct att512_scratch *s, const void *const *kp, int32_t nk,
                                       int32_t hd) {
    for (int32_t d0 = 0; d0 < hd; d0 += 32) {
        __mmask16 m = att512_mask((hd - d0) / 2); /* head_dim is even: whole pairs */
        int np = (hd - d0) / 2 < 16 ? (hd - d0) / 2 : 16;
        __m512 r[16];
#pragma GCC unroll 16
        for (int t = 0; t < 16; t++)
            r[t] =
                t < nk
                    ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi32(m, (const uint16_t *)kp[t] + d0))
                    : _mm512_setzero_ps();
        simd512_transpose16(r);
        __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
#pragma GCC unroll 16
        for (int i = 0; i < np; i++) {
            __m512i x = _mm512_castps_si512(r[i]);
            _mm512_store_ps(s->kt[d0 + 2 * i], _mm512_castsi512_ps(_mm512_slli_epi32(x, 16)));
            _mm512_store_ps(s->kt[d0 + 2 * i + 1], _mm512_castsi512_ps(_mm512_and_si512(x, hi)));
        }
    }
}

/* kt[d][t] = K[key t][d] as F32 for t < nk (lanes t >= nk are 0). */
ATT512_FN void att512_load_kt(struct att512_scratch *s, const void *const *kp, int32_t nk,
                              enum be_dtype dt, int32_t hd) {
    if (dt == BE_BF16) {
        att512_load_kt_bf16(s, kp, nk, hd);
        return;
    }
    for (int32_t d0 = 0; d0 < hd; d0 += 16) {
        __mmask16 m = att512_mask(hd - d0);
        __m512 r[16];
#pragma GCC unroll 16
        for (int t = 0; t < 16; t++)
            r[t] = t < nk ? att512_load(kp[t], dt, d0, m) : _mm512_setzero_ps();
        simd512_transpose16(r);
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) _mm512_store_ps(s->kt[d0 + i], r[i]);
    }
}

/* Independent FMA chains per query vector in att512_group: a group of N < 8 query vectors
 * (decode with few query heads per kv head, e.g. 3 in the demo preset) would otherwise run N
 * chains, each FMA waiting on the previous one's latency. The scores sum P partial dot
 * products (d split by d mod P) and P.V runs P 16-column slices at once, so a group keeps
 * N * P (8 to 12) chains in flight. */
#define ATT512_CHAINS(N) ((N) >= 8 ? 1 : (N) >= 4 ? 2 : 4)

static inline __mmask16 att512_mask_signed(int32_t n) { /* lanes [0, n), none for n <= 0 */
    return n <= 0 ? (__mmask16)0 : att512_mask(n);
}

/* One group of N (a constant at every call site) query vectors j0 .. j0+N-1 against the
 * chunk of nk keys starting at key k0; VB: V is BF16; PF: the score loop prefetches rows of
 * the next chunk (s->pf_*). */
ATT512_INLINE void att512_group(struct att512_scratch *s, int j0, const int N, const bool VB,
                                const bool PF, int32_t hd, int64_t k0, int32_t nk, float scale) {
    const int P = ATT512_CHAINS(N);
    __m512 a[ATT512_QB * 4]; /* chain p of qv i: a[i * P + p] */
    int pf_next = s->pf_next, pf_wait = s->pf_wait;
#pragma GCC unroll 16
    for (int i = 0; i < N * P; i++) a[i] = _mm512_setzero_ps();
    int32_t d = 0;
    for (; d + P <= hd; d += P) {
        if (PF && (pf_wait -= P) <= 0 && pf_next < s->pf_rows) {
            const char *k = s->pf_k[pf_next], *v = s->pf_v[pf_next++];
            for (size_t b = 0; b < s->pf_row_bytes; b += 64) {
                __builtin_prefetch(k + b);
                __builtin_prefetch(v + b);
            }
            pf_wait += s->pf_every;
        }
#pragma GCC unroll 4
        for (int p = 0; p < P; p++) {
            __m512 kd = _mm512_load_ps(s->kt[d + p]);
#pragma GCC unroll 8
            for (int i = 0; i < N; i++)
                a[i * P + p] =
                    _mm512_fmadd_ps(_mm512_set1_ps(s->q[j0 + i][d + p]), kd, a[i * P + p]);
        }
    }
    for (; d < hd; d++) { /* head_dim not a multiple of P */
        __m512 kd = _mm512_load_ps(s->kt[d]);
#pragma GCC unroll 8
        for (int i = 0; i < N; i++)
            a[i * P] = _mm512_fmadd_ps(_mm512_set1_ps(s->q[j0 + i][d]), kd, a[i * P]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < N; i++)
#pragma GCC unroll 4
        for (int p = 1; p < P; p++) a[i * P] = _mm512_add_ps(a[i * P], a[i * P + p]);
    /* Scale and mask; the new running maxima; then the rescale factors of all N at once. */
    __mmask16 valid[ATT512_QB];
    _Alignas(64) float old[16], cur[16], alpha[16];
#pragma GCC unroll 8
    for (int i = 0; i < N; i++) {
        int64_t lim = s->pos[j0 + i] - k0 + 1; /* >= 1: earlier rows are in no group */
        valid[i] = att512_mask(lim < nk ? (int32_t)lim : nk);
        a[i * P] = _mm512_mul_ps(a[i * P], _mm512_set1_ps(scale));
        float cmax = _mm512_mask_reduce_max_ps(valid[i], a[i * P]);
        old[i] = s->mx[j0 + i];
        cur[i] = s->mx[j0 + i] = cmax > old[i] ? cmax : old[i];
    }
    s->pf_next = pf_next, s->pf_wait = pf_wait;
    __mmask16 mn = att512_mask(N);
    /* exp(old - new): 1 where the max held; ~1e-38 at the first chunk (old = -inf), where it
     * only scales zeros */
    _mm512_store_ps(alpha, simd512_exp_neg(_mm512_sub_ps(_mm512_maskz_load_ps(mn, old),
                                                         _mm512_maskz_load_ps(mn, cur))));
#pragma GCC unroll 8
    for (int i = 0; i < N; i++) {
        int j = j0 + i;
        __m512 p = _mm512_maskz_mov_ps(
            valid[i], simd512_exp_neg(_mm512_sub_ps(a[i * P], _mm512_set1_ps(cur[i]))));
        _mm512_store_ps(s->p[j], p);
        _mm512_store_ps(s->lsum[j],
                        _mm512_fmadd_ps(_mm512_load_ps(s->lsum[j]), _mm512_set1_ps(alpha[i]), p));
    }
    for (int32_t d0 = 0; d0 < hd; d0 += 16 * P) {
        __mmask16 m[4];
#pragma GCC unroll 4
        for (int p = 0; p < P; p++) m[p] = att512_mask_signed(hd - d0 - 16 * p);
#pragma GCC unroll 8
        for (int i = 0; i < N; i++)
#pragma GCC unroll 4
            for (int p = 0; p < P; p++)
                a[i * P + p] =
                    _mm512_mul_ps(_mm512_maskz_loadu_ps(m[p], s->acc[j0 + i] + d0 + 16 * p),
                                  _mm512_set1_ps(alpha[i]));
        for (int32_t t = 0; t < nk; t++) {
#pragma GCC unroll 4
            for (int p = 0; p < P; p++) {
                __m512 v = att512_load(s->vrow[t], VB ? BE_BF16 : BE_F32, d0 + 16 * p, m[p]);
#pragma GCC unroll 8
                for (int i = 0; i < N; i++)
                    a[i * P + p] =
                        _mm512_fmadd_ps(_mm512_set1_ps(s->p[j0 + i][t]), v, a[i * P + p]);
            }
        }
#pragma GCC unroll 8
        for (int i = 0; i < N; i++)
#pragma GCC unroll 4
            for (int p = 0; p < P; p++)
                _mm512_mask_storeu_ps(s->acc[j0 + i] + d0 + 16 * p, m[p], a[i * P + p]);
    }
}

#define ATT512_GROUP_CASE(n)                                                                       \
    case n:                                                                                        \
        if (s->v_bf16 && s->pf_next < s->pf_rows)                                                  \
            att512_group(s, j0, n, true, true, hd, k0, nk, scale);                                 \
        else if (s->v_bf16)                                                                        \
            att512_group(s, j0, n, true, false, hd, k0, nk, scale);                                \
        else if (s->pf_next < s->pf_rows)                                                          \
            att512_group(s, j0, n, false, true, hd, k0, nk, scale);                                \
        else                                                                                       \
            att512_group(s, j0, n, false, false, hd, k0, nk, scale);                               \
        break

/* att512_group with N, the V dtype and whether it prefetches as constants, so each instance keeps
 * its accumulators in registers and its inner loops branch-free. n in [1, ATT512_QB]. */
ATT512_FN void att512_group_n(struct att512_scratch *s, int j0, int n, int32_t hd, int64_t k0,
                              int32_t nk, float scale) {
    switch (n) {
        ATT512_GROUP_CASE(1);
        ATT512_GROUP_CASE(2);
        ATT512_GROUP_CASE(3);
        ATT512_GROUP_CASE(4);
        ATT512_GROUP_CASE(5);
        ATT512_GROUP_CASE(6);
        ATT512_GROUP_CASE(7);
        default:
            ATT512_GROUP_CASE(ATT512_QB);
    }
}

/* Query vectors of the sub-tile as F32, accumulators and softmax state reset. */
ATT512_FN void att512_tile_init(const struct att512_ctx *c, struct att512_scratch *s,
                                const struct att512_tile *tl, int64_t pos0) {
    int32_t hd = c->m->head_dim;
    for (int j = 0; j < tl->nq; j++) {
        int64_t row, h;
        att512_qv(tl, j, &row, &h);
        const void *qr = att512_at(c->q, row, h * hd);
        for (int32_t d0 = 0; d0 < hd; d0 += 16) {
            __mmask16 m = att512_mask(hd - d0);
            _mm512_mask_storeu_ps(s->q[j] + d0, m, att512_load(qr, c->q->dtype, d0, m));
            _mm512_mask_storeu_ps(s->acc[j] + d0, m, _mm512_setzero_ps());
        }
        _mm512_store_ps(s->lsum[j], _mm512_setzero_ps());
        s->mx[j] = -INFINITY;
        s->pos[j] = pos0 + (row - tl->r0);
    }
}

/* acc / sum into o, rounded once where o is BF16. */
ATT512_FN void att512_tile_store(const struct att512_ctx *c, struct att512_scratch *s,
                                 const struct att512_tile *tl) {
    int32_t hd = c->m->head_dim;
    for (int j = 0; j < tl->nq; j++) {
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(_mm512_load_ps(s->lsum[j])));
        int64_t row, h;
        att512_qv(tl, j, &row, &h);
        void *orow = (void *)att512_at(c->o, row, h * hd);
        for (int32_t d0 = 0; d0 < hd; d0 += 16) {
            __mmask16 m = att512_mask(hd - d0);
            __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s->acc[j] + d0), inv);
            if (c->o->dtype == BE_F32)
                _mm512_mask_storeu_ps((float *)orow + d0, m, x);
            else
                _mm256_mask_storeu_epi16((uint16_t *)orow + d0, m,
                                         _mm512_cvtepi32_epi16(simd512_to_bf16(x)));
        }
    }
}

/* Cache rows of keys [k0, k0 + nk) of the sub-tile's sequence: K row addresses into kp, V into
 * vp. (*ib, *off) is key k0's block-table index and offset, advanced past the chunk (no
 * division per key). */
static void att512_chunk_rows(const struct att512_ctx *c, const struct att512_tile *tl, int32_t nk,
                              int64_t *ib, int32_t *off, const void **kp, const void **vp) {
    int32_t bs = c->m->block_size;
    int64_t col = tl->kvh * c->m->head_dim;
    for (int32_t t = 0; t < nk; t++) {
        int64_t slot = (int64_t)tl->bt[*ib] * bs + *off;
        kp[t] = att512_at(c->kc, slot, col);
        vp[t] = att512_at(c->vc, slot, col);
        if (++*off == bs) *off = 0, ++*ib;
    }
}

/* Asks for the next chunk's K and V rows while this one computes: in decode the cache is
 * read once, cold, from blocks scattered over the pool. */
static void att512_prefetch(const void *const *kp, const void *const *vp, int32_t nk,
                            size_t row_bytes) {
    for (int32_t t = 0; t < nk; t++)
        for (size_t b = 0; b < row_bytes; b += 64) {
            __builtin_prefetch((const char *)kp[t] + b);
            __builtin_prefetch((const char *)vp[t] + b);
        }
}

/* Sets up the score loops' prefetch of the next chunk's nk K and V rows (row_bytes of each,
 * the tile's span of a row) over `steps` head_dim steps: one row at a time, evenly spread.
 * Issued at once they fill the line fill buffers and the FMAs queue behind them; a list of
 * every line, issued a few per step, cost more instructions than the prefetches themselves. */
static void att512_prefetch_rows(struct att512_scratch *s, const void *const *kp,
                                 const void *const *vp, int32_t nk, size_t row_bytes,
                                 int32_t steps) {
    for (int32_t t = 0; t < nk; t++) s->pf_k[t] = kp[t], s->pf_v[t] = vp[t];
    s->pf_rows = nk, s->pf_next = 0, s->pf_row_bytes = row_bytes;
    s->pf_every = steps / nk > 1 ? steps / nk : 1;
    s->pf_wait = s->pf_every;
}

/* Split-K partial of a sub-tile: max and sum per qv, then the unnormalized accumulators. */
ATT512_FN void att512_tile_part(const struct att512_ctx *c, struct att512_scratch *s,
                                const struct att512_tile *tl, float *part) {
    int32_t hd = c->m->head_dim;
    for (int j = 0; j < tl->nq; j++) {
        part[j] = s->mx[j];
        part[tl->nq + j] = _mm512_reduce_add_ps(_mm512_load_ps(s->lsum[j]));
        float *a = part + 2 * tl->nq + (size_t)j * (size_t)hd;
        for (int32_t d0 = 0; d0 < hd; d0 += 16) {
            __mmask16 m = att512_mask(hd - d0);
            _mm512_mask_storeu_ps(a + d0, m, _mm512_maskz_loadu_ps(m, s->acc[j] + d0));
        }
    }
}

/* One sub-tile over keys [kb, ke) (kb a multiple of ATT512_KC; ke at most the last row's
 * position + 1): into o when part is NULL, else as a split-K partial (one row only). */
static void att512_tile_run(const struct att512_ctx *c, struct att512_scratch *s,
                            const struct att512_tile *tl, int64_t pos0, int64_t kb, int64_t ke,
                            float *part, const struct att512_tile *after, int64_t after_keys) {
    int32_t hd = c->m->head_dim, bs = c->m->block_size;
    if (!part && kb == 0 && tl->nkv == 1 && tl->nq > ATT512_QB && c->kc->dtype == BE_BF16 &&
        hd % 32 == 0) { /* a prefill tile of several query groups: query vectors in lanes */
        struct att512p_tile pt = {.q = c->q,
                                  .kc = c->kc,
                                  .vc = c->vc,
                                  .o = c->o,
                                  .bt = tl->bt,
                                  .block_size = bs,
                                  .head_dim = hd,
                                  .scale = c->m->scale,
                                  .r0 = tl->r0,
                                  .pos0 = pos0,
                                  .kvh = tl->kvh,
                                  .h0 = tl->h0,
                                  .ke = ke,
                                  .nr = tl->nr,
                                  .ng = tl->ng};
        cpu_att512p_run(&pt);
        return;
    }
    int64_t n_keys = ke, ib = kb / bs;
    int32_t off = (int32_t)(kb % bs), cur = 0;
    size_t es = c->kc->dtype == BE_F32 ? 4 : 2, head_bytes = (size_t)hd * es;
    int per_kv = tl->nr * tl->ng;
    const void *kp[2][ATT512_KC], *vp[2][ATT512_KC]; /* this chunk's rows and the next's */
    const void *kh[ATT512_KC];                       /* this chunk's rows, one kv head */
    att512_tile_init(c, s, tl, pos0);
    s->pf_rows = s->pf_next = 0;
    s->v_bf16 = c->vc->dtype == BE_BF16;
    att512_chunk_rows(c, tl, n_keys - kb < ATT512_KC ? (int32_t)(n_keys - kb) : ATT512_KC, &ib,
                      &off, kp[0], vp[0]);
    for (int64_t k0 = kb; k0 < n_keys; k0 += ATT512_KC, cur ^= 1) {
        int32_t nk = (int32_t)(n_keys - k0 < ATT512_KC ? n_keys - k0 : ATT512_KC);
        int64_t left_keys = n_keys - k0 - nk;
        if (left_keys > 0) {
            int32_t nn = left_keys < ATT512_KC ? (int32_t)left_keys : ATT512_KC;
            att512_chunk_rows(c, tl, nn, &ib, &off, kp[cur ^ 1], vp[cur ^ 1]);
            size_t row_bytes = head_bytes * (size_t)tl->nkv; /* the tile's span of a row */
            if (per_kv <= ATT512_QB) /* a group per kv head (decode): spread over them */
                att512_prefetch_rows(s, kp[cur ^ 1], vp[cur ^ 1], nn, row_bytes, hd * tl->nkv);
            else /* several groups (prefill): compute-bound, so all at once is as good */
                att512_prefetch(kp[cur ^ 1], vp[cur ^ 1], nn, row_bytes);
        } else if (after && per_kv <= ATT512_QB) { /* decode: the next sub-tile's first keys */
            int64_t ib0 = 0;
            int32_t off0 = 0, nn = after_keys < ATT512_KC ? (int32_t)after_keys : ATT512_KC;
            att512_chunk_rows(c, after, nn, &ib0, &off0, kp[cur ^ 1], vp[cur ^ 1]);
            att512_prefetch_rows(s, kp[cur ^ 1], vp[cur ^ 1], nn, head_bytes * (size_t)after->nkv,
                                 hd * tl->nkv);
        }
        /* rows positioned before k0 see none of these keys: start at the first that does */
        int64_t skip = k0 > pos0 ? k0 - pos0 : 0;
        for (int kv = 0; kv < tl->nkv; kv++) {
            size_t at = (size_t)kv * head_bytes;
            for (int32_t t = 0; t < nk; t++) {
                kh[t] = (const char *)kp[cur][t] + at;
                s->vrow[t] = (const char *)vp[cur][t] + at;
            }
            att512_load_kt(s, kh, nk, c->kc->dtype, hd);
            int j = kv * per_kv + (int)skip * tl->ng, left = (kv + 1) * per_kv - j;
            int n_groups = (left + ATT512_QB - 1) / ATT512_QB;
            for (int g = 0; g < n_groups; g++) { /* balanced group sizes, at most ATT512_QB */
                int n = (left + (n_groups - g) - 1) / (n_groups - g);
                att512_group_n(s, j, n, hd, k0, nk, c->m->scale);
                j += n, left -= n;
            }
        }
    }
    if (part)
        att512_tile_part(c, s, tl, part);
    else
        att512_tile_store(c, s, tl);
}

/* The heads of head index r of a row tile (kv tile r / n_htiles, head tile r % n_htiles). */
static void att512_heads(const struct att512_ctx *c, int64_t r, struct att512_tile *tl) {
    int64_t g0 = (r % c->n_htiles) * c->gt;
    tl->kvh = r / c->n_htiles * c->kvt;
    tl->nkv = (int)c->kvt;
    tl->group = c->group;
    tl->h0 = tl->kvh * c->group + g0;
    tl->ng = (int)(c->group - g0 < c->gt ? c->group - g0 : c->gt);
}

/* The rows of sequence sq in [lo, hi) (hi the end of the part of the tile not yet run) as
 * tl's rows; returns the position of its first row. tl's heads are kept. */
static int64_t att512_sub_tile(const struct att512_ctx *c, int32_t sq, int64_t hi, int64_t lo,
                               struct att512_tile *tl) {
    const struct attn_meta *m = c->m;
    int64_t r0 = m->query_start[sq] > lo ? m->query_start[sq] : lo;
    tl->r0 = r0, tl->nr = (int)(hi - r0), tl->nq = tl->nkv * tl->nr * tl->ng;
    tl->bt = m->block_tables + (size_t)sq * (size_t)m->max_blocks_per_seq;
    return (int64_t)m->n_computed[sq] + (r0 - m->query_start[sq]);
}

/* Item `it`: row tile it / per_tile counted from the end of the batch, then kv tile, then
 * head tile; split into one sub-tile per sequence it covers, run last sequence first, each
 * prefetching the next one's first keys during its last chunk. */
static void att512_item(const struct att512_ctx *c, struct att512_scratch *s, int64_t it) {
    const struct attn_meta *m = c->m;
    int64_t per_tile = c->n_kvtiles * c->n_htiles, ti = it / per_tile, r = it % per_tile;
    int64_t hi = c->n_rows - ti * c->rt, lo = hi - c->rt > 0 ? hi - c->rt : 0;
    struct att512_tile tl;
    att512_heads(c, r, &tl);
    struct att512_tile nx = tl;
    int32_t sq = cpu_last_le(m->query_start, m->n_seqs, hi - 1);
    int64_t pos0 = att512_sub_tile(c, sq, hi, lo, &tl), nx_pos0 = 0;
    for (;; sq--) {
        bool more = tl.r0 > lo; /* sequence sq - 1 has rows in the tile too */
        if (more) nx_pos0 = att512_sub_tile(c, sq - 1, tl.r0, lo, &nx);
        att512_tile_run(c, s, &tl, pos0, 0, pos0 + tl.nr, NULL, more ? &nx : NULL, nx_pos0 + nx.nr);
        if (!more) return;
        tl = nx, pos0 = nx_pos0;
    }
}

/* Split mode (rt == 1): the one-row sub-tile of item it, and the row's position. */
static void att512_row_tile(const struct att512_ctx *c, int64_t it, struct att512_tile *tl,
                            int64_t *pos) {
    const struct attn_meta *m = c->m;
    int64_t per_tile = c->n_kvtiles * c->n_htiles, row = c->n_rows - 1 - it / per_tile;
    int32_t sq = cpu_last_le(m->query_start, m->n_seqs, row);
    att512_heads(c, it % per_tile, tl);
    tl->r0 = row, tl->nr = 1, tl->nq = tl->nkv * tl->ng;
    tl->bt = m->block_tables + (size_t)sq * (size_t)m->max_blocks_per_seq;
    *pos = (int64_t)m->n_computed[sq] + (row - m->query_start[sq]);
}

/* The log-sum-exp merge of an item's n_sp partials (unit order) into o: each partial is
 * rescaled from its own max to the common one, exactly as the online softmax rescales. */
ATT512_FN void att512_merge(const struct att512_ctx *c, struct att512_scratch *s,
                            const struct att512_tile *tl, const float *part0, int n_sp) {
    int32_t hd = c->m->head_dim, nq = tl->nq;
    for (int j = 0; j < nq; j++) {
        float mx = -INFINITY, sum = 0.0f;
        for (int u = 0; u < n_sp; u++) {
            float x = part0[(size_t)u * c->part_stride + (size_t)j];
            mx = x > mx ? x : mx;
        }
        for (int32_t d0 = 0; d0 < hd; d0 += 16)
            _mm512_mask_storeu_ps(s->acc[j] + d0, att512_mask(hd - d0), _mm512_setzero_ps());
        for (int u = 0; u < n_sp; u++) {
            const float *p = part0 + (size_t)u * c->part_stride;
            float w = expf(p[j] - mx); /* every split saw at least one key: p[j] is finite */
            const float *a = p + 2 * nq + (size_t)j * (size_t)hd;
            sum += w * p[nq + j];
            for (int32_t d0 = 0; d0 < hd; d0 += 16) {
                __mmask16 m = att512_mask(hd - d0);
                __m512 x = _mm512_maskz_loadu_ps(m, s->acc[j] + d0);
                x = _mm512_fmadd_ps(_mm512_set1_ps(w), _mm512_maskz_loadu_ps(m, a + d0), x);
                _mm512_mask_storeu_ps(s->acc[j] + d0, m, x);
            }
        }
        _mm512_store_ps(s->lsum[j], _mm512_maskz_mov_ps(1, _mm512_set1_ps(sum)));
    }
    att512_tile_store(c, s, tl);
}

/* Split-mode unit u: chunks [si * n_ch / n_sp, (si + 1) * n_ch / n_sp) of its item's keys
 * (each split at least one chunk, since n_sp <= n_ch); the last to finish merges. */
static void att512_unit(struct att512_ctx *c, struct att512_scratch *s, int64_t u) {
    int32_t lo = cpu_last_le(c->ustart, (int32_t)c->n_split_items, u); /* u's item */
    int n_sp = c->ustart[lo + 1] - c->ustart[lo];
    if (n_sp == 1) {
        att512_item(c, s, lo);
        return;
    }
    struct att512_tile tl;
    int64_t pos, si = u - c->ustart[lo];
    att512_row_tile(c, lo, &tl, &pos);
    int64_t n_ch = (pos + ATT512_KC) / ATT512_KC; /* chunks of keys 0 .. pos */
    int64_t kb = si * n_ch / n_sp * ATT512_KC, ke = (si + 1) * n_ch / n_sp * ATT512_KC;
    att512_tile_run(c, s, &tl, pos, kb, ke < pos + 1 ? ke : pos + 1,
                    c->part + (size_t)u * c->part_stride, NULL, 0);
    /* release our partial; the last finisher acquires everyone's */
    if (atomic_fetch_add_explicit(&c->done[lo], 1, memory_order_acq_rel) == n_sp - 1)
        att512_merge(c, s, &tl, c->part + (size_t)c->ustart[lo] * c->part_stride, n_sp);
}

static void att512_worker(void *arg, int i, int n_threads) {
    (void)i, (void)n_threads;
    struct att512_ctx *c = arg;
    struct att512_scratch s; /* on this thread's stack: invariant 4 */
    int64_t n = c->n_split_items ? c->n_units : c->n_rtiles * c->n_kvtiles * c->n_htiles;
    for (;;) {
        int64_t it = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (it >= n) break;
        if (c->n_split_items)
            att512_unit(c, &s, it);
        else
            att512_item(c, &s, it);
    }
}

/* Split-K plan for calls of one-row items that leave threads idle (fewer than `want`): keys
 * are cut into splits of `chunk` keys (a multiple of ATT512_KC, at least
 * ATT512_SPLIT_MIN_KEYS) sized so the call has about `want` units; the chunk doubles until
 * the partials fit the backend's split scratch. Leaves n_split_items 0 when nothing splits. */
static void att512_plan_split(struct att512_ctx *c, const struct be_cpu *cb, int64_t want) {
    int64_t n_items = c->n_rtiles * c->n_kvtiles * c->n_htiles, total = 0, max_keys = 0;
    c->part_stride = ((size_t)(c->kvt * c->gt) * (size_t)(c->m->head_dim + 2) + 15) & ~(size_t)15;
    int64_t max_units = (int64_t)(cb->attn_scratch_bytes / (c->part_stride * sizeof(float)));
    if (c->rt != 1 || n_items >= want || n_items > ATT512_SPLIT_MAX_ITEMS || n_items > max_units)
        return;
    for (int64_t it = 0; it < n_items; it++) {
        struct att512_tile tl;
        int64_t pos;
        att512_row_tile(c, it, &tl, &pos);
        total += pos + 1;
        max_keys = pos + 1 > max_keys ? pos + 1 : max_keys;
    }
    int64_t chunk = ((total + want - 1) / want + ATT512_KC - 1) / ATT512_KC * ATT512_KC, units;
    if (chunk < ATT512_SPLIT_MIN_KEYS) chunk = ATT512_SPLIT_MIN_KEYS;
    for (;; chunk *= 2) {
        units = 0;
        for (int64_t it = 0; it < n_items; it++) {
            struct att512_tile tl;
            int64_t pos;
            att512_row_tile(c, it, &tl, &pos);
            c->ustart[it] = (int32_t)units;
            units += (pos + chunk) / chunk; /* ceil((pos + 1) / chunk) */
        }
        if (units <= max_units || chunk >= max_keys) break;
    }
    if (units == n_items) return; /* every item fits one split */
    c->ustart[n_items] = (int32_t)units;
    for (int64_t it = 0; it < n_items; it++) atomic_init(&c->done[it], 0);
    c->part = cb->attn_scratch;
    c->n_units = units, c->n_split_items = n_items;
}

/* kv heads per tile: 1 in prefill; in decode (fewer than two rows per sequence) the most
 * that divide n_kv with their query vectors in one tile and their slices of a row within
 * ATT512_PF_ROW_BYTES, when each kv head has one head tile, and that still give every thread a
 * unit of work: rows x kv tiles, times the split-K splits the longest row allows (one at
 * fewer than 2 x ATT512_SPLIT_MIN_KEYS keys). A single short decode row thus keeps one item
 * per kv head, so two threads share it. */
static int64_t att512_kv_tile(const struct att512_ctx *c, size_t head_bytes, int64_t threads) {
    const struct attn_meta *m = c->m;
    if (c->n_rows >= 2 * (int64_t)m->n_seqs || c->n_htiles != 1) return 1;
    int64_t max_keys = 0;
    for (int32_t s = 0; s < m->n_seqs; s++) {
        int64_t keys = (int64_t)m->n_computed[s] + (m->query_start[s + 1] - m->query_start[s]);
        max_keys = keys > max_keys ? keys : max_keys;
    }
    int64_t splits = max_keys / ATT512_SPLIT_MIN_KEYS > 1 ? max_keys / ATT512_SPLIT_MIN_KEYS : 1;
    for (int64_t d = c->n_kv; d >= 2; d--)
        if (c->n_kv % d == 0 && d * c->gt <= ATT512_MAX_QV &&
            (size_t)d * head_bytes <= ATT512_PF_ROW_BYTES &&
            c->n_rows * (c->n_kv / d) * splits >= threads)
            return d;
    return 1;
}

int cpu_attention_avx512(struct be *b, struct tensor *o, const struct tensor *q,
                         const struct tensor *k_cache, const struct tensor *v_cache,
                         const struct attn_meta *m, struct err *e) {
    struct be_cpu *cb = (struct be_cpu *)b;
    if (m->head_dim > ATT512_MAX_HEAD_DIM)
        return err_set(e, VELA_EUNSUP, "attention (avx512): head_dim %d above %d", (int)m->head_dim,
                       ATT512_MAX_HEAD_DIM);
    struct att512_ctx c = {.o = o, .q = q, .kc = k_cache, .vc = v_cache, .m = m};
    c.n_rows = be_tensor_rows(q);
    c.n_kv = be_tensor_cols(k_cache) / m->head_dim;
    c.group = be_tensor_cols(q) / m->head_dim / c.n_kv;
    c.n_htiles = (c.group + ATT512_GT - 1) / ATT512_GT;
    c.gt = (c.group + c.n_htiles - 1) / c.n_htiles;
    c.kvt = att512_kv_tile(&c, (size_t)m->head_dim * (k_cache->dtype == BE_F32 ? 4 : 2),
                           tp_size(cb->pool));
    c.n_kvtiles = c.n_kv / c.kvt;
    int64_t qv_row = c.kvt * c.gt; /* query vectors per row of a tile */
    c.rt = ATT512_MAX_QV / qv_row < ATT512_MAX_ROWS ? ATT512_MAX_QV / qv_row : ATT512_MAX_ROWS;
    /* small batches (decode): shorter tiles, so every thread gets several items */
    int64_t per_tile = c.n_kvtiles * c.n_htiles, want = ATT512_ITEMS_PER_THREAD * tp_size(cb->pool);
    if (c.n_rows * per_tile < want * c.rt) {
        c.rt = c.n_rows * per_tile / want;
        if (c.rt < 1) c.rt = 1;
    }
    c.n_rtiles = (c.n_rows + c.rt - 1) / c.rt;
    att512_plan_split(&c, cb, want);
    atomic_init(&c.next, 0);
    tp_run(cb->pool, att512_worker, &c);
    return 0;
}

#else /* not x86: never selected (attention.c checks the CPU features) */

int cpu_attention_avx512(struct be *b, struct tensor *o, const struct tensor *q,
                         const struct tensor *k_cache, const struct tensor *v_cache,
                         const struct attn_meta *m, struct err *e) {
    (void)b, (void)o, (void)q, (void)k_cache, (void)v_cache, (void)m;
    return err_set(e, VELA_EUNSUP, "attention (avx512): not an x86 build");
}

#endif
