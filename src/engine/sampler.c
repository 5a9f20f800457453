/* sampler: the steps listed in sampler.h, one sequence at a time, on the host.
 *
 * Working memory, sized by the vocabulary V at smp_new and reused for every sequence:
 *   row   (V) float   the sequence's logits as steps 2-9 change them
 *   w     (V) float   exp(row - max) after temperature; 0 where a mask dropped the id
 *   count (V) int32   occurrence counts of output ids (frequency / presence penalties)
 *   seen  (V) uint8   the repetition penalty's "already penalized" marks
 *   cand, tmp (V) pairs (order key, id) candidates at the top-p boundary, and a sort buffer
 *   hist_n, hist_mass (2^16) histograms over 16 bits of a logit's order key
 *   bsum  (V / 256) the draw's block masses; topk (256) the largest values for a small top-k
 * The passes over a whole row run in sampler_rows.c (vectorized).
 *
 * Invariants:
 *  1. count and seen are all zero between calls: whoever sets entries clears exactly those,
 *     walking the same token lists, so a step costs O(prompt + output), not O(V).
 *  2. After step 9, w[i] == 0 for every dropped id and row[i] == -inf for every id a mask
 *     dropped; the draw looks only at w, so a dropped id is never chosen.
 *  3. The id with the largest processed logit always survives (w == 1): min_p <= 1, top-k keeps
 *     values >= the k-th largest, top-p never drops the largest. So a draw always finds an id.
 *  4. A sequence's result depends only on its logits row, its struct smp_seq and its RNG state.
 *
 * Precision: penalties, bias and temperature are the same float32 operations vLLM performs, in
 * the same order. Probabilities are float32 exponentials (sampler_rows' polynomial, within
 * 1-2 ulp of expf; 0 below -87.33); sums (normalizers, top-p running mass, the inverse CDF) are
 * accumulated in double, the draw's first over blocks of 256 ids. Raw logprobs use a double
 * log-sum-exp. So masks agree with vLLM's except where a value sits within a rounding error of a
 * threshold.
 *
 * Engine thread only (one sampler per thread). */
#include "engine/sampler.h"

#include "engine/sampler_rows.h"
#include "util/rng.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define SMP_HIST_BITS 16
#define SMP_HIST_N    (1u << SMP_HIST_BITS)
/* Names the sampling stream inside a request's seed, so other users of the same seed (none
 * today) would draw independent numbers. */
#define SMP_RNG_STREAM 0x73616d706c650001ull
/* Top-p drops whole histogram buckets only while their mass stays this far (relative) under
 * the limit, so rounding in the bucket sums can never drop an id the exact rule would keep. */
#define SMP_TOP_P_SLACK 1e-9

struct cand {
    uint32_t key; /* order_key of the logit */
    int32_t id;
};

struct sampler {
    int32_t max_batch;
    int64_t vocab;
    float *row;        /* (vocab) */
    float *w;          /* (vocab) */
    int32_t *count;    /* (vocab), all zero between calls */
    uint8_t *seen;     /* (vocab), all zero between calls */
    struct cand *cand; /* (vocab) */
    struct cand *tmp;  /* (vocab) the radix sort's second buffer */
    uint32_t *hist_n;  /* (SMP_HIST_N) */
    double *hist_mass; /* (SMP_HIST_N) */
    double *bsum;      /* (vocab / SMR_BLOCK, rounded up) the draw's block masses */
    float *topk;       /* (SMR_TOPK_MAX) the k largest values, for small top-k */
};

/* ------------------------------------------------------------------ lifetime */

uint64_t smp_rng_key(const struct smp_rng *r) {
    return rng_hash(r->seed, SMP_RNG_STREAM, r->n_sampled);
}

void smp_rng_init(struct smp_rng *r, const struct sampling_params *p, uint64_t engine_seed,
                  uint64_t request_key) {
    r->seed = p->has_seed ? p->seed : rng_stream(engine_seed, request_key);
    r->n_sampled = 0;
}

