/* attention: causal attention over the paged KV cache on the CPU, for a flattened batch of
 * sequences (prefill chunks and decode tokens mixed), with grouped-query heads.
 *
 * One work item is (query row, kv head, group tile): the up to ATT_GT query heads of the row
 * that share that kv head. The item reads the row's sequence position p from the metadata,
 * walks keys 0..p one block at a time through the sequence's block table and keeps an online
 * softmax per head (running max and sum; the accumulator is rescaled once per block when the
 * max grows), so no scratch memory is needed whatever the context length. Each K and V row is
 * loaded once for all heads of the tile. Scores, softmax and the weighted sum of V are FP32
 * (SDPA's precision, spec §10.1); BF16 cache entries are widened exactly.
 *
 * Kernels: portable C, or AVX2/FMA (own target attribute) when the backend's matmul path is
 * not the portable one, so VELA_CPU_ISA=portable keeps the whole backend generic. On an
 * avx512 backend the whole op goes to attention_avx512.c instead (tiles of several rows,
 * transposed key chunks, vectorized softmax, decode keys split across idle threads) for
 * head_dim up to ATT512_MAX_HEAD_DIM; the kernels here stay as the reference (portable) and
 * the AVX2 path.
 *
 * Invariants:
 *   1. each output (row, head) slice is written by exactly one thread, once;
 *   2. items are handed out dynamically from an atomic counter, last rows first: in a
 *      prefill they have the longest contexts, so the threads finish together;
 *   3. only cache rows reachable through the block table of the row's own sequence, at key
 *      indices <= its position, are read (causality and isolation between sequences).
 * Owner thread only; work runs on the pool. */
#include "backend/cpu/attn_ops.h"
#include "backend/cpu/cpu_ops.h"
#include "util/bf16.h"
#include "util/limits.h"

#include <math.h>
#include <stdatomic.h>

/* Query heads per item: 8 accumulators of head_dim floats (32 KB at head_dim 1024) stay in
 * L1/L2, and the GQA groups of the real models (5, 7, 8) fit one tile. */
#define ATT_GT 8

/* scores[g] = q[g] · k for g < G (q rows hd apart, F32; k F32 or BF16). */
typedef void (*att_dot_fn)(const float *q, int G, const void *k, enum be_dtype dt, int32_t hd,
                           float *scores);
/* acc[g] += sum over t < nk of p[t][g] * V[slot0 + t, col ..] for g < G (acc rows hd apart):
 * the P·V product of one cache block. */
typedef void (*att_pv_fn)(float *acc, int G, const float (*p)[ATT_GT], int32_t nk,
                          const struct tensor *vc, int64_t slot0, int64_t col, int32_t hd);

/* Address of (r, c) in an F32 or BF16 tensor; be_tensor_addr without its element-size call,
 * which would otherwise run once per key in the inner loops. */
static inline const void *row_at(const struct tensor *t, int64_t r, int64_t c) {
    size_t es = t->dtype == BE_F32 ? 4 : 2;
    return (const char *)t->buf->base + t->offset_bytes +
           ((size_t)r * (size_t)t->row_stride + (size_t)c) * es;
}

static float kv_at(const void *row, enum be_dtype dt, int32_t i) {
    return dt == BE_F32 ? ((const float *)row)[i] : bf16_to_f32(((const uint16_t *)row)[i]);
}

static void dot_portable(const float *q, int G, const void *k, enum be_dtype dt, int32_t hd,
                         float *scores) {
    for (int g = 0; g < G; g++) {
        float s = 0.0f;
        for (int32_t i = 0; i < hd; i++) s += q[g * hd + i] * kv_at(k, dt, i);
        scores[g] = s;
    }
}

