/* Tests for engine/runner.c, driven by the real scheduler (no engine thread):
 *   - the five prompts of the transformers fixture tests/fixtures/lm/tiny.safetensors, run
 *     together through sched + runner with a 24-token step budget (chunked prefill, mixed
 *     prefill/decode steps), reproduce the reference's 32-token greedy continuations;
 *   - logprobs come back for sampled items (chosen id's logprob, rank, top-2 ordered);
 *   - runner state lives exactly as long as its request (0 states at the end; preempted
 *     requests keep theirs);
 *   - refused steps: images (no vision tower), options beyond the model's sizes;
 *   - backend sampling (be_sample, forced on the CPU backend): greedy steps give the
 *     sampler's tokens, seeded draws (plain, and with top-k, top-p and min-p) are the same
 *     under preemption, and steps that need the host (logprobs, a repetition penalty) go to
 *     the sampler with their logits on the host.
 * FP32 path and F32 KV (see tiny_engine.h for what exactness is asserted). */
#include "engine/runner.h"
#include "engine/sched.h"
#include "model/safetensors.h"
#include "util/arena.h"
#include "tiny_engine.h"

#define N_REF    5
#define N_GREEDY 32

struct loop {
    struct sched *s;
    struct runner *rn;
    struct arena a;
    int32_t sampled[64];
    int64_t steps, preempted, max_live;
};

static int32_t g_backend_sampling; /* runner_opts.backend_sampling of loop_open */

static int loop_open(struct loop *L, struct te_model *t, int32_t budget, int32_t n_blocks) {
    struct err e = {0};
    memset(L, 0, sizeof *L);
    struct sched_config c;
    sched_config_defaults(&c);
    c.n_blocks = n_blocks;
    c.max_num_batched_tokens = budget;
    c.max_num_seqs = 8;
    c.max_model_len = 512;
    L->s = sched_new(&c, &e);
    T_CHECK_(L->s != NULL, "sched_new: %s", e.msg);
    struct runner_opts o = {.max_tokens = budget,
                            .max_seqs = 8,
                            .max_model_len = 512,
                            .seed = 1,
                            .backend_sampling = g_backend_sampling};
    int rc = L->s ? runner_new(&L->rn, t->m, &o, &e) : -1;
    T_RC(rc, &e);
    if (rc == 0) rc = arena_init(&L->a, sched_step_arena_bytes(&c));
    return rc;
}

static void loop_close(struct loop *L) {
    runner_free(L->rn);
    sched_free(L->s);
    arena_deinit(&L->a);
}

/* One step; on_token(i) sees each sampled item before sched_update. Returns false when idle. */
static bool loop_step(struct loop *L, void (*on_item)(struct loop *, int32_t, void *),
                      struct sched_output *so, void *ctx) {
    struct err e = {0};
    arena_reset(&L->a);
    int rc = sched_step(L->s, &L->a, so, &e);
    T_RC(rc, &e);
    if (rc != 0) return false;
    runner_drop_done(L->rn, so);
    L->preempted += so->n_preempted;
    if (so->n_items == 0) return !sched_idle(L->s);
    rc = runner_execute(L->rn, so, L->sampled, &e);
    T_RC(rc, &e);
    if (rc != 0) return false;
    for (int32_t i = 0; on_item && i < so->n_items; i++) on_item(L, i, ctx);
    rc = sched_update(L->s, so, L->sampled, &e);
    T_RC(rc, &e);
    L->steps++;
    if (runner_n_live(L->rn) > L->max_live) L->max_live = runner_n_live(L->rn);
    return true;
}

struct ref_ctx {
    const struct sched_output *so;
    int32_t out[N_REF][N_GREEDY];
    int32_t n_out[N_REF];
    int bad_logprobs;
};

static void record(struct loop *L, int32_t i, void *arg) {
    struct ref_ctx *c = arg;
    const struct sched_item *it = &c->so->items[i];
    const struct smp_out *o = runner_item_out(L->rn, i);
    if (!it->sample) {
        c->bad_logprobs += o != NULL || L->sampled[i] != -1;
        return;
    }
    int32_t k = (int32_t)it->req->id;
    if (c->n_out[k] < N_GREEDY) c->out[k][c->n_out[k]++] = L->sampled[i];
    /* greedy: the chosen id is the most likely one, rank 1, logprob <= 0 */
    c->bad_logprobs += !o || o->n_top != 2 || o->top_ids[0] != L->sampled[i] || o->rank != 1 ||
                       !(o->logprob <= 0) || o->top_logprobs[0] < o->top_logprobs[1] ||
                       o->logprob != o->top_logprobs[0];
}

