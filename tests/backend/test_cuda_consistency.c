/* Consistency of every CUDA op with the CPU backend (the test-backend-ops pattern): the same
 * inputs go to both backends and the outputs are compared with a normalized error,
 * nerr = sum (gpu - cpu)^2 / sum cpu^2, against a threshold set per op and dtype (FP32 paths
 * near rounding noise; BF16 outputs allow a few last-bit flips; the GEMM allows the BF16
 * rounding of its inputs, which the CPU's FP32 path does not do). Shapes cover odd sizes,
 * one-token decode, long prefill and long decode contexts (the split-key path), chunked
 * prefill after a cached prefix, many shuffled block tables, GQA ratios 1, 7 and 8, strided
 * column views, aliasing outputs, and the error paths (bad ids, unsupported ops).
 * Runs only where a CUDA device exists: elsewhere (or in a build without CUDA) it prints
 * "SKIP: no CUDA device" and exits 77. */
#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"
#include "util/bf16.h"
#include "t.h"

#ifdef VELA_HAVE_CUDA
#include "backend/cuda/backend_cuda.h"
#include "cuda_fixture.h"
#endif

#include <stdint.h>

#ifdef VELA_HAVE_CUDA

/* The same tensor on both backends. */
struct tp {
    struct tensor c, g;
};

/* Random values (or zeros) in [rows x (cols + pad)] on both backends. */
static struct tp mk(enum be_dtype dt, int64_t rows, int64_t cols, int64_t pad, bool zero) {
    size_t n = (size_t)(rows * (cols + pad));
    float *h = malloc(n * 4);
    for (size_t i = 0; i < n; i++) h[i] = zero ? 0.0f : frand();
    struct tp t = {mk_view(g_cpu, dt, rows, cols, pad, h, NULL),
                   mk_view(g_gpu, dt, rows, cols, pad, h, NULL)};
    free(h);
    return t;
}

static struct tp mk_i32(int64_t n, const int32_t *ids) {
    struct tp t = {mk_view(g_cpu, BE_I32, 1, n, 0, ids, NULL),
                   mk_view(g_gpu, BE_I32, 1, n, 0, ids, NULL)};
    return t;
}

/* Reads t from both backends and checks the normalized error against thr. */
static double cmp(const char *what, const struct tp *t, double thr) {
    float *c = rd(g_cpu, &t->c), *g = rd(g_gpu, &t->g);
    size_t n = (size_t)be_tensor_nelems(&t->c);
    double num = 0, den = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)g[i] - c[i];
        if (!(fabs(d) <= worst)) worst = fabs(d), at = i;
        num += d * d, den += (double)c[i] * c[i];
    }
    double nerr = den > 0 ? num / den : num;
    if (nerr != nerr) nerr = INFINITY;
    T_CHECK_(nerr <= thr, "%s: nerr %.3g > %.3g (max |diff| %.3g at %zu: cpu %.6g gpu %.6g)", what,
             nerr, thr, worst, at, c[at], g[at]);
    free(c);
    free(g);
    return nerr;
}

static double thr_of(enum be_dtype out, double f32, double bf16) {
    return out == BE_F32 ? f32 : bf16;
}

/* ---------------------------------------------------------------- dense ops */

