/* sample: be_sample on the CPU (the Gumbel-max draw of backend.h, row by row, with its top-k,
 * top-p and min-p filters). The engine's CPU path samples in engine/sampler.c instead, which
 * supports every sampling parameter; this op is the reference a device backend's sampler is
 * checked against, so it follows the same steps as the CUDA kernel: thresholds found by a
 * bitwise search over the order-preserving integer keys of the scaled logits, masses summed
 * in double. Owner thread only. */
#include "backend/cpu/cpu_ops.h"
#include "util/bf16.h"
#include "util/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Logit c of row r as FP32. */
static float logit_at(const struct tensor *t, int64_t r, int64_t c) {
    if (t->dtype == BE_BF16) return bf16_to_f32(*(const uint16_t *)be_tensor_addr(t, r, c));
    return *(const float *)be_tensor_addr(t, r, c);
}

/* The standard Gumbel variable of backend.h for element i of stream key, in FP32. */
static float gumbel(uint64_t key, int64_t i) {
    float u = ((float)(rng_at(key, (uint64_t)i) >> 40) + 0.5f) * (1.0f / 16777216.0f);
    return -logf(-logf(u));
}

/* A key that orders like the float (finite values and infinities). */
static uint32_t order_key(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u & 0x80000000u ? ~u : u | 0x80000000u;
}

/* One row's scaled logits z (NaN for the non-finite ones) and what the filters need. */
struct row {
    const float *z;
    int64_t n;
    float zmax;
};

static int64_t count_at_least(const struct row *w, uint32_t t) {
    int64_t c = 0;
    for (int64_t i = 0; i < w->n; i++) c += !isnan(w->z[i]) && order_key(w->z[i]) >= t;
    return c;
}

static double mass_at_least(const struct row *w, uint32_t t) {
    double s = 0.0;
    for (int64_t i = 0; i < w->n; i++)
        if (!isnan(w->z[i]) && order_key(w->z[i]) >= t) s += exp((double)(w->z[i] - w->zmax));
    return s;
}

/* The largest key t >= lo for which keep(t) holds (keep is true at lo and falls with t). */
static uint32_t search(const struct row *w, uint32_t lo, int64_t k, double target) {
    uint32_t res = 0;
    for (int bit = 31; bit >= 0; bit--) {
        uint32_t cand = res | 1u << bit, t = cand > lo ? cand : lo;
        bool keep = k > 0 ? count_at_least(w, t) >= k : mass_at_least(w, t) >= target;
        if (keep) res = cand;
    }
    return res > lo ? res : lo;
}

/* The filtered Gumbel-max draw over w; -1 when nothing is finite. */
static int32_t draw(const struct row *w, const struct be_sample_row *p, int64_t n_finite) {
    uint32_t lo = 0;
    if (p->top_k > 0 && p->top_k < n_finite) lo = search(w, 0, p->top_k, 0.0);
    if (p->top_p > 0.0f && p->top_p < 1.0f)
        lo = search(w, lo, 0, (double)p->top_p * mass_at_least(w, lo));
    float zmin = p->min_p > 0.0f ? w->zmax + logf(p->min_p) : -INFINITY;
    float best = -INFINITY;
    int32_t at = -1;
    for (int64_t i = 0; i < w->n; i++) {
        float z = w->z[i];
        if (isnan(z) || order_key(z) < lo || z < zmin) continue;
        float v = z + gumbel(p->key, i);
        if (at < 0 || v > best) best = v, at = (int32_t)i;
    }
    return at;
}

int cpu_sample(struct be *b, struct tensor *ids, const struct tensor *logits,
               const struct be_sample_row *rows, struct err *e) {
    (void)b;
    int64_t n = be_tensor_rows(logits), V = be_tensor_cols(logits);
    int32_t *out = be_tensor_addr(ids, 0, 0); /* a packed row (checked by backend.c) */
    float *z = malloc((size_t)V * sizeof *z);
    if (!z) return err_set(e, VELA_ENOMEM, "sample: out of memory for a row of %lld", (long long)V);
    for (int64_t r = 0; r < n; r++) {
        bool greedy = rows[r].temperature < BE_SAMPLE_GREEDY_EPS;
        float inv_t = greedy ? 1.0f : 1.0f / rows[r].temperature;
        struct row w = {.z = z, .n = V, .zmax = -INFINITY};
        int64_t n_finite = 0;
        for (int64_t i = 0; i < V; i++) {
            float x = logit_at(logits, r, i);
            z[i] = x > -INFINITY ? x * inv_t : NAN; /* -inf and NaN never win */
            if (!isnan(z[i])) n_finite++, w.zmax = z[i] > w.zmax ? z[i] : w.zmax;
        }
        if (greedy) { /* the lowest index of the largest */
            out[r] = -1;
            for (int64_t i = 0; i < V; i++)
                if (!isnan(z[i]) && (out[r] < 0 || z[i] > z[out[r]])) out[r] = (int32_t)i;
            continue;
        }
        out[r] = n_finite ? draw(&w, &rows[r], n_finite) : -1;
    }
    free(z);
    return 0;
}
