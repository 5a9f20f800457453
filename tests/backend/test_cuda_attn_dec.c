/* The CUDA flash-decoding path (cuda_attn_dec.c, attention_dec.cu) against the CPU backend's
 * paged attention. cu_attention takes this path only when the prefill fast path applies
 * too, so the test calls cu_attn_dec directly, on sequences with 1..16 new rows: contexts
 * around block edges (1, 15, 16, 17), long ones that split the keys (4097), rows 2..16 after
 * cached prefixes (each row its own causal end), many shuffled block tables, GQA 1, 3, 7, 8,
 * 12 and 16 (a row's heads over two chunks), head_dim 64 and 128, F32 and BF16 q/o as
 * strided column views, block sizes 5, 16 and 64, a partial buffer too small for the
 * natural split count, and the row-count filter (rows of other sequences untouched).
 * Cache rows no key of the call may read hold NaN, so a read past a causal end or into
 * another sequence's block shows as a NaN output. nerr = sum (gpu - cpu)^2 / sum cpu^2.
 * Prints "SKIP: no CUDA device" and exits 77 without a GPU or a CUDA build. */
#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"
#include "util/bf16.h"
#include "t.h"

#ifdef VELA_HAVE_CUDA
#include "backend/cuda/backend_cuda.h"
#include "backend/cuda/cuda_impl.h"
#include "cuda_fixture.h"
#endif

#include <stdint.h>

#ifdef VELA_HAVE_CUDA

#define MAX_SEQS 24
static struct be *g_small; /* a CUDA backend with a 16 KiB partial buffer */

struct dcase {
    const char *name;
    int32_t n_seqs, nq, nkv, hd;
    enum be_dtype q_dt, o_dt;
    int32_t n_computed[MAX_SEQS], n_new[MAX_SEQS];
};

static int32_t g_bs = 16; /* cache block size of the next cases */

/* Cache contents: random where a key of the call lives, NaN everywhere else. */
static float *cache_host(const struct dcase *dc, const int32_t *bt, int32_t max_blocks,
                         int64_t n_rows, int64_t w) {
    float *h = malloc((size_t)(n_rows * w) * 4);
    for (int64_t i = 0; i < n_rows * w; i++) h[i] = NAN;
    for (int32_t s = 0; s < dc->n_seqs; s++)
        for (int32_t j = 0; j < dc->n_computed[s] + dc->n_new[s]; j++) {
            int64_t row = (int64_t)bt[s * max_blocks + j / g_bs] * g_bs + j % g_bs;
            for (int64_t c = 0; c < w; c++) h[row * w + c] = frand();
        }
    return h;
}

/* Compares the rows of sequences with lo..hi new rows (nerr against the threshold of o's
 * dtype) and checks that the GPU left every other row at 0. */
static void compare_rows(const struct dcase *dc, const int32_t *qs, int64_t wq, int32_t lo,
                         int32_t hi, struct be *cpu, const struct tensor *o_cpu, struct be *gpu,
                         const struct tensor *o_gpu) {
    float *oc = rd(cpu, o_cpu), *og = rd(gpu, o_gpu);
    double num = 0, den = 0, worst = 0;
    int64_t at = 0, untouched_bad = 0;
    for (int32_t s = 0; s < dc->n_seqs; s++) {
        bool in = dc->n_new[s] >= lo && dc->n_new[s] <= hi;
        for (int64_t i = (int64_t)qs[s] * wq; i < (int64_t)qs[s + 1] * wq; i++) {
            if (!in) {
                untouched_bad += og[i] != 0.0f;
                continue;
            }
            double d = (double)og[i] - oc[i];
            if (!(fabs(d) <= worst)) worst = fabs(d), at = i;
            num += d * d, den += (double)oc[i] * oc[i];
        }
    }
    double nerr = den > 0 ? num / den : num, thr = dc->o_dt == BE_F32 ? 1e-9 : 1e-5;
    if (nerr != nerr) nerr = INFINITY;
    T_CHECK_(nerr <= thr,
             "%s (nq %d nkv %d hd %d q %s o %s rows %d..%d): nerr %.3g > %.3g (max |diff| %.3g at "
             "row %lld col %lld: cpu %.6g gpu %.6g)",
             dc->name, (int)dc->nq, (int)dc->nkv, (int)dc->hd, be_dtype_name(dc->q_dt),
             be_dtype_name(dc->o_dt), (int)lo, (int)hi, nerr, thr, worst, (long long)(at / wq),
             (long long)(at % wq), oc[at], og[at]);
    T_CHECK_(untouched_bad == 0, "%s: %lld outputs of sequences outside %d..%d rows written",
             dc->name, (long long)untouched_bad, (int)lo, (int)hi);
    free(oc), free(og);
}

