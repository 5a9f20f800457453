/* sched: the engine's scheduler (vLLM v1 style): no prefill or decode phase. Every request has
 * n_computed tokens and a target (prompt + output so far); each step spends a token budget on
 * running requests first, then admits waiting ones first come first served, capped by
 * max_num_seqs. Chunked prefill, mixed prefill + decode steps and prefix-cache hits all follow
 * from that rule. When KV blocks run out the newest running request is preempted (blocks
 * freed, recomputed later from the front of the waiting queue).
 *
 * The step cycle (engine.c):  sched_add / sched_abort (any time between steps)
 *                             sched_step -> runner executes -> sched_update(sampled tokens)
 *
 * Ownership: sched_add takes the request; the scheduler frees it after it finished and the
 * runner was told (sched_output.done of the following step). Items borrow request pointers.
 * Thread: the engine thread only. */
#ifndef VELA_ENGINE_SCHED_H
#define VELA_ENGINE_SCHED_H

#include "engine/sched_output.h"
#include "util/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;
struct request;
struct block_pool;
struct encoder_cache;

struct sched_config {
    int32_t n_blocks;               /* KV blocks in the pool (sized from memory elsewhere) */
    int32_t block_size;             /* tokens per block; 16 */
    int32_t max_num_batched_tokens; /* token budget per step; 8192 */
    int32_t max_num_seqs;           /* running requests at most; 256 */
    int32_t max_model_len;          /* prompt + output tokens at most */
    bool prefix_caching;            /* true (--no-enable-prefix-caching turns it off) */
    int32_t encoder_cache_tokens;   /* embedding rows cached; 0 = max_num_batched_tokens */
    int32_t encoder_budget_tokens;  /* embedding rows encoded per step; 0 = cache size */
};

struct sched_stats {
    int32_t n_waiting, n_running;
    int32_t n_blocks, n_free_blocks; /* free includes cached blocks with no owner */
    int32_t max_concurrency;         /* requests of max_model_len tokens the pool holds at once */
    double max_concurrency_x;        /* the same as a ratio (vLLM's "Maximum concurrency ... x") */
    int64_t n_preemptions;
    uint64_t prefix_query_tokens, prefix_hit_tokens; /* hit rate = hit / query */
    int32_t encoder_tokens_used;
};

void sched_config_defaults(struct sched_config *c);
/* Bytes of step arena one sched_step may use at most with this config. */
size_t sched_step_arena_bytes(const struct sched_config *c);
/* Checks the config and allocates everything the steady state needs. Returns NULL with e
 * filled (VELA_EINVAL, VELA_ENOMEM). */
struct sched *sched_new(const struct sched_config *c, struct err *e);
/* Frees every request still held. Accepts NULL. */
void sched_free(struct sched *s);

/* Admits r (taking ownership on success: the caller must not touch it afterwards). Rejects
 * with VELA_ELIMIT, leaving r to the caller, a request that can never fit: prompt plus
 * max_tokens beyond max_model_len, KV need beyond the whole pool, an image larger than the
 * encoder budget; with VELA_EINVAL / VELA_ELIMIT sampling parameters sp_validate refuses.
 * Resolves max_tokens = -1 to the rest of max_model_len. */
int sched_add(struct sched *s, struct request *r, struct err *e);
/* Marks every sample of request `id` for cancellation; applied at the next sched_step (its
 * blocks return to the pool there). Returns false when no such request is held. */
bool sched_abort(struct sched *s, uint64_t id);

/* Plans one step into *out, allocated from the arena a (reset by the caller beforehand).
 * Returns 0, or VELA_ENOMEM when the arena is too small (a sizing bug, reported). An empty
 * plan (n_items == 0) means nothing can run. */
int sched_step(struct sched *s, struct arena *a, struct sched_output *out, struct err *e);
/* Applies a step's results: advances n_computed, appends sampled[i] for items with sample
 * set (sampled has n_items entries; others ignored), checks stop ids, eos (unless
 * ignore_eos), min_tokens, max_tokens and max_model_len, frees finished requests' blocks,
 * caches newly full blocks and forks the samples of n > 1 requests after their prefill.
 * Afterwards an item whose req->state is REQ_FINISHED finished in this step (req->finish,
 * req->stop_token say why); its record stays readable until the next sched_step.
 * Returns 0 or VELA_ENOMEM (a fork's allocation failed; the other samples go on). */
int sched_update(struct sched *s, const struct sched_output *out, const int32_t *sampled,
                 struct err *e);

void sched_get_stats(const struct sched *s, struct sched_stats *st);
/* Requests held (waiting + running), finished ones not yet reported excluded. */
int32_t sched_n_pending(const struct sched *s);
/* True when nothing is waiting, running or left to report: the engine may block on its inbox.
 * (A step reports at most max_num_seqs finished requests, so an empty plan is not enough.) */
bool sched_idle(const struct sched *s);
/* Replaces the block key function (tests force collisions with it). Only before the first
 * sched_add: keys already computed would no longer match. */
void sched_set_hash_fn(struct sched *s, uint64_t (*fn)(uint64_t parent, const int32_t *tokens,
                                                       int32_t n, uint64_t extra));
/* The pools, read-only (tests and metrics). */
const struct block_pool *sched_pool(const struct sched *s);
const struct encoder_cache *sched_encoder_cache(const struct sched *s);

/* Checks the queues, every request's invariants, that each block's refcount equals the
 * number of requests holding it and each encoder entry's refs the requests referencing it,
 * plus bp_check and ec_check. Returns VELA_EINTERNAL with e (may be NULL) filled. */
int sched_check_ex(const struct sched *s, struct err *e);
bool sched_check(const struct sched *s);

#endif
