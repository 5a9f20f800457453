/* engine: the engine loop (style.md §2) on its own thread, with its inbox and outbox.
 *
 *   for (;;) {
 *       take inbox                 new requests -> sched_add, aborts -> sched_abort
 *       reset the step arena
 *       sched_step                 plan: items, done records
 *       drop done requests         runner state, live ids; ABORT events
 *       nothing scheduled? wait for the inbox
 *       runner_execute             forward + sample; failure -> ERROR events, abort the items
 *       sched_update               append tokens, stop checks, free, cache blocks
 *       publish                    one event batch per step to the outbox
 *   }
 *
 * Invariants:
 *   1. live maps every id the engine holds (submitted and admitted, final events not yet all
 *      published) to (samples not yet done) * 2 + failed; an id leaves it when the scheduler
 *      reports its last sample done (runner state is dropped at the same point).
 *   2. A failed id (ERROR event sent) is aborted in the scheduler at once, and its later done
 *      records publish nothing: exactly one final event per sample, or one ERROR per id.
 *   3. STOP and LENGTH are published with the token that caused them (after sched_update);
 *      the scheduler's done record for them is then silent. ABORT is published from the done
 *      record, since an abort has no token.
 *   4. Nothing from the step arena outlives the step; events are copied into one allocation
 *      per batch, owned by the consumer once taken.
 * Threads: the engine thread runs eng_step; see engine.h for the rest. */
#include "engine/engine.h"

#include "engine/idmap.h"
#include "engine/request.h"
#include "engine/runner.h"
#include "model/config.h"
#include "model/lm.h"
#include "util/arena.h"
#include "util/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MSG_SUBMIT, MSG_ABORT };

struct eng_msg {
    struct queue_node node; /* first member */
    int kind;
    struct request *req; /* MSG_SUBMIT: owned by the message until taken */
    uint64_t id;         /* MSG_ABORT */
};

/* Events of the step being built, copied into one allocation at publish time. */
struct ebuf {
    struct eng_event *ev;
    int64_t *msg_off; /* (cap) offset of the event's message in text, -1 when none */
    int64_t *plp_off; /* (cap) offset of the event's prompt_logprobs in text, -1 when none */
    int32_t n, cap;
    char *text;
    size_t n_text, cap_text;
};

struct engine {
    struct lm *m; /* borrowed */
    struct eng_config cfg;
    struct sched *sched;
    struct runner *runner;
    struct arena step;
    int32_t *sampled; /* (max_num_seqs) */
    struct idmap live;
    struct ebuf eb;
    int64_t n_steps;
    struct queue inbox, outbox;
    struct queue_node *pending; /* inbox nodes taken by a wait, processed by the next step */
    pthread_t thread;
    bool started;
    bool vision; /* eng_set_vit attached a vision tower */
    atomic_bool stop;
    atomic_uint_fast64_t next_id;
    pthread_mutex_t stats_mu;
    struct eng_stats stats; /* under stats_mu */
};

void eng_sampling_defaults(struct sampling_params *p, const struct gen_config *g,
                           const struct model_config *c) {
    sp_defaults(p);
    sp_apply_gen_config(p, g);
    if (p->n_eos_token_ids == 0 && c)
        for (int32_t i = 0; i < c->n_eos_token_ids && i < VELA_CFG_MAX_EOS_IDS; i++)
            p->eos_token_ids[p->n_eos_token_ids++] = c->eos_token_ids[i];
}

/* ---- events ---- */

static struct eng_event *ebuf_add(struct engine *en, uint64_t id, int32_t index) {
    struct ebuf *b = &en->eb;
    if (b->n == b->cap) {
        int32_t cap = b->cap ? 2 * b->cap : 64;
        struct eng_event *ev = realloc(b->ev, (size_t)cap * sizeof *ev);
        if (ev) b->ev = ev;
        int64_t *mo = ev ? realloc(b->msg_off, (size_t)cap * sizeof *mo) : NULL;
        if (mo) b->msg_off = mo;
        int64_t *po = mo ? realloc(b->plp_off, (size_t)cap * sizeof *po) : NULL;
        if (po) b->plp_off = po;
        if (!po) {
            LOG_E("engine: out of memory for events; an event of request %llu is lost",
                  (unsigned long long)id);
            return NULL;
        }
        b->cap = cap;
    }
    struct eng_event *v = &b->ev[b->n];
    memset(v, 0, sizeof *v);
    v->id = id, v->index = index, v->token = -1, v->stop_token = -1;
    b->plp_off[b->n] = -1;
    b->msg_off[b->n++] = -1;
    return v;
}

