/* params: defaults, generation_config overlay and range checks for struct sampling_params.
 *
 * The ranges are vLLM's SamplingParams._verify_args ones, so a request vLLM rejects we reject
 * with the same field named. Any thread; pure functions on caller-owned values. */
#include "engine/params.h"

#include "model/config.h"

#include <math.h>
#include <string.h>

void sp_defaults(struct sampling_params *p) {
    memset(p, 0, sizeof *p);
    p->temperature = 1.0f;
    p->top_p = 1.0f;
    p->top_k = 0;
    p->min_p = 0.0f;
    p->repetition_penalty = 1.0f;
    p->n = 1;
    p->max_tokens = -1;
    p->min_tokens = 0;
    p->logprobs = -1;
    p->prompt_logprobs = -1;
    p->skip_special_tokens = true;
}

void sp_apply_gen_config(struct sampling_params *p, const struct gen_config *g) {
    int32_t n = g->n_eos_token_ids;
    if (n < 0) n = 0;
    if (n > VELA_CFG_MAX_EOS_IDS) n = VELA_CFG_MAX_EOS_IDS;
    if (n > (int32_t)(sizeof g->eos_token_ids / sizeof g->eos_token_ids[0]))
        n = (int32_t)(sizeof g->eos_token_ids / sizeof g->eos_token_ids[0]);
    for (int32_t i = 0; i < n; i++) p->eos_token_ids[i] = g->eos_token_ids[i];
    p->n_eos_token_ids = n;
    if (!g->present) return;
    /* vLLM's get_diff_sampling_param: only these fields become request defaults; do_sample
     * is not consulted (vLLM ignores it too). */
    p->temperature = (float)g->temperature;
    p->top_p = (float)g->top_p;
    p->top_k = g->top_k;
    p->repetition_penalty = (float)g->repetition_penalty;
}

static bool finite_in(float x, float lo, float hi) {
    return isfinite(x) && x >= lo && x <= hi;
}

int sp_validate(struct sampling_params *p, struct err *e) {
    if (!isfinite(p->temperature) || p->temperature < 0.0f)
        return err_set(e, VELA_EINVAL, "temperature must be >= 0, got %g", (double)p->temperature);
    if (!isfinite(p->top_p) || p->top_p <= 0.0f || p->top_p > 1.0f)
        return err_set(e, VELA_EINVAL, "top_p must be in (0, 1], got %g", (double)p->top_p);
    if (p->top_k == -1) p->top_k = 0;
    if (p->top_k < 0)
        return err_set(e, VELA_EINVAL, "top_k must be -1 (disable) or >= 1, got %d", p->top_k);
    if (!finite_in(p->min_p, 0.0f, 1.0f))
        return err_set(e, VELA_EINVAL, "min_p must be in [0, 1], got %g", (double)p->min_p);
    if (!finite_in(p->presence_penalty, -2.0f, 2.0f))
        return err_set(e, VELA_EINVAL, "presence_penalty must be in [-2, 2], got %g",
                       (double)p->presence_penalty);
    if (!finite_in(p->frequency_penalty, -2.0f, 2.0f))
        return err_set(e, VELA_EINVAL, "frequency_penalty must be in [-2, 2], got %g",
                       (double)p->frequency_penalty);
    if (!isfinite(p->repetition_penalty) || p->repetition_penalty <= 0.0f)
        return err_set(e, VELA_EINVAL, "repetition_penalty must be > 0, got %g",
                       (double)p->repetition_penalty);
    if (p->n_logit_bias < 0 || p->n_logit_bias > VELA_SP_MAX_LOGIT_BIAS)
        return err_set(e, VELA_ELIMIT, "logit_bias has %d entries, limit %d", p->n_logit_bias,
                       VELA_SP_MAX_LOGIT_BIAS);
    for (int32_t i = 0; i < p->n_logit_bias; i++) {
        if (p->logit_bias[i].token_id < 0 || !finite_in(p->logit_bias[i].bias, -100.0f, 100.0f))
            return err_set(e, VELA_EINVAL,
                           "logit_bias entry %d: token %d bias %g (need id >= 0, "
                           "bias in [-100, 100])",
                           i, p->logit_bias[i].token_id, (double)p->logit_bias[i].bias);
    }
    if (p->n < 1 || p->n > VELA_SP_MAX_N)
        return err_set(e, VELA_EINVAL, "n must be in [1, %d], got %d", VELA_SP_MAX_N, p->n);
    if (p->max_tokens != -1 && p->max_tokens < 1)
        return err_set(e, VELA_EINVAL, "max_tokens must be at least 1, got %d", p->max_tokens);
    if (p->min_tokens < 0)
        return err_set(e, VELA_EINVAL, "min_tokens must be >= 0, got %d", p->min_tokens);
    if (p->max_tokens != -1 && p->min_tokens > p->max_tokens)
        return err_set(e, VELA_EINVAL, "min_tokens (%d) must be <= max_tokens (%d)", p->min_tokens,
                       p->max_tokens);
    if (p->n_stop_token_ids < 0 || p->n_stop_token_ids > VELA_SP_MAX_STOP_TOKEN_IDS)
        return err_set(e, VELA_ELIMIT, "stop_token_ids has %d entries, limit %d",
                       p->n_stop_token_ids, VELA_SP_MAX_STOP_TOKEN_IDS);
    for (int32_t i = 0; i < p->n_stop_token_ids; i++)
        if (p->stop_token_ids[i] < 0)
            return err_set(e, VELA_EINVAL, "stop_token_ids[%d] is negative (%d)", i,
                           p->stop_token_ids[i]);
    if (p->n_eos_token_ids < 0 || p->n_eos_token_ids > VELA_CFG_MAX_EOS_IDS)
        return err_set(e, VELA_ELIMIT, "%d eos token ids, limit %d", p->n_eos_token_ids,
                       VELA_CFG_MAX_EOS_IDS);
    if (p->logprobs < -1 || p->logprobs > VELA_SP_MAX_LOGPROBS)
        return err_set(e, VELA_EINVAL, "logprobs must be in [0, %d], got %d", VELA_SP_MAX_LOGPROBS,
                       p->logprobs);
    if (p->prompt_logprobs < -1 || p->prompt_logprobs > VELA_SP_MAX_LOGPROBS)
        return err_set(e, VELA_EINVAL, "prompt_logprobs must be in [0, %d], got %d",
                       VELA_SP_MAX_LOGPROBS, p->prompt_logprobs);
    return 0;
}

bool sp_is_greedy(const struct sampling_params *p) {
    return p->temperature < VELA_SP_GREEDY_EPS || p->top_k == 1;
}
