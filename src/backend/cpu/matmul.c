/* matmul: the CPU matmul driver. Packs the activations once per chunk of rows into the
 * backend's scratch buffer (BF16 zero-padded for avx512, FP32 for the others when x is not
 * already FP32), then runs the path's kernel on every pool thread, each over its own slice
 * of output columns.
 *
 * Invariants:
 *   1. thread slices are contiguous column ranges aligned to MM_COL_ALIGN outputs, so each
 *      thread streams a disjoint, contiguous part of w and the threads never write the same
 *      64-byte line of an aligned y row;
 *   2. a chunk holds as many rows as fit both the scratch buffer and MM_CHUNK_BYTES; within a
 *      chunk the kernels read each weight from memory once, so for m up to the chunk size w
 *      is read exactly once per call;
 *   3. nothing is allocated per call. */
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/matmul.h"
#include "util/bf16.h"

#include <inttypes.h>

/* 32 outputs = one 64-byte line of BF16 y, two of F32 y. */
#define MM_COL_ALIGN 32
/* Packed activations per chunk: about half of a 2 MB L2, so a chunk stays cached while the
 * threads walk their weight slices. */
#define MM_CHUNK_BYTES (1u << 20)

struct mm_ctx {
    struct mm_job job;
    void (*kernel)(const struct mm_job *, int64_t, int64_t);
};

static void mm_worker(void *arg, int i, int n_threads) {
    const struct mm_ctx *ctx = arg;
    int64_t n0, n1;
    tp_partition(ctx->job.n, MM_COL_ALIGN, i, n_threads, &n0, &n1);
    if (n0 < n1) ctx->kernel(&ctx->job, n0, n1);
}

/* Packs rows [r0, r0+rows) of x into scratch in the layout the kernel expects. */
static void mm_pack(const struct be_cpu *c, const struct tensor *x, int64_t r0, int64_t rows,
                    int64_t stride) {
    int64_t k = be_tensor_cols(x);
    if (c->isa == CPU_ISA_AVX512) {
        uint16_t *d = c->scratch;
        if (x->dtype == BE_F32) {
            mm_avx512_pack_f32(d, stride, be_tensor_addr(x, r0, 0), x->row_stride, rows, k);
            return;
        }
        for (int64_t r = 0; r < rows; r++) {
            const uint16_t *s = be_tensor_addr(x, r0 + r, 0);
            for (int64_t i = 0; i < stride; i++) d[r * stride + i] = i < k ? s[i] : 0;
        }
        return;
    }
    float *d = c->scratch; /* x is BF16 here: F32 x is used in place */
    for (int64_t r = 0; r < rows; r++) {
        const uint16_t *s = be_tensor_addr(x, r0 + r, 0);
        for (int64_t i = 0; i < k; i++) d[r * stride + i] = bf16_to_f32(s[i]);
    }
}

int cpu_matmul(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *w,
               const struct tensor *bias, struct err *e) {
    struct be_cpu *c = (struct be_cpu *)b;
    int64_t m = be_tensor_rows(x), k = be_tensor_cols(x);
    bool avx512 = c->isa == CPU_ISA_AVX512;
    bool in_place = !avx512 && x->dtype == BE_F32;
    int64_t stride = avx512 ? (k + 31) & ~(int64_t)31 : k;
    size_t row_bytes = (size_t)stride * (avx512 ? 2 : 4);
    int64_t chunk = m;
    if (!in_place) {
        size_t cap = c->scratch_bytes < MM_CHUNK_BYTES ? c->scratch_bytes : MM_CHUNK_BYTES;
        chunk = (int64_t)(cap / row_bytes);
        if (chunk < 4) chunk = (int64_t)(c->scratch_bytes / row_bytes); /* huge k: fewer rows */
        if (chunk < 1)
            return err_set(e, VELA_ELIMIT,
                           "matmul: k = %" PRId64 " needs %zu scratch bytes per row, have %zu", k,
                           row_bytes, c->scratch_bytes);
        if (chunk > 4) chunk &= ~(int64_t)3; /* whole 4-row tiles */
    }
    struct mm_ctx ctx = {.job = {.w = be_tensor_addr(w, 0, 0),
                                 .w_stride = w->row_stride,
                                 .bias = bias ? be_tensor_addr(bias, 0, 0) : NULL,
                                 .bias_dtype = bias ? bias->dtype : BE_F32,
                                 .y_stride = y->row_stride,
                                 .y_dtype = y->dtype,
                                 .n = be_tensor_rows(w),
                                 .k = k}};
    ctx.kernel = avx512 ? mm_avx512 : c->isa == CPU_ISA_AVX2 ? mm_avx2 : mm_portable;
    for (int64_t r0 = 0; r0 < m; r0 += chunk) {
        int64_t rows = m - r0 < chunk ? m - r0 : chunk;
        if (in_place) {
            ctx.job.x = be_tensor_addr(x, r0, 0);
            ctx.job.x_stride = x->row_stride;
        } else {
            mm_pack(c, x, r0, rows, stride);
            ctx.job.x = c->scratch;
            ctx.job.x_stride = stride;
        }
        ctx.job.m = rows;
        ctx.job.y = be_tensor_addr(y, r0, 0);
        tp_run(c->pool, mm_worker, &ctx);
    }
    return 0;
}
