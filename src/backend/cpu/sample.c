/* sample: be_sample on the CPU (the Gumbel-max draw of backend.h, row by row). The engine's
 * CPU path samples in engine/sampler.c instead, which supports every sampling parameter; this
 * op is the reference a device backend's sampler is checked against. Owner thread only. */
#include "backend/cpu/cpu_ops.h"
#include "util/bf16.h"
#include "util/rng.h"

#include <math.h>

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

int cpu_sample(struct be *b, struct tensor *ids, const struct tensor *logits,
               const struct be_sample_row *rows, struct err *e) {
    (void)b, (void)e;
    int64_t n = be_tensor_rows(logits), V = be_tensor_cols(logits);
    int32_t *out = be_tensor_addr(ids, 0, 0); /* a packed row (checked by backend.c) */
    for (int64_t r = 0; r < n; r++) {
        bool greedy = rows[r].temperature < BE_SAMPLE_GREEDY_EPS;
        float inv_t = greedy ? 1.0f : 1.0f / rows[r].temperature;
        float best = -INFINITY;
        int32_t at = -1;
        for (int64_t i = 0; i < V; i++) {
            float x = logit_at(logits, r, i);
            if (!(x > -INFINITY)) continue; /* -inf and NaN never win */
            float v = greedy ? x : x * inv_t + gumbel(rows[r].key, i);
            if (at < 0 || v > best) best = v, at = (int32_t)i;
        }
        out[r] = at;
    }
    return 0;
}
