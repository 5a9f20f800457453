/* Tests for the vision-tower ops (backend/vit_ops.c, cpu/rope2d.c, attention_varlen.c,
 * gelu.c, layer_norm.c): each against a plain-C reference written from spec §4.3-§4.6 (double
 * precision for attention and GELU), on F32 and BF16 tensors, strided column views of a fused qkv,
 * odd segment lengths (tiles that straddle segments), one and two pool threads, the AVX-512
 * attention kernel and the plain-C one, the vision inv_freq values of spec §4.3, and
 * argument checks.
 *
 * Tolerances: F32 ops vs the double reference 1e-5 relative (FP32 summation over at most a
 * few hundred terms); BF16 outputs one BF16 rounding (2^-8 relative) plus that. */
#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"
#include "backend/cpu/vit_ops.h"
#include "util/bf16.h"
#include "t.h"

#include <stdint.h>

static uint32_t g_rng = 777;

static float frand(void) { /* uniform in [-2, 2) */
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)((g_rng >> 8) & 0xffffff) / 4194304.0f - 2.0f;
}

#include "be_fixture.h"

/* The ISA of the next backend: AUTO runs attention_varlen's AVX-512 kernel where the CPU has
 * it, PORTABLE always the plain-C one. */
static enum cpu_isa g_isa = CPU_ISA_AUTO;

static struct be *mkbe(int n_threads) {
    struct err e = {0};
    struct be *b = NULL;
    struct be_cpu_opts o = be_cpu_opts_default(n_threads);
    o.isa = g_isa;
    T_RC(be_cpu_new_opts(&b, &o, &e), &e);
    return b;
}

static float *frands(size_t n) {
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = frand();
    return v;
}

static float r16(float v) {
    return bf16_to_f32(f32_to_bf16(v));
}

static void test_inv_freq(void) {
    static const float want[20] = {1.0f,   0.630957f,    0.398107f,    0.251189f,    0.158489f,
                                   0.1f,   0.0630957f,   0.0398107f,   0.0251189f,   0.0158489f,
                                   0.01f,  0.00630957f,  0.00398107f,  0.00251189f,  0.00158489f,
                                   0.001f, 0.000630957f, 0.000398107f, 0.000251189f, 0.000158489f};
    float got[20];
    cpu_rope2d_inv_freq(10000.0f, 80, got);
    int ok = 1;
    for (int j = 0; j < 20; j++)
        ok &= fabsf(got[j] - want[j]) <= 5e-6f * want[j]; /* spec values have 6 digits */
    T_OK(ok);
    /* spec §12: patch (r = 3, c = 5): angle j = 1 is 3·0.630957, j = 21 is 5·0.630957 */
    T_NEAR(3.0f * got[1], 1.892872, 2e-6);
    T_NEAR(5.0f * got[1], 3.154787, 2e-6);
}

/* Reference rotation from the spec's formulas (FP32, as the reference). */
static void ref_rope2d(float *x, int64_t n, int64_t nh, int32_t hd, const int32_t *pos) {
    int32_t half = hd / 2, nf = hd / 4;
    for (int64_t r = 0; r < n; r++)
        for (int64_t h = 0; h < nh; h++) {
            float *v = x + (r * nh + h) * hd;
            for (int32_t j = 0; j < half; j++) {
                float p = (float)(j < nf ? pos[r] : pos[n + r]);
                float inv = 1.0f / powf(10000.0f, (float)(2 * (j % nf)) / (float)half);
                float c = cosf(p * inv), s = sinf(p * inv);
                float x0 = v[j], x1 = v[j + half];
                v[j] = x0 * c - x1 * s;
                v[j + half] = x1 * c + x0 * s;
            }
        }
}

