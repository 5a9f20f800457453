/* runner: one scheduler step on the language model (see runner.h).
 *
 * Per step:
 *   1. look up (or create) each item's persistent state;
 *   2. flatten the items into the batch arrays: item i's rows are its tokens
 *      tokens[n_computed, n_computed + n_new), at positions n_computed + j + delta in all three
 *      M-RoPE rows (text tokens), written to slot blocks[p / bs] * bs + p % bs;
 *   3. one lm_forward returning logits for the last row of each sampling item, in item order,
 *      then (prompt_logprobs) one row per prompt position of the requests that asked;
 *   4. one smp_sample over the sampling rows; the prompt rows' log-softmax goes into the
 *      request's state, handed out with its first token (runner_item_prompt_logprobs).
 * With images: before step 1 the step's encodes run (vit_forward, one image at a time) into
 * the image store; step 2 takes prompt positions from req->mm->pos and copies the store's
 * rows for placeholder tokens into the embeds override.
 *
 * Invariants:
 *   1. a live state's rng.n_sampled equals its request's output count before the step (the
 *      sampler advances it only for tokens the scheduler appends), so a draw is a function of
 *      (seed, output position) alone: batching, chunking and preemption cannot change it;
 *   2. states[] slots are either live (in the map) or on the free list, never both;
 *   3. every batch array is sized for max_tokens rows / max_seqs sequences at runner_new,
 *      except the logits, which grow (once, to the largest step seen) when prompt_logprobs
 *      rows are asked for;
 *   4. the image store holds exactly the encoder-cache entries that were encoded and not yet
 *      reported freed (runner_drop_done drops so->freed_images).
 * Thread: the engine thread only. */
#include "engine/runner.h"

#include "engine/idmap.h"
#include "engine/request.h"
#include "model/batch.h"
#include "model/lm.h"
#include "model/mm_prompt.h"
#include "model/vit.h"
#include "util/rng.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rstate {
    struct smp_rng rng;
    int32_t delta;     /* M-RoPE decode offset (0 for text-only prompts) */
    int32_t next_free; /* free-list link while unused; -1 at the end */
    /* prompt_logprobs: entry p is prompt token p + 1's, from position p's logits; owned,
     * allocated at the first step of a request that asked (n_prompt - 1 entries) */
    struct smp_logprobs *plp;
};

/* One encoded image's embedding rows. */
struct rimg {
    uint64_t hash;
    int32_t n_rows;
    float *rows; /* (n_rows, hidden), owned */
};

struct runner {
    struct lm *m;    /* borrowed */
    struct vit *vit; /* borrowed; NULL: no images */
    int32_t hidden;
    float *embeds;  /* (max_tokens, hidden) override rows, with the vision tower */
    uint8_t *emask; /* (max_tokens) */
    struct rimg *imgs;
    int32_t n_imgs, cap_imgs;
    int64_t n_encoded;
    struct runner_opts o;
    int32_t block_size, max_blocks; /* max_blocks: block-table columns per sequence */
    int64_t vocab;
    /* batch arrays */
    int32_t *ids;   /* (max_tokens) */
    int32_t *pos;   /* (3, max_tokens); row stride = this step's n_tokens */
    int32_t *slots; /* (max_tokens) */
    int32_t *qs;    /* (max_seqs + 1) */
    int32_t *ncomp; /* (max_seqs) */
    int32_t *bt;    /* (max_seqs, max_blocks) */
    int32_t *rows;  /* (max_seqs + max_tokens) logits rows: the last row of each sampling
                       item, then the prompt_logprobs rows (plp_*) */
    float *logits;  /* (cap_logits, vocab): sampling rows first, then prompt_logprobs rows */
    int32_t cap_logits;
    int32_t n_sample;  /* sampling rows this step */
    int32_t n_plp;     /* prompt_logprobs rows this step */
    int32_t *plp_item; /* (max_tokens) item of each prompt_logprobs row */
    int32_t *plp_pos;  /* (max_tokens) its prompt position */
    int32_t *row_of;   /* (max_seqs) item -> sampling row, -1 when the item does not sample */
    int32_t *st_idx;   /* (max_seqs) item -> index into states, this step */
    struct sampler *smp;
    struct runner_times times;   /* accumulated by runner_execute */
    bool backend_sampling;       /* lm_forward_sample where backend_step allows (runner_opts) */
    bool last_on_backend;        /* the last step was sampled there: no logits on the host */
    struct be_sample_row *srows; /* (max_seqs) its per-row parameters */
    int32_t *sids;               /* (max_seqs) and its ids */
    struct smp_seq *seqs;        /* (max_seqs) */
    struct smp_out *outs;        /* (max_seqs) */
    /* persistent per-request state */
    struct idmap map; /* (id, index) -> index into states */
    struct rstate *states;
    int32_t n_states, cap_states, free_head;
};