static void test_reference_greedy(void) {
    struct te_model t;
    struct err e = {0};
    if (te_open(&t, 24, 8, 64) != 0) {
        te_close(&t);
        return;
    }
    struct st_file *f = NULL;
    int rc = st_open(&f, t_src("tests/fixtures/lm/tiny.safetensors"), &e);
    T_RC(rc, &e);
    struct loop L;
    if (rc != 0 || loop_open(&L, &t, 24, 64) != 0) {
        st_close(f);
        te_close(&t);
        return;
    }
    const int32_t *greedy[N_REF];
    for (int i = 0; i < N_REF; i++) {
        char name[32];
        snprintf(name, sizeof name, "prompt_%d", i);
        const struct st_tensor *p = st_file_find(f, name);
        snprintf(name, sizeof name, "greedy_%d", i);
        const struct st_tensor *g = st_file_find(f, name);
        T_OK(p && g);
        if (!p || !g) goto out;
        greedy[i] = g->data;
        struct sampling_params sp = te_params(true, 0, N_GREEDY, true);
        T_RC(sched_add(L.s, te_request((uint64_t)i, p->data, (int32_t)p->n_elems, &sp), &e), &e);
    }
    struct ref_ctx c = {0};
    struct sched_output so;
    c.so = &so;
    for (int guard = 0; guard < 10000 && loop_step(&L, record, &so, &c); guard++) {
    }
    for (int i = 0; i < N_REF; i++) {
        int same = 0;
        while (same < c.n_out[i] && c.out[i][same] == greedy[i][same]) same++;
        T_CHECK_(c.n_out[i] == N_GREEDY && same == N_GREEDY,
                 "prompt %d: %d tokens, first difference from the reference at %d", i, c.n_out[i],
                 same);
    }
    T_EQ(c.bad_logprobs, 0);
    T_OK(L.steps > 32); /* the 163-token prompt alone takes 7 steps at 24 tokens a step */
    T_EQ(runner_n_live(L.rn), 0);
    T_EQ(L.max_live, N_REF);
    T_OK(sched_check(L.s));
out:
    loop_close(&L);
    st_close(f);
    te_close(&t);
}

/* A pool of 6 blocks (96 tokens) for four 40-token prompts with 24 tokens each: requests are
 * preempted, recomputed, and still keep their runner state (seeded RNG position), so their
 * tokens equal a run with a pool large enough for all. */
struct seq_ctx {
    const struct sched_output *so;
    int32_t out[4][24];
    int32_t n_out[4];
};

static void record_seq(struct loop *L, int32_t i, void *arg) {
    struct seq_ctx *c = arg;
    const struct sched_item *it = &c->so->items[i];
    int32_t k = (int32_t)it->req->id;
    if (it->sample && c->n_out[k] < 24) c->out[k][c->n_out[k]++] = L->sampled[i];
}

/* Four requests of params p (seeds 100..103) with a pool of n_blocks; their outputs, and
 * whether every sampling step left its logits on the host. */
static void run_plain(struct te_model *t, int32_t n_blocks, const struct sampling_params *p,
                      struct seq_ctx *c, int64_t *preempted, bool *host_logits) {
    struct err e = {0};
    struct loop L;
    memset(c, 0, sizeof *c);
    *host_logits = true;
    if (loop_open(&L, t, 32, n_blocks) != 0) {
        loop_close(&L);
        return;
    }
    for (int i = 0; i < 4; i++) {
        int32_t ids[40];
        te_prompt(ids, 40, 0, (uint64_t)i + 1);
        struct sampling_params sp = *p;
        sp.seed = 100 + (uint64_t)i, sp.has_seed = true;
        T_RC(sched_add(L.s, te_request((uint64_t)i, ids, 40, &sp), &e), &e);
    }
    struct sched_output so;
    c->so = &so;
    for (int guard = 0; guard < 10000 && loop_step(&L, record_seq, &so, c); guard++)
        for (int32_t i = 0; i < so.n_items; i++)
            if (so.items[i].sample && !runner_item_logits(L.rn, i)) *host_logits = false;
    *preempted = L.preempted;
    T_EQ(runner_n_live(L.rn), 0);
    loop_close(&L);
}

static void test_preemption_keeps_state(void) {
    struct te_model t;
    if (te_open(&t, 32, 8, 64) != 0) {
        te_close(&t);
        return;
    }
    struct seq_ctx big, small;
    int64_t p_big = 0, p_small = 0;
    bool host = false;
    const struct sampling_params p = te_params(false, 0, 24, true);
    run_plain(&t, 64, &p, &big, &p_big, &host);
    run_plain(&t, 6, &p, &small, &p_small, &host);
    T_EQ(p_big, 0);
    T_OK(p_small > 0);
    for (int i = 0; i < 4; i++) {
        T_EQ(small.n_out[i], 24);
        T_OK(memcmp(big.out[i], small.out[i], sizeof big.out[i]) == 0);
    }
    printf("seeded sampling under preemption: %lld preemptions, outputs identical\n",
           (long long)p_small);
    te_close(&t);
}