/* Room for n more bytes in the text area, at an offset aligned for any field; -1 on ENOMEM. */
static int64_t ebuf_text(struct ebuf *b, size_t n) {
    size_t at = (b->n_text + 15) & ~(size_t)15;
    if (at + n > b->cap_text) {
        size_t cap = b->cap_text ? 2 * b->cap_text : 4096;
        while (cap < at + n) cap *= 2;
        char *t = realloc(b->text, cap);
        if (!t) return -1;
        b->text = t, b->cap_text = cap;
    }
    b->n_text = at + n;
    return (int64_t)at;
}

/* Copies n prompt_logprobs entries into the last event's batch. */
static void ebuf_prompt_logprobs(struct engine *en, const struct smp_logprobs *lp, int32_t n) {
    struct ebuf *b = &en->eb;
    int64_t at = ebuf_text(b, (size_t)n * sizeof *lp);
    if (at < 0) {
        LOG_E("engine: out of memory for %d prompt logprobs; they are lost", n);
        return;
    }
    memcpy(b->text + at, lp, (size_t)n * sizeof *lp);
    b->plp_off[b->n - 1] = at;
    b->ev[b->n - 1].n_prompt_logprobs = n;
}

/* An ERROR event for id with msg (copied). */
static void ebuf_error(struct engine *en, uint64_t id, int32_t index, const char *msg) {
    struct eng_event *v = ebuf_add(en, id, index);
    if (!v) return;
    v->finish = ENG_FINISH_ERROR;
    struct ebuf *b = &en->eb;
    size_t len = strlen(msg) + 1;
    if (b->n_text + len > b->cap_text) {
        size_t cap = b->cap_text ? 2 * b->cap_text : 4096;
        while (cap < b->n_text + len) cap *= 2;
        char *t = realloc(b->text, cap);
        if (!t) return; /* the event stays, without its message */
        b->text = t, b->cap_text = cap;
    }
    memcpy(b->text + b->n_text, msg, len);
    b->msg_off[b->n - 1] = (int64_t)b->n_text;
    b->n_text += len;
}

/* Moves the step's events into one allocation on the outbox. */
static void publish(struct engine *en) {
    struct ebuf *b = &en->eb;
    if (b->n == 0) return;
    size_t head = (sizeof(struct eng_events) + 63) & ~(size_t)63;
    size_t evb = (size_t)b->n * sizeof(struct eng_event);
    struct eng_events *out = malloc(head + evb + b->n_text);
    if (!out) {
        LOG_E("engine: out of memory; %d events of step %lld lost", b->n, (long long)en->n_steps);
    } else {
        out->n = b->n;
        out->step = en->n_steps;
        out->ev = (struct eng_event *)(void *)((char *)out + head);
        char *text = (char *)out + head + evb;
        memcpy(out->ev, b->ev, evb);
        if (b->n_text) memcpy(text, b->text, b->n_text);
        for (int32_t i = 0; i < b->n; i++)
            out->ev[i].prompt_logprobs =
                b->plp_off[i] >= 0
                    ? (const struct smp_logprobs *)(const void *)(text + b->plp_off[i])
                    : NULL;
        for (int32_t i = 0; i < b->n; i++)
            out->ev[i].error = b->msg_off[i] >= 0                      ? text + b->msg_off[i]
                               : out->ev[i].finish == ENG_FINISH_ERROR ? "out of memory"
                                                                       : NULL;
        if (!queue_push(&en->outbox, &out->node)) free(out);
    }
    b->n = 0;
    b->n_text = 0;
}

void eng_events_free(struct eng_events *b) {
    free(b);
}

