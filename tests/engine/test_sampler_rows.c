/* Tests for engine/sampler_rows.c against plain scalar loops, on sizes around the vector width
 * and the draw's block (1, 15, 16, 17, 255, 256, 257, 1000, 4099 and Qwen's 151936): the copy's
 * NaN/inf detection wherever the bad value sits, division and maximum, argmax ties (lowest
 * index) and all -inf rows, the exponential within 2 ulp of expf (and exactly 0 for -inf and
 * below -87.33), drop masks by row or by w, the k-th largest with ties and -inf, and the
 * block sums. The build under test is whichever the CPU dispatches to (AVX-512, AVX2 or the
 * baseline). */
#include "engine/sampler_rows.h"
#include "t.h"
#include "util/rng.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const int64_t g_sizes[] = {1, 15, 16, 17, 255, 256, 257, 1000, 4099, 151936};
#define N_SIZES  (sizeof g_sizes / sizeof g_sizes[0])
#define MAX_SIZE 151936

/* Logits in [-8, 8) on a grid of 1/64, so ties are common; some -inf when masked. */
static void fill(float *x, int64_t n, uint64_t seed, bool masked) {
    for (int64_t i = 0; i < n; i++) {
        uint64_t h = rng_hash(seed, 3, (uint64_t)i);
        x[i] = (float)((int64_t)(h % 1024) - 512) / 64.0f;
        if (masked && h % 7 == 0) x[i] = -INFINITY;
    }
}

static int64_t ulp_diff(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4), memcpy(&ib, &b, 4);
    return ia > ib ? (int64_t)ia - ib : (int64_t)ib - ia;
}

static void test_copy_finite(void) {
    float *src = malloc(MAX_SIZE * sizeof *src), *dst = malloc(MAX_SIZE * sizeof *dst);
    T_OK(src && dst);
    if (!src || !dst) return;
    for (size_t s = 0; s < N_SIZES; s++) {
        int64_t n = g_sizes[s];
        fill(src, n, (uint64_t)n, false);
        T_OK(smr_copy_finite(dst, src, n));
        T_OK(memcmp(dst, src, (size_t)n * sizeof *src) == 0);
        const float bad[3] = {NAN, INFINITY, -INFINITY};
        int64_t at[3] = {0, n / 2, n - 1};
        for (int b = 0; b < 3; b++)
            for (int a = 0; a < 3; a++) {
                float keep = src[at[a]];
                src[at[a]] = bad[b];
                T_CHECK_(!smr_copy_finite(dst, src, n), "n %lld: %g at %lld not caught",
                         (long long)n, (double)bad[b], (long long)at[a]);
                src[at[a]] = keep;
            }
    }
    free(src), free(dst);
}

static void test_div_max_argmax(void) {
    float *x = malloc(MAX_SIZE * sizeof *x), *y = malloc(MAX_SIZE * sizeof *y);
    T_OK(x && y);
    if (!x || !y) return;
    for (size_t s = 0; s < N_SIZES; s++) {
        int64_t n = g_sizes[s];
        for (int masked = 0; masked < 2; masked++) {
            fill(x, n, 11 + (uint64_t)n, masked);
            memcpy(y, x, (size_t)n * sizeof *x);
            float t = 0.7f, want = -INFINITY;
            int64_t arg = -1;
            for (int64_t i = 0; i < n; i++) {
                if (x[i] > want) want = x[i], arg = i; /* first index of the largest */
                y[i] = y[i] / t;
            }
            T_EQ(smr_argmax(x, n), arg);
            float got = smr_div_max(x, n, t);
            T_OK(memcmp(x, y, (size_t)n * sizeof *x) == 0); /* the same divisions */
            T_OK(got == want / t || (isinf(got) && isinf(want)));
        }
    }
    for (int64_t i = 0; i < 300; i++) x[i] = -INFINITY;
    T_EQ(smr_argmax(x, 300), -1);
    T_OK(smr_div_max(x, 300, 2.0f) == -INFINITY);
    x[299] = 1.0f, x[17] = 1.0f;
    T_EQ(smr_argmax(x, 300), 17);
    free(x), free(y);
}

