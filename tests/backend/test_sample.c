/* Tests for be_sample on the CPU backend (the reference a device's sampler is checked
 * against): greedy rows are argmax with the lowest index on ties, NaN and -inf never win and
 * an all -inf row gives -1; temperature rows draw from softmax(x / T): over 40000 keys the
 * frequencies of a 5-way distribution match it (each within 0.01, about 5 standard
 * deviations), T scales the logits, and the same key gives the same id; top-k (ties kept),
 * top-p and min-p keep what backend.h says and draw in proportion from the rest; bad rows
 * fail. */
#include "t.h"
#include "be_fixture.h"

#include <math.h>

static void test_greedy(void) {
    struct err e = {0};
    struct be *b = NULL;
    T_RC(be_cpu_new(&b, 1, &e), &e);
    const float l[4][6] = {{1, 3, 2, 3, -1, 0},
                           {NAN, -INFINITY, 0.5f, NAN, 0.25f, 0.5f},
                           {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, NAN},
                           {0, 0, 0, 0, 0, 9}};
    struct tensor lg = mk(b, BE_F32, 4, 6, &l[0][0]), ids = mk(b, BE_I32, 1, 4, NULL);
    struct be_sample_row p[4] = {{.temperature = 0},
                                 {.temperature = 1e-6f, .top_k = 1, .key = 5},
                                 {.temperature = 0},
                                 {.temperature = 0, .top_p = 0.5f}};
    T_RC(be_sample(b, &ids, &lg, p, &e), &e);
    int32_t got[4];
    T_RC(be_tensor_read(b, &ids, got, sizeof got, &e), &e);
    T_EQ(got[0], 1);
    T_EQ(got[1], 2);
    T_EQ(got[2], -1);
    T_EQ(got[3], 5);
    float back[24];
    get(b, &lg, back); /* the logits are read, never changed */
    T_OK(back[1] == 3 && isnan(back[6]) && back[23] == 9);
    p[0].temperature = -1.0f;
    T_FAILS(be_sample(b, &ids, &lg, p, &e), VELA_EINVAL, &e);
    p[0].temperature = NAN;
    T_FAILS(be_sample(b, &ids, &lg, p, &e), VELA_EINVAL, &e);
    p[0] = (struct be_sample_row){.temperature = 1, .top_k = -1};
    T_FAILS(be_sample(b, &ids, &lg, p, &e), VELA_EINVAL, &e);
    p[0] = (struct be_sample_row){.temperature = 1, .top_p = 1.5f};
    T_FAILS(be_sample(b, &ids, &lg, p, &e), VELA_EINVAL, &e);
    p[0] = (struct be_sample_row){.temperature = 1, .min_p = -0.1f};
    T_FAILS(be_sample(b, &ids, &lg, p, &e), VELA_EINVAL, &e);
    T_FAILS(be_sample(b, &ids, &lg, NULL, &e), VELA_EINVAL, &e);
    free_bufs();
    be_free(b);
}

/* Frequencies of n draws (one key each) from one row of logits x with the row parameters of
 * t (its key replaced per draw). */
static void draw_freq(struct be *b, const float *x, int V, struct be_sample_row t, int n,
                      double *freq) {
    struct err e = {0};
    enum { CHUNK = 1000 };
    float *rows = malloc(sizeof(float) * CHUNK * (size_t)V);
    struct be_sample_row *p = malloc(sizeof *p * CHUNK);
    int32_t *got = malloc(sizeof *got * CHUNK);
    for (int r = 0; r < CHUNK; r++) memcpy(rows + (size_t)r * V, x, sizeof(float) * (size_t)V);
    struct tensor lg = mk(b, BE_F32, CHUNK, V, rows), ids = mk(b, BE_I32, 1, CHUNK, NULL);
    for (int i = 0; i < V; i++) freq[i] = 0;
    for (int k = 0; k < n; k += CHUNK) {
        for (int r = 0; r < CHUNK; r++) p[r] = t, p[r].key = 0x5eed0000u + (uint64_t)(k + r);
        T_RC(be_sample(b, &ids, &lg, p, &e), &e);
        T_RC(be_tensor_read(b, &ids, got, sizeof *got * CHUNK, &e), &e);
        for (int r = 0; r < CHUNK; r++)
            if (got[r] >= 0 && got[r] < V) freq[got[r]] += 1.0 / n;
    }
    free_bufs();
    free(rows), free(p), free(got);
}

