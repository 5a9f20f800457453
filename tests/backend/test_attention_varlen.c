/* Tests for segment attention (backend/cpu/attention_varlen.c and its AVX-512 tile kernel,
 * attention_varlen_avx512.c): every layout is run through the vector kernel (where the CPU has
 * AVX-512F) and the portable one, and both are compared with a double-precision reference and
 * with each other.
 *
 * Layouts: one row, one 16-row segment, 65 rows (a full tile plus one), windows of 64 with
 * 1- and 3-row segments between them, a long 517-row segment (not a multiple of 16, of the
 * 64-row tile or of the 32-key chunk), a mix of long and short segments, and many random
 * short segments (every length class of the hand-out). Heads 1..16, head_dim 16/64/80/128,
 * 1..3 pool threads, q/k/v as column views of one fused qkv tensor or as separate tensors,
 * o as a column view of a wider tensor (its other columns must stay untouched), BF16 tensors
 * (the portable path). The tile kernel is also called directly for every row count class
 * (1..64 rows: 1..4 row vectors, partial and whole) and key counts around the chunk size.
 *
 * Tolerances: F32 vs the double reference 1e-5 relative (|diff| / (1 + |ref|): FP32 sums of a
 * few hundred terms); vector vs portable kernel the same; results with 1 and 3 threads and
 * with fused or separate inputs identical bit for bit (a tile's arithmetic does not depend on
 * the thread or the strides); BF16 one output rounding (2^-8 relative) on values below 2. */
#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"
#include "backend/cpu/cpu_features.h"
#include "backend/cpu/vit_ops.h"
#include "util/bf16.h"
#include "t.h"

#include <stdint.h>

static uint32_t g_rng = 4242;

static float frand(void) { /* uniform in [-2, 2) */
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)((g_rng >> 8) & 0xffffff) / 4194304.0f - 2.0f;
}

#include "be_fixture.h"

/* How the op sees its tensors. */
enum layout {
    LAY_FUSED,    /* q, k, v column views of one [n, 3w] tensor, o packed [n, w] */
    LAY_SEPARATE, /* q, k, v, o four packed [n, w] tensors */
    LAY_OVIEW     /* fused inputs; o the first w columns of an [n, 2w] tensor */
};

struct va_case {
    const int32_t *cu;
    int32_t n_segs;
    int64_t nh;
    int32_t hd;
};

static float *frands(size_t n) {
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = frand();
    return v;
}

/* Double-precision attention of one query row q against nk key and value rows (row stride
 * `stride` floats), head_dim hd, into o. */
static void ref_row(const float *q, const float *k, const float *v, int64_t stride, int64_t nk,
                    int32_t hd, float *o) {
    double *p = malloc((size_t)nk * sizeof(double)), mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < nk; j++) {
        double d = 0;
        for (int32_t e = 0; e < hd; e++) d += (double)q[e] * k[j * stride + e];
        p[j] = d / sqrt((double)hd);
        mx = fmax(mx, p[j]);
    }
    for (int64_t j = 0; j < nk; j++) sum += (p[j] = exp(p[j] - mx));
    for (int32_t e = 0; e < hd; e++) {
        double acc = 0;
        for (int64_t j = 0; j < nk; j++) acc += p[j] * v[j * stride + e];
        o[e] = (float)(acc / sum);
    }
    free(p);
}

/* Attention within segments; x [n, 3w] = q | k | v, o [n, w]. */
static void ref_attention(const float *x, const struct va_case *c, float *o) {
    int64_t w = c->nh * c->hd;
    for (int32_t s = 0; s < c->n_segs; s++)
        for (int64_t i = c->cu[s]; i < c->cu[s + 1]; i++)
            for (int64_t h = 0; h < c->nh; h++) {
                const float *seg = x + c->cu[s] * 3 * w + h * c->hd;
                ref_row(x + i * 3 * w + h * c->hd, seg + w, seg + 2 * w, 3 * w,
                        c->cu[s + 1] - c->cu[s], c->hd, o + i * w + h * c->hd);
            }
}

/* Runs the op on a fresh backend; out [n, w]. Returns the largest change to the columns of a
 * LAY_OVIEW output tensor outside o (0 elsewhere). */