/* Runs dc on the CPU (all rows) and with cu_attn_dec on gpu for sequences of lo..hi rows;
 * compares those rows and checks that the others stay 0 on the GPU. */
static void run_case(const struct dcase *dc, struct be *gpu, int32_t lo, int32_t hi) {
    struct err e = {0};
    int32_t qs[MAX_SEQS + 1], max_blocks = 1, n_blocks;
    qs[0] = 0;
    for (int32_t s = 0; s < dc->n_seqs; s++) {
        int32_t nb = (dc->n_computed[s] + dc->n_new[s] + g_bs - 1) / g_bs;
        if (nb > max_blocks) max_blocks = nb;
        qs[s + 1] = qs[s] + dc->n_new[s];
    }
    n_blocks = dc->n_seqs * max_blocks + 5;
    int32_t *perm = malloc((size_t)n_blocks * 4), *bt = malloc((size_t)dc->n_seqs * max_blocks * 4);
    for (int32_t i = 0; i < n_blocks; i++) perm[i] = i;
    for (int32_t i = n_blocks - 1; i > 0; i--) {
        int32_t j = (int32_t)urand((uint32_t)i + 1), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    for (int32_t i = 0; i < dc->n_seqs * max_blocks; i++) bt[i] = perm[i];
    int64_t wkv = (int64_t)dc->nkv * dc->hd, wq = (int64_t)dc->nq * dc->hd, n_q = qs[dc->n_seqs];
    int64_t n_cache = (int64_t)n_blocks * g_bs;
    float *kh = cache_host(dc, bt, max_blocks, n_cache, wkv);
    float *vh = cache_host(dc, bt, max_blocks, n_cache, wkv);
    float *qh = malloc((size_t)(n_q * (wq + 3)) * 4), *zh = calloc((size_t)(n_q * (wq + 5)), 4);
    for (int64_t i = 0; i < n_q * (wq + 3); i++) qh[i] = frand();
    struct tensor kc[2], vc[2], q[2], o[2];
    struct be *bs[2] = {g_cpu, gpu};
    for (int b = 0; b < 2; b++) {
        kc[b] = mk_view(bs[b], BE_BF16, n_cache, wkv, 0, kh, NULL);
        vc[b] = mk_view(bs[b], BE_BF16, n_cache, wkv, 0, vh, NULL);
        q[b] = mk_view(bs[b], dc->q_dt, n_q, wq, 3, qh, NULL);
        o[b] = mk_view(bs[b], dc->o_dt, n_q, wq, 5, zh, NULL);
    }
    struct attn_meta m = {.n_seqs = dc->n_seqs,
                          .query_start = qs,
                          .n_computed = dc->n_computed,
                          .block_tables = bt,
                          .max_blocks_per_seq = max_blocks,
                          .block_size = g_bs,
                          .head_dim = dc->hd,
                          .scale = 1.0f / sqrtf((float)dc->hd)};
    struct be_cuda *c = (struct be_cuda *)gpu;
    T_RC(be_attention(g_cpu, &o[0], &q[0], &kc[0], &vc[0], &m, &e), &e);
    T_OK(cu_attn_dec_applies(c, &o[1], &q[1], &kc[1], &m));
    T_RC(cu_enter(c, &e), &e);
    T_RC(cu_attn_dec(c, &o[1], &q[1], &kc[1], &vc[1], &m, lo, hi, &e), &e);
    T_RC(be_sync(gpu, &e), &e);
    compare_rows(dc, qs, wq, lo, hi, g_cpu, &o[0], gpu, &o[1]);
    free(kh), free(vh), free(qh), free(zh), free(perm), free(bt);
    free_bufs();
}

static void test_decode_rows(void) {
    /* one new row: contexts 1, 15, 16, 17, 300 and 4097 (split) */
    struct dcase ctx = {
        "contexts",        6, 14, 2, 128, BE_BF16, BE_BF16, {0, 14, 15, 16, 299, 4096},
        {1, 1, 1, 1, 1, 1}};
    run_case(&ctx, g_gpu, 1, 16);
    ctx.q_dt = ctx.o_dt = BE_F32;
    run_case(&ctx, g_gpu, 1, 16);
    ctx.q_dt = BE_F32, ctx.o_dt = BE_BF16;
    run_case(&ctx, g_gpu, 1, 16);
    /* GQA 8, head_dim 64, a split context */
    struct dcase g8 = {"GQA 8 hd 64", 3, 16, 2, 64, BE_F32, BE_F32, {0, 511, 1200}, {1, 1, 1}};
    run_case(&g8, g_gpu, 1, 16);
    /* GQA 1 */
    struct dcase g1 = {"GQA 1", 3, 4, 4, 128, BE_BF16, BE_BF16, {700, 20, 3}, {1, 1, 1}};
    run_case(&g1, g_gpu, 1, 16);
}

static void test_multi_rows(void) {
    /* 2..16 new rows after cached prefixes, each row its own causal end */
    struct dcase r7 = {"rows GQA 7", 4, 7, 1, 64, BE_F32, BE_F32, {5, 0, 33, 600}, {2, 16, 7, 13}};
    run_case(&r7, g_gpu, 1, 16);
    struct dcase r1 = {"rows GQA 1", 3, 4, 4, 128, BE_BF16, BE_BF16, {700, 20, 0}, {3, 16, 9}};
    run_case(&r1, g_gpu, 1, 16);
    struct dcase r8 = {"rows GQA 8", 2, 8, 1, 128, BE_F32, BE_BF16, {1000, 17}, {5, 2}};
    run_case(&r8, g_gpu, 1, 16);
    /* GQA 3: chunks of 2 whole rows (6 vectors); GQA 16: one row's heads in two chunks;
     * GQA 12: chunks of 8 that cut across rows (the second holds heads of rows 0 and 1) */
    struct dcase r3 = {"rows GQA 3", 2, 6, 2, 128, BE_BF16, BE_F32, {300, 4}, {3, 1}};
    run_case(&r3, g_gpu, 1, 16);
    struct dcase g16 = {"GQA 16", 2, 16, 1, 64, BE_F32, BE_F32, {600, 31}, {1, 1}};
    run_case(&g16, g_gpu, 1, 16);
    struct dcase g12 = {"rows GQA 12", 2, 12, 1, 64, BE_F32, BE_F32, {40, 500}, {3, 1}};
    run_case(&g12, g_gpu, 1, 16);
}

static void test_block_sizes(void) {
    /* blocks of 5 keys (a tile spans 4 blocks) and of 64 (several tiles per block) */
    struct dcase b5 = {"block size 5", 3, 14, 2, 128, BE_BF16, BE_BF16, {0, 33, 700}, {1, 4, 1}};
    struct dcase b64 = {"block size 64", 2, 8, 1, 64, BE_F32, BE_F32, {1500, 63}, {1, 2}};
    g_bs = 5;
    run_case(&b5, g_gpu, 1, 16);
    g_bs = 64;
    run_case(&b64, g_gpu, 1, 16);
    g_bs = 16;
}

static void test_many_sequences(void) {
    struct dcase many = {"20 sequences", 20, 28, 4, 128, BE_BF16, BE_BF16, {0}, {0}};
    for (int s = 0; s < 20; s++) {
        many.n_computed[s] = (int32_t)urand(600);
        many.n_new[s] = s % 5 == 4 ? 1 + (int32_t)urand(4) : 1;
    }
    run_case(&many, g_gpu, 1, 16);
}

static void test_row_filter(void) {
    /* a 20-row prefill chunk is left to the other path; then only multi-row sequences */
    struct dcase mix = {"row filter", 4, 14, 2, 128, BE_BF16, BE_BF16, {40, 0, 900, 7},
                        {1, 20, 1, 3}};
    run_case(&mix, g_gpu, 1, 16);
    run_case(&mix, g_gpu, 2, 16);
    struct dcase none = {"nothing eligible", 1, 7, 1, 64, BE_F32, BE_F32, {3}, {20}};
    run_case(&none, g_gpu, 1, 16);
}

static void test_small_partial(void) {
    /* 16 KiB of partials: the 4097-key context gets fewer splits than it would */
    struct dcase lim = {"small partial buffer", 2, 7, 1, 128, BE_F32, BE_F32, {4096, 2000}, {1, 1}};
    run_case(&lim, g_small, 1, 16);
    run_case(&lim, g_gpu, 1, 16);
}

static void test_applies(void) {
    struct err e = {0};
    struct be_buffer *b1 = NULL, *b2 = NULL;
    T_RC(be_buffer_new(g_gpu, BE_BUF_COMPUTE, 64 * 128 * 4, &b1, &e), &e);
    T_RC(be_buffer_new(g_gpu, BE_BUF_COMPUTE, 64 * 128 * 4, &b2, &e), &e);
    if (!b1 || !b2) return;
    struct tensor q = {0}, kf = {0}, kb = {0};
    int64_t sq[2] = {4, 256}, sk[2] = {64, 128};
    T_RC(be_tensor_init(&q, b1, 0, BE_F32, 2, sq, &e), &e);
    T_RC(be_tensor_init(&kf, b2, 0, BE_F32, 2, sk, &e), &e);
    T_RC(be_tensor_init(&kb, b2, 0, BE_BF16, 2, sk, &e), &e);
    struct attn_meta m = {.block_size = 16, .head_dim = 128, .scale = 0.1f};
    struct be_cuda *c = (struct be_cuda *)g_gpu;
    T_OK(cu_attn_dec_applies(c, &q, &q, &kb, &m));
    T_OK(!cu_attn_dec_applies(c, &q, &q, &kf, &m)); /* F32 cache */
    m.head_dim = 64;
    T_OK(cu_attn_dec_applies(c, &q, &q, &kb, &m));
    m.head_dim = 80;
    T_OK(!cu_attn_dec_applies(c, &q, &q, &kb, &m));
    be_buffer_free(b1), be_buffer_free(b2);
}

int main(void) {
    struct err e = {0};
    g_rng = 20261127;
    int rc = cf_open(2);
    if (rc == 77) return 77;
    struct be_cuda_opts small = {.partial_bytes = 16 << 10};
    if (rc == 0) rc = be_cuda_new(&g_small, 0, &small, &e);
    T_RC(rc, &e);
    if (rc == 0) {
        T_RUN(test_applies);
        T_RUN(test_decode_rows);
        T_RUN(test_multi_rows);
        T_RUN(test_block_sizes);
        T_RUN(test_many_sequences);
        T_RUN(test_row_filter);
        T_RUN(test_small_partial);
    }
    be_free(g_small);
    cf_close();
    return t_done();
}

#else

int main(void) {
    printf("SKIP: no CUDA device (built without CUDA)\n");
    return 77;
}

#endif
