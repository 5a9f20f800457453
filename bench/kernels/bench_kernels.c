/* bench_kernels: CUDA backend kernel micro-benchmarks at the Qwen2.5-VL-7B shapes (hidden 3584,
 * 28 query heads and 4 kv heads of 128, MLP 18944), through the public op table so what is
 * timed is exactly what the model runs:
 *   - GEMM (cuBLASLt, BF16 in, FP32 accumulate, BF16 out, with bias where the layer has one)
 *     at m = 1, 16, 128, 512, 2048: TFLOP/s, weight-read GB/s, and the fraction of the BF16
 *     dense peak given by --peak-tflops (default 989, H100 SXM);
 *   - paged causal attention prefill (one sequence of 2048 and 4096 new tokens): TFLOP/s
 *     counting the causal half (2 * 2 * n^2/2 * head_dim * heads);
 *   - decode attention (64 and 8 sequences of 1 new token over 2048 / 16384 cached tokens, BF16
 *     cache): GB/s of K and V read;
 *   - the varlen (ViT) attention over 16 windows of 64 plus one full 1024 segment, 16 heads of 80.
 * Each case runs warm-up calls, then `iters` calls between two be_sync, and prints the mean.
 * Usage: bench_kernels [--iters N] [--peak-tflops X]. Exit 77 without a CUDA device.
 * Not a test: nothing is asserted. */
#include "backend/backend.h"
#include "backend/cuda/backend_cuda.h"
#include "util/bf16.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_iters = 20;
static double g_peak = 989.0;
static struct be *g_b;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const struct err *e, const char *what) {
    fprintf(stderr, "bench_kernels: %s: %s\n", what, e->msg);
    exit(1);
}

/* A [rows x cols] tensor in its own buffer, filled with small pseudo-random values. */
static struct tensor mk(enum be_dtype dt, int64_t rows, int64_t cols, struct be_buffer **buf) {
    struct err e = {0};
    struct tensor t;
    size_t n = (size_t)(rows * cols), es = be_dtype_size(dt);
    if (be_buffer_new(g_b, BE_BUF_COMPUTE, n * es, buf, &e) != 0) die(&e, "buffer");
    int64_t shape[2] = {rows, cols};
    if (be_tensor_init(&t, *buf, 0, dt, 2, shape, &e) != 0) die(&e, "tensor");
    void *h = malloc(n * es);
    if (!h) exit(1);
    uint32_t s = 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        float v = ((float)((s >> 9) & 0xffff) / 65536.0f - 0.5f) * 0.1f;
        if (dt == BE_BF16)
            ((uint16_t *)h)[i] = f32_to_bf16(v);
        else
            ((float *)h)[i] = v;
    }
    if (be_tensor_write(g_b, &t, h, n * es, &e) != 0) die(&e, "write");
    free(h);
    return t;
}

typedef int (*bench_fn)(void *ctx, struct err *e);

/* Mean seconds per call over g_iters calls after 3 warm-up calls. */
static double timeit(bench_fn fn, void *ctx) {
    struct err e = {0};
    for (int i = 0; i < 3; i++)
        if (fn(ctx, &e) != 0) die(&e, "warm-up");
    if (be_sync(g_b, &e) != 0) die(&e, "sync");
    double t0 = now_s();
    for (int i = 0; i < g_iters; i++)
        if (fn(ctx, &e) != 0) die(&e, "run");
    if (be_sync(g_b, &e) != 0) die(&e, "sync");
    return (now_s() - t0) / g_iters;
}

struct gemm_ctx {
    struct tensor y, x, w, bias;
    bool has_bias;
};

static int gemm_call(void *p, struct err *e) {
    struct gemm_ctx *c = p;
    return be_matmul(g_b, &c->y, &c->x, &c->w, c->has_bias ? &c->bias : NULL, e);
}

