/* Tests for be_rope (backend/attn.c, cpu/rope.c): the M-RoPE section mapping of spec §5.3
 * against a plain-C reference written from the spec's table, 1-D RoPE, the BF16 rounding
 * mode, the inv_freq values of spec §5.2, odd shapes and argument checks. */
#include "backend/backend.h"
#include "backend/cpu/attn_ops.h"
#include "backend/cpu/backend_cpu.h"
#include "util/bf16.h"
#include "t.h"

#include <stdint.h>

static uint32_t g_rng = 12345;

static float frand(void) { /* uniform in [-2, 2) */
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)((g_rng >> 8) & 0xffffff) / 4194304.0f - 2.0f;
}

static float r16(float v) {
    return bf16_to_f32(f32_to_bf16(v));
}

#include "be_fixture.h"

/* The reference: rotate every head of every row of x [n, nh*hd] in place. The position row
 * of frequency j comes from the section table (t for the first sec[0], then h, then w). */
static void ref_rope(float *x, int64_t n, int64_t nh, int32_t hd, const int32_t *pos,
                     const int32_t sec[3], float theta, bool bf16) {
    int32_t half = hd / 2;
    for (int64_t r = 0; r < n; r++) {
        for (int64_t h = 0; h < nh; h++) {
            float *v = x + (r * nh + h) * hd;
            for (int32_t j = 0; j < half; j++) {
                int row = j < sec[0] ? 0 : j < sec[0] + sec[1] ? 1 : 2;
                float inv = 1.0f / powf(theta, (float)(2 * j) / (float)hd);
                float th = (float)pos[row * n + r] * inv;
                float c = cosf(th), s = sinf(th);
                float x0 = v[j], x1 = v[j + half];
                if (bf16) {
                    c = r16(c), s = r16(s);
                    v[j] = r16(r16(x0 * c) - r16(x1 * s));
                    v[j + half] = r16(r16(x1 * c) + r16(x0 * s));
                } else {
                    v[j] = x0 * c - x1 * s;
                    v[j + half] = x1 * c + x0 * s;
                }
            }
        }
    }
}

static void run_case(struct be *b, enum be_dtype dt, int64_t n, int64_t nq, int64_t nkv, int32_t hd,
                     const int32_t sec[3], float theta) {
    struct err e = {0};
    size_t nqe = (size_t)(n * nq * hd), nke = (size_t)(n * nkv * hd);
    float *q = malloc(nqe * 4), *k = malloc(nke * 4), *oq = malloc(nqe * 4), *ok = malloc(nke * 4);
    int32_t *pos = malloc((size_t)(3 * n) * 4);
    for (size_t i = 0; i < nqe; i++) q[i] = dt == BE_BF16 ? r16(frand()) : frand();
    for (size_t i = 0; i < nke; i++) k[i] = dt == BE_BF16 ? r16(frand()) : frand();
    /* distinct t, h, w rows so a wrong section mapping shows */
    for (int64_t i = 0; i < n; i++) {
        pos[i] = (int32_t)(3 + i);
        pos[n + i] = (int32_t)(100 + 7 * i);
        pos[2 * n + i] = (int32_t)(5000 + 31 * i);
    }
    struct tensor tq = mk(b, dt, n, nq * hd, q), tk = mk(b, dt, n, nkv * hd, k);
    struct rope_args a = {.pos = pos, .head_dim = hd, .theta = theta};
    for (int i = 0; i < 3; i++) a.section[i] = sec[i];
    T_RC(be_rope(b, &tq, &tk, &a, &e), &e);
    get(b, &tq, oq);
    get(b, &tk, ok);
    ref_rope(q, n, nq, hd, pos, sec, theta, dt == BE_BF16);
    ref_rope(k, n, nkv, hd, pos, sec, theta, dt == BE_BF16);
    double md = 0;
    for (size_t i = 0; i < nqe; i++) md = fmax(md, fabs((double)oq[i] - q[i]));
    for (size_t i = 0; i < nke; i++) md = fmax(md, fabs((double)ok[i] - k[i]));
    /* Same formula, same FP32 operations: only libm differences between calls remain. */
    T_NEAR(md, 0.0, dt == BE_BF16 ? 0.02 : 2e-6);
    free(q), free(k), free(oq), free(ok), free(pos);
    free_bufs();
}

static struct be *mkbe(void) {
    struct err e = {0};
    struct be *b = NULL;
    T_RC(be_cpu_new(&b, 2, &e), &e);
    return b;
}

