/* Tests for backend/cpu matmul: every SIMD path against the portable path (and the portable
 * path against a double-precision sum) on odd sizes, with and without bias, F32 and BF16
 * inputs and outputs, strided views, chunked activations and several thread counts. */
#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"
#include "util/bf16.h"
#include "t.h"

#include <stdint.h>

static uint32_t g_rng = 12345;

static float frand(void) { /* uniform in [-1, 1) */
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)((g_rng >> 8) & 0xffffff) / 8388608.0f - 1.0f;
}

static struct be *new_be(enum cpu_isa isa, int n_threads, size_t scratch) {
    struct err e = {0};
    struct be *b = NULL;
    struct be_cpu_opts o = be_cpu_opts_default(n_threads);
    o.isa = isa;
    o.scratch_bytes = scratch;
    int rc = be_cpu_new_opts(&b, &o, &e);
    T_RC(rc, &e);
    return b;
}

/* A compute tensor [rows, cols] of dtype filled from f32 values (rounded for BF16). */
static struct be_buffer *make(struct be *b, struct tensor *t, enum be_dtype dt, int64_t rows,
                              int64_t cols, const float *v) {
    struct err e = {0};
    struct be_buffer *buf = NULL;
    size_t n = (size_t)(rows * cols);
    int rc = be_buffer_new(b, BE_BUF_COMPUTE, n * be_dtype_size(dt), &buf, &e);
    T_RC(rc, &e);
    if (rc) return NULL;
    int64_t shape[2] = {rows, cols};
    rc = be_tensor_init(t, buf, 0, dt, 2, shape, &e);
    T_RC(rc, &e);
    if (v) {
        void *host = malloc(n * 4);
        for (size_t i = 0; i < n; i++) {
            if (dt == BE_F32)
                ((float *)host)[i] = v[i];
            else
                ((uint16_t *)host)[i] = f32_to_bf16(v[i]);
        }
        rc = be_tensor_write(b, t, host, n * be_dtype_size(dt), &e);
        T_RC(rc, &e);
        free(host);
    }
    return buf;
}

static void read_f32(struct be *b, const struct tensor *t, float *out) {
    struct err e = {0};
    size_t n = (size_t)be_tensor_nelems(t);
    if (t->dtype == BE_F32) {
        int rc = be_tensor_read(b, t, out, n * 4, &e);
        T_RC(rc, &e);
        return;
    }
    uint16_t *h = malloc(n * 2);
    int rc = be_tensor_read(b, t, h, n * 2, &e);
    T_RC(rc, &e);
    for (size_t i = 0; i < n; i++) out[i] = bf16_to_f32(h[i]);
    free(h);
}

struct mm_case {
    int64_t m, k, n;
    enum be_dtype xdt, ydt;
    int bias; /* 0 none, 1 F32, 2 BF16 */
};

/* Runs y = x·wᵀ + bias on backend b, returning y as floats (caller frees). xv/wv/bv are the
 * values; w is always BF16. */
static float *run_mm(struct be *b, const struct mm_case *c, const float *xv, const float *wv,
                     const float *bv) {
    struct err e = {0};
    struct tensor x, w, y, bias;
    struct be_buffer *bx = make(b, &x, c->xdt, c->m, c->k, xv);
    struct be_buffer *bw = make(b, &w, BE_BF16, c->n, c->k, wv);
    struct be_buffer *by = make(b, &y, c->ydt, c->m, c->n, NULL);
    struct be_buffer *bb =
        c->bias ? make(b, &bias, c->bias == 1 ? BE_F32 : BE_BF16, 1, c->n, bv) : NULL;
    float *out = calloc((size_t)(c->m * c->n), sizeof *out);
    int rc = be_matmul(b, &y, &x, &w, c->bias ? &bias : NULL, &e);
    T_RC(rc, &e);
    read_f32(b, &y, out);
    be_buffer_free(bx), be_buffer_free(bw), be_buffer_free(by), be_buffer_free(bb);
    return out;
}

/* Max over outputs of |got - want| / (sum_i |x_i w_i| + |bias| + tiny): a sum-normalized
 * error, the natural scale of summation-order differences. Returns the worst. */