static int check_opts(const struct lm *m, const struct runner_opts *o, struct err *e) {
    const struct lm_options *lo = lm_opts(m);
    if (o->max_tokens < 1 || o->max_seqs < 1 || o->max_model_len < 1 ||
        o->max_tokens > lo->max_tokens || o->max_seqs > lo->max_seqs)
        return err_set(e, VELA_EINVAL,
                       "runner: %d tokens and %d sequences per step (the model was built for "
                       "%d and %d), max_model_len %d",
                       o->max_tokens, o->max_seqs, lo->max_tokens, lo->max_seqs, o->max_model_len);
    return 0;
}

int runner_new(struct runner **out, struct lm *m, const struct runner_opts *o, struct err *e) {
    int rc = check_opts(m, o, e);
    if (rc != 0) return rc;
    struct runner *rn = calloc(1, sizeof *rn);
    if (!rn) return err_set(e, VELA_ENOMEM, "runner: out of memory");
    rn->m = m, rn->o = *o;
    rn->block_size = lm_block_size(m);
    rn->max_blocks = (o->max_model_len + rn->block_size - 1) / rn->block_size;
    rn->vocab = lm_vocab(m);
    rn->free_head = -1;
    size_t T = (size_t)o->max_tokens, S = (size_t)o->max_seqs;
    rn->ids = malloc(T * sizeof *rn->ids);
    rn->pos = malloc(3 * T * sizeof *rn->pos);
    rn->slots = malloc(T * sizeof *rn->slots);
    rn->qs = malloc((S + 1) * sizeof *rn->qs);
    rn->ncomp = malloc(S * sizeof *rn->ncomp);
    rn->bt = malloc(S * (size_t)rn->max_blocks * sizeof *rn->bt);
    rn->rows = malloc((S + T) * sizeof *rn->rows);
    rn->logits = malloc(S * (size_t)rn->vocab * sizeof *rn->logits);
    rn->cap_logits = o->max_seqs;
    rn->plp_item = malloc(T * sizeof *rn->plp_item);
    rn->plp_pos = malloc(T * sizeof *rn->plp_pos);
    rn->row_of = malloc(S * sizeof *rn->row_of);
    rn->st_idx = malloc(S * sizeof *rn->st_idx);
    rn->seqs = calloc(S, sizeof *rn->seqs);
    rn->outs = calloc(S, sizeof *rn->outs);
    rn->srows = malloc(S * sizeof *rn->srows);
    rn->sids = malloc(S * sizeof *rn->sids);
    rn->backend_sampling = o->backend_sampling >= 0 && lm_can_sample(m, o->backend_sampling == 0);
    if (!rn->srows || !rn->sids) rc = err_set(e, VELA_ENOMEM, "runner: out of memory");
    if (!rn->ids || !rn->pos || !rn->slots || !rn->qs || !rn->ncomp || !rn->bt || !rn->rows ||
        !rn->logits || !rn->row_of || !rn->st_idx || !rn->seqs || !rn->outs || !rn->plp_item ||
        !rn->plp_pos)
        rc = err_set(e, VELA_ENOMEM, "runner: out of memory for %zu rows, %zu sequences", T, S);
    if (rc == 0) rc = smp_new(&rn->smp, o->max_seqs, rn->vocab, e);
    if (rc == 0) rc = idmap_init(&rn->map, 2 * (uint32_t)o->max_seqs, e);
    if (rc != 0) {
        runner_free(rn);
        return rc;
    }
    *out = rn;
    return 0;
}