void eng_events_free_all(struct eng_events *b) {
    while (b) {
        struct eng_events *nx = eng_events_next(b);
        free(b);
        b = nx;
    }
}

/* ---- live ids ---- */

/* Marks id failed: one ERROR event, scheduler abort, silence afterwards. */
static void fail_id(struct engine *en, uint64_t id, int32_t index, const char *msg) {
    int64_t *v = idmap_get(&en->live, id, -1);
    if (!v || (*v & 1)) return; /* unknown, or already failed */
    *v |= 1;
    sched_abort(en->sched, id);
    ebuf_error(en, id, index, msg);
}

/* ---- inbox ---- */

static void admit(struct engine *en, struct request *r) {
    struct err e = {0};
    uint64_t id = r->id;
    int rc = 0;
    if (idmap_get(&en->live, id, -1))
        rc = err_set(&e, VELA_EINVAL, "request id %llu is already in use", (unsigned long long)id);
    else if (r->n_images > 0 && (!en->vision || !r->mm))
        rc = err_set(&e, VELA_EUNSUP, "image inputs need %s",
                     en->vision ? "their pixel values" : "the vision tower, which is not loaded");
    if (rc == 0) rc = idmap_put(&en->live, id, -1, 2, &e); /* one sample until it forks */
    if (rc == 0) {
        rc = sched_add(en->sched, r, &e);
        if (rc != 0) idmap_del(&en->live, id, -1);
    }
    if (rc != 0) {
        ebuf_error(en, id, r->index, e.msg);
        req_free(r);
    }
}

static void take_inbox(struct engine *en) {
    struct queue_node *n = en->pending, *more = queue_take(&en->inbox);
    en->pending = NULL;
    if (!n) {
        n = more;
    } else if (more) { /* messages that came after the wait returned go behind its batch */
        struct queue_node *t = n;
        while (t->next) t = t->next;
        t->next = more;
    }
    while (n) {
        struct eng_msg *msg = (struct eng_msg *)(void *)n;
        n = n->next;
        if (msg->kind == MSG_SUBMIT) {
            admit(en, msg->req);
        } else {
            int64_t *v = idmap_get(&en->live, msg->id, -1);
            if (v && !(*v & 1)) sched_abort(en->sched, msg->id);
        }
        free(msg);
    }
}

/* ---- the step ---- */

static enum eng_finish finish_of(int32_t f) {
    switch (f) {
        case REQ_FINISH_STOP:
            return ENG_FINISH_STOP;
        case REQ_FINISH_LENGTH:
            return ENG_FINISH_LENGTH;
        case REQ_FINISH_ABORT:
            return ENG_FINISH_ABORT;
        default:
            return ENG_FINISH_NONE;
    }
}

/* Done records: runner state and live ids go; aborts are reported here (invariant 3). */
static void handle_done(struct engine *en, const struct sched_output *so) {
    runner_drop_done(en->runner, so);
    for (int32_t i = 0; i < so->n_done; i++) {
        const struct sched_done *d = &so->done[i];
        int64_t *v = idmap_get(&en->live, d->id, -1);
        if (!v) continue; /* its id was already released (a failed fork, see fail_forks) */
        bool failed = *v & 1;
        *v -= 2;
        if (*v < 2) idmap_del(&en->live, d->id, -1);
        if (failed || d->finish != REQ_FINISH_ABORT) continue;
        struct eng_event *ev = ebuf_add(en, d->id, d->index);
        if (ev) ev->finish = ENG_FINISH_ABORT;
    }
}

/* A failed forward fails every request of the step (the engine lives on). */
static void fail_items(struct engine *en, const struct sched_output *so, const struct err *e) {
    char msg[VELA_ERR_MSG_MAX + 32];
    snprintf(msg, sizeof msg, "forward pass failed: %s", e->msg);
    for (int32_t i = 0; i < so->n_items; i++)
        fail_id(en, so->items[i].req->id, so->items[i].req->index, msg);
}

