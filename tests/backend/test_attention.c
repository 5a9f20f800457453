/* Tests for be_kv_store and be_attention (backend/attn.c, cpu/kv_cache.c, cpu/attention.c,
 * cpu/attention_avx512.c) against a plain-C reference over dense per-sequence K/V: causal
 * prefill, chunked prefill after a cached prefix, decode, several sequences in one call, GQA
 * ratios 1, 2, 5, 7, 8 and 9, head_dim 16 / 18 / 64 / 80 / 128 / 288, shuffled
 * (non-contiguous) block tables of several block sizes, F32 and BF16 caches and q/o, on the
 * AVX-512, AVX2 and portable kernels with 1 and 2 threads, long-context decode rows (the
 * AVX-512 kernel's split-K path) with 1, 2 and 3 threads, and argument checks. */
#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"
#include "util/bf16.h"
#include "t.h"

#include <stdint.h>

static uint32_t g_rng = 4242;

static float frand(void) { /* uniform in [-2, 2) */
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)((g_rng >> 8) & 0xffffff) / 4194304.0f - 2.0f;
}

static uint32_t urand(uint32_t n) {
    g_rng = g_rng * 1664525u + 1013904223u;
    return (g_rng >> 8) % n;
}

static float r16(float v) {
    return bf16_to_f32(f32_to_bf16(v));
}

#include "be_fixture.h"

#define MAXS 8
#define BS   16

/* One test case: sequences with n_computed cached tokens (stored by an earlier kv_store)
 * and n_new tokens computed now; q and o share q_dt; bs 0 means blocks of BS. */
struct acase {
    int32_t n_seqs, nq, nkv, hd;
    int32_t n_computed[MAXS], n_new[MAXS];
    enum be_dtype kv_dt, q_dt;
    int32_t bs;
};

/* Dense reference for one query: keys/values kk, vv [n_keys, nkv*hd] of its sequence. */
static void ref_attend(const float *q, const float *kk, const float *vv, int32_t n_keys,
                       int32_t nkv, int32_t hd, int32_t kvh, float scale, float *out) {
    double *s = malloc((size_t)n_keys * sizeof *s), mx = -1e300, sum = 0;
    for (int32_t j = 0; j < n_keys; j++) {
        double d = 0;
        for (int32_t i = 0; i < hd; i++)
            d += (double)q[i] * kk[(size_t)j * nkv * hd + kvh * hd + i];
        s[j] = d * scale;
        mx = fmax(mx, s[j]);
    }
    for (int32_t j = 0; j < n_keys; j++) sum += (s[j] = exp(s[j] - mx));
    for (int32_t i = 0; i < hd; i++) {
        double a = 0;
        for (int32_t j = 0; j < n_keys; j++) a += s[j] * vv[(size_t)j * nkv * hd + kvh * hd + i];
        out[i] = (float)(a / sum);
    }
    free(s);
}

