/* attention_varlen: non-causal attention inside the segments of a packed sequence on the CPU
 * (the ViT's window and full attention, spec §4.5), all heads of equal width.
 *
 * A work item is (tile of up to rt consecutive query rows of one segment, head): tiles are
 * cut from each segment's start, so a tile never straddles segments and the last tile of a
 * segment may be short. The AVX-512F kernel (attention_varlen_avx512.c: F32 tensors,
 * head_dim a multiple of 16 and at most 256, an AVX-512F CPU, a backend not forced to the
 * portable path) takes tiles of VA_AVX512_ROWS rows; the portable kernel below, the reference,
 * tiles of VA_QT. For each tile the keys of its segment are walked in chunks: scores for every
 * query of the tile, an online softmax (running max and sum, the accumulator rescaled when the
 * max grows) and the weighted sum of V, so each key and value row is read once per tile rather
 * than once per query. Scores, softmax and accumulation are FP32 (SDPA's precision, spec
 * §10.1); BF16 inputs are widened exactly and a BF16 o is rounded once.
 *
 * Hand-out: a cursor under a mutex walks the segments in passes by length class (lengths in
 * [2^c, 2^(c+1)), longest class first), and within a segment head by head, tile by tile.
 * The longest segments (an image's full attention) start first, so the threads finish
 * together, and consecutive items of a segment share one head's K and V rows in the caches.
 * No table is built: each pass scans the segments once, so the cost is O(n_segs) per length
 * class present, and nothing is allocated per call. A lock per item is cheap next to an
 * item (at least a 64-key window: tens of microseconds).
 *
 * Invariants:
 *   1. each output (row, head) slice is written by exactly one thread, once: the cursor
 *      hands out every (segment, head, tile) exactly once;
 *   2. a query row reads only the key/value rows of its own segment (isolation between
 *      windows, images and temporal groups);
 *   3. nothing is allocated; the AVX-512 kernel's scratch is on each worker's stack.
 * Owner thread only; work runs on the pool. */
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/vit_ops.h"
#include "util/bf16.h"
#include "util/limits.h"

#include <math.h>
#include <pthread.h>

#define VA_QT 4  /* query rows per tile of the portable kernel */
#define VA_KB 64 /* keys per chunk of the portable kernel */

/* The next item to hand out: pass `cls` (-1: done), segment, head, first row in the segment. */
struct va_cursor {
    int cls;
    int32_t seg;
    int64_t head, row;
};

struct va_ctx {
    struct tensor *o;
    const struct tensor *q, *k, *v;
    const struct varlen_meta *m;
    int64_t n_heads;
    int32_t rt;           /* query rows per tile */
    bool avx512;          /* tiles run va_tile_avx512 */
    uint32_t classes;     /* bit c: some segment's length is in [2^c, 2^(c+1)) */
    pthread_mutex_t lock; /* guards cur */
    struct va_cursor cur;
};

/* One work item: rows [r0, r0 + nr) of segment seg, one head. */
struct va_item {
    int32_t seg, nr;
    int64_t r0, head;
};

/* floor(log2(len)) for len >= 1: the length class. */
static int va_class(int64_t len) {
    int c = 0;
    while (len >>= 1) c++;
    return c;
}

/* The highest class present below cls, or -1. */
static int va_class_below(uint32_t classes, int cls) {
    for (int c = cls - 1; c >= 0; c--)
        if (classes & (1u << c)) return c;
    return -1;
}

/* Takes the next item off the cursor; false when every item has been handed out. */
static bool va_next(struct va_ctx *c, struct va_item *it) {
    const int32_t *cu = c->m->cu_seqlens;
    struct va_cursor *u = &c->cur;
    bool ok = false;
    pthread_mutex_lock(&c->lock);
    while (u->cls >= 0) {
        if (u->seg >= c->m->n_segs) { /* pass done: the next shorter class */
            u->cls = va_class_below(c->classes, u->cls), u->seg = 0;
            continue;
        }
        int64_t len = (int64_t)cu[u->seg + 1] - cu[u->seg];
        if (va_class(len) != u->cls) {
            u->seg++;
            continue;
        }
        it->seg = u->seg, it->head = u->head, it->r0 = cu[u->seg] + u->row;
        it->nr = (int32_t)(len - u->row < c->rt ? len - u->row : c->rt);
        u->row += c->rt;
        if (u->row >= len) { /* segment done for this head */
            u->row = 0;
            if (++u->head == c->n_heads) u->head = 0, u->seg++;
        }
        ok = true;
        break;
    }
    pthread_mutex_unlock(&c->lock);
    return ok;
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
    struct va_item it;
    while (va_next(c, &it)) {
        int64_t s0 = c->m->cu_seqlens[it.seg], s1 = c->m->cu_seqlens[it.seg + 1];
        if (c->avx512) {
            int64_t col = it.head * c->m->head_dim;
            va_tile_avx512(be_tensor_addr(c->q, it.r0, col), c->q->row_stride, it.nr,
                           be_tensor_addr(c->k, s0, col), c->k->row_stride,
                           be_tensor_addr(c->v, s0, col), c->v->row_stride, s1 - s0, c->m->head_dim,
                           c->m->scale, be_tensor_addr(c->o, it.r0, col), c->o->row_stride);
        } else {
            va_piece(c, it.r0, it.nr, s0, s1, it.head);
        }
    }
}

int cpu_attention_varlen(struct be *b, struct tensor *o, const struct tensor *q,
                         const struct tensor *k, const struct tensor *v,
                         const struct varlen_meta *m, struct err *e) {
    struct va_ctx c = {.o = o, .q = q, .k = k, .v = v, .m = m};
    c.n_heads = be_tensor_cols(q) / m->head_dim;
    const struct tensor *ts[4] = {o, q, k, v};
    c.avx512 = cpu_features_get()->avx512f && ((struct be_cpu *)b)->isa != CPU_ISA_PORTABLE &&
               m->head_dim % 16 == 0 && m->head_dim <= 256;
    for (int i = 0; i < 4; i++) c.avx512 = c.avx512 && ts[i]->dtype == BE_F32;
    c.rt = c.avx512 ? VA_AVX512_ROWS : VA_QT;
    for (int32_t s = 0; s < m->n_segs; s++) /* lengths >= 1 (backend/vit_ops.c checks) */
        c.classes |= 1u << va_class((int64_t)m->cu_seqlens[s + 1] - m->cu_seqlens[s]);
    c.cur.cls = va_class_below(c.classes, 32);
    if (pthread_mutex_init(&c.lock, NULL) != 0)
        return err_set(e, VELA_ENOMEM, "attention_varlen: cannot create the hand-out lock");
    tp_run(((struct be_cpu *)b)->pool, va_worker, &c);
    pthread_mutex_destroy(&c.lock);
    return 0;
}