static void test_matmul(void) {
    const int64_t shapes[][3] = {{1, 7, 5},     {3, 64, 33},    {17, 129, 65},
                                 {1, 896, 257}, {64, 896, 512}, {300, 1280, 96}};
    struct err e = {0};
    char what[128];
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
        for (int combo = 0; combo < 12; combo++) {
            enum be_dtype xd = combo & 1 ? BE_BF16 : BE_F32, yd = combo & 2 ? BE_BF16 : BE_F32;
            int bias_kind = combo / 4;                          /* 0 none, 1 F32, 2 BF16 */
            int64_t pad = (s + (size_t)combo) % 3 == 0 ? 3 : 0; /* strided views now and then */
            struct tp x = mk(xd, m, k, pad, false), w = mk(BE_BF16, n, k, 0, false);
            struct tp y = mk(yd, m, n, pad, true), bias = {{0}, {0}};
            if (bias_kind && pad == 0) bias = mk(bias_kind == 1 ? BE_F32 : BE_BF16, 1, n, 0, false);
            if (bias_kind && pad != 0) { /* a bias view at an odd offset: not 16-byte aligned */
                struct tp full = mk(bias_kind == 1 ? BE_F32 : BE_BF16, 1, n + 1, 0, false);
                T_RC(be_tensor_cols_view(&bias.c, &full.c, 1, n, &e), &e);
                T_RC(be_tensor_cols_view(&bias.g, &full.g, 1, n, &e), &e);
            }
            T_RC(be_matmul(g_cpu, &y.c, &x.c, &w.c, bias_kind ? &bias.c : NULL, &e), &e);
            T_RC(be_matmul(g_gpu, &y.g, &x.g, &w.g, bias_kind ? &bias.g : NULL, &e), &e);
            snprintf(what, sizeof what, "matmul m%lld k%lld n%lld x%s y%s bias%d pad%lld",
                     (long long)m, (long long)k, (long long)n, be_dtype_name(xd), be_dtype_name(yd),
                     bias_kind, (long long)pad);
            cmp(what, &y, 1e-4);
            free_bufs();
        }
    }
}