static double worst_err(const struct mm_case *c, const float *got, const float *want,
                        const float *xv, const float *wv, const float *bv, int64_t *at) {
    double worst = 0;
    for (int64_t r = 0; r < c->m; r++) {
        for (int64_t j = 0; j < c->n; j++) {
            double s = c->bias ? fabs(bv[j]) : 0;
            for (int64_t i = 0; i < c->k; i++)
                s += fabs((double)xv[r * c->k + i] * wv[j * c->k + i]);
            double d = fabs((double)got[r * c->n + j] - want[r * c->n + j]);
            if (c->ydt == BE_BF16) d -= fabs(want[r * c->n + j]) / 128.0; /* one BF16 ulp at most */
            double rel = d / (s + 1e-6);
            if (rel > worst) worst = rel, *at = r * c->n + j;
        }
    }
    return worst;
}

static float *rand_vec(int64_t n, int bf16_exact) {
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        v[i] = frand();
        if (bf16_exact) v[i] = bf16_to_f32(f32_to_bf16(v[i]));
    }
    return v;
}

/* One case on one SIMD path and thread count, against the portable path. */
static void check_case(enum cpu_isa isa, int n_threads, size_t scratch, const struct mm_case *c) {
    float *xv = rand_vec(c->m * c->k, c->xdt == BE_BF16);
    float *wv = rand_vec(c->n * c->k, 1);
    float *bv = rand_vec(c->n, c->bias == 2);
    struct be *ref = new_be(CPU_ISA_PORTABLE, 1, 0);
    struct be *sut = new_be(isa, n_threads, scratch);
    if (!ref || !sut) goto done;
    /* The avx512 path rounds activations to BF16: its exact counterpart is the portable path
     * given those rounded activations. */
    struct mm_case rc = *c;
    if (isa == CPU_ISA_AVX512) rc.xdt = BE_BF16;
    float *want = run_mm(ref, &rc, xv, wv, bv);
    float *got = run_mm(sut, c, xv, wv, bv);
    int64_t at = 0;
    double err = worst_err(c, got, want, xv, wv, bv, &at);
    /* Tolerance: FP32 summation-order differences, ~k·2^-24 of the absolute sum at worst;
     * 1e-5 covers k up to a few thousand with margin. */
    T_CHECK_(err <= 1e-5,
             "%s x%d m=%lld k=%lld n=%lld x=%s y=%s bias=%d: error %.3g at %lld (%.9g vs %.9g)",
             cpu_isa_name(isa), n_threads, (long long)c->m, (long long)c->k, (long long)c->n,
             be_dtype_name(c->xdt), be_dtype_name(c->ydt), c->bias, err, (long long)at, got[at],
             want[at]);
    if (isa == CPU_ISA_AVX512 && c->xdt == BE_F32) {
        /* Against FP32 activations the BF16 rounding of x shows: each product is off by at
         * most 2^-9 relative, so the sum-normalized error stays under 2^-8. */
        free(want);
        want = run_mm(ref, c, xv, wv, bv);
        err = worst_err(c, got, want, xv, wv, bv, &at);
        T_CHECK_(err <= 1.0 / 256, "avx512 vs FP32 m=%lld k=%lld n=%lld: error %.3g",
                 (long long)c->m, (long long)c->k, (long long)c->n, err);
    }
    free(want), free(got);
done:
    be_free(ref), be_free(sut);
    free(xv), free(wv), free(bv);
}

/* The portable path against a double-precision sum of the same BF16-exact values. */
static void test_portable_exact(void) {
    struct mm_case c = {5, 67, 37, BE_F32, BE_F32, 1};
    float *xv = rand_vec(c.m * c.k, 0), *wv = rand_vec(c.n * c.k, 1), *bv = rand_vec(c.n, 0);
    struct be *b = new_be(CPU_ISA_PORTABLE, 2, 0);
    float *got = run_mm(b, &c, xv, wv, bv);
    float *want = malloc((size_t)(c.m * c.n) * sizeof *want);
    for (int64_t r = 0; r < c.m; r++)
        for (int64_t j = 0; j < c.n; j++) {
            double s = bv[j];
            for (int64_t i = 0; i < c.k; i++) s += (double)xv[r * c.k + i] * wv[j * c.k + i];
            want[r * c.n + j] = (float)s;
        }
    int64_t at = 0;
    double err = worst_err(&c, got, want, xv, wv, bv, &at);
    T_CHECK_(err <= 1e-6, "portable vs double: %.3g", err); /* k·2^-24 ≈ 4e-6 worst, typical << */
    free(got), free(want), free(xv), free(wv), free(bv);
    be_free(b);
}

