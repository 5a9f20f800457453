/* Tests for the backend's non-matmul ops (rms_norm, silu_mul, add, embed) against plain-C
 * references, the SIMD elementwise kernels (vec.h) against the portable ones, and tensor
 * bookkeeping (bounds, views, host copies, borrowed weights). */
#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"
#include "backend/cpu/vec.h"
#include "backend/tensor.h"
#include "util/bf16.h"
#include "t.h"

#include <stdint.h>

static uint32_t g_rng = 777;

static float frand(void) { /* uniform in [-2, 2) */
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)((g_rng >> 8) & 0xffffff) / 4194304.0f - 2.0f;
}

static float rbf(float v) {
    return bf16_to_f32(f32_to_bf16(v));
}

struct fix {
    struct be *b;
    struct be_buffer *buf[8];
    int n;
};

static struct tensor mk(struct fix *f, enum be_dtype dt, int64_t rows, int64_t cols,
                        const float *v) {
    struct err e = {0};
    struct tensor t = {0};
    size_t n = (size_t)(rows * cols);
    struct be_buffer *buf = NULL;
    T_RC(be_buffer_new(f->b, BE_BUF_COMPUTE, n * be_dtype_size(dt), &buf, &e), &e);
    f->buf[f->n++] = buf;
    int64_t shape[2] = {rows, cols};
    T_RC(be_tensor_init(&t, buf, 0, dt, 2, shape, &e), &e);
    if (v) {
        void *h = malloc(n * 4);
        for (size_t i = 0; i < n; i++) {
            if (dt == BE_BF16)
                ((uint16_t *)h)[i] = f32_to_bf16(v[i]);
            else
                ((float *)h)[i] = v[i];
        }
        T_RC(be_tensor_write(f->b, &t, h, n * be_dtype_size(dt), &e), &e);
        free(h);
    }
    return t;
}

static void get(struct fix *f, const struct tensor *t, float *out) {
    struct err e = {0};
    size_t n = (size_t)be_tensor_nelems(t);
    void *h = malloc(n * 4);
    T_RC(be_tensor_read(f->b, t, h, n * be_dtype_size(t->dtype), &e), &e);
    for (size_t i = 0; i < n; i++)
        out[i] = t->dtype == BE_BF16 ? bf16_to_f32(((uint16_t *)h)[i]) : ((float *)h)[i];
    free(h);
}

static void fix_init(struct fix *f) {
    struct err e = {0};
    memset(f, 0, sizeof *f);
    T_RC(be_cpu_new(&f->b, 2, &e), &e);
}

static void fix_deinit(struct fix *f) {
    for (int i = 0; i < f->n; i++) be_buffer_free(f->buf[i]);
    be_free(f->b);
}

static void test_rms_norm(void) {
    struct fix f;
    fix_init(&f);
    struct err e = {0};
    enum { R = 3, D = 37 };
    float xv[R * D], gv[D], out[R * D];
    for (int i = 0; i < R * D; i++) xv[i] = frand();
    for (int i = 0; i < D; i++) gv[i] = rbf(frand());
    struct tensor x = mk(&f, BE_F32, R, D, xv), g = mk(&f, BE_BF16, 1, D, gv);
    struct tensor y = mk(&f, BE_F32, R, D, NULL), yb = mk(&f, BE_BF16, R, D, NULL);
    T_RC(be_rms_norm(f.b, &y, &x, &g, 1e-6f, &e), &e);
    T_RC(be_rms_norm(f.b, &yb, &x, &g, 1e-6f, &e), &e);
    float outb[R * D];
    get(&f, &y, out);
    get(&f, &yb, outb);
    double worst = 0, worst_b = 0;
    int exact_b = 1;
    for (int r = 0; r < R; r++) {
        double ss = 0;
        for (int i = 0; i < D; i++) ss += (double)xv[r * D + i] * xv[r * D + i];
        double inv = 1.0 / sqrt(ss / D + 1e-6);
        for (int i = 0; i < D; i++) {
            double want = xv[r * D + i] * inv * gv[i];
            worst = fmax(worst, fabs(out[r * D + i] - want) / (fabs(want) + 1e-3));
            /* BF16 output: the reference casts x·rsqrt to BF16, then multiplies by the gain. */
            float n32 = xv[r * D + i] * (float)inv;
            float wb = rbf(rbf(n32) * gv[i]);
            worst_b = fmax(worst_b, fabs(outb[r * D + i] - wb));
            if (outb[r * D + i] != wb) exact_b = 0;
        }
    }
    T_NEAR(worst, 0, 1e-6); /* FP32 math vs double: a few FP32 ulps */
    /* The cast order makes BF16 results bit-exact except where the FP32 rsqrt differs by an
     * ulp from ours and flips a rounding: allow one BF16 ulp of |value| <= 8. */
    T_NEAR(worst_b, 0, 8.0 / 128);
    T_OK(exact_b || worst_b > 0);
    /* F32 gain, in place (y aliases x). */
    struct tensor gf = mk(&f, BE_F32, 1, D, gv);
    T_RC(be_rms_norm(f.b, &x, &x, &gf, 1e-6f, &e), &e);
    float inplace[R * D];
    get(&f, &x, inplace);
    T_NEAR(inplace[5], out[5], 1e-6);
    T_NEAR(inplace[R * D - 1], out[R * D - 1], 1e-6);
    /* Errors: gain length, negative eps. */
    struct tensor gbad = mk(&f, BE_BF16, 1, D - 1, NULL);
    T_FAILS(be_rms_norm(f.b, &y, &x, &gbad, 1e-6f, &e), VELA_EINVAL, &e);
    T_FAILS(be_rms_norm(f.b, &y, &x, &g, -1.0f, &e), VELA_EINVAL, &e);
    fix_deinit(&f);
}