static double run_op(enum cpu_isa isa, int n_threads, enum be_dtype dt, enum layout lay,
                     const float *x, const struct va_case *c, float *out) {
    struct err e = {0};
    struct be *b = mk_cpu(isa, n_threads, 0);
    if (!b) return INFINITY;
    int64_t n = c->cu[c->n_segs], w = c->nh * c->hd;
    struct tensor q, k, v, o, t, wide;
    double touched = 0;
    if (lay == LAY_SEPARATE) {
        float *parts[3];
        for (int i = 0; i < 3; i++) {
            parts[i] = malloc((size_t)(n * w) * sizeof(float));
            for (int64_t r = 0; r < n; r++)
                memcpy(parts[i] + r * w, x + r * 3 * w + i * w, (size_t)w * sizeof(float));
        }
        q = mk(b, dt, n, w, parts[0]), k = mk(b, dt, n, w, parts[1]), v = mk(b, dt, n, w, parts[2]);
        for (int i = 0; i < 3; i++) free(parts[i]);
    } else {
        t = mk(b, dt, n, 3 * w, x);
        T_RC(be_tensor_cols_view(&q, &t, 0, w, &e), &e);
        T_RC(be_tensor_cols_view(&k, &t, w, w, &e), &e);
        T_RC(be_tensor_cols_view(&v, &t, 2 * w, w, &e), &e);
    }
    float *sentinel = NULL;
    if (lay == LAY_OVIEW) {
        sentinel = malloc((size_t)(n * 2 * w) * sizeof(float));
        for (int64_t i = 0; i < n * 2 * w; i++) sentinel[i] = 7.0f + (float)(i % 5);
        wide = mk(b, dt, n, 2 * w, sentinel);
        T_RC(be_tensor_cols_view(&o, &wide, 0, w, &e), &e);
    } else {
        o = mk(b, dt, n, w, NULL);
    }
    struct varlen_meta m = {.n_segs = c->n_segs,
                            .cu_seqlens = c->cu,
                            .head_dim = c->hd,
                            .scale = 1.0f / sqrtf((float)c->hd)};
    T_RC(be_attention_varlen(b, &o, &q, &k, &v, &m, &e), &e);
    if (lay == LAY_OVIEW) {
        float *all = malloc((size_t)(n * 2 * w) * sizeof(float));
        get(b, &wide, all);
        for (int64_t r = 0; r < n; r++) {
            memcpy(out + r * w, all + r * 2 * w, (size_t)w * sizeof(float));
            for (int64_t j = w; j < 2 * w; j++)
                touched = fmax(touched, fabs(all[r * 2 * w + j] - sentinel[r * 2 * w + j]));
        }
        free(all);
    } else {
        get(b, &o, out);
    }
    free(sentinel);
    free_bufs();
    be_free(b);
    return touched;
}

/* max |a - b| / (1 + |b|) over n values. */
static double rel_diff(const float *a, const float *b, size_t n) {
    double md = 0;
    for (size_t i = 0; i < n; i++) md = fmax(md, fabs((double)a[i] - b[i]) / (1.0 + fabs(b[i])));
    return md;
}

static void check_case(const struct va_case *c, int n_threads) {
    int64_t n = c->cu[c->n_segs], w = c->nh * c->hd;
    size_t no = (size_t)(n * w), nb = no * sizeof(float);
    float *x = frands((size_t)(n * 3 * w));
    float *want = malloc(nb), *vec = malloc(nb), *vec1 = malloc(nb), *sep = malloc(nb);
    float *ov = malloc(nb), *port = malloc(nb), *port1 = malloc(nb);
    ref_attention(x, c, want);
    run_op(CPU_ISA_AUTO, n_threads, BE_F32, LAY_FUSED, x, c, vec);
    run_op(CPU_ISA_AUTO, 1, BE_F32, LAY_FUSED, x, c, vec1);
    run_op(CPU_ISA_AUTO, n_threads, BE_F32, LAY_SEPARATE, x, c, sep);
    double touched = run_op(CPU_ISA_AUTO, n_threads, BE_F32, LAY_OVIEW, x, c, ov);
    run_op(CPU_ISA_PORTABLE, n_threads, BE_F32, LAY_FUSED, x, c, port);
    bool small = n <= 130; /* the plain-C kernel is slow under the sanitizers */
    if (small) run_op(CPU_ISA_PORTABLE, 1, BE_F32, LAY_FUSED, x, c, port1);
    double dv = rel_diff(vec, want, no), dp = rel_diff(port, want, no),
           dvp = rel_diff(vec, port, no);
    const char *fmt = "%s: %d segs, %d rows, %d heads x %d, %d threads: max rel diff %g";
    T_CHECK_(dv <= 1e-5, fmt, "vector vs double", (int)c->n_segs, (int)n, (int)c->nh, (int)c->hd,
             n_threads, dv);
    T_CHECK_(dp <= 1e-5, fmt, "portable vs double", (int)c->n_segs, (int)n, (int)c->nh, (int)c->hd,
             n_threads, dp);
    T_CHECK_(dvp <= 1e-5, fmt, "vector vs portable", (int)c->n_segs, (int)n, (int)c->nh, (int)c->hd,
             n_threads, dvp);
    T_CHECK_(memcmp(vec, vec1, nb) == 0, "vector kernel: %d threads differ from 1", n_threads);
    if (small)
        T_CHECK_(memcmp(port, port1, nb) == 0, "portable kernel: %d threads differ from 1",
                 n_threads);
    T_CHECK_(memcmp(vec, sep, nb) == 0, "fused views and separate tensors differ (hd %d)",
             (int)c->hd);
    T_CHECK_(memcmp(vec, ov, nb) == 0, "o as a column view differs (hd %d)", (int)c->hd);
    T_CHECK_(touched == 0, "o's neighbouring columns changed by %g", touched);
    free(x), free(want), free(vec), free(vec1), free(sep), free(ov), free(port), free(port1);
}