/* Cases past the small grid of test_paths, each on a thread count and a scratch size (0:
 * the default). */
static const struct {
    struct mm_case c;
    int threads;
    size_t scratch;
} g_sized[] = {
    /* bigger: k = 512, n = 1000 (several tiles and a 1000 % 32 remainder per thread) */
    {{17, 512, 1000, BE_F32, BE_F32, 1}, 2, 0},
    {{64, 1000, 512, BE_F32, BE_BF16, 2}, 2, 0},
    /* a scratch buffer of 4 KiB forces many activation chunks */
    {{64, 67, 37, BE_F32, BE_F32, 1}, 2, 4096},
    {{33, 67, 37, BE_BF16, BE_F32, 0}, 3, 4096},
    /* The FP32-FMA kernel (avx512, 11+ rows) widens weights in blocks of 1024 k: k = 2100 is
     * three blocks, the last short; 32 rows take its one-pass path (the widening runs a chunk
     * ahead of the FMAs, across blocks of different lengths), 45 rows its partial-sum path;
     * k = 1024 is exactly one block. */
    {{32, 2100, 37, BE_F32, BE_F32, 1}, 2, 0},
    {{45, 2100, 37, BE_BF16, BE_BF16, 2}, 3, 0},
    {{64, 1024, 70, BE_F32, BE_F32, 0}, 1, 0},
    /* one thread's 600 columns at k = 1100: spans of 256, 256 and 88 columns, each walked k
     * block by k block */
    {{32, 1100, 600, BE_F32, BE_BF16, 1}, 1, 0},
    /* one group (11-16 rows, packed in pairs) through the one-pass path: three k blocks and
     * spans, each thread's 300 columns; over k = 4096, blocks of 256 k; 11 rows: three in
     * the second half of each pair vector */
    {{16, 2100, 600, BE_BF16, BE_F32, 2}, 2, 0},
    {{14, 4200, 45, BE_F32, BE_BF16, 1}, 2, 0},
    {{11, 1100, 70, BE_BF16, BE_BF16, 2}, 2, 0},
    /* k over 4096: blocks of 256 k (the last one short) */
    {{32, 4200, 300, BE_BF16, BE_F32, 2}, 2, 0},
    /* k = 9000 (over 8192): the L2 budget of a chunk holds 29 rows, but FP32-FMA chunks keep
     * 32 rows (two groups, one pass) where the scratch holds them: 45 rows run as 32 + 13 */
    {{45, 9000, 40, BE_BF16, BE_F32, 1}, 2, 0},
    /* Under 11 rows (the vdpbf16ps kernel) with long k: two token tiles over k = 2100 (a
     * masked tail of 20), three (the last of two rows) over k = 4200, a one-row second tile
     * at k = 1100 */
    {{8, 2100, 37, BE_F32, BE_F32, 1}, 2, 0},
    {{10, 4200, 20, BE_BF16, BE_BF16, 2}, 1, 0},
    {{5, 1100, 9, BE_F32, BE_BF16, 0}, 2, 0},
    /* 16 KiB of scratch: chunks of 32, 32 and 16 rows of FP32 groups */
    {{80, 67, 37, BE_F32, BE_F32, 1}, 2, 16384},
    /* more than 1024 rows with k over one block: chunks capped at the rows whose partial sums
     * a thread keeps */
    {{1040, 1100, 20, BE_F32, BE_F32, 1}, 2, 0},
};