static float silu_ref(float g) {
    return (float)(g / (1.0 + exp(-(double)g)));
}

static void test_silu_mul(void) {
    struct fix f;
    fix_init(&f);
    struct err e = {0};
    enum { R = 4, F = 19 };
    float gu[R * 2 * F], out[R * F];
    for (int i = 0; i < R * 2 * F; i++) gu[i] = frand() * 4;
    struct tensor t = mk(&f, BE_F32, R, 2 * F, gu), y = mk(&f, BE_F32, R, F, NULL);
    T_RC(be_silu_mul(f.b, &y, &t, NULL, &e), &e);
    get(&f, &y, out);
    double worst = 0;
    for (int r = 0; r < R; r++)
        for (int i = 0; i < F; i++) {
            double want = silu_ref(gu[r * 2 * F + i]) * gu[r * 2 * F + F + i];
            worst = fmax(worst, fabs(out[r * F + i] - want) / (fabs(want) + 1e-3));
        }
    T_NEAR(worst, 0, 1e-6); /* expf vs exp: a few FP32 ulps */
    /* Separate gate and up views of the same fused tensor, BF16 output: same numbers rounded. */
    struct tensor g, u, yb = mk(&f, BE_BF16, R, F, NULL);
    T_RC(be_tensor_cols_view(&g, &t, 0, F, &e), &e);
    T_RC(be_tensor_cols_view(&u, &t, F, F, &e), &e);
    T_RC(be_silu_mul(f.b, &yb, &g, &u, &e), &e);
    float outb[R * F];
    get(&f, &yb, outb);
    int same = 1;
    for (int i = 0; i < R * F; i++) same &= outb[i] == rbf(out[i]);
    T_OK(same);
    /* In place on the gate view (an exact alias) is allowed. */
    T_RC(be_silu_mul(f.b, &g, &g, &u, &e), &e);
    float back[R * 2 * F];
    get(&f, &t, back);
    T_NEAR(back[2 * F + 3], out[F + 3], 0);
    /* Errors: odd fused width, y aliasing the fused input, shape mismatch. */
    struct tensor odd = mk(&f, BE_F32, R, 2 * F + 1, NULL);
    T_FAILS(be_silu_mul(f.b, &y, &odd, NULL, &e), VELA_EINVAL, &e);
    T_FAILS(be_silu_mul(f.b, &g, &t, NULL, &e), VELA_EINVAL, &e);
    struct tensor ybad = mk(&f, BE_F32, R, F + 1, NULL);
    T_FAILS(be_silu_mul(f.b, &ybad, &t, NULL, &e), VELA_EINVAL, &e);
    fix_deinit(&f);
}

/* to_bf16 of a SIMD table bit for bit against the portable one (which is f32_to_bf16): random
 * values, exact ties (round to even both ways), values that carry into the exponent, the
 * largest finite value (rounds to inf), subnormals, signed zeros, infinities, signalling and
 * quiet NaNs, at lengths around the vector widths. */