/* Token events after sched_update (invariant 3). */
static void publish_tokens(struct engine *en, const struct sched_output *so) {
    for (int32_t i = 0; i < so->n_items; i++) {
        const struct request *r = so->items[i].req;
        if (!so->items[i].sample || en->sampled[i] < 0) continue;
        int64_t *v = idmap_get(&en->live, r->id, -1);
        if (!v || (*v & 1)) continue;
        struct eng_event *ev = ebuf_add(en, r->id, r->index);
        if (!ev) continue;
        ev->token = en->sampled[i];
        ev->n_output = req_n_output(r);
        ev->n_prompt = r->n_prompt;
        ev->n_cached = r->n_hit_tokens;
        if (r->state == REQ_FINISHED) {
            ev->finish = finish_of(r->finish);
            ev->stop_token = r->stop_token;
        }
        const struct smp_out *o = runner_item_out(en->runner, i);
        if (r->params.logprobs >= 0 && o) {
            ev->has_logprobs = true;
            ev->logprob = o->logprob, ev->rank = o->rank, ev->n_top = o->n_top;
            memcpy(ev->top_ids, o->top_ids, sizeof ev->top_ids);
            memcpy(ev->top_logprobs, o->top_logprobs, sizeof ev->top_logprobs);
        }
        int32_t n_plp = 0;
        const struct smp_logprobs *plp = runner_item_prompt_logprobs(en->runner, so, i, &n_plp);
        if (plp && n_plp > 0) ebuf_prompt_logprobs(en, plp, n_plp);
    }
}

/* After sched_update: the n - 1 samples an n > 1 request forked at its first token now
 * exist and will report too. If forking failed, the request is failed as a whole and its live
 * entry is released at the first done record (how many samples were created is not known). */
static void count_forks(struct engine *en, const struct sched_output *so, bool fork_failed,
                        const struct err *e) {
    for (int32_t i = 0; i < so->n_items; i++) {
        const struct request *r = so->items[i].req;
        if (!so->items[i].sample || r->params.n < 2 || !r->forked || req_n_output(r) != 1 ||
            r->index != 0)
            continue;
        int64_t *v = idmap_get(&en->live, r->id, -1);
        if (!v) continue;
        if (!fork_failed) {
            *v += 2 * (int64_t)(r->params.n - 1);
        } else if (!(*v & 1)) {
            fail_id(en, r->id, r->index, e->msg);
            v = idmap_get(&en->live, r->id, -1);
            if (v) *v = 2 | 1;
        }
    }
}

static void update_stats(struct engine *en, const struct sched_output *so, int32_t n_sampled,
                         bool failed) {
    pthread_mutex_lock(&en->stats_mu);
    en->stats.n_steps = en->n_steps;
    en->stats.n_step_tokens += so->n_tokens;
    en->stats.n_sampled += n_sampled;
    en->stats.n_failed_steps += failed;
    struct runner_times t;
    runner_get_times(en->runner, &t);
    en->stats.t_prepare = t.prepare, en->stats.t_forward = t.forward, en->stats.t_sample = t.sample;
    sched_get_stats(en->sched, &en->stats.sched);
    pthread_mutex_unlock(&en->stats_mu);
}

/* Runs the planned step so; returns the failure code of the forward (0 when it ran). */
static int run_items(struct engine *en, const struct sched_output *so, struct err *e) {
    int rc = runner_execute(en->runner, so, en->sampled, e);
    if (rc != 0) {
        LOG_W("engine: step %lld failed: %s", (long long)en->n_steps, e->msg);
        fail_items(en, so, e);
        return rc;
    }
    /* A sequence the sampler refused still needs a token for the scheduler to stay
     * consistent; its request is failed right after the update (so that samples it forks
     * are aborted too), and the token never shows. */
    int32_t n_sampled = 0, n_bad = 0;
    for (int32_t i = 0; i < so->n_items; i++) {
        if (!so->items[i].sample) continue;
        if (en->sampled[i] >= 0) {
            n_sampled++;
        } else {
            en->sampled[i] = 0;
            n_bad++;
        }
    }
    struct err ue = {0};
    int urc = sched_update(en->sched, so, en->sampled, &ue);
    count_forks(en, so, urc != 0, &ue);
    for (int32_t i = 0; n_bad > 0 && i < so->n_items; i++) {
        const struct smp_out *o = runner_item_out(en->runner, i);
        if (!so->items[i].sample || !o || o->rc == 0) continue;
        fail_id(en, so->items[i].req->id, so->items[i].req->index, o->err.msg);
        en->sampled[i] = -1;
    }
    publish_tokens(en, so);
    update_stats(en, so, n_sampled, false);
    return 0;
}

