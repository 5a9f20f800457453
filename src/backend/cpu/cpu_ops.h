/* cpu_ops: the CPU backend's private state and its op entry points, shared by the files of
 * backend/cpu/. Arguments are already validated by backend.c. Owner thread only. */
#ifndef VELA_BACKEND_CPU_CPU_OPS_H
#define VELA_BACKEND_CPU_CPU_OPS_H

#include "backend/backend_impl.h"
#include "backend/cpu/cpu_features.h"
#include "backend/cpu/threadpool.h"

struct be_cpu {
    struct be base;   /* first: a struct be * points here */
    struct tp *pool;  /* owned */
    enum cpu_isa isa; /* resolved matmul path, never AUTO */
    void *scratch;    /* owned, 64-byte aligned, scratch_bytes: matmul activations */
    size_t scratch_bytes;
    void *attn_scratch; /* owned, 64-byte aligned, attn_scratch_bytes: split-K partials */
    size_t attn_scratch_bytes;
    float *mm_tmp; /* owned, 64-byte aligned: MM_TF_TMP_FLOATS per pool thread */
};

int cpu_matmul(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *w,
               const struct tensor *bias, struct err *e);
int cpu_matmul_multi(struct be *b, const struct be_mm_out *outs, int n_out, const struct tensor *x,
                     struct err *e);
int cpu_rms_norm(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *gain,
                 float eps, struct err *e);
int cpu_add_rms_norm(struct be *b, struct tensor *h, struct tensor *y, const struct tensor *x,
                     const struct tensor *gain, float eps, struct err *e);
int cpu_add(struct be *b, struct tensor *y, const struct tensor *a, const struct tensor *c,
            struct err *e);
/* Row r of y = a + c (cpu_add's work for one row; BF16 rows staged through F32). */
struct vec_ops;
void cpu_add_row(const struct vec_ops *v, const struct tensor *y, const struct tensor *a,
                 const struct tensor *c, int64_t r);
int cpu_silu_mul(struct be *b, struct tensor *y, const struct tensor *gate, const struct tensor *up,
                 struct err *e);
int cpu_embed(struct be *b, struct tensor *y, const struct tensor *table, const struct tensor *ids,
              struct err *e);

/* Runs fn(ctx, r0, r1) over [0, rows) split into one contiguous range per pool thread
 * (rows below min_rows_per_thread per thread run on the caller alone: waking the pool
 * costs more than it saves). fn must only write its own rows. */
/* be_sample (sample.c). */
int cpu_sample(struct be *b, struct tensor *ids, const struct tensor *logits,
               const struct be_sample_row *rows, struct err *e);

typedef void (*cpu_rows_fn)(void *ctx, int64_t r0, int64_t r1);
void cpu_parallel_rows(struct be_cpu *c, int64_t rows, int64_t min_rows_per_thread, cpu_rows_fn fn,
                       void *ctx);

/* Element r, c of an F32 or BF16 tensor as float, and the store back (rounding to BF16). */
float cpu_get_f32(const struct tensor *t, int64_t r, int64_t c);
void cpu_set_f32(const struct tensor *t, int64_t r, int64_t c, float v);

#endif
