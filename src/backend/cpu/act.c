/* act: elementwise ops on the CPU: silu_mul (the SwiGLU of the MLP) and add (the residual),
 * rows split over the thread pool. FP32 math in the vec.h kernels (portable, AVX2 or
 * AVX-512 after the backend's isa); a BF16 output is rounded once at the store.
 * F32 rows are handed to the kernels in place; BF16 rows go through F32 staging buffers of
 * ACT_CHUNK elements on the pool thread's stack.
 * Invariant: element (r, c) of y depends only on element (r, c) of the inputs (and, for the
 * fused gate_up, on (r, F + c), which no store can reach because backend.c refuses y
 * aliasing gate_up), so exact aliases are safe; each pool thread owns whole rows.
 * Owner thread only (fans out internally). */
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/rowio.h"
#include "backend/cpu/vec.h"

/* Rows per thread below which the pool is not woken: a few microseconds of work. */
#define ACT_MIN_ROWS 8
/* Elements staged per step for BF16 rows: 3 x 1 KB of stack. */
#define ACT_CHUNK 256

struct act_args {
    const struct tensor *y, *a, *c;
    int64_t c0; /* silu_mul: first column of up inside c */
    const struct vec_ops *v;
};

static const struct vec_ops *act_vec(const struct be *b) {
    return vec_ops_for(((const struct be_cpu *)b)->isa);
}

static void silu_rows(void *arg, int64_t r0, int64_t r1) {
    const struct act_args *p = arg;
    int64_t f = be_tensor_cols(p->y);
    float gb[ACT_CHUNK], ub[ACT_CHUNK], yb[ACT_CHUNK];
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t c = 0; c < f; c += ACT_CHUNK) {
            int64_t n = f - c < ACT_CHUNK ? f - c : ACT_CHUNK;
            const float *g = rowio_in(p->a, r, c, n, gb);
            const float *u = rowio_in(p->c, r, p->c0 + c, n, ub);
            p->v->silu_mul(rowio_out(p->y, r, c, yb), g, u, n);
            rowio_store(p->y, r, c, n, yb);
        }
    }
}

int cpu_silu_mul(struct be *b, struct tensor *y, const struct tensor *gate, const struct tensor *up,
                 struct err *e) {
    (void)e;
    /* Fused: the up half starts at column F of gate_up. */
    struct act_args p = {
        .y = y, .a = gate, .c = up ? up : gate, .c0 = up ? 0 : be_tensor_cols(y), .v = act_vec(b)};
    cpu_parallel_rows((struct be_cpu *)b, be_tensor_rows(y), ACT_MIN_ROWS, silu_rows, &p);
    return 0;
}

void cpu_add_row(const struct vec_ops *v, const struct tensor *y, const struct tensor *a,
                 const struct tensor *c, int64_t r) {
    int64_t cols = be_tensor_cols(y);
    float ab[ACT_CHUNK], cb[ACT_CHUNK], yb[ACT_CHUNK];
    for (int64_t c0 = 0; c0 < cols; c0 += ACT_CHUNK) {
        int64_t n = cols - c0 < ACT_CHUNK ? cols - c0 : ACT_CHUNK;
        const float *x = rowio_in(a, r, c0, n, ab);
        const float *z = rowio_in(c, r, c0, n, cb);
        v->add(rowio_out(y, r, c0, yb), x, z, n);
        rowio_store(y, r, c0, n, yb);
    }
}

static void add_rows(void *arg, int64_t r0, int64_t r1) {
    const struct act_args *p = arg;
    for (int64_t r = r0; r < r1; r++) cpu_add_row(p->v, p->y, p->a, p->c, r);
}

int cpu_add(struct be *b, struct tensor *y, const struct tensor *a, const struct tensor *c,
            struct err *e) {
    (void)e;
    struct act_args p = {.y = y, .a = a, .c = c, .v = act_vec(b)};
    cpu_parallel_rows((struct be_cpu *)b, be_tensor_rows(y), ACT_MIN_ROWS, add_rows, &p);
    return 0;
}
