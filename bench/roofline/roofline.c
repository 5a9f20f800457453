/* roofline: measures this machine's streaming read bandwidth, BF16 (vdpbf16ps) peak and FP32
 * FMA peak with 1 and 2 threads. Bandwidth on shared hosts swings from run to run, so the four
 * probes are interleaved over several rounds and reported as median (min..max), followed by the
 * best of many short windows, which approximates an idle machine. Usage: roofline [--rounds N]
 * [--mib SIZE_OF_READ_BUFFER]. */
#include "roofline/probe.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROUNDS 64

int main(int argc, char **argv) {
    int rounds = 9;
    size_t mib = 1024; /* 4x the 260 MB L3 of the reference machine */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0) rounds = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--mib") == 0) mib = (size_t)atol(argv[i + 1]);
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || mib < 1) {
        fprintf(stderr, "usage: roofline [--rounds 1..%d] [--mib N]\n", MAX_ROUNDS);
        return 2;
    }
    size_t n = mib << 20;
    char *buf = aligned_alloc(4096, n);
    struct tp *pools[2] = {NULL, NULL};
    struct err e = {0};
    if (!buf || tp_new(&pools[0], 1, &e) != 0 || tp_new(&pools[1], 2, &e) != 0) {
        fprintf(stderr, "roofline: setup failed: %s\n", e.msg);
        return 1;
    }
    for (size_t i = 0; i < n; i++) buf[i] = (char)i; /* fault every page in */
    double bw[2][MAX_ROUNDS], fl[2][MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        for (int t = 0; t < 2; t++) {
            bw[t][r] = probe_read_gbps(pools[t], buf, n);
            fl[t][r] = probe_bf16_gflops(pools[t], 20 * 1000 * 1000);
        }
    }
    const char *names[2] = {"1 thread ", "2 threads"};
    for (int t = 0; t < 2; t++) {
        double lo = bw[t][0], hi = bw[t][0], flo = fl[t][0], fhi = fl[t][0];
        for (int r = 1; r < rounds; r++) {
            lo = bw[t][r] < lo ? bw[t][r] : lo, hi = bw[t][r] > hi ? bw[t][r] : hi;
            flo = fl[t][r] < flo ? fl[t][r] : flo, fhi = fl[t][r] > fhi ? fl[t][r] : fhi;
        }
        printf("%s  read %6.1f GB/s (%.1f..%.1f)   bf16 peak %6.1f GFLOP/s (%.1f..%.1f)\n",
               names[t], probe_median(bw[t], rounds), lo, hi, probe_median(fl[t], rounds), flo,
               fhi);
    }
    printf("(%d interleaved rounds, read buffer %zu MiB)\n", rounds, mib);
    /* On a shared host the medians include time lost to other processes; the best of many
     * short windows approximates an idle core (a window that ran undisturbed). */
    double best_fl[2] = {0, 0}, best_bw[2] = {0, 0};
    for (int r = 0; r < 300; r++)
        for (int t = 0; t < 2; t++) {
            double f = probe_bf16_gflops(pools[t], 20000);
            best_fl[t] = f > best_fl[t] ? f : best_fl[t];
        }
    for (int r = 0; r < 2 * rounds; r++)
        for (int t = 0; t < 2; t++) {
            double b = probe_read_gbps(pools[t], buf, n);
            best_bw[t] = b > best_bw[t] ? b : best_bw[t];
        }
    for (int t = 0; t < 2; t++) {
        double ff[MAX_ROUNDS];
        for (int r = 0; r < rounds; r++) ff[r] = probe_f32_fma_gflops(pools[t], 20 * 1000 * 1000);
        printf("%s  fp32 fma peak %6.1f GFLOP/s (median of %d)\n", names[t],
               probe_median(ff, rounds), rounds);
    }
    for (int t = 0; t < 2; t++)
        printf("%s  best read %6.1f GB/s (of %d passes)   best bf16 %6.1f GFLOP/s (of 300 short "
               "windows)\n",
               names[t], best_bw[t], 2 * rounds, best_fl[t]);
    tp_free(pools[0]);
    tp_free(pools[1]);
    free(buf);
    return 0;
}
