/* bench_llama_style: vela's language-model forward (model/lm.c, CPU backend) measured with
 * llama-bench's definitions of its two standard tests, so the figures can stand next to
 * llama.cpp's (docs/BENCHMARKS.md, "Side by side with llama.cpp"):
 *   - ppN: one forward of an N-token prompt of random ids from an empty context, as one batch
 *     (llama-bench's n_batch = n_ubatch = 512), logits for the last row only;
 *   - tgN: N forwards of one random token each, at positions 0 .. N-1 of one sequence that
 *     starts from an empty context, logits for that row; no sampling (llama-bench feeds
 *     rand() ids and never samples).
 * As llama-bench: one warm-up run of each test (the whole prompt for pp, one token for tg),
 * then --reps timed repetitions, each starting from an empty context; tokens/s of each
 * repetition, reported as mean and sample standard deviation (plus the median).
 *
 * "Empty context": vela's cache is paged, so a repetition just starts a new sequence at
 * n_computed = 0 over the same blocks; earlier contents are never read (attention reads only
 * the first n_computed + n slots), which is what llama-bench's llama_memory_clear gives.
 *
 * Usage: bench_llama_style --model DIR [--threads N] [--pp N] [--tg N] [--reps N]
 *                          [--isa auto|avx512|avx2|portable] [--kv-cache-dtype bf16|f32]
 *                          [--seed N] [--mmap 1|0]
 * --mmap 0 reads the weights into 2 MB-page memory (vela's --no-mmap), as llama-bench's -mmp 0
 * reads them instead of mapping them.
 * Prints a llama-bench-style table and one "RESULT" line per test for scripts. */
#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"
#include "model/batch.h"
#include "model/lm.h"
#include "roofline/probe.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPS     100
#define BLOCK_TOKENS 16

struct opts {
    const char *model;
    int threads, pp, tg, reps, mmap;
    unsigned seed;
    enum cpu_isa isa;
    enum be_dtype kv;
};

static int parse(struct opts *o, int argc, char **argv) {
    *o = (struct opts){.threads = 2,
                       .pp = 512,
                       .tg = 128,
                       .reps = 5,
                       .mmap = 1,
                       .isa = CPU_ISA_AUTO,
                       .kv = BE_BF16};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--model") == 0)
            o->model = v;
        else if (strcmp(a, "--threads") == 0)
            o->threads = atoi(v);
        else if (strcmp(a, "--pp") == 0)
            o->pp = atoi(v);
        else if (strcmp(a, "--tg") == 0)
            o->tg = atoi(v);
        else if (strcmp(a, "--reps") == 0)
            o->reps = atoi(v);
        else if (strcmp(a, "--seed") == 0)
            o->seed = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--mmap") == 0)
            o->mmap = atoi(v);
        else if (strcmp(a, "--kv-cache-dtype") == 0)
            o->kv = strcmp(v, "f32") == 0 ? BE_F32 : BE_BF16;
        else if (strcmp(a, "--isa") == 0) {
            int isa = cpu_isa_parse(v);
            if (isa < 0) return -1;
            o->isa = (enum cpu_isa)isa;
        } else
            return -1;
    }
    if (argc % 2 == 0) return -1; /* a flag without its value */
    return o->model && o->threads > 0 && o->pp >= 0 && o->tg >= 0 && o->pp + o->tg > 0 &&
                   o->reps > 0 && o->reps <= MAX_REPS
               ? 0
               : -1;
}

/* The state one test needs: the forward, a batch builder and the block table of the one
 * sequence (blocks 0 .. n_blocks-1). */
struct bench {
    struct lm *m;
    struct lm_batch_buf bb;
    int32_t *table, n_blocks, vocab;
    int32_t *ids;  /* (max(pp, 1)) */
    float *logits; /* (vocab) */
};

/* One forward of n random ids at positions n_computed .. n_computed + n - 1. */
static int forward(struct bench *s, int n, int n_computed, struct err *e) {
    for (int i = 0; i < n; i++) s->ids[i] = rand() % s->vocab;
    lmb_reset(&s->bb);
    int rc = lmb_add(&s->bb, s->ids, n, n_computed, NULL, 0, 0, s->table, s->n_blocks, true, e);
    return rc == 0 ? lm_forward(s->m, &s->bb.b, s->logits, e) : rc;
}

/* llama-bench's test_prompt: the whole prompt in one batch (n <= max_tokens). */
static int test_prompt(struct bench *s, int n, struct err *e) {
    return forward(s, n, 0, e);
}

/* llama-bench's test_gen: n single-token forwards from an empty context. */
static int test_gen(struct bench *s, int n, struct err *e) {
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) rc = forward(s, 1, i, e);
    return rc;
}

struct stats {
    double mean, sd, median;
};

static struct stats stats_of(double *v, int n) {
    struct stats st = {0};
    for (int i = 0; i < n; i++) st.mean += v[i] / n;
    for (int i = 0; i < n; i++) st.sd += (v[i] - st.mean) * (v[i] - st.mean);
    st.sd = n > 1 ? sqrt(st.sd / (n - 1)) : 0; /* llama-bench's stdev divides by n - 1 */
    st.median = probe_median(v, n);            /* sorts v: after the sums */
    return st;
}