int eng_step(struct engine *en, bool *idle, struct err *e) {
    *idle = false;
    take_inbox(en);
    arena_reset(&en->step);
    struct sched_output so;
    int rc = sched_step(en->sched, &en->step, &so, e);
    if (rc != 0) { /* a sizing bug: nothing was planned; report and wait for news */
        LOG_E("engine: %s", e->msg);
        publish(en);
        *idle = true;
        return rc;
    }
    en->n_steps++;
    handle_done(en, &so);
    if (so.n_items == 0) {
        publish(en);
        update_stats(en, &so, 0, false);
        *idle = so.n_done == 0 || sched_idle(en->sched);
        return 0;
    }
    rc = run_items(en, &so, e);
    if (rc != 0) update_stats(en, &so, 0, true);
    publish(en);
    return rc;
}

/* ---- thread ---- */

static void *eng_main(void *arg) {
    struct engine *en = arg;
    while (!atomic_load(&en->stop)) {
        bool idle;
        struct err e = {0};
        eng_step(en, &idle, &e);
        if (idle && !atomic_load(&en->stop)) en->pending = queue_wait(&en->inbox, -1);
    }
    return NULL;
}

int eng_new(struct engine **out, struct lm *m, const struct eng_config *c, struct err *e) {
    if (c->sched.n_blocks != lm_n_blocks(m) || c->sched.block_size != lm_block_size(m))
        return err_set(e, VELA_EINVAL,
                       "engine: scheduler has %d blocks of %d tokens, the KV cache %d of %d",
                       c->sched.n_blocks, c->sched.block_size, lm_n_blocks(m), lm_block_size(m));
    struct engine *en = calloc(1, sizeof *en);
    if (!en) return err_set(e, VELA_ENOMEM, "engine: out of memory");
    en->m = m, en->cfg = *c;
    atomic_init(&en->stop, false);
    atomic_init(&en->next_id, 1);
    struct runner_opts ro = {.max_tokens = c->sched.max_num_batched_tokens,
                             .max_seqs = c->sched.max_num_seqs,
                             .max_model_len = c->sched.max_model_len,
                             .seed = c->seed};
    int rc = 0, stage = 0;
    en->sched = sched_new(&c->sched, e);
    if (!en->sched) rc = e->code ? e->code : VELA_ENOMEM;
    if (rc == 0) rc = runner_new(&en->runner, m, &ro, e);
    if (rc == 0) rc = arena_init(&en->step, sched_step_arena_bytes(&c->sched));
    if (rc != 0 && rc == VELA_ENOMEM && !e->msg[0]) err_set(e, rc, "engine: out of memory");
    en->sampled = rc == 0 ? calloc((size_t)c->sched.max_num_seqs, sizeof *en->sampled) : NULL;
    if (rc == 0 && !en->sampled) rc = err_set(e, VELA_ENOMEM, "engine: out of memory");
    if (rc == 0) rc = idmap_init(&en->live, 2 * (uint32_t)c->sched.max_num_seqs, e);
    if (rc == 0 && (rc = queue_init(&en->inbox, e)) == 0) stage = 1;
    if (rc == 0 && (rc = queue_init(&en->outbox, e)) == 0) stage = 2;
    if (rc == 0 && pthread_mutex_init(&en->stats_mu, NULL) != 0)
        rc = err_set(e, VELA_ENOMEM, "engine: cannot create a mutex");
    if (rc != 0) {
        if (stage >= 1) queue_deinit(&en->inbox);
        if (stage >= 2) queue_deinit(&en->outbox);
        runner_free(en->runner);
        sched_free(en->sched);
        arena_deinit(&en->step);
        idmap_deinit(&en->live);
        free(en->sampled);
        free(en);
        return rc;
    }
    *out = en;
    return 0;
}

