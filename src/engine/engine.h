/* engine: the engine core (vLLM v1's EngineCore busy loop) on its own thread. It owns the
 * scheduler, the runner and (borrowed for its lifetime) the language model, never blocks on
 * I/O, and talks to the rest only through two queues:
 *   in:  eng_submit (a request; ownership moves into the inbox) and eng_abort (an id);
 *   out: batches of token events, one batch per step, readable on eng_event_fd for an event
 *        loop, or with eng_wait_events for a blocking consumer.
 *
 * Events of one request (id, sample index), in order: one per sampled token (token >= 0,
 * finish NONE), the last of which carries finish STOP or LENGTH; or, when cancelled, a final
 * event with finish ABORT and no token. A request that cannot run (refused at submission, a
 * failed forward or a non-finite logit) gets one final event with finish ERROR and a message
 * for the id as a whole, after which none of its samples reports again. Requests with n > 1
 * report each sample separately (index 0..n-1). A request asking for prompt_logprobs gets
 * them on its first token's event (computed over its whole prompt: it reads no prefix cache).
 *
 * Prompt token ids must lie inside the model's vocabulary: the frontend checks them, as vLLM's
 * input processor does. An id outside makes the forward of its step fail, and every request
 * of that step gets an ERROR event (the engine itself goes on).
 *
 * Ids: the caller picks them and keeps them unique for the engine's lifetime (eng_next_id
 * hands out fresh ones); a duplicate of an id the engine still holds is refused with an ERROR
 * event under that id.
 *
 * Threads: eng_submit, eng_abort, eng_take_events, eng_wait_events, eng_stats and
 * eng_event_fd from any thread; eng_new, eng_start, eng_stop, eng_free from the owner (main)
 * thread; eng_step, eng_check and eng_n_live only while the engine thread is not running
 * (tests and benchmarks that drive the loop themselves). */
#ifndef VELA_ENGINE_ENGINE_H
#define VELA_ENGINE_ENGINE_H

#include "engine/params.h"
#include "engine/sampler.h"
#include "engine/sched.h"
#include "util/err.h"
#include "util/limits.h"
#include "util/queue.h"

#include <stdbool.h>
#include <stdint.h>

struct lm;
struct request;
struct engine;
struct gen_config;
struct model_config;

enum eng_finish {
    ENG_FINISH_NONE = 0,
    ENG_FINISH_STOP,   /* eos or a stop token id */
    ENG_FINISH_LENGTH, /* max_tokens or max_model_len */
    ENG_FINISH_ABORT,  /* eng_abort */
    ENG_FINISH_ERROR,  /* refused or failed; see error */
};

struct eng_event {
    uint64_t id;
    int32_t index;    /* sample index */
    int32_t token;    /* the new token id, -1 when the event only finishes the request */
    int32_t n_output; /* tokens this sample generated so far, this one included */
    int32_t n_prompt; /* prompt tokens */
    int32_t n_cached; /* prompt tokens served from the prefix cache at (last) admission */
    enum eng_finish finish;
    int32_t stop_token; /* ENG_FINISH_STOP: the id that stopped it, else -1 */
    const char *error;  /* ENG_FINISH_ERROR: the message (inside the batch), else NULL */
    /* logprobs (raw, before sampling params) when the request asked for them */
    bool has_logprobs;
    float logprob;
    int32_t rank;
    int32_t n_top;
    int32_t top_ids[VELA_SP_MAX_LOGPROBS];
    float top_logprobs[VELA_SP_MAX_LOGPROBS];
    /* prompt_logprobs (vLLM extension), on the first token's event of a request that asked:
     * entry p is prompt token p + 1's (vLLM's None for token 0 is not stored), n_prompt - 1
     * entries inside the batch; else NULL and 0 */
    const struct smp_logprobs *prompt_logprobs;
    int32_t n_prompt_logprobs;
};

/* One step's events, as one allocation (freed with eng_events_free). */
struct eng_events {
    struct queue_node node; /* first member: batches chain through node.next */
    int32_t n;
    int64_t step;         /* engine step that produced them */
    struct eng_event *ev; /* (n), inside this allocation */
};