static void check_rope2d(enum be_dtype dt, int n_threads) {
    struct err e = {0};
    struct be *b = mkbe(n_threads);
    const int64_t n = 37, nh = 3;
    const int32_t hd = 16;
    int64_t w = nh * hd;
    int32_t pos[2 * 37];
    for (int64_t i = 0; i < n; i++) pos[i] = (int32_t)(i % 11), pos[n + i] = (int32_t)(i * 7 % 23);
    /* q and k as column views of a fused [n, 3w] tensor, like the ViT's qkv */
    float *qkv = frands((size_t)(n * 3 * w));
    if (dt == BE_BF16)
        for (int64_t i = 0; i < n * 3 * w; i++) qkv[i] = r16(qkv[i]);
    struct tensor t = mk(b, dt, n, 3 * w, qkv), q, k;
    T_RC(be_tensor_cols_view(&q, &t, 0, w, &e), &e);
    T_RC(be_tensor_cols_view(&k, &t, w, w, &e), &e);
    struct rope2d_args a = {.pos = pos, .head_dim = hd, .theta = 10000.0f};
    T_RC(be_rope2d(b, &q, &k, &a, &e), &e);
    float *got = malloc((size_t)(n * 3 * w) * 4), *rq = malloc((size_t)(n * w) * 4),
          *rk = malloc((size_t)(n * w) * 4);
    get(b, &t, got);
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < w; c++)
            rq[r * w + c] = qkv[r * 3 * w + c], rk[r * w + c] = qkv[r * 3 * w + w + c];
    ref_rope2d(rq, n, nh, hd, pos);
    ref_rope2d(rk, n, nh, hd, pos);
    double md = 0, mv = 0;
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < w; c++) {
            float eq = dt == BE_BF16 ? r16(rq[r * w + c]) : rq[r * w + c];
            float ek = dt == BE_BF16 ? r16(rk[r * w + c]) : rk[r * w + c];
            md = fmax(md, fabs(got[r * 3 * w + c] - eq));
            md = fmax(md, fabs(got[r * 3 * w + w + c] - ek));
            mv = fmax(mv, fabs(got[r * 3 * w + 2 * w + c] - qkv[r * 3 * w + 2 * w + c]));
        }
    /* F32: identical operations, a few ulps from libm; BF16: one rounding, at most 1 ulp off */
    T_CHECK_(md <= (dt == BE_F32 ? 1e-6 : 2e-2), "rope2d %s: max diff %g", be_dtype_name(dt), md);
    T_CHECK_(mv == 0, "rope2d touched v: %g", mv);
    free(got), free(rq), free(rk), free(qkv);
    free_bufs();
    be_free(b);
}

static void test_rope2d(void) {
    check_rope2d(BE_F32, 1);
    check_rope2d(BE_F32, 2);
    check_rope2d(BE_BF16, 2);
}

/* Double-precision segment attention over x [n, 3w] = q | k | v. */
static void ref_attention(const float *x, int64_t n, int64_t nh, int32_t hd, const int32_t *cu,
                          int32_t n_segs, float *o) {
    int64_t w = nh * hd;
    double *p = malloc((size_t)n * sizeof(double));
    for (int32_t s = 0; s < n_segs; s++)
        for (int64_t i = cu[s]; i < cu[s + 1]; i++)
            for (int64_t h = 0; h < nh; h++) {
                double mx = -INFINITY, sum = 0;
                for (int64_t j = cu[s]; j < cu[s + 1]; j++) {
                    double d = 0;
                    for (int32_t c = 0; c < hd; c++)
                        d += (double)x[i * 3 * w + h * hd + c] * x[j * 3 * w + w + h * hd + c];
                    p[j] = d / sqrt((double)hd);
                    mx = fmax(mx, p[j]);
                }
                for (int64_t j = cu[s]; j < cu[s + 1]; j++) sum += (p[j] = exp(p[j] - mx));
                for (int32_t c = 0; c < hd; c++) {
                    double acc = 0;
                    for (int64_t j = cu[s]; j < cu[s + 1]; j++)
                        acc += p[j] * x[j * 3 * w + 2 * w + h * hd + c];
                    o[i * w + h * hd + c] = (float)(acc / sum);
                }
            }
    free(p);
}

