/* runner: executes one scheduler step on the language model (vLLM's GPUModelRunner, text
 * part): sched_output -> flattened batch (ids, positions, slot mapping, block tables, query
 * offsets) -> lm_forward -> sampler -> one token per item that samples.
 *
 * The runner keeps persistent state per live request, keyed by (request id, sample index):
 * the request's sampling RNG (so its draws depend only on its own seed and token count,
 * whatever it is batched with, and survive preemption) and its M-RoPE decode offset. The
 * state is created the first time a request is scheduled and dropped when the scheduler
 * reports it done (runner_drop_done). Batch arrays, logits and sampler scratch are sized at
 * runner_new for max_tokens rows and max_seqs sequences: a step allocates nothing except when
 * a new request's state needs a bigger table.
 *
 * Images (vLLM's encoder path): with a vision tower attached (runner_set_vit), the images the
 * step lists in so->encode run through vit_forward (pixel values from req->mm) and their
 * embedding rows are kept by the runner, keyed by content hash, until the encoder cache
 * reports them evicted (so->freed_images). Each chunk then takes the rows of the placeholder
 * tokens it covers from there (the lm_batch embeds override), and prompt tokens get the
 * prompt's M-RoPE positions (req->mm->pos), later tokens n + delta. Without a tower, requests
 * with images are refused (VELA_EUNSUP).
 *
 * Ownership: the lm is borrowed (it must outlive the runner); items borrow requests from the
 * scheduler for one step. Thread: the engine thread only (the lm's backend thread). */
#ifndef VELA_ENGINE_RUNNER_H
#define VELA_ENGINE_RUNNER_H

#include "engine/sampler.h"
#include "engine/sched_output.h"
#include "util/err.h"

#include <stdint.h>

struct lm;
struct vit;
struct runner;

struct runner_opts {
    int32_t max_tokens;    /* rows per step (max_num_batched_tokens); <= the lm's max_tokens */
    int32_t max_seqs;      /* items per step (max_num_seqs); <= the lm's max_seqs */
    int32_t max_model_len; /* tokens per request: sizes the block tables */
    uint64_t seed;         /* engine seed (--seed) for requests without their own */
    /* Steps whose every sampling row the backend can draw (greedy, temperature, top-k, top-p,
     * min-p; no logprobs, penalties, logit bias, pending min_tokens or prompt logprobs) are
     * sampled there (lm_forward_sample, be_sample's semantics), so only ids leave the device:
     * 0 = when the backend is a device, 1 = on any backend that can (tests, on the CPU),
     * -1 = never (engine/sampler.c always). */
    int32_t backend_sampling;
};

/* *out freed with runner_free. VELA_EINVAL when the options exceed what the lm was built for,
 * VELA_ENOMEM. */
int runner_new(struct runner **out, struct lm *m, const struct runner_opts *o, struct err *e);
void runner_free(struct runner *rn); /* accepts NULL */

/* Runs the step so (so->n_items >= 1). sampled (n_items, caller's) receives each sampling
 * item's token; items that do not sample get -1. Returns:
 *   0  the forward ran; a sampling item whose sampler failed (non-finite logits) has
 *      sampled[i] == -1 and runner_item_out(rn, i)->rc / ->err say why;
 *   <0 the whole step failed (bad batch, backend fault, a request the runner cannot run):
 *      nothing was sampled, e says why. The KV slots of this step may be half written.
 * Call runner_drop_done for so first (the scheduler may reuse a finished request's id). */
int runner_execute(struct runner *rn, const struct sched_output *so, int32_t *sampled,
                   struct err *e);
/* Seconds spent so far in runner_execute's parts: building the batch (and encoding images),
 * the forward with its logits read back (on a GPU: the device's work, and the sampling of
 * steps the backend samples), sampling on the host. */
struct runner_times {
    double prepare, forward, sample;
};
void runner_get_times(const struct runner *rn, struct runner_times *t);
/* The sampler's result for item i of the last executed step (logprobs, rank, top ids), or
 * NULL when item i did not sample. Valid until the next runner_execute. */
const struct smp_out *runner_item_out(const struct runner *rn, int32_t i);

/* prompt_logprobs of item i of the last executed step so (vLLM's extension): entry p holds
 * prompt token p + 1's logprob, rank and top ids from position p's raw logits, for every
 * p in [0, *n = n_prompt - 1). Non-NULL only when item i sampled its request's first token
 * in that step, i.e. with the first token's event (the whole prompt was computed by then:
 * prefix-cache hits are off for such requests). Valid until the request is dropped. */
const struct smp_logprobs *runner_item_prompt_logprobs(const struct runner *rn,
                                                       const struct sched_output *so, int32_t i,
                                                       int32_t *n);

/* Attaches vision tower v (borrowed; it must outlive the runner, on the lm's backend thread;
 * its output width must be the lm's hidden size). VELA_ENOMEM. */
int runner_set_vit(struct runner *rn, struct vit *v, struct err *e);
/* The logits (vocab F32) of item i's sampling row in the last executed step, or NULL when
 * item i did not sample or the step was sampled on the backend (its logits stayed there).
 * Valid until the next runner_execute. */
const float *runner_item_logits(const struct runner *rn, int32_t i);
/* Images encoded since runner_new, and those whose embeddings are held now (tests). */
int64_t runner_n_encoded(const struct runner *rn);
int32_t runner_n_images_held(const struct runner *rn);

/* Forgets the state of every request in so->done. */
void runner_drop_done(struct runner *rn, const struct sched_output *so);
/* Requests with state held (tests: 0 once everything finished). */
int32_t runner_n_live(const struct runner *rn);

#endif
