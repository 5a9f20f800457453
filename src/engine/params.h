/* params: the sampling parameters of one request (OpenAI / vLLM SamplingParams), as a plain
 * value with no pointers, safe to copy between threads (the server fills it, the engine reads
 * it, the sampler applies it).
 *
 * Defaults follow vLLM: sp_defaults() sets the neutral values, sp_apply_gen_config() then
 * overlays the model's generation_config.json (temperature, top_p, top_k,
 * repetition_penalty) and its eos ids, as vLLM does with
 * `generation_config="auto"`; fields a request sets explicitly are written after that.
 * sp_validate() checks ranges and names the offending field (the server maps it to a 400).
 * Any thread. */
#ifndef VELA_ENGINE_PARAMS_H
#define VELA_ENGINE_PARAMS_H

#include "util/err.h"
#include "util/limits.h"

#include <stdbool.h>
#include <stdint.h>

struct gen_config;

struct logit_bias {
    int32_t token_id;
    float bias; /* added to the logit; OpenAI range [-100, 100] */
};

struct sampling_params {
    /* --- token choice --- */
    float temperature; /* 1.0; 0 (or below VELA_SP_GREEDY_EPS) = greedy */
    float top_p;       /* 1.0 = off; in (0, 1] */
    int32_t top_k;     /* 0 = off (vLLM's -1 is accepted by sp_validate and turned into 0) */
    float min_p;       /* 0 = off; in [0, 1] */
    uint64_t seed;     /* per-request RNG seed, valid when has_seed */
    bool has_seed;

    /* --- penalties (vLLM semantics) --- */
    float presence_penalty;   /* 0; in [-2, 2]; subtracted once per generated token id seen */
    float frequency_penalty;  /* 0; in [-2, 2]; subtracted per occurrence in the output */
    float repetition_penalty; /* 1.0 = off; > 0; over prompt AND output ids (spec §7.2) */
    struct logit_bias logit_bias[VELA_SP_MAX_LOGIT_BIAS];
    int32_t n_logit_bias;

    /* --- lengths and stops --- */
    int32_t n;          /* parallel samples sharing the prompt; 1..VELA_SP_MAX_N */
    int32_t max_tokens; /* -1 = until max_model_len; else >= 1 */
    int32_t min_tokens; /* 0; stop and eos ids are ignored until this many tokens exist */
    int32_t stop_token_ids[VELA_SP_MAX_STOP_TOKEN_IDS]; /* from the request */
    int32_t n_stop_token_ids;
    int32_t eos_token_ids[VELA_CFG_MAX_EOS_IDS]; /* from generation_config / config.json */
    int32_t n_eos_token_ids;
    bool ignore_eos; /* keep going past eos ids (stop_token_ids still stop) */

    /* --- outputs --- */
    int32_t logprobs;        /* -1 = none; else top-k logprobs per token, 0..VELA_SP_MAX_LOGPROBS */
    int32_t prompt_logprobs; /* -1 = none; else as logprobs, for the prompt tokens */
    bool skip_special_tokens; /* true: detokenizer drops special tokens */
};

/* Below this temperature the sampler takes the argmax (the Qwen generation_config's 1e-6
 * would otherwise divide logits into overflow). */
#define VELA_SP_GREEDY_EPS 1e-5f

/* Neutral vLLM defaults (no generation_config applied). */
void sp_defaults(struct sampling_params *p);
/* Overlays generation_config.json defaults onto p, as vLLM does: temperature, top_p, top_k,
 * repetition_penalty, and the eos ids. g borrowed; a g with present == false only sets the
 * eos ids it carries (none). */
void sp_apply_gen_config(struct sampling_params *p, const struct gen_config *g);
/* Checks every field's range; the message names the field ("top_p must be in (0, 1], got 0").
 * Normalizes top_k = -1 to 0. Returns 0 or VELA_EINVAL / VELA_ELIMIT. */
int sp_validate(struct sampling_params *p, struct err *e);
/* True when p asks for the argmax (temperature below VELA_SP_GREEDY_EPS or top_k == 1). */
bool sp_is_greedy(const struct sampling_params *p);

#endif
