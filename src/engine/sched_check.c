/* sched_check: the scheduler's invariant checker (listed in sched.c), statistics and
 * read-only accessors. The checker allocates scratch counters, so it is for tests and debug
 * builds (assert(sched_check(s)) after each step), not the release steady state.
 * Thread: the engine thread only. */
#include "engine/sched_impl.h"

#include <stdlib.h>

static int check_request(const struct sched *s, const struct request *r, int32_t *refs,
                         struct err *e) {
    int32_t bs = s->cfg.block_size;
    unsigned long long id = (unsigned long long)r->id;
    if (r->n_computed < 0 || r->n_computed > r->n_tokens || r->n_tokens > r->cap_tokens ||
        r->n_prompt > r->n_tokens || r->n_tokens > r->max_total ||
        r->max_total > s->cfg.max_model_len)
        return err_set(e, VELA_EINTERNAL, "request %llu: computed %d, tokens %d/%d, max %d", id,
                       r->n_computed, r->n_tokens, r->cap_tokens, r->max_total);
    if ((int64_t)r->n_blocks * bs < r->n_computed || r->n_blocks > r->cap_blocks ||
        r->n_cached > r->n_blocks || r->n_cached > r->n_hashes || r->n_hashes > r->n_tokens / bs)
        return err_set(e, VELA_EINTERNAL, "request %llu: %d blocks, %d cached, %d hashes", id,
                       r->n_blocks, r->n_cached, r->n_hashes);
    for (int32_t i = 0; i < r->n_blocks; i++) {
        int32_t b = r->blocks[i];
        if (b < 0 || b >= s->bp.n_blocks)
            return err_set(e, VELA_EINTERNAL, "request %llu: block id %d", id, b);
        refs[b]++;
    }
    for (int32_t i = 0; i < r->n_cached && s->bp.prefix_caching; i++) {
        const struct bp_block *b = &s->bp.blocks[r->blocks[i]];
        if (!b->cached || b->hash != r->hashes[i])
            return err_set(e, VELA_EINTERNAL, "request %llu: block %d not cached as its key", id,
                           i);
    }
    for (int32_t j = 0; j < r->n_images; j++)
        if (r->images[j].ec_new)
            return err_set(e, VELA_EINTERNAL, "request %llu: image %d left planned", id, j);
    return 0;
}

static int check_encoder_refs(const struct sched *s, struct err *e) {
    const struct encoder_cache *ec = &s->ec;
    for (int32_t k = 0; k < ec->max_entries; k++) {
        if (!ec->e[k].used) continue;
        int32_t n = 0;
        for (int32_t i = 0; i < s->n_running; i++) {
            const struct request *r = s->running[i];
            for (int32_t j = 0; j < r->n_images; j++)
                n += r->images[j].ec_ref && r->images[j].hash == ec->e[k].hash;
        }
        if (n != ec->e[k].ref)
            return err_set(e, VELA_EINTERNAL, "encoder entry %d: ref %d, %d requests hold it", k,
                           ec->e[k].ref, n);
    }
    return 0;
}

static int check_waiting(const struct sched *s, struct err *e) {
    int32_t n = 0;
    const struct request *prev = NULL;
    for (const struct request *r = s->waiting.head; r; prev = r, r = r->next) {
        if (++n > s->waiting.n || r->prev != prev || r->state != REQ_WAITING)
            return err_set(e, VELA_EINTERNAL, "waiting queue broken at request %llu",
                           (unsigned long long)r->id);
        if (r->n_blocks != 0 || r->n_computed != 0)
            return err_set(e, VELA_EINTERNAL, "waiting request %llu holds %d blocks",
                           (unsigned long long)r->id, r->n_blocks);
        for (int32_t j = 0; j < r->n_images; j++)
            if (r->images[j].ec_ref)
                return err_set(e, VELA_EINTERNAL, "waiting request %llu holds image %d",
                               (unsigned long long)r->id, j);
    }
    if (n != s->waiting.n || s->waiting.tail != prev)
        return err_set(e, VELA_EINTERNAL, "waiting queue: %d linked, n %d", n, s->waiting.n);
    return 0;
}

int sched_check_ex(const struct sched *s, struct err *e) {
    int rc = bp_check_ex(&s->bp, e);
    if (rc == 0) rc = ec_check_ex(&s->ec, e);
    if (rc == 0) rc = check_waiting(s, e);
    if (rc != 0) return rc;
    if (s->n_running < 0 || s->n_running > s->cfg.max_num_seqs)
        return err_set(e, VELA_EINTERNAL, "%d running, max %d", s->n_running, s->cfg.max_num_seqs);
    int32_t *refs = calloc((size_t)s->bp.n_blocks, sizeof *refs);
    if (!refs) return err_set(e, VELA_ENOMEM, "sched_check: out of memory");
    int32_t n_images = 0;
    for (int32_t i = 0; i < s->n_running && rc == 0; i++) {
        const struct request *r = s->running[i];
        if (r->state != REQ_RUNNING || r->n_computed >= r->n_tokens)
            rc = err_set(e, VELA_EINTERNAL, "running request %llu: state %d, %d/%d computed",
                         (unsigned long long)r->id, (int)r->state, r->n_computed, r->n_tokens);
        if (rc == 0) rc = check_request(s, r, refs, e);
        n_images += r->n_images;
    }
    for (const struct request *r = s->waiting.head; r; r = r->next) n_images += r->n_images;
    for (int32_t b = 0; b < s->bp.n_blocks && rc == 0; b++)
        if (refs[b] != s->bp.blocks[b].ref)
            rc = err_set(e, VELA_EINTERNAL, "block %d: ref %d, held by %d requests", b,
                         s->bp.blocks[b].ref, refs[b]);
    free(refs);
    if (rc == 0 && n_images != s->n_images_live)
        rc = err_set(e, VELA_EINTERNAL, "%d live images, counted %d", s->n_images_live, n_images);
    if (rc == 0) rc = check_encoder_refs(s, e);
    return rc;
}

bool sched_check(const struct sched *s) {
    return sched_check_ex(s, NULL) == 0;
}

void sched_get_stats(const struct sched *s, struct sched_stats *st) {
    int32_t per_req = (s->cfg.max_model_len + s->cfg.block_size - 1) / s->cfg.block_size;
    *st = (struct sched_stats){.n_waiting = s->waiting.n,
                               .n_running = s->n_running,
                               .n_blocks = s->bp.n_blocks,
                               .n_free_blocks = bp_n_free(&s->bp),
                               .max_concurrency = s->bp.n_blocks / per_req,
                               .max_concurrency_x = (double)s->bp.n_blocks * s->cfg.block_size /
                                                    s->cfg.max_model_len,
                               .n_preemptions = s->n_preemptions,
                               .prefix_query_tokens = s->bp.n_query_tokens,
                               .prefix_hit_tokens = s->bp.n_hit_tokens,
                               .encoder_tokens_used = s->ec.n_tokens};
}

int32_t sched_n_pending(const struct sched *s) {
    return s->waiting.n + s->n_running;
}

bool sched_idle(const struct sched *s) {
    return s->waiting.n == 0 && s->n_running == 0 && s->finished.n == 0;
}

void sched_set_hash_fn(struct sched *s, bp_hash_fn fn) {
    s->bp.hash_fn = fn;
}

const struct block_pool *sched_pool(const struct sched *s) {
    return &s->bp;
}

const struct encoder_cache *sched_encoder_cache(const struct sched *s) {
    return &s->ec;
}