static void test_norm_act(void) {
    const int64_t shapes[][2] = {{1, 7}, {5, 896}, {33, 3584}, {3, 1}};
    struct err e = {0};
    char what[128];
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t r = shapes[s][0], c = shapes[s][1];
        for (int combo = 0; combo < 8; combo++) {
            enum be_dtype xd = combo & 1 ? BE_BF16 : BE_F32, yd = combo & 2 ? BE_BF16 : BE_F32;
            enum be_dtype gd = combo & 4 ? BE_BF16 : BE_F32;
            int64_t pad = combo == 5 ? 2 : 0;
            struct tp x = mk(xd, r, c, pad, false), y = mk(yd, r, c, 0, true);
            struct tp g = mk(gd, 1, c, 0, false), x2 = mk(xd, r, c, 0, false);
            struct tp u = mk(xd, r, c, 0, false), gu = mk(xd, r, 2 * c, 0, false);
            struct tp bias = mk(gd, 1, c, 0, false);
            snprintf(what, sizeof what, "[%lld x %lld] x%s y%s g%s", (long long)r, (long long)c,
                     be_dtype_name(xd), be_dtype_name(yd), be_dtype_name(gd));
            char w2[160];
            T_RC(be_rms_norm(g_cpu, &y.c, &x.c, &g.c, 1e-6f, &e), &e);
            T_RC(be_rms_norm(g_gpu, &y.g, &x.g, &g.g, 1e-6f, &e), &e);
            snprintf(w2, sizeof w2, "rms_norm %s", what);
            cmp(w2, &y, thr_of(yd, 1e-10, 1e-5));
            T_RC(be_add(g_cpu, &y.c, &x.c, &x2.c, &e), &e);
            T_RC(be_add(g_gpu, &y.g, &x.g, &x2.g, &e), &e);
            snprintf(w2, sizeof w2, "add %s", what);
            cmp(w2, &y, thr_of(yd, 1e-12, 1e-5));
            T_RC(be_silu_mul(g_cpu, &y.c, &x.c, &u.c, &e), &e);
            T_RC(be_silu_mul(g_gpu, &y.g, &x.g, &u.g, &e), &e);
            snprintf(w2, sizeof w2, "silu_mul %s", what);
            cmp(w2, &y, thr_of(yd, 1e-10, 1e-5));
            T_RC(be_silu_mul(g_cpu, &y.c, &gu.c, NULL, &e), &e);
            T_RC(be_silu_mul(g_gpu, &y.g, &gu.g, NULL, &e), &e);
            snprintf(w2, sizeof w2, "silu_mul fused %s", what);
            cmp(w2, &y, thr_of(yd, 1e-10, 1e-5));
            T_RC(be_gelu(g_cpu, &y.c, &x.c, &e), &e);
            T_RC(be_gelu(g_gpu, &y.g, &x.g, &e), &e);
            snprintf(w2, sizeof w2, "gelu %s", what);
            cmp(w2, &y, thr_of(yd, 1e-10, 1e-5));
            T_RC(be_quick_gelu(g_cpu, &y.c, &x.c, &e), &e);
            T_RC(be_quick_gelu(g_gpu, &y.g, &x.g, &e), &e);
            snprintf(w2, sizeof w2, "quick_gelu %s", what);
            cmp(w2, &y, thr_of(yd, 1e-10, 1e-5));
            T_RC(be_layer_norm(g_cpu, &y.c, &x.c, &g.c, &bias.c, 1e-6f, &e), &e);
            T_RC(be_layer_norm(g_gpu, &y.g, &x.g, &g.g, &bias.g, 1e-6f, &e), &e);
            snprintf(w2, sizeof w2, "layer_norm %s", what);
            cmp(w2, &y, thr_of(yd, 1e-10, 1e-5));
            if (xd == yd && pad == 0) { /* in place: y is x (the residual add, norm) */
                T_RC(be_add(g_cpu, &x.c, &x.c, &x2.c, &e), &e);
                T_RC(be_add(g_gpu, &x.g, &x.g, &x2.g, &e), &e);
                T_RC(be_rms_norm(g_cpu, &x.c, &x.c, &g.c, 1e-5f, &e), &e);
                T_RC(be_rms_norm(g_gpu, &x.g, &x.g, &g.g, 1e-5f, &e), &e);
                T_RC(be_gelu(g_cpu, &x.c, &x.c, &e), &e);
                T_RC(be_gelu(g_gpu, &x.g, &x.g, &e), &e);
                snprintf(w2, sizeof w2, "in-place add+norm+gelu %s", what);
                cmp(w2, &x, thr_of(yd, 1e-10, 1e-4));
                /* the fused residual add + norm, y = x2 itself as the model runs it */
                T_RC(be_add_rms_norm(g_cpu, &x.c, &x2.c, &x2.c, &g.c, 1e-6f, &e), &e);
                T_RC(be_add_rms_norm(g_gpu, &x.g, &x2.g, &x2.g, &g.g, 1e-6f, &e), &e);
                snprintf(w2, sizeof w2, "add_rms_norm residual %s", what);
                cmp(w2, &x, thr_of(xd, 1e-12, 1e-5));
                snprintf(w2, sizeof w2, "add_rms_norm out %s", what);
                cmp(w2, &x2, thr_of(xd, 1e-10, 1e-5));
            }
            free_bufs();
        }
    }
}