void runner_free(struct runner *rn) {
    if (!rn) return;
    free(rn->ids), free(rn->pos), free(rn->slots), free(rn->qs), free(rn->ncomp);
    free(rn->bt), free(rn->rows), free(rn->logits), free(rn->row_of), free(rn->st_idx);
    free(rn->srows), free(rn->sids);
    free(rn->seqs), free(rn->outs), free(rn->plp_item), free(rn->plp_pos);
    for (int32_t i = 0; i < rn->n_states; i++) free(rn->states[i].plp);
    free(rn->states);
    for (int32_t i = 0; i < rn->n_imgs; i++) free(rn->imgs[i].rows);
    free(rn->imgs), free(rn->embeds), free(rn->emask);
    smp_free(rn->smp);
    idmap_deinit(&rn->map);
    free(rn);
}

/* A key mixing the request id and sample index, for requests without their own seed. */
static uint64_t request_key(uint64_t id, int32_t index) {
    return rng_mix64(id * 0x100000001b3ull ^ (uint64_t)(uint32_t)index);
}

/* The state of r, created on its first step. NULL with e filled on ENOMEM. */
static struct rstate *state_of(struct runner *rn, const struct request *r, struct err *e) {
    int64_t *v = idmap_get(&rn->map, r->id, r->index);
    if (v) return &rn->states[*v];
    if (rn->free_head < 0) {
        if (rn->n_states == rn->cap_states) {
            int32_t cap = rn->cap_states ? 2 * rn->cap_states : 2 * rn->o.max_seqs;
            struct rstate *ns = realloc(rn->states, (size_t)cap * sizeof *ns);
            if (!ns) {
                err_set(e, VELA_ENOMEM, "runner: out of memory for %d request states", cap);
                return NULL;
            }
            rn->states = ns, rn->cap_states = cap;
        }
        rn->states[rn->n_states].next_free = -1;
        rn->states[rn->n_states].plp = NULL;
        rn->free_head = rn->n_states++;
    }
    int32_t k = rn->free_head;
    if (idmap_put(&rn->map, r->id, r->index, k, e) != 0) return NULL;
    struct rstate *st = &rn->states[k];
    rn->free_head = st->next_free;
    memset(st, 0, sizeof *st);
    st->next_free = -1;
    smp_rng_init(&st->rng, &r->params, rn->o.seed, request_key(r->id, r->index));
    st->delta = r->mm ? r->mm->delta : 0; /* text-only prompts: positions are plain indices */
    return st;
}

int runner_set_vit(struct runner *rn, struct vit *v, struct err *e) {
    int32_t D = vit_out_dim(v);
    float *em = malloc((size_t)rn->o.max_tokens * (size_t)D * sizeof *em);
    uint8_t *mk = malloc((size_t)rn->o.max_tokens);
    if (!em || !mk) {
        free(em), free(mk);
        return err_set(e, VELA_ENOMEM, "runner: out of memory for %d image rows of %d",
                       rn->o.max_tokens, D);
    }
    free(rn->embeds), free(rn->emask);
    rn->vit = v, rn->hidden = D, rn->embeds = em, rn->emask = mk;
    return 0;
}

static struct rimg *img_find(const struct runner *rn, uint64_t hash) {
    for (int32_t i = 0; i < rn->n_imgs; i++)
        if (rn->imgs[i].hash == hash) return &rn->imgs[i];
    return NULL;
}