static void check_to_bf16(const struct vec_ops *v, const struct vec_ops *ref) {
    static const uint32_t edge[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x3f80ffffu,
                                    0x7f7fffffu, 0xff7fffffu, 0x00000001u, 0x807fffffu,
                                    0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u,
                                    0x7f800001u, 0xffc00000u, 0x7fbfffffu, 0x3f7fffffu};
    static const int64_t lens[] = {1, 5, 8, 15, 16, 17, 24, 33, 257};
    enum { NMAX = 257 };
    float x[NMAX];
    uint16_t y1[NMAX], y2[NMAX + 1];
    int exact = 1, untouched = 1;
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        int64_t n = lens[k];
        for (int64_t i = 0; i < n; i++) {
            if (i % 3 == 1) {
                uint32_t u = edge[(size_t)(i + (int64_t)k) % (sizeof edge / sizeof edge[0])];
                memcpy(&x[i], &u, 4);
            } else {
                x[i] = frand() * 1000;
            }
        }
        y2[n] = 0xabcd; /* past the row: must stay */
        ref->to_bf16(y1, x, n);
        v->to_bf16(y2, x, n);
        for (int64_t i = 0; i < n; i++) exact &= y1[i] == y2[i];
        untouched &= y2[n] == 0xabcd;
    }
    T_OK(exact);
    T_OK(untouched);
    uint16_t h; /* the portable path is f32_to_bf16: spot checks of ties and NaN */
    float f;
    uint32_t u = 0x3f808000u; /* tie, kept half even: stays */
    memcpy(&f, &u, 4);
    ref->to_bf16(&h, &f, 1);
    T_OK(h == 0x3f80);
    u = 0x3f818000u; /* tie, kept half odd: up */
    memcpy(&f, &u, 4);
    ref->to_bf16(&h, &f, 1);
    T_OK(h == 0x3f82);
    u = 0x7f800001u; /* signalling NaN: quiet NaN */
    memcpy(&f, &u, 4);
    ref->to_bf16(&h, &f, 1);
    T_OK(h == 0x7fc0);
}

/* One SIMD vec_ops table against the portable one, on random rows of awkward lengths with
 * values far outside exp's range mixed in. Below -88 libm gives silu = -0 and the SIMD
 * path about x / exp(88) (~1e-36): the 1e-20 floor in the relative error treats both as 0. */
static void check_vec_path(const struct vec_ops *v, const struct vec_ops *ref) {
    static const int64_t lens[] = {1, 7, 8, 15, 16, 17, 31, 63, 64, 65, 129, 896, 1001};
    static const float edge[] = {100.0f, -100.0f, 88.0f, -88.0f, 88.5f,   -88.5f, 87.9f,
                                 -87.9f, 0.0f,    -0.0f, 1e-20f, -1e-20f, 30.0f,  -30.0f};
    enum { NMAX = 1001 };
    float *g = malloc(NMAX * sizeof *g), *u = malloc(NMAX * sizeof *u);
    float *y1 = malloc(NMAX * sizeof *y1), *y2 = malloc(NMAX * sizeof *y2);
    double worst_silu = 0, worst_ss = 0;
    int add_exact = 1, scale_exact = 1, big_exact = 1;
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        int64_t n = lens[k];
        for (int64_t i = 0; i < n; i++) {
            g[i] = i % 5 == 3 ? edge[(size_t)(i + (int64_t)k) % (sizeof edge / sizeof edge[0])]
                              : frand() * 8;
            u[i] = frand();
        }
        ref->silu_mul(y1, g, u, n);
        v->silu_mul(y2, g, u, n);
        for (int64_t i = 0; i < n; i++) {
            worst_silu = fmax(worst_silu, fabs((double)y2[i] - y1[i]) / (fabs(y1[i]) + 1e-20));
            if (g[i] > 88.0f && y2[i] != g[i] * u[i]) big_exact = 0; /* silu(x) = x */
        }
        ref->add(y1, g, u, n);
        v->add(y2, g, u, n);
        for (int64_t i = 0; i < n; i++) add_exact &= y1[i] == y2[i];
        double s1 = ref->sumsq(u, n), s2 = v->sumsq(u, n);
        worst_ss = fmax(worst_ss, fabs(s2 - s1) / s1);
        ref->scale_mul(y1, g, 0.37f, u, n);
        v->scale_mul(y2, g, 0.37f, u, n);
        for (int64_t i = 0; i < n; i++) scale_exact &= y1[i] == y2[i];
        /* In place: y aliasing the gate. */
        memcpy(y2, g, (size_t)n * sizeof *g);
        v->silu_mul(y2, y2, u, n);
        ref->silu_mul(y1, g, u, n);
        for (int64_t i = 0; i < n; i++)
            worst_silu = fmax(worst_silu, fabs((double)y2[i] - y1[i]) / (fabs(y1[i]) + 1e-20));
    }
    fprintf(stderr, "  vec %s: silu worst rel %.3g, sumsq worst rel %.3g\n", v->name, worst_silu,
            worst_ss);
    T_NEAR(worst_silu, 0, 1e-6);
    T_NEAR(worst_ss, 0, 1e-6);
    T_OK(add_exact);
    T_OK(scale_exact);
    T_OK(big_exact);
    free(g), free(u), free(y1), free(y2);
    check_to_bf16(v, ref);
}