static void test_embed_gather(void) {
    struct err e = {0};
    const int64_t V = 1000, D = 33, n = 17;
    int32_t ids[17];
    for (int i = 0; i < n; i++) ids[i] = (int32_t)urand((uint32_t)V);
    ids[0] = 0, ids[1] = (int32_t)V - 1;
    for (int yd = 0; yd < 2; yd++) {
        enum be_dtype d = yd ? BE_BF16 : BE_F32;
        struct tp table = mk(BE_BF16, V, D, 0, false), y = mk(d, n, D, 0, true);
        struct tp idt = mk_i32(n, ids);
        T_RC(be_embed(g_cpu, &y.c, &table.c, &idt.c, &e), &e);
        T_RC(be_embed(g_gpu, &y.g, &table.g, &idt.g, &e), &e);
        cmp("embed", &y, 0.0);
        int32_t bad[17];
        memcpy(bad, ids, sizeof bad);
        bad[9] = (int32_t)V;
        struct tp badt = mk_i32(n, bad);
        T_FAILS(be_embed(g_gpu, &y.g, &table.g, &badt.g, &e), VELA_EINVAL, &e);
        T_OK(strstr(e.msg, "position 9") != NULL);
        bad[9] = -1;
        struct tp badt2 = mk_i32(n, bad);
        T_FAILS(be_embed(g_gpu, &y.g, &table.g, &badt2.g, &e), VELA_EINVAL, &e);
        cmp("embed untouched after a bad id", &y, 0.0);
        /* gather: the window reordering and its inverse */
        int32_t rows[40];
        for (int i = 0; i < 40; i++) rows[i] = (int32_t)urand(23);
        struct tp x = mk(d, 23, 81, 0, false), g = mk(d, 40, 81, 0, true);
        T_RC(be_gather_rows(g_cpu, &g.c, &x.c, rows, &e), &e);
        T_RC(be_gather_rows(g_gpu, &g.g, &x.g, rows, &e), &e);
        cmp("gather_rows", &g, 0.0);
        free_bufs();
    }
}

static void test_rope(void) {
    struct err e = {0};
    const struct {
        int32_t hd, nq, nk, s0, s1, s2;
        int64_t n;
    } cs[] = {{128, 4, 2, 16, 24, 24, 37},
              {128, 7, 1, 64, 0, 0, 1},
              {64, 3, 3, 8, 12, 12, 300},
              {16, 2, 1, 2, 3, 3, 5}};
    char what[128];
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int32_t *pos = malloc((size_t)cs[i].n * 3 * 4);
        for (int64_t j = 0; j < 3 * cs[i].n; j++) pos[j] = (int32_t)urand(40000);
        struct rope_args a = {.pos = pos,
                              .head_dim = cs[i].hd,
                              .theta = 1e6f,
                              .section = {cs[i].s0, cs[i].s1, cs[i].s2}};
        for (int dt = 0; dt < 2; dt++) {
            enum be_dtype d = dt ? BE_BF16 : BE_F32;
            struct tp q = mk(d, cs[i].n, (int64_t)cs[i].nq * cs[i].hd, dt, false);
            struct tp k = mk(d, cs[i].n, (int64_t)cs[i].nk * cs[i].hd, 0, false);
            T_RC(be_rope(g_cpu, &q.c, &k.c, &a, &e), &e);
            T_RC(be_rope(g_gpu, &q.g, &k.g, &a, &e), &e);
            snprintf(what, sizeof what, "rope hd%d n%lld %s", (int)cs[i].hd, (long long)cs[i].n,
                     be_dtype_name(d));
            cmp(what, &q, thr_of(d, 1e-10, 1e-4));
            cmp(what, &k, thr_of(d, 1e-10, 1e-4));
            /* rope2d on the same tensors (head_dim multiple of 4) */
            struct rope2d_args a2 = {.pos = pos, .head_dim = cs[i].hd, .theta = 10000.0f};
            struct tp q2 = mk(d, cs[i].n, (int64_t)cs[i].nq * cs[i].hd, 0, false);
            struct tp k2 = mk(d, cs[i].n, (int64_t)cs[i].nq * cs[i].hd, 1, false);
            T_RC(be_rope2d(g_cpu, &q2.c, &k2.c, &a2, &e), &e);
            T_RC(be_rope2d(g_gpu, &q2.g, &k2.g, &a2, &e), &e);
            snprintf(what, sizeof what, "rope2d hd%d n%lld %s", (int)cs[i].hd, (long long)cs[i].n,
                     be_dtype_name(d));
            cmp(what, &q2, thr_of(d, 1e-10, 1e-4));
            cmp(what, &k2, thr_of(d, 1e-10, 1e-4));
            free_bufs();
        }
        free(pos);
    }
}

/* ---------------------------------------------------------------- paged attention */

#define BS       16
#define MAX_SEQS 48

