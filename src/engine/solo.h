/* solo: runs requests one after another to completion on the caller's thread, through the
 * same scheduler and runner as the engine but without its thread and queues. It is what
 * `vela generate --image` uses, and what the tests drive to compare with the reference.
 *
 * A solo owns a scheduler and a runner over a borrowed lm (and optional vision tower). The
 * scheduler keeps its prefix cache and encoder cache between runs, so a second request with
 * the same prompt prefix or the same image reuses them (solo_result says how much).
 *
 * Ownership: lm and vit are borrowed and must outlive the solo. Thread: the lm's backend
 * thread only. */
#ifndef VELA_ENGINE_SOLO_H
#define VELA_ENGINE_SOLO_H

#include "engine/sched.h"
#include "util/err.h"

#include <stdbool.h>
#include <stdint.h>

struct lm;
struct vit;
struct request;
struct solo;

struct solo_opts {
    struct sched_config sched; /* n_blocks must match the lm; max_num_batched_tokens <= its
                                  max_tokens */
    uint64_t seed;
};

struct solo_result {
    int32_t n_output;      /* tokens generated */
    int32_t finish;        /* enum req_finish */
    int32_t n_hit_tokens;  /* prompt tokens served from the prefix cache */
    int32_t n_steps;       /* steps run (prefill chunks + decode steps) */
    int64_t n_encoded;     /* images encoded by the vision tower during this run */
    int32_t n_prompt_rows; /* prompt rows computed (n_prompt - hits, + recomputation) */
};

/* Called for each generated token, in order; a nonzero return aborts the request. */
typedef int (*solo_token_fn)(void *ctx, int32_t token);

/* vit may be NULL (text only). *out freed with solo_free. */
int solo_new(struct solo **out, struct lm *m, struct vit *v, const struct solo_opts *o,
             struct err *e);
void solo_free(struct solo *s); /* accepts NULL */

/* Runs r (ownership moves in, in every case) until it finishes. first_logits (vocab floats,
 * caller's, may be NULL) receives the logits its first token was sampled from (the last
 * prompt position). res (may be NULL) is filled. Errors: admission refused (VELA_ELIMIT /
 * VELA_EINVAL), a failed step (its code), a non-finite logit (VELA_EINVAL). */
int solo_run(struct solo *s, struct request *r, solo_token_fn fn, void *ctx, float *first_logits,
             struct solo_result *res, struct err *e);

/* A request for the prompt of mm (its expanded ids, image runs and hashes), holding a new
 * reference to mm. params copied. NULL with e filled. */
struct mm_prompt;
struct sampling_params;
struct request *solo_request(uint64_t id, struct mm_prompt *mm, const struct sampling_params *p,
                             struct err *e);

/* The scheduler, read-only (tests: sched_check, pools). */
const struct sched *solo_sched(const struct solo *s);

#endif