static void test_vec_paths(void) {
    const struct vec_ops *ref = vec_ops_get(CPU_ISA_PORTABLE);
    T_OK(ref != NULL);
    T_OK(vec_ops_get(CPU_ISA_AUTO) != NULL);
    int n = 0;
    const enum cpu_isa isas[] = {CPU_ISA_AVX2, CPU_ISA_AVX512};
    for (size_t i = 0; i < 2; i++) {
        const struct vec_ops *v = vec_ops_get(isas[i]);
        if (!v) {
            fprintf(stderr, "  vec %s: not supported here\n", cpu_isa_name(isas[i]));
            continue;
        }
        check_vec_path(v, ref);
        n++;
    }
    if (n == 0) T_SKIP("no SIMD elementwise path on this CPU");
}

/* The ops on the portable path and on the fastest one, on rows longer than the BF16 staging
 * chunk (odd length), F32 and BF16 tensors mixed: the dispatch and staging in act.c/norm.c. */
static void run_wide(enum cpu_isa isa, const float *xv, const float *gv, float out[5][3 * 601]) {
    enum { R = 3, D = 601 };
    struct fix f;
    struct err e = {0};
    memset(&f, 0, sizeof f);
    struct be_cpu_opts o = be_cpu_opts_default(2);
    o.isa = isa;
    T_RC(be_cpu_new_opts(&f.b, &o, &e), &e);
    struct tensor xb = mk(&f, BE_BF16, R, D, xv), xf = mk(&f, BE_F32, R, D, xv);
    struct tensor g = mk(&f, BE_BF16, 1, D, gv);
    struct tensor yf = mk(&f, BE_F32, R, D, NULL), yb = mk(&f, BE_BF16, R, D, NULL);
    T_RC(be_rms_norm(f.b, &yf, &xb, &g, 1e-6f, &e), &e);
    get(&f, &yf, out[0]);
    T_RC(be_rms_norm(f.b, &yb, &xf, &g, 1e-6f, &e), &e);
    get(&f, &yb, out[1]);
    T_RC(be_silu_mul(f.b, &yb, &xb, &xf, &e), &e);
    get(&f, &yb, out[2]);
    T_RC(be_silu_mul(f.b, &yf, &xf, &xb, &e), &e);
    get(&f, &yf, out[3]);
    T_RC(be_add(f.b, &xb, &xb, &xf, &e), &e);
    get(&f, &xb, out[4]);
    fix_deinit(&f);
}

static void test_wide_rows_paths(void) {
    enum { R = 3, D = 601 };
    static float xv[R * D], gv[D], a[5][R * D], b[5][R * D];
    for (int i = 0; i < R * D; i++) xv[i] = rbf(frand() * 6);
    for (int i = 0; i < D; i++) gv[i] = rbf(frand());
    run_wide(CPU_ISA_PORTABLE, xv, gv, a);
    run_wide(CPU_ISA_AUTO, xv, gv, b);
    double w[5] = {0};
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < R * D; i++)
            w[k] = fmax(w[k], fabs((double)b[k][i] - a[k][i]) / (fabs(a[k][i]) + 1e-3));
    T_NEAR(w[0], 0, 1e-6);      /* F32 output */
    T_NEAR(w[1], 0, 1.0 / 128); /* BF16 outputs: at most one rounding flip */
    T_NEAR(w[2], 0, 1.0 / 128);
    T_NEAR(w[3], 0, 1e-6);
    T_NEAR(w[4], 0, 0); /* add is exact on every path */
    T_OK(a[3][R * D - 1] != 0.0f || b[3][R * D - 1] != 0.0f);
}