struct acase {
    const char *name;
    int32_t n_seqs, nq, nkv, hd;
    int32_t n_computed[MAX_SEQS], n_new[MAX_SEQS];
};

/* Stores every token of every sequence with kv_store (prefix and new rows in one call,
 * through shuffled block tables), then runs attention over the new rows; compares the caches
 * exactly and o within the threshold. */
static void run_attention(const struct acase *ac, enum be_dtype kv_dt, enum be_dtype q_dt) {
    struct err e = {0};
    int32_t qs[MAX_SEQS + 1], ncomp[MAX_SEQS], max_blocks = 1, n_new_tot = 0, n_all = 0;
    qs[0] = 0;
    for (int32_t s = 0; s < ac->n_seqs; s++) {
        int32_t ctx = ac->n_computed[s] + ac->n_new[s], nb = (ctx + BS - 1) / BS;
        if (nb > max_blocks) max_blocks = nb;
        qs[s + 1] = qs[s] + ac->n_new[s];
        ncomp[s] = ac->n_computed[s];
        n_new_tot += ac->n_new[s];
        n_all += ctx;
    }
    int32_t n_blocks = ac->n_seqs * max_blocks + 3;
    int32_t *perm = malloc((size_t)n_blocks * 4), *bt = malloc((size_t)ac->n_seqs * max_blocks * 4);
    for (int32_t i = 0; i < n_blocks; i++) perm[i] = i;
    for (int32_t i = n_blocks - 1; i > 0; i--) {
        int32_t j = (int32_t)urand((uint32_t)i + 1), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    for (int32_t i = 0; i < ac->n_seqs * max_blocks; i++) bt[i] = perm[i];
    /* every token's slot, all sequences back to back */
    int32_t *slots = malloc((size_t)n_all * 4), *new_slots = malloc((size_t)n_new_tot * 4);
    int32_t at = 0, at_new = 0;
    for (int32_t s = 0; s < ac->n_seqs; s++) {
        for (int32_t p = 0; p < ac->n_computed[s] + ac->n_new[s]; p++) {
            int32_t slot = bt[s * max_blocks + p / BS] * BS + p % BS;
            slots[at++] = slot;
            if (p >= ac->n_computed[s]) new_slots[at_new++] = slot;
        }
    }
    int64_t wkv = (int64_t)ac->nkv * ac->hd, wq = (int64_t)ac->nq * ac->hd;
    struct tp kc = mk(kv_dt, (int64_t)n_blocks * BS, wkv, 0, true);
    struct tp vc = mk(kv_dt, (int64_t)n_blocks * BS, wkv, 0, true);
    struct tp k = mk(q_dt, n_all, wkv, 0, false), v = mk(q_dt, n_all, wkv, 2, false);
    struct tp q = mk(q_dt, n_new_tot, wq, 0, false), o = mk(q_dt, n_new_tot, wq, 0, true);
    struct attn_meta all = {.n_seqs = 1, .slot_mapping = slots, .block_size = BS};
    T_RC(be_kv_store(g_cpu, &kc.c, &vc.c, &k.c, &v.c, &all, &e), &e);
    T_RC(be_kv_store(g_gpu, &kc.g, &vc.g, &k.g, &v.g, &all, &e), &e);
    char what[160];
    snprintf(what, sizeof what, "kv_store %s kv%s in%s", ac->name, be_dtype_name(kv_dt),
             be_dtype_name(q_dt));
    cmp(what, &kc, 0.0);
    cmp(what, &vc, 0.0);
    struct attn_meta m = {.n_seqs = ac->n_seqs,
                          .query_start = qs,
                          .n_computed = ncomp,
                          .block_tables = bt,
                          .max_blocks_per_seq = max_blocks,
                          .slot_mapping = new_slots,
                          .block_size = BS,
                          .head_dim = ac->hd,
                          .scale = 1.0f / sqrtf((float)ac->hd)};
    T_RC(be_attention(g_cpu, &o.c, &q.c, &kc.c, &vc.c, &m, &e), &e);
    T_RC(be_attention(g_gpu, &o.g, &q.g, &kc.g, &vc.g, &m, &e), &e);
    snprintf(what, sizeof what, "attention %s (nq %d, nkv %d, hd %d) kv%s q%s", ac->name,
             (int)ac->nq, (int)ac->nkv, (int)ac->hd, be_dtype_name(kv_dt), be_dtype_name(q_dt));
    /* A BF16 cache takes the fast paths, which round q and the softmax weights to BF16 for
     * the tensor cores (prefill): BF16-level agreement there, FP32-level with an F32 cache. */
    cmp(what, &o, kv_dt == BE_BF16 ? 1e-5 : thr_of(q_dt, 1e-9, 1e-5));
    free_bufs();
    free(perm), free(bt), free(slots), free(new_slots);
}

static void test_attention(void) {
    static struct acase cs[] = {
        {"decode mixed contexts", 5, 4, 4, 128, {0, 16, 299, 999, 2499}, {1, 1, 1, 1, 1}},
        {"decode GQA 7", 3, 14, 2, 128, {6, 700, 3000}, {1, 1, 1}},
        {"decode GQA 8 long", 1, 16, 2, 128, {8191}, {1}},
        {"prefill GQA 7", 1, 7, 1, 128, {0}, {300}},
        {"prefill GQA 8 odd", 2, 8, 1, 64, {0, 0}, {33, 1}},
        {"chunked prefill + decode", 4, 28, 4, 128, {100, 0, 40, 517}, {77, 5, 1, 1}},
        {"long prefill", 1, 2, 2, 128, {0}, {1024}},
        {"head_dim 80", 2, 6, 3, 80, {3, 0}, {2, 19}},
        {"head_dim 2", 2, 3, 3, 2, {0, 5}, {4, 1}},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        run_attention(&cs[i], BE_F32, BE_F32);
        run_attention(&cs[i], BE_BF16, BE_BF16);
        if (i % 3 == 0) run_attention(&cs[i], BE_BF16, BE_F32);
    }
    /* many block tables: 40 decode sequences (plus one prefill) of assorted lengths */
    static struct acase many = {"40 sequences", 41, 8, 1, 128, {0}, {0}};
    for (int s = 0; s < 41; s++) {
        many.n_computed[s] = (int32_t)urand(600);
        many.n_new[s] = s == 40 ? 45 : 1;
    }
    run_attention(&many, BE_BF16, BE_BF16);
    run_attention(&many, BE_F32, BE_F32);
}

static void test_attention_varlen(void) {
    struct err e = {0};
    const struct {
        int32_t heads, hd, n_segs;
        int32_t lens[6];
    } cs[] = {{16, 80, 5, {1, 7, 64, 100, 300}}, {3, 5, 3, {2, 33, 1}}, {2, 128, 1, {1100}}};
    char what[128];
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int32_t cu[7] = {0};
        for (int s = 0; s < cs[i].n_segs; s++) cu[s + 1] = cu[s] + cs[i].lens[s];
        int64_t n = cu[cs[i].n_segs], w = (int64_t)cs[i].heads * cs[i].hd;
        struct varlen_meta m = {.n_segs = cs[i].n_segs,
                                .cu_seqlens = cu,
                                .head_dim = cs[i].hd,
                                .scale = 1.0f / sqrtf((float)cs[i].hd)};
        for (int dt = 0; dt < 2; dt++) {
            enum be_dtype d = dt ? BE_BF16 : BE_F32;
            /* q, k, v as column views of one fused qkv tensor, as the ViT runs them */
            struct tp qkv = mk(d, n, 3 * w, 0, false), o = mk(d, n, w, 0, true);
            struct tp q, k, v;
            T_RC(be_tensor_cols_view(&q.c, &qkv.c, 0, w, &e), &e);
            T_RC(be_tensor_cols_view(&q.g, &qkv.g, 0, w, &e), &e);
            T_RC(be_tensor_cols_view(&k.c, &qkv.c, w, w, &e), &e);
            T_RC(be_tensor_cols_view(&k.g, &qkv.g, w, w, &e), &e);
            T_RC(be_tensor_cols_view(&v.c, &qkv.c, 2 * w, w, &e), &e);
            T_RC(be_tensor_cols_view(&v.g, &qkv.g, 2 * w, w, &e), &e);
            T_RC(be_attention_varlen(g_cpu, &o.c, &q.c, &k.c, &v.c, &m, &e), &e);
            T_RC(be_attention_varlen(g_gpu, &o.g, &q.g, &k.g, &v.g, &m, &e), &e);
            snprintf(what, sizeof what, "attention_varlen heads %d hd %d %s", (int)cs[i].heads,
                     (int)cs[i].hd, be_dtype_name(d));
            cmp(what, &o, thr_of(d, 1e-9, 1e-5));
            free_bufs();
        }
    }
}

