/* sched: admission, aborts and step planning (sched_update.c applies results).
 *
 * One rule drives every step: running requests first (oldest first), then waiting ones in
 * order, each taking min(target - n_computed, budget left) tokens, where target is prompt plus
 * output so far. A decode is a request whose remaining work is its one unsampled token; a
 * prefill chunk is the same thing with more tokens. Per request and step:
 *   1. images overlapping the chunk need encoder-cache entries; one that cannot be encoded
 *      now (step encoder budget, cache space) cuts the chunk before its first placeholder;
 *   2. the chunk needs KV blocks for n_computed + n_new tokens. A running request short of
 *      blocks preempts the newest running request (possibly itself, which ends the running
 *      pass); a waiting request short of blocks waits (FCFS: later ones wait too);
 *   3. waiting requests first look up the longest cached prefix of full blocks, at most
 *      (n_tokens - 1) / block_size of them, so at least one token is computed for logits
 *      (none for requests asking for prompt_logprobs, which need every position's logits).
 * No waiting request is admitted in a step that preempted (as vLLM: it would thrash).
 *
 * Invariants (sched_check_ex in sched_check.c):
 *  1. running[0..n_running) are REQ_RUNNING and n_computed < n_tokens; waiting requests are
 *     REQ_WAITING and hold no blocks and no encoder references.
 *  2. Every block's ref equals the number of requests whose block table holds it.
 *  3. A request's blocks cover n_computed tokens; its first n_cached blocks are registered.
 *  4. Each encoder entry's ref equals the number of requests with ec_ref set for its hash.
 * Thread: the engine thread only. */
#include "engine/sched_impl.h"

#include "util/arena.h"
#include "util/limits.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void sched_config_defaults(struct sched_config *c) {
    *c = (struct sched_config){.n_blocks = 0,
                               .block_size = 16,
                               .max_num_batched_tokens = 8192,
                               .max_num_seqs = 256,
                               .max_model_len = 32768,
                               .prefix_caching = true};
}

static int check_config(const struct sched_config *c, struct err *e) {
    if (c->max_num_batched_tokens < 1 || c->max_num_seqs < 1 || c->max_num_seqs > 65536)
        return err_set(e, VELA_EINVAL,
                       "max_num_batched_tokens %d must be >= 1, max_num_seqs %d in [1, 65536]",
                       c->max_num_batched_tokens, c->max_num_seqs);
    if (c->max_model_len < 2 || c->max_model_len > VELA_REQ_MAX_TOKENS)
        return err_set(e, VELA_EINVAL, "max_model_len %d outside [2, %d]", c->max_model_len,
                       VELA_REQ_MAX_TOKENS);
    if (c->encoder_cache_tokens < 0 || c->encoder_budget_tokens < 0)
        return err_set(e, VELA_EINVAL, "negative encoder cache size or budget");
    return 0;
}

struct sched *sched_new(const struct sched_config *c, struct err *e) {
    if (check_config(c, e) != 0) return NULL;
    struct sched *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, VELA_ENOMEM, "scheduler: out of memory");
        return NULL;
    }
    s->cfg = *c;
    if (s->cfg.encoder_cache_tokens == 0) s->cfg.encoder_cache_tokens = c->max_num_batched_tokens;
    if (s->cfg.encoder_budget_tokens == 0 ||
        s->cfg.encoder_budget_tokens > s->cfg.encoder_cache_tokens)
        s->cfg.encoder_budget_tokens = s->cfg.encoder_cache_tokens;
    int32_t max_entries = s->cfg.encoder_cache_tokens < 65536 ? s->cfg.encoder_cache_tokens : 65536;
    int rc = bp_init(&s->bp, c->n_blocks, c->block_size, c->prefix_caching, e);
    if (rc == 0) rc = ec_init(&s->ec, s->cfg.encoder_cache_tokens, max_entries, e);
    if (rc == 0) {
        s->running = calloc((size_t)c->max_num_seqs, sizeof *s->running);
        if (!s->running) rc = err_set(e, VELA_ENOMEM, "scheduler: out of memory");
    }
    if (rc != 0) {
        sched_free(s);
        return NULL;
    }
    return s;
}