static void bench_gemm(void) {
    static const struct {
        const char *name;
        int64_t n, k;
        bool bias;
    } sh[] = {{"qkv_proj", 4608, 3584, true},
              {"o_proj", 3584, 3584, false},
              {"gate_up_proj", 37888, 3584, false},
              {"down_proj", 3584, 18944, false}};
    static const int64_t ms[] = {1, 16, 128, 512, 2048};
    printf("\n== GEMM (cuBLASLt BF16 x BF16 -> BF16, FP32 accumulate), peak %.0f TFLOP/s ==\n",
           g_peak);
    printf("%-14s %6s %6s %6s %10s %9s %9s %7s\n", "layer", "m", "k", "n", "us", "TFLOP/s",
           "w GB/s", "%peak");
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        struct be_buffer *bw, *bb;
        struct gemm_ctx c = {.has_bias = sh[s].bias};
        c.w = mk(BE_BF16, sh[s].n, sh[s].k, &bw);
        c.bias = mk(BE_BF16, 1, sh[s].n, &bb);
        for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
            struct be_buffer *bx, *by;
            c.x = mk(BE_BF16, ms[i], sh[s].k, &bx);
            c.y = mk(BE_BF16, ms[i], sh[s].n, &by);
            double t = timeit(gemm_call, &c);
            double fl = 2.0 * (double)ms[i] * (double)sh[s].n * (double)sh[s].k;
            double wb = 2.0 * (double)sh[s].n * (double)sh[s].k;
            printf("%-14s %6" PRId64 " %6" PRId64 " %6" PRId64 " %10.1f %9.1f %9.0f %6.1f%%\n",
                   sh[s].name, ms[i], sh[s].k, sh[s].n, t * 1e6, fl / t * 1e-12, wb / t * 1e-9,
                   100.0 * fl / t * 1e-12 / g_peak);
            be_buffer_free(bx);
            be_buffer_free(by);
        }
        be_buffer_free(bw);
        be_buffer_free(bb);
    }
}

#define NQ  28
#define NKV 4
#define HD  128
#define BS  16

struct attn_ctx {
    struct tensor o, q, kc, vc;
    struct attn_meta m;
};

static int attn_call(void *p, struct err *e) {
    struct attn_ctx *c = p;
    return be_attention(g_b, &c->o, &c->q, &c->kc, &c->vc, &c->m, e);
}

/* n_seqs sequences, each n_new new tokens after n_cached; prints one result line. */
static void bench_attn(const char *label, int32_t n_seqs, int32_t n_new, int32_t n_cached) {
    int32_t ctx = n_cached + n_new, nb = (ctx + BS - 1) / BS, n_tok = n_seqs * n_new;
    struct be_buffer *b1, *b2, *b3, *b4;
    struct attn_ctx c;
    c.kc = mk(BE_BF16, (int64_t)n_seqs * nb * BS, NKV * HD, &b1);
    c.vc = mk(BE_BF16, (int64_t)n_seqs * nb * BS, NKV * HD, &b2);
    c.q = mk(BE_BF16, n_tok, NQ * HD, &b3);
    c.o = mk(BE_BF16, n_tok, NQ * HD, &b4);
    int32_t *qs = malloc((size_t)(n_seqs + 1) * 4), *nc = malloc((size_t)n_seqs * 4);
    int32_t *bt = malloc((size_t)n_seqs * nb * 4), *slots = malloc((size_t)n_tok * 4);
    if (!qs || !nc || !bt || !slots) exit(1);
    for (int32_t s = 0; s <= n_seqs; s++) qs[s] = s * n_new;
    for (int32_t s = 0; s < n_seqs; s++) nc[s] = n_cached;
    for (int32_t i = 0; i < n_seqs * nb; i++) bt[i] = (i * 7) % (n_seqs * nb); /* scattered */
    for (int32_t i = 0; i < n_tok; i++) slots[i] = i; /* unused by attention */
    c.m = (struct attn_meta){.n_seqs = n_seqs,
                             .query_start = qs,
                             .n_computed = nc,
                             .block_tables = bt,
                             .max_blocks_per_seq = nb,
                             .slot_mapping = slots,
                             .block_size = BS,
                             .head_dim = HD,
                             .scale = 1.0f / sqrtf(HD)};
    double t = timeit(attn_call, &c);
    /* FLOPs: QK and PV over the keys each query sees (causal) */
    double keys = 0;
    for (int32_t i = 0; i < n_new; i++) keys += n_cached + i + 1;
    double fl = 4.0 * keys * HD * NQ * n_seqs;
    double kv_bytes = 2.0 * 2.0 * (double)ctx * NKV * HD * n_seqs; /* K and V, BF16 */
    printf("%-28s %6d %7d %7d %10.1f %9.1f %9.0f\n", label, n_seqs, n_new, n_cached, t * 1e6,
           fl / t * 1e-12, kv_bytes / t * 1e-9);
    free(qs), free(nc), free(bt), free(slots);
    be_buffer_free(b1), be_buffer_free(b2), be_buffer_free(b3), be_buffer_free(b4);
}

