/* Tests for engine/sampler.c: greedy ties, exact top-k / top-p / min-p masks (hand-made rows and
 * a full 152064-id row against a sort-everything reference), temperature by a chi-square test
 * over 20k seeded draws, vLLM's penalty arithmetic and order (logit_bias before penalties),
 * min_tokens, raw logprobs, seeded reproducibility across batch positions and sizes, NaN / Inf
 * rejection per sequence, and whole distributions against torch float32 re-computations of
 * vLLM's ops (tests/fixtures/sampler, written by tools/sampler_reference.py). */
#include "engine/sampler.h"
#include "t.h"
#include "util/file.h"
#include "util/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define V_BIG 152064

static struct sampler *new_sampler(int32_t max_batch, int64_t vocab) {
    struct sampler *s = NULL;
    struct err e = {0};
    int rc = smp_new(&s, max_batch, vocab, &e);
    T_RC(rc, &e);
    return rc == 0 ? s : NULL;
}

static struct sampling_params base_params(void) {
    struct sampling_params p;
    sp_defaults(&p);
    return p;
}

static struct smp_seq seq_of(const struct sampling_params *p, struct smp_rng *r) {
    struct smp_seq q = {0};
    q.params = p;
    q.rng = r;
    return q;
}

/* Distribution of one row; returns 0 or the error code. */
static int dist(struct sampler *s, const float *x, const struct smp_seq *q, double *probs) {
    struct err e = {0};
    return smp_distribution(s, x, q, probs, &e);
}

/* Checks that exactly the ids in keep[] have mass and that it is proportional to exp(x/t). */
static void expect_kept(const double *probs, const float *x, int n, const int *keep, int n_keep,
                        double t) {
    double z = 0.0;
    for (int j = 0; j < n_keep; j++) z += exp(x[keep[j]] / t);
    for (int i = 0; i < n; i++) {
        double want = 0.0;
        for (int j = 0; j < n_keep; j++)
            if (keep[j] == i) want = exp(x[i] / t) / z;
        if (want == 0.0)
            T_CHECK_(probs[i] == 0.0, "id %d should be masked, has %g", i, probs[i]);
        else
            T_NEAR(probs[i], want, 1e-6);
    }
}

static void test_greedy(void) {
    struct sampler *s = new_sampler(4, 8);
    if (!s) return;
    float x[8] = {1.0f, 5.0f, 3.0f, 5.0f, -2.0f, 4.5f, 5.0f, 0.0f};
    struct sampling_params p = base_params();
    p.temperature = 0.0f;
    struct smp_seq q = seq_of(&p, NULL); /* greedy needs no RNG */
    struct smp_out o;
    struct err e = {0};
    T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
    T_EQ(o.token, 1);      /* three-way tie at 5.0: lowest id */
    p.temperature = 1e-6f; /* Qwen's generation_config value: below the epsilon, still greedy */
    T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
    T_EQ(o.token, 1);
    p.top_k = 3; /* ignored when greedy */
    p.top_p = 0.1f;
    T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
    T_EQ(o.token, 1);
    double probs[8];
    T_EQ(dist(s, x, &q, probs), 0);
    T_NEAR(probs[1], 1.0, 0.0);
    T_NEAR(probs[3], 0.0, 0.0);
    /* Random params without an RNG are refused, not crashed on. */
    p.temperature = 1.0f;
    T_FAILS(smp_sample(s, x, 1, &q, &o, &e), VELA_EINVAL, &e);
    T_EQ(o.token, -1);
    smp_free(s);
}

static void test_top_k(void) {
    struct sampler *s = new_sampler(1, 6);
    if (!s) return;
    float x[6] = {1.0f, 5.0f, 4.0f, 4.0f, 3.0f, 0.0f};
    struct sampling_params p = base_params();
    struct smp_seq q = seq_of(&p, NULL);
    double probs[6];
    p.top_k = 1;
    T_EQ(dist(s, x, &q, probs), 0);
    expect_kept(probs, x, 6, (const int[]){1}, 1, 1.0);
    p.top_k = 2; /* the 2nd largest is 4.0, tied: both 4.0s stay (vLLM keeps ties) */
    T_EQ(dist(s, x, &q, probs), 0);
    expect_kept(probs, x, 6, (const int[]){1, 2, 3}, 3, 1.0);
    p.top_k = 3;
    T_EQ(dist(s, x, &q, probs), 0);
    expect_kept(probs, x, 6, (const int[]){1, 2, 3}, 3, 1.0);
    p.top_k = 4;
    T_EQ(dist(s, x, &q, probs), 0);
    expect_kept(probs, x, 6, (const int[]){1, 2, 3, 4}, 4, 1.0);
    p.top_k = 6; /* k == V: off */
    T_EQ(dist(s, x, &q, probs), 0);
    expect_kept(probs, x, 6, (const int[]){0, 1, 2, 3, 4, 5}, 6, 1.0);
    p.top_k = -1; /* vLLM's "disabled" */
    T_EQ(dist(s, x, &q, probs), 0);
    expect_kept(probs, x, 6, (const int[]){0, 1, 2, 3, 4, 5}, 6, 1.0);
    smp_free(s);
}

static void log_row(float *x, const double *pr, int n) {
    for (int i = 0; i < n; i++) x[i] = (float)log(pr[i]);
}

