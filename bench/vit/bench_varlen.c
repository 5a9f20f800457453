/* bench_varlen: be_attention_varlen alone on the CPU at the 7B vision tower's shape (16 heads of
 * 80, q/k/v column views of one fused F32 qkv tensor, row stride 3840), over one segment of
 * all rows (the full-attention blocks) and over windows of 64 rows (the other blocks), for
 * the given patch counts (1024 = a 448x448 image, 5184 = 1008x1008). FLOPs per call:
 * 4 · len² · C per segment (QKᵀ and P·V), C = 1280. Prints the best of --runs calls after
 * one warm-up call, and an output checksum (to compare kernels).
 * Usage: bench_varlen [--threads N] [--isa auto|portable] [--runs N] [--rows 1024,5184] */
#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SIZES 8
#define HEADS     16
#define HEAD_DIM  80

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Best seconds per call of one layout (window rows per segment, 0: one segment), its GFLOP,
 * and the checksum of o. */
static int bench_layout(struct be *b, int64_t n, int32_t window, int runs, double *best,
                        double *gflop, double *checksum, struct err *e) {
    const int64_t C = HEADS * HEAD_DIM;
    int32_t n_segs = window ? (int32_t)((n + window - 1) / window) : 1;
    int32_t *cu = malloc((size_t)(n_segs + 1) * sizeof(int32_t));
    float *x = malloc((size_t)(n * 3 * C) * sizeof(float)), *out = malloc((size_t)(n * C) * 4);
    struct be_buffer *bx = NULL, *bo = NULL;
    int rc = cu && x && out ? 0 : err_set(e, VELA_ENOMEM, "bench_varlen: out of memory");
    if (rc == 0) rc = be_buffer_new(b, BE_BUF_COMPUTE, (size_t)(n * 3 * C) * 4, &bx, e);
    if (rc == 0) rc = be_buffer_new(b, BE_BUF_COMPUTE, (size_t)(n * C) * 4, &bo, e);
    struct tensor t, o, q, k, v;
    int64_t sx[2] = {n, 3 * C}, so[2] = {n, C};
    if (rc == 0) rc = be_tensor_init(&t, bx, 0, BE_F32, 2, sx, e);
    if (rc == 0) rc = be_tensor_init(&o, bo, 0, BE_F32, 2, so, e);
    if (rc == 0) rc = be_tensor_cols_view(&q, &t, 0, C, e);
    if (rc == 0) rc = be_tensor_cols_view(&k, &t, C, C, e);
    if (rc == 0) rc = be_tensor_cols_view(&v, &t, 2 * C, C, e);
    if (rc == 0) {
        uint32_t r = 1;
        for (int64_t i = 0; i < n * 3 * C; i++) { /* uniform in [-2, 2) */
            r = r * 1664525u + 1013904223u;
            x[i] = (float)((r >> 8) & 0xffffff) / 4194304.0f - 2.0f;
        }
        rc = be_tensor_write(b, &t, x, (size_t)(n * 3 * C) * 4, e);
    }
    *gflop = 0;
    for (int32_t s = 0; rc == 0 && s <= n_segs; s++) {
        cu[s] = s == n_segs ? (int32_t)n : s * window;
        if (s > 0) *gflop += 4.0 * (double)(cu[s] - cu[s - 1]) * (cu[s] - cu[s - 1]) * C * 1e-9;
    }
    struct varlen_meta m = {
        .n_segs = n_segs, .cu_seqlens = cu, .head_dim = HEAD_DIM, .scale = 0.111803399f};
    *best = 1e30;
    for (int i = 0; rc == 0 && i <= runs; i++) { /* i = 0: warm-up */
        double t0 = now_s();
        rc = be_attention_varlen(b, &o, &q, &k, &v, &m, e);
        if (rc == 0) rc = be_sync(b, e);
        double dt = now_s() - t0;
        if (i > 0 && dt < *best) *best = dt;
    }
    if (rc == 0) rc = be_tensor_read(b, &o, out, (size_t)(n * C) * 4, e);
    *checksum = 0;
    for (int64_t i = 0; rc == 0 && i < n * C; i++) *checksum += out[i] * (double)(i % 7 + 1);
    be_buffer_free(bx);
    be_buffer_free(bo);
    free(cu), free(x), free(out);
    return rc;
}

int main(int argc, char **argv) {
    int threads = 2, runs = 3, n_sizes = 2;
    int64_t sizes[MAX_SIZES] = {1024, 5184};
    enum cpu_isa isa = CPU_ISA_AUTO;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--threads") == 0) threads = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--runs") == 0) runs = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--isa") == 0) isa = (enum cpu_isa)cpu_isa_parse(argv[i + 1]);
        if (strcmp(argv[i], "--rows") == 0) {
            n_sizes = 0;
            for (char *s = argv[i + 1]; *s && n_sizes < MAX_SIZES;) {
                sizes[n_sizes++] = strtoll(s, &s, 10);
                if (*s == ',') s++;
            }
        }
    }
    struct err e = {0};
    struct be *b = NULL;
    struct be_cpu_opts o = be_cpu_opts_default(threads);
    o.isa = (int)isa < 0 ? CPU_ISA_AUTO : isa;
    if (runs < 1 || be_cpu_new_opts(&b, &o, &e) != 0) {
        fprintf(stderr, "bench_varlen: %s\n", runs < 1 ? "--runs must be >= 1" : e.msg);
        return 1;
    }
    printf("attention_varlen, %d heads x %d, fused F32 qkv, isa %s, %d threads, best of %d\n\n",
           HEADS, HEAD_DIM, cpu_isa_name(o.isa), threads, runs);
    printf(
        "| rows | segments | ms/call | GFLOP | GFLOP/s | checksum |\n|---|---|---|---|---|---|\n");
    for (int i = 0; i < n_sizes; i++)
        for (int32_t window = 0; window <= 64; window += 64) {
            double best, gflop, sum;
            if (sizes[i] < 1 || sizes[i] > (1 << 24) ||
                bench_layout(b, sizes[i], window, runs, &best, &gflop, &sum, &e) != 0) {
                fprintf(stderr, "bench_varlen: %lld rows: %s\n", (long long)sizes[i], e.msg);
                be_free(b);
                return 1;
            }
            printf("| %lld | %s | %.3f | %.2f | %.1f | %.6f |\n", (long long)sizes[i],
                   window ? "windows of 64" : "one", best * 1e3, gflop, gflop / best, sum);
        }
    be_free(b);
    return 0;
}