/* Warm-up, then reps timed runs of one test; tokens/s per run into ts. */
static int run_test(struct bench *s, bool gen, int n, int reps, double *ts, struct err *e) {
    int rc = gen ? test_gen(s, 1, e) : test_prompt(s, n, e);
    for (int r = 0; r < reps && rc == 0; r++) {
        double t0 = probe_now_s();
        rc = gen ? test_gen(s, n, e) : test_prompt(s, n, e);
        ts[r] = n / (probe_now_s() - t0);
    }
    return rc;
}

static void report(const char *model, const struct opts *o, const char *isa, const char *name,
                   double *ts) {
    char raw[MAX_REPS * 24] = "", *p = raw;
    for (int r = 0; r < o->reps && (size_t)(p - raw) + 24 < sizeof raw; r++)
        p += snprintf(p, sizeof raw - (size_t)(p - raw), "%s%.2f", r ? "," : "", ts[r]);
    struct stats st = stats_of(ts, o->reps);
    printf("| %s | BF16 | vela cpu %s | %d | %s | %10.2f ± %.2f |\n", model, isa, o->threads, name,
           st.mean, st.sd);
    printf("RESULT engine=vela test=%s threads=%d reps=%d mean=%.3f sd=%.3f median=%.3f "
           "samples=%s\n",
           name, o->threads, o->reps, st.mean, st.sd, st.median, raw);
    fflush(stdout);
}

static int run(const struct opts *o, struct lm_files *f) {
    struct err e = {0};
    struct be *b = NULL;
    struct be_cpu_opts bo = be_cpu_opts_default(o->threads);
    bo.isa = o->isa;
    int ctx = o->pp > o->tg ? o->pp : o->tg;
    struct bench s = {.n_blocks = (ctx + BLOCK_TOKENS - 1) / BLOCK_TOKENS,
                      .vocab = f->cfg.vocab_size};
    struct lm_options lo = {.max_tokens = o->pp > 1 ? o->pp : 1,
                            .max_seqs = 1,
                            .n_blocks = s.n_blocks,
                            .block_size = BLOCK_TOKENS,
                            .kv_dtype = o->kv,
                            .logit_rows = 1};
    double ts[MAX_REPS];
    s.table = malloc((size_t)s.n_blocks * sizeof *s.table);
    s.ids = malloc((size_t)lo.max_tokens * sizeof *s.ids);
    s.logits = malloc((size_t)s.vocab * sizeof *s.logits);
    int rc = s.table && s.ids && s.logits ? 0 : err_set(&e, VELA_ENOMEM, "out of memory");
    for (int32_t i = 0; rc == 0 && i < s.n_blocks; i++) s.table[i] = i;
    if (rc == 0) rc = be_cpu_new_opts(&b, &bo, &e);
    if (rc == 0) rc = lm_new(&s.m, b, &f->cfg, f->w, &lo, &e);
    if (rc == 0) rc = lmb_init(&s.bb, lo.max_tokens, 1, s.n_blocks, BLOCK_TOKENS, &e);
    if (rc == 0) {
        const char *isa = cpu_isa_name(be_cpu_isa(b)), *name = strrchr(o->model, '/');
        name = name && name[1] ? name + 1 : o->model;
        printf("| model | type | backend | threads | test | t/s |\n|---|---|---|---|---|---|\n");
        char test[32];
        if (rc == 0 && o->pp > 0 && (rc = run_test(&s, false, o->pp, o->reps, ts, &e)) == 0) {
            snprintf(test, sizeof test, "pp%d", o->pp);
            report(name, o, isa, test, ts);
        }
        if (rc == 0 && o->tg > 0 && (rc = run_test(&s, true, o->tg, o->reps, ts, &e)) == 0) {
            snprintf(test, sizeof test, "tg%d", o->tg);
            report(name, o, isa, test, ts);
        }
    }
    if (rc != 0) fprintf(stderr, "error: %s\n", e.msg);
    lmb_deinit(&s.bb);
    lm_free(s.m);
    be_free(b);
    free(s.table);
    free(s.ids);
    free(s.logits);
    return rc;
}

int main(int argc, char **argv) {
    struct opts o;
    if (parse(&o, argc, argv) != 0) {
        fprintf(stderr, "usage: bench_llama_style --model DIR [--threads N] [--pp N] [--tg N] "
                        "[--reps N (<= 100)] [--isa ISA] [--kv-cache-dtype bf16|f32] "
                        "[--seed N] [--mmap 1|0]\n");
        return 2;
    }
    srand(o.seed);
    struct err e = {0};
    struct lm_files f = {0};
    if (lm_files_open_mode(&f, o.model, o.mmap ? FILE_MAP_MMAP : FILE_MAP_READ, &e) != 0) {
        fprintf(stderr, "error: %s\n", e.msg);
        return 1;
    }
    int rc = run(&o, &f);
    lm_files_close(&f);
    return rc == 0 ? 0 : 1;
}
