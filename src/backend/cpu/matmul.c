/* matmul: the CPU matmul driver. Packs the activations once per chunk of rows into the
 * backend's scratch buffer (for avx512: BF16 rows zero-padded, or from MM_TF_MIN_ROWS rows
 * FP32 groups of 16 rows for the FP32-FMA kernel, in pairs for a chunk of one group; FP32
 * rows for the others when x is not already FP32), then runs the path's kernel on every pool
 * thread, each taking chunks of output columns from its own range, then from the others'.
 * Several products of one x (q/k/v, gate/up) share that packing and run as one dispatch:
 * their column ranges are laid end to end and handed out as one range.
 *
 * Invariants:
 *   1. work is handed out in chunks of whole MM_COL_ALIGN-column blocks of the combined
 *      outputs, each chunk to one thread (so the threads never write the same 64-byte line
 *      of an aligned y row): every thread owns a contiguous range and walks it front to
 *      back, so its weight stream and prefetches run on across chunks, and a thread done
 *      early steals chunks from the back of the others' ranges;
 *   2. a chunk holds as many rows as fit both the scratch buffer and MM_CHUNK_BYTES (for the
 *      FP32-FMA kernel at least MM_TF_PASS_ROWS where the scratch holds them, and at most
 *      MM_TF_MAX_ROWS when k spans several of its weight blocks, whose partial sums a thread
 *      keeps); within a chunk the kernels read each weight from memory once, so for m up to
 *      the chunk size w is read exactly once per call;
 *   3. packing a large chunk runs on the pool (rows split across threads) before the
 *      products start, in its own dispatch, so no kernel reads a half-packed row;
 *   4. nothing is allocated per call: a kernel called on pool thread i gets thread i's slice
 *      of the backend's mm_tmp (made with the backend) as its scratch. */
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/matmul.h"
#include "util/bf16.h"

#include <inttypes.h>
#include <stdatomic.h>

/* 32 outputs = one 64-byte line of BF16 y, two of F32 y. */
#define MM_COL_ALIGN 32
/* Packed activations per chunk: about half of a 2 MB L2, so a chunk stays cached while the
 * threads walk their weight slices. */
#define MM_CHUNK_BYTES (1u << 20)
/* Chunks per thread's range: a thread slowed by a busy neighbour (or by its share of memory
 * bandwidth) loses chunks to the others, so the threads finish together. */
#ifndef MM_CHUNKS_PER_THREAD
#define MM_CHUNKS_PER_THREAD 8
#endif
/* Fewest rows of an FP32-FMA chunk when the scratch holds them, whatever MM_CHUNK_BYTES says:
 * up to two groups the kernel makes one pass per weight block and reads the activations once
 * per span of columns, so they need not stay in L2, while a smaller chunk reads every weight
 * again and runs the one-group tile. At k = 11008 (the 3b down_proj) the L2 budget alone gave
 * 16-row chunks; 32 measured 1.10-1.13x faster at 32 rows and 1.05-1.10x at 512, and 64
 * (activations past L2 in the many-groups path) slower than 32 at 512 (docs/BENCHMARKS.md). */
#define MM_TF_PASS_ROWS 32
/* Below this many elements the caller packs alone: a dispatch costs more than the copy. */
#define MM_PACK_PAR_ELEMS 16384

struct mm_ctx {
    struct mm_job jobs[BE_MM_MAX_OUT];
    /* job j owns the combined blocks [first_block[j], first_block[j + 1]) */
    int64_t first_block[BE_MM_MAX_OUT + 1];
    int n_jobs;
    int64_t chunk_blocks; /* blocks taken at a time */
    /* Thread i's remaining blocks [lo, hi) as lo << 32 | hi: it takes chunks from lo, the
     * others steal from hi once their own range is done (invariant 1). */
    _Atomic uint64_t range[TP_MAX_THREADS];
    mm_kernel kernel;
    float *tmp; /* MM_TF_TMP_FLOATS per pool thread (the backend's mm_tmp) */
};

/* Runs the kernel of every job over combined blocks [b0, b1). */
static void mm_blocks(const struct mm_ctx *ctx, int64_t b0, int64_t b1, int thread) {
    for (int j = 0; j < ctx->n_jobs && b0 < b1; j++) {
        int64_t lo = ctx->first_block[j], hi = ctx->first_block[j + 1];
        if (b0 >= hi || b1 <= lo) continue;
        int64_t n = ctx->jobs[j].n;
        int64_t n0 = ((b0 > lo ? b0 : lo) - lo) * MM_COL_ALIGN;
        int64_t n1 = ((b1 < hi ? b1 : hi) - lo) * MM_COL_ALIGN;
        if (n1 > n) n1 = n;
        if (n0 < n1)
            ctx->kernel(&ctx->jobs[j], n0, n1, ctx->tmp + (size_t)thread * MM_TF_TMP_FLOATS);
    }
}