static void test_exp(void) {
    enum { N = 1 << 20 };
    float *x = malloc(N * sizeof *x), *w = malloc(N * sizeof *w);
    T_OK(x && w);
    if (!x || !w) return;
    for (int i = 0; i < N; i++) x[i] = -87.33f * (float)i / (float)(N - 1); /* [-87.33, 0] */
    smr_exp_row(x, 0.0f, w, N);
    int64_t worst = 0;
    for (int i = 0; i < N; i++) {
        int64_t d = ulp_diff(w[i], expf(x[i]));
        worst = d > worst ? d : worst;
    }
    T_CHECK_(worst <= 2, "exp: %lld ulp from expf", (long long)worst);
    float special[5] = {-INFINITY, -1000.0f, -87.5f, 0.0f, -0.0f};
    float out[5];
    smr_exp_row(special, 0.0f, out, 5); /* also the padded tail path (n < 16) */
    T_OK(out[0] == 0.0f && out[1] == 0.0f && out[2] == 0.0f && out[3] == 1.0f && out[4] == 1.0f);
    /* with a maximum subtracted, on every size */
    for (size_t s = 0; s < N_SIZES; s++) {
        int64_t n = g_sizes[s];
        fill(x, n, 5 + (uint64_t)n, true);
        float m = -INFINITY;
        for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
        if (m == -INFINITY) continue;
        smr_exp_row(x, m, w, n);
        int64_t bad = 0;
        for (int64_t i = 0; i < n; i++)
            bad += isinf(x[i]) ? w[i] != 0.0f : ulp_diff(w[i], expf(x[i] - m)) > 2;
        T_CHECK_(bad == 0, "exp_row n %lld: %lld entries off", (long long)n, (long long)bad);
    }
    printf("exp: at most %lld ulp from expf on [-87.33, 0]\n", (long long)worst);
    free(x), free(w);
}

static void test_drop_below(void) {
    float *r = malloc(MAX_SIZE * sizeof *r), *w = malloc(MAX_SIZE * sizeof *w);
    T_OK(r && w);
    if (!r || !w) return;
    for (size_t s = 0; s < N_SIZES; s++) {
        int64_t n = g_sizes[s];
        for (int by_w = 0; by_w < 2; by_w++) {
            fill(r, n, 21 + (uint64_t)n, false);
            for (int64_t i = 0; i < n; i++) w[i] = expf(r[i] - 8.0f);
            float thr = by_w ? expf(-8.0f) : 0.0f;
            smr_drop_below(r, w, n, thr, by_w);
            int64_t bad = 0;
            for (int64_t i = 0; i < n; i++) {
                bool dropped = r[i] == -INFINITY && w[i] == 0.0f;
                float v = by_w ? w[i] : r[i];
                bad += dropped ? 0 : v < thr;
                if (!dropped) bad += r[i] == -INFINITY || w[i] == 0.0f;
            }
            T_CHECK_(bad == 0, "drop n %lld by_w %d: %lld wrong", (long long)n, by_w,
                     (long long)bad);
        }
    }
    free(r), free(w);
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

static void test_kth_largest(void) {
    float *x = malloc(MAX_SIZE * sizeof *x), *sorted = malloc(MAX_SIZE * sizeof *sorted);
    float buf[SMR_TOPK_MAX];
    T_OK(x && sorted);
    if (!x || !sorted) return;
    const int64_t ks[] = {1, 2, 7, 16, 50, 255, 256};
    for (size_t s = 0; s < N_SIZES; s++) {
        int64_t n = g_sizes[s];
        for (int masked = 0; masked < 2; masked++) {
            fill(x, n, 31 + (uint64_t)n, masked);
            memcpy(sorted, x, (size_t)n * sizeof *x);
            qsort(sorted, (size_t)n, sizeof *sorted, cmp_desc);
            for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
                int64_t k = ks[j];
                if (k >= n) continue;
                float got = smr_kth_largest(x, n, k, buf);
                T_CHECK_(got == sorted[k - 1], "n %lld k %lld masked %d: %g, want %g", (long long)n,
                         (long long)k, masked, (double)got, (double)sorted[k - 1]);
            }
        }
    }
    free(x), free(sorted);
}

static void test_block_sums(void) {
    float *w = malloc(MAX_SIZE * sizeof *w);
    double *bsum = malloc((MAX_SIZE / SMR_BLOCK + 1) * sizeof *bsum);
    T_OK(w && bsum);
    if (!w || !bsum) return;
    for (size_t s = 0; s < N_SIZES; s++) {
        int64_t n = g_sizes[s], nb = (n + SMR_BLOCK - 1) / SMR_BLOCK;
        fill(w, n, 41 + (uint64_t)n, true);
        for (int64_t i = 0; i < n; i++) w[i] = isinf(w[i]) ? 0.0f : expf(w[i] - 8.0f);
        double z = smr_block_sums(w, n, bsum), all = 0.0;
        for (int64_t b = 0; b < nb; b++) {
            double want = 0.0;
            for (int64_t i = b * SMR_BLOCK; i < n && i < (b + 1) * SMR_BLOCK; i++) want += w[i];
            T_NEAR(bsum[b], want, 1e-12 * (want + 1.0));
            all += want;
        }
        T_NEAR(z, all, 1e-12 * (all + 1.0));
    }
    free(w), free(bsum);
}

int main(void) {
    T_RUN(test_copy_finite);
    T_RUN(test_div_max_argmax);
    T_RUN(test_exp);
    T_RUN(test_drop_below);
    T_RUN(test_kth_largest);
    T_RUN(test_block_sums);
    return t_done();
}