static void test_top_p(void) {
    struct sampler *s = new_sampler(1, 4);
    if (!s) return;
    float x[4];
    log_row(x, (const double[]){0.4, 0.3, 0.2, 0.1}, 4);
    struct sampling_params p = base_params();
    struct smp_seq q = seq_of(&p, NULL);
    double probs[4];
    /* Ascending running sums 0.1, 0.3, 0.6, 1.0 against 1 - top_p. */
    p.top_p = 0.5f; /* drop sums <= 0.5: 0.1 and 0.2 go */
    T_EQ(dist(s, x, &q, probs), 0);
    expect_kept(probs, x, 4, (const int[]){0, 1}, 2, 1.0);
    T_NEAR(probs[0], 0.4 / 0.7, 1e-6);
    p.top_p = 0.75f; /* <= 0.25: only 0.1 goes */
    T_EQ(dist(s, x, &q, probs), 0);
    expect_kept(probs, x, 4, (const int[]){0, 1, 2}, 3, 1.0);
    p.top_p = 0.35f; /* <= 0.65: 0.1, 0.2, 0.3 go */
    T_EQ(dist(s, x, &q, probs), 0);
    expect_kept(probs, x, 4, (const int[]){0}, 1, 1.0);
    p.top_p = 0.01f; /* the largest always stays */
    T_EQ(dist(s, x, &q, probs), 0);
    expect_kept(probs, x, 4, (const int[]){0}, 1, 1.0);
    p.top_p = 1.0f;
    T_EQ(dist(s, x, &q, probs), 0);
    expect_kept(probs, x, 4, (const int[]){0, 1, 2, 3}, 4, 1.0);
    /* Ties: four equal logits ordered by id as a stable ascending sort orders them; sums 0.25,
     * 0.5 are <= 0.5, so ids 0 and 1 go and the two higher ids stay. */
    float flat[4] = {2.0f, 2.0f, 2.0f, 2.0f};
    p.top_p = 0.5f;
    T_EQ(dist(s, flat, &q, probs), 0);
    expect_kept(probs, flat, 4, (const int[]){2, 3}, 2, 1.0);
    smp_free(s);
    /* Ten equal logits, top_p 0.2: the 8th running sum is 0.8 and vLLM's limit is the float32
     * 1 - 0.2f = 0.800000012, so the 8th id goes too (a double 1 - top_p would keep it). */
    s = new_sampler(1, 10);
    if (!s) return;
    float flat10[10] = {0};
    double probs10[10];
    p.top_p = 0.2f;
    T_EQ(dist(s, flat10, &q, probs10), 0);
    expect_kept(probs10, flat10, 10, (const int[]){8, 9}, 2, 1.0);
    smp_free(s);
}

static void test_min_p_and_combined(void) {
    struct sampler *s = new_sampler(1, 6);
    if (!s) return;
    float x[6];
    log_row(x, (const double[]){0.5, 0.25, 0.15, 0.1, 0.0, 0.0}, 4);
    x[4] = x[5] = -30.0f;
    struct sampling_params p = base_params();
    struct smp_seq q = seq_of(&p, NULL);
    double probs[6];
    p.min_p = 0.4f; /* threshold 0.4 * 0.5 = 0.2 */
    T_EQ(dist(s, x, &q, probs), 0);
    expect_kept(probs, x, 6, (const int[]){0, 1}, 2, 1.0);
    p.min_p = 0.25f; /* threshold 0.125: 0.15 stays, 0.1 goes */
    T_EQ(dist(s, x, &q, probs), 0);
    expect_kept(probs, x, 6, (const int[]){0, 1, 2}, 3, 1.0);
    p.min_p = 1.0f; /* only the maximum */
    T_EQ(dist(s, x, &q, probs), 0);
    expect_kept(probs, x, 6, (const int[]){0}, 1, 1.0);

    /* min_p, then top_k, then top_p on the survivors:
     * probs 0.35 0.25 0.2 0.1 0.06 0.04; min_p 0.15 (threshold 0.0525) drops 0.04; top_k 4 keeps
     * 0.35..0.1; top_p 0.7 on 0.35 0.25 0.2 0.1 (mass 0.9): ascending sums 0.111, 0.333 against
     * 0.3 drop only the 0.1. */
    log_row(x, (const double[]){0.35, 0.25, 0.2, 0.1, 0.06, 0.04}, 6);
    p.min_p = 0.15f;
    p.top_k = 4;
    p.top_p = 0.7f;
    T_EQ(dist(s, x, &q, probs), 0);
    expect_kept(probs, x, 6, (const int[]){0, 1, 2}, 3, 1.0);
    T_NEAR(probs[0], 0.35 / 0.8, 1e-6);
    /* top_p is applied after min_p, as vLLM does: min_p 0.6 leaves {0.35, 0.25} (mass 0.6),
     * and top_p 0.5 then drops 0.25 (0.25 / 0.6 = 0.42 <= 0.5). Applied to the full row first,
     * top_p 0.5 would keep 0.35 and 0.25 (ascending sums 0.4 then 0.65). */
    p.min_p = 0.6f;
    p.top_k = 0;
    p.top_p = 0.5f;
    T_EQ(dist(s, x, &q, probs), 0);
    expect_kept(probs, x, 6, (const int[]){0}, 1, 1.0);
    /* Temperature comes before the masks: at t = 0.5 the probability ratios square, and
     * (0.25 / 0.35)^2 = 0.51 falls under min_p 0.55, which at t = 1 (0.71) it would not. */
    p.temperature = 0.5f;
    p.min_p = 0.55f;
    p.top_p = 1.0f;
    T_EQ(dist(s, x, &q, probs), 0);
    expect_kept(probs, x, 6, (const int[]){0}, 1, 0.5);
    smp_free(s);
}

