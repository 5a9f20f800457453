/* The tensor-core prefill attention path (cuda_attn_tc.c, attention_tc.cu), called directly
 * through cu_attn_tc with a row range, against two references:
 *   - a plain-C model of the kernel's numerics (Q and P rounded to BF16, FP32 scores and
 *     sums, online softmax over 64-key tiles from key 0): agreement to rounding noise, so a
 *     wrong fragment layout, mask or block lookup cannot hide in BF16 tolerance;
 *   - the CPU backend's be_attention (FP32 throughout): agreement within BF16 noise.
 * Rows of sequences outside the range and the padding columns of strided o views must keep
 * their sentinel; cache slots no sequence owns hold NaN, so a read of one shows. Shapes cover
 * 17 .. 1024 new rows, cached prefixes not aligned to 16 or 64, several sequences per call,
 * GQA 1/2/7/8, head_dim 64 and 128, F32/BF16 q and o views with row strides, block sizes 16
 * and 12 (the division path) over shuffled block ids, both tile widths, and min_rows = 1.
 * A mixed call through be_attention checks the dispatch end to end. On a real device the
 * test also prints the path's TFLOP/s with both tile widths at bench_kernels' prefill shapes.
 * Runs only where a CUDA device exists: elsewhere it prints "SKIP: no CUDA device", exit 77. */
#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"
#include "util/bf16.h"
#include "t.h"

#ifdef VELA_HAVE_CUDA
#include "backend/cuda/backend_cuda.h"
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/kernels_tc.h"
#include "cuda_fixture.h"
#endif

#include <stdint.h>
#include <time.h>

#ifdef VELA_HAVE_CUDA

#define MAX_SEQS 8
#define SENTINEL 768.0f /* exact in BF16 */

static float rbf(float x) {
    return bf16_to_f32(f32_to_bf16(x));
}

struct tcase {
    const char *name;
    int32_t n_seqs, nq, nkv, hd, bs;
    int32_t min_rows, max_rows;
    int32_t n_computed[MAX_SEQS], n_new[MAX_SEQS];
};

/* One call's host data: caches (BF16 values, NaN in unowned slots), q, block tables. */
struct tdata {
    int32_t qs[MAX_SEQS + 1], max_blocks, n_blocks, n_tok;
    int32_t *bt;
    float *kc, *vc, *q; /* [n_blocks * bs, nkv * hd], same, [n_tok, nq * hd] */
};