static void free_list(struct req_list *l) {
    while (l->head) {
        struct request *r = l->head;
        sched_list_remove(l, r);
        req_free(r);
    }
}

void sched_free(struct sched *s) {
    if (!s) return;
    for (int32_t i = 0; i < s->n_running; i++) req_free(s->running[i]);
    free(s->running);
    free_list(&s->waiting);
    free_list(&s->finished);
    bp_deinit(&s->bp);
    ec_deinit(&s->ec);
    free(s);
}

int sched_add(struct sched *s, struct request *r, struct err *e) {
    const struct sched_config *c = &s->cfg;
    int32_t bs = c->block_size;
    if (r->state != REQ_WAITING || r->max_total != 0 || r->n_blocks != 0)
        return err_set(e, VELA_EINVAL, "request %llu was already submitted",
                       (unsigned long long)r->id);
    /* The server validated them already; checked again because the stop checks index the
     * fixed arrays by these counts. */
    int rc = sp_validate(&r->params, e);
    if (rc != 0) return rc;
    int32_t max_tokens = r->params.max_tokens;
    if (r->n_prompt >= c->max_model_len)
        return err_set(e, VELA_ELIMIT,
                       "prompt of %d tokens leaves no room for output: the model's maximum "
                       "context length is %d tokens",
                       r->n_prompt, c->max_model_len);
    if (max_tokens == -1) max_tokens = c->max_model_len - r->n_prompt;
    if (max_tokens < 1 || (int64_t)r->n_prompt + max_tokens > c->max_model_len)
        return err_set(e, VELA_ELIMIT,
                       "this model's maximum context length is %d tokens, but %d tokens were "
                       "requested (%d in the prompt, %d for the completion)",
                       c->max_model_len, r->n_prompt + max_tokens, r->n_prompt, max_tokens);
    /* The last sampled token is never computed, so the KV cache holds at most total - 1. */
    int32_t total = r->n_prompt + max_tokens;
    int32_t need = (total - 1 + bs - 1) / bs;
    if (need > s->bp.n_blocks)
        return err_set(e, VELA_ELIMIT,
                       "request of %d tokens needs %d KV blocks of %d tokens, the cache has %d",
                       total, need, bs, s->bp.n_blocks);
    for (int32_t i = 0; i < r->n_images; i++)
        if (r->images[i].n_tokens > c->encoder_budget_tokens)
            return err_set(e, VELA_ELIMIT,
                           "image %d has %d placeholder tokens, the encoder budget is %d", i,
                           r->images[i].n_tokens, c->encoder_budget_tokens);
    rc = req_reserve(r, total, bs, e);
    if (rc != 0) return rc;
    r->max_total = total;
    r->params.max_tokens = max_tokens;
    sched_list_push_back(&s->waiting, r);
    s->n_images_live += r->n_images;
    return 0;
}

static int32_t mark_abort(struct sched *s, struct request *r, uint64_t id) {
    if (r->id != id || r->abort_pending) return 0;
    r->abort_pending = true;
    s->n_abort_pending++;
    return 1;
}

bool sched_abort(struct sched *s, uint64_t id) {
    int32_t n = 0;
    for (int32_t i = 0; i < s->n_running; i++) n += mark_abort(s, s->running[i], id);
    for (struct request *r = s->waiting.head; r; r = r->next) n += mark_abort(s, r, id);
    return n > 0;
}

