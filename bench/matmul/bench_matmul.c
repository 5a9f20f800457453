/* bench_matmul: the CPU matmul at the Qwen2.5-0.5B shapes (hidden 896), the 3b preset's
 * (hidden 2048), Qwen2.5-VL-7B's (hidden 3584) or the demo's (hidden 768), decode-like (m = 1, 8,
 * 32) and prefill-like (m = 512), reporting GB/s, GFLOP/s and the fraction of the roofline measured
 * in the same run: attainable = min(compute peak, flops / bytes x read GB/s), the compute peak
 * being the faster of the vdpbf16ps and FP32 FMA probes.
 *
 * The reference machine's L3 (260 MB) holds every weight matrix but lm_head, so each shape
 * cycles through enough copies of its weights to stream >= 1 GiB (two copies of the 7b's
 * 1.1 GB lm_head), as a real forward pass
 * streams every layer's weights; each call then reads its weights from memory.
 * Usage: bench_matmul [--threads N] [--isa auto|avx512|avx2|portable] [--rounds R]
 *                     [--m LIST] (e.g. --m 1,8,32,512) [--best 1] [--shapes 0.5b|3b|7b|demo]
 * --best 1 reports the fastest round of each shape against the best probe windows instead of
 * medians: on a shared host that approximates an idle machine. */
#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"
#include "roofline/probe.h"
#include "util/bf16.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct shape {
    const char *name;
    int64_t n, k;
};

static const struct shape g_shapes_05b[] = {
    {"q_proj", 896, 896},     {"k_proj", 128, 896},     {"v_proj", 128, 896},
    {"o_proj", 896, 896},     {"gate_proj", 4864, 896}, {"up_proj", 4864, 896},
    {"down_proj", 896, 4864}, {"lm_head", 151936, 896},
};
/* The 3b preset (hidden 2048, 2 kv heads of 128, intermediate 11008). */
static const struct shape g_shapes_3b[] = {
    {"q_proj", 2048, 2048},     {"k_proj", 256, 2048},      {"v_proj", 256, 2048},
    {"o_proj", 2048, 2048},     {"gate_proj", 11008, 2048}, {"up_proj", 11008, 2048},
    {"down_proj", 2048, 11008}, {"lm_head", 151936, 2048},
};
/* Qwen2.5-VL-7B's language model (hidden 3584, 4 kv heads of 128, intermediate 18944). */
static const struct shape g_shapes_7b[] = {
    {"q_proj", 3584, 3584},     {"k_proj", 512, 3584},      {"v_proj", 512, 3584},
    {"o_proj", 3584, 3584},     {"gate_proj", 18944, 3584}, {"up_proj", 18944, 3584},
    {"down_proj", 3584, 18944}, {"lm_head", 152064, 3584},
};
/* The demo preset (hidden 768, 2 kv heads of 128, intermediate 3072, vocab 704). */
static const struct shape g_shapes_demo[] = {
    {"q_proj", 768, 768},     {"k_proj", 256, 768},     {"v_proj", 256, 768},
    {"o_proj", 768, 768},     {"gate_proj", 3072, 768}, {"up_proj", 3072, 768},
    {"down_proj", 768, 3072}, {"lm_head", 704, 768},
};
#define N_SHAPES       8
#define POOL_MIN_BYTES ((size_t)1 << 30)
#define MAX_M          8
#define MAX_ROUNDS     32

struct ctx {
    struct be *b;
    uint16_t *pool; /* pool_bytes of random BF16 weights, shared by every shape */
    size_t pool_bytes;
    struct be_buffer *wbuf, *xbuf, *ybuf;
    uint64_t next; /* rotates through the weight copies */
};

/* Seconds per call of y = x·wᵀ for m tokens: calls run back to back for about 0.1 s, each on
 * the next copy of the weights in the pool, so consecutive calls never share cached weights. */