static void img_drop(struct runner *rn, uint64_t hash) {
    struct rimg *g = img_find(rn, hash);
    if (!g) return; /* evicted before it was ever encoded here */
    free(g->rows);
    *g = rn->imgs[--rn->n_imgs];
}

/* Runs the tower for image j of r into the store. */
static int encode_one(struct runner *rn, const struct request *r, int32_t j, struct err *e) {
    const struct req_image *im = &r->images[j];
    if (img_find(rn, im->hash)) return 0; /* same image twice in one step */
    const struct pixel_values *pv = &r->mm->media[j].pv;
    if (pv->n_rows / vit_unit_rows(rn->vit) != im->n_tokens)
        return err_set(e, VELA_EINTERNAL,
                       "runner: image %d of request %llu: %lld rows for %d "
                       "tokens",
                       j, (unsigned long long)r->id, (long long)pv->n_rows, im->n_tokens);
    if (rn->n_imgs == rn->cap_imgs) {
        int32_t cap = rn->cap_imgs ? 2 * rn->cap_imgs : 8;
        struct rimg *ni = realloc(rn->imgs, (size_t)cap * sizeof *ni);
        if (!ni) return err_set(e, VELA_ENOMEM, "runner: out of memory for %d images", cap);
        rn->imgs = ni, rn->cap_imgs = cap;
    }
    float *rows = malloc((size_t)im->n_tokens * (size_t)rn->hidden * sizeof *rows);
    if (!rows)
        return err_set(e, VELA_ENOMEM, "runner: out of memory for %d image rows", im->n_tokens);
    struct vit_grid g = {(int32_t)pv->grid_t, (int32_t)pv->grid_h, (int32_t)pv->grid_w};
    int rc = vit_forward(rn->vit, pv->data, pv->n_rows, &g, 1, rows, e);
    if (rc != 0) {
        free(rows);
        return err_wrap(e, "image %d of request %llu", j, (unsigned long long)r->id);
    }
    rn->imgs[rn->n_imgs++] = (struct rimg){.hash = im->hash, .n_rows = im->n_tokens, .rows = rows};
    rn->n_encoded++;
    return 0;
}

static int encode_step(struct runner *rn, const struct sched_output *so, struct err *e) {
    for (int32_t k = 0; k < so->n_encode; k++) {
        const struct sched_encode *en = &so->encode[k];
        int rc = encode_one(rn, so->items[en->item].req, en->image, e);
        if (rc != 0) return rc;
    }
    return 0;
}

/* Copies the embedding rows of the placeholders among item rows [row0, row0 + n_new). */
static int gather_item(struct runner *rn, const struct sched_item *it, int32_t row0,
                       struct err *e) {
    const struct request *r = it->req;
    int32_t lo = it->n_computed, hi = lo + it->n_new;
    for (int32_t j = 0; j < r->n_images; j++) {
        const struct req_image *im = &r->images[j];
        int32_t a = im->offset > lo ? im->offset : lo;
        int32_t b = im->offset + im->n_tokens < hi ? im->offset + im->n_tokens : hi;
        if (a >= b) continue;
        const struct rimg *g = img_find(rn, im->hash);
        if (!g) { /* its encoding step failed earlier while the cache kept the entry: redo it */
            int rc = encode_one(rn, r, j, e);
            if (rc != 0) return rc;
            g = img_find(rn, im->hash);
        }
        size_t D = (size_t)rn->hidden;
        memcpy(rn->embeds + (size_t)(row0 + a - lo) * D, g->rows + (size_t)(a - im->offset) * D,
               (size_t)(b - a) * D * sizeof *rn->embeds);
        memset(rn->emask + row0 + a - lo, 1, (size_t)(b - a));
    }
    return 0;
}