static void test_add(void) {
    struct fix f;
    fix_init(&f);
    struct err e = {0};
    enum { R = 2, D = 33 };
    float av[R * D], cv[R * D], out[R * D];
    for (int i = 0; i < R * D; i++) av[i] = frand(), cv[i] = frand();
    struct tensor a = mk(&f, BE_F32, R, D, av), c = mk(&f, BE_BF16, R, D, cv);
    T_RC(be_add(f.b, &a, &a, &c, &e), &e); /* the residual add, in place */
    get(&f, &a, out);
    int exact = 1;
    for (int i = 0; i < R * D; i++) exact &= out[i] == av[i] + rbf(cv[i]);
    T_OK(exact);
    struct tensor bad = mk(&f, BE_F32, R, D - 1, NULL);
    T_FAILS(be_add(f.b, &a, &bad, &c, &e), VELA_EINVAL, &e);
    /* y shifted one column against an input: a partial overlap, refused. */
    struct tensor left, right;
    T_RC(be_tensor_cols_view(&left, &a, 0, D - 1, &e), &e);
    T_RC(be_tensor_cols_view(&right, &a, 1, D - 1, &e), &e);
    T_FAILS(be_add(f.b, &right, &left, &bad, &e), VELA_EINVAL, &e);
    fix_deinit(&f);
}

static void test_embed(void) {
    struct fix f;
    fix_init(&f);
    struct err e = {0};
    enum { V = 11, D = 9, N = 5 };
    float tv[V * D];
    for (int i = 0; i < V * D; i++) tv[i] = rbf(frand());
    /* The table as borrowed weights: host memory, no copy. */
    uint16_t host[V * D];
    for (int i = 0; i < V * D; i++) host[i] = f32_to_bf16(tv[i]);
    struct be_buffer *wb = NULL;
    T_RC(be_buffer_from_host(f.b, host, sizeof host, BE_BUF_WEIGHTS, &wb, &e), &e);
    f.buf[f.n++] = wb;
    struct tensor table;
    int64_t shape[2] = {V, D};
    T_RC(be_tensor_init(&table, wb, 0, BE_BF16, 2, shape, &e), &e);
    T_OK(be_tensor_host_ptr(&table) == (void *)host); /* borrowed, not copied */
    struct be_buffer *ib = NULL;
    T_RC(be_buffer_new(f.b, BE_BUF_COMPUTE, N * 4, &ib, &e), &e);
    f.buf[f.n++] = ib;
    struct tensor ids;
    int64_t n1[1] = {N};
    T_RC(be_tensor_init(&ids, ib, 0, BE_I32, 1, n1, &e), &e);
    int32_t idv[N] = {3, 0, 10, 3, 7};
    T_RC(be_tensor_write(f.b, &ids, idv, sizeof idv, &e), &e);
    struct tensor y = mk(&f, BE_F32, N, D, NULL), yb = mk(&f, BE_BF16, N, D, NULL);
    T_RC(be_embed(f.b, &y, &table, &ids, &e), &e);
    T_RC(be_embed(f.b, &yb, &table, &ids, &e), &e);
    float out[N * D], outb[N * D];
    get(&f, &y, out);
    get(&f, &yb, outb);
    int exact = 1;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++)
            exact &= out[i * D + j] == tv[idv[i] * D + j] && outb[i * D + j] == out[i * D + j];
    T_OK(exact);
    /* A bad id fails, names its position, and leaves y untouched. */
    idv[4] = V;
    T_RC(be_tensor_write(f.b, &ids, idv, sizeof idv, &e), &e);
    T_FAILS(be_embed(f.b, &y, &table, &ids, &e), VELA_EINVAL, &e);
    T_OK(strstr(e.msg, "position 4") != NULL);
    idv[4] = -1;
    T_RC(be_tensor_write(f.b, &ids, idv, sizeof idv, &e), &e);
    T_FAILS(be_embed(f.b, &y, &table, &ids, &e), VELA_EINVAL, &e);
    float again[N * D];
    get(&f, &y, again);
    T_OK(memcmp(again, out, sizeof out) == 0);
    /* Writing into the borrowed table is refused. */
    T_FAILS(be_tensor_write(f.b, &table, tv, V * D * 2, &e), VELA_EINVAL, &e);
    fix_deinit(&f);
}