static void apply_aborts(struct sched *s) {
    if (s->n_abort_pending == 0) return;
    int32_t k = 0;
    for (int32_t i = 0; i < s->n_running; i++) {
        struct request *r = s->running[i];
        if (r->abort_pending) {
            sched_release(s, r);
            sched_retire(s, r, REQ_FINISH_ABORT);
        } else {
            s->running[k++] = r;
        }
    }
    s->n_running = k;
    for (struct request *r = s->waiting.head, *nx; r; r = nx) {
        nx = r->next;
        if (!r->abort_pending) continue;
        sched_list_remove(&s->waiting, r);
        sched_retire(s, r, REQ_FINISH_ABORT);
    }
    s->n_abort_pending = 0;
}

/* Reports (at most max_num_seqs per step, which bounds the arena) and frees retired requests
 * into out->done, allocated by the caller with room for max_num_seqs. */
static void emit_done(struct sched *s, struct sched_output *out) {
    int32_t n = s->finished.n < s->cfg.max_num_seqs ? s->finished.n : s->cfg.max_num_seqs;
    for (int32_t i = 0; i < n; i++) {
        struct request *r = s->finished.head;
        sched_list_remove(&s->finished, r);
        out->done[i] = (struct sched_done){.id = r->id, .index = r->index, .finish = r->finish};
        req_free(r);
    }
    out->n_done = n;
}

size_t sched_step_arena_bytes(const struct sched_config *c) {
    int32_t enc = c->encoder_budget_tokens ? c->encoder_budget_tokens : c->max_num_batched_tokens;
    int32_t cache = c->encoder_cache_tokens ? c->encoder_cache_tokens : c->max_num_batched_tokens;
    int32_t entries = cache < 65536 ? cache : 65536;
    size_t n = (size_t)c->max_num_seqs * (sizeof(struct sched_item) + sizeof(struct sched_done));
    n += (size_t)(enc < c->max_num_batched_tokens ? enc : c->max_num_batched_tokens) *
         sizeof(struct sched_encode);
    n += (size_t)entries * 2 * sizeof(uint64_t);
    return n + 4 * 64; /* alignment padding of the four arrays */
}

static int32_t blocks_for(const struct sched *s, int32_t n_tokens) {
    return (n_tokens + s->cfg.block_size - 1) / s->cfg.block_size;
}

/* Takes encoder-cache references for the images overlapping [nc, nc + n_new) and queues the
 * ones not cached for encoding. Returns n_new, cut before the first image that cannot be
 * encoded this step (0: the request cannot advance now). */
static int32_t plan_images(struct sched *s, struct request *r, int32_t item, int32_t nc,
                           int32_t n_new, int32_t *enc_budget, struct sched_output *out) {
    int32_t end = nc + n_new;
    for (int32_t j = 0; j < r->n_images; j++) {
        struct req_image *im = &r->images[j];
        if (im->offset >= end) break;
        if (im->offset + im->n_tokens <= nc || im->ec_ref) continue;
        if (ec_ref(&s->ec, im->hash)) { /* cached, or encoded earlier in this step */
            im->ec_ref = im->ec_new = true;
            continue;
        }
        if (im->n_tokens > *enc_budget || !ec_add(&s->ec, im->hash, im->n_tokens))
            return im->offset > nc ? im->offset - nc : 0;
        *enc_budget -= im->n_tokens;
        im->ec_ref = im->ec_new = true;
        out->encode[out->n_encode++] = (struct sched_encode){.item = item, .image = j};
        out->n_encode_tokens += im->n_tokens;
    }
    return n_new;
}

/* Undoes plan_images for a request that is not scheduled after all: references taken on
 * existing entries are dropped, entries created for it (never encoded) are removed. */