const float *runner_item_logits(const struct runner *rn, int32_t i) {
    if (i < 0 || i >= rn->o.max_seqs || rn->row_of[i] < 0 || rn->last_on_backend) return NULL;
    return rn->logits + (size_t)rn->row_of[i] * (size_t)rn->vocab;
}

int64_t runner_n_encoded(const struct runner *rn) {
    return rn->n_encoded;
}

int32_t runner_n_images_held(const struct runner *rn) {
    return rn->n_imgs;
}

void runner_drop_done(struct runner *rn, const struct sched_output *so) {
    for (int32_t i = 0; i < so->n_freed_images; i++) img_drop(rn, so->freed_images[i]);
    for (int32_t i = 0; i < so->n_done; i++) {
        int64_t *v = idmap_get(&rn->map, so->done[i].id, so->done[i].index);
        if (!v) continue; /* finished before it ever ran (aborted while waiting) */
        int32_t k = (int32_t)*v;
        idmap_del(&rn->map, so->done[i].id, so->done[i].index);
        free(rn->states[k].plp);
        rn->states[k].plp = NULL;
        rn->states[k].next_free = rn->free_head;
        rn->free_head = k;
    }
}

int32_t runner_n_live(const struct runner *rn) {
    return (int32_t)rn->map.n;
}

/* Checks the step against the sizes the runner was built for. */
static int check_step(const struct runner *rn, const struct sched_output *so, struct err *e) {
    if (so->n_items < 1 || so->n_items > rn->o.max_seqs || so->n_tokens < 1 ||
        so->n_tokens > rn->o.max_tokens)
        return err_set(e, VELA_EINVAL, "runner: step of %d items, %d tokens (max %d, %d)",
                       so->n_items, so->n_tokens, rn->o.max_seqs, rn->o.max_tokens);
    int32_t n = 0;
    for (int32_t i = 0; i < so->n_items; i++) {
        const struct sched_item *it = &so->items[i];
        const struct request *r = it->req;
        if (r->n_images > 0 && (!rn->vit || !r->mm || r->mm->n_media != r->n_images))
            return err_set(e, VELA_EUNSUP, "request %llu has %d images: %s",
                           (unsigned long long)r->id, r->n_images,
                           rn->vit ? "their pixel values are missing"
                                   : "the model runs without its vision tower");
        if (it->n_new < 1 || it->n_computed + it->n_new > r->n_tokens ||
            it->n_computed + it->n_new > rn->max_blocks * rn->block_size ||
            (int64_t)r->n_blocks * rn->block_size < it->n_computed + it->n_new)
            return err_set(e, VELA_EINTERNAL,
                           "runner: item %d (request %llu) computes [%d, %d) of %d tokens with "
                           "%d blocks",
                           i, (unsigned long long)r->id, it->n_computed, it->n_computed + it->n_new,
                           r->n_tokens, r->n_blocks);
        n += it->n_new;
    }
    if (n != so->n_tokens)
        return err_set(e, VELA_EINTERNAL, "runner: items hold %d tokens, the step says %d", n,
                       so->n_tokens);
    return 0;
}

/* Step 2: item i's rows at row0 of a batch of n_tokens rows. */
static void fill_item(struct runner *rn, const struct sched_item *it, const struct rstate *st,
                      int32_t i, int32_t row0, int32_t n_tokens) {
    const struct request *r = it->req;
    int32_t bs = rn->block_size, nc = it->n_computed;
    memcpy(rn->ids + row0, r->tokens + nc, (size_t)it->n_new * sizeof *rn->ids);
    const struct mm_prompt *mm = r->mm;
    for (int32_t j = 0; j < it->n_new; j++) {
        int32_t p = nc + j, q = p + st->delta;
        if (mm && p < mm->n_ids) { /* prompt token: get_rope_index's positions */
            for (int32_t k = 0; k < 3; k++)
                rn->pos[k * n_tokens + row0 + j] = mm->pos[(size_t)k * mm->n_ids + p];
        } else {
            rn->pos[row0 + j] = rn->pos[n_tokens + row0 + j] = rn->pos[2 * n_tokens + row0 + j] = q;
        }
        rn->slots[row0 + j] = r->blocks[p / bs] * bs + p % bs;
    }
    int32_t used = (nc + it->n_new + bs - 1) / bs;
    int32_t *bt = rn->bt + (size_t)i * rn->max_blocks;
    memcpy(bt, r->blocks, (size_t)used * sizeof *bt);
    if (used < rn->max_blocks) bt[used] = -1; /* a stale id past the end is never read */
    rn->qs[i] = row0;
    rn->ncomp[i] = nc;
}