static void test_tensor_bookkeeping(void) {
    struct fix f;
    fix_init(&f);
    struct err e = {0};
    struct be_buffer *buf = NULL;
    T_RC(be_buffer_new(f.b, BE_BUF_COMPUTE, 100, &buf, &e), &e);
    f.buf[f.n++] = buf;
    struct tensor t;
    int64_t ok[3] = {2, 3, 4}, big[2] = {5, 6}, zero[1] = {0}, huge[4] = {1 << 30, 1 << 30, 4, 1};
    T_RC(be_tensor_init(&t, buf, 4, BE_F32, 3, ok, &e), &e); /* 96 bytes at offset 4 */
    T_EQ(be_tensor_rows(&t), 6);
    T_EQ(be_tensor_cols(&t), 4);
    T_FAILS(be_tensor_init(&t, buf, 8, BE_F32, 3, ok, &e), VELA_EINVAL, &e); /* 104 > 100 */
    T_FAILS(be_tensor_init(&t, buf, 0, BE_F32, 2, big, &e), VELA_EINVAL, &e);
    T_FAILS(be_tensor_init(&t, buf, 2, BE_F32, 1, ok, &e), VELA_EINVAL, &e); /* misaligned */
    T_FAILS(be_tensor_init(&t, buf, 0, BE_F32, 1, zero, &e), VELA_EINVAL, &e);
    T_FAILS(be_tensor_init(&t, buf, 0, BE_F32, 5, ok, &e), VELA_EINVAL, &e);
    T_FAILS(be_tensor_init(&t, buf, 0, BE_BF16, 4, huge, &e), VELA_EINVAL, &e);
    T_RC(be_tensor_init(&t, buf, 0, BE_F32, 3, ok, &e), &e);
    struct tensor v;
    T_FAILS(be_tensor_cols_view(&v, &t, 2, 3, &e), VELA_EINVAL, &e);
    T_FAILS(be_tensor_rows_view(&v, &t, 5, 2, &e), VELA_EINVAL, &e);
    T_RC(be_tensor_rows_view(&v, &t, 4, 2, &e), &e);
    float src[8] = {1, 2, 3, 4, 5, 6, 7, 8}, dst[12];
    T_RC(be_tensor_write(f.b, &v, src, sizeof src, &e), &e);
    T_FAILS(be_tensor_write(f.b, &v, src, sizeof src - 4, &e), VELA_EINVAL, &e);
    float all[24];
    T_RC(be_tensor_read(f.b, &t, all, sizeof all, &e), &e);
    T_NEAR(all[16], 1, 0);
    T_NEAR(all[23], 8, 0);
    T_NEAR(all[15], 0, 0); /* fresh buffers are zero */
    T_RC(be_tensor_cols_view(&v, &t, 1, 2, &e), &e);
    T_RC(be_tensor_read(f.b, &v, dst, 12 * 4, &e), &e);
    T_NEAR(dst[8], 2, 0);  /* row 4, column 1 */
    T_NEAR(dst[11], 7, 0); /* row 5, column 2 */
    T_NEAR(dst[0], 0, 0);
    T_STREQ(be_name(f.b), "cpu");
    T_EQ(be_device_of(f.b), BE_DEV_CPU);
    T_EQ(be_sync(f.b, &e), 0);
    fix_deinit(&f);
}

/* A large buffer (an anonymous mapping, zeroed by the kernel on first touch) reads as zeros
 * everywhere, keeps what is written, and frees; so does a small one (aligned_alloc). */
