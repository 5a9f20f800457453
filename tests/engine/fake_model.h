/* fake_model: a scripted stand-in for the runner, for scheduler tests (header-only, static:
 * each tests/engine/test_*.c is its own program).
 *
 * It executes a sched_output the way the real runner must, and checks the plan while doing
 * so: the token budget and sequence cap, each item's n_computed, block tables covering the
 * tokens, a fake KV store (one value per slot) proving that every token before n_computed
 * really is in the request's blocks (so prefix hits and preemptions are checked end to end),
 * that new tokens are only written to blocks owned by one request, and that an image's
 * embeddings were encoded (and not freed) before its placeholders are computed.
 * The sampled token is a deterministic function of (request id, sample index, position),
 * so a request's outputs do not depend on how it was scheduled. */
#ifndef VELA_TESTS_ENGINE_FAKE_MODEL_H
#define VELA_TESTS_ENGINE_FAKE_MODEL_H

#include "engine/block_pool.h"
#include "engine/request.h"
#include "engine/sched.h"
#include "util/arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FM_MAX_IMAGES 256
#define FM_MAX_OUT    512

struct fm_result {
    uint64_t id;
    int32_t index;
    int32_t finish; /* enum req_finish */
    int32_t stop_token;
    int32_t n_prompt;
    int32_t n_out;
    int32_t out[FM_MAX_OUT];
};

struct fake_model {
    struct sched_config cfg;
    int32_t *kv;                 /* (n_blocks * block_size) slot values, -1 = never written */
    uint64_t enc[FM_MAX_IMAGES]; /* image hashes whose embeddings exist */
    int32_t n_enc;
    int64_t n_encodes; /* vision tower runs */
    int64_t n_steps;
    int32_t (*token_fn)(const struct request *r); /* NULL: fm_default_token */
    struct fm_result *res;
    int32_t n_res, cap_res;
    char fail[512]; /* first failure, empty if none */
};

/* The scripted model: a token >= 1000 (never an eos id used by the tests). */
static inline int32_t fm_token_at(uint64_t id, int32_t index, int32_t pos) {
    return 1000 + (int32_t)((id * 131u + (uint64_t)index * 17u + (uint64_t)pos * 7u) % 500u);
}

static inline int32_t fm_default_token(const struct request *r) {
    return fm_token_at(r->id, r->index, r->n_tokens);
}

static inline void fm_init(struct fake_model *m, const struct sched_config *c) {
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    size_t n = (size_t)c->n_blocks * (size_t)c->block_size;
    m->kv = malloc(n * sizeof *m->kv);
    for (size_t i = 0; i < n; i++) m->kv[i] = -1;
}

static inline void fm_deinit(struct fake_model *m) {
    free(m->kv);
    free(m->res);
}

#define FM_FAIL(m, ...)                                                                            \
    do {                                                                                           \
        if (!(m)->fail[0]) snprintf((m)->fail, sizeof(m)->fail, __VA_ARGS__);                      \
    } while (0)

/* What the KV cache holds at position p of r: the token id, or for image placeholders a
 * value derived from the image (two images with the same placeholder ids differ). */
static inline int32_t fm_slot_value(const struct request *r, int32_t p) {
    for (int32_t j = 0; j < r->n_images; j++) {
        const struct req_image *im = &r->images[j];
        if (p >= im->offset && p < im->offset + im->n_tokens)
            return 0x40000000 +
                   (int32_t)((im->hash * 31u + (uint64_t)(p - im->offset)) & 0x3fffffff);
    }
    return r->tokens[p];
}

static inline bool fm_has_image(const struct fake_model *m, uint64_t h) {
    for (int32_t i = 0; i < m->n_enc; i++)
        if (m->enc[i] == h) return true;
    return false;
}

static inline void fm_images(struct fake_model *m, const struct sched_output *so) {
    for (int32_t i = 0; i < so->n_freed_images; i++) {
        int32_t k = 0;
        for (int32_t j = 0; j < m->n_enc; j++)
            if (m->enc[j] != so->freed_images[i]) m->enc[k++] = m->enc[j];
        m->n_enc = k;
    }
    for (int32_t i = 0; i < so->n_encode; i++) {
        const struct sched_encode *x = &so->encode[i];
        if (x->item < 0 || x->item >= so->n_items) {
            FM_FAIL(m, "encode entry %d: item %d", i, x->item);
            continue;
        }
        const struct request *r = so->items[x->item].req;
        uint64_t h = r->images[x->image].hash;
        if (fm_has_image(m, h))
            FM_FAIL(m, "image %llx encoded twice", (unsigned long long)h);
        else if (m->n_enc < FM_MAX_IMAGES)
            m->enc[m->n_enc++] = h;
        m->n_encodes++;
    }
}