/* BF16 tensors (always the portable kernel): one rounding of the FP32 result. */
static void check_bf16(const struct va_case *c, int n_threads) {
    int64_t n = c->cu[c->n_segs], w = c->nh * c->hd;
    float *x = frands((size_t)(n * 3 * w));
    for (int64_t i = 0; i < n * 3 * w; i++) x[i] = bf16_to_f32(f32_to_bf16(x[i]));
    float *want = malloc((size_t)(n * w) * sizeof(float)), *got = malloc((size_t)(n * w) * 4);
    ref_attention(x, c, want);
    run_op(CPU_ISA_AUTO, n_threads, BE_BF16, LAY_FUSED, x, c, got);
    double md = rel_diff(got, want, (size_t)(n * w));
    T_CHECK_(md <= 1.0 / 128, "BF16: %d segs, %d heads x %d: max rel diff %g", (int)c->n_segs,
             (int)c->nh, (int)c->hd, md);
    free(x), free(want), free(got);
}

static const int32_t one_row[] = {0, 1};
static const int32_t one_vec[] = {0, 16};
static const int32_t tile_plus[] = {0, 65};
/* windows of 64 with short segments (1, 47, 3 rows) between them */
static const int32_t windows[] = {0, 64, 128, 129, 176, 240, 243, 307};
static const int32_t long_seg[] = {0, 517};
static const int32_t mixed[] = {0, 300, 301, 365, 381, 450};

static void test_layouts(void) {
    const struct va_case cases[] = {
        {one_row, 1, 1, 16},  {one_vec, 1, 3, 64},  {tile_plus, 1, 2, 16}, {tile_plus, 1, 4, 128},
        {windows, 7, 16, 80}, {long_seg, 1, 1, 80}, {mixed, 5, 3, 64},     {mixed, 5, 2, 128},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i], 1 + (int)(i % 3));
}

/* Many segments of random lengths 1..150: several length classes, many items per call. */
static void test_many_segments(void) {
    int32_t cu[121];
    cu[0] = 0;
    for (int s = 0; s < 120; s++) {
        g_rng = g_rng * 1664525u + 1013904223u;
        int32_t len = 1 + (int32_t)((g_rng >> 16) % (s % 10 == 0 ? 150 : 40));
        cu[s + 1] = cu[s] + len;
    }
    const struct va_case c = {cu, 120, 2, 16};
    check_case(&c, 3);
    const struct va_case c80 = {cu, 120, 1, 80};
    check_case(&c80, 2);
}

static void test_bf16(void) {
    const struct va_case a = {windows, 7, 3, 16}, bcase = {mixed, 5, 2, 80};
    check_bf16(&a, 2);
    check_bf16(&bcase, 3);
}

/* va_tile_avx512 called directly: every row count class against keys around the chunk size
 * (one row vector partly used, whole ones, a partial fourth), q/k/v rows with a wide stride. */
static void test_tile_kernel(void) {
    if (!cpu_features_get()->avx512f) {
        fprintf(stderr, "note: no AVX-512F: the op never selects the tile kernel here\n");
        return;
    }
    static const int32_t rows[] = {1, 15, 16, 17, 31, 33, 48, 49, 63, 64};
    static const int32_t keys[] = {1, 31, 32, 33, 70};
    static const int32_t hds[] = {16, 80};
    for (int ih = 0; ih < 2; ih++)
        for (int ir = 0; ir < 10; ir++)
            for (int ik = 0; ik < 5; ik++) {
                int32_t hd = hds[ih], nq = rows[ir], nk = keys[ik];
                int32_t nmax = nq > nk ? nq : nk;
                /* nmax rows of q | k | v, one head: queries [0, nq), keys [0, nk) */
                float *x = frands((size_t)(nmax * 3 * hd)), *want = malloc((size_t)nmax * hd * 4);
                float *got = malloc((size_t)nmax * hd * 4);
                for (int32_t i = 0; i < nq; i++)
                    ref_row(x + i * 3 * hd, x + hd, x + 2 * hd, 3 * hd, nk, hd, want + i * hd);
                for (int64_t i = 0; i < (int64_t)nq * hd; i++) got[i] = NAN;
                va_tile_avx512(x, 3 * hd, nq, x + hd, 3 * hd, x + 2 * hd, 3 * hd, nk, hd,
                               1.0f / sqrtf((float)hd), got, hd);
                double md = rel_diff(got, want, (size_t)nq * hd);
                T_CHECK_(md <= 1e-5, "tile kernel: %d rows, %d keys, hd %d: max rel diff %g",
                         (int)nq, (int)nk, (int)hd, md);
                free(x), free(want), free(got);
            }
}

int main(void) {
    T_RUN(test_layouts);
    T_RUN(test_many_segments);
    T_RUN(test_bf16);
    T_RUN(test_tile_kernel);
    return t_done();
}
