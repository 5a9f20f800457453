/* probe: the roofline measurements. The read probe is the best of three access patterns,
 * because the matmul kernels may stream faster than a plain loop and the roofline must stay
 * an upper bound: a plain sequential read (4 independent 512-bit accumulators, so it is
 * limited by loads, not by add latency), the same with software prefetches into L2 4 KB
 * ahead, and the decode matmul's pattern (four 1792-byte rows read side by side with the
 * rows 12 ahead prefetched into L2). Sums go to a volatile sink so the compiler cannot drop
 * the loads. The peak loop runs 16 independent vdpbf16ps chains (enough to cover the
 * instruction latency) on register operands. */
#include "roofline/probe.h"
#include "backend/cpu/cpu_features.h"

#include <immintrin.h>
#include <stdlib.h>
#include <time.h>

static volatile uint64_t g_sink; /* defeats dead-code elimination of the probes */

double probe_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define ADD4(p0, p1, p2, p3)                                                                       \
    (a0 = _mm512_add_epi64(a0, _mm512_load_si512((const void *)(p0))),                             \
     a1 = _mm512_add_epi64(a1, _mm512_load_si512((const void *)(p1))),                             \
     a2 = _mm512_add_epi64(a2, _mm512_load_si512((const void *)(p2))),                             \
     a3 = _mm512_add_epi64(a3, _mm512_load_si512((const void *)(p3))))

/* Pattern 0: sequential; 1: sequential with L2 prefetches 4 KB ahead; 2: rows of ROW bytes
 * four at a time, prefetching 12 rows ahead (the decode matmul's weight stream). */
#define ROW 1792
__attribute__((target("avx512f"))) static uint64_t read_avx512(const char *p, size_t n,
                                                               int pattern) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    if (pattern == 2) {
        for (size_t r = 0; r + 16 * ROW <= n; r += 4 * ROW) {
            const char *q = p + r;
            for (size_t kk = 0; kk < ROW; kk += 64) {
                for (int b = 0; b < 4; b++) _mm_prefetch(q + (12 + b) * ROW + kk, _MM_HINT_T1);
                ADD4(q + kk, q + ROW + kk, q + 2 * ROW + kk, q + 3 * ROW + kk);
            }
        }
    } else {
        for (size_t i = 0; i + 256 <= n; i += 256) {
            if (pattern == 1 && i + 4096 + 256 <= n)
                for (int l = 0; l < 4; l++) _mm_prefetch(p + i + 4096 + 64 * l, _MM_HINT_T1);
            ADD4(p + i, p + i + 64, p + i + 128, p + i + 192);
        }
    }
    a0 = _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3));
    return (uint64_t)_mm512_reduce_add_epi64(a0);
}

static uint64_t read_plain(const char *p, size_t n) {
    const uint64_t *q = (const uint64_t *)(const void *)p;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= n / 8; i += 4)
        s0 += q[i], s1 += q[i + 1], s2 += q[i + 2], s3 += q[i + 3];
    return s0 + s1 + s2 + s3;
}

struct read_job {
    const char *buf;
    size_t n;
    int pattern;
    uint64_t sums[64];
};

/* Bytes each thread reads: its share rounded down to whole groups of 16 rows (pattern 2
 * reads up to that) and 256-byte steps. */
static size_t read_share(size_t n, int nt) {
    return (n / (size_t)nt) / (16 * ROW) * (16 * ROW);
}

static void read_fn(void *arg, int i, int nt) {
    struct read_job *j = arg;
    size_t per = read_share(j->n, nt);
    const char *p = j->buf + per * (size_t)i;
    j->sums[i & 63] =
        cpu_features_get()->avx512f ? read_avx512(p, per, j->pattern) : read_plain(p, per);
}

double probe_read_gbps(struct tp *pool, const void *buf, size_t n_bytes) {
    double best = 0;
    int patterns = cpu_features_get()->avx512f ? 3 : 1;
    for (int pat = 0; pat < patterns; pat++) {
        struct read_job j = {.buf = buf, .n = n_bytes, .pattern = pat};
        double t0 = probe_now_s();
        tp_run(pool, read_fn, &j);
        double t = probe_now_s() - t0;
        uint64_t s = 0;
        for (int i = 0; i < 64; i++) s += j.sums[i];
        g_sink = s;
        /* pattern 2 reads whole 4-row groups only: count what it read */
        size_t per = read_share(n_bytes, tp_size(pool));
        size_t bytes = pat == 2 ? (per - 12 * ROW) / (4 * ROW) * (4 * ROW) : per;
        double g = (double)(bytes * (size_t)tp_size(pool)) / t * 1e-9;
        if (g > best) best = g;
    }
    return best;
}