/* Full-size row against a sort-everything reference of the same rules. */
static int cmp_float_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x > y ? -1 : (x < y);
}

struct pair {
    float v;
    int32_t id;
};

static int cmp_pair_asc(const void *a, const void *b) {
    const struct pair *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

/* Mask (1 = kept) by temperature t, top_k and top_p, computed by sorting the whole row. */
static void reference_mask(const float *x, int64_t n, float t, int32_t k, float top_p,
                           uint8_t *keep) {
    float *r = malloc((size_t)n * sizeof *r), *sorted = malloc((size_t)n * sizeof *sorted);
    struct pair *pr = malloc((size_t)n * sizeof *pr);
    float *w = malloc((size_t)n * sizeof *w);
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        r[i] = x[i] / t;
        sorted[i] = r[i];
        if (r[i] > m) m = r[i];
    }
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_float_desc);
    float thr = k > 0 ? sorted[k - 1] : -INFINITY;
    double z = 0.0;
    for (int64_t i = 0; i < n; i++) {
        keep[i] = r[i] >= thr;
        w[i] = keep[i] ? expf(r[i] - m) : 0.0f;
        z += w[i];
        pr[i] = (struct pair){keep[i] ? r[i] : -INFINITY, (int32_t)i};
    }
    qsort(pr, (size_t)n, sizeof *pr, cmp_pair_asc);
    double lim = (double)(1.0f - top_p) * z, run = 0.0;
    for (int64_t j = 0; j + 1 < n; j++) {
        run += w[pr[j].id];
        if (run > lim) break;
        keep[pr[j].id] = 0;
    }
    free(r);
    free(sorted);
    free(pr);
    free(w);
}

struct mask_case {
    float t;
    int32_t k;
    float top_p;
};

/* Each case's mask from the sampler (ids with mass) against reference_mask's whole-row sort. */
static void check_masks(struct sampler *s, const float *x, const struct mask_case *cases,
                        size_t n_cases, double *probs, uint8_t *keep) {
    struct sampling_params p = base_params();
    struct smp_seq q = seq_of(&p, NULL);
    for (size_t c = 0; c < n_cases; c++) {
        p.temperature = cases[c].t, p.top_k = cases[c].k, p.top_p = cases[c].top_p;
        T_EQ(dist(s, x, &q, probs), 0);
        reference_mask(x, V_BIG, cases[c].t, cases[c].k, cases[c].top_p, keep);
        int64_t wrong = 0, kept = 0;
        for (int64_t i = 0; i < V_BIG; i++) {
            wrong += (probs[i] > 0.0) != (keep[i] != 0);
            kept += keep[i];
        }
        T_CHECK_(wrong == 0, "case %zu: %lld ids masked differently (reference keeps %lld)", c,
                 (long long)wrong, (long long)kept);
    }
}

static void test_full_vocab(void) {
    struct sampler *s = new_sampler(2, V_BIG);
    if (!s) return;
    float *x = malloc(V_BIG * sizeof *x);
    double *probs = malloc(V_BIG * sizeof *probs);
    uint8_t *keep = malloc(V_BIG);
    struct rng g;
    rng_init(&g, 1234);
    /* A long flat tail, a band of plausible tokens, and ties between them. */
    for (int64_t i = 0; i < V_BIG; i++) x[i] = 6.0f * rng_unit(&g);
    for (int i = 0; i < 300; i++) x[rng_below(&g, V_BIG)] = 12.0f + 4.0f * rng_unit(&g);
    for (int i = 0; i < 20; i++) x[rng_below(&g, V_BIG)] = 14.0f;
    const struct mask_case cases[] = {{1.0f, 50, 1.0f}, {0.7f, 0, 0.9f},     {1.3f, 0, 0.95f},
                                      {0.8f, 40, 0.8f}, {2.0f, 5000, 0.99f}, {1.0f, 1, 1.0f},
                                      {0.5f, 0, 0.3f}};
    check_masks(s, x, cases, sizeof cases / sizeof cases[0], probs, keep);
    struct sampling_params p = base_params();
    struct smp_seq q = seq_of(&p, NULL);
    /* Padding rows past the tokenizer (151665..) are sampled like any other id. */
    x[152000] = 40.0f;
    p.temperature = 0.0f;
    struct smp_out o;
    struct err e = {0};
    T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
    T_EQ(o.token, 152000);
    struct smp_rng r = {7, 0};
    q.rng = &r;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
    T_EQ(o.token, 152000);
    free(x);
    free(probs);
    free(keep);
    smp_free(s);
}

/* Top-p's path for a peaked row (the nucleus among the few largest values): 100 ids tied at
 * exactly 20, five at 22, a flat tail far below; with and without a top-k first (masks against
 * the whole-row sort), and after a min_p that leaves fewer ids than top-p first looks at. */