static void pv_portable(float *acc, int G, const float (*p)[ATT_GT], int32_t nk,
                        const struct tensor *vc, int64_t slot0, int64_t col, int32_t hd) {
    for (int32_t t = 0; t < nk; t++) {
        const void *v = row_at(vc, slot0 + t, col);
        for (int32_t i = 0; i < hd; i++) {
            float x = kv_at(v, vc->dtype, i);
            for (int g = 0; g < G; g++) acc[g * hd + i] += p[t][g] * x;
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define ATT_AVX2        static __attribute__((target("avx2,fma")))
#define ATT_AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

ATT_AVX2_INLINE __m256 load8(const void *row, enum be_dtype dt, int32_t i) {
    if (dt == BE_F32) return _mm256_loadu_ps((const float *)row + i);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

ATT_AVX2_INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The dot products of one key row with G query heads; G is a constant at every call site
 * (dot_avx2's switch), so the loops over g unroll and the accumulators stay in registers. */
ATT_AVX2_INLINE void dot_g(const float *q, const int G, const void *k, enum be_dtype dt, int32_t hd,
                           float *scores) {
    __m256 acc[ATT_GT];
    int32_t h8 = hd & ~7;
#pragma GCC unroll 8
    for (int g = 0; g < G; g++) acc[g] = _mm256_setzero_ps();
    for (int32_t i = 0; i < h8; i += 8) {
        __m256 kv = load8(k, dt, i);
#pragma GCC unroll 8
        for (int g = 0; g < G; g++)
            acc[g] = _mm256_fmadd_ps(_mm256_loadu_ps(q + g * hd + i), kv, acc[g]);
    }
#pragma GCC unroll 8
    for (int g = 0; g < G; g++) {
        float s = hsum8(acc[g]);
        for (int32_t i = h8; i < hd; i++) s += q[g * hd + i] * kv_at(k, dt, i);
        scores[g] = s;
    }
}

ATT_AVX2 void dot_avx2(const float *q, int G, const void *k, enum be_dtype dt, int32_t hd,
                       float *scores) {
    switch (G) {
        case 1:
            dot_g(q, 1, k, dt, hd, scores);
            break;
        case 2:
            dot_g(q, 2, k, dt, hd, scores);
            break;
        case 3:
            dot_g(q, 3, k, dt, hd, scores);
            break;
        case 4:
            dot_g(q, 4, k, dt, hd, scores);
            break;
        case 5:
            dot_g(q, 5, k, dt, hd, scores);
            break;
        case 6:
            dot_g(q, 6, k, dt, hd, scores);
            break;
        case 7:
            dot_g(q, 7, k, dt, hd, scores);
            break;
        default:
            dot_g(q, ATT_GT, k, dt, hd, scores);
            break;
    }
}

/* Columns [d0, d0 + 8 * NR) of one head's accumulator, kept in NR registers across the
 * block's keys: each V element is loaded once per head and the accumulator once per block. */
#define PV_CHUNK(NR)                                                                               \
    do {                                                                                           \
        __m256 a[NR];                                                                              \
        _Pragma("GCC unroll 8") for (int r = 0; r < NR; r++) a[r] =                                \
            _mm256_loadu_ps(acc + d0 + 8 * r);                                                     \
        for (int32_t t = 0; t < nk; t++) {                                                         \
            __m256 pt = _mm256_set1_ps(p[t][g]);                                                   \
            const void *v = row_at(vc, slot0 + t, col + d0);                                       \
            _Pragma("GCC unroll 8") for (int r = 0; r < NR; r++) a[r] =                            \
                _mm256_fmadd_ps(pt, load8(v, vc->dtype, 8 * r), a[r]);                             \
        }                                                                                          \
        _Pragma("GCC unroll 8") for (int r = 0; r < NR; r++)                                       \
            _mm256_storeu_ps(acc + d0 + 8 * r, a[r]);                                              \
    } while (0)

ATT_AVX2 void pv_avx2(float *acc_all, int G, const float (*p)[ATT_GT], int32_t nk,
                      const struct tensor *vc, int64_t slot0, int64_t col, int32_t hd) {
    for (int g = 0; g < G; g++) {
        float *acc = acc_all + g * hd;
        int32_t d0 = 0;
        for (; d0 + 64 <= hd; d0 += 64) PV_CHUNK(8);
        for (; d0 + 8 <= hd; d0 += 8) PV_CHUNK(1);
        for (int32_t t = 0; t < nk; t++) {
            const void *v = row_at(vc, slot0 + t, col);
            for (int32_t i = d0; i < hd; i++) acc[i] += p[t][g] * kv_at(v, vc->dtype, i);
        }
    }
}
#endif

struct att_ctx {
    struct tensor *o;
    const struct tensor *q, *kc, *vc;
    const struct attn_meta *m;
    int64_t n_rows, n_kv, group, n_tiles; /* n_tiles = ceil(group / ATT_GT) */
    att_dot_fn dot;
    att_pv_fn pv;
    atomic_llong next;
};

/* Per-head online softmax state of one item. */
struct att_state {
    float q[ATT_GT * VELA_CFG_MAX_HEAD_DIM], acc[ATT_GT * VELA_CFG_MAX_HEAD_DIM];
    float mx[ATT_GT], sum[ATT_GT];
    float sc[VELA_KV_MAX_BLOCK_SIZE][ATT_GT];
};

/* Keys [k0, k0 + nk) of one block (cache rows slot0 ..) into the state of G heads. */
static void att_block(const struct att_ctx *c, struct att_state *st, int G, int64_t slot0,
                      int32_t nk, int64_t col) {
    int32_t hd = c->m->head_dim;
    float bmx[ATT_GT];
    for (int g = 0; g < G; g++) bmx[g] = -INFINITY;
    for (int32_t t = 0; t < nk; t++) {
        c->dot(st->q, G, row_at(c->kc, slot0 + t, col), c->kc->dtype, hd, st->sc[t]);
        for (int g = 0; g < G; g++) {
            st->sc[t][g] *= c->m->scale;
            if (st->sc[t][g] > bmx[g]) bmx[g] = st->sc[t][g];
        }
    }
    for (int g = 0; g < G; g++) {
        float nmx = bmx[g] > st->mx[g] ? bmx[g] : st->mx[g];
        if (nmx > st->mx[g]) {                   /* rescale what was summed under the old max */
            float alpha = expf(st->mx[g] - nmx); /* 0 on the first block */
            st->sum[g] *= alpha;
            for (int32_t i = 0; i < hd; i++) st->acc[g * hd + i] *= alpha;
            st->mx[g] = nmx;
        }
    }
    for (int32_t t = 0; t < nk; t++) {
        for (int g = 0; g < G; g++) {
            st->sc[t][g] = expf(st->sc[t][g] - st->mx[g]); /* scores become weights */
            st->sum[g] += st->sc[t][g];
        }
    }
    c->pv(st->acc, G, (const float(*)[ATT_GT])st->sc, nk, c->vc, slot0, col, hd);
}

/* One item: heads h0 .. h0+G-1 of `row` (all on kv head kvh). */
static void att_item(const struct att_ctx *c, struct att_state *st, int64_t row, int64_t kvh,
                     int64_t h0, int G) {
    const struct attn_meta *m = c->m;
    int32_t hd = m->head_dim, bs = m->block_size;
    int32_t s = cpu_last_le(m->query_start, m->n_seqs, row); /* row's sequence */
    int64_t n_keys = (int64_t)m->n_computed[s] + (row - m->query_start[s]) + 1;
    const int32_t *bt = m->block_tables + (size_t)s * (size_t)m->max_blocks_per_seq;
    const void *qr = row_at(c->q, row, h0 * hd);
    for (int g = 0; g < G; g++) {
        for (int32_t i = 0; i < hd; i++) {
            st->q[g * hd + i] = kv_at(qr, c->q->dtype, (int32_t)(g * hd + i));
            st->acc[g * hd + i] = 0.0f;
        }
        st->mx[g] = -INFINITY, st->sum[g] = 0.0f;
    }
    for (int64_t k0 = 0; k0 < n_keys; k0 += bs) {
        int32_t nk = (int32_t)(n_keys - k0 < bs ? n_keys - k0 : bs);
        att_block(c, st, G, (int64_t)bt[k0 / bs] * bs, nk, kvh * hd);
    }
    for (int g = 0; g < G; g++) {
        float inv = 1.0f / st->sum[g];
        void *orow = (void *)row_at(c->o, row, (h0 + g) * hd);
        for (int32_t i = 0; i < hd; i++) {
            float x = st->acc[g * hd + i] * inv;
            if (c->o->dtype == BE_F32)
                ((float *)orow)[i] = x;
            else
                ((uint16_t *)orow)[i] = f32_to_bf16(x);
        }
    }
}

static void att_worker(void *arg, int i, int n_threads) {
    (void)i, (void)n_threads;
    struct att_ctx *c = arg;
    struct att_state st; /* on this thread's stack: about 70 KB */
    int64_t per_row = c->n_kv * c->n_tiles, n_items = c->n_rows * per_row;
    for (;;) {
        int64_t it = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (it >= n_items) break;
        int64_t row = c->n_rows - 1 - it / per_row, r = it % per_row;
        int64_t kvh = r / c->n_tiles, g0 = (r % c->n_tiles) * ATT_GT;
        int64_t G = c->group - g0 < ATT_GT ? c->group - g0 : ATT_GT;
        att_item(c, &st, row, kvh, kvh * c->group + g0, (int)G);
    }
}

int cpu_attention(struct be *b, struct tensor *o, const struct tensor *q,
                  const struct tensor *k_cache, const struct tensor *v_cache,
                  const struct attn_meta *m, struct err *e) {
    struct be_cpu *cb = (struct be_cpu *)b;
    if (cb->isa == CPU_ISA_AVX512 && cpu_isa_supported(CPU_ISA_AVX512) &&
        m->head_dim <= ATT512_MAX_HEAD_DIM)
        return cpu_attention_avx512(b, o, q, k_cache, v_cache, m, e);
    struct att_ctx c = {.o = o, .q = q, .kc = k_cache, .vc = v_cache, .m = m};
    c.n_rows = be_tensor_rows(q);
    c.n_kv = be_tensor_cols(k_cache) / m->head_dim;
    c.group = be_tensor_cols(q) / m->head_dim / c.n_kv;
    c.n_tiles = (c.group + ATT_GT - 1) / ATT_GT;
    c.dot = dot_portable, c.pv = pv_portable;
#if defined(__x86_64__) || defined(__i386__)
    if (cb->isa != CPU_ISA_PORTABLE && cpu_isa_supported(CPU_ISA_AVX2))
        c.dot = dot_avx2, c.pv = pv_avx2;
#endif
    atomic_init(&c.next, 0);
    tp_run(cb->pool, att_worker, &c);
    return 0;
}
