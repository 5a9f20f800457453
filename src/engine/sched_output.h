/* sched_output: one step's plan, from the scheduler to the runner (vLLM's SchedulerOutput).
 *
 * Built by sched_step() in the step arena; every pointer in it is valid until the next
 * sched_step() (the arena reset and finished requests freed there). The runner reads each
 * item's block table from req->blocks every step (no diffs are kept): items[i] computes
 * tokens req->tokens[n_computed .. n_computed + n_new) into the KV slots given by
 * req->blocks, and produces logits for its last token when `sample` is set.
 *
 * Order for the runner: drop the state of `done` requests and the embeddings of
 * `freed_images`, then run the vision tower for `encode`, then the decoder.
 * Thread: the engine thread only. */
#ifndef VELA_ENGINE_SCHED_OUTPUT_H
#define VELA_ENGINE_SCHED_OUTPUT_H

#include <stdbool.h>
#include <stdint.h>

struct request;

struct sched_item {
    struct request *req; /* borrowed: the scheduler owns requests */
    int32_t n_computed;  /* tokens already in the KV cache */
    int32_t n_new;       /* tokens to compute this step, >= 1 */
    bool sample;         /* false while a prefill chunk leaves prompt unprocessed */
};

/* An image whose embeddings must be computed this step (its first placeholder is scheduled
 * now and the encoder cache does not hold it). */
struct sched_encode {
    int32_t item;  /* index into items */
    int32_t image; /* index into items[item].req->images */
};

/* A request that left the engine since the previous step (finished or aborted). */
struct sched_done {
    uint64_t id;
    int32_t index;  /* sample index */
    int32_t finish; /* enum req_finish */
};

struct sched_output {
    struct sched_item *items; /* (n_items) running requests first, then newly admitted */
    int32_t n_items;
    int32_t n_tokens;            /* sum of n_new, <= max_num_batched_tokens */
    struct sched_encode *encode; /* (n_encode) */
    int32_t n_encode;
    int32_t n_encode_tokens; /* embedding rows encoded this step */
    struct sched_done *done; /* (n_done) */
    int32_t n_done;
    uint64_t *freed_images; /* (n_freed_images) encoder cache entries evicted */
    int32_t n_freed_images;
    int32_t n_preempted; /* requests preempted while building this step */
};

#endif