static void test_top_p_peaked(void) {
    struct sampler *s = new_sampler(1, V_BIG);
    if (!s) return;
    float *x = malloc(V_BIG * sizeof *x);
    double *probs = malloc(V_BIG * sizeof *probs);
    uint8_t *keep = malloc(V_BIG);
    struct rng g;
    rng_init(&g, 99);
    for (int64_t i = 0; i < V_BIG; i++) x[i] = rng_unit(&g);
    for (int i = 0; i < 100; i++) x[(i * 1511 + 7) % V_BIG] = 20.0f;
    for (int i = 0; i < 5; i++) x[(i * 30011 + 3) % V_BIG] = 22.0f;
    const struct mask_case cases[] = {{1.0f, 0, 0.5f},  {1.0f, 0, 0.9f},   {1.0f, 0, 0.99f},
                                      {0.7f, 30, 0.6f}, {1.0f, 200, 0.5f}, {2.0f, 0, 0.95f},
                                      {1.0f, 3, 0.3f}};
    check_masks(s, x, cases, sizeof cases / sizeof cases[0], probs, keep);
    struct sampling_params p = base_params();
    struct smp_seq q = seq_of(&p, NULL);
    /* min_p 0.5 leaves only the five at 22 (the ids at 20 have e^-2 of their weight), fewer
     * finite ids than top-p first looks at. */
    p.temperature = 1.0f, p.top_k = 0, p.min_p = 0.5f, p.top_p = 0.5f;
    T_EQ(dist(s, x, &q, probs), 0);
    int64_t kept = 0;
    for (int64_t i = 0; i < V_BIG; i++) kept += probs[i] > 0.0;
    T_EQ(kept, 3); /* five equal survivors: ascending sums 0.2, 0.4 drop two, 0.6 stops */
    free(x);
    free(probs);
    free(keep);
    smp_free(s);
}

/* Raw logprobs over a full vocabulary (the vector passes): the 20 most likely ids, ties in id
 * order, their logprobs, and the chosen id's logprob and rank, against plain loops. */
static void test_logprobs_full_vocab(void) {
    struct sampler *s = new_sampler(1, V_BIG);
    float *x = malloc(V_BIG * sizeof *x);
    if (!s || !x) {
        smp_free(s);
        free(x);
        return;
    }
    struct rng g;
    rng_init(&g, 5);
    for (int64_t i = 0; i < V_BIG; i++) x[i] = (float)rng_below(&g, 4000) / 256.0f; /* ties */
    for (int i = 0; i < 12; i++) x[(i * 12007 + 5) % V_BIG] = 16.0f; /* tied on top */
    struct sampling_params p = base_params();
    p.temperature = 0.0f;
    p.logprobs = 20;
    struct smp_seq q = seq_of(&p, NULL);
    struct smp_out o;
    struct err e = {0};
    T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
    double m = -INFINITY, z = 0.0;
    for (int64_t i = 0; i < V_BIG; i++) m = x[i] > m ? x[i] : m;
    for (int64_t i = 0; i < V_BIG; i++) z += exp((double)x[i] - m);
    double lse = m + log(z);
    int32_t rank = 0;
    for (int64_t i = 0; i < V_BIG; i++) rank += x[i] >= x[o.token];
    T_EQ(o.rank, rank);
    T_NEAR(o.logprob, x[o.token] - lse, 1e-5);
    T_EQ(o.n_top, 20);
    /* the expected list: by value descending, then id ascending */
    int32_t want[20];
    int have = 0;
    for (int64_t i = 0; i < V_BIG; i++) {
        if (have == 20 && !(x[i] > x[want[19]])) continue;
        int j = have < 20 ? have++ : 19;
        while (j > 0 && x[i] > x[want[j - 1]]) want[j] = want[j - 1], j--;
        want[j] = (int32_t)i;
    }
    for (int j = 0; j < 20; j++) {
        T_EQ(o.top_ids[j], want[j]);
        T_NEAR(o.top_logprobs[j], x[want[j]] - lse, 1e-5);
    }
    free(x);
    smp_free(s);
}

/* Chi-square of counts against probabilities over n cells. */
static double chi2(const int *count, const double *pr, int n, int draws) {
    double c = 0.0;
    for (int i = 0; i < n; i++) {
        double ex = pr[i] * draws;
        c += (count[i] - ex) * (count[i] - ex) / ex;
    }
    return c;
}

static void softmax_t(const float *x, int n, double t, double *pr) {
    double z = 0.0;
    for (int i = 0; i < n; i++) z += exp(x[i] / t);
    for (int i = 0; i < n; i++) pr[i] = exp(x[i] / t) / z;
}

static void test_temperature_statistics(void) {
    struct sampler *s = new_sampler(1, 5);
    if (!s) return;
    float x[5] = {1.0f, 0.5f, 0.0f, -0.5f, 2.0f};
    struct sampling_params p = base_params();
    p.seed = 20240607;
    p.has_seed = true;
    const float temps[] = {0.7f, 1.0f, 2.0f};
    const int draws = 20000;
    for (int c = 0; c < 3; c++) {
        p.temperature = temps[c];
        struct smp_rng r;
        smp_rng_init(&r, &p, 0, 0);
        struct smp_seq q = seq_of(&p, &r);
        int count[5] = {0};
        struct err e = {0};
        for (int d = 0; d < draws; d++) {
            struct smp_out o;
            if (smp_sample(s, x, 1, &q, &o, &e) != 0 || o.token < 0 || o.token > 4) break;
            count[o.token]++;
        }
        T_EQ(r.n_sampled, draws);
        double want[5], other[5];
        softmax_t(x, 5, temps[c], want);
        /* 4 degrees of freedom: P(chi2 > 18.5) = 0.001 for a correct sampler. */
        double c_ok = chi2(count, want, 5, draws);
        T_CHECK_(c_ok < 18.5, "t=%g: chi-square %.2f against softmax(x/t)", (double)temps[c], c_ok);
        /* The test has power: a sampler ignoring the temperature (or squaring it) is far off. */
        softmax_t(x, 5, temps[c] == 1.0f ? 0.8 : 1.0, other);
        double c_bad = chi2(count, other, 5, draws);
        T_CHECK_(c_bad > 100.0, "t=%g: chi-square %.2f against a wrong temperature",
                 (double)temps[c], c_bad);
    }
    smp_free(s);
}