static double time_matmul(struct ctx *c, const struct shape *s, int64_t m) {
    struct err e = {0};
    size_t wbytes = (size_t)(s->n * s->k) * 2;
    int64_t copies = (int64_t)(c->pool_bytes / wbytes);
    struct tensor x, y, w;
    int64_t xs[2] = {m, s->k}, ys[2] = {m, s->n}, ws[2] = {s->n, s->k};
    if (be_tensor_init(&x, c->xbuf, 0, BE_F32, 2, xs, &e) ||
        be_tensor_init(&y, c->ybuf, 0, BE_F32, 2, ys, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    double t0 = probe_now_s(), t = 0;
    int64_t calls = 0;
    while (t < 0.1) {
        int rc =
            be_tensor_init(&w, c->wbuf, (size_t)(c->next++ % copies) * wbytes, BE_BF16, 2, ws, &e);
        if (rc == 0) rc = be_matmul(c->b, &y, &x, &w, NULL, &e);
        if (rc != 0) {
            fprintf(stderr, "matmul: %s\n", e.msg);
            return -1;
        }
        calls++;
        t = probe_now_s() - t0;
    }
    return t / (double)calls;
}

static int parse_ms(const char *s, int64_t *ms) {
    int n = 0;
    while (*s && n < MAX_M) {
        ms[n++] = strtoll(s, (char **)&s, 10);
        if (*s == ',') s++;
    }
    return n;
}

int main(int argc, char **argv) {
    int threads = 2, rounds = 3, best = 0;
    int64_t ms[MAX_M] = {1, 8, 32, 512};
    int n_m = 4;
    const char *isa_name = "auto", *shapes = "0.5b";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--isa") == 0)
            isa_name = argv[i + 1];
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--best") == 0)
            best = atoi(argv[i + 1]) != 0;
        else if (strcmp(argv[i], "--m") == 0)
            n_m = parse_ms(argv[i + 1], ms);
        else if (strcmp(argv[i], "--shapes") == 0)
            shapes = argv[i + 1];
    }
    const struct shape *g_shapes = strcmp(shapes, "3b") == 0     ? g_shapes_3b
                                   : strcmp(shapes, "0.5b") == 0 ? g_shapes_05b
                                   : strcmp(shapes, "7b") == 0   ? g_shapes_7b
                                   : strcmp(shapes, "demo") == 0 ? g_shapes_demo
                                                                 : NULL;
    int isa = cpu_isa_parse(isa_name);
    int bad_m = 0;
    for (int i = 0; i < n_m; i++) bad_m |= ms[i] < 1 || ms[i] > 512;
    if (isa < 0 || rounds < 1 || rounds > MAX_ROUNDS || n_m < 1 || bad_m || !g_shapes) {
        fprintf(stderr,
                "usage: bench_matmul [--threads N] [--isa auto|avx512|avx2|portable] "
                "[--rounds 1..%d] [--m 1,8,32,512] [--best 1] [--shapes 0.5b|3b|7b|demo]\n",
                MAX_ROUNDS);
        return 2;
    }
    struct err e = {0};
    struct ctx c = {0};
    struct be_cpu_opts o = be_cpu_opts_default(threads);
    o.isa = (enum cpu_isa)isa;
    struct tp *pool = NULL;
    /* The pool holds at least two copies of the largest matrix; x and y the widest rows. */
    size_t max_w = 0, max_k = 0, max_n = 0;
    for (int si = 0; g_shapes && si < N_SHAPES; si++) {
        size_t wb = (size_t)(g_shapes[si].n * g_shapes[si].k) * 2;
        max_w = wb > max_w ? wb : max_w;
        max_k = (size_t)g_shapes[si].k > max_k ? (size_t)g_shapes[si].k : max_k;
        max_n = (size_t)g_shapes[si].n > max_n ? (size_t)g_shapes[si].n : max_n;
    }
    c.pool_bytes = 2 * max_w > POOL_MIN_BYTES ? (2 * max_w + 4095) & ~(size_t)4095 : POOL_MIN_BYTES;
    c.pool = aligned_alloc(4096, c.pool_bytes);
    if (!c.pool || be_cpu_new_opts(&c.b, &o, &e) || tp_new(&pool, threads, &e) ||
        be_buffer_from_host(c.b, c.pool, c.pool_bytes, BE_BUF_WEIGHTS, &c.wbuf, &e) ||
        be_buffer_new(c.b, BE_BUF_COMPUTE, 512 * max_k * 4, &c.xbuf, &e) ||
        be_buffer_new(c.b, BE_BUF_COMPUTE, 512 * max_n * 4, &c.ybuf, &e)) {
        fprintf(stderr, "bench_matmul: setup: %s\n", e.msg);
        return 1;
    }
    uint32_t rng = 1;
    for (size_t i = 0; i < c.pool_bytes / 2; i++) {
        rng = rng * 1664525u + 1013904223u;
        c.pool[i] = f32_to_bf16((float)(rng >> 8) / 16777216.0f - 0.5f);
    }
    /* The roofline of this run over the same pool: medians of interleaved probes, or with
     * --best the best pass / best short window (an undisturbed core on a shared host); the
     * compute peak is probe_compute_gflops's. */
    double bw[5], pk[5], bw_best = 0, pk_best = 0;
    for (int r = 0; r < 5; r++) {
        bw[r] = probe_read_gbps(pool, c.pool, c.pool_bytes);
        pk[r] = probe_compute_gflops(pool, 10 * 1000 * 1000);
        bw_best = bw[r] > bw_best ? bw[r] : bw_best;
    }
    for (int r = 0; best && r < 300; r++) {
        double f = probe_compute_gflops(pool, 20000);
        pk_best = f > pk_best ? f : pk_best;
    }
    double bw_gbps = best ? bw_best : probe_median(bw, 5);
    double peak = best ? pk_best : probe_median(pk, 5);
    if (peak <= 0) peak = 1e9; /* no AVX-512: report against bandwidth alone */
    printf("isa %s, %d threads, %s of %d rounds: roofline read %.1f GB/s, compute peak %.1f "
           "GFLOP/s\n",
           cpu_isa_name(be_cpu_isa(c.b)), threads, best ? "best" : "median", rounds, bw_gbps, peak);
    printf("%-10s %5s %10s %8s %9s %9s %7s %12s\n", "shape", "m", "us/call", "GB/s", "GFLOP/s",
           "roofline", "frac", "tokens/s");
    /* Rounds interleave every (shape, m) so drifts in bandwidth hit all of them alike. */
    static double t[N_SHAPES][MAX_M][MAX_ROUNDS];
    for (int r = 0; r < rounds; r++)
        for (int si = 0; si < N_SHAPES; si++)
            for (int mi = 0; mi < n_m; mi++)
                if ((t[si][mi][r] = time_matmul(&c, &g_shapes[si], ms[mi])) < 0) return 1;
    double layer_t[MAX_M] = {0};
    for (int si = 0; si < N_SHAPES; si++) {
        const struct shape *s = &g_shapes[si];
        for (int mi = 0; mi < n_m; mi++) {
            int64_t m = ms[mi];
            double tm = best ? probe_min(t[si][mi], rounds) : probe_median(t[si][mi], rounds);
            if (si < 7) layer_t[mi] += tm;
            double bytes = (double)(s->n * s->k) * 2 + (double)m * (double)(s->k + s->n) * 4;
            double flops = 2.0 * (double)m * (double)s->n * (double)s->k;
            double attain = flops / bytes * bw_gbps;
            if (attain > peak) attain = peak;
            printf("%-10s %5lld %10.1f %8.1f %9.1f %9.1f %6.0f%% %12.0f\n", s->name, (long long)m,
                   tm * 1e6, bytes / tm * 1e-9, flops / tm * 1e-9, attain,
                   100.0 * flops / tm * 1e-9 / attain, (double)m / tm);
        }
    }
    for (int mi = 0; mi < n_m; mi++)
        printf("layer (7 matmuls) m=%-4lld %9.1f us  %10.0f tokens/s  (x%.2f the m=%lld rate)\n",
               (long long)ms[mi], layer_t[mi] * 1e6, (double)ms[mi] / layer_t[mi],
               ((double)ms[mi] / layer_t[mi]) / ((double)ms[0] / layer_t[0]), (long long)ms[0]);
    be_buffer_free(c.wbuf);
    be_buffer_free(c.xbuf);
    be_buffer_free(c.ybuf);
    be_free(c.b);
    tp_free(pool);
    free(c.pool);
    return 0;
}