/* The prompt positions item it computes whose logits prompt_logprobs needs: [*lo, *hi), empty
 * unless the request asked and has sampled nothing yet (its first token's event carries
 * them; after a preemption with outputs they were delivered already). Position p's logits
 * give prompt token p + 1's logprob, so the last prompt position has none. */
static void plp_span(const struct sched_item *it, int32_t *lo, int32_t *hi) {
    const struct request *r = it->req;
    *lo = *hi = 0;
    if (r->params.prompt_logprobs < 0 || req_n_output(r) > 0) return;
    int32_t end =
        it->n_computed + it->n_new < r->n_prompt - 1 ? it->n_computed + it->n_new : r->n_prompt - 1;
    if (end > it->n_computed) *lo = it->n_computed, *hi = end;
}

/* Appends the prompt_logprobs rows behind the sampling rows (only requests that asked pay:
 * an lm_head row each) and makes room for their logits. */
static int plp_rows(struct runner *rn, const struct sched_output *so, struct err *e) {
    int32_t k = 0;
    for (int32_t i = 0; i < so->n_items; i++) {
        int32_t lo, hi;
        plp_span(&so->items[i], &lo, &hi);
        if (lo == hi) continue;
        const struct request *r = so->items[i].req;
        struct rstate *st = &rn->states[rn->st_idx[i]];
        if (!st->plp && !(st->plp = calloc((size_t)r->n_prompt - 1, sizeof *st->plp)))
            return err_set(e, VELA_ENOMEM,
                           "runner: out of memory for the prompt_logprobs of %d "
                           "tokens",
                           r->n_prompt);
        for (int32_t p = lo; p < hi; p++, k++) {
            rn->rows[rn->n_sample + k] = rn->qs[i] + p - so->items[i].n_computed;
            rn->plp_item[k] = i, rn->plp_pos[k] = p;
        }
    }
    rn->n_plp = k;
    int32_t need = rn->n_sample + k;
    if (need > rn->cap_logits) {
        float *nl = realloc(rn->logits, (size_t)need * (size_t)rn->vocab * sizeof *nl);
        if (!nl) return err_set(e, VELA_ENOMEM, "runner: out of memory for %d logits rows", need);
        rn->logits = nl, rn->cap_logits = need;
    }
    return 0;
}

/* Log-softmax of each prompt_logprobs row, for the prompt token that follows it. */
static void plp_fill(struct runner *rn, const struct sched_output *so) {
    for (int32_t k = 0; k < rn->n_plp; k++) {
        const struct request *r = so->items[rn->plp_item[k]].req;
        struct rstate *st = &rn->states[rn->st_idx[rn->plp_item[k]]];
        int32_t p = rn->plp_pos[k];
        const float *x = rn->logits + (size_t)(rn->n_sample + k) * (size_t)rn->vocab;
        smp_logprobs_of(x, rn->vocab, r->tokens[p + 1], r->params.prompt_logprobs, &st->plp[p]);
    }
}