static void test_penalties(void) {
    struct sampler *s = new_sampler(1, 6);
    if (!s) return;
    float x[6] = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 1.0f};
    int32_t prompt[3] = {0, 1, 1}, output[3] = {3, 3, 2};
    struct sampling_params p = base_params();
    p.repetition_penalty = 2.0f;
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;
    struct smp_seq q = seq_of(&p, NULL);
    q.prompt_ids = prompt;
    q.n_prompt = 3;
    q.output_ids = output;
    q.n_output = 3;
    /* repetition over prompt+output {0,1,2,3}: 2/2=1, -1*2=-2, 0.5/2=0.25, 3/2=1.5;
     * frequency and presence over output only: id3 1.5-0.5*2-0.25 = 0.25, id2 0.25-0.5-0.25
     * = -0.5; id1 (prompt only) gets no frequency/presence penalty. */
    const float want[6] = {1.0f, -2.0f, -0.5f, 0.25f, -2.0f, 1.0f};
    double probs[6];
    T_EQ(dist(s, x, &q, probs), 0);
    for (int i = 1; i < 6; i++) T_NEAR(log(probs[i] / probs[0]), want[i] - want[0], 1e-6);
    struct smp_out o;
    struct err e = {0};
    p.temperature = 0.0f;
    T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
    T_EQ(o.token, 0); /* ids 0 and 5 tie at 1.0 after the penalties */
    /* Without penalties id 3 wins. */
    p.repetition_penalty = 1.0f;
    p.frequency_penalty = 0.0f;
    p.presence_penalty = 0.0f;
    T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
    T_EQ(o.token, 3);
    /* Out-of-vocabulary ids in the lists are ignored, not dereferenced. */
    int32_t bad[3] = {-5, 6, 1 << 30};
    q.prompt_ids = bad;
    q.output_ids = bad;
    p.repetition_penalty = 1.5f;
    p.frequency_penalty = 1.0f;
    T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
    T_EQ(o.token, 3);
    smp_free(s);
}

static void test_logit_bias(void) {
    struct sampler *s = new_sampler(1, 6);
    if (!s) return;
    float x[6] = {1.0f, 0.0f, 3.0f, 0.5f, -1.0f, 2.0f};
    struct sampling_params p = base_params();
    p.temperature = 0.0f;
    struct smp_seq q = seq_of(&p, NULL);
    struct smp_out o;
    struct err e = {0};
    p.logit_bias[0] = (struct logit_bias){4, 10.0f};
    p.n_logit_bias = 1;
    T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
    T_EQ(o.token, 4);
    p.logit_bias[0] = (struct logit_bias){2, -100.0f};
    T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
    T_EQ(o.token, 5);
    /* vLLM adds the bias before the repetition penalty: (1 + 1) / 2 = 1, not 1/2 + 1. */
    int32_t prompt[1] = {0};
    q.prompt_ids = prompt;
    q.n_prompt = 1;
    p.repetition_penalty = 2.0f;
    p.logit_bias[0] = (struct logit_bias){0, 1.0f};
    p.temperature = 1.0f;
    double probs[6];
    T_EQ(dist(s, x, &q, probs), 0);
    T_NEAR(log(probs[0] / probs[1]), 1.0, 1e-6);
    /* A bias on an id outside the vocabulary fails that sequence. */
    p.logit_bias[0] = (struct logit_bias){6, 1.0f};
    p.temperature = 0.0f;
    T_FAILS(smp_sample(s, x, 1, &q, &o, &e), VELA_EINVAL, &e);
    T_EQ(o.rc, VELA_EINVAL);
    smp_free(s);
}

static void test_min_tokens(void) {
    struct sampler *s = new_sampler(1, 6);
    if (!s) return;
    float x[6] = {0.0f, 1.0f, 0.5f, 2.0f, 4.0f, 5.0f};
    int32_t out[3] = {1, 2, 3};
    struct sampling_params p = base_params();
    p.temperature = 0.0f;
    p.eos_token_ids[0] = 5;
    p.n_eos_token_ids = 1;
    p.stop_token_ids[0] = 4;
    p.n_stop_token_ids = 1;
    p.min_tokens = 2;
    struct smp_seq q = seq_of(&p, NULL);
    q.output_ids = out;
    struct smp_out o;
    struct err e = {0};
    q.n_output = 1; /* below min_tokens: eos (5) and stop id (4) are masked */
    T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
    T_EQ(o.token, 3);
    p.ignore_eos = true; /* vLLM still masks eos for min_tokens */
    T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
    T_EQ(o.token, 3);
    q.n_output = 2; /* reached */
    T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
    T_EQ(o.token, 5);
    /* Masked ids get no probability when sampling either. */
    q.n_output = 0;
    p.temperature = 1.0f;
    double probs[6];
    T_EQ(dist(s, x, &q, probs), 0);
    T_NEAR(probs[5], 0.0, 0.0);
    T_NEAR(probs[4], 0.0, 0.0);
    T_NEAR(probs[3], exp(2.0) / (1 + exp(1.0) + exp(0.5) + exp(2.0)), 1e-6);
    /* A vocabulary of stop ids only: nothing left to sample is an error, not a crash. */
    struct sampler *s2 = new_sampler(1, 2);
    if (s2) {
        p.eos_token_ids[1] = 0;
        p.n_eos_token_ids = 2;
        p.stop_token_ids[0] = 1;
        struct smp_rng r = {1, 0};
        q.rng = &r;
        T_FAILS(smp_sample(s2, x, 1, &q, &o, &e), VELA_EINVAL, &e);
        p.temperature = 0.0f;
        T_FAILS(smp_sample(s2, x, 1, &q, &o, &e), VELA_EINVAL, &e);
        T_EQ(r.n_sampled, 0); /* failures do not advance the stream */
        smp_free(s2);
    }
    smp_free(s);
}