static void check_attention(enum be_dtype dt, int n_threads, const int32_t *cu, int32_t n_segs,
                            int32_t hd) {
    struct err e = {0};
    struct be *b = mkbe(n_threads);
    const int64_t nh = 3, n = cu[n_segs], w = nh * hd;
    float *x = frands((size_t)(n * 3 * w));
    if (dt == BE_BF16)
        for (int64_t i = 0; i < n * 3 * w; i++) x[i] = r16(x[i]);
    struct tensor t = mk(b, dt, n, 3 * w, x), o = mk(b, dt, n, w, NULL), q, k, v;
    T_RC(be_tensor_cols_view(&q, &t, 0, w, &e), &e);
    T_RC(be_tensor_cols_view(&k, &t, w, w, &e), &e);
    T_RC(be_tensor_cols_view(&v, &t, 2 * w, w, &e), &e);
    struct varlen_meta m = {
        .n_segs = n_segs, .cu_seqlens = cu, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd)};
    T_RC(be_attention_varlen(b, &o, &q, &k, &v, &m, &e), &e);
    float *got = malloc((size_t)(n * w) * 4), *want = malloc((size_t)(n * w) * 4);
    get(b, &o, got);
    ref_attention(x, n, nh, hd, cu, n_segs, want);
    double md = 0;
    for (int64_t i = 0; i < n * w; i++) md = fmax(md, fabs(got[i] - want[i]));
    double tol = dt == BE_F32 ? 1e-5 : 2e-2;
    T_CHECK_(md <= tol, "attention_varlen %s, %d threads, %d segs, hd %d: max diff %g",
             be_dtype_name(dt), n_threads, (int)n_segs, (int)hd, md);
    free(x), free(got), free(want);
    free_bufs();
    be_free(b);
}

static void test_attention_varlen(void) {
    static const int32_t windows[] = {0, 16, 48, 53, 54, 118, 150}; /* odd and 1-row segments */
    static const int32_t one[] = {0, 203};                          /* > 3 key chunks */
    static const int32_t units[] = {0, 4, 8, 12, 16};
    for (int pass = 0; pass < 2; pass++) { /* the vector kernel (where present), plain C */
        g_isa = pass == 0 ? CPU_ISA_AUTO : CPU_ISA_PORTABLE;
        check_attention(BE_F32, 1, windows, 6, 16);
        check_attention(BE_F32, 2, windows, 6, 16);
        check_attention(BE_F32, 2, one, 1, 80);
        check_attention(BE_F32, 2, units, 4, 7); /* head_dim not a multiple of 8 */
        check_attention(BE_BF16, 2, windows, 6, 16);
    }
    g_isa = CPU_ISA_AUTO;
}

static void test_gelu_gather(void) {
    struct err e = {0};
    struct be *b = mkbe(2);
    const int64_t n = 19, w = 33;
    float *x = frands((size_t)(n * w)), *got = malloc((size_t)(n * w) * 4);
    x[0] = 0.0f, x[1] = -6.0f, x[2] = 6.0f;
    struct tensor t = mk(b, BE_F32, n, w, x), y = mk(b, BE_F32, n, w, NULL);
    struct tensor yb = mk(b, BE_BF16, n, w, NULL);
    T_RC(be_gelu(b, &y, &t, &e), &e);
    get(b, &y, got);
    double md = 0, mb = 0;
    for (int64_t i = 0; i < n * w; i++) {
        double ref = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
        md = fmax(md, fabs(got[i] - ref) / (1 + fabs(ref)));
    }
    T_CHECK_(md <= 1e-6, "gelu F32: max rel diff %g", md);
    T_NEAR(got[0], 0.0, 0);
    T_NEAR(got[2], 6.0, 1e-6);
    T_RC(be_gelu(b, &yb, &t, &e), &e); /* BF16 output: one rounding */
    float *gb = malloc((size_t)(n * w) * 4);
    get(b, &yb, gb);
    for (int64_t i = 0; i < n * w; i++) mb = fmax(mb, fabs(gb[i] - r16(got[i])));
    T_CHECK_(mb <= 1e-6 * 64, "gelu BF16: max diff %g", mb);
    T_RC(be_gelu(b, &t, &t, &e), &e); /* in place */
    get(b, &t, gb);
    T_OK(memcmp(gb, got, (size_t)(n * w) * 4) == 0);
    /* gather: y[i] = x[rows[i]], repeats allowed */
    int32_t rows[7] = {18, 0, 3, 3, 17, 9, 1};
    struct tensor g = mk(b, BE_F32, 7, w, NULL);
    T_RC(be_gather_rows(b, &g, &y, rows, &e), &e);
    float gv[7 * 33];
    get(b, &g, gv);
    int ok = 1;
    for (int i = 0; i < 7; i++) ok &= memcmp(gv + i * w, got + rows[i] * w, (size_t)w * 4) == 0;
    T_OK(ok);
    free(x), free(got), free(gb);
    free_bufs();
    be_free(b);
}