static void test_large_buffer(void) {
    struct err e = {0};
    struct be *b = NULL;
    T_RC(be_cpu_new(&b, 1, &e), &e);
    const size_t sizes[2] = {(size_t)3 << 20, 4096};
    for (int i = 0; b && i < 2; i++) {
        struct be_buffer *buf = NULL;
        struct tensor t;
        int64_t shape[2] = {(int64_t)(sizes[i] / 4096), 1024};
        T_RC(be_buffer_new(b, BE_BUF_COMPUTE, sizes[i], &buf, &e), &e);
        if (!buf) continue;
        T_RC(be_tensor_init(&t, buf, 0, BE_F32, 2, shape, &e), &e);
        const float *p = be_tensor_host_ptr(&t);
        T_OK(p && ((uintptr_t)p & 63) == 0);
        int64_t n = shape[0] * shape[1], nonzero = 0;
        for (int64_t j = 0; p && j < n; j += 1021) nonzero += p[j] != 0.0f;
        T_OK(p && p[n - 1] == 0.0f && nonzero == 0);
        float row[1024];
        for (int j = 0; j < 1024; j++) row[j] = (float)j;
        struct tensor last;
        T_RC(be_tensor_rows_view(&last, &t, shape[0] - 1, 1, &e), &e);
        T_RC(be_tensor_write(b, &last, row, sizeof row, &e), &e);
        T_OK(p && p[n - 1] == 1023.0f && p[n - 1024] == 0.0f);
        be_buffer_free(buf);
    }
    be_free(b);
}

/* be_add_rms_norm is be_add then be_rms_norm, bit for bit, with F32 and BF16 residuals and
 * y = x (as the model runs it) or a separate y; y on the residual is refused. */
static void test_add_rms_norm(void) {
    struct fix f;
    fix_init(&f);
    struct err e = {0};
    enum { R = 19, D = 300 };
    float hv[R * D], xv[R * D], gv[D], a[R * D], b[R * D];
    for (int i = 0; i < R * D; i++) hv[i] = 3 * frand(), xv[i] = frand();
    for (int i = 0; i < D; i++) gv[i] = 1 + 0.25f * frand();
    for (int dt = 0; dt < 2; dt++) {
        enum be_dtype hd = dt ? BE_BF16 : BE_F32;
        struct tensor g = mk(&f, BE_BF16, 1, D, gv);
        struct tensor h1 = mk(&f, hd, R, D, hv), x1 = mk(&f, BE_F32, R, D, xv);
        struct tensor h2 = mk(&f, hd, R, D, hv), x2 = mk(&f, BE_F32, R, D, xv);
        T_RC(be_add(f.b, &h1, &h1, &x1, &e), &e);
        T_RC(be_rms_norm(f.b, &x1, &h1, &g, 1e-6f, &e), &e);
        T_RC(be_add_rms_norm(f.b, &h2, &x2, &x2, &g, 1e-6f, &e), &e);
        get(&f, &h1, a), get(&f, &h2, b);
        T_OK(memcmp(a, b, sizeof a) == 0);
        get(&f, &x1, a), get(&f, &x2, b);
        T_OK(memcmp(a, b, sizeof a) == 0);
        T_FAILS(be_add_rms_norm(f.b, &h2, &h2, &x2, &g, 1e-6f, &e), VELA_EINVAL, &e);
        struct tensor shifted;
        T_RC(be_tensor_cols_view(&shifted, &x2, 1, D - 1, &e), &e);
        struct tensor xs;
        T_RC(be_tensor_cols_view(&xs, &x2, 0, D - 1, &e), &e);
        struct tensor hs, gs;
        T_RC(be_tensor_cols_view(&hs, &h2, 0, D - 1, &e), &e);
        T_RC(be_tensor_cols_view(&gs, &g, 0, D - 1, &e), &e);
        T_FAILS(be_add_rms_norm(f.b, &hs, &shifted, &xs, &gs, 1e-6f, &e), VELA_EINVAL, &e);
        for (int i = 0; i < f.n; i++) be_buffer_free(f.buf[i]);
        f.n = 0;
    }
    fix_deinit(&f);
}

/* Column slices of one matrix (q | k | v of a stacked projection) placed at an offset that is
 * not a multiple of its row pitch: neighbours are disjoint, also as 1-row views; a slice one
 * column wider overlaps; ops accept the disjoint ones as input and output. */