const struct smp_logprobs *runner_item_prompt_logprobs(const struct runner *rn,
                                                       const struct sched_output *so, int32_t i,
                                                       int32_t *n) {
    *n = 0;
    if (i < 0 || i >= so->n_items || i >= rn->o.max_seqs || rn->row_of[i] < 0) return NULL;
    const struct request *r = so->items[i].req;
    const struct rstate *st = &rn->states[rn->st_idx[i]];
    if (r->params.prompt_logprobs < 0 || req_n_output(r) > 1 || !st->plp) return NULL;
    *n = r->n_prompt - 1;
    return st->plp;
}

/* Steps 1-2: the batch; rn->row_of and the sampler inputs for sampling items. States are
 * all looked up (and created) first: creating one may move the states array, and the
 * sampler inputs point into it. */
static int build(struct runner *rn, const struct sched_output *so, struct lm_batch *b,
                 struct err *e) {
    for (int32_t i = 0; i < so->n_items; i++) {
        const struct rstate *st = state_of(rn, so->items[i].req, e);
        if (!st) return VELA_ENOMEM;
        rn->st_idx[i] = (int32_t)(st - rn->states);
    }
    int32_t row = 0, n_logits = 0;
    bool any_image = false;
    if (rn->vit) memset(rn->emask, 0, (size_t)so->n_tokens);
    for (int32_t i = 0; i < so->n_items; i++) {
        const struct sched_item *it = &so->items[i];
        const struct request *r = it->req;
        struct rstate *st = &rn->states[rn->st_idx[i]];
        fill_item(rn, it, st, i, row, so->n_tokens);
        if (r->n_images > 0 && it->n_computed < r->n_prompt) {
            int rc = gather_item(rn, it, row, e);
            if (rc != 0) return rc;
            any_image = true;
        }
        row += it->n_new;
        rn->row_of[i] = -1;
        if (!it->sample) continue;
        if (st->rng.n_sampled != (uint64_t)req_n_output(r))
            return err_set(e, VELA_EINTERNAL, "runner: request %llu has %d outputs, its RNG %llu",
                           (unsigned long long)r->id, req_n_output(r),
                           (unsigned long long)st->rng.n_sampled);
        rn->rows[n_logits] = row - 1;
        rn->seqs[n_logits] = (struct smp_seq){.params = &r->params,
                                              .prompt_ids = r->tokens,
                                              .n_prompt = r->n_prompt,
                                              .output_ids = r->tokens + r->n_prompt,
                                              .n_output = req_n_output(r),
                                              .rng = &st->rng};
        rn->row_of[i] = n_logits++;
    }
    rn->qs[so->n_items] = row;
    rn->n_sample = n_logits;
    int rc = plp_rows(rn, so, e);
    if (rc != 0) return rc;
    n_logits += rn->n_plp;
    *b = (struct lm_batch){.n_tokens = row,
                           .token_ids = rn->ids,
                           .positions = rn->pos,
                           .slot_mapping = rn->slots,
                           .n_seqs = so->n_items,
                           .query_start = rn->qs,
                           .n_computed = rn->ncomp,
                           .block_tables = rn->bt,
                           .max_blocks_per_seq = rn->max_blocks,
                           .logit_rows = rn->rows,
                           .n_logits = n_logits,
                           .embeds = any_image ? rn->embeds : NULL,
                           .embeds_mask = any_image ? rn->emask : NULL};
    return 0;
}

/* Whether be_sample can draw every sampling row of the step just built: greedy, temperature,
 * top-k, top-p and min-p rows; nothing that needs the distribution or the history on the
 * host (logprobs, penalties, logit bias, a pending min_tokens, prompt logprobs). */
static bool backend_step(const struct runner *rn) {
    if (!rn->backend_sampling || rn->n_plp > 0) return false;
    for (int32_t i = 0; i < rn->n_sample; i++) {
        const struct smp_seq *q = &rn->seqs[i];
        const struct sampling_params *p = q->params;
        if (p->logprobs >= 0 || p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f ||
            p->repetition_penalty != 1.0f || p->n_logit_bias > 0 || q->n_output < p->min_tokens)
            return false;
    }
    return true;
}