int eng_set_vit(struct engine *en, struct vit *v, struct err *e) {
    if (en->started) return err_set(e, VELA_EINVAL, "engine: vision tower set after start");
    int rc = runner_set_vit(en->runner, v, e);
    if (rc == 0) en->vision = true;
    return rc;
}

int eng_start(struct engine *en, struct err *e) {
    if (en->started) return err_set(e, VELA_EINVAL, "engine: already started");
    if (pthread_create(&en->thread, NULL, eng_main, en) != 0)
        return err_set(e, VELA_ENOMEM, "engine: cannot start the engine thread");
    en->started = true;
    return 0;
}

void eng_stop(struct engine *en) {
    if (!en) return;
    atomic_store(&en->stop, true);
    queue_close(&en->inbox);
    if (en->started) pthread_join(en->thread, NULL);
    en->started = false;
}

static void free_msgs(struct queue_node *n) {
    while (n) {
        struct eng_msg *msg = (struct eng_msg *)(void *)n;
        n = n->next;
        req_free(msg->req);
        free(msg);
    }
}

void eng_free(struct engine *en) {
    if (!en) return;
    eng_stop(en);
    free_msgs(en->pending);
    free_msgs(queue_deinit(&en->inbox));
    eng_events_free_all((struct eng_events *)(void *)queue_deinit(&en->outbox));
    pthread_mutex_destroy(&en->stats_mu);
    runner_free(en->runner);
    sched_free(en->sched);
    arena_deinit(&en->step);
    idmap_deinit(&en->live);
    free(en->eb.ev), free(en->eb.msg_off), free(en->eb.plp_off), free(en->eb.text);
    free(en->sampled);
    free(en);
}

/* ---- any thread ---- */

uint64_t eng_next_id(struct engine *en) {
    return atomic_fetch_add(&en->next_id, 1);
}

static int post(struct engine *en, struct eng_msg *msg, struct err *e) {
    if (!queue_push(&en->inbox, &msg->node)) {
        req_free(msg->req);
        free(msg);
        return err_set(e, VELA_EINVAL, "engine: shutting down");
    }
    return 0;
}

int eng_submit(struct engine *en, struct request *r, struct err *e) {
    struct eng_msg *msg = calloc(1, sizeof *msg);
    if (!msg) {
        req_free(r);
        return err_set(e, VELA_ENOMEM, "engine: out of memory");
    }
    msg->kind = MSG_SUBMIT;
    msg->req = r;
    return post(en, msg, e);
}

int eng_abort(struct engine *en, uint64_t id, struct err *e) {
    struct eng_msg *msg = calloc(1, sizeof *msg);
    if (!msg) return err_set(e, VELA_ENOMEM, "engine: out of memory");
    msg->kind = MSG_ABORT;
    msg->id = id;
    return post(en, msg, e);
}

struct eng_events *eng_take_events(struct engine *en) {
    return (struct eng_events *)(void *)queue_take(&en->outbox);
}

struct eng_events *eng_wait_events(struct engine *en, int64_t timeout_ms) {
    return (struct eng_events *)(void *)queue_wait(&en->outbox, timeout_ms);
}

int eng_event_fd(const struct engine *en) {
    return queue_fd(&en->outbox);
}

void eng_stats(struct engine *en, struct eng_stats *st) {
    pthread_mutex_lock(&en->stats_mu);
    *st = en->stats;
    pthread_mutex_unlock(&en->stats_mu);
}

int eng_check(struct engine *en, struct err *e) {
    int rc = sched_check_ex(en->sched, e);
    if (rc != 0) return rc;
    if (sched_n_pending(en->sched) > 0 || !sched_idle(en->sched)) return 0;
    struct sched_stats st;
    sched_get_stats(en->sched, &st);
    if (st.n_free_blocks != st.n_blocks || runner_n_live(en->runner) != 0 || en->live.n != 0)
        return err_set(e, VELA_EINTERNAL,
                       "engine idle with %d of %d blocks free, %d runner states, %u live ids",
                       st.n_free_blocks, st.n_blocks, runner_n_live(en->runner), en->live.n);
    return 0;
}

int32_t eng_n_live(struct engine *en) {
    return (int32_t)en->live.n;
}