/* Runs one step: checks the plan, writes the fake KV, samples. */
static inline void fm_execute(struct fake_model *m, const struct block_pool *bp,
                              const struct sched_output *so, int32_t *sampled) {
    int32_t bs = m->cfg.block_size, n_tok = 0;
    m->n_steps++;
    if (so->n_items > m->cfg.max_num_seqs) FM_FAIL(m, "%d items > max_num_seqs", so->n_items);
    fm_images(m, so);
    for (int32_t i = 0; i < so->n_items; i++) {
        const struct sched_item *it = &so->items[i];
        const struct request *r = it->req;
        n_tok += it->n_new;
        for (int32_t j = 0; j < i; j++)
            if (so->items[j].req == r)
                FM_FAIL(m, "request %llu twice in a step", (unsigned long long)r->id);
        if (it->n_new < 1 || it->n_computed != r->n_computed ||
            it->n_computed + it->n_new > r->n_tokens ||
            (int64_t)r->n_blocks * bs < it->n_computed + it->n_new ||
            it->sample != (it->n_computed + it->n_new == r->n_tokens)) {
            FM_FAIL(m, "bad item for request %llu: nc %d new %d tokens %d blocks %d",
                    (unsigned long long)r->id, it->n_computed, it->n_new, r->n_tokens, r->n_blocks);
            continue;
        }
        for (int32_t p = 0; p < it->n_computed; p++) {
            int32_t slot = r->blocks[p / bs] * bs + p % bs;
            if (m->kv[slot] != fm_slot_value(r, p)) {
                FM_FAIL(m, "request %llu: KV at position %d holds %d, expected %d",
                        (unsigned long long)r->id, p, m->kv[slot], fm_slot_value(r, p));
                break;
            }
        }
        for (int32_t p = it->n_computed; p < it->n_computed + it->n_new; p++) {
            int32_t b = r->blocks[p / bs];
            if (bp_ref_of(bp, b) != 1)
                FM_FAIL(m, "request %llu writes block %d shared by %d", (unsigned long long)r->id,
                        b, bp_ref_of(bp, b));
            for (int32_t j = 0; j < r->n_images; j++) {
                const struct req_image *im = &r->images[j];
                if (p >= im->offset && p < im->offset + im->n_tokens && !fm_has_image(m, im->hash))
                    FM_FAIL(m, "request %llu: image %d not encoded at position %d",
                            (unsigned long long)r->id, j, p);
            }
            m->kv[b * bs + p % bs] = fm_slot_value(r, p);
        }
        sampled[i] = it->sample ? (m->token_fn ? m->token_fn(r) : fm_default_token(r)) : -1;
    }
    if (n_tok != so->n_tokens || n_tok > m->cfg.max_num_batched_tokens)
        FM_FAIL(m, "step tokens %d (reported %d, budget %d)", n_tok, so->n_tokens,
                m->cfg.max_num_batched_tokens);
}

static inline struct fm_result *fm_add_result(struct fake_model *m) {
    if (m->n_res == m->cap_res) {
        m->cap_res = m->cap_res ? 2 * m->cap_res : 64;
        m->res = realloc(m->res, (size_t)m->cap_res * sizeof *m->res);
    }
    struct fm_result *x = &m->res[m->n_res++];
    memset(x, 0, sizeof *x);
    return x;
}

/* After sched_update: records the requests that finished in this step. */
static inline void fm_collect(struct fake_model *m, const struct sched_output *so) {
    for (int32_t i = 0; i < so->n_items; i++) {
        const struct request *r = so->items[i].req;
        if (r->state != REQ_FINISHED) continue;
        struct fm_result *x = fm_add_result(m);
        x->id = r->id;
        x->index = r->index;
        x->finish = r->finish;
        x->stop_token = r->stop_token;
        x->n_prompt = r->n_prompt;
        x->n_out = req_n_output(r) < FM_MAX_OUT ? req_n_output(r) : FM_MAX_OUT;
        memcpy(x->out, r->tokens + r->n_prompt, (size_t)x->n_out * sizeof *x->out);
    }
    for (int32_t i = 0; i < so->n_done; i++) {
        if (so->done[i].finish != REQ_FINISH_ABORT) continue;
        struct fm_result *x = fm_add_result(m);
        x->id = so->done[i].id;
        x->index = so->done[i].index;
        x->finish = REQ_FINISH_ABORT;
        x->stop_token = -1;
    }
}

static inline struct fm_result *fm_find(struct fake_model *m, uint64_t id, int32_t index) {
    for (int32_t i = 0; i < m->n_res; i++)
        if (m->res[i].id == id && m->res[i].index == index) return &m->res[i];
    return NULL;
}

/* One full engine step; returns the step's output (valid until the next call). */
static inline int fm_step(struct fake_model *m, struct sched *s, struct arena *a,
                          struct sched_output *so) {
    struct err e = {0};
    int32_t sampled[4096];
    arena_reset(a);
    int rc = sched_step(s, a, so, &e);
    if (rc != 0) {
        FM_FAIL(m, "sched_step: %s", e.msg);
        return rc;
    }
    if (so->n_items > 4096) {
        FM_FAIL(m, "too many items");
        return -1;
    }
    fm_execute(m, sched_pool(s), so, sampled);
    rc = sched_update(s, so, sampled, &e);
    if (rc != 0) FM_FAIL(m, "sched_update: %s", e.msg);
    if (sched_check_ex(s, &e) != 0)
        FM_FAIL(m, "sched_check after step %lld: %s", (long long)m->n_steps, e.msg);
    fm_collect(m, so);
    return rc;
}

/* Steps until nothing is pending and every finished request was reported. */
static inline void fm_run(struct fake_model *m, struct sched *s, struct arena *a,
                          int32_t max_steps) {
    struct sched_output so;
    for (int32_t i = 0; i < max_steps && !m->fail[0]; i++) {
        if (fm_step(m, s, a, &so) != 0) return;
        if (so.n_items == 0 && sched_idle(s)) return;
        if (so.n_items == 0 && so.n_done == 0) {
            FM_FAIL(m, "stalled with %d pending", sched_n_pending(s));
            return;
        }
    }
}

#endif