static void run_case(struct be *b, const struct acase *c) {
    struct err e = {0};
    int32_t w = c->nkv * c->hd, wq = c->nq * c->hd, BSZ = c->bs ? c->bs : BS;
    /* block tables: a shuffled permutation of all blocks, so tables are non-contiguous */
    int32_t mbps = 0, n_blocks = 0;
    for (int s = 0; s < c->n_seqs; s++) {
        int32_t nb = (c->n_computed[s] + c->n_new[s] + BSZ - 1) / BSZ + 1;
        mbps = nb > mbps ? nb : mbps;
    }
    n_blocks = mbps * c->n_seqs + 3;
    int32_t *perm = malloc((size_t)n_blocks * 4);
    for (int32_t i = 0; i < n_blocks; i++) perm[i] = i;
    for (int32_t i = n_blocks - 1; i > 0; i--) {
        int32_t j = (int32_t)urand((uint32_t)i + 1), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    int32_t *bt = malloc((size_t)(c->n_seqs * mbps) * 4);
    for (int32_t i = 0; i < c->n_seqs * mbps; i++) bt[i] = perm[i];
    /* dense K/V per sequence (all tokens), rounded when the cache is BF16 */
    float *kk[MAXS], *vv[MAXS];
    for (int s = 0; s < c->n_seqs; s++) {
        size_t n = (size_t)(c->n_computed[s] + c->n_new[s]) * (size_t)w;
        kk[s] = malloc(n * 4), vv[s] = malloc(n * 4);
        for (size_t i = 0; i < n; i++) {
            kk[s][i] = frand(), vv[s][i] = frand();
            if (c->kv_dt == BE_BF16) kk[s][i] = r16(kk[s][i]), vv[s][i] = r16(vv[s][i]);
        }
    }
    struct tensor kc = mk(b, c->kv_dt, (int64_t)n_blocks * BSZ, w, NULL);
    struct tensor vc = mk(b, c->kv_dt, (int64_t)n_blocks * BSZ, w, NULL);
    /* Fill the cache with junk first: attention must read only its own blocks. */
    {
        float *junk = malloc((size_t)n_blocks * BSZ * (size_t)w * 4);
        for (size_t i = 0; i < (size_t)n_blocks * BSZ * (size_t)w; i++) junk[i] = 1e3f;
        struct err e2 = {0};
        struct tensor jk = mk(b, c->kv_dt, (int64_t)n_blocks * BSZ, w, junk);
        (void)jk;
        void *h = malloc((size_t)n_blocks * BSZ * (size_t)w * 4);
        T_RC(be_tensor_read(b, &jk, h, (size_t)n_blocks * BSZ * w * be_dtype_size(c->kv_dt), &e2),
             &e2);
        T_RC(be_tensor_write(b, &kc, h, (size_t)n_blocks * BSZ * w * be_dtype_size(c->kv_dt), &e2),
             &e2);
        T_RC(be_tensor_write(b, &vc, h, (size_t)n_blocks * BSZ * w * be_dtype_size(c->kv_dt), &e2),
             &e2);
        free(h), free(junk);
    }
    /* Two steps: first the cached prefixes, then the new tokens (with attention). */
    for (int step = 0; step < 2; step++) {
        int32_t qs[MAXS + 1] = {0}, ncomp[MAXS], n_seqs = 0;
        int32_t *bts = malloc((size_t)(c->n_seqs * mbps) * 4);
        int32_t n_tok = 0;
        for (int s = 0; s < c->n_seqs; s++) {
            int32_t n = step == 0 ? c->n_computed[s] : c->n_new[s];
            if (n == 0) continue;
            ncomp[n_seqs] = step == 0 ? 0 : c->n_computed[s];
            memcpy(bts + n_seqs * mbps, bt + s * mbps, (size_t)mbps * 4);
            n_tok += n;
            qs[++n_seqs] = n_tok;
        }
        if (n_seqs == 0) {
            free(bts);
            continue;
        }
        float *k = malloc((size_t)n_tok * w * 4), *v = malloc((size_t)n_tok * w * 4);
        int32_t *slots = malloc((size_t)n_tok * 4);
        int32_t r = 0;
        for (int s = 0; s < c->n_seqs; s++) {
            int32_t p0 = step == 0 ? 0 : c->n_computed[s];
            int32_t n = step == 0 ? c->n_computed[s] : c->n_new[s];
            for (int32_t i = 0; i < n; i++, r++) {
                int32_t p = p0 + i;
                slots[r] = bt[s * mbps + p / BSZ] * BSZ + p % BSZ;
                memcpy(k + (size_t)r * w, kk[s] + (size_t)p * w, (size_t)w * 4);
                memcpy(v + (size_t)r * w, vv[s] + (size_t)p * w, (size_t)w * 4);
            }
        }
        /* new k/v handed over as F32 (the model's activations); the cache rounds */
        struct tensor tk = mk(b, BE_F32, n_tok, w, k), tv = mk(b, BE_F32, n_tok, w, v);
        struct attn_meta m = {.n_seqs = n_seqs,
                              .query_start = qs,
                              .n_computed = ncomp,
                              .block_tables = bts,
                              .max_blocks_per_seq = mbps,
                              .slot_mapping = slots,
                              .block_size = BSZ,
                              .head_dim = c->hd,
                              .scale = 1.0f / sqrtf((float)c->hd)};
        T_RC(be_kv_store(b, &kc, &vc, &tk, &tv, &m, &e), &e);
        if (step == 1) {
            float *q = malloc((size_t)n_tok * wq * 4), *o = malloc((size_t)n_tok * wq * 4);
            float ref[1024];
            for (size_t i = 0; i < (size_t)n_tok * wq; i++)
                q[i] = c->q_dt == BE_BF16 ? r16(frand()) : frand();
            struct tensor tq = mk(b, c->q_dt, n_tok, wq, q), to = mk(b, c->q_dt, n_tok, wq, NULL);
            T_RC(be_attention(b, &to, &tq, &kc, &vc, &m, &e), &e);
            get(b, &to, o);
            double md = 0;
            r = 0;
            for (int s = 0; s < c->n_seqs; s++)
                for (int32_t i = 0; i < c->n_new[s]; i++, r++)
                    for (int32_t h = 0; h < c->nq; h++) {
                        ref_attend(q + (size_t)r * wq + h * c->hd, kk[s], vv[s],
                                   c->n_computed[s] + i + 1, c->nkv, c->hd, h / (c->nq / c->nkv),
                                   m.scale, ref);
                        for (int32_t d = 0; d < c->hd; d++)
                            md = fmax(md, fabs((double)o[(size_t)r * wq + h * c->hd + d] - ref[d]));
                    }
            /* FP32 softmax and sums against a double reference over the same K/V; a BF16
             * output adds one rounding of values below 2 (half an ulp: 2^-8). */
            double tol = c->q_dt == BE_BF16 ? 8e-3 : 2e-5;
            T_CHECK_(md <= tol, "attention nq %d nkv %d hd %d: max diff %g > %g", c->nq, c->nkv,
                     c->hd, md, tol);
            free(q), free(o);
        }
        free(k), free(v), free(slots), free(bts);
    }
    for (int s = 0; s < c->n_seqs; s++) free(kk[s]), free(vv[s]);
    free(perm), free(bt);
    free_bufs();
}

static struct be *mkbe_isa(int threads, enum cpu_isa isa) {
    return mk_cpu(isa, threads, 0);
}

static struct be *mkbe(int threads) {
    return mkbe_isa(threads, CPU_ISA_AUTO);
}

static void test_grid(void) {
    struct be *b = mkbe(2);
    static const struct acase cases[] = {
        /* one causal prefill, MHA (ratio 1), head_dim 16 */
        {1, 3, 3, 16, {0}, {37}, BE_F32, BE_F32, 0},
        /* decode after 40 tokens, GQA 7, head_dim 128 */
        {1, 7, 1, 128, {40}, {1}, BE_F32, BE_F32, 0},
        /* mixed batch: prefill, decode, chunk after a prefix; GQA 2, head_dim 80 */
        {3, 4, 2, 80, {0, 20, 16}, {19, 1, 9}, BE_F32, BE_F32, 0},
        /* GQA 7 with 2 kv heads, chunk crossing block edges, decode at a block edge */
        {3, 14, 2, 16, {5, 31, 0}, {27, 1, 1}, BE_F32, BE_F32, 0},
        /* BF16 cache, F32 q/o */
        {2, 8, 2, 128, {0, 17}, {33, 1}, BE_BF16, BE_F32, 0},
        /* BF16 everywhere */
        {2, 4, 1, 80, {3, 0}, {2, 16}, BE_BF16, BE_BF16, 0},
        /* a group of 9 query heads: two tiles of the kernel's head tile (8) */
        {2, 18, 2, 16, {0, 40}, {21, 1}, BE_F32, BE_F32, 0},
        /* odd head_dim tail (not a multiple of 8) */
        {1, 2, 1, 18, {7}, {12}, BE_BF16, BE_F32, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(b, &cases[i]);
    be_free(b);
    /* one thread gives the same answers (no reliance on the split) */
    b = mkbe(1);
    run_case(b, &cases[2]);
    be_free(b);
    /* the AVX2 kernel, and the portable one (VELA_CPU_ISA=portable) */
    if (cpu_isa_supported(CPU_ISA_AVX2)) {
        b = mkbe_isa(2, CPU_ISA_AVX2);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(b, &cases[i]);
        be_free(b);
    }
    b = mkbe_isa(2, CPU_ISA_PORTABLE);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(b, &cases[i]);
    be_free(b);
}

/* Shapes aimed at the AVX-512 kernel's edges (attention_avx512.c: tiles of up to 4 rows at
 * GQA 7-8, 8 rows at GQA 1-2, groups of 8 query vectors, 16-key chunks, head_dim tails,
 * head tiles, blocks of any size; prefill tiles over a BF16 cache with head_dim a multiple of
 * 32 go to attention_prefill_avx512.c, up to 32 query vectors in 1 or 2 vectors of lanes),
 * run on every kernel so all three stay covered. */
static const struct acase g_edge[] = {
    /* the lanes kernel's two widths: GQA 7 tiles of 4 rows (28 lanes) and a 2-row sequence
     * (14) at the first tile; GQA 8 at head_dim 128 (32 lanes, a 2-row tail); GQA 3 (8-row
     * tiles, 24 lanes) after a cached prefix */
    {2, 14, 2, 64, {5, 20}, {2, 40}, BE_BF16, BE_F32, 0},
    {1, 16, 2, 128, {0}, {70}, BE_BF16, BE_BF16, 0},
    {1, 6, 2, 128, {10}, {50}, BE_BF16, BE_F32, 0},
    /* long chunked prefill: 150 rows after 37 cached (many tiles, a 2-row tail), GQA 7 */
    {1, 14, 2, 64, {37}, {150}, BE_BF16, BE_F32, 0},
    /* long prefill from scratch, MHA (G = 1: 8-row tiles), head_dim 18 (masked tail) */
    {1, 2, 2, 18, {0}, {150}, BE_F32, BE_F32, 0},
    /* GQA 5, head_dim 80, BF16 q/o: prefill, decode, chunk, decode right after a block */
    {4, 10, 2, 80, {0, 100, 33, 16}, {23, 1, 9, 1}, BE_BF16, BE_BF16, 0},
    /* GQA 8, head_dim 128, F32 cache with BF16 q/o: chunk after a prefix, then a decode */
    {2, 8, 1, 128, {20, 63}, {45, 1}, BE_F32, BE_BF16, 0},
    /* GQA 9: two head tiles (5 + 4); prefill then decode */
    {2, 18, 2, 64, {0, 47}, {30, 1}, BE_BF16, BE_F32, 0},
    /* eight decode rows at contexts around block and chunk edges */
    {8, 14, 2, 64, {0, 15, 16, 30, 46, 63, 99, 4}, {1, 1, 1, 1, 1, 1, 1, 1}, BE_BF16, BE_F32, 0},
    /* GQA 7, head_dim 16, a 19-row prefill (tile tail of 3) next to a decode */
    {2, 7, 1, 16, {0, 12}, {19, 1}, BE_F32, BE_F32, 0},
    /* blocks of 8 and 32 (a chunk spans blocks / a block holds two chunks) and of 5 */
    {2, 14, 2, 64, {13, 40}, {40, 1}, BE_BF16, BE_F32, 8},
    {2, 14, 2, 64, {13, 40}, {40, 1}, BE_BF16, BE_F32, 32},
    {3, 6, 2, 18, {3, 0, 21}, {17, 6, 1}, BE_F32, BE_BF16, 5},
    /* decode batches, where a tile spans several kv heads (kvt): 4 kv heads in one tile; 8
     * kv heads of GQA 8 in two tiles of 4 (32 query vectors); an F32 cache whose rows cap
     * kvt at 2; a 3-row chunk among decode rows (a multi-row tile over 2 kv heads, two groups
     * per kv head) */
    {6, 8, 4, 64, {3, 17, 40, 0, 64, 31}, {1, 1, 1, 1, 1, 1}, BE_BF16, BE_F32, 0},
    {3, 64, 8, 32, {10, 50, 2}, {1, 1, 1}, BE_BF16, BE_BF16, 0},
    {4, 4, 4, 128, {20, 33, 5, 70}, {1, 1, 1, 1}, BE_F32, BE_F32, 0},
    {4, 6, 2, 64, {0, 30, 12, 47}, {3, 1, 1, 1}, BE_BF16, BE_F32, 0},
    /* head_dim 288: above ATT512_MAX_HEAD_DIM, so the AVX-512 backend uses the AVX2 kernel */
    {1, 4, 2, 288, {5}, {20}, BE_BF16, BE_F32, 0},
};

static void run_edge(int threads, enum cpu_isa isa) {
    struct be *b = mkbe_isa(threads, isa);
    for (size_t i = 0; b && i < sizeof g_edge / sizeof g_edge[0]; i++) run_case(b, &g_edge[i]);
    be_free(b);
}

static void test_kernels(void) {
    if (cpu_isa_supported(CPU_ISA_AVX512)) {
        run_edge(2, CPU_ISA_AVX512);
        run_edge(1, CPU_ISA_AVX512);
    } else {
        T_SKIP("AVX-512 attention kernel not run: this CPU lacks AVX-512 BF16");
    }
    if (cpu_isa_supported(CPU_ISA_AVX2))
        run_edge(2, CPU_ISA_AVX2);
    else
        T_SKIP("AVX2 attention kernel not run: this CPU lacks AVX2/FMA");
    run_edge(2, CPU_ISA_PORTABLE);
}

/* Decode rows at long contexts (600-3000 keys): with few items per thread the AVX-512 kernel
 * splits each row's keys across threads and merges the partials (split-K), so these run with
 * 1, 2 and 3 threads (4, 8 and 12 wanted items: some cases split on some counts only), next to
 * short prefill rows that do not split; the portable kernel runs them too. */
static const struct acase g_long[] = {
    /* one decode row, GQA 7 (2 items), BF16 cache */
    {1, 14, 2, 64, {2047}, {1}, BE_BF16, BE_F32, 16},
    /* two rows, GQA 8, head_dim 128, F32, blocks of 32 (4 items: no split on 1 thread) */
    {2, 16, 2, 128, {700, 2999}, {1, 1}, BE_F32, BE_F32, 32},
    /* three rows, GQA 7 on one kv head, head_dim 80, BF16 q/o, blocks of 5 */
    {3, 7, 1, 80, {1500, 600, 2500}, {1, 1, 1}, BE_BF16, BE_BF16, 5},
    /* two decode rows around a 3-row prefill (rows with 1-3 keys stay whole), blocks of 8 */
    {3, 7, 1, 64, {1200, 0, 900}, {1, 3, 1}, BE_BF16, BE_F32, 8},
    /* a 2-row chunk after a long prefix (each row split) next to a decode row */
    {2, 8, 1, 128, {650, 2000}, {2, 1}, BE_F32, BE_F32, 16},
    /* GQA 9: two head tiles of one row, each split */
    {1, 9, 1, 64, {1000}, {1}, BE_F32, BE_F32, 16},
};

static void run_long(int threads, enum cpu_isa isa) {
    struct be *b = mkbe_isa(threads, isa);
    for (size_t i = 0; b && i < sizeof g_long / sizeof g_long[0]; i++) run_case(b, &g_long[i]);
    be_free(b);
}

static void test_long_decode(void) {
    if (cpu_isa_supported(CPU_ISA_AVX512)) {
        run_long(1, CPU_ISA_AVX512);
        run_long(2, CPU_ISA_AVX512);
        run_long(3, CPU_ISA_AVX512);
    } else {
        T_SKIP("AVX-512 split-K attention not run: this CPU lacks AVX-512 BF16");
    }
    run_long(2, CPU_ISA_PORTABLE);
}

static void test_errors(void) {
    struct be *b = mkbe(1);
    struct err e = {0};
    float z[64 * 16] = {0};
    struct tensor kc = mk(b, BE_F32, 64, 16, NULL), vc = mk(b, BE_F32, 64, 16, NULL);
    struct tensor k = mk(b, BE_F32, 2, 16, z), v = mk(b, BE_F32, 2, 16, z);
    struct tensor q = mk(b, BE_F32, 2, 32, z), o = mk(b, BE_F32, 2, 32, NULL);
    int32_t qs[2] = {0, 2}, nc[1] = {0}, bt[2] = {3, 1}, slots[2] = {48, 49};
    struct attn_meta m = {.n_seqs = 1,
                          .query_start = qs,
                          .n_computed = nc,
                          .block_tables = bt,
                          .max_blocks_per_seq = 2,
                          .slot_mapping = slots,
                          .block_size = 16,
                          .head_dim = 16,
                          .scale = 0.25f};
    T_RC(be_kv_store(b, &kc, &vc, &k, &v, &m, &e), &e);
    T_RC(be_attention(b, &o, &q, &kc, &vc, &m, &e), &e);
    slots[1] = 64;
    T_FAILS(be_kv_store(b, &kc, &vc, &k, &v, &m, &e), VELA_EINVAL, &e); /* slot past the cache */
    slots[1] = 49;
    bt[0] = 4;
    T_FAILS(be_attention(b, &o, &q, &kc, &vc, &m, &e), VELA_EINVAL, &e); /* block 4 of 4 */
    bt[0] = 3;
    nc[0] = 31; /* 33 keys need 3 blocks, the table holds 2 */
    T_FAILS(be_attention(b, &o, &q, &kc, &vc, &m, &e), VELA_EINVAL, &e);
    nc[0] = 0;
    qs[1] = 1; /* rows do not add up */
    T_FAILS(be_attention(b, &o, &q, &kc, &vc, &m, &e), VELA_EINVAL, &e);
    qs[1] = 2;
    m.head_dim = 24; /* 32 not a multiple */
    T_FAILS(be_attention(b, &o, &q, &kc, &vc, &m, &e), VELA_EINVAL, &e);
    m.head_dim = 16;
    struct tensor q3 = mk(b, BE_F32, 2, 48, z), o3 = mk(b, BE_F32, 2, 48, NULL);
    (void)q3, (void)o3;
    struct tensor kc3 = mk(b, BE_F32, 64, 32, NULL), vc3 = mk(b, BE_F32, 64, 32, NULL);
    T_FAILS(be_attention(b, &o3, &q3, &kc3, &vc3, &m, &e), VELA_EINVAL, &e); /* 3 q, 2 kv */
    T_FAILS(be_attention(b, &q, &q, &kc, &vc, &m, &e), VELA_EINVAL, &e);     /* o aliases q */
    T_FAILS(be_attention(b, &o, &q, &kc, &kc, &m, &e), VELA_EINVAL, &e);     /* k == v */
    m.block_size = 48; /* 64 rows are not whole blocks */
    T_FAILS(be_attention(b, &o, &q, &kc, &vc, &m, &e), VELA_EINVAL, &e);
    free_bufs();
    be_free(b);
}

int main(void) {
    T_RUN(test_grid);
    T_RUN(test_kernels);
    T_RUN(test_long_decode);
    T_RUN(test_errors);
    return t_done();
}