static void plan_rollback(struct sched *s, struct request *r, struct sched_output *out,
                          int32_t enc_start, int32_t *enc_budget, int32_t enc_budget_before) {
    for (int32_t k = enc_start; k < out->n_encode; k++)
        r->images[out->encode[k].image].ec_new = false;
    for (int32_t j = 0; j < r->n_images; j++) {
        struct req_image *im = &r->images[j];
        if (!im->ec_new) continue;
        ec_unref(&s->ec, im->hash);
        im->ec_ref = im->ec_new = false;
    }
    for (int32_t k = enc_start; k < out->n_encode; k++) {
        struct req_image *im = &r->images[out->encode[k].image];
        ec_cancel(&s->ec, im->hash);
        im->ec_ref = false;
        out->n_encode_tokens -= im->n_tokens;
    }
    out->n_encode = enc_start;
    *enc_budget = enc_budget_before;
}

static void plan_commit(struct sched *s, struct request *r, struct sched_output *out, int32_t nc,
                        int32_t n_new) {
    for (int32_t j = 0; j < r->n_images; j++) r->images[j].ec_new = false;
    out->items[out->n_items++] = (struct sched_item){
        .req = r, .n_computed = nc, .n_new = n_new, .sample = nc + n_new == r->n_tokens};
    out->n_tokens += n_new;
    (void)s;
}

/* Sends the newest running request back to the front of the waiting queue. */
static struct request *preempt_newest(struct sched *s, struct sched_output *out) {
    struct request *v = s->running[--s->n_running];
    sched_release(s, v);
    v->n_computed = 0;
    v->state = REQ_WAITING;
    v->n_preempted++;
    s->n_preemptions++;
    out->n_preempted++;
    sched_list_push_front(&s->waiting, v);
    return v;
}

/* Schedules running[i]; returns false when it preempted itself (the running pass ends). */
static bool step_running(struct sched *s, struct request *r, int32_t *budget, int32_t *enc_budget,
                         struct sched_output *out) {
    int32_t nc = r->n_computed;
    int32_t want = r->n_tokens - nc < *budget ? r->n_tokens - nc : *budget;
    for (;;) {
        int32_t enc_start = out->n_encode, enc_before = *enc_budget;
        int32_t n_new = plan_images(s, r, out->n_items, nc, want, enc_budget, out);
        if (n_new == 0) {
            plan_rollback(s, r, out, enc_start, enc_budget, enc_before);
            return true; /* waits for encoder room; later requests may still run */
        }
        int32_t need = blocks_for(s, nc + n_new) - r->n_blocks;
        if (need <= 0 || bp_alloc(&s->bp, need, r->blocks + r->n_blocks)) {
            if (need > 0) r->n_blocks += need;
            plan_commit(s, r, out, nc, n_new);
            *budget -= n_new;
            return true;
        }
        plan_rollback(s, r, out, enc_start, enc_budget, enc_before);
        if (preempt_newest(s, out) == r) return false;
    }
}

/* Longest run of cached full blocks at the start of r, leaving >= 1 token to compute. Writes
 * their ids to r->blocks without taking references. A request asking for prompt_logprobs
 * reads no cache (vLLM's skip_reading_prefix_cache): it needs logits for every prompt
 * position; its blocks are still registered for others. */
static int32_t prefix_lookup(struct sched *s, struct request *r) {
    if (!s->bp.prefix_caching || r->params.prompt_logprobs >= 0) return 0;
    int32_t bs = s->cfg.block_size, n_full = (r->n_tokens - 1) / bs, ib = 0;
    for (; ib < n_full; ib++) {
        sched_ensure_hashes(s, r, ib + 1);
        uint64_t parent = ib ? r->hashes[ib - 1] : 0;
        int32_t id = bp_lookup(&s->bp, r->hashes[ib], parent, r->tokens + (size_t)ib * bs,
                               req_block_extra(r, ib, bs));
        if (id < 0) break;
        r->blocks[ib] = id;
    }
    return ib;
}