static void test_inv_freq(void) {
    float f[64];
    cpu_rope_inv_freq(1000000.0f, 128, f);
    T_NEAR(f[0], 1.0, 0);
    T_NEAR(f[1], 0.80584222, 1e-7);
    T_NEAR(f[2], 0.64938164, 1e-7);
    T_NEAR(f[15], 0.039241899, 1e-8);
    T_NEAR(f[16], 0.031622779, 1e-8);
    T_NEAR(f[39], 2.2067342e-4, 1e-11);
    T_NEAR(f[40], 1.7782794e-4, 1e-11);
    T_NEAR(f[63], 1.2409378e-6, 1e-13);
}

static void test_shapes(void) {
    struct be *b = mkbe();
    static const int32_t s128[3] = {16, 24, 24}, s80[3] = {8, 16, 16}, s16[3] = {2, 3, 3},
                         s1d[3] = {32, 0, 0}, s1d16[3] = {8, 0, 0};
    run_case(b, BE_F32, 7, 16, 2, 128, s128, 1e6f);
    run_case(b, BE_F32, 1, 3, 1, 80, s80, 1e4f);
    run_case(b, BE_F32, 13, 7, 7, 16, s16, 1e6f);
    run_case(b, BE_F32, 5, 4, 2, 64, s1d, 1e6f);
    run_case(b, BE_F32, 3, 2, 1, 16, s1d16, 10000.0f);
    run_case(b, BE_BF16, 9, 14, 2, 128, s128, 1e6f);
    run_case(b, BE_BF16, 2, 2, 2, 16, s16, 1e6f);
    be_free(b);
}

/* M-RoPE with equal rows equals 1-D RoPE (text tokens, spec §5.3 last line); distinct rows
 * differ, so the mapping matters. */
static void test_text_equals_1d(void) {
    struct be *b = mkbe();
    struct err e = {0};
    int64_t n = 4, w = 2 * 128;
    float *x = malloc((size_t)(n * w) * 4), *o1 = malloc((size_t)(n * w) * 4),
          *o2 = malloc((size_t)(n * w) * 4);
    for (int64_t i = 0; i < n * w; i++) x[i] = frand();
    int32_t pos[12] = {0, 1, 2, 77, 0, 1, 2, 77, 0, 1, 2, 77};
    struct tensor t1 = mk(b, BE_F32, n, w, x), t2 = mk(b, BE_F32, n, w, x);
    struct rope_args a = {.pos = pos, .head_dim = 128, .section = {16, 24, 24}, .theta = 1e6f};
    T_RC(be_rope(b, &t1, NULL, &a, &e), &e);
    a.section[0] = 64, a.section[1] = 0, a.section[2] = 0;
    T_RC(be_rope(b, &t2, NULL, &a, &e), &e);
    get(b, &t1, o1);
    get(b, &t2, o2);
    T_OK(memcmp(o1, o2, (size_t)(n * w) * 4) == 0);
    /* position 0 is the identity */
    T_OK(memcmp(o1, x, 128 * 2 * 4) == 0);
    free(x), free(o1), free(o2);
    free_bufs();
    be_free(b);
}

static void test_errors(void) {
    struct be *b = mkbe();
    struct err e = {0};
    float x[4 * 32] = {0};
    int32_t pos[12] = {0};
    struct tensor t = mk(b, BE_F32, 4, 32, x);
    struct rope_args a = {.pos = pos, .head_dim = 16, .section = {2, 3, 3}, .theta = 1e6f};
    T_RC(be_rope(b, &t, NULL, &a, &e), &e);
    a.section[2] = 4;
    T_FAILS(be_rope(b, &t, NULL, &a, &e), VELA_EINVAL, &e);
    a.section[2] = 3, a.head_dim = 12;
    T_FAILS(be_rope(b, &t, NULL, &a, &e), VELA_EINVAL, &e); /* 32 not a multiple of 12 */
    a.head_dim = 15;
    T_FAILS(be_rope(b, &t, NULL, &a, &e), VELA_EINVAL, &e); /* odd */
    a.head_dim = 16, a.theta = 0.0f;
    T_FAILS(be_rope(b, &t, NULL, &a, &e), VELA_EINVAL, &e);
    a.theta = 1e6f, a.pos = NULL;
    T_FAILS(be_rope(b, &t, NULL, &a, &e), VELA_EINVAL, &e);
    a.pos = pos;
    struct tensor k3 = mk(b, BE_F32, 3, 32, x);
    T_FAILS(be_rope(b, &t, &k3, &a, &e), VELA_EINVAL, &e); /* row counts differ */
    T_FAILS(be_rope(b, &t, &t, &a, &e), VELA_EINVAL, &e);  /* q and k overlap */
    free_bufs();
    be_free(b);
}

int main(void) {
    T_RUN(test_inv_freq);
    T_RUN(test_shapes);
    T_RUN(test_text_equals_1d);
    T_RUN(test_errors);
    return t_done();
}