int smp_new(struct sampler **out, int32_t max_batch, int64_t vocab, struct err *e) {
    if (max_batch < 1)
        return err_set(e, VELA_EINVAL, "sampler: max_batch must be >= 1, got %d", max_batch);
    if (vocab < 1 || vocab > VELA_CFG_MAX_VOCAB)
        return err_set(e, VELA_EINVAL, "sampler: vocab %lld outside [1, %d]", (long long)vocab,
                       VELA_CFG_MAX_VOCAB);
    struct sampler *s = calloc(1, sizeof *s);
    if (!s) return err_set(e, VELA_ENOMEM, "sampler: out of memory");
    size_t n = (size_t)vocab; /* vocab <= 2^22: no product below overflows */
    s->max_batch = max_batch;
    s->vocab = vocab;
    s->row = malloc(n * sizeof *s->row);
    s->w = malloc(n * sizeof *s->w);
    s->count = calloc(n, sizeof *s->count);
    s->seen = calloc(n, sizeof *s->seen);
    s->cand = malloc(n * sizeof *s->cand);
    s->tmp = malloc(n * sizeof *s->tmp);
    s->hist_n = malloc(SMP_HIST_N * sizeof *s->hist_n);
    s->hist_mass = malloc(SMP_HIST_N * sizeof *s->hist_mass);
    s->bsum = malloc((n + SMR_BLOCK - 1) / SMR_BLOCK * sizeof *s->bsum);
    s->topk = malloc(SMR_TOPK_MAX * sizeof *s->topk);
    if (!s->row || !s->w || !s->count || !s->seen || !s->cand || !s->tmp || !s->hist_n ||
        !s->hist_mass || !s->bsum || !s->topk) {
        smp_free(s);
        return err_set(e, VELA_ENOMEM, "sampler: out of memory for vocab %lld", (long long)vocab);
    }
    *out = s;
    return 0;
}

void smp_free(struct sampler *s) {
    if (!s) return;
    free(s->row);
    free(s->w);
    free(s->count);
    free(s->seen);
    free(s->cand);
    free(s->tmp);
    free(s->hist_n);
    free(s->hist_mass);
    free(s->bsum);
    free(s->topk);
    free(s);
}

int64_t smp_vocab(const struct sampler *s) {
    return s->vocab;
}

/* ------------------------------------------------------------------ checks and step 1 */

/* The params come from the server already validated (sp_validate); these checks keep a bad
 * value from reaching the arithmetic (a NaN temperature, an id outside the row). */