static void make_data(const struct tcase *tc, struct tdata *d) {
    d->qs[0] = 0;
    d->max_blocks = 1;
    for (int32_t s = 0; s < tc->n_seqs; s++) {
        int32_t nb = (tc->n_computed[s] + tc->n_new[s] + tc->bs - 1) / tc->bs;
        if (nb > d->max_blocks) d->max_blocks = nb;
        d->qs[s + 1] = d->qs[s] + tc->n_new[s];
    }
    d->n_tok = d->qs[tc->n_seqs];
    d->n_blocks = tc->n_seqs * d->max_blocks + 3;
    int32_t *perm = malloc((size_t)d->n_blocks * 4);
    for (int32_t i = 0; i < d->n_blocks; i++) perm[i] = i;
    for (int32_t i = d->n_blocks - 1; i > 0; i--) {
        int32_t j = (int32_t)urand((uint32_t)i + 1), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    d->bt = malloc((size_t)tc->n_seqs * d->max_blocks * 4);
    for (int32_t i = 0; i < tc->n_seqs * d->max_blocks; i++) d->bt[i] = perm[i];
    free(perm);
    int64_t wkv = (int64_t)tc->nkv * tc->hd, slots = (int64_t)d->n_blocks * tc->bs;
    d->kc = malloc((size_t)(slots * wkv) * 4);
    d->vc = malloc((size_t)(slots * wkv) * 4);
    for (int64_t i = 0; i < slots * wkv; i++) d->kc[i] = d->vc[i] = NAN;
    for (int32_t s = 0; s < tc->n_seqs; s++)
        for (int32_t p = 0; p < tc->n_computed[s] + tc->n_new[s]; p++) {
            int64_t slot = (int64_t)d->bt[s * d->max_blocks + p / tc->bs] * tc->bs + p % tc->bs;
            for (int64_t c = 0; c < wkv; c++) {
                d->kc[slot * wkv + c] = rbf(frand());
                d->vc[slot * wkv + c] = rbf(frand());
            }
        }
    int64_t wq = (int64_t)tc->nq * tc->hd;
    d->q = malloc((size_t)(d->n_tok * wq) * 4);
    for (int64_t i = 0; i < d->n_tok * wq; i++) d->q[i] = frand();
}

static void free_data(struct tdata *d) {
    free(d->bt), free(d->kc), free(d->vc), free(d->q);
}

/* The kernel's numerics in plain C for one (row, head): out[hd]. q_row as stored (F32 or the
 * BF16 values); pos = the row's sequence position; bt = its sequence's block table. */
static void ref_row(const struct tcase *tc, const struct tdata *d, const float *q_row,
                    const int32_t *bt, int32_t pos, int32_t h, float scale, float *out) {
    int32_t hd = tc->hd, kvh = h / (tc->nq / tc->nkv);
    int64_t wkv = (int64_t)tc->nkv * hd;
    float qb[128], acc[128], s[64], c = scale * 1.4426950408889634f;
    for (int32_t i = 0; i < hd; i++) qb[i] = rbf(q_row[i]), acc[i] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int32_t key0 = 0; key0 <= pos; key0 += 64) {
        int32_t nk = pos + 1 - key0 < 64 ? pos + 1 - key0 : 64;
        float mx = -INFINITY;
        for (int32_t j = 0; j < nk; j++) {
            int32_t key = key0 + j;
            int64_t row = (int64_t)bt[key / tc->bs] * tc->bs + key % tc->bs;
            const float *k = d->kc + row * wkv + (int64_t)kvh * hd;
            float dot = 0.0f;
            for (int32_t i = 0; i < hd; i++) dot += qb[i] * k[i];
            s[j] = dot;
            if (dot > mx) mx = dot;
        }
        float m_new = fmaxf(m, mx * c), alpha = exp2f(m - m_new), sum = 0.0f;
        m = m_new;
        for (int32_t i = 0; i < hd; i++) acc[i] *= alpha;
        for (int32_t j = 0; j < nk; j++) {
            int32_t key = key0 + j;
            int64_t row = (int64_t)bt[key / tc->bs] * tc->bs + key % tc->bs;
            const float *v = d->vc + row * wkv + (int64_t)kvh * hd;
            float p = exp2f(fmaf(s[j], c, -m_new));
            sum += p;
            float pb = rbf(p);
            for (int32_t i = 0; i < hd; i++) acc[i] += pb * v[i];
        }
        l = l * alpha + sum;
    }
    for (int32_t i = 0; i < hd; i++) out[i] = acc[i] * (1.0f / l);
}

static bool in_range(int32_t n_new, int32_t lo, int32_t hi) {
    return n_new >= lo && n_new <= hi;
}

/* Normalized error of got vs want over the chosen rows' columns [0, wq) (row stride w). */
static double nerr_rows(const struct tcase *tc, const struct tdata *d, const float *got,
                        const float *want, int64_t w, int64_t wq, double *worst) {
    double num = 0, den = 0;
    *worst = 0;
    for (int32_t s = 0; s < tc->n_seqs; s++) {
        if (!in_range(tc->n_new[s], tc->min_rows, tc->max_rows)) continue;
        for (int64_t r = d->qs[s]; r < d->qs[s + 1]; r++)
            for (int64_t c = 0; c < wq; c++) {
                double x = got[r * w + c], y = want[r * w + c], df = x - y;
                if (!(fabs(df) <= *worst)) *worst = fabs(df);
                num += df * df, den += y * y;
            }
    }
    double n = den > 0 ? num / den : num;
    return n != n ? INFINITY : n;
}

