/* backend_cpu: the CPU backend's op table, buffers and constructor.
 *
 * Invariants:
 *   1. weights buffers made from host memory borrow it (base = the caller's pointer,
 *      borrowed = true) and are never written: backend.c refuses them as outputs;
 *   2. allocated buffers are 64-byte aligned and zeroed (large ones page-aligned, zeroed by
 *      the kernel page by page on first touch), so a fresh tensor reads as zeros and rows of
 *      an aligned tensor start on cache lines;
 *   3. the scratch buffer and the thread pool are made here and live as long as the backend:
 *      no op allocates.
 * Threads: the backend's owner thread; ops fan out to the pool internally. */
#include "backend/cpu/attn_ops.h"
#include "backend/cpu/backend_cpu.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/vit_ops.h"
#include "util/bf16.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void cpu_free(struct be *b) {
    struct be_cpu *c = (struct be_cpu *)b;
    tp_free(c->pool);
    free(c->scratch);
    free(c->attn_scratch);
    free(c->mm_tmp);
    free(c);
}

static size_t round_up64(size_t n) {
    return n > SIZE_MAX - 63 ? 0 : (n + 63) & ~(size_t)63;
}

/* Buffers from this size on are anonymous mappings: the kernel hands out zero pages as they
 * are first touched, so a KV cache sized to half the RAM costs nothing until it fills (a
 * memset of 11 GB took 35 s of page faults before the first request could run). Below it,
 * aligned_alloc and memset. The size alone decides, so cpu_buffer_free can tell them apart. */
#define CPU_MAP_MIN_BYTES ((size_t)1 << 20)

static int cpu_buffer_new(struct be *b, struct be_buffer *buf, struct err *e) {
    (void)b;
    size_t n = round_up64(buf->n_bytes);
    void *p = NULL;
    if (n >= CPU_MAP_MIN_BYTES) {
        p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) p = NULL;
    } else if (n) {
        p = aligned_alloc(64, n);
        if (p) memset(p, 0, n);
    }
    if (!p) return err_set(e, VELA_ENOMEM, "cpu buffer: cannot allocate %zu bytes", buf->n_bytes);
    buf->base = p;
    buf->host_visible = true;
    return 0;
}

static int cpu_buffer_from_host(struct be *b, struct be_buffer *buf, const void *host,
                                struct err *e) {
    (void)b, (void)e;
    buf->base = (void *)host; /* borrowed read-only: invariant 1 keeps it unwritten */
    buf->host_visible = true;
    buf->borrowed = true;
    return 0;
}

static void cpu_buffer_free(struct be_buffer *buf) {
    if (buf->borrowed) return;
    size_t n = round_up64(buf->n_bytes);
    if (n >= CPU_MAP_MIN_BYTES)
        munmap(buf->base, n);
    else
        free(buf->base);
}

static int cpu_tensor_write(struct be *b, struct tensor *t, const void *src, struct err *e) {
    (void)b, (void)e;
    size_t row = (size_t)be_tensor_cols(t) * be_dtype_size(t->dtype);
    for (int64_t r = 0; r < be_tensor_rows(t); r++)
        memcpy(be_tensor_addr(t, r, 0), (const char *)src + (size_t)r * row, row);
    return 0;
}

static int cpu_tensor_read(struct be *b, const struct tensor *t, void *dst, struct err *e) {
    (void)b, (void)e;
    size_t row = (size_t)be_tensor_cols(t) * be_dtype_size(t->dtype);
    for (int64_t r = 0; r < be_tensor_rows(t); r++)
        memcpy((char *)dst + (size_t)r * row, be_tensor_addr(t, r, 0), row);
    return 0;
}

float cpu_get_f32(const struct tensor *t, int64_t r, int64_t c) {
    const void *p = be_tensor_addr(t, r, c);
    if (t->dtype == BE_F32) return *(const float *)p;
    return bf16_to_f32(*(const uint16_t *)p);
}

void cpu_set_f32(const struct tensor *t, int64_t r, int64_t c, float v) {
    void *p = be_tensor_addr(t, r, c);
    if (t->dtype == BE_F32)
        *(float *)p = v;
    else
        *(uint16_t *)p = f32_to_bf16(v);
}

struct rows_job {
    cpu_rows_fn fn;
    void *ctx;
    int64_t rows;
};

static void rows_worker(void *arg, int i, int n_threads) {
    const struct rows_job *j = arg;
    int64_t r0, r1;
    tp_partition(j->rows, 1, i, n_threads, &r0, &r1);
    if (r0 < r1) j->fn(j->ctx, r0, r1);
}

