/* bench_tokenize: single-thread tokenizer throughput over the exactness corpus, and the
 * tokenizer.json load time. Not a test: it prints numbers for docs/BENCHMARKS.md.
 *
 * Build (from the repository root, after building velacore in BUILD):
 *   gcc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Isrc -Itests bench/tokenizer/bench_tokenize.c \
 *       BUILD/libvelacore.a -ljansson -lpcre2-8 -lutf8proc -lz -lm -o BUILD/bench_tokenize
 * Run:
 *   BUILD/bench_tokenize TOKENIZER_JSON [CORPUS_GZ] [PASSES]
 * Each pass encodes every corpus string once, one at a time, with one tok_ctx (its word cache
 * persists across passes, as the reference tokenizer's does); prints MB/s per pass and the
 * median. */
#include "tokenizer/tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s TOKENIZER_JSON [CORPUS_GZ] [PASSES]\n", argv[0]);
        return 2;
    }
    const char *corpus = argc > 2 ? argv[2] : "tests/fixtures/tokenizer/corpus.jsonl.gz";
    int passes = argc > 3 ? atoi(argv[3]) : 5;
    if (passes < 1 || passes > 100) passes = 5;
    struct err e = {0};
    struct tokenizer *t = NULL;
    double loads[5];
    for (int i = 0; i < 5; i++) {
        tok_free(t);
        t = NULL;
        double a = now_s();
        if (tok_load(argv[1], &t, &e) != 0) {
            fprintf(stderr, "error: %s\n", e.msg);
            return 1;
        }
        loads[i] = now_s() - a;
    }
    qsort(loads, 5, sizeof loads[0], cmp_d);
    printf("load: median %.1f ms (min %.1f) over 5 loads\n", loads[2] * 1e3, loads[0] * 1e3);

    gzFile f = gzopen(corpus, "rb");
    if (!f) {
        fprintf(stderr, "error: cannot open %s\n", corpus);
        return 1;
    }
    size_t cap = 1 << 20, n_texts = 0, cap_texts = 1024, bytes = 0;
    char *line = malloc(cap);
    json_t **texts = malloc(cap_texts * sizeof *texts);
    while (gzgets(f, line, (int)cap)) {
        size_t n = strlen(line);
        while (n > 0 && line[n - 1] != '\n' && n + 1 < cap) {
            if (!gzgets(f, line + n, (int)(cap - n))) break;
            n += strlen(line + n);
        }
        json_error_t je;
        json_t *s = json_loadb(line, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!json_is_string(s)) continue;
        if (n_texts == cap_texts) texts = realloc(texts, (cap_texts *= 2) * sizeof *texts);
        texts[n_texts++] = s;
        bytes += json_string_length(s);
    }
    gzclose(f);
    free(line);

    struct tok_ctx *c = tok_ctx_new(t);
    struct tok_ids v = {0};
    double *mbs = malloc((size_t)passes * sizeof *mbs);
    int64_t n_ids = 0;
    for (int p = 0; p < passes; p++) {
        n_ids = 0;
        double a = now_s();
        for (size_t i = 0; i < n_texts; i++) {
            v.n = 0;
            tok_encode(c, json_string_value(texts[i]), json_string_length(texts[i]), 0, &v, &e);
            n_ids += v.n;
        }
        double dt = now_s() - a;
        mbs[p] = (double)bytes / dt / 1e6;
        printf("pass %d: %.2f MB/s (%.3f s)\n", p + 1, mbs[p], dt);
    }
    qsort(mbs, (size_t)passes, sizeof *mbs, cmp_d);
    printf("encode: %zu strings, %zu bytes, %lld ids; median %.2f MB/s\n", n_texts, bytes,
           (long long)n_ids, mbs[passes / 2]);
    free(mbs);
    tok_ids_free(&v);
    tok_ctx_free(c);
    for (size_t i = 0; i < n_texts; i++) json_decref(texts[i]);
    free(texts);
    tok_free(t);
    return 0;
}
