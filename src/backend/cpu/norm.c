/* norm: RMSNorm on the CPU, FP32 math, rows split over the thread pool.
 *
 * Matches Qwen2RMSNorm: the mean of squares is taken in FP32 or better (here a double sum,
 * so the result does not depend on the row length's summation order), x · rsqrt(mean + eps)
 * in FP32, then the gain. With a BF16 output the normalized value is rounded to BF16 before
 * the gain multiplies it, as the reference's cast order does (spec 10.2 item 8); with an F32
 * output there is no rounding at all.
 * Invariant: a row's sum is complete before any of it is written, so y may alias x; each
 * pool thread owns whole rows. Owner thread only (fans out internally). */
#include "backend/cpu/cpu_ops.h"
#include "util/bf16.h"

#include <math.h>

/* Rows per thread below which the pool is not woken: a few microseconds of work. */
#define NORM_MIN_ROWS 8

struct norm_args {
    const struct tensor *y, *x, *gain;
    float eps;
};

static void norm_rows(void *arg, int64_t r0, int64_t r1) {
    const struct norm_args *a = arg;
    int64_t cols = be_tensor_cols(a->x);
    bool round_first = a->y->dtype == BE_BF16;
    for (int64_t r = r0; r < r1; r++) {
        double ss = 0.0;
        for (int64_t i = 0; i < cols; i++) {
            float v = cpu_get_f32(a->x, r, i);
            ss += (double)v * v;
        }
        float inv = 1.0f / sqrtf((float)(ss / (double)cols) + a->eps);
        for (int64_t i = 0; i < cols; i++) {
            float v = cpu_get_f32(a->x, r, i) * inv;
            if (round_first) v = bf16_to_f32(f32_to_bf16(v));
            cpu_set_f32(a->y, r, i, v * cpu_get_f32(a->gain, 0, i));
        }
    }
}

int cpu_rms_norm(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *gain,
                 float eps, struct err *e) {
    (void)e;
    struct norm_args a = {.y = y, .x = x, .gain = gain, .eps = eps};
    cpu_parallel_rows((struct be_cpu *)b, be_tensor_rows(x), NORM_MIN_ROWS, norm_rows, &a);
    return 0;
}
