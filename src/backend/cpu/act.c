/* act: elementwise ops on the CPU: silu_mul (the SwiGLU of the MLP) and add (the residual),
 * rows split over the thread pool. FP32 math; a BF16 output is rounded once at the store.
 * Invariant: element (r, c) of y depends only on element (r, c) of the inputs (and, for the
 * fused gate_up, on (r, F + c), which no store can reach because backend.c refuses y
 * aliasing gate_up), so exact aliases are safe; each pool thread owns whole rows.
 * Owner thread only (fans out internally). */
#include "backend/cpu/cpu_ops.h"

#include <math.h>

/* Rows per thread below which the pool is not woken: a few microseconds of work. */
#define ACT_MIN_ROWS 8

struct act_args {
    const struct tensor *y, *a, *c;
    int64_t c0; /* silu_mul: first column of up inside c */
};

static void silu_rows(void *arg, int64_t r0, int64_t r1) {
    const struct act_args *p = arg;
    int64_t f = be_tensor_cols(p->y);
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t i = 0; i < f; i++) {
            float g = cpu_get_f32(p->a, r, i);
            float s = g / (1.0f + expf(-g));
            cpu_set_f32(p->y, r, i, s * cpu_get_f32(p->c, r, p->c0 + i));
        }
    }
}

int cpu_silu_mul(struct be *b, struct tensor *y, const struct tensor *gate, const struct tensor *up,
                 struct err *e) {
    (void)e;
    /* Fused: the up half starts at column F of gate_up. */
    struct act_args p = {.y = y, .a = gate, .c = up ? up : gate, .c0 = up ? 0 : be_tensor_cols(y)};
    cpu_parallel_rows((struct be_cpu *)b, be_tensor_rows(y), ACT_MIN_ROWS, silu_rows, &p);
    return 0;
}

static void add_rows(void *arg, int64_t r0, int64_t r1) {
    const struct act_args *p = arg;
    int64_t cols = be_tensor_cols(p->y);
    for (int64_t r = r0; r < r1; r++)
        for (int64_t i = 0; i < cols; i++)
            cpu_set_f32(p->y, r, i, cpu_get_f32(p->a, r, i) + cpu_get_f32(p->c, r, i));
}

int cpu_add(struct be *b, struct tensor *y, const struct tensor *a, const struct tensor *c,
            struct err *e) {
    (void)e;
    struct act_args p = {.y = y, .a = a, .c = c};
    cpu_parallel_rows((struct be_cpu *)b, be_tensor_rows(y), ACT_MIN_ROWS, add_rows, &p);
    return 0;
}
