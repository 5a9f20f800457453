/* attention_varlen: non-causal attention inside the segments of a packed sequence on the CPU
 * (the ViT's window and full attention, spec §4.5), all heads of equal width.
 *
 * A work item is (tile of VA_QT consecutive query rows, head). A tile that straddles a
 * segment boundary is processed in pieces, one per segment, so no per-call table of tiles
 * is needed. For each piece the keys of its segment are walked in chunks of VA_KB: scores
 * for every query of the piece, an online softmax (running max and sum, the accumulator
 * rescaled when the max grows) and the weighted sum of V, so each key and value row is read
 * once per tile rather than once per query. Scores, softmax and accumulation are FP32 (SDPA's
 * precision, spec §10.1); BF16 inputs are widened exactly and a BF16 o is rounded once.
 * With F32 tensors, head_dim a multiple of 16 (at most 256), an AVX-512F CPU and a backend
 * not forced to the portable path, each piece runs the vector kernel of
 * attention_varlen_avx512.c instead (same FP32 math, FMA and a polynomial exp).
 *
 * Invariants:
 *   1. each output (row, head) slice is written by exactly one thread, once;
 *   2. a query row reads only the key/value rows of its own segment (isolation between
 *      windows, images and temporal groups);
 *   3. items are handed out dynamically from an atomic counter; nothing is allocated.
 * Owner thread only; work runs on the pool. */
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/vit_ops.h"
#include "util/bf16.h"
#include "util/limits.h"

#include <math.h>
#include <stdatomic.h>

#define VA_QT 4  /* query rows per tile */
#define VA_KB 64 /* keys per chunk */

struct va_ctx {
    struct tensor *o;
    const struct tensor *q, *k, *v;
    const struct varlen_meta *m;
    int64_t n_rows, n_heads, n_tiles;
    bool avx512; /* pieces run va_piece_avx512 */
    atomic_llong next;
};