/* Takes up to `want` blocks of range r, from its front (owner) or its back (thief); returns
 * the count, 0 when the range is empty. */
static int64_t take(_Atomic uint64_t *r, int64_t want, bool front, int64_t *b0) {
    uint64_t cur = atomic_load_explicit(r, memory_order_relaxed);
    for (;;) {
        int64_t lo = (int64_t)(cur >> 32), hi = (int64_t)(cur & 0xffffffffu);
        if (lo >= hi) return 0;
        int64_t n = hi - lo < want ? hi - lo : want;
        uint64_t next = front ? (uint64_t)(lo + n) << 32 | (uint64_t)hi
                              : (uint64_t)lo << 32 | (uint64_t)(hi - n);
        if (atomic_compare_exchange_weak_explicit(r, &cur, next, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *b0 = front ? lo : hi - n;
            return n;
        }
    }
}

static void mm_worker(void *arg, int i, int n_threads) {
    struct mm_ctx *ctx = arg;
    int64_t b0, n;
    while ((n = take(&ctx->range[i], ctx->chunk_blocks, true, &b0)) > 0)
        mm_blocks(ctx, b0, b0 + n, i);
    for (int v = (i + 1) % n_threads; v != i; v = (v + 1) % n_threads)
        while ((n = take(&ctx->range[v], ctx->chunk_blocks, false, &b0)) > 0)
            mm_blocks(ctx, b0, b0 + n, i);
}

/* How a chunk of activations is packed for its kernel. */
enum mm_layout {
    MM_ROWS, /* rows: BF16 zero-padded (avx512) or FP32 (avx2, portable) */
    MM_TF,   /* groups of 16 rows, k-major FP32, for mm_avx512_tf */
    MM_TF1,  /* up to 16 rows in pairs, for mm_avx512_tf's one-group chunks */
};

struct pack_ctx {
    const struct be_cpu *c;
    const struct tensor *x;
    int64_t r0, rows, stride;
    enum mm_layout layout;
};

/* Packs rows [r0, r0+rows) of x into scratch rows [r0 - base, ...) in the layout the kernel
 * expects; base is the first row of the chunk. */
static void mm_pack_rows(const struct be_cpu *c, const struct tensor *x, int64_t base, int64_t r0,
                         int64_t rows, int64_t stride, enum mm_layout layout) {
    int64_t k = be_tensor_cols(x);
    if (layout == MM_TF) { /* r0 - base is a multiple of 16: whole groups of stride vectors */
        float *d = (float *)c->scratch + (r0 - base) * stride;
        mm_avx512_pack_tf(d, stride, be_tensor_addr(x, r0, 0), x->dtype, x->row_stride, rows, k);
        return;
    }
    if (layout == MM_TF1) { /* the whole chunk (base == r0) */
        mm_avx512_pack_tf_pairs((float *)c->scratch, stride, be_tensor_addr(x, r0, 0), x->dtype,
                                x->row_stride, rows, k);
        return;
    }
    if (c->isa == CPU_ISA_AVX512) {
        uint16_t *d = (uint16_t *)c->scratch + (r0 - base) * stride;
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
    float *d = (float *)c->scratch + (r0 - base) * stride; /* x is BF16 here */
    for (int64_t r = 0; r < rows; r++) {
        const uint16_t *s = be_tensor_addr(x, r0 + r, 0);
        for (int64_t i = 0; i < k; i++) d[r * stride + i] = bf16_to_f32(s[i]);
    }
}

static void pack_worker(void *arg, int i, int n_threads) {
    const struct pack_ctx *p = arg;
    int64_t a, b;
    tp_partition(p->rows, p->layout == MM_ROWS ? 1 : 16, i, n_threads, &a, &b);
    if (a < b) mm_pack_rows(p->c, p->x, p->r0, p->r0 + a, b - a, p->stride, p->layout);
}

/* Packs one chunk of rows, on the pool when it is large (invariant 3). */
static void mm_pack(struct be_cpu *c, const struct tensor *x, int64_t r0, int64_t rows,
                    int64_t stride, enum mm_layout layout) {
    if (rows < 2 || rows * be_tensor_cols(x) < MM_PACK_PAR_ELEMS) {
        mm_pack_rows(c, x, r0, r0, rows, stride, layout);
        return;
    }
    struct pack_ctx p = {
        .c = c, .x = x, .r0 = r0, .rows = rows, .stride = stride, .layout = layout};
    tp_run(c->pool, pack_worker, &p);
}

/* Rows per chunk for packed rows of row_bytes (invariant 2); 0 when not one row fits. */
static int64_t mm_chunk_rows(const struct be_cpu *c, size_t row_bytes) {
    size_t cap = c->scratch_bytes < MM_CHUNK_BYTES ? c->scratch_bytes : MM_CHUNK_BYTES;
    int64_t chunk = (int64_t)(cap / row_bytes);
    if (chunk < 4) chunk = (int64_t)(c->scratch_bytes / row_bytes); /* huge k: fewer rows */
    if (chunk > 4) chunk &= ~(int64_t)3;                            /* whole 4-row tiles */
    return chunk;
}

static void mm_job_init(struct mm_job *j, const struct be_mm_out *o, int64_t k) {
    *j = (struct mm_job){.w = be_tensor_addr(o->w, 0, 0),
                         .w_stride = o->w->row_stride,
                         .bias = o->bias ? be_tensor_addr(o->bias, 0, 0) : NULL,
                         .bias_dtype = o->bias ? o->bias->dtype : BE_F32,
                         .y_stride = o->y->row_stride,
                         .y_dtype = o->y->dtype,
                         .n = be_tensor_rows(o->w),
                         .k = k};
}

int cpu_matmul_multi(struct be *b, const struct be_mm_out *outs, int n_out, const struct tensor *x,
                     struct err *e) {
    struct be_cpu *c = (struct be_cpu *)b;
    int64_t m = be_tensor_rows(x), k = be_tensor_cols(x);
    bool avx512 = c->isa == CPU_ISA_AVX512;
    bool in_place = !avx512 && x->dtype == BE_F32;
    int64_t stride = avx512 ? (k + 31) & ~(int64_t)31 : k;
    enum mm_layout layout = MM_ROWS;
    int64_t chunk = m;
    if (avx512 && m >= MM_TF_MIN_ROWS) {
        /* many rows: the FP32-FMA kernel (matmul.h), in whole groups of 16 rows */
        layout = MM_TF;
        chunk = mm_chunk_rows(c, (size_t)stride * 4);
        int64_t fit = (int64_t)(c->scratch_bytes / ((size_t)stride * 4));
        if (chunk < MM_TF_PASS_ROWS) chunk = fit < MM_TF_PASS_ROWS ? fit : MM_TF_PASS_ROWS;
        if (stride > MM_TF_KB && chunk > MM_TF_MAX_ROWS) chunk = MM_TF_MAX_ROWS;
        chunk &= ~(int64_t)15;
        if (chunk < 16) layout = MM_ROWS;
    }
    if (!in_place && layout == MM_ROWS) {
        size_t row_bytes = (size_t)stride * (avx512 ? 2 : 4);
        chunk = mm_chunk_rows(c, row_bytes);
        if (chunk < 1)
            return err_set(e, VELA_ELIMIT,
                           "matmul: k = %" PRId64 " needs %zu scratch bytes per row, have %zu", k,
                           row_bytes, c->scratch_bytes);
    }
    struct mm_ctx ctx = {.n_jobs = n_out};
    for (int j = 0; j < n_out; j++) {
        mm_job_init(&ctx.jobs[j], &outs[j], k);
        ctx.first_block[j + 1] =
            ctx.first_block[j] + (ctx.jobs[j].n + MM_COL_ALIGN - 1) / MM_COL_ALIGN;
    }
    ctx.tmp = c->mm_tmp;
    ctx.kernel = layout == MM_TF          ? mm_avx512_tf
                 : avx512                 ? mm_avx512
                 : c->isa == CPU_ISA_AVX2 ? mm_avx2
                                          : mm_portable;
    int64_t per_thread = ctx.first_block[n_out] / tp_size(c->pool) / MM_CHUNKS_PER_THREAD;
    ctx.chunk_blocks = per_thread > 1 ? per_thread : 1;
    for (int64_t r0 = 0; r0 < m; r0 += chunk) {
        int64_t rows = m - r0 < chunk ? m - r0 : chunk;
        const void *xp = c->scratch;
        int64_t xs = stride;
        if (in_place) {
            xp = be_tensor_addr(x, r0, 0);
            xs = x->row_stride;
        } else { /* a chunk of one group is packed in pairs (matmul_avx512_tf.c) */
            mm_pack(c, x, r0, rows, stride, layout == MM_TF && rows <= 16 ? MM_TF1 : layout);
        }
        for (int j = 0; j < n_out; j++) {
            ctx.jobs[j].x = xp;
            ctx.jobs[j].x_stride = xs;
            ctx.jobs[j].m = rows;
            ctx.jobs[j].y = be_tensor_addr(outs[j].y, r0, 0);
        }
        for (int t = 0; t < tp_size(c->pool); t++) {
            int64_t lo, hi;
            tp_partition(ctx.first_block[n_out], 1, t, tp_size(c->pool), &lo, &hi);
            atomic_init(&ctx.range[t], (uint64_t)lo << 32 | (uint64_t)hi);
        }
        tp_run(c->pool, mm_worker, &ctx);
    }
    return 0;
}

int cpu_matmul(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *w,
               const struct tensor *bias, struct err *e) {
    const struct be_mm_out o = {.y = y, .w = w, .bias = bias};
    return cpu_matmul_multi(b, &o, 1, x, e);
}
