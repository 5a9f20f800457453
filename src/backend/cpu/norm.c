/* norm: RMSNorm on the CPU, FP32 math, rows split over the thread pool.
 *
 * Matches Qwen2RMSNorm: the mean of squares is taken in FP32 or better (the vec.h kernels: a
 * double sum on the portable path, many FP32 partial sums added in double on the SIMD paths),
 * x · rsqrt(mean + eps) in FP32, then the gain. With a BF16 output the normalized value is
 * rounded to BF16 before the gain multiplies it, as the reference's cast order does (spec 10.2
 * item 8); with an F32 output there is no rounding at all.
 * BF16 rows are staged through F32 buffers of NORM_CHUNK elements (rowio.h).
 * Invariant: a row's sum is complete before any of it is written, so y may alias x; each
 * pool thread owns whole rows. Owner thread only (fans out internally). */
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/rowio.h"
#include "backend/cpu/vec.h"
#include "util/bf16.h"

#include <math.h>

/* Rows per thread below which the pool is not woken: a few microseconds of work. */
#define NORM_MIN_ROWS 8
/* Elements staged per step for BF16 rows: 3 x 1 KB of stack. */
#define NORM_CHUNK 256

struct norm_args {
    const struct tensor *y, *x, *gain;
    float eps;
    const struct vec_ops *v;
};

static double row_sumsq(const struct norm_args *a, int64_t r, int64_t cols, float *buf) {
    if (a->x->dtype == BE_F32) /* one call over the whole row, in place */
        return a->v->sumsq((const float *)be_tensor_addr(a->x, r, 0), cols);
    double ss = 0.0;
    for (int64_t c = 0; c < cols; c += NORM_CHUNK) {
        int64_t n = cols - c < NORM_CHUNK ? cols - c : NORM_CHUNK;
        ss += a->v->sumsq(rowio_in(a->x, r, c, n, buf), n);
    }
    return ss;
}

static void norm_rows(void *arg, int64_t r0, int64_t r1) {
    const struct norm_args *a = arg;
    int64_t cols = be_tensor_cols(a->x);
    bool round_first = a->y->dtype == BE_BF16;
    float xb[NORM_CHUNK], gb[NORM_CHUNK], yb[NORM_CHUNK];
    for (int64_t r = r0; r < r1; r++) {
        double ss = row_sumsq(a, r, cols, xb);
        float inv = 1.0f / sqrtf((float)(ss / (double)cols) + a->eps);
        for (int64_t c = 0; c < cols; c += NORM_CHUNK) {
            int64_t n = cols - c < NORM_CHUNK ? cols - c : NORM_CHUNK;
            const float *x = rowio_in(a->x, r, c, n, xb);
            const float *g = rowio_in(a->gain, 0, c, n, gb);
            if (round_first) {
                for (int64_t i = 0; i < n; i++) yb[i] = bf16_to_f32(f32_to_bf16(x[i] * inv)) * g[i];
            } else {
                a->v->scale_mul(rowio_out(a->y, r, c, yb), x, inv, g, n);
            }
            rowio_store(a->y, r, c, n, yb);
        }
    }
}

int cpu_rms_norm(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *gain,
                 float eps, struct err *e) {
    (void)e;
    struct norm_args a = {.y = y,
                          .x = x,
                          .gain = gain,
                          .eps = eps,
                          .v = vec_ops_for(((const struct be_cpu *)b)->isa)};
    cpu_parallel_rows((struct be_cpu *)b, be_tensor_rows(x), NORM_MIN_ROWS, norm_rows, &a);
    return 0;
}

/* ---- the residual add and the next norm, row by row (be_add_rms_norm) ---- */

struct add_norm_args {
    const struct tensor *x;
    struct norm_args norm; /* norm.x is the residual h */
};

/* h[r] += x[r] (cpu_add's row), then the norm of that row while it is in cache. */
static void add_norm_rows(void *arg, int64_t r0, int64_t r1) {
    const struct add_norm_args *a = arg;
    for (int64_t r = r0; r < r1; r++) {
        cpu_add_row(a->norm.v, a->norm.x, a->norm.x, a->x, r);
        norm_rows((void *)&a->norm, r, r + 1);
    }
}

int cpu_add_rms_norm(struct be *b, struct tensor *h, struct tensor *y, const struct tensor *x,
                     const struct tensor *gain, float eps, struct err *e) {
    (void)e;
    struct add_norm_args a = {.x = x,
                              .norm = {.y = y,
                                       .x = h,
                                       .gain = gain,
                                       .eps = eps,
                                       .v = vec_ops_for(((const struct be_cpu *)b)->isa)}};
    cpu_parallel_rows((struct be_cpu *)b, be_tensor_rows(h), NORM_MIN_ROWS, add_norm_rows, &a);
    return 0;
}
