/* bench_attn_decode: be_attention alone on the CPU for a decode batch over the paged BF16 KV
 * cache, as the language model calls it: --seqs sequences of one new row each, --ctx cached
 * tokens per sequence (so ctx + 1 keys), blocks of 16 rows, q and o BF16 [seqs, heads x
 * head_dim]. With --caches N the calls cycle over N separate caches (one per layer, as a
 * forward pass does), so a cache is read from memory when N caches exceed the last-level
 * cache (--caches 150 at the demo shape is 600 MB); --caches 1 reads one cache again and
 * again (cached). Prints the best and median microseconds per call over --runs passes of
 * N calls and the K/V bytes read per call over the median time.
 * Usage: bench_attn_decode [--shape demo|0.5b|3b|7b] [--seqs N] [--ctx N] [--caches N]
 *                          [--threads N] [--runs N] */
#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CACHES 512
#define BLOCK      16

struct shape {
    const char *name;
    int32_t heads, kv_heads, head_dim;
};

static const struct shape g_shapes[] = {
    {"demo", 6, 2, 128}, {"0.5b", 14, 2, 64}, {"3b", 16, 2, 128}, {"7b", 28, 4, 128}};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A BF16 tensor [rows, cols] in a new buffer, filled with small values (zeros: empty). */
static int mk(struct be *b, int64_t rows, int64_t cols, bool fill, struct be_buffer **buf,
              struct tensor *t, struct err *e) {
    size_t n = (size_t)(rows * cols);
    int64_t shape[2] = {rows, cols};
    int rc = be_buffer_new(b, BE_BUF_COMPUTE, n * 2, buf, e);
    if (rc == 0) rc = be_tensor_init(t, *buf, 0, BE_BF16, 2, shape, e);
    if (rc != 0 || !fill) return rc;
    uint16_t *h = malloc(n * 2);
    if (!h) return err_set(e, VELA_ENOMEM, "bench_attn_decode: out of memory");
    for (size_t i = 0; i < n; i++) h[i] = (uint16_t)(0x3c00u + (i * 2654435761u >> 24) % 0x300u);
    rc = be_tensor_write(b, t, h, n * 2, e);
    free(h);
    return rc;
}

int main(int argc, char **argv) {
    const struct shape *sh = &g_shapes[0];
    int seqs = 32, ctx = 128, caches = 150, threads = 2, runs = 9;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--shape")) {
            sh = NULL;
            for (size_t s = 0; s < sizeof g_shapes / sizeof g_shapes[0]; s++)
                if (!strcmp(argv[i + 1], g_shapes[s].name)) sh = &g_shapes[s];
        } else if (!strcmp(argv[i], "--seqs")) {
            seqs = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--ctx")) {
            ctx = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--caches")) {
            caches = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--threads")) {
            threads = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--runs")) {
            runs = atoi(argv[i + 1]);
        } else {
            sh = NULL;
        }
    }
    if (!sh || seqs < 1 || seqs > 4096 || ctx < 0 || caches < 1 || caches > MAX_CACHES ||
        threads < 1 || runs < 1 || (argc - 1) % 2) {
        fprintf(stderr,
                "usage: bench_attn_decode [--shape demo|0.5b|3b|7b] [--seqs N] [--ctx N] "
                "[--caches 1..%d] [--threads N] [--runs N]\n",
                MAX_CACHES);
        return 2;
    }
    struct err e = {0};
    struct be *b = NULL;
    struct be_cpu_opts o = be_cpu_opts_default(threads);
    int32_t bps = (ctx + 1 + BLOCK - 1) / BLOCK, w = sh->kv_heads * sh->head_dim;
    int32_t qw = sh->heads * sh->head_dim;
    struct be_buffer *bufs[2 * MAX_CACHES + 2] = {0};
    struct tensor kc[MAX_CACHES], vc[MAX_CACHES], q, out;
    int32_t *qs = malloc(sizeof(int32_t) * (size_t)(seqs + 1));
    int32_t *nc = malloc(sizeof(int32_t) * (size_t)seqs),
            *sl = malloc(sizeof(int32_t) * (size_t)seqs);
    int32_t *bt = malloc(sizeof(int32_t) * (size_t)seqs * (size_t)bps);
    double *t = malloc(sizeof(double) * (size_t)runs);
    int rc = qs && nc && sl && bt && t ? 0 : err_set(&e, VELA_ENOMEM, "out of memory");
    if (rc == 0) rc = be_cpu_new_opts(&b, &o, &e);
    for (int l = 0; rc == 0 && l < caches; l++) {
        rc = mk(b, (int64_t)seqs * bps * BLOCK, w, true, &bufs[2 * l], &kc[l], &e);
        if (rc == 0) rc = mk(b, (int64_t)seqs * bps * BLOCK, w, true, &bufs[2 * l + 1], &vc[l], &e);
    }
    if (rc == 0) rc = mk(b, seqs, qw, true, &bufs[2 * caches], &q, &e);
    if (rc == 0) rc = mk(b, seqs, qw, false, &bufs[2 * caches + 1], &out, &e);
    for (int s = 0; rc == 0 && s < seqs; s++) { /* each sequence owns bps blocks, in order */
        qs[s] = s, nc[s] = ctx, sl[s] = s * bps * BLOCK + ctx;
        for (int i = 0; i < bps; i++) bt[s * bps + i] = s * bps + i;
    }
    if (rc == 0) qs[seqs] = seqs;
    struct attn_meta m = {.n_seqs = seqs,
                          .query_start = qs,
                          .n_computed = nc,
                          .block_tables = bt,
                          .max_blocks_per_seq = bps,
                          .slot_mapping = sl,
                          .block_size = BLOCK,
                          .head_dim = sh->head_dim,
                          .scale = 0.0883883f};
    for (int l = 0; rc == 0 && l < caches; l++) /* warm-up: every cache once */
        rc = be_attention(b, &out, &q, &kc[l], &vc[l], &m, &e);
    for (int r = 0; rc == 0 && r < runs; r++) {
        double t0 = now_s();
        for (int l = 0; rc == 0 && l < caches; l++)
            rc = be_attention(b, &out, &q, &kc[l], &vc[l], &m, &e);
        t[r] = (now_s() - t0) / caches;
    }
    if (rc == 0) {
        qsort(t, (size_t)runs, sizeof *t, cmp_double);
        double bytes = 2.0 * seqs * (ctx + 1) * w * 2; /* K and V rows read per call */
        printf("attention decode, %s shape (%d heads, %d kv heads, head_dim %d), %d seqs x %d "
               "keys, %d caches of %.1f MB, %d threads\n",
               sh->name, sh->heads, sh->kv_heads, sh->head_dim, seqs, ctx + 1, caches,
               2.0 * seqs * bps * BLOCK * w * 2 / 1e6, threads);
        printf("  best %.1f us, median %.1f us per call, K/V read %.1f GB/s (median)\n", t[0] * 1e6,
               t[runs / 2] * 1e6, bytes / t[runs / 2] / 1e9);
    } else {
        fprintf(stderr, "bench_attn_decode: %s\n", e.msg);
    }
    for (int i = 0; i < 2 * caches + 2; i++) be_buffer_free(bufs[i]);
    be_free(b);
    free(qs), free(nc), free(sl), free(bt), free(t);
    return rc == 0 ? 0 : 1;
}