struct va_ctx {
    struct tensor o, q, k, v;
    struct varlen_meta m;
};

static int va_call(void *p, struct err *e) {
    struct va_ctx *c = p;
    return be_attention_varlen(g_b, &c->o, &c->q, &c->k, &c->v, &c->m, e);
}

static void bench_varlen(void) {
    int32_t cu[18];
    cu[0] = 0;
    for (int i = 1; i <= 16; i++) cu[i] = cu[i - 1] + 64;
    cu[17] = cu[16] + 1024;
    int64_t n = cu[17], w = 16 * 80;
    struct be_buffer *b1, *b2, *b3, *b4;
    struct va_ctx c = {
        .m = {.n_segs = 17, .cu_seqlens = cu, .head_dim = 80, .scale = 1.0f / sqrtf(80.0f)}};
    c.q = mk(BE_BF16, n, w, &b1);
    c.k = mk(BE_BF16, n, w, &b2);
    c.v = mk(BE_BF16, n, w, &b3);
    c.o = mk(BE_BF16, n, w, &b4);
    double t = timeit(va_call, &c);
    double keys = 16.0 * 64 * 64 + 1024.0 * 1024;
    printf("%-28s %6d %7" PRId64 " %7d %10.1f %9.1f %9s\n", "varlen ViT 16x64 + 1024", 17, n, 0,
           t * 1e6, 4.0 * keys * 80 * 16 / t * 1e-12, "-");
    be_buffer_free(b1), be_buffer_free(b2), be_buffer_free(b3), be_buffer_free(b4);
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--iters") == 0)
            g_iters = atoi(argv[i + 1]) > 0 ? atoi(argv[i + 1]) : 1;
        else if (strcmp(argv[i], "--peak-tflops") == 0)
            g_peak = atof(argv[i + 1]) > 0 ? atof(argv[i + 1]) : g_peak;
    }
    if (be_cuda_device_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    struct err e = {0};
    if (be_cuda_new(&g_b, 0, NULL, &e) != 0) die(&e, "backend");
    bench_gemm();
    printf("\n== attention (BF16, %d q heads, %d kv heads, head_dim %d, block %d) ==\n", NQ, NKV,
           HD, BS);
    printf("%-28s %6s %7s %7s %10s %9s %9s\n", "case", "seqs", "new", "cached", "us", "TFLOP/s",
           "KV GB/s");
    bench_attn("prefill 2048", 1, 2048, 0);
    bench_attn("prefill 4096", 1, 4096, 0);
    bench_attn("chunk 512 after 3584", 1, 512, 3584);
    bench_attn("decode 64 x 2048", 64, 1, 2047);
    bench_attn("decode 8 x 16384 (split)", 8, 1, 16383);
    bench_attn("decode 1 x 32768 (split)", 1, 1, 32767);
    bench_varlen();
    be_free(g_b);
    return 0;
}