/* Admits the head of the waiting queue; false when it cannot run now (FCFS: stop). */
static bool step_waiting(struct sched *s, struct request *r, int32_t *budget, int32_t *enc_budget,
                         struct sched_output *out) {
    int32_t n_hit = prefix_lookup(s, r);
    int32_t nc = n_hit * s->cfg.block_size;
    int32_t want = r->n_tokens - nc < *budget ? r->n_tokens - nc : *budget;
    int32_t enc_start = out->n_encode, enc_before = *enc_budget;
    int32_t n_new = plan_images(s, r, out->n_items, nc, want, enc_budget, out);
    int32_t n_hit_free = 0;
    for (int32_t i = 0; i < n_hit; i++) n_hit_free += bp_ref_of(&s->bp, r->blocks[i]) == 0;
    int32_t need = blocks_for(s, nc + n_new) - n_hit;
    if (n_new == 0 || bp_n_free(&s->bp) - n_hit_free < need) {
        plan_rollback(s, r, out, enc_start, enc_budget, enc_before);
        return false;
    }
    for (int32_t i = 0; i < n_hit; i++) bp_ref(&s->bp, r->blocks[i]);
    bool ok = bp_alloc(&s->bp, need, r->blocks + n_hit);
    assert(ok);
    (void)ok;
    r->n_blocks = n_hit + need;
    r->n_cached = n_hit;
    r->n_computed = nc;
    r->n_hit_tokens = nc;
    bp_note_query(&s->bp, r->n_tokens, nc);
    sched_list_remove(&s->waiting, r);
    r->state = REQ_RUNNING;
    s->running[s->n_running++] = r;
    plan_commit(s, r, out, nc, n_new);
    *budget -= n_new;
    return true;
}

/* Every array of the step, allocated before any state changes so that a short arena fails
 * cleanly. Each encode covers >= 1 scheduled token and >= 1 row of encoder budget. */
static int alloc_output(struct sched *s, struct arena *a, struct sched_output *out,
                        uint64_t **freed, struct err *e) {
    int32_t n_enc = s->n_images_live;
    if (n_enc > s->cfg.encoder_budget_tokens) n_enc = s->cfg.encoder_budget_tokens;
    if (n_enc > s->cfg.max_num_batched_tokens) n_enc = s->cfg.max_num_batched_tokens;
    size_t n_seqs = (size_t)s->cfg.max_num_seqs;
    out->items = arena_alloc(a, n_seqs * sizeof *out->items, _Alignof(struct sched_item));
    out->done = arena_alloc(a, n_seqs * sizeof *out->done, _Alignof(struct sched_done));
    out->encode = arena_alloc(a, (size_t)(n_enc > 0 ? n_enc : 1) * sizeof *out->encode,
                              _Alignof(struct sched_encode));
    *freed = arena_alloc(a, (size_t)s->ec.max_freed * sizeof **freed, _Alignof(uint64_t));
    if (!out->items || !out->done || !out->encode || !*freed)
        return err_set(e, VELA_ENOMEM, "step arena of %zu bytes too small (%zu needed)", a->cap,
                       sched_step_arena_bytes(&s->cfg));
    return 0;
}

int sched_step(struct sched *s, struct arena *a, struct sched_output *out, struct err *e) {
    memset(out, 0, sizeof *out);
    apply_aborts(s); /* the aborted are reported below, or by a later step */
    uint64_t *freed;
    int rc = alloc_output(s, a, out, &freed, e);
    if (rc != 0) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    emit_done(s, out);
    int32_t budget = s->cfg.max_num_batched_tokens, enc_budget = s->cfg.encoder_budget_tokens;
    for (int32_t i = 0; i < s->n_running && budget > 0; i++)
        if (!step_running(s, s->running[i], &budget, &enc_budget, out)) break;
    if (out->n_preempted == 0)
        while (s->waiting.head && s->n_running < s->cfg.max_num_seqs && budget > 0)
            if (!step_waiting(s, s->waiting.head, &budget, &enc_budget, out)) break;
    out->n_freed_images = ec_take_freed(&s->ec, freed);
    out->freed_images = out->n_freed_images > 0 ? freed : NULL;
#ifndef NDEBUG
    assert(sched_check(s));
#endif
    return 0;
}
