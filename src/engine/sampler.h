/* sampler: turns one step's logits into one token per sequence, applying every OpenAI / vLLM
 * sampling parameter of struct sampling_params in the order vLLM v1 applies them
 * (vllm/v1/sample/sampler.py), and reports the logprobs vLLM reports by default.
 *
 * Order, per sequence (logits row of length V, float32):
 *   1. raw logprobs  log_softmax of the model's logits, before any processing (vLLM's default
 *                    logprobs_mode "raw_logprobs"): the chosen token's logprob and rank, and the
 *                    `params->logprobs` most likely ids.
 *   2. min_tokens    while n_output < min_tokens, eos and stop_token_ids get -inf.
 *   3. logit_bias    added to the named ids.
 *   4. penalties     repetition (ids in prompt or output: positive logits times 1/p, others
 *                    times p), then frequency (minus f * count) and presence (minus p once), both
 *                    over OUTPUT ids only.
 *   5. greedy        temperature < VELA_SP_GREEDY_EPS: argmax, lowest id on ties; stop here.
 *   6. temperature   logits / t.
 *   7. min_p         drop ids whose probability is below min_p * the largest probability.
 *   8. top_k         keep ids whose logit is >= the k-th largest (ties at the k-th value all stay,
 *                    as in vLLM's apply_top_k_only).
 *   9. top_p         keep the smallest most-likely set whose mass reaches top_p (vLLM's rule:
 *                    sort ascending, drop while the running sum <= 1 - top_p, never drop the
 *                    largest; equal logits are ordered by id, as a stable sort would).
 *  10. draw          one uniform number from the sequence's RNG, inverse CDF over ids in order.
 *
 * docs/api.md §4.5.4 lists min-p last; vLLM's code runs it as a logits processor right after
 * temperature, before top-k/top-p, and that is what we match (the order changes top-p's result).
 *
 * Greedy is decided by temperature alone, as in vLLM: top_k == 1 samples among logits tied at
 * the maximum. min_tokens masks eos ids even under ignore_eos (vLLM's all_stop_token_ids).
 *
 * Reproducibility: the draw for a sequence depends only on its struct smp_rng (seed and number
 * of tokens it has sampled), never on the batch it happens to be in. The same seed repeats
 * vela's tokens, not vLLM's (whose draws come from torch generators).
 *
 * Non-finite logits (NaN, +-Inf) fail that sequence with VELA_EINTERNAL; the others in the batch
 * are still sampled. Ids past the tokenizer (embedding padding rows) are sampled like any other,
 * as the reference does.
 *
 * A struct sampler holds all scratch memory: smp_sample() allocates nothing. Engine thread only:
 * one sampler belongs to one thread. */
#ifndef VELA_ENGINE_SAMPLER_H
#define VELA_ENGINE_SAMPLER_H

#include "engine/params.h"
#include "util/err.h"
#include "util/limits.h"

#include <stdint.h>

struct sampler;

/* Per-request random state, kept with the request. The k-th token a request samples uses
 * draw number k of the counter-based stream named by seed, so replaying a request with the same
 * seed gives the same tokens whatever else runs beside it. */
struct smp_rng {
    uint64_t seed;      /* the request's seed, or one derived by smp_rng_init */
    uint64_t n_sampled; /* tokens sampled so far (advanced by smp_sample on success) */
};

/* One sequence to sample from. Everything is borrowed for the duration of the call. */
struct smp_seq {
    const struct sampling_params *params;
    const int32_t *prompt_ids; /* (n_prompt) for repetition_penalty; may be NULL if n_prompt 0 */
    int32_t n_prompt;
    const int32_t *output_ids; /* (n_output) tokens generated so far */
    int32_t n_output;
    struct smp_rng *rng; /* advanced by one per token sampled; NULL only for greedy params */
};

/* What came out for one sequence. */
struct smp_out {
    int rc;        /* 0, or this sequence's failure (err has the message) */
    int32_t token; /* chosen id, in [0, V); -1 on failure */
    /* Filled when params->logprobs >= 0; raw logprobs (model output, before step 2). */
    float logprob; /* log_softmax of the chosen id */
    int32_t rank;  /* 1-based: number of ids whose logit is >= the chosen one's */
    int32_t n_top; /* min(params->logprobs, V) */
    int32_t top_ids[VELA_SP_MAX_LOGPROBS]; /* most likely first; equal logits: lower id first */
    float top_logprobs[VELA_SP_MAX_LOGPROBS];
    struct err err;
};

/* Raw logprobs of one position (prompt_logprobs): the same figures as smp_out's. */
struct smp_logprobs {
    float logprob; /* log_softmax of the given token */
    int32_t rank;  /* 1-based: ids whose logit is >= the token's */
    int32_t n_top;
    int32_t top_ids[VELA_SP_MAX_LOGPROBS]; /* most likely first; equal logits: lower id first */
    float top_logprobs[VELA_SP_MAX_LOGPROBS];
};

/* Fills *o for token (in [0, V)) and the k (0..VELA_SP_MAX_LOGPROBS) most likely ids of the raw
 * logits row x (V), exactly as smp_sample reports a sampled token's logprobs. Any thread. */
void smp_logprobs_of(const float *x, int64_t V, int32_t token, int32_t k, struct smp_logprobs *o);

/* The random key of r's next draw: what smp_sample uses for it, and the key be_sample takes
 * for the same draw on a backend (a function of (seed, n_sampled) alone). */
uint64_t smp_rng_key(const struct smp_rng *r);

/* Seeds r for a request: params->seed when has_seed, else a value mixed from the engine seed
 * (--seed) and a per-request key (e.g. an FNV hash of the request id and the sample index). */
void smp_rng_init(struct smp_rng *r, const struct sampling_params *p, uint64_t engine_seed,
                  uint64_t request_key);

/* Creates a sampler for batches of up to max_batch rows of vocab logits. *out is the caller's,
 * freed with smp_free. Fails with VELA_EINVAL on bad sizes, VELA_ENOMEM. */
int smp_new(struct sampler **out, int32_t max_batch, int64_t vocab, struct err *e);
void smp_free(struct sampler *s);
int64_t smp_vocab(const struct sampler *s);

/* Samples one token for each of n_seqs sequences; logits is (n_seqs, vocab) row-major and is
 * not modified. outs[i] receives sequence i's result. Returns 0 when every sequence succeeded;
 * otherwise the code of the first failing one, with e naming it (the other outs are valid).
 * Bad arguments (n_seqs outside [0, max_batch], NULL pointers) fail with VELA_EINVAL before any
 * sequence is touched. */
int smp_sample(struct sampler *s, const float *logits, int32_t n_seqs, const struct smp_seq *seqs,
               struct smp_out *outs, struct err *e);

/* The distribution step 10 would draw from, for one sequence: probs[vocab] (caller's) sums to
 * 1, zero where masked; one-hot on the argmax for greedy params. Does not touch q->rng. For
 * tests and debugging: exposes the masks exactly. */
int smp_distribution(struct sampler *s, const float *logits_row, const struct smp_seq *q,
                     double *probs, struct err *e);

#endif