static int check_seq(const struct smp_seq *q, int64_t V, struct err *e) {
    const struct sampling_params *p = q->params;
    if (!p) return err_set(e, VELA_EINVAL, "sampler: no sampling params");
    if (!isfinite(p->temperature) || p->temperature < 0.0f)
        return err_set(e, VELA_EINVAL, "temperature must be >= 0, got %g", (double)p->temperature);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return err_set(e, VELA_EINVAL, "top_p must be in (0, 1], got %g", (double)p->top_p);
    if (p->top_k < -1) return err_set(e, VELA_EINVAL, "top_k must be >= -1, got %d", p->top_k);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return err_set(e, VELA_EINVAL, "min_p must be in [0, 1], got %g", (double)p->min_p);
    if (!isfinite(p->repetition_penalty) || p->repetition_penalty <= 0.0f ||
        !isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return err_set(e, VELA_EINVAL, "penalties must be finite, repetition_penalty > 0");
    if (p->n_logit_bias < 0 || p->n_logit_bias > VELA_SP_MAX_LOGIT_BIAS ||
        p->n_stop_token_ids < 0 || p->n_stop_token_ids > VELA_SP_MAX_STOP_TOKEN_IDS ||
        p->n_eos_token_ids < 0 || p->n_eos_token_ids > VELA_CFG_MAX_EOS_IDS)
        return err_set(e, VELA_EINVAL, "sampler: token list counts out of range");
    for (int32_t i = 0; i < p->n_logit_bias; i++) {
        const struct logit_bias *b = &p->logit_bias[i];
        if (b->token_id < 0 || b->token_id >= V || !isfinite(b->bias))
            return err_set(e, VELA_EINVAL, "logit_bias: token id %d outside vocabulary of %lld",
                           b->token_id, (long long)V);
    }
    if (p->logprobs < -1 || p->logprobs > VELA_SP_MAX_LOGPROBS)
        return err_set(e, VELA_EINVAL, "logprobs must be in [-1, %d], got %d", VELA_SP_MAX_LOGPROBS,
                       p->logprobs);
    if (q->n_prompt < 0 || q->n_output < 0 || (q->n_prompt > 0 && !q->prompt_ids) ||
        (q->n_output > 0 && !q->output_ids))
        return err_set(e, VELA_EINVAL, "sampler: bad token lists");
    return 0;
}

/* Copies the row into s->row, refusing NaN and infinities: a non-finite logit means the
 * forward pass went wrong, and sampling from it would hide that. */
static int load_row(struct sampler *s, const float *x, struct err *e) {
    if (smr_copy_finite(s->row, x, s->vocab)) return 0;
    int64_t i = 0;
    while (isfinite(x[i])) i++;
    return err_set(e, VELA_EINTERNAL, "logits: %s at token %lld", isnan(x[i]) ? "NaN" : "infinity",
                   (long long)i);
}

/* log-sum-exp of the raw row, and its n most likely ids (insertion into a short sorted list:
 * an id enters only when strictly above the current last, so equal logits keep the lower id
 * first). Returns the log-sum-exp. */
static double raw_top(const float *x, int64_t V, int32_t n, struct smp_out *o) {
    float m = smr_max(x, V);
    double lse = (double)m + log(smr_exp_sum(x, m, V)); /* float terms, double sum */

    int32_t have = 0;
    for (int64_t i = 0; i < V && n > 0; i++) {
        if (have == n) { /* the next id strictly above the current last: x >= nextafter(last) */
            float last = x[o->top_ids[have - 1]];
            if (!(last < INFINITY)) break; /* nothing is above +inf (or a NaN) */
            i = smr_find_at_least(x, V, nextafterf(last, INFINITY), i);
            if (i >= V) break;
        }
        int32_t j = have < n ? have++ : n - 1;
        while (j > 0 && x[i] > x[o->top_ids[j - 1]]) {
            o->top_ids[j] = o->top_ids[j - 1];
            j--;
        }
        o->top_ids[j] = (int32_t)i;
    }
    o->n_top = have;
    for (int32_t j = 0; j < have; j++) o->top_logprobs[j] = (float)((double)x[o->top_ids[j]] - lse);
    return lse;
}

void smp_logprobs_of(const float *x, int64_t V, int32_t token, int32_t k, struct smp_logprobs *o) {
    struct smp_out t;
    double lse = raw_top(x, V, k, &t);
    o->logprob = (float)((double)x[token] - lse);
    o->rank = (int32_t)smr_count_at_least(x, V, x[token]);
    o->n_top = t.n_top;
    for (int32_t j = 0; j < VELA_SP_MAX_LOGPROBS; j++) {
        o->top_ids[j] = j < t.n_top ? t.top_ids[j] : -1;
        o->top_logprobs[j] = j < t.n_top ? t.top_logprobs[j] : 0.0f;
    }
}

/* ------------------------------------------------------------------ steps 2-4 */

static void apply_min_tokens(float *row, int64_t V, const struct smp_seq *q) {
    const struct sampling_params *p = q->params;
    if (q->n_output >= p->min_tokens) return;
    /* vLLM masks every stop id (eos ids included even with ignore_eos) until min_tokens. */
    for (int32_t i = 0; i < p->n_eos_token_ids; i++) {
        int32_t id = p->eos_token_ids[i];
        if (id >= 0 && id < V) row[id] = -INFINITY;
    }
    for (int32_t i = 0; i < p->n_stop_token_ids; i++) {
        int32_t id = p->stop_token_ids[i];
        if (id >= 0 && id < V) row[id] = -INFINITY;
    }
}

static void apply_logit_bias(float *row, const struct sampling_params *p) {
    for (int32_t i = 0; i < p->n_logit_bias; i++)
        row[p->logit_bias[i].token_id] += p->logit_bias[i].bias;
}

/* Repetition penalty over each distinct id of prompt + output, once. As vLLM (apply_penalties
 * in model_executor/layers/utils.py): positive logits are multiplied by the float 1/p, the
 * others by p. Ids outside the row are ignored. */
static void apply_repetition(struct sampler *s, const int32_t *ids, int32_t n, float rep) {
    float inv = 1.0f / rep;
    for (int32_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= s->vocab || s->seen[id]) continue;
        s->seen[id] = 1;
        s->row[id] = s->row[id] > 0.0f ? s->row[id] * inv : s->row[id] * rep;
    }
}

static void clear_seen(struct sampler *s, const int32_t *ids, int32_t n) {
    for (int32_t i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < s->vocab) s->seen[ids[i]] = 0;
}