static void run_case(const struct tcase *tc, enum be_dtype q_dt, enum be_dtype o_dt, int64_t pad) {
    struct err e = {0};
    struct tdata d;
    make_data(tc, &d);
    int64_t wkv = (int64_t)tc->nkv * tc->hd, wq = (int64_t)tc->nq * tc->hd, w = wq + pad;
    int64_t slots = (int64_t)d.n_blocks * tc->bs;
    float *fill = malloc((size_t)(d.n_tok * w) * 4), *qpad = malloc((size_t)(d.n_tok * w) * 4);
    for (int64_t i = 0; i < d.n_tok * w; i++) fill[i] = SENTINEL;
    for (int64_t r = 0; r < d.n_tok; r++)
        for (int64_t c = 0; c < w; c++) qpad[r * w + c] = c < wq ? d.q[r * wq + c] : 5.0f;
    struct tensor o_full, kc_c, vc_c;
    struct tensor kc = mk_view(g_gpu, BE_BF16, slots, wkv, 0, d.kc, NULL);
    struct tensor vc = mk_view(g_gpu, BE_BF16, slots, wkv, 0, d.vc, NULL);
    struct tensor q = mk_view(g_gpu, q_dt, d.n_tok, wq, pad, qpad, NULL);
    struct tensor o = mk_view(g_gpu, o_dt, d.n_tok, wq, pad, fill, &o_full);
    kc_c = mk_view(g_cpu, BE_BF16, slots, wkv, 0, d.kc, NULL);
    vc_c = mk_view(g_cpu, BE_BF16, slots, wkv, 0, d.vc, NULL);
    struct tensor q_c = mk_view(g_cpu, q_dt, d.n_tok, wq, pad, qpad, NULL);
    struct tensor o_c = mk_view(g_cpu, BE_F32, d.n_tok, wq, pad, fill, NULL);
    int32_t slot_map[1] = {0};
    struct attn_meta m = {.n_seqs = tc->n_seqs,
                          .query_start = d.qs,
                          .n_computed = tc->n_computed,
                          .block_tables = d.bt,
                          .max_blocks_per_seq = d.max_blocks,
                          .slot_mapping = slot_map, /* unused by attention */
                          .block_size = tc->bs,
                          .head_dim = tc->hd,
                          .scale = 1.0f / sqrtf((float)tc->hd)};
    struct be_cuda *c = (struct be_cuda *)g_gpu;
    char what[200];
    snprintf(what, sizeof what, "%s (nq %d nkv %d hd %d bs %d rows %d..%d) q%s o%s pad %d",
             tc->name, (int)tc->nq, (int)tc->nkv, (int)tc->hd, (int)tc->bs, (int)tc->min_rows,
             (int)tc->max_rows, be_dtype_name(q_dt), be_dtype_name(o_dt), (int)pad);
    T_CHECK_(cu_attn_tc_applies(c, &o, &q, &kc, &m), "%s: applies", what);
    T_RC(cu_enter(c, &e), &e);
    T_RC(cu_attn_tc(c, &o, &q, &kc, &vc, &m, tc->min_rows, tc->max_rows, &e), &e);
    T_RC(be_sync(g_gpu, &e), &e);
    T_RC(be_attention(g_cpu, &o_c, &q_c, &kc_c, &vc_c, &m, &e), &e);
    float *got = rd(g_gpu, &o_full); /* packed [n_tok, w] */
    float *cpu = malloc((size_t)(d.n_tok * w) * 4), *model = malloc((size_t)(d.n_tok * w) * 4);
    float *cpu_v = rd(g_cpu, &o_c); /* packed [n_tok, wq] */
    for (int64_t r = 0; r < d.n_tok; r++)
        for (int64_t col = 0; col < w; col++)
            cpu[r * w + col] = col < wq ? cpu_v[r * wq + col] : SENTINEL;
    memcpy(model, fill, (size_t)(d.n_tok * w) * 4);
    int64_t kept_bad = 0;
    for (int32_t s = 0; s < tc->n_seqs; s++) {
        bool mine = in_range(tc->n_new[s], tc->min_rows, tc->max_rows);
        for (int32_t r = d.qs[s]; r < d.qs[s + 1]; r++) {
            for (int32_t h = 0; mine && h < tc->nq; h++) {
                float *out = model + (int64_t)r * w + (int64_t)h * tc->hd;
                const float *qr = qpad + (int64_t)r * w + (int64_t)h * tc->hd;
                float qv[128];
                for (int32_t i = 0; i < tc->hd; i++) qv[i] = q_dt == BE_BF16 ? rbf(qr[i]) : qr[i];
                ref_row(tc, &d, qv, d.bt + s * d.max_blocks, tc->n_computed[s] + r - d.qs[s], h,
                        m.scale, out);
                if (o_dt == BE_BF16)
                    for (int32_t i = 0; i < tc->hd; i++) out[i] = rbf(out[i]);
            }
            for (int64_t col = mine ? wq : 0; col < w; col++)
                kept_bad += got[(int64_t)r * w + col] != SENTINEL;
        }
    }
    double worst;
    double n_model = nerr_rows(tc, &d, got, model, w, wq, &worst);
    T_CHECK_(n_model <= (o_dt == BE_F32 ? 1e-7 : 2e-6), "%s: vs kernel model nerr %.3g (max %.3g)",
             what, n_model, worst);
    double n_cpu = nerr_rows(tc, &d, got, cpu, w, wq, &worst);
    T_CHECK_(n_cpu <= 3e-5, "%s: vs CPU be_attention nerr %.3g (max %.3g)", what, n_cpu, worst);
    T_CHECK_(kept_bad == 0, "%s: %lld values outside the chosen rows were written", what,
             (long long)kept_bad);
    if (getenv("TC_VERBOSE")) printf("%-90s model %.2e cpu %.2e\n", what, n_model, n_cpu);
    free(got), free(cpu), free(cpu_v), free(model), free(fill), free(qpad);
    free_bufs();
    free_data(&d);
}