/* Segment of row r: the last s with cu_seqlens[s] <= r. */
static int32_t seg_of_row(const struct varlen_meta *m, int64_t r) {
    int32_t lo = 0, hi = m->n_segs - 1;
    while (lo < hi) {
        int32_t mid = (lo + hi + 1) / 2;
        if (m->cu_seqlens[mid] <= r)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* Row r, columns [c0, c0 + n) of t as FP32 into dst. */
static void load_row(const struct tensor *t, int64_t r, int64_t c0, int32_t n, float *dst) {
    if (t->dtype == BE_F32) {
        const float *s = be_tensor_addr(t, r, c0);
        for (int32_t i = 0; i < n; i++) dst[i] = s[i];
    } else {
        const uint16_t *s = be_tensor_addr(t, r, c0);
        for (int32_t i = 0; i < n; i++) dst[i] = bf16_to_f32(s[i]);
    }
}

/* Eight partial sums so the compiler can keep them in vector lanes. */
static float dot(const float *a, const float *b, int32_t n) {
    float acc[8] = {0};
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
    float s = 0.0f;
    for (; i < n; i++) s += a[i] * b[i];
    return s + ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* Query rows [r0, r0 + nq) of one segment [s0, s1), one head. */
static void va_piece(const struct va_ctx *c, int64_t r0, int32_t nq, int64_t s0, int64_t s1,
                     int64_t head) {
    int32_t hd = c->m->head_dim;
    int64_t col = head * hd;
    float qv[VA_QT][VELA_CFG_MAX_HEAD_DIM], acc[VA_QT][VELA_CFG_MAX_HEAD_DIM];
    float kv[VELA_CFG_MAX_HEAD_DIM], sc[VA_QT][VA_KB], mx[VA_QT], sum[VA_QT];
    for (int32_t i = 0; i < nq; i++) {
        load_row(c->q, r0 + i, col, hd, qv[i]);
        for (int32_t d = 0; d < hd; d++) acc[i][d] = 0.0f;
        mx[i] = -INFINITY, sum[i] = 0.0f;
    }
    for (int64_t k0 = s0; k0 < s1; k0 += VA_KB) {
        int32_t nk = (int32_t)(s1 - k0 < VA_KB ? s1 - k0 : VA_KB);
        for (int32_t t = 0; t < nk; t++) {
            const float *kr = kv;
            if (c->k->dtype == BE_F32)
                kr = be_tensor_addr(c->k, k0 + t, col);
            else
                load_row(c->k, k0 + t, col, hd, kv);
            for (int32_t i = 0; i < nq; i++) sc[i][t] = dot(qv[i], kr, hd) * c->m->scale;
        }
        for (int32_t i = 0; i < nq; i++) {
            float bmx = mx[i];
            for (int32_t t = 0; t < nk; t++) bmx = sc[i][t] > bmx ? sc[i][t] : bmx;
            float alpha = expf(mx[i] - bmx); /* 0 on the first chunk (mx = -inf) */
            sum[i] *= alpha;
            for (int32_t d = 0; d < hd; d++) acc[i][d] *= alpha;
            for (int32_t t = 0; t < nk; t++) {
                sc[i][t] = expf(sc[i][t] - bmx);
                sum[i] += sc[i][t];
            }
            mx[i] = bmx;
        }
        for (int32_t t = 0; t < nk; t++) {
            const float *vr = kv;
            if (c->v->dtype == BE_F32)
                vr = be_tensor_addr(c->v, k0 + t, col);
            else
                load_row(c->v, k0 + t, col, hd, kv);
            for (int32_t i = 0; i < nq; i++) {
                float p = sc[i][t];
                for (int32_t d = 0; d < hd; d++) acc[i][d] += p * vr[d];
            }
        }
    }
    for (int32_t i = 0; i < nq; i++) {
        float inv = 1.0f / sum[i];
        for (int32_t d = 0; d < hd; d++) cpu_set_f32(c->o, r0 + i, col + d, acc[i][d] * inv);
    }
}

static void va_worker(void *arg, int i_thread, int n_threads) {
    (void)i_thread, (void)n_threads;
    struct va_ctx *c = arg;
    int64_t n_items = c->n_tiles * c->n_heads;
    for (;;) {
        int64_t it = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (it >= n_items) break;
        int64_t head = it % c->n_heads, r = (it / c->n_heads) * VA_QT;
        int64_t end = r + VA_QT < c->n_rows ? r + VA_QT : c->n_rows;
        while (r < end) { /* one piece per segment the tile touches */
            int32_t s = seg_of_row(c->m, r);
            int64_t s0 = c->m->cu_seqlens[s], s1 = c->m->cu_seqlens[s + 1];
            int64_t pe = end < s1 ? end : s1;
            if (c->avx512) {
                int64_t col = head * c->m->head_dim;
                va_piece_avx512(be_tensor_addr(c->q, r, col), c->q->row_stride, (int32_t)(pe - r),
                                be_tensor_addr(c->k, s0, col), c->k->row_stride,
                                be_tensor_addr(c->v, s0, col), c->v->row_stride, s1 - s0,
                                c->m->head_dim, c->m->scale, be_tensor_addr(c->o, r, col),
                                c->o->row_stride);
            } else {
                va_piece(c, r, (int32_t)(pe - r), s0, s1, head);
            }
            r = pe;
        }
    }
}

int cpu_attention_varlen(struct be *b, struct tensor *o, const struct tensor *q,
                         const struct tensor *k, const struct tensor *v,
                         const struct varlen_meta *m, struct err *e) {
    (void)e;
    struct va_ctx c = {.o = o, .q = q, .k = k, .v = v, .m = m};
    c.n_rows = be_tensor_rows(q);
    c.n_heads = be_tensor_cols(q) / m->head_dim;
    c.n_tiles = (c.n_rows + VA_QT - 1) / VA_QT;
    const struct tensor *ts[4] = {o, q, k, v};
    c.avx512 = cpu_features_get()->avx512f && ((struct be_cpu *)b)->isa != CPU_ISA_PORTABLE &&
               m->head_dim % 16 == 0 && m->head_dim <= 256;
    for (int i = 0; i < 4; i++) c.avx512 = c.avx512 && ts[i]->dtype == BE_F32;
    atomic_init(&c.next, 0);
    tp_run(((struct be_cpu *)b)->pool, va_worker, &c);
    return 0;
}