static void apply_penalties(struct sampler *s, const struct smp_seq *q) {
    const struct sampling_params *p = q->params;
    if (p->repetition_penalty != 1.0f) {
        apply_repetition(s, q->prompt_ids, q->n_prompt, p->repetition_penalty);
        apply_repetition(s, q->output_ids, q->n_output, p->repetition_penalty);
        clear_seen(s, q->prompt_ids, q->n_prompt);
        clear_seen(s, q->output_ids, q->n_output);
    }
    if (p->frequency_penalty == 0.0f && p->presence_penalty == 0.0f) return;
    const int32_t *ids = q->output_ids;
    for (int32_t i = 0; i < q->n_output; i++)
        if (ids[i] >= 0 && ids[i] < s->vocab) s->count[ids[i]]++;
    /* Two float32 subtractions, as vLLM: logits -= f * count; logits -= p * (count > 0).
     * Zeroing the count as we go applies each distinct id once and restores invariant 1. */
    for (int32_t i = 0; i < q->n_output; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= s->vocab || s->count[id] == 0) continue;
        s->row[id] -= p->frequency_penalty * (float)s->count[id];
        s->row[id] -= p->presence_penalty;
        s->count[id] = 0;
    }
}

/* ------------------------------------------------------------------ steps 5-9 */

/* Order-preserving map of a non-NaN float onto uint32 (larger float, larger key); -0 and +0
 * share a key, as they compare equal. */
