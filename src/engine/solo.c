/* solo: the engine's step loop (schedule -> run -> update) for one request at a time on the
 * caller's thread (see solo.h).
 *
 * Invariants:
 *   1. between runs the scheduler holds no request (sched_idle): every run steps until the
 *      request has finished and been reported done, so the runner drops its state too;
 *   2. the step arena is reset before each sched_step and nothing read from the plan is kept
 *      past the step.
 * Thread: the lm's backend thread only. */
#include "engine/solo.h"

#include "engine/request.h"
#include "engine/runner.h"
#include "model/lm.h"
#include "model/mm_prompt.h"
#include "util/limits.h"
#include "util/arena.h"

#include <stdlib.h>
#include <string.h>

struct solo {
    struct sched *s;
    struct runner *rn;
    struct arena a;
    int32_t *sampled; /* (max_num_seqs) */
    int32_t vocab;
};

int solo_new(struct solo **out, struct lm *m, struct vit *v, const struct solo_opts *o,
             struct err *e) {
    struct solo *so = calloc(1, sizeof *so);
    if (!so) return err_set(e, VELA_ENOMEM, "solo: out of memory");
    int rc = 0;
    so->s = sched_new(&o->sched, e);
    if (!so->s) rc = e->code ? e->code : VELA_EINVAL;
    struct runner_opts ro = {.max_tokens = o->sched.max_num_batched_tokens,
                             .max_seqs = o->sched.max_num_seqs,
                             .max_model_len = o->sched.max_model_len,
                             .seed = o->seed};
    if (rc == 0) rc = runner_new(&so->rn, m, &ro, e);
    if (rc == 0 && v) rc = runner_set_vit(so->rn, v, e);
    if (rc == 0 && arena_init(&so->a, sched_step_arena_bytes(&o->sched)) != 0)
        rc = err_set(e, VELA_ENOMEM, "solo: out of memory for the step arena");
    so->sampled = malloc((size_t)o->sched.max_num_seqs * sizeof *so->sampled);
    if (rc == 0 && !so->sampled) rc = err_set(e, VELA_ENOMEM, "solo: out of memory");
    so->vocab = lm_vocab(m);
    if (rc != 0) {
        solo_free(so);
        return rc;
    }
    *out = so;
    return 0;
}

void solo_free(struct solo *s) {
    if (!s) return;
    runner_free(s->rn);
    sched_free(s->s);
    arena_deinit(&s->a);
    free(s->sampled);
    free(s);
}

const struct sched *solo_sched(const struct solo *s) {
    return s->s;
}

/* Reads item i's results after the forward: first logits, token callback, errors. */
static int take_item(struct solo *s, const struct sched_output *so, int32_t i, float *first,
                     solo_token_fn fn, void *ctx, struct solo_result *res, struct err *e) {
    const struct sched_item *it = &so->items[i];
    if (!it->sample) return 0;
    if (s->sampled[i] < 0) {
        const struct smp_out *o = runner_item_out(s->rn, i);
        return err_set(e, VELA_EINVAL, "request %llu: %s", (unsigned long long)it->req->id,
                       o ? o->err.msg : "no token sampled");
    }
    if (res->n_output == 0 && first) {
        const float *l = runner_item_logits(s->rn, i);
        if (l) memcpy(first, l, (size_t)s->vocab * sizeof *first);
    }
    res->n_output++;
    if (fn && fn(ctx, s->sampled[i]) != 0) sched_abort(s->s, it->req->id);
    return 0;
}

int solo_run(struct solo *s, struct request *r, solo_token_fn fn, void *ctx, float *first_logits,
             struct solo_result *res, struct err *e) {
    struct solo_result rs = {0};
    uint64_t id = r->id;
    int64_t enc0 = runner_n_encoded(s->rn);
    int rc = sched_add(s->s, r, e);
    if (rc != 0) {
        req_free(r);
        return rc;
    }
    while (rc == 0 && !sched_idle(s->s)) {
        struct sched_output so;
        arena_reset(&s->a);
        rc = sched_step(s->s, &s->a, &so, e);
        if (rc != 0) break;
        runner_drop_done(s->rn, &so);
        for (int32_t i = 0; i < so.n_done; i++)
            if (so.done[i].id == id) rs.finish = so.done[i].finish;
        if (so.n_items == 0) continue;
        rc = runner_execute(s->rn, &so, s->sampled, e);
        for (int32_t i = 0; rc == 0 && i < so.n_items; i++) {
            if (rs.n_steps == 0) rs.n_hit_tokens = so.items[i].req->n_hit_tokens;
            if (so.items[i].n_computed < so.items[i].req->n_prompt)
                rs.n_prompt_rows += so.items[i].n_new;
            rc = take_item(s, &so, i, first_logits, fn, ctx, &rs, e);
        }
        if (rc != 0) {
            /* the request cannot go on: cancel it and step until the scheduler lets go */
            sched_abort(s->s, id);
            struct err e2 = {0};
            while (!sched_idle(s->s)) {
                arena_reset(&s->a);
                if (sched_step(s->s, &s->a, &so, &e2) != 0) break;
                runner_drop_done(s->rn, &so);
                if (so.n_items > 0) break; /* aborts are applied before planning: not reached */
            }
            break;
        }
        rc = sched_update(s->s, &so, s->sampled, e);
        rs.n_steps++;
    }
    rs.n_encoded = runner_n_encoded(s->rn) - enc0;
    if (res) *res = rs;
    return rc;
}

struct request *solo_request(uint64_t id, struct mm_prompt *mm, const struct sampling_params *p,
                             struct err *e) {
    if (mm->n_media > VELA_REQ_MAX_IMAGES) {
        err_set(e, VELA_ELIMIT, "%d images in one request, limit %d", mm->n_media,
                VELA_REQ_MAX_IMAGES);
        return NULL;
    }
    struct req_image *im = calloc((size_t)mm->n_media + 1, sizeof *im);
    if (!im) {
        err_set(e, VELA_ENOMEM, "out of memory for %d images", mm->n_media);
        return NULL;
    }
    for (int32_t k = 0; k < mm->n_media; k++)
        im[k] = (struct req_image){.hash = mm->media[k].hash,
                                   .offset = mm->media[k].offset,
                                   .n_tokens = mm->media[k].n_tokens};
    struct request *r = req_new(id, mm->ids, mm->n_ids, im, mm->n_media, p, e);
    free(im);
    if (r && req_attach_mm(r, mmp_ref(mm), e) != 0) {
        mmp_unref(mm);
        req_free(r);
        r = NULL;
    }
    return r;
}