/* The forward and be_sample for a step backend_step accepts: rn->outs as smp_sample would fill
 * them (no logprobs), each RNG advanced by its draw. */
static int forward_sample(struct runner *rn, const struct lm_batch *b, struct err *e) {
    for (int32_t i = 0; i < rn->n_sample; i++) {
        const struct smp_seq *q = &rn->seqs[i];
        const struct sampling_params *p = q->params;
        bool greedy = p->temperature < VELA_SP_GREEDY_EPS;
        rn->srows[i] = (struct be_sample_row){.temperature = greedy ? 0.0f : p->temperature,
                                              .top_k = p->top_k > 0 ? p->top_k : 0,
                                              .top_p = p->top_p,
                                              .min_p = p->min_p,
                                              .key = smp_rng_key(q->rng)};
    }
    int rc = lm_forward_sample(rn->m, b, rn->srows, rn->sids, e);
    for (int32_t i = 0; rc == 0 && i < rn->n_sample; i++) {
        struct smp_out *o = &rn->outs[i];
        *o = (struct smp_out){.token = rn->sids[i]};
        if (o->token < 0 || o->token >= rn->vocab)
            o->rc = err_set(&o->err, VELA_EINVAL, "sampler: no finite logit to sample from");
        else
            rn->seqs[i].rng->n_sampled++;
    }
    return rc;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int runner_execute(struct runner *rn, const struct sched_output *so, int32_t *sampled,
                   struct err *e) {
    double t0 = now_s();
    for (int32_t i = 0; i < so->n_items && i < rn->o.max_seqs; i++) {
        sampled[i] = -1;
        rn->row_of[i] = -1;
    }
    int rc = check_step(rn, so, e);
    struct lm_batch b;
    if (rc == 0) rc = encode_step(rn, so, e);
    if (rc == 0) rc = build(rn, so, &b, e);
    double t1 = now_s();
    bool on_backend = rc == 0 && rn->n_sample > 0 && backend_step(rn);
    rn->last_on_backend = on_backend;
    if (rc == 0) rc = on_backend ? forward_sample(rn, &b, e) : lm_forward(rn->m, &b, rn->logits, e);
    double t2 = now_s();
    rn->times.prepare += t1 - t0, rn->times.forward += t2 - t1;
    if (rc != 0) return rc;
    if (on_backend) {
        for (int32_t i = 0; i < so->n_items; i++)
            if (rn->row_of[i] >= 0 && rn->outs[rn->row_of[i]].rc == 0)
                sampled[i] = rn->outs[rn->row_of[i]].token;
        return 0;
    }
    plp_fill(rn, so);
    b.n_logits = rn->n_sample;
    if (b.n_logits == 0) return 0;
    /* a per-sequence failure leaves the others sampled; only a refused batch fails all */
    struct err se = {0};
    rn->outs[0].rc = 1; /* smp_sample sets every rc unless it refuses the whole batch */
    int src = smp_sample(rn->smp, rn->logits, b.n_logits, rn->seqs, rn->outs, &se);
    rn->times.sample += now_s() - t2;
    if (src != 0 && rn->outs[0].rc == 1) {
        for (int32_t i = 0; i < so->n_items; i++) rn->row_of[i] = -1;
        return err_set(e, VELA_EINTERNAL, "runner: %s", se.msg);
    }
    for (int32_t i = 0; i < so->n_items; i++)
        if (rn->row_of[i] >= 0 && rn->outs[rn->row_of[i]].rc == 0)
            sampled[i] = rn->outs[rn->row_of[i]].token;
    return 0;
}

void runner_get_times(const struct runner *rn, struct runner_times *t) {
    *t = rn->times;
}

const struct smp_out *runner_item_out(const struct runner *rn, int32_t i) {
    if (i < 0 || i >= rn->o.max_seqs || rn->row_of[i] < 0) return NULL;
    return &rn->outs[rn->row_of[i]];
}