static void test_tc_cases(void) {
    /* 128-row tiles (cuda_attn_tc.c's rule): 100 after 37, 256 + 120, 200 after 555, 1024;
     * 64-row tiles: the others */
    static const struct tcase cs[] = {
        {"17 rows", 1, 2, 2, 128, 16, 17, INT32_MAX, {0}, {17}},
        {"31 after 5, GQA 7", 1, 7, 1, 64, 16, 17, INT32_MAX, {5}, {31}},
        {"64 and 65 rows", 2, 4, 2, 128, 16, 17, INT32_MAX, {0, 100}, {64, 65}},
        {"100 after 37, GQA 8", 1, 8, 1, 64, 12, 17, INT32_MAX, {37}, {100}},
        {"mixed, prefill rows",
         7,
         4,
         1,
         128,
         16,
         17,
         INT32_MAX,
         {0, 10, 0, 40, 77, 3, 129},
         {5, 17, 150, 1, 64, 16, 33}},
        {"mixed, rows 1..16",
         7,
         4,
         1,
         64,
         16,
         1,
         16,
         {0, 10, 0, 40, 77, 3, 129},
         {5, 17, 150, 1, 64, 16, 33}},
        {"256 + 120 rows", 2, 2, 2, 64, 16, 17, INT32_MAX, {0, 70}, {256, 120}},
        {"200 after 555", 1, 2, 1, 128, 16, 17, INT32_MAX, {555}, {200}},
        {"1024 rows", 1, 2, 1, 128, 16, 17, INT32_MAX, {0}, {1024}},
    };
    const enum be_dtype dts[4][2] = {
        {BE_F32, BE_F32}, {BE_BF16, BE_BF16}, {BE_F32, BE_BF16}, {BE_BF16, BE_F32}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int k = (int)(i % 4);
        run_case(&cs[i], dts[k][0], dts[k][1], i % 2 ? 0 : 24);
        if (i < 5) run_case(&cs[i], dts[(k + 1) % 4][0], dts[(k + 1) % 4][1], i % 2 ? 8 : 0);
    }
}

/* What the path refuses: head sizes other than 64/128, F32 caches. */
static void test_tc_applies(void) {
    struct tensor full;
    float z[16 * 160] = {0};
    struct tensor q = mk_view(g_gpu, BE_F32, 1, 160, 0, z, &full);
    struct tensor kc = mk_view(g_gpu, BE_BF16, 16, 160, 0, z, &full);
    struct tensor kf = mk_view(g_gpu, BE_F32, 16, 128, 0, z, &full);
    struct tensor q128 = mk_view(g_gpu, BE_F32, 1, 128, 0, z, &full);
    int32_t qs[2] = {0, 1}, nc[1] = {0}, bt[1] = {0}, sl[1] = {0};
    struct attn_meta m = {1, qs, nc, bt, 1, sl, 16, 80, 0.1f};
    struct be_cuda *c = (struct be_cuda *)g_gpu;
    T_OK(!cu_attn_tc_applies(c, &q, &q, &kc, &m));
    m.head_dim = 128;
    T_OK(!cu_attn_tc_applies(c, &q128, &q128, &kf, &m));
    free_bufs();
}