static void test_distribution(void) {
    struct err e = {0};
    struct be *b = NULL;
    T_RC(be_cpu_new(&b, 2, &e), &e);
    const float x[5] = {1.0f, 0.0f, 2.0f, -1.0f, 0.5f};
    const float temps[2] = {1.0f, 0.5f};
    for (int ti = 0; ti < 2; ti++) {
        double freq[5], want[5], z = 0;
        for (int i = 0; i < 5; i++) z += exp(x[i] / temps[ti]);
        for (int i = 0; i < 5; i++) want[i] = exp(x[i] / temps[ti]) / z;
        draw_freq(b, x, 5, (struct be_sample_row){.temperature = temps[ti]}, 40000, freq);
        for (int i = 0; i < 5; i++)
            T_CHECK_(fabs(freq[i] - want[i]) < 0.01, "T %.1f id %d: %.4f drawn, softmax %.4f",
                     (double)temps[ti], i, freq[i], want[i]);
    }
    /* the same key draws the same id */
    float row[2][5];
    memcpy(row[0], x, sizeof x), memcpy(row[1], x, sizeof x);
    struct tensor lg = mk(b, BE_F32, 2, 5, &row[0][0]), ids = mk(b, BE_I32, 1, 2, NULL);
    struct be_sample_row p[2] = {{.temperature = 1.0f, .key = 77},
                                 {.temperature = 1.0f, .key = 77}};
    int32_t got[2] = {-2, -3};
    T_RC(be_sample(b, &ids, &lg, p, &e), &e);
    T_RC(be_tensor_read(b, &ids, got, sizeof got, &e), &e);
    T_EQ(got[0], got[1]);
    free_bufs();
    be_free(b);
}

/* The filters keep what backend.h says and draw from the renormalized rest: softmax of
 * {1, 0, 2, -1, 0.5, 2} at T = 1 is about {.13, .05, .36, .02, .08, .36} (ids 2 and 5 tie). */
static void test_filters(void) {
    struct err e = {0};
    struct be *b = NULL;
    T_RC(be_cpu_new(&b, 2, &e), &e);
    const float x[6] = {1.0f, 0.0f, 2.0f, -1.0f, 0.5f, 2.0f};
    double z = 0, pr[6];
    for (int i = 0; i < 6; i++) z += exp(x[i]);
    for (int i = 0; i < 6; i++) pr[i] = exp(x[i]) / z;
    static const struct {
        struct be_sample_row p;
        int keep[6];
    } cs[] = {
        {{.temperature = 1, .top_k = 1}, {0, 0, 1, 0, 0, 1}},     /* ties at the k-th kept */
        {{.temperature = 1, .top_k = 3}, {1, 0, 1, 0, 0, 1}},     /* 2, 5, then 0 */
        {{.temperature = 1, .top_k = 6}, {1, 1, 1, 1, 1, 1}},     /* k >= count: off */
        {{.temperature = 1, .top_p = 0.7f}, {0, 0, 1, 0, 0, 1}},  /* .72 >= .7 */
        {{.temperature = 1, .top_p = 0.75f}, {1, 0, 1, 0, 0, 1}}, /* .72 < .75 <= .85 */
        {{.temperature = 1, .top_k = 3, .top_p = 0.9f}, {1, 0, 1, 0, 0, 1}},
        {{.temperature = 1, .min_p = 0.3f}, {1, 0, 1, 0, 0, 1}}, /* e^-1 = .37 >= .3 > e^-1.5 */
        {{.temperature = 1, .min_p = 0.5f}, {0, 0, 1, 0, 0, 1}},
    };
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        double freq[6], kept = 0;
        for (int i = 0; i < 6; i++) kept += cs[c].keep[i] ? pr[i] : 0;
        draw_freq(b, x, 6, cs[c].p, 20000, freq);
        for (int i = 0; i < 6; i++) {
            double want = cs[c].keep[i] ? pr[i] / kept : 0;
            T_CHECK_(fabs(freq[i] - want) < 0.015 && (cs[c].keep[i] || freq[i] == 0),
                     "case %zu id %d: %.4f drawn, %.4f expected", c, i, freq[i], want);
        }
    }
    be_free(b);
}

int main(void) {
    T_RUN(test_greedy);
    T_RUN(test_distribution);
    T_RUN(test_filters);
    return t_done();
}