static inline struct eng_events *eng_events_next(const struct eng_events *b) {
    return (struct eng_events *)(void *)b->node.next;
}
void eng_events_free(struct eng_events *b);     /* one batch; accepts NULL */
void eng_events_free_all(struct eng_events *b); /* a whole chain */

struct eng_config {
    struct sched_config sched; /* n_blocks, max_num_seqs, ... (n_blocks must match the lm) */
    uint64_t seed;             /* --seed: for requests without their own */
};

struct eng_stats {
    int64_t n_steps, n_step_tokens, n_sampled; /* steps run, tokens computed, tokens sampled */
    int64_t n_failed_steps;
    double t_prepare, t_forward, t_sample; /* seconds in the runner's parts (runner_times) */
    struct sched_stats sched; /* queues, blocks, preemptions, prefix-cache hit counts */
};

/* Sampling defaults for a model, as vLLM's generation_config="auto": sp_defaults, then
 * generation_config.json (g), then config.json's eos ids when g names none. Both borrowed. */
void eng_sampling_defaults(struct sampling_params *p, const struct gen_config *g,
                           const struct model_config *c);

/* Builds the engine over lm m (borrowed: it must outlive the engine and no other thread may
 * use it, or its backend, until eng_free). The scheduler, runner, step arena and queues are
 * allocated here. *out freed with eng_free. */
int eng_new(struct engine **out, struct lm *m, const struct eng_config *c, struct err *e);
/* Attaches the vision tower (borrowed, like m; on m's backend) so requests with images run
 * (req->mm); before eng_start only. VELA_EINVAL once started, VELA_ENOMEM. */
struct vit;
int eng_set_vit(struct engine *en, struct vit *v, struct err *e);
/* Starts the engine thread. VELA_EINVAL if already started, VELA_ENOMEM. */
int eng_start(struct engine *en, struct err *e);
/* Stops the thread after its current step and joins it; requests still held are dropped
 * without events. Accepts an engine that never started. */
void eng_stop(struct engine *en);
void eng_free(struct engine *en); /* stops first; frees undelivered events; accepts NULL */

/* A fresh id (any thread). */
uint64_t eng_next_id(struct engine *en);
/* Moves r into the inbox: ownership passes to the engine in every case (on failure r is
 * freed here). VELA_EINVAL once the engine is stopping, VELA_ENOMEM. Admission problems
 * (too long, bad parameters, duplicate id) come back later as an ERROR event. */
int eng_submit(struct engine *en, struct request *r, struct err *e);
/* Cancels every sample of request id at the next step boundary (its blocks return to the
 * pool there). Unknown or finished ids are ignored. VELA_EINVAL when stopping, VELA_ENOMEM. */
int eng_abort(struct engine *en, uint64_t id, struct err *e);

/* All event batches published so far (FIFO chain, NULL when none), without blocking. */
struct eng_events *eng_take_events(struct engine *en);
/* The same, blocking up to timeout_ms (< 0: forever) for the first batch. */
struct eng_events *eng_wait_events(struct engine *en, int64_t timeout_ms);
/* Readable while event batches are waiting. */
int eng_event_fd(const struct engine *en);

/* A snapshot of the counters, updated after every step (any thread). */
void eng_stats(struct engine *en, struct eng_stats *st);

/* One iteration of the loop on the caller's thread: inbox, schedule, run, update, publish.
 * *idle is set when nothing could run (the thread would wait for its inbox). Returns 0, or the
 * code of a step that failed (its requests got ERROR events; the engine stays usable). */
int eng_step(struct engine *en, bool *idle, struct err *e);
/* Checks the scheduler's invariants and, when nothing is pending, that no block, runner state
 * or live id is left. VELA_EINTERNAL with e filled. */
int eng_check(struct engine *en, struct err *e);
/* Requests (ids) the engine still holds: submitted, not yet finally reported. */
int32_t eng_n_live(struct engine *en);

#endif
