/* request: one generation request as the engine sees it: token ids (prompt, then output),
 * image placeholder ranges, sampling parameters, progress (n_computed) and its KV block table.
 *
 * Built by the prep side with req_new(), then handed to the engine with sched_add(), which
 * takes ownership (ownership moves there, once). From then on the scheduler owns it and frees
 * it with req_free() after it finished and the runner was told (sched_output.done).
 *
 * States (sched.c moves them):
 *   WAITING --sched_step (admitted)--> RUNNING --sched_update (stop/length)--> FINISHED
 *      ^                                  |
 *      +------ preempt (blocks freed, n_computed = 0, front of the queue) ---+
 *   any state --sched_abort, applied at the next sched_step--> FINISHED (REQ_FINISH_ABORT)
 *
 * Thread: built on any thread; after sched_add, the engine thread only. */
#ifndef VELA_ENGINE_REQUEST_H
#define VELA_ENGINE_REQUEST_H

#include "engine/params.h"
#include "util/err.h"

#include <stdbool.h>
#include <stdint.h>

enum req_state { REQ_WAITING = 0, REQ_RUNNING, REQ_FINISHED };

enum req_finish {
    REQ_FINISH_NONE = 0,
    REQ_FINISH_STOP,   /* eos or a stop token id (OpenAI "stop") */
    REQ_FINISH_LENGTH, /* max_tokens or max_model_len (OpenAI "length") */
    REQ_FINISH_ABORT,  /* cancelled (client gone, stop string hit) */
};

/* One image's placeholder run in the token sequence. */
struct req_image {
    uint64_t hash;    /* content hash of the pixels AND the resize parameters (prep computes) */
    int32_t offset;   /* index of the first placeholder token */
    int32_t n_tokens; /* placeholder count == embedding rows the vision tower produces */
    bool ec_ref;      /* scheduler: this request holds an encoder cache reference */
    bool ec_new;      /* scheduler scratch: reference taken by the step being planned */
};

struct mm_prompt;

struct request {
    uint64_t id;   /* caller's id; the n samples of one request share it */
    int32_t index; /* sample index in [0, params.n) */
    struct sampling_params params;

    int32_t *tokens;          /* (cap_tokens): prompt then output ids; owned */
    int32_t n_prompt;         /* prompt tokens */
    int32_t n_tokens;         /* prompt + output so far */
    int32_t cap_tokens;       /* room reserved at admission: n_prompt + max output */
    struct req_image *images; /* (n_images), sorted by offset, non-overlapping; owned */
    int32_t n_images;
    struct mm_prompt *mm; /* images[i]'s pixel values are mm->media[i]; prompt positions
                             mm->pos. One reference owned (shared by forks); NULL: text */

    /* --- scheduler state --- */
    enum req_state state;
    enum req_finish finish;
    int32_t stop_token; /* the token that stopped it (REQ_FINISH_STOP), else -1 */
    int32_t max_total;  /* n_tokens at which it finishes by length */
    int32_t n_computed; /* tokens whose KV is in the cache */
    int32_t *blocks;    /* (cap_blocks): block table, block ids for tokens [i*bs, (i+1)*bs) */
    int32_t n_blocks;   /* blocks held (each with one reference from this request) */
    int32_t cap_blocks;
    uint64_t *hashes;     /* (cap_blocks): keys of the full token blocks, computed lazily */
    int32_t n_hashes;     /* keys computed so far */
    int32_t n_cached;     /* leading blocks registered in (or served from) the prefix cache */
    int32_t n_hit_tokens; /* prefix-cache hit at the last admission (metrics, tests) */
    int32_t n_preempted;  /* times preempted */
    bool forked;          /* n > 1: the sibling samples were created */
    bool abort_pending;   /* sched_abort seen; applied at the next sched_step */
    struct request *prev, *next; /* waiting-queue links (sched.c) */
};

/* Builds a request with copies of the prompt and the images (borrowed). Images must be sorted
 * by offset, non-overlapping and inside the prompt; the prompt is 1..VELA_REQ_MAX_TOKENS
 * tokens. params is copied (validate it first with sp_validate). Returns NULL with e filled
 * (VELA_EINVAL, VELA_ELIMIT, VELA_ENOMEM). The caller frees it with req_free() unless
 * sched_add() took it. */
struct request *req_new(uint64_t id, const int32_t *prompt, int32_t n_prompt,
                        const struct req_image *images, int32_t n_images,
                        const struct sampling_params *params, struct err *e);
void req_free(struct request *r); /* accepts NULL */
/* Attaches the media of a prompt built by mmp_build (model/mm_prompt.h), taking over the
 * caller's reference; r's prompt must be mm->ids and its images mm->media (offsets, counts,
 * hashes). VELA_EINVAL (mm left to the caller) when they differ. */
int req_attach_mm(struct request *r, struct mm_prompt *mm, struct err *e);

/* Grows the token array to cap_tokens and the block table to cover it (admission time, so
 * the steady state never allocates). Returns 0 or VELA_ENOMEM. */
int req_reserve(struct request *r, int32_t cap_tokens, int32_t block_size, struct err *e);
/* A new request for sample `index` with r's prompt, images and params (n > 1). */
struct request *req_fork(const struct request *r, int32_t index, struct err *e);

/* Output tokens so far. */
static inline int32_t req_n_output(const struct request *r) {
    return r->n_tokens - r->n_prompt;
}
/* Extra key of token block ib: mixes the hash, offset and length of every image whose
 * placeholders overlap [ib*bs, (ib+1)*bs); 0 when none does. */
uint64_t req_block_extra(const struct request *r, int32_t ib, int32_t block_size);

const char *req_finish_name(enum req_finish f); /* "stop", "length", "abort", "none" */

#endif
