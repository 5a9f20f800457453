/* gelu: the exact (erf) GELU of the patch merger (nn.GELU(), spec §4.6), Qwen2-VL's
 * quick_gelu (x · sigmoid(1.702 x)) and the row gather of the window reordering, on the CPU,
 * rows split over the thread pool.
 * GELU: FP32 math, 0.5·x·(1 + erf(x/√2)); a BF16 output is rounded once at the store.
 * Invariants: element (r, c) of y depends only on element (r, c) of x, so the exact alias
 * y == x is safe; each pool thread owns whole rows of y. Owner thread only. */
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/vit_ops.h"

#include <math.h>
#include <string.h>

/* Rows per thread below which the pool is not woken: a few microseconds of work. */
#define GELU_MIN_ROWS 4

struct gelu_args {
    const struct tensor *y, *x;
    const int32_t *rows; /* gather only */
};

static void gelu_rows(void *arg, int64_t r0, int64_t r1) {
    const struct gelu_args *p = arg;
    int64_t cols = be_tensor_cols(p->y);
    const float k = 0.70710678118654752f; /* 1/√2 */
    for (int64_t r = r0; r < r1; r++) {
        if (p->x->dtype == BE_F32 && p->y->dtype == BE_F32) {
            const float *x = be_tensor_addr(p->x, r, 0);
            float *y = be_tensor_addr(p->y, r, 0);
            for (int64_t i = 0; i < cols; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * k));
            continue;
        }
        for (int64_t i = 0; i < cols; i++) {
            float v = cpu_get_f32(p->x, r, i);
            cpu_set_f32(p->y, r, i, 0.5f * v * (1.0f + erff(v * k)));
        }
    }
}

int cpu_gelu(struct be *b, struct tensor *y, const struct tensor *x, struct err *e) {
    (void)e;
    struct gelu_args p = {.y = y, .x = x};
    cpu_parallel_rows((struct be_cpu *)b, be_tensor_rows(y), GELU_MIN_ROWS, gelu_rows, &p);
    return 0;
}

static void quick_gelu_rows(void *arg, int64_t r0, int64_t r1) {
    const struct gelu_args *p = arg;
    int64_t cols = be_tensor_cols(p->y);
    for (int64_t r = r0; r < r1; r++)
        for (int64_t i = 0; i < cols; i++) {
            float v = cpu_get_f32(p->x, r, i);
            cpu_set_f32(p->y, r, i, v / (1.0f + expf(-1.702f * v)));
        }
}

int cpu_quick_gelu(struct be *b, struct tensor *y, const struct tensor *x, struct err *e) {
    (void)e;
    struct gelu_args p = {.y = y, .x = x};
    cpu_parallel_rows((struct be_cpu *)b, be_tensor_rows(y), GELU_MIN_ROWS, quick_gelu_rows, &p);
    return 0;
}

static void gather_rows(void *arg, int64_t r0, int64_t r1) {
    const struct gelu_args *p = arg;
    size_t row = (size_t)be_tensor_cols(p->y) * be_dtype_size(p->y->dtype);
    for (int64_t r = r0; r < r1; r++)
        memcpy(be_tensor_addr(p->y, r, 0), be_tensor_addr(p->x, p->rows[r], 0), row);
}

int cpu_gather_rows(struct be *b, struct tensor *y, const struct tensor *x, const int32_t *rows,
                    struct err *e) {
    (void)e;
    struct gelu_args p = {.y = y, .x = x, .rows = rows};
    cpu_parallel_rows((struct be_cpu *)b, be_tensor_rows(y), 16, gather_rows, &p);
    return 0;
}
