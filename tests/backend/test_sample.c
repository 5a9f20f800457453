/* Tests for be_sample on the CPU backend (the reference a device's sampler is checked
 * against): greedy rows are argmax with the lowest index on ties, NaN and -inf never win and
 * an all -inf row gives -1; temperature rows draw from softmax(x / T): over 40000 keys the
 * frequencies of a 5-way distribution match it (each within 0.01, about 5 standard
 * deviations), T scales the logits, and the same key gives the same id; bad rows fail. */
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
    struct be_sample_row p[4] = {{0, 0}, {1e-6f, 5}, {0, 0}, {0, 0}};
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
    T_FAILS(be_sample(b, &ids, &lg, NULL, &e), VELA_EINVAL, &e);
    free_bufs();
    be_free(b);
}

/* Frequencies of n draws (one key each) from one row of logits x at temperature t. */
static void draw_freq(struct be *b, const float *x, int V, float t, int n, double *freq) {
    struct err e = {0};
    enum { CHUNK = 1000 };
    float *rows = malloc(sizeof(float) * CHUNK * (size_t)V);
    struct be_sample_row *p = malloc(sizeof *p * CHUNK);
    int32_t *got = malloc(sizeof *got * CHUNK);
    for (int r = 0; r < CHUNK; r++) memcpy(rows + (size_t)r * V, x, sizeof(float) * (size_t)V);
    struct tensor lg = mk(b, BE_F32, CHUNK, V, rows), ids = mk(b, BE_I32, 1, CHUNK, NULL);
    for (int i = 0; i < V; i++) freq[i] = 0;
    for (int k = 0; k < n; k += CHUNK) {
        for (int r = 0; r < CHUNK; r++)
            p[r] = (struct be_sample_row){.temperature = t, .key = 0x5eed0000u + (uint64_t)(k + r)};
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
        draw_freq(b, x, 5, temps[ti], 40000, freq);
        for (int i = 0; i < 5; i++)
            T_CHECK_(fabs(freq[i] - want[i]) < 0.01, "T %.1f id %d: %.4f drawn, softmax %.4f",
                     (double)temps[ti], i, freq[i], want[i]);
    }
    /* the same key draws the same id */
    float row[2][5];
    memcpy(row[0], x, sizeof x), memcpy(row[1], x, sizeof x);
    struct tensor lg = mk(b, BE_F32, 2, 5, &row[0][0]), ids = mk(b, BE_I32, 1, 2, NULL);
    struct be_sample_row p[2] = {{1.0f, 77}, {1.0f, 77}};
    int32_t got[2] = {-2, -3};
    T_RC(be_sample(b, &ids, &lg, p, &e), &e);
    T_RC(be_tensor_read(b, &ids, got, sizeof got, &e), &e);
    T_EQ(got[0], got[1]);
    free_bufs();
    be_free(b);
}

int main(void) {
    T_RUN(test_greedy);
    T_RUN(test_distribution);
    return t_done();
}