/* Qwen2-VL's ops: LayerNorm (double reference, biased variance) and quick_gelu. */
static void test_layer_norm_quick_gelu(void) {
    struct err e = {0};
    struct be *b = mkbe(2);
    const int64_t n = 21, w = 40;
    float *x = frands((size_t)(n * w)), *g = frands((size_t)w), *bi = frands((size_t)w);
    for (int64_t i = 0; i < w; i++) x[i] = 3.0f + 1e-3f * x[i]; /* large mean, small spread */
    float *got = malloc((size_t)(n * w) * 4);
    struct tensor t = mk(b, BE_F32, n, w, x), y = mk(b, BE_F32, n, w, NULL);
    struct tensor tg = mk(b, BE_BF16, 1, w, g), tb = mk(b, BE_F32, 1, w, bi);
    T_RC(be_layer_norm(b, &y, &t, &tg, &tb, 1e-6f, &e), &e);
    get(b, &y, got);
    double md = 0;
    for (int64_t r = 0; r < n; r++) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < w; i++) mean += x[r * w + i];
        mean /= (double)w;
        for (int64_t i = 0; i < w; i++) var += (x[r * w + i] - mean) * (x[r * w + i] - mean);
        var /= (double)w;
        for (int64_t i = 0; i < w; i++) {
            double ref = (x[r * w + i] - mean) / sqrt(var + 1e-6) * r16(g[i]) + bi[i];
            md = fmax(md, fabs(got[r * w + i] - ref));
        }
    }
    T_CHECK_(md <= 1e-4, "layer_norm: max diff %g", md); /* row 0: |x - mean| ~ 1e-3 */
    T_RC(be_quick_gelu(b, &y, &t, &e), &e);
    get(b, &y, got);
    md = 0;
    for (int64_t i = 0; i < n * w; i++)
        md = fmax(md, fabs(got[i] - x[i] / (1.0 + exp(-1.702 * x[i]))));
    T_CHECK_(md <= 1e-6, "quick_gelu: max diff %g", md);
    T_RC(be_layer_norm(b, &t, &t, &tg, &tb, 1e-6f, &e), &e); /* in place */
    e = (struct err){0};
    T_FAILS(be_layer_norm(b, &y, &t, &tg, &tb, -1.0f, &e), VELA_EINVAL, &e);
    e = (struct err){0};
    T_FAILS(be_layer_norm(b, &y, &t, &tb, &y, 1e-6f, &e), VELA_EINVAL, &e); /* bias shape */
    free(x), free(g), free(bi), free(got);
    free_bufs();
    be_free(b);
}

