/* sched_update: applies a step's results to the scheduler: progress, sampled tokens, stop and
 * length checks, prefix-cache registration of newly full blocks, encoder references released
 * once an image's placeholders are all computed, and the fork of n > 1 requests.
 *
 * n > 1: after the parent's prompt is prefilled (its first sampled token), the other n - 1
 * samples are created as new requests with the same prompt at the front of the waiting
 * queue. They share the parent's full prompt blocks through the prefix cache (hits take a
 * reference each) and recompute the rest of the prompt: the partly filled last block, or
 * the last token when the prompt fills its blocks exactly (at least one token must be
 * computed to produce logits). Recomputing keeps a block owned by a single writer, so no
 * copy-on-write is needed. With prefix caching off, the samples recompute the whole prompt.
 *
 * Thread: the engine thread only. */
#include "engine/sched_impl.h"

#include <assert.h>
#include <stdlib.h>

void sched_list_push_back(struct req_list *l, struct request *r) {
    r->next = NULL;
    r->prev = l->tail;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->n++;
}

void sched_list_push_front(struct req_list *l, struct request *r) {
    r->prev = NULL;
    r->next = l->head;
    if (l->head)
        l->head->prev = r;
    else
        l->tail = r;
    l->head = r;
    l->n++;
}

void sched_list_remove(struct req_list *l, struct request *r) {
    if (r->prev)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->prev = r->next = NULL;
    l->n--;
}

void sched_ensure_hashes(struct sched *s, struct request *r, int32_t n) {
    int32_t bs = s->cfg.block_size;
    for (int32_t ib = r->n_hashes; ib < n; ib++) {
        uint64_t parent = ib ? r->hashes[ib - 1] : 0;
        r->hashes[ib] =
            bp_hash(&s->bp, parent, r->tokens + (size_t)ib * bs, req_block_extra(r, ib, bs));
    }
    if (n > r->n_hashes) r->n_hashes = n;
}

void sched_release(struct sched *s, struct request *r) {
    int rc = bp_free(&s->bp, r->blocks, r->n_blocks);
    assert(rc == 0);
    (void)rc;
    r->n_blocks = 0;
    r->n_cached = 0;
    for (int32_t j = 0; j < r->n_images; j++) {
        if (!r->images[j].ec_ref) continue;
        ec_unref(&s->ec, r->images[j].hash);
        r->images[j].ec_ref = false;
    }
}

void sched_retire(struct sched *s, struct request *r, enum req_finish why) {
    r->state = REQ_FINISHED;
    r->finish = why;
    r->abort_pending = false;
    s->n_images_live -= r->n_images;
    sched_list_push_back(&s->finished, r);
}

/* Registers r's newly full, computed blocks in the prefix cache. */
static void cache_blocks(struct sched *s, struct request *r) {
    if (!s->bp.prefix_caching) return;
    int32_t bs = s->cfg.block_size, n_full = r->n_computed / bs;
    sched_ensure_hashes(s, r, n_full);
    for (int32_t ib = r->n_cached; ib < n_full; ib++)
        bp_cache(&s->bp, r->blocks[ib], r->hashes[ib], ib ? r->hashes[ib - 1] : 0,
                 r->tokens + (size_t)ib * bs, req_block_extra(r, ib, bs));
    if (n_full > r->n_cached) r->n_cached = n_full;
}

/* Drops encoder references of images whose placeholders are all computed now. */
static void release_images(struct sched *s, struct request *r) {
    for (int32_t j = 0; j < r->n_images; j++) {
        struct req_image *im = &r->images[j];
        if (im->offset >= r->n_computed) break;
        if (im->ec_ref && im->offset + im->n_tokens <= r->n_computed) {
            ec_unref(&s->ec, im->hash);
            im->ec_ref = false;
        }
    }
}

static bool has_id(const int32_t *ids, int32_t n, int32_t t) {
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == t) return true;
    return false;
}

/* vLLM's check_stop order: below min_tokens nothing stops but length; then eos (unless
 * ignore_eos), then stop ids, then max_tokens / max_model_len. */
static enum req_finish check_stop(struct request *r) {
    const struct sampling_params *p = &r->params;
    int32_t t = r->tokens[r->n_tokens - 1];
    if (req_n_output(r) >= p->min_tokens) {
        if ((!p->ignore_eos && has_id(p->eos_token_ids, p->n_eos_token_ids, t)) ||
            has_id(p->stop_token_ids, p->n_stop_token_ids, t)) {
            r->stop_token = t;
            return REQ_FINISH_STOP;
        }
    }
    if (r->n_tokens >= r->max_total) return REQ_FINISH_LENGTH;
    return REQ_FINISH_NONE;
}

/* Creates samples 1..n-1 of r at the front of the waiting queue, in index order. */
static int fork_samples(struct sched *s, struct request *r, struct err *e) {
    for (int32_t k = r->params.n - 1; k >= 1; k--) {
        struct request *c = req_fork(r, k, e);
        int rc = c ? req_reserve(c, r->max_total, s->cfg.block_size, e) : VELA_ENOMEM;
        if (rc != 0) {
            req_free(c);
            return err_wrap(e, "request %llu: forking sample %d", (unsigned long long)r->id, k);
        }
        c->max_total = r->max_total;
        sched_list_push_front(&s->waiting, c);
        s->n_images_live += c->n_images;
    }
    return 0;
}

int sched_update(struct sched *s, const struct sched_output *out, const int32_t *sampled,
                 struct err *e) {
    int rc = 0;
    bool any_done = false;
    for (int32_t i = 0; i < out->n_items; i++) {
        const struct sched_item *it = &out->items[i];
        struct request *r = it->req;
        assert(r->state == REQ_RUNNING && r->n_computed == it->n_computed);
        r->n_computed += it->n_new;
        cache_blocks(s, r);
        release_images(s, r);
        if (!it->sample) continue;
        assert(r->n_tokens < r->cap_tokens);
        r->tokens[r->n_tokens++] = sampled[i];
        if (!r->forked && r->params.n > 1) {
            r->forked = true;
            int frc = fork_samples(s, r, e);
            if (rc == 0) rc = frc;
        }
        r->finish = check_stop(r);
        any_done |= r->finish != REQ_FINISH_NONE;
    }
    if (any_done) {
        int32_t k = 0;
        for (int32_t i = 0; i < s->n_running; i++) {
            struct request *r = s->running[i];
            if (r->finish == REQ_FINISH_NONE) {
                s->running[k++] = r;
                continue;
            }
            sched_release(s, r);
            sched_retire(s, r, r->finish);
        }
        s->n_running = k;
    }
#ifndef NDEBUG
    assert(sched_check(s));
#endif
    return rc;
}
