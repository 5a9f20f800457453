/* bench_image: decode + preprocess time per image file (img_decode, then img_preprocess with
 * the official pixel budget or --max-pixels), single thread. Not a test: it prints numbers for
 * docs/BENCHMARKS.md; bench/image/bench_image.py runs it interleaved with the Python reference.
 *
 * Build (from the repository root, after building velacore in BUILD):
 *   gcc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Isrc bench/image/bench_image.c \
 *       BUILD/libvelacore.a -ljansson -lpcre2-8 -lutf8proc -ljpeg -lpng16 -lwebp -lz -lm \
 *       -o BUILD/bench_image
 * Run:
 *   BUILD/bench_image [--iters K] [--max-pixels N] FILE...
 * Prints one JSON object per file: {"file", "grid": [t,h,w], "decode_ms": [...],
 * "total_ms": [...], "cpu_ms": [...]} with one entry per iteration (wall time of the decode,
 * of decode + preprocess, and process CPU time of both; the file is read into memory once). */
#include "util/err.h"
#include "util/file.h"
#include "vision/decode.h"
#include "vision/preprocess.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int bench_file(const char *path, int iters, const struct preproc_params *p) {
    char *buf = NULL;
    size_t n = 0;
    struct err e = {0};
    if (file_read_all(path, 256u << 20, &buf, &n, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    printf("{\"file\": \"%s\"", path);
    double *dec = calloc((size_t)iters, sizeof *dec), *tot = calloc((size_t)iters, sizeof *tot);
    double *cpu = calloc((size_t)iters, sizeof *cpu);
    int rc = dec && tot && cpu ? 0 : 1;
    for (int i = 0; i < iters && rc == 0; i++) {
        struct image im = {0};
        struct pixel_values pv = {0};
        double c0 = now_ms(CLOCK_PROCESS_CPUTIME_ID), t0 = now_ms(CLOCK_MONOTONIC);
        rc = img_decode(&im, (const uint8_t *)buf, n, NULL, &e);
        double t1 = now_ms(CLOCK_MONOTONIC);
        if (rc == 0) rc = img_preprocess(&im, p, &pv, &e);
        double t2 = now_ms(CLOCK_MONOTONIC), c2 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
        dec[i] = t1 - t0;
        tot[i] = t2 - t0;
        cpu[i] = c2 - c0;
        if (rc == 0 && i == 0)
            printf(", \"grid\": [%lld, %lld, %lld]", (long long)pv.grid_t, (long long)pv.grid_h,
                   (long long)pv.grid_w);
        pixel_values_deinit(&pv);
        img_deinit(&im);
    }
    if (rc != 0) {
        printf(", \"error\": \"%s\"}\n", e.msg);
    } else {
        const char *names[3] = {"decode_ms", "total_ms", "cpu_ms"};
        double *arrs[3] = {dec, tot, cpu};
        for (int a = 0; a < 3; a++) {
            printf(", \"%s\": [", names[a]);
            for (int i = 0; i < iters; i++) printf("%s%.3f", i ? ", " : "", arrs[a][i]);
            printf("]");
        }
        printf("}\n");
    }
    fflush(stdout);
    free(dec);
    free(tot);
    free(cpu);
    free(buf);
    return rc != 0;
}

int main(int argc, char **argv) {
    int iters = 5, first = 1, bad = 0;
    struct preproc_params p;
    preproc_params_default(&p);
    while (first < argc && strncmp(argv[first], "--", 2) == 0 && first + 1 < argc) {
        if (strcmp(argv[first], "--iters") == 0)
            iters = atoi(argv[first + 1]);
        else if (strcmp(argv[first], "--max-pixels") == 0)
            p.max_pixels = atoll(argv[first + 1]);
        else
            break;
        first += 2;
    }
    if (first >= argc || iters < 1) {
        fprintf(stderr, "usage: %s [--iters K] [--max-pixels N] FILE...\n", argv[0]);
        return 2;
    }
    for (int i = first; i < argc; i++) bad |= bench_file(argv[i], iters, &p);
    return bad;
}