static void test_interleaved_views(void) {
    struct fix f;
    fix_init(&f);
    struct err e = {0};
    struct be_buffer *buf = NULL;
    T_RC(be_buffer_new(f.b, BE_BUF_COMPUTE, 4096, &buf, &e), &e);
    f.buf[f.n++] = buf;
    struct tensor all, q, k, v, q1, k1, wide;
    int64_t shape[2] = {5, 12}; /* pitch 48 bytes, placed at 64 */
    T_RC(be_tensor_init(&all, buf, 64, BE_F32, 2, shape, &e), &e);
    T_RC(be_tensor_cols_view(&q, &all, 0, 8, &e), &e);
    T_RC(be_tensor_cols_view(&k, &all, 8, 2, &e), &e);
    T_RC(be_tensor_cols_view(&v, &all, 10, 2, &e), &e);
    T_OK(!tensor_overlap(&q, &k) && !tensor_overlap(&k, &q));
    T_OK(!tensor_overlap(&k, &v) && !tensor_overlap(&v, &q) && !tensor_overlap(&q, &v));
    T_RC(be_tensor_rows_view(&q1, &q, 3, 1, &e), &e);
    T_RC(be_tensor_rows_view(&k1, &k, 3, 1, &e), &e);
    T_OK(!tensor_overlap(&q1, &k1) && !tensor_overlap(&k1, &q1));
    T_OK(!tensor_overlap(&q1, &k) && !tensor_overlap(&k, &q1));
    T_RC(be_tensor_cols_view(&wide, &all, 7, 3, &e), &e);
    T_OK(tensor_overlap(&wide, &q) && tensor_overlap(&k, &wide) && !tensor_overlap(&wide, &v));
    T_OK(tensor_overlap(&q, &q1) && tensor_overlap(&all, &v));
    /* silu_mul(gate | up) in place into the gate half, as the stacked MLP runs it */
    struct tensor g, u;
    T_RC(be_tensor_cols_view(&g, &all, 0, 6, &e), &e);
    T_RC(be_tensor_cols_view(&u, &all, 6, 6, &e), &e);
    T_RC(be_silu_mul(f.b, &g, &g, &u, &e), &e);
    fix_deinit(&f);
}

/* Many rows: the ops split rows over the pool; results must equal a 1-thread backend's
 * bit for bit (each row's math is the same wherever it runs). */
static void test_parallel_rows(void) {
    enum { R = 67, D = 40 };
    struct err e = {0};
    float xv[R * 2 * D], gv[D], out[2][3][R * D];
    for (int i = 0; i < R * 2 * D; i++) xv[i] = frand();
    for (int i = 0; i < D; i++) gv[i] = frand();
    for (int v = 0; v < 2; v++) {
        struct fix f;
        memset(&f, 0, sizeof f);
        struct be_cpu_opts o = be_cpu_opts_default(v == 0 ? 1 : 3);
        T_RC(be_cpu_new_opts(&f.b, &o, &e), &e);
        if (!f.b) return;
        struct tensor x = mk(&f, BE_F32, R, 2 * D, xv), g = mk(&f, BE_F32, 1, D, gv);
        struct tensor y1 = mk(&f, BE_F32, R, D, NULL), y2 = mk(&f, BE_BF16, R, D, NULL);
        struct tensor y3 = mk(&f, BE_F32, R, D, NULL), xl;
        T_RC(be_tensor_cols_view(&xl, &x, 0, D, &e), &e);
        T_RC(be_rms_norm(f.b, &y1, &xl, &g, 1e-6f, &e), &e);
        T_RC(be_silu_mul(f.b, &y2, &x, NULL, &e), &e);
        T_RC(be_add(f.b, &y3, &y1, &y2, &e), &e);
        get(&f, &y1, out[v][0]);
        get(&f, &y2, out[v][1]);
        get(&f, &y3, out[v][2]);
        fix_deinit(&f);
    }
    T_OK(memcmp(out[0], out[1], sizeof out[0]) == 0);
    T_OK(out[1][2][R * D - 1] != 0.0f); /* the last row was computed */
}

int main(void) {
    T_RUN(test_parallel_rows);
    T_RUN(test_rms_norm);
    T_RUN(test_silu_mul);
    T_RUN(test_add);
    T_RUN(test_vec_paths);
    T_RUN(test_wide_rows_paths);
    T_RUN(test_embed);
    T_RUN(test_tensor_bookkeeping);
    T_RUN(test_interleaved_views);
    T_RUN(test_add_rms_norm);
    T_RUN(test_large_buffer);
    return t_done();
}