static void test_sample_greedy(void) {
    struct err e = {0};
    const int64_t rows = 4, V = 1001;
    float *l = malloc((size_t)(rows * V) * 4);
    for (int64_t i = 0; i < rows * V; i++) l[i] = frand();
    l[0 * V + 500] = 9.0f, l[0 * V + 700] = 9.0f; /* tie: the lower index wins */
    l[1 * V + V - 1] = 5.0f;
    for (int64_t j = 0; j < V; j++) l[2 * V + j] = -INFINITY;
    l[3 * V + 3] = NAN, l[3 * V + 4] = 7.0f;
    const int32_t want[4] = {500, (int32_t)V - 1, -1, 4};
    for (int dt = 0; dt < 2; dt++) {
        struct tensor lg = mk_view(g_gpu, dt ? BE_BF16 : BE_F32, rows, V, 0, l, NULL);
        int32_t zero[4] = {0};
        struct tensor ids = mk_view(g_gpu, BE_I32, 1, rows, 0, zero, NULL);
        T_RC(be_sample_greedy(g_gpu, &ids, &lg, &e), &e);
        int32_t got[4] = {0};
        T_RC(be_tensor_read(g_gpu, &ids, got, sizeof got, &e), &e);
        for (int r = 0; r < 4; r++) T_EQ(got[r], want[r]);
        free_bufs();
    }
    struct tensor lc = mk_view(g_cpu, BE_F32, rows, V, 0, l, NULL);
    int32_t zero[4] = {0};
    struct tensor ic = mk_view(g_cpu, BE_I32, 1, rows, 0, zero, NULL);
    T_FAILS(be_sample_greedy(g_cpu, &ic, &lc, &e), VELA_EUNSUP, &e);
    free_bufs();
    free(l);
}