/* A mixed call through be_attention (whatever paths cu_attention picks) against the CPU. */
static void test_dispatch(void) {
    static const struct tcase tc = {
        "dispatch", 5, 7, 1, 128, 16, 1, INT32_MAX, {0, 33, 5, 0, 300}, {40, 1, 16, 90, 3}};
    struct err e = {0};
    struct tdata d;
    make_data(&tc, &d);
    int64_t wkv = (int64_t)tc.nkv * tc.hd, wq = (int64_t)tc.nq * tc.hd;
    int64_t slots = (int64_t)d.n_blocks * tc.bs;
    float *zero = calloc((size_t)(d.n_tok * wq), 4);
    struct tensor kc = mk_view(g_gpu, BE_BF16, slots, wkv, 0, d.kc, NULL);
    struct tensor vc = mk_view(g_gpu, BE_BF16, slots, wkv, 0, d.vc, NULL);
    struct tensor q = mk_view(g_gpu, BE_BF16, d.n_tok, wq, 0, d.q, NULL);
    struct tensor o = mk_view(g_gpu, BE_BF16, d.n_tok, wq, 0, zero, NULL);
    struct tensor kc_c = mk_view(g_cpu, BE_BF16, slots, wkv, 0, d.kc, NULL);
    struct tensor vc_c = mk_view(g_cpu, BE_BF16, slots, wkv, 0, d.vc, NULL);
    struct tensor q_c = mk_view(g_cpu, BE_BF16, d.n_tok, wq, 0, d.q, NULL);
    struct tensor o_c = mk_view(g_cpu, BE_BF16, d.n_tok, wq, 0, zero, NULL);
    int32_t slot_map[1] = {0};
    struct attn_meta m = {tc.n_seqs, d.qs,         tc.n_computed,
                          d.bt,      d.max_blocks, slot_map,
                          tc.bs,     tc.hd,        1.0f / sqrtf((float)tc.hd)};
    T_RC(be_attention(g_gpu, &o, &q, &kc, &vc, &m, &e), &e);
    T_RC(be_attention(g_cpu, &o_c, &q_c, &kc_c, &vc_c, &m, &e), &e);
    float *g = rd(g_gpu, &o), *cpu = rd(g_cpu, &o_c);
    double num = 0, den = 0;
    for (int64_t i = 0; i < d.n_tok * wq; i++) {
        double df = (double)g[i] - cpu[i];
        num += df * df, den += (double)cpu[i] * cpu[i];
    }
    double nerr = den > 0 ? num / den : INFINITY;
    T_CHECK_(nerr <= 3e-5, "be_attention mixed call: nerr %.3g", nerr);
    free(g), free(cpu), free(zero);
    free_bufs();
    free_data(&d);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* An uninitialized [rows x cols] BF16 tensor of the GPU (timing only). */
static struct tensor mk_raw(int64_t rows, int64_t cols) {
    struct err e = {0};
    struct tensor t = {0};
    struct be_buffer *buf = NULL;
    T_RC(be_buffer_new(g_gpu, BE_BUF_COMPUTE, (size_t)(rows * cols) * 2, &buf, &e), &e);
    if (!buf) return t;
    g_bufs[g_nbufs++] = buf;
    int64_t shape[2] = {rows, cols};
    T_RC(be_tensor_init(&t, buf, 0, BE_BF16, 2, shape, &e), &e);
    return t;
}

/* Seconds per kernel launch over one sequence of n_new rows after n_cached, cut into tiles of
 * rpt rows (the planner's two widths, forced), heaviest first. */
static double time_tc(struct tensor *o, const struct tensor *q, const struct tensor *kc,
                      const struct tensor *vc, const struct attn_meta *m, int32_t rpt) {
    struct err e = {0};
    struct be_cuda *c = (struct be_cuda *)g_gpu;
    int32_t n_new = m->query_start[1], n_tiles = (n_new + rpt - 1) / rpt, iters = 5;
    struct ktc_tile *t = malloc((size_t)n_tiles * sizeof *t);
    for (int32_t i = 0; i < n_tiles; i++) { /* last rows first: the longest key ranges */
        int32_t r0 = (n_tiles - 1 - i) * rpt;
        t[i] = (struct ktc_tile){0, r0, n_new - r0 < rpt ? n_new - r0 : rpt, m->n_computed[0] + r0};
    }
    void *d_tiles = NULL, *d_bt = NULL;
    T_RC(cu_meta_put(c, t, (size_t)n_tiles * sizeof *t, &d_tiles, &e), &e);
    T_RC(cu_meta_put(c, m->block_tables, (size_t)m->max_blocks_per_seq * 4, &d_bt, &e), &e);
    struct ktc_params p = {.q = cu_kmat(q),
                           .o = cu_kmat(o),
                           .k = cu_kmat(kc),
                           .v = cu_kmat(vc),
                           .tiles = d_tiles,
                           .n_tiles = n_tiles,
                           .block_tables = d_bt,
                           .max_blocks = m->max_blocks_per_seq,
                           .block_size = m->block_size,
                           .bs_shift = 4,
                           .head_dim = m->head_dim,
                           .n_q_heads = (int32_t)(be_tensor_cols(q) / m->head_dim),
                           .group = (int32_t)(be_tensor_cols(q) / be_tensor_cols(kc)),
                           .rows_per_tile = rpt,
                           .scale_log2 = m->scale * 1.4426950408889634f};
    T_OK(kl_attn_tc(c->stream, &p) == cudaSuccess);
    T_RC(be_sync(g_gpu, &e), &e);
    double t0 = now_s();
    for (int i = 0; i < iters; i++) T_OK(kl_attn_tc(c->stream, &p) == cudaSuccess);
    T_RC(be_sync(g_gpu, &e), &e);
    free(t);
    return (now_s() - t0) / iters;
}

/* Throughput of both tile widths on the shapes bench_kernels times (28 q heads, 4 kv heads,
 * head_dim 128, BF16, scattered blocks of 16), printed to tune tc_rows_per_tile. Real
 * devices only: the emulator would take hours. */
static void test_tc_timing(void) {
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess || !strncmp(prop.name, "emulated", 8))
        return;
    if (getenv("TC_NO_TIMING")) return; /* under compute-sanitizer */
    static const int32_t shapes[][2] = {{2048, 0}, {4096, 0}, {8192, 0}, {512, 3584}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int32_t n_new = shapes[i][0], n_cached = shapes[i][1], ctx = n_new + n_cached;
        int32_t nb = (ctx + 15) / 16, qs[2] = {0, n_new}, nc[1] = {n_cached}, slot[1] = {0};
        int32_t *bt = malloc((size_t)nb * 4);
        for (int32_t j = 0; j < nb; j++) bt[j] = (j * 7) % nb;
        struct tensor kc = mk_raw((int64_t)nb * 16, 4 * 128),
                      vc = mk_raw((int64_t)nb * 16, 4 * 128);
        struct tensor q = mk_raw(n_new, 28 * 128), o = mk_raw(n_new, 28 * 128);
        struct attn_meta m = {1, qs, nc, bt, nb, slot, 16, 128, 1.0f / sqrtf(128.0f)};
        double keys = 0;
        for (int32_t j = 0; j < n_new; j++) keys += n_cached + j + 1;
        double fl = 4.0 * keys * 128 * 28;
        double t64 = time_tc(&o, &q, &kc, &vc, &m, 64), t128 = time_tc(&o, &q, &kc, &vc, &m, 128);
        printf("tc attention %s, %d new after %d: 64-row tiles %.1f us %.1f TFLOP/s, 128-row "
               "tiles %.1f us %.1f TFLOP/s\n",
               prop.name, (int)n_new, (int)n_cached, t64 * 1e6, fl / t64 * 1e-12, t128 * 1e6,
               fl / t128 * 1e-12);
        free(bt);
        free_bufs();
    }
}

int main(void) {
    struct err e = {0};
    g_rng = 20261127;
    int rc = cf_open(4);
    if (rc == 77) return 77;
    if (rc == 0) {
        T_RUN(test_tc_applies);
        T_RUN(test_tc_cases);
        T_RUN(test_dispatch);
        T_RUN(test_tc_timing);
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