static void test_logprobs(void) {
    struct sampler *s = new_sampler(1, 7);
    if (!s) return;
    float x[7] = {0.3f, 2.5f, -1.0f, 2.5f, 1.75f, -3.0f, 0.9f};
    double lse = 0.0;
    for (int i = 0; i < 7; i++) lse += exp((double)x[i]);
    lse = log(lse);
    struct sampling_params p = base_params();
    p.temperature = 0.0f;
    p.logprobs = 3;
    int32_t prompt[2] = {1, 3};
    struct smp_seq q = seq_of(&p, NULL);
    q.prompt_ids = prompt;
    q.n_prompt = 2;
    p.repetition_penalty = 3.0f; /* moves the argmax to id 4 but not the raw logprobs */
    struct smp_out o;
    struct err e = {0};
    T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
    T_EQ(o.token, 4);
    T_NEAR(o.logprob, x[4] - lse, 1e-5);
    T_EQ(o.rank, 3); /* two raw logits above it */
    T_EQ(o.n_top, 3);
    T_EQ(o.top_ids[0], 1); /* tie at 2.5: lower id first */
    T_EQ(o.top_ids[1], 3);
    T_EQ(o.top_ids[2], 4);
    for (int j = 0; j < 3; j++) T_NEAR(o.top_logprobs[j], x[o.top_ids[j]] - lse, 1e-5);
    /* Temperature does not change them either (raw_logprobs mode). */
    p.repetition_penalty = 1.0f;
    p.temperature = 0.25f;
    p.logprobs = 0; /* only the chosen token */
    struct smp_rng r = {99, 0};
    q.rng = &r;
    T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
    T_EQ(o.n_top, 0);
    T_NEAR(o.logprob, x[o.token] - lse, 1e-5);
    /* More than V requested: all of them, in order. */
    struct sampler *s3 = new_sampler(1, 3);
    if (s3) {
        p.logprobs = 20;
        T_RC(smp_sample(s3, x, 1, &q, &o, &e), &e);
        T_EQ(o.n_top, 3);
        T_EQ(o.top_ids[0], 1);
        T_EQ(o.top_ids[1], 0);
        T_EQ(o.top_ids[2], 2);
        double z = log(exp(0.3) + exp(2.5) + exp(-1.0));
        T_NEAR(o.top_logprobs[2], -1.0 - z, 1e-5);
        smp_free(s3);
    }
    p.logprobs = -1; /* not requested: nothing filled */
    T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
    T_EQ(o.n_top, 0);
    smp_free(s);
}

/* The tokens request 'a' samples alone, and placed among other sequences in larger batches. */
static void test_reproducible(void) {
    enum { V = 64, STEPS = 40 };
    struct sampler *s = new_sampler(8, V);
    if (!s) return;
    float rows[8 * V];
    struct rng g;
    rng_init(&g, 55);
    for (int i = 0; i < 8 * V; i++) rows[i] = 3.0f * rng_unit(&g);
    struct sampling_params pa = base_params(), pb = base_params();
    pa.seed = 42;
    pa.has_seed = true;
    pa.temperature = 0.9f;
    pa.top_p = 0.95f;
    pb.temperature = 1.5f;
    pb.top_k = 10;
    int32_t alone[STEPS], batched[STEPS], batched3[STEPS];
    struct err e = {0};
    struct smp_rng ra;
    smp_rng_init(&ra, &pa, 1, 1);
    for (int t = 0; t < STEPS; t++) {
        struct smp_seq q = seq_of(&pa, &ra);
        struct smp_out o;
        T_RC(smp_sample(s, rows, 1, &q, &o, &e), &e);
        alone[t] = o.token;
    }
    /* Batch of 5: 'a' in position 3, its logits row copied there. */
    float batch[5 * V];
    memcpy(batch, rows + V, sizeof batch);
    memcpy(batch + 3 * V, rows, V * sizeof *rows);
    struct smp_rng ra2, rb[4];
    smp_rng_init(&ra2, &pa, 999, 7); /* engine seed and key do not matter with a seed */
    for (int i = 0; i < 4; i++) smp_rng_init(&rb[i], &pb, 3, (uint64_t)i);
    for (int t = 0; t < STEPS; t++) {
        struct smp_seq qs[5];
        for (int i = 0, j = 0; i < 5; i++)
            qs[i] = i == 3 ? seq_of(&pa, &ra2) : seq_of(&pb, &rb[j++]);
        struct smp_out os[5];
        T_RC(smp_sample(s, batch, 5, qs, os, &e), &e);
        batched[t] = os[3].token;
    }
    /* Batch of 2, 'a' first. */
    struct smp_rng ra3;
    smp_rng_init(&ra3, &pa, 0, 0);
    for (int t = 0; t < STEPS; t++) {
        struct smp_seq qs[2] = {seq_of(&pa, &ra3), seq_of(&pb, &rb[0])};
        struct smp_out os[2];
        T_RC(smp_sample(s, rows, 2, qs, os, &e), &e);
        batched3[t] = os[0].token;
    }
    int same = 0, same3 = 0, distinct = 0;
    for (int t = 0; t < STEPS; t++) {
        same += alone[t] == batched[t];
        same3 += alone[t] == batched3[t];
        distinct += alone[t] != alone[0];
    }
    T_EQ(same, STEPS);
    T_EQ(same3, STEPS);
    T_OK(distinct > 0); /* it really samples */
    /* Without a seed the stream comes from (engine seed, request key): same pair, same tokens;
     * another key, another stream. */
    pa.has_seed = false;
    struct smp_rng r1, r2, r3;
    smp_rng_init(&r1, &pa, 5, 100);
    smp_rng_init(&r2, &pa, 5, 100);
    smp_rng_init(&r3, &pa, 5, 101);
    int eq12 = 0, eq13 = 0;
    for (int t = 0; t < STEPS; t++) {
        struct smp_seq qs[3] = {seq_of(&pa, &r1), seq_of(&pa, &r2), seq_of(&pa, &r3)};
        struct smp_out os[3];
        float three[3 * V];
        for (int i = 0; i < 3; i++) memcpy(three + i * V, rows, V * sizeof *rows);
        T_RC(smp_sample(s, three, 3, qs, os, &e), &e);
        eq12 += os[0].token == os[1].token;
        eq13 += os[0].token == os[2].token;
    }
    T_EQ(eq12, STEPS);
    T_OK(eq13 < STEPS);
    smp_free(s);
}

