/* bench_sampler: smp_sample over a decode batch of random logits at a real vocabulary size,
 * as the engine calls it once per step: --rows sequences of --vocab logits (Qwen's 151936 by
 * default), each with its own seeded RNG, at --temperature (0 = greedy) and optional --top-p /
 * --top-k. Logits are flat (uniform in [-4, 4), as a random-weight model's) or with --peaked 1
 * shaped like a trained model's: a normal spread of 2 and a few ids 14-20 above it, so the top
 * handful hold nearly all of the mass. Prints the median milliseconds per call over --runs calls.
 * Usage: bench_sampler [--rows N] [--vocab V] [--temperature T] [--top-p P] [--top-k K]
 *                      [--peaked 0|1] [--logprobs N] [--runs N]
 * --logprobs N also asks for the chosen token's logprob and rank and the N most likely. */
#include "engine/sampler.h"
#include "util/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ROWS 256
#define MAX_RUNS 1000

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int rows = 32, runs = 20, top_k = 0, peaked = 0, logprobs = -1;
    long vocab = 151936;
    float temperature = 1.0f, top_p = 1.0f;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--rows") == 0)
            rows = atoi(v);
        else if (strcmp(a, "--vocab") == 0)
            vocab = atol(v);
        else if (strcmp(a, "--temperature") == 0)
            temperature = strtof(v, NULL);
        else if (strcmp(a, "--top-p") == 0)
            top_p = strtof(v, NULL);
        else if (strcmp(a, "--top-k") == 0)
            top_k = atoi(v);
        else if (strcmp(a, "--logprobs") == 0)
            logprobs = atoi(v);
        else if (strcmp(a, "--peaked") == 0)
            peaked = atoi(v);
        else if (strcmp(a, "--runs") == 0)
            runs = atoi(v);
        else
            rows = -1;
    }
    if (argc % 2 == 0 || rows < 1 || rows > MAX_ROWS || runs < 1 || runs > MAX_RUNS || vocab < 2) {
        fprintf(stderr,
                "usage: bench_sampler [--rows 1..%d] [--vocab V] [--temperature T] "
                "[--top-p P] [--top-k K] [--peaked 0|1] [--logprobs N] [--runs 1..%d]\n",
                MAX_ROWS, MAX_RUNS);
        return 2;
    }
    struct err e = {0};
    struct sampler *s = NULL;
    float *logits = malloc((size_t)rows * (size_t)vocab * sizeof *logits);
    struct smp_seq *seqs = calloc((size_t)rows, sizeof *seqs);
    struct smp_out *outs = calloc((size_t)rows, sizeof *outs);
    struct smp_rng *rngs = calloc((size_t)rows, sizeof *rngs);
    double t[MAX_RUNS];
    if (!logits || !seqs || !outs || !rngs || smp_new(&s, rows, vocab, &e) != 0) {
        fprintf(stderr, "error: %s\n", e.msg[0] ? e.msg : "out of memory");
        return 1;
    }
    struct sampling_params p;
    sp_defaults(&p);
    p.temperature = temperature, p.top_p = top_p, p.top_k = top_k, p.logprobs = logprobs;
    for (size_t i = 0; i < (size_t)rows * (size_t)vocab; i++) {
        uint64_t x = rng_hash(7, 1, i), y = rng_hash(7, 2, i);
        double u1 = ((double)(x >> 11) + 0.5) * 0x1p-53, u2 = (double)(y >> 11) * 0x1p-53;
        if (peaked) /* Box-Muller: normal with spread 2, and ~8 favourites per row */
            logits[i] = (float)(2.0 * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2) +
                                (y % 20000 == 0 ? 14.0 + (double)(y % 7) : 0.0));
        else /* flat, with a few spikes */
            logits[i] = (float)(u1 * 8.0 - 4.0) + (x % 50000 == 0 ? 10.0f : 0.0f);
    }
    for (int r = 0; r < rows; r++) {
        rngs[r].seed = (uint64_t)r + 1;
        seqs[r] = (struct smp_seq){.params = &p, .rng = &rngs[r]};
    }
    int rc = 0;
    for (int i = 0; i < runs && rc == 0; i++) {
        double t0 = now_s();
        rc = smp_sample(s, logits, rows, seqs, outs, &e);
        t[i] = now_s() - t0;
    }
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", e.msg);
        return 1;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    printf("sampler: %d rows x %ld %s logits, temperature %g, top-p %g, top-k %d: median %.3f ms "
           "per call (%.1f us per row), best %.3f ms; first token %d\n",
           rows, vocab, peaked ? "peaked" : "flat", (double)temperature, (double)top_p, top_k,
           t[runs / 2] * 1e3, t[runs / 2] * 1e6 / rows, t[0] * 1e3, outs[0].token);
    smp_free(s);
    free(logits), free(seqs), free(outs), free(rngs);
    return 0;
}