static void test_paths(void) {
    /* From 11 rows the avx512 path runs its FP32-FMA kernel: 11, 13 and 17 rows (one group,
     * packed in pairs, and two groups of 16, the second partial) its one-pass path, 45 and 64
     * (three and four groups) the path that reuses each widened block; 10 is the last row
     * count of its vdpbf16ps dot-product kernel, whose tiles are 4 rows (8: two full token
     * tiles). */
    static const int64_t ms[] = {1, 2, 3, 5, 8, 10, 11, 13, 17, 45, 64};
    const int n_ms = (int)(sizeof ms / sizeof ms[0]);
    static const int64_t kn[][2] = {{67, 37}, {32, 16}, {1, 3}, {100, 70}};
    static const enum cpu_isa isas[] = {CPU_ISA_AVX2, CPU_ISA_AVX512};
    int ran = 0;
    for (int ii = 0; ii < 2; ii++) {
        if (!cpu_isa_supported(isas[ii])) continue;
        ran++;
        for (int mi = 0; mi < n_ms; mi++)
            for (int ki = 0; ki < 4; ki++)
                for (int v = 0; v < 4; v++) {
                    struct mm_case c = {ms[mi],
                                        kn[ki][0],
                                        kn[ki][1],
                                        v & 1 ? BE_BF16 : BE_F32,
                                        v & 2 ? BE_BF16 : BE_F32,
                                        (mi + ki + v) % 3};
                    check_case(isas[ii], 1 + (mi + v) % 3, 0, &c);
                }
        for (size_t i = 0; i < sizeof g_sized / sizeof g_sized[0]; i++)
            check_case(isas[ii], g_sized[i].threads, g_sized[i].scratch, &g_sized[i].c);
    }
    if (!ran) T_SKIP("no SIMD matmul path on this CPU (only the portable path ran)");
}

/* Strided views: x and y are column slices of wider tensors, w a row slice. */
static void test_views(void) {
    struct err e = {0};
    enum cpu_isa isa = cpu_isa_best(false);
    struct be *ref = new_be(CPU_ISA_PORTABLE, 1, 0), *b = new_be(isa, 2, 0);
    int64_t m = 3, k = 40, n = 20;
    float *xv = rand_vec(m * (k + 9), 0), *wv = rand_vec((n + 5) * k, 1);
    float want[60], got[60];
    struct be *bes[2] = {ref, b};
    float *outs[2] = {want, got};
    for (int i = 0; i < 2; i++) {
        struct tensor xw, ww, yw, x, w, y;
        struct be_buffer *bx = make(bes[i], &xw, BE_F32, m, k + 9, xv);
        struct be_buffer *bw = make(bes[i], &ww, BE_BF16, n + 5, k, wv);
        struct be_buffer *by = make(bes[i], &yw, BE_F32, m, n + 7, NULL);
        T_RC(be_tensor_cols_view(&x, &xw, 9, k, &e), &e);
        T_RC(be_tensor_rows_view(&w, &ww, 5, n, &e), &e);
        T_RC(be_tensor_cols_view(&y, &yw, 7, n, &e), &e);
        T_RC(be_matmul(bes[i], &y, &x, &w, NULL, &e), &e);
        read_f32(bes[i], &y, outs[i]);
        float all[3 * 27];
        read_f32(bes[i], &yw, all);
        T_EQ(all[0] == 0.0f && all[6] == 0.0f && all[27 + 3] == 0.0f, 1); /* outside untouched */
        be_buffer_free(bx), be_buffer_free(bw), be_buffer_free(by);
    }
    double worst = 0;
    for (int i = 0; i < m * n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (d > worst) worst = d;
    }
    /* |x|,|w| <= 1, k = 40: sums <= 40; BF16 activations (avx512) differ by <= 40·2^-8. */
    T_NEAR(worst, 0, isa == CPU_ISA_AVX512 ? 0.16 : 1e-4);
    free(xv), free(wv);
    be_free(ref), be_free(b);
}