/* be_sample: greedy rows as be_sample_greedy; temperature rows, with top-k, top-p or min-p,
 * draw the CPU's token but for a rare row where float noise (logf within an ulp, another
 * summation order of the top-p mass) moves a boundary. */
static void test_sample(void) {
    struct err e = {0};
    const int64_t rows = 64, V = 4099;
    float *l = malloc((size_t)(rows * V) * 4);
    for (int64_t i = 0; i < rows * V; i++) l[i] = 4.0f * frand();
    for (int64_t j = 0; j < V; j++) l[2 * V + j] = -INFINITY;
    l[3 * V + 3] = NAN;
    struct be_sample_row p[64];
    for (int r = 0; r < rows; r++) { /* greedy, top-k, top-p, min-p with top-k, by turns */
        p[r] = (struct be_sample_row){.temperature = r % 4 == 0 ? 0.0f : 0.25f * (float)(r % 7 + 1),
                                      .key = 1000003u * (uint64_t)r + 7};
        if (r % 4 == 1) p[r].top_k = 1 + r;
        if (r % 4 == 2) p[r].top_p = 0.1f * (float)(r % 9 + 1);
        if (r % 4 == 3) p[r].min_p = 0.05f * (float)(r % 5), p[r].top_k = 50;
    }
    int32_t got[64] = {0}, want[64] = {0}, zero[64] = {0};
    int n_same = 0;
    for (int dt = 0; dt < 2; dt++) {
        struct tensor lg = mk_view(g_gpu, dt ? BE_BF16 : BE_F32, rows, V, 0, l, NULL);
        struct tensor ids = mk_view(g_gpu, BE_I32, 1, rows, 0, zero, NULL);
        struct tensor lc = mk_view(g_cpu, dt ? BE_BF16 : BE_F32, rows, V, 0, l, NULL);
        struct tensor ic = mk_view(g_cpu, BE_I32, 1, rows, 0, zero, NULL);
        T_RC(be_sample(g_gpu, &ids, &lg, p, &e), &e);
        T_RC(be_tensor_read(g_gpu, &ids, got, sizeof got, &e), &e);
        T_RC(be_sample(g_cpu, &ic, &lc, p, &e), &e);
        T_RC(be_tensor_read(g_cpu, &ic, want, sizeof want, &e), &e);
        for (int r = 0; r < rows; r++) {
            n_same += got[r] == want[r];
            if (r == 2 || p[r].temperature == 0.0f) {
                T_EQ(got[r], want[r]);
                continue;
            }
            T_CHECK_(got[r] >= 0 && got[r] < V, "row %d: id %d", r, (int)got[r]);
        }
        free_bufs();
    }
    T_CHECK_(n_same >= 2 * rows - 2, "be_sample: %d of %d rows as on the CPU", n_same,
             (int)(2 * rows));
    free(l);
}