static void test_bad_args(void) {
    struct err e = {0};
    struct be *b = mkbe(1);
    float *x = frands(16 * 48);
    struct tensor t = mk(b, BE_F32, 16, 48, x), o = mk(b, BE_F32, 16, 16, NULL), q, k, v;
    struct tensor o8 = mk(b, BE_F32, 8, 16, NULL), tb = mk(b, BE_BF16, 16, 16, NULL);
    T_RC(be_tensor_cols_view(&q, &t, 0, 16, &e), &e);
    T_RC(be_tensor_cols_view(&k, &t, 16, 16, &e), &e);
    T_RC(be_tensor_cols_view(&v, &t, 32, 16, &e), &e);
    int32_t cu_bad[][3] = {{1, 8, 16}, {0, 8, 8}, {0, 8, 15}, {0, 9, 8}};
    for (int i = 0; i < 4; i++) {
        struct varlen_meta m = {.n_segs = 2, .cu_seqlens = cu_bad[i], .head_dim = 8, .scale = 1};
        e = (struct err){0};
        T_FAILS(be_attention_varlen(b, &o, &q, &k, &v, &m, &e), VELA_EINVAL, &e);
    }
    int32_t cu[3] = {0, 8, 16};
    struct varlen_meta m = {.n_segs = 2, .cu_seqlens = cu, .head_dim = 8, .scale = 1};
    e = (struct err){0};
    T_FAILS(be_attention_varlen(b, &o8, &q, &k, &v, &m, &e), VELA_EINVAL, &e); /* rows */
    e = (struct err){0};
    T_FAILS(be_attention_varlen(b, &q, &q, &k, &v, &m, &e), VELA_EINVAL, &e); /* o == q */
    m.head_dim = 5;
    e = (struct err){0};
    T_FAILS(be_attention_varlen(b, &o, &q, &k, &v, &m, &e), VELA_EINVAL, &e); /* 16 % 5 */
    m.head_dim = 8, m.scale = NAN;
    e = (struct err){0};
    T_FAILS(be_attention_varlen(b, &o, &q, &k, &v, &m, &e), VELA_EINVAL, &e);
    m.scale = 1;
    T_RC(be_attention_varlen(b, &o, &q, &k, &v, &m, &e), &e);
    int32_t pos[32] = {0};
    struct rope2d_args a = {.pos = pos, .head_dim = 6, .theta = 10000};
    e = (struct err){0};
    T_FAILS(be_rope2d(b, &q, &k, &a, &e), VELA_EINVAL, &e); /* 6 % 4 */
    a.head_dim = 8;
    e = (struct err){0};
    T_FAILS(be_rope2d(b, &q, &q, &a, &e), VELA_EINVAL, &e); /* q and k overlap */
    e = (struct err){0};
    T_FAILS(be_rope2d(b, &q, NULL, &a, &e), VELA_EINVAL, &e);
    a.theta = 0;
    e = (struct err){0};
    T_FAILS(be_rope2d(b, &q, &k, &a, &e), VELA_EINVAL, &e);
    int32_t rows[2] = {0, 16};
    struct tensor g2 = mk(b, BE_F32, 2, 16, NULL);
    e = (struct err){0};
    T_FAILS(be_gather_rows(b, &g2, &o, rows, &e), VELA_EINVAL, &e); /* row 16 of 16 */
    rows[1] = -1;
    e = (struct err){0};
    T_FAILS(be_gather_rows(b, &g2, &o, rows, &e), VELA_EINVAL, &e);
    rows[1] = 3;
    e = (struct err){0};
    T_FAILS(be_gather_rows(b, &g2, &tb, rows, &e), VELA_EINVAL, &e); /* dtype differs */
    struct tensor r0, r1;
    T_RC(be_tensor_rows_view(&r0, &o, 0, 2, &e), &e);
    e = (struct err){0};
    T_FAILS(be_gather_rows(b, &r0, &o, rows, &e), VELA_EINVAL, &e); /* y inside x */
    T_RC(be_gather_rows(b, &g2, &o, rows, &e), &e);
    e = (struct err){0};
    T_FAILS(be_gelu(b, &o8, &o, &e), VELA_EINVAL, &e); /* shape */
    T_RC(be_tensor_rows_view(&r0, &o, 0, 8, &e), &e);
    T_RC(be_tensor_rows_view(&r1, &o, 1, 8, &e), &e);
    e = (struct err){0};
    T_FAILS(be_gelu(b, &r1, &r0, &e), VELA_EINVAL, &e); /* partial overlap */
    T_RC(be_gelu(b, &tb, &o, &e), &e);                  /* F32 -> BF16, separate buffers */
    free(x);
    free_bufs();
    be_free(b);
}

int main(void) {
    T_RUN(test_inv_freq);
    T_RUN(test_rope2d);
    T_RUN(test_attention_varlen);
    T_RUN(test_gelu_gather);
    T_RUN(test_layer_norm_quick_gelu);
    T_RUN(test_bad_args);
    return t_done();
}