static void test_non_finite(void) {
    struct sampler *s = new_sampler(3, 4);
    if (!s) return;
    float x[12] = {0.0f, 1.0f, 2.0f, 3.0f, 0.0f, NAN, 1.0f, 1.0f, 3.0f, 2.0f, 1.0f, 0.0f};
    struct sampling_params p = base_params();
    p.temperature = 0.0f;
    struct smp_seq qs[3] = {seq_of(&p, NULL), seq_of(&p, NULL), seq_of(&p, NULL)};
    struct smp_out os[3];
    struct err e = {0};
    int rc = smp_sample(s, x, 3, qs, os, &e);
    T_FAILS(rc, VELA_EINTERNAL, &e);
    T_OK(strstr(e.msg, "sequence 1") != NULL && strstr(e.msg, "NaN") != NULL);
    T_EQ(os[0].rc, 0);
    T_EQ(os[0].token, 3);
    T_EQ(os[1].rc, VELA_EINTERNAL);
    T_EQ(os[1].token, -1);
    T_EQ(os[2].rc, 0);
    T_EQ(os[2].token, 0);
    x[5] = 1.0f;
    x[9] = INFINITY;
    x[1] = -INFINITY;
    rc = smp_sample(s, x, 3, qs, os, &e);
    T_FAILS(rc, VELA_EINTERNAL, &e);
    T_OK(strstr(e.msg, "sequence 0") != NULL);
    T_EQ(os[0].rc, VELA_EINTERNAL);
    T_EQ(os[1].token, 1);
    T_EQ(os[2].rc, VELA_EINTERNAL);
    double probs[4];
    T_EQ(dist(s, x + 8, &qs[2], probs), VELA_EINTERNAL);
    smp_free(s);
}

/* ---- cases computed by tools/sampler_reference.py with torch, the way vLLM's ops do ---- */

struct cursor {
    const char *p, *end;
    int ok;
};

static void take(struct cursor *c, void *dst, size_t n) {
    if (!c->ok || (size_t)(c->end - c->p) < n) {
        c->ok = 0;
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, c->p, n); /* the fixture is little-endian, as every host we build for */
    c->p += n;
}

static int32_t take_i32(struct cursor *c) {
    int32_t v;
    take(c, &v, sizeof v);
    return v;
}

static float take_f32(struct cursor *c) {
    float v;
    take(c, &v, sizeof v);
    return v;
}