struct peak_job {
    int64_t iters;
    float out[64];
};

/* One peak loop per instruction: NAME runs 16 independent chains of `a = OP` on register
 * operands x and y (of type XT, set to XV and YV). */
#define PEAK_FN(NAME, TARGET, XT, XV, YV, OP)                                                      \
    __attribute__((target(TARGET))) static void NAME(void *arg, int i, int nt) {                   \
        (void)nt;                                                                                  \
        struct peak_job *j = arg;                                                                  \
        XT x = XV, y = YV;                                                                         \
        __m512 c0 = _mm512_set1_ps(0), c1 = _mm512_set1_ps(1), c2 = _mm512_set1_ps(2);             \
        __m512 c3 = _mm512_set1_ps(3), c4 = _mm512_set1_ps(4), c5 = _mm512_set1_ps(5);             \
        __m512 c6 = _mm512_set1_ps(6), c7 = _mm512_set1_ps(7), c8 = _mm512_set1_ps(8);             \
        __m512 c9 = _mm512_set1_ps(9), c10 = _mm512_set1_ps(10), c11 = _mm512_set1_ps(11);         \
        __m512 c12 = _mm512_set1_ps(12), c13 = _mm512_set1_ps(13), c14 = _mm512_set1_ps(14);       \
        __m512 c15 = _mm512_set1_ps(15);                                                           \
        for (int64_t k = 0; k < j->iters; k++) {                                                   \
            OP(c0), OP(c1), OP(c2), OP(c3), OP(c4), OP(c5), OP(c6), OP(c7);                        \
            OP(c8), OP(c9), OP(c10), OP(c11), OP(c12), OP(c13), OP(c14), OP(c15);                  \
            /* Opaque to the optimizer: the 16 chains must stay 16 (identical chains would be      \
             * merged into one, and the probe would time latency instead of throughput). */        \
            __asm__ volatile(""                                                                    \
                             : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5),         \
                               "+v"(c6), "+v"(c7), "+v"(x));                                       \
            __asm__ volatile(""                                                                    \
                             : "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11), "+v"(c12), "+v"(c13),     \
                               "+v"(c14), "+v"(c15), "+v"(y));                                     \
        }                                                                                          \
        __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),      \
                                 _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));     \
        s = _mm512_add_ps(                                                                         \
            s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)),        \
                             _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15))));    \
        j->out[i & 63] = _mm512_reduce_add_ps(s);                                                  \
    }

#define DP(a)  a = _mm512_dpbf16_ps(a, x, y)
#define FMA(a) a = _mm512_fmadd_ps(a, x, y)
PEAK_FN(peak_fn, "avx512f,avx512bf16,avx512bw", __m512bh, (__m512bh)_mm512_set1_epi16(0x3f80),
        (__m512bh)_mm512_set1_epi16(0x3000), DP)
PEAK_FN(fma_fn, "avx512f", __m512, _mm512_set1_ps(1.0f), _mm512_set1_ps(0.0f), FMA)

/* Runs fn on every pool thread; GFLOP/s at flops_per_iter per thread and iteration. */
static double peak_run(struct tp *pool, tp_fn fn, int64_t iters, double flops_per_iter) {
    struct peak_job j = {.iters = iters};
    double t0 = probe_now_s();
    tp_run(pool, fn, &j);
    double t = probe_now_s() - t0;
    g_sink = (uint64_t)j.out[0];
    return (double)iters * flops_per_iter * tp_size(pool) / t * 1e-9;
}

double probe_bf16_gflops(struct tp *pool, int64_t iters) {
    if (!cpu_isa_supported(CPU_ISA_AVX512)) return 0;
    /* 16 instructions per iteration, each 16 lanes x 2 products x 2 flops. */
    return peak_run(pool, peak_fn, iters, 16 * 64);
}

double probe_f32_fma_gflops(struct tp *pool, int64_t iters) {
    if (!cpu_features_get()->avx512f) return 0;
    /* 16 instructions per iteration, each 16 lanes x 2 flops. */
    return peak_run(pool, fma_fn, iters, 16 * 32);
}

double probe_compute_gflops(struct tp *pool, int64_t iters) {
    double b = probe_bf16_gflops(pool, iters), f = probe_f32_fma_gflops(pool, iters);
    return f > b ? f : b;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double probe_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double probe_min(const double *v, int n) {
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] < m ? v[i] : m;
    return m;
}
