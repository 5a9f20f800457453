/* layer_norm: LayerNorm on the CPU (Qwen2-VL's vision tower), FP32 math, rows split over the
 * thread pool. Matches torch.nn.LayerNorm: mean and biased variance of the row (here double
 * sums over a two-pass mean, so the result does not depend on the summation order),
 * (x - mean) · rsqrt(var + eps) in FP32, then · gain + bias; a BF16 y is rounded once.
 * Invariant: a row's statistics are complete before any of it is written, so y may alias x;
 * each pool thread owns whole rows. Owner thread only (fans out internally). */
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/vit_ops.h"

#include <math.h>

/* Rows per thread below which the pool is not woken: a few microseconds of work. */
#define LN_MIN_ROWS 8

struct ln_args {
    const struct tensor *y, *x, *gain, *bias;
    float eps;
};

static void ln_rows(void *arg, int64_t r0, int64_t r1) {
    const struct ln_args *a = arg;
    int64_t cols = be_tensor_cols(a->x);
    for (int64_t r = r0; r < r1; r++) {
        double s = 0.0, ss = 0.0;
        for (int64_t i = 0; i < cols; i++) s += cpu_get_f32(a->x, r, i);
        double mean = s / (double)cols;
        for (int64_t i = 0; i < cols; i++) {
            double d = cpu_get_f32(a->x, r, i) - mean;
            ss += d * d;
        }
        float m = (float)mean, inv = 1.0f / sqrtf((float)(ss / (double)cols) + a->eps);
        for (int64_t i = 0; i < cols; i++) {
            float v = (cpu_get_f32(a->x, r, i) - m) * inv;
            cpu_set_f32(a->y, r, i, v * cpu_get_f32(a->gain, 0, i) + cpu_get_f32(a->bias, 0, i));
        }
    }
}

int cpu_layer_norm(struct be *b, struct tensor *y, const struct tensor *x,
                   const struct tensor *gain, const struct tensor *bias, float eps, struct err *e) {
    (void)e;
    struct ln_args a = {.y = y, .x = x, .gain = gain, .bias = bias, .eps = eps};
    cpu_parallel_rows((struct be_cpu *)b, be_tensor_rows(x), LN_MIN_ROWS, ln_rows, &a);
    return 0;
}