static void test_errors(void) {
    struct err e = {0};
    struct be *b = new_be(CPU_ISA_PORTABLE, 1, 0);
    struct tensor x, w, wf, y, ybad;
    struct be_buffer *bx = make(b, &x, BE_F32, 2, 8, NULL);
    struct be_buffer *bw = make(b, &w, BE_BF16, 4, 8, NULL);
    struct be_buffer *bwf = make(b, &wf, BE_F32, 4, 8, NULL);
    struct be_buffer *by = make(b, &y, BE_F32, 2, 4, NULL);
    struct be_buffer *byb = make(b, &ybad, BE_F32, 2, 5, NULL);
    T_RC(be_matmul(b, &y, &x, &w, NULL, &e), &e);
    T_FAILS(be_matmul(b, &y, &x, &wf, NULL, &e), VELA_EINVAL, &e);   /* F32 weights */
    T_FAILS(be_matmul(b, &ybad, &x, &w, NULL, &e), VELA_EINVAL, &e); /* y shape */
    T_FAILS(be_matmul(b, &y, &y, &w, NULL, &e), VELA_EINVAL, &e);    /* y aliases x (and k) */
    struct tensor xs;
    T_RC(be_tensor_cols_view(&xs, &x, 0, 4, &e), &e);
    struct tensor w44;
    T_RC(be_tensor_cols_view(&w44, &w, 0, 4, &e), &e);
    struct tensor yx; /* y overlapping x: columns 2..5 of x as output, x = columns 0..3 */
    T_RC(be_tensor_cols_view(&yx, &x, 2, 4, &e), &e);
    T_FAILS(be_matmul(b, &yx, &xs, &w44, NULL, &e), VELA_EINVAL, &e);
    /* Disjoint column slices of one matrix are fine (columns 4..7 written from 0..3). */
    T_RC(be_tensor_cols_view(&yx, &x, 4, 4, &e), &e);
    T_RC(be_matmul(b, &yx, &xs, &w44, NULL, &e), &e);
    /* Output into borrowed weights memory is refused. */
    uint16_t host[16] = {0};
    struct be_buffer *bh = NULL;
    T_RC(be_buffer_from_host(b, host, sizeof host, BE_BUF_WEIGHTS, &bh, &e), &e);
    struct tensor yh;
    int64_t sh[2] = {2, 4};
    T_RC(be_tensor_init(&yh, bh, 0, BE_BF16, 2, sh, &e), &e);
    T_FAILS(be_matmul(b, &yh, &x, &w, NULL, &e), VELA_EINVAL, &e);
    /* A tensor of another backend is refused. */
    struct be *b2 = new_be(CPU_ISA_PORTABLE, 1, 0);
    T_FAILS(be_matmul(b2, &y, &x, &w, NULL, &e), VELA_EINVAL, &e);
    be_free(b2);
    be_buffer_free(bx), be_buffer_free(bw), be_buffer_free(bwf), be_buffer_free(by);
    be_buffer_free(byb), be_buffer_free(bh);
    be_free(b);
}

static void test_isa_choice(void) {
    struct err e = {0};
    struct be *b = NULL;
    setenv("VELA_CPU_ISA", "portable", 1);
    T_RC(be_cpu_new(&b, 1, &e), &e);
    if (b) T_EQ(be_cpu_isa(b), CPU_ISA_PORTABLE);
    be_free(b);
    b = NULL;
    setenv("VELA_CPU_ISA", "sse9", 1);
    T_FAILS(be_cpu_new(&b, 1, &e), VELA_EINVAL, &e);
    unsetenv("VELA_CPU_ISA");
    T_RC(be_cpu_new(&b, 2, &e), &e);
    if (b) T_EQ(be_cpu_isa(b), cpu_isa_best(false));
    be_free(b);
    struct be_cpu_opts o = be_cpu_opts_default(1);
    o.f32_activations = true;
    b = NULL;
    T_RC(be_cpu_new_opts(&b, &o, &e), &e);
    if (b) T_OK(be_cpu_isa(b) != CPU_ISA_AVX512);
    be_free(b);
    o = be_cpu_opts_default(0);
    T_FAILS(be_cpu_new_opts(&b, &o, &e), VELA_EINVAL, &e);
    T_EQ(cpu_isa_parse("avx2"), CPU_ISA_AVX2);
    T_EQ(cpu_isa_parse("AVX2"), -1);
}

int main(void) {
    T_RUN(test_portable_exact);
    T_RUN(test_paths);
    T_RUN(test_views);
    T_RUN(test_errors);
    T_RUN(test_isa_choice);
    return t_done();
}