static void test_errors(void) {
    struct err e = {0};
    struct be *b = NULL;
    T_FAILS(be_cuda_new(&b, be_cuda_device_count(), NULL, &e), VELA_EINVAL, &e);
    T_OK(b == NULL);
    /* a device OOM is an error, not an abort */
    struct be_buffer *buf = NULL;
    T_FAILS(be_buffer_new(g_gpu, BE_BUF_COMPUTE, (size_t)1 << 50, &buf, &e), VELA_ENOMEM, &e);
    T_OK(buf == NULL);
    T_RC(be_sync(g_gpu, &e), &e); /* and the backend lives on */
    /* weights are copied: the host copy may change after the upload */
    float host[6] = {1, 2, 3, 4, 5, 6};
    T_RC(be_buffer_from_host(g_gpu, host, sizeof host, BE_BUF_WEIGHTS, &buf, &e), &e);
    if (buf) {
        struct tensor t;
        int64_t shape[2] = {2, 3};
        T_RC(be_tensor_init(&t, buf, 0, BE_F32, 2, shape, &e), &e);
        host[0] = 100;
        float back[6] = {0};
        T_RC(be_tensor_read(g_gpu, &t, back, sizeof back, &e), &e);
        T_NEAR(back[0], 1.0, 0.0);
        T_NEAR(back[5], 6.0, 0.0);
        T_OK(be_tensor_host_ptr(&t) == NULL);
        be_buffer_free(buf);
    }
}

int main(void) {
    struct err e = {0};
    g_rng = 20260101;
    int rc = cf_open(4);
    if (rc == 77) return 77;
    if (rc == 0) {
        T_RUN(test_matmul);
        T_RUN(test_norm_act);
        T_RUN(test_embed_gather);
        T_RUN(test_rope);
        T_RUN(test_attention);
        T_RUN(test_attention_varlen);
        T_RUN(test_sample_greedy);
        T_RUN(test_sample);
        T_RUN(test_errors);
        T_RC(be_sync(g_gpu, &e), &e);
    }
    cf_close();
    return t_done();
}

#else

int main(void) {
    printf("SKIP: no CUDA device (built without CUDA)\n");
    return 77;
}

#endif