static void test_refusals(void) {
    struct te_model t;
    struct err e = {0};
    if (te_open(&t, 32, 8, 64) != 0) {
        te_close(&t);
        return;
    }
    struct runner *rn = NULL;
    struct runner_opts o = {.max_tokens = 64, .max_seqs = 8, .max_model_len = 512};
    T_FAILS(runner_new(&rn, t.m, &o, &e), VELA_EINVAL, &e); /* 64 rows > the lm's 32 */
    o.max_tokens = 32, o.max_seqs = 9;
    T_FAILS(runner_new(&rn, t.m, &o, &e), VELA_EINVAL, &e);
    /* a request with an image: refused for the whole step, nothing sampled */
    struct loop L;
    if (loop_open(&L, &t, 32, 64) == 0) {
        int32_t ids[20];
        te_prompt(ids, 20, 0, 9);
        struct req_image im = {.hash = 42, .offset = 2, .n_tokens = 4};
        struct sampling_params sp = te_params(true, 0, 4, true);
        struct request *r = req_new(5, ids, 20, &im, 1, &sp, &e);
        T_OK(r != NULL);
        T_RC(sched_add(L.s, r, &e), &e);
        struct sched_output so;
        arena_reset(&L.a);
        T_RC(sched_step(L.s, &L.a, &so, &e), &e);
        T_EQ(so.n_items, 1);
        T_FAILS(runner_execute(L.rn, &so, L.sampled, &e), VELA_EUNSUP, &e);
        T_EQ(L.sampled[0], -1);
        T_OK(runner_item_out(L.rn, 0) == NULL);
        T_OK(sched_abort(L.s, 5));
        arena_reset(&L.a);
        T_RC(sched_step(L.s, &L.a, &so, &e), &e);
        runner_drop_done(L.rn, &so);
        T_EQ(so.n_done, 1);
        T_EQ(runner_n_live(L.rn), 0);
        T_OK(sched_check(L.s));
    }
    loop_close(&L);
    te_close(&t);
}

static void test_backend_sampling(void) {
    struct te_model t;
    if (te_open(&t, 32, 8, 64) != 0) {
        te_close(&t);
        return;
    }
    struct sampling_params greedy = te_params(true, 0, 24, true),
                           draw = te_params(false, 0, 24, true);
    greedy.logprobs = draw.logprobs = -1;
    draw.top_k = 0; /* temperature 1 only */
    struct seq_ctx ref, got, small;
    int64_t p0 = 0, p1 = 0;
    bool host0 = false, host1 = true;
    g_backend_sampling = -1;
    run_plain(&t, 64, &greedy, &ref, &p0, &host0);
    g_backend_sampling = 1;
    run_plain(&t, 64, &greedy, &got, &p1, &host1);
    T_OK(host0 && !host1);
    for (int i = 0; i < 4; i++) {
        T_EQ(got.n_out[i], 24);
        T_OK(memcmp(ref.out[i], got.out[i], sizeof ref.out[i]) == 0);
    }
    /* seeded draws, plain and filtered, are the same under preemption */
    for (int f = 0; f < 2; f++) {
        if (f == 1) draw.top_k = 20, draw.top_p = 0.8f, draw.min_p = 0.01f;
        run_plain(&t, 64, &draw, &got, &p0, &host1);
        T_OK(!host1);
        run_plain(&t, 6, &draw, &small, &p1, &host1);
        T_OK(p1 > 0);
        int n_diff = 0;
        for (int i = 0; i < 4; i++) {
            T_EQ(small.n_out[i], 24);
            T_OK(memcmp(got.out[i], small.out[i], sizeof got.out[i]) == 0);
            n_diff += memcmp(got.out[i], ref.out[i], sizeof got.out[i]) != 0;
        }
        T_OK(n_diff > 0); /* draws, not the greedy path */
    }
    draw.logprobs = 1; /* not for the backend: the sampler, with the logits on the host */
    run_plain(&t, 64, &draw, &got, &p0, &host1);
    T_OK(host1);
    draw.logprobs = -1, draw.repetition_penalty = 1.1f;
    run_plain(&t, 64, &draw, &got, &p0, &host1);
    T_OK(host1);
    g_backend_sampling = 0;
    te_close(&t);
}

int main(void) {
    T_RUN(test_reference_greedy);
    T_RUN(test_preemption_keeps_state);
    T_RUN(test_refusals);
    T_RUN(test_backend_sampling);
    return t_done();
}