/* One case: params, token lists and logits, then the reference distribution and raw top-5. */
static void check_fixture_case(struct sampler *s, struct cursor *c, int idx, int32_t V) {
    struct sampling_params p = base_params();
    p.temperature = take_f32(c);
    p.top_k = take_i32(c);
    p.top_p = take_f32(c);
    p.min_p = take_f32(c);
    p.repetition_penalty = take_f32(c);
    p.frequency_penalty = take_f32(c);
    p.presence_penalty = take_f32(c);
    p.min_tokens = take_i32(c);
    p.n_logit_bias = take_i32(c);
    for (int32_t i = 0; i < p.n_logit_bias && i < VELA_SP_MAX_LOGIT_BIAS; i++) {
        p.logit_bias[i].token_id = take_i32(c);
        p.logit_bias[i].bias = take_f32(c);
    }
    p.n_stop_token_ids = take_i32(c);
    for (int32_t i = 0; i < p.n_stop_token_ids && i < VELA_SP_MAX_STOP_TOKEN_IDS; i++)
        p.stop_token_ids[i] = take_i32(c);
    int32_t n_prompt = take_i32(c), n_output = take_i32(c);
    if (!c->ok || n_prompt < 0 || n_output < 0 || n_prompt + n_output > 4096) {
        c->ok = 0;
        return;
    }
    int32_t ids[4096];
    take(c, ids, (size_t)(n_prompt + n_output) * sizeof *ids);
    float *x = malloc((size_t)V * sizeof *x), *ref = malloc((size_t)V * sizeof *ref);
    double *probs = malloc((size_t)V * sizeof *probs);
    take(c, x, (size_t)V * sizeof *x);
    take(c, ref, (size_t)V * sizeof *ref);
    int32_t top_ids[5];
    float top_lp[5];
    take(c, top_ids, sizeof top_ids);
    take(c, top_lp, sizeof top_lp);
    if (c->ok) {
        struct smp_seq q = seq_of(&p, NULL);
        q.prompt_ids = ids;
        q.n_prompt = n_prompt;
        q.output_ids = ids + n_prompt;
        q.n_output = n_output;
        T_EQ(dist(s, x, &q, probs), 0);
        int wrong = 0;
        double worst = 0.0;
        for (int32_t i = 0; i < V; i++) {
            wrong += (probs[i] > 0.0) != (ref[i] > 0.0f);
            worst = fmax(worst, fabs(probs[i] - ref[i]));
        }
        T_CHECK_(wrong == 0 && worst <= 1e-6,
                 "case %d (t=%g k=%d p=%g min_p=%g): %d ids masked differently, max diff %.3g", idx,
                 (double)p.temperature, p.top_k, (double)p.top_p, (double)p.min_p, wrong, worst);
        struct smp_out o;
        struct err e = {0};
        struct smp_rng r = {(uint64_t)idx, 0};
        q.rng = &r;
        p.logprobs = 5;
        T_RC(smp_sample(s, x, 1, &q, &o, &e), &e);
        T_OK(o.token >= 0 && o.token < V && ref[o.token] > 0.0f);
        for (int j = 0; j < 5 && o.n_top == 5; j++) {
            T_NEAR(o.top_logprobs[j], top_lp[j], 1e-5);
            T_OK(x[o.top_ids[j]] == x[top_ids[j]]); /* same value; torch orders ties its own way */
        }
    }
    free(x);
    free(ref);
    free(probs);
}

static void test_vllm_fixture(void) {
    const char *path = t_src("tests/fixtures/sampler/vllm_cases.bin");
    char *buf = NULL;
    size_t len = 0;
    struct err e = {0};
    int rc = file_read_all(path, 1 << 20, &buf, &len, &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    struct cursor c = {buf, buf + len, 1};
    char magic[4];
    take(&c, magic, 4);
    int32_t version = take_i32(&c), n = take_i32(&c), V = take_i32(&c);
    T_OK(memcmp(magic, "VSMP", 4) == 0);
    T_EQ(version, 1);
    struct sampler *s = V > 0 && V <= 4096 ? new_sampler(1, V) : NULL;
    for (int i = 0; s && i < n && c.ok; i++) check_fixture_case(s, &c, i, V);
    T_OK(c.ok && c.p == c.end); /* every case read, nothing left over */
    T_OK(n >= 30);
    smp_free(s);
    free(buf);
}

static void test_bad_arguments(void) {
    struct sampler *s = NULL;
    struct err e = {0};
    T_FAILS(smp_new(&s, 0, 10, &e), VELA_EINVAL, &e);
    T_FAILS(smp_new(&s, 1, 0, &e), VELA_EINVAL, &e);
    T_FAILS(smp_new(&s, 1, (int64_t)VELA_CFG_MAX_VOCAB + 1, &e), VELA_EINVAL, &e);
    smp_free(NULL);
    s = new_sampler(2, 4);
    if (!s) return;
    T_EQ(smp_vocab(s), 4);
    float x[12] = {0};
    struct sampling_params p = base_params();
    struct smp_seq qs[3] = {seq_of(&p, NULL), seq_of(&p, NULL), seq_of(&p, NULL)};
    struct smp_out os[3];
    T_FAILS(smp_sample(s, x, 3, qs, os, &e), VELA_EINVAL, &e); /* above max_batch */
    T_FAILS(smp_sample(s, NULL, 1, qs, os, &e), VELA_EINVAL, &e);
    T_RC(smp_sample(s, x, 0, qs, os, &e), &e);
    /* Values that never pass sp_validate are refused per sequence. */
    p.temperature = 0.0f;
    p.top_p = 0.0f;
    T_FAILS(smp_sample(s, x, 1, qs, os, &e), VELA_EINVAL, &e);
    p.top_p = 1.0f;
    p.repetition_penalty = NAN;
    T_FAILS(smp_sample(s, x, 1, qs, os, &e), VELA_EINVAL, &e);
    smp_free(s);
}

int main(void) {
    T_RUN(test_greedy);
    T_RUN(test_top_k);
    T_RUN(test_top_p);
    T_RUN(test_min_p_and_combined);
    T_RUN(test_full_vocab);
    T_RUN(test_top_p_peaked);
    T_RUN(test_logprobs_full_vocab);
    T_RUN(test_temperature_statistics);
    T_RUN(test_penalties);
    T_RUN(test_logit_bias);
    T_RUN(test_min_tokens);
    T_RUN(test_logprobs);
    T_RUN(test_reproducible);
    T_RUN(test_non_finite);
    T_RUN(test_vllm_fixture);
    T_RUN(test_bad_arguments);
    return t_done();
}