static uint32_t order_key(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if (u == 0x80000000u) u = 0;
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* Sorts s->cand[0..n) by key, ascending and stable (LSD radix, 8 bits a pass through s->tmp):
 * collected in id order, equal logits stay in id order. No allocation, unlike qsort. */
static void sort_cands(struct sampler *s, int64_t n) {
    struct cand *a = s->cand, *b = s->tmp;
    for (int shift = 0; shift < 32; shift += 8) {
        int64_t at[257] = {0};
        for (int64_t i = 0; i < n; i++) at[((a[i].key >> shift) & 255u) + 1]++;
        for (int d = 0; d < 256; d++) at[d + 1] += at[d];
        for (int64_t i = 0; i < n; i++) b[at[(a[i].key >> shift) & 255u]++] = a[i];
        struct cand *t = a;
        a = b;
        b = t;
    }
    /* an even number of passes leaves the result in s->cand */
}

static float float_of_key(uint32_t k) {
    uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* The k-th largest value of row (1 <= k < V), exactly and without sorting: a radix select over
 * the order keys, the top 16 bits first, then the low 16 bits inside the bucket holding it. */
static float kth_largest(struct sampler *s, int64_t k) {
    int64_t V = s->vocab, above = 0;
    memset(s->hist_n, 0, SMP_HIST_N * sizeof *s->hist_n);
    for (int64_t i = 0; i < V; i++) s->hist_n[order_key(s->row[i]) >> SMP_HIST_BITS]++;
    uint32_t hi = SMP_HIST_N - 1;
    while (above + s->hist_n[hi] < k) above += s->hist_n[hi--]; /* counts sum to V > k */
    memset(s->hist_n, 0, SMP_HIST_N * sizeof *s->hist_n);
    for (int64_t i = 0; i < V; i++) {
        uint32_t key = order_key(s->row[i]);
        if (key >> SMP_HIST_BITS == hi) s->hist_n[key & (SMP_HIST_N - 1)]++;
    }
    uint32_t lo = SMP_HIST_N - 1;
    while (above + s->hist_n[lo] < k) above += s->hist_n[lo--];
    return float_of_key(hi << SMP_HIST_BITS | lo);
}

static void drop(struct sampler *s, int64_t i) {
    s->row[i] = -INFINITY;
    s->w[i] = 0.0f;
}

/* Top-p's last step on the n candidates in s->cand: sorted ascending (equal values by id), each
 * but the largest goes while the running mass, from `run` (what was dropped before), stays
 * <= lim. */
static void drop_ascending(struct sampler *s, int64_t n, double run, double lim) {
    sort_cands(s, n);
    for (int64_t j = 0; j + 1 < n; j++) {
        run += s->w[s->cand[j].id];
        if (run > lim) break;
        drop(s, s->cand[j].id);
    }
}

/* Largest values top-p looks at first when no top-k came before it: a trained model's next-token
 * distribution puts nearly all of its mass on fewer ids than this. */
#define SMP_TOP_P_FEW 64

/* apply_top_p when the nucleus boundary lies among the k largest values (a trained model's
 * peaked distribution, or a top-k of at most k applied first): the ids below the k-th largest
 * value go in one pass when their mass stays under the limit (with the histogram's slack), and
 * only the ids at or above it are sorted. false, having changed nothing, when that mass is too
 * large (a flat distribution): the histogram then. */
static bool top_p_few(struct sampler *s, float top_p, int64_t k) {
    int64_t V = s->vocab;
    if (V <= 4 * SMR_TOPK_MAX || k < 1 || k > SMR_TOPK_MAX) return false;
    double lim = (double)(1.0f - top_p) * smr_block_sums(s->w, V, s->bsum);
    float thr = smr_kth_largest(s->row, V, k, s->topk);
    if (thr == -INFINITY) thr = -FLT_MAX; /* fewer survivors than that: all the finite ones */
    double run = smr_mass_below(s->row, s->w, V, thr); /* the mass dropped here */
    if (!(run <= lim * (1.0 - SMP_TOP_P_SLACK))) return false;
    smr_drop_below(s->row, s->w, V, thr, false);
    int64_t n = 0;
    for (int64_t i = smr_find_at_least(s->row, V, thr, 0); i < V;
         i = smr_find_at_least(s->row, V, thr, i + 1))
        s->cand[n++] = (struct cand){order_key(s->row[i]), (int32_t)i};
    drop_ascending(s, n, run, lim);
    return true;
}

/* vLLM's rule on the survivors of min_p and top-k: in ascending order (equal values by id),
 * drop while the running probability sum <= 1 - top_p, never the last (largest). Whole buckets
 * far below the limit are dropped from the histogram; only the rest is sorted. The running sum
 * starts from the exact mass already dropped, in id order, then adds candidates ascending. */
static void apply_top_p(struct sampler *s, float top_p, int32_t top_k) {
    if (top_p_few(s, top_p, top_k > 0 && top_k <= SMR_TOPK_MAX ? top_k : SMP_TOP_P_FEW)) return;
    int64_t V = s->vocab;
    memset(s->hist_mass, 0, SMP_HIST_N * sizeof *s->hist_mass);
    double z = 0.0;
    for (int64_t i = 0; i < V; i++) {
        s->hist_mass[order_key(s->row[i]) >> SMP_HIST_BITS] += s->w[i];
        z += s->w[i];
    }
    /* vLLM compares with the float32 value of 1 - top_p; rounding it the same way matters when
     * equal logits put a running sum exactly on the limit. */
    double lim = (double)(1.0f - top_p) * z;
    double below = 0.0;
    uint32_t cut = 0;
    while (cut < SMP_HIST_N && below + s->hist_mass[cut] <= lim * (1.0 - SMP_TOP_P_SLACK))
        below += s->hist_mass[cut++];
    int64_t n = 0;
    double run = 0.0; /* exact mass of everything dropped so far */
    for (int64_t i = 0; i < V; i++) {
        uint32_t key = order_key(s->row[i]);
        if (key >> SMP_HIST_BITS >= cut) {
            s->cand[n++] = (struct cand){key, (int32_t)i};
        } else {
            run += s->w[i];
            drop(s, i);
        }
    }
    drop_ascending(s, n, run, lim);
}

/* Steps 6-9 on s->row: fills s->w. Fails only when no id is left or the scaled logits
 * overflow (absurd penalties), never for valid params and finite logits. */
static int prepare_random(struct sampler *s, const struct sampling_params *p, struct err *e) {
    int64_t V = s->vocab;
    float m = smr_div_max(s->row, V, p->temperature);
    if (m == -INFINITY) return err_set(e, VELA_EINVAL, "every token is masked (min_tokens)");
    if (isinf(m)) return err_set(e, VELA_EINVAL, "logits overflow after penalties/temperature");
    smr_exp_row(s->row, m, s->w, V);
    if (p->min_p > 0.0f) /* p_i < min_p * p_max  <=>  w_i < min_p, since the max has w == 1 */
        smr_drop_below(s->row, s->w, V, p->min_p, true);
    if (p->top_k > 0 && p->top_k < V) {
        float thr = p->top_k <= SMR_TOPK_MAX ? smr_kth_largest(s->row, V, p->top_k, s->topk)
                                             : kth_largest(s, p->top_k);
        smr_drop_below(s->row, s->w, V, thr, false);
    }
    if (p->top_p < 1.0f) apply_top_p(s, p->top_p, p->top_k);
    return 0;
}

/* Inverse CDF in id order: the first id whose running mass exceeds u * total. The running
 * mass steps over whole blocks (their sums from smr_block_sums) to the block where it crosses
 * the target, then goes id by id from there. */
static int32_t draw(struct sampler *s, double u) {
    const float *w = s->w;
    int64_t V = s->vocab, nb = (V + SMR_BLOCK - 1) / SMR_BLOCK, b = 0;
    double target = u * smr_block_sums(w, V, s->bsum), run = 0.0;
    while (b + 1 < nb && run + s->bsum[b] <= target) run += s->bsum[b++];
    int32_t last = -1;
    for (int64_t i = b * SMR_BLOCK; i < V; i++) {
        if (w[i] <= 0.0f) continue;
        run += w[i];
        last = (int32_t)i;
        if (run > target) return last;
    }
    for (int64_t i = b * SMR_BLOCK - 1; last < 0 && i >= 0; i--) /* all mass before block b */
        if (w[i] > 0.0f) last = (int32_t)i;
    return last; /* u * z rounding up to z leaves the last id with mass */
}

/* Steps 2-9 for one row: *greedy_tok is the argmax for greedy params, else -1 and s->w holds
 * the distribution. */
static int run_steps(struct sampler *s, const float *x, const struct smp_seq *q,
                     int32_t *greedy_tok, struct err *e) {
    const struct sampling_params *p = q->params;
    int rc = load_row(s, x, e);
    if (rc != 0) return rc;
    apply_min_tokens(s->row, s->vocab, q);
    apply_logit_bias(s->row, p);
    apply_penalties(s, q);
    *greedy_tok = -1;
    if (p->temperature < VELA_SP_GREEDY_EPS) {
        *greedy_tok = (int32_t)smr_argmax(s->row, s->vocab);
        if (*greedy_tok < 0) return err_set(e, VELA_EINVAL, "every token is masked (min_tokens)");
        return 0;
    }
    return prepare_random(s, p, e);
}

/* ------------------------------------------------------------------ entry points */

static int sample_one(struct sampler *s, const float *x, const struct smp_seq *q,
                      struct smp_out *o) {
    int64_t V = s->vocab;
    int rc = check_seq(q, V, &o->err);
    if (rc != 0) return rc;
    const struct sampling_params *p = q->params;
    bool greedy = p->temperature < VELA_SP_GREEDY_EPS;
    if (!greedy && !q->rng) return err_set(&o->err, VELA_EINVAL, "sampler: no RNG state");
    int32_t tok;
    rc = run_steps(s, x, q, &tok, &o->err);
    if (rc != 0) return rc;
    if (!greedy) {
        uint64_t h = smp_rng_key(q->rng);
        tok = draw(s, (double)(h >> 11) * 0x1p-53);
    }
    if (q->rng) q->rng->n_sampled++;
    if (p->logprobs >= 0) {
        double lse = raw_top(x, V, p->logprobs, o);
        o->logprob = (float)((double)x[tok] - lse);
        o->rank = (int32_t)smr_count_at_least(x, V, x[tok]);
    }
    o->token = tok;
    return 0;
}

int smp_sample(struct sampler *s, const float *logits, int32_t n_seqs, const struct smp_seq *seqs,
               struct smp_out *outs, struct err *e) {
    if (!s || n_seqs < 0 || n_seqs > s->max_batch || (n_seqs > 0 && (!logits || !seqs || !outs)))
        return err_set(e, VELA_EINVAL, "sampler: bad batch (%d sequences, max %d)", n_seqs,
                       s ? s->max_batch : 0);
    int first_rc = 0;
    for (int32_t i = 0; i < n_seqs; i++) {
        struct smp_out *o = &outs[i];
        o->rc = 0;
        o->token = -1;
        o->logprob = 0.0f;
        o->rank = 0;
        o->n_top = 0;
        err_clear(&o->err);
        o->rc = sample_one(s, logits + (size_t)i * (size_t)s->vocab, &seqs[i], o);
        if (o->rc != 0) {
            o->token = -1;
            if (first_rc == 0) first_rc = err_set(e, o->rc, "sequence %d: %s", i, o->err.msg);
        }
    }
    return first_rc;
}

int smp_distribution(struct sampler *s, const float *logits_row, const struct smp_seq *q,
                     double *probs, struct err *e) {
    int rc = check_seq(q, s->vocab, e);
    int32_t tok = -1;
    if (rc == 0) rc = run_steps(s, logits_row, q, &tok, e);
    if (rc != 0) return rc;
    if (tok >= 0) {
        for (int64_t i = 0; i < s->vocab; i++) probs[i] = 0.0;
        probs[tok] = 1.0;
        return 0;
    }
    double z = 0.0;
    for (int64_t i = 0; i < s->vocab; i++) z += s->w[i];
    for (int64_t i = 0; i < s->vocab; i++) probs[i] = s->w[i] / z;
    return 0;
}