void cpu_parallel_rows(struct be_cpu *c, int64_t rows, int64_t min_rows_per_thread, cpu_rows_fn fn,
                       void *ctx) {
    if (tp_size(c->pool) == 1 || rows < 2 * min_rows_per_thread) {
        fn(ctx, 0, rows);
        return;
    }
    struct rows_job j = {.fn = fn, .ctx = ctx, .rows = rows};
    tp_run(c->pool, rows_worker, &j);
}

static const struct be_ops g_cpu_ops = {
    .name = "cpu",
    .free = cpu_free,
    .buffer_new = cpu_buffer_new,
    .buffer_from_host = cpu_buffer_from_host,
    .buffer_free = cpu_buffer_free,
    .tensor_write = cpu_tensor_write,
    .tensor_read = cpu_tensor_read,
    .matmul = cpu_matmul,
    .matmul_multi = cpu_matmul_multi,
    .rms_norm = cpu_rms_norm,
    .add = cpu_add,
    .silu_mul = cpu_silu_mul,
    .embed = cpu_embed,
    .sync = NULL, /* every op completes before it returns */
    /* language-model attention ops (attn_ops.h) */
    .rope = cpu_rope,
    .kv_store = cpu_kv_store,
    .attention = cpu_attention,
    /* vision-tower ops (vit_ops.h) */
    .rope2d = cpu_rope2d,
    .attention_varlen = cpu_attention_varlen,
    .gelu = cpu_gelu,
    .gather_rows = cpu_gather_rows,
    .layer_norm = cpu_layer_norm,
    .quick_gelu = cpu_quick_gelu,
    .sample = cpu_sample,
    .add_rms_norm = cpu_add_rms_norm,
};

struct be_cpu_opts be_cpu_opts_default(int n_threads) {
    return (struct be_cpu_opts){.n_threads = n_threads, .isa = CPU_ISA_AUTO};
}

int be_cpu_new_opts(struct be **out, const struct be_cpu_opts *opts, struct err *e) {
    if (!out || !opts) return err_set(e, VELA_EINVAL, "cpu backend: NULL argument");
    if (cpu_isa_name(opts->isa)[0] == '?')
        return err_set(e, VELA_EINVAL, "cpu backend: unknown isa %d", (int)opts->isa);
    if (!cpu_isa_supported(opts->isa))
        return err_set(e, VELA_EUNSUP, "cpu backend: this CPU cannot run the %s matmul path",
                       cpu_isa_name(opts->isa));
    size_t scratch =
        opts->scratch_bytes ? round_up64(opts->scratch_bytes) : BE_CPU_SCRATCH_DEFAULT_BYTES;
    if (scratch == 0) return err_set(e, VELA_EINVAL, "cpu backend: scratch size overflows");
    struct be_cpu *c = calloc(1, sizeof *c);
    if (!c) return err_set(e, VELA_ENOMEM, "cpu backend: out of memory");
    c->base.ops = &g_cpu_ops;
    c->base.device = BE_DEV_CPU;
    c->isa = opts->isa == CPU_ISA_AUTO ? cpu_isa_best(opts->f32_activations) : opts->isa;
    int rc = tp_new(&c->pool, opts->n_threads, e);
    if (rc != 0) {
        free(c);
        return err_wrap(e, "cpu backend");
    }
    c->scratch_bytes = scratch;
    c->scratch = aligned_alloc(64, scratch);
    c->attn_scratch_bytes = ATT512_SPLIT_SCRATCH_BYTES;
    c->attn_scratch = aligned_alloc(64, c->attn_scratch_bytes);
    c->mm_tmp = aligned_alloc(64, (size_t)tp_size(c->pool) * MM_TF_TMP_FLOATS * sizeof(float));
    if (!c->scratch || !c->attn_scratch || !c->mm_tmp) {
        cpu_free(&c->base); /* frees what was made: free(NULL) is a no-op */
        return err_set(e, VELA_ENOMEM, "cpu backend: cannot allocate %zu scratch bytes", scratch);
    }
    *out = &c->base;
    return 0;
}

int be_cpu_new(struct be **out, int n_threads, struct err *e) {
    struct be_cpu_opts o = be_cpu_opts_default(n_threads);
    const char *s = getenv("VELA_CPU_ISA");
    if (s && *s) {
        int isa = cpu_isa_parse(s);
        if (isa < 0)
            return err_set(e, VELA_EINVAL,
                           "VELA_CPU_ISA=%.32s: expected portable, avx2, avx512 or auto", s);
        o.isa = (enum cpu_isa)isa;
    }
    return be_cpu_new_opts(out, &o, e);
}

enum cpu_isa be_cpu_isa(const struct be *b) {
    return ((const struct be_cpu *)b)->isa;
}
