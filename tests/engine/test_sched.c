/* Tests for engine/sched*.c against the scripted fake model (fake_model.h): budgets, chunked
 * prefill, mixed steps, the sequence cap, preemption, prefix hits, aborts, stop conditions,
 * rejection, n > 1, images across chunks, and a long random run that must end with every
 * block free. sched_check runs after every step. */
#include "engine/block_pool.h"
#include "engine/encoder_cache.h"
#include "engine/params.h"
#include "engine/request.h"
#include "engine/sched.h"
#include "fake_model.h"
#include "model/config.h"
#include "t.h"

#define EOS 2

static struct sched_config small_cfg(int32_t n_blocks, int32_t budget) {
    struct sched_config c;
    sched_config_defaults(&c);
    c.n_blocks = n_blocks;
    c.block_size = 4;
    c.max_num_batched_tokens = budget;
    c.max_num_seqs = 8;
    c.max_model_len = 256;
    return c;
}

struct env {
    struct sched *s;
    struct fake_model m;
    struct arena a;
};

static void env_init(struct env *v, const struct sched_config *c) {
    struct err e = {0};
    v->s = sched_new(c, &e);
    T_CHECK_(v->s != NULL, "sched_new: %s", e.msg);
    fm_init(&v->m, c);
    T_EQ(arena_init(&v->a, sched_step_arena_bytes(c)), 0);
}

static void env_deinit(struct env *v) {
    T_CHECK_(v->m.fail[0] == 0, "fake model: %s", v->m.fail);
    sched_free(v->s);
    fm_deinit(&v->m);
    arena_deinit(&v->a);
}

/* Prompt token i of "text" seed: distinct per seed, >= 10. */
static void fill_prompt(int32_t *t, int32_t n, int32_t seed) {
    for (int32_t i = 0; i < n; i++) t[i] = 10 + (seed * 997 + i * 13) % 900;
}

static struct request *mk(uint64_t id, const int32_t *prompt, int32_t n, int32_t max_tokens) {
    struct sampling_params p;
    sp_defaults(&p);
    p.max_tokens = max_tokens;
    p.eos_token_ids[0] = EOS;
    p.n_eos_token_ids = 1;
    struct err e = {0};
    struct request *r = req_new(id, prompt, n, NULL, 0, &p, &e);
    T_CHECK_(r != NULL, "req_new: %s", e.msg);
    return r;
}

static struct request *mk_seed(uint64_t id, int32_t n, int32_t seed, int32_t max_tokens) {
    int32_t t[512];
    fill_prompt(t, n, seed);
    return mk(id, t, n, max_tokens);
}

static void add(struct env *v, struct request *r) {
    struct err e = {0};
    int rc = sched_add(v->s, r, &e);
    T_RC(rc, &e);
    if (rc != 0) req_free(r);
}

static int step(struct env *v, struct sched_output *so) {
    return fm_step(&v->m, v->s, &v->a, so);
}

static int32_t eos_from = 3, stop_tok = -1;
static bool g_scripted; /* the fake model uses scripted() below */

/* Outputs of (id, index) are the scripted tokens at positions n_prompt, n_prompt + 1, ... */
static bool outputs_ok(const struct fm_result *x) {
    for (int32_t k = 0; k < x->n_out; k++) {
        int32_t want = fm_token_at(x->id, x->index, x->n_prompt + k);
        if (g_scripted) want = stop_tok >= 0 && k == 2 ? stop_tok : k >= eos_from ? EOS : want;
        if (x->out[k] != want) return false;
    }
    return true;
}

static void expect_result(struct env *v, uint64_t id, int32_t index, int32_t finish,
                          int32_t n_out) {
    struct fm_result *x = fm_find(&v->m, id, index);
    T_CHECK_(x != NULL, "no result for %llu/%d", (unsigned long long)id, index);
    if (!x) return;
    T_EQ(x->finish, finish);
    if (n_out >= 0) T_EQ(x->n_out, n_out);
    T_CHECK_(outputs_ok(x), "outputs of %llu/%d differ from the script", (unsigned long long)id,
             index);
}

static void expect_all_free(struct env *v) {
    const struct block_pool *bp = sched_pool(v->s);
    T_EQ(bp_n_free(bp), bp->n_blocks);
    T_EQ(sched_n_pending(v->s), 0);
    T_OK(bp_check(bp));
    T_OK(sched_check(v->s));
}

static void test_chunked_prefill(void) {
    struct sched_config c = small_cfg(64, 16);
    struct env v;
    env_init(&v, &c);
    add(&v, mk_seed(1, 40, 1, 3));
    struct sched_output so;
    int32_t want_nc[] = {0, 16, 32, 40, 41}, want_new[] = {16, 16, 8, 1, 1};
    for (int i = 0; i < 5; i++) {
        step(&v, &so);
        T_EQ(so.n_items, 1);
        if (so.n_items != 1) break;
        T_EQ(so.items[0].n_computed, want_nc[i]);
        T_EQ(so.items[0].n_new, want_new[i]);
        T_EQ(so.items[0].sample, i >= 2);
        T_EQ(so.n_tokens, want_new[i]);
    }
    step(&v, &so); /* reports the finish */
    T_EQ(so.n_items, 0);
    T_EQ(so.n_done, 1);
    expect_result(&v, 1, 0, REQ_FINISH_LENGTH, 3);
    expect_all_free(&v);
    env_deinit(&v);
}

static void test_mixed_step_and_seq_cap(void) {
    struct sched_config c = small_cfg(64, 16);
    c.max_num_seqs = 2;
    struct env v;
    env_init(&v, &c);
    add(&v, mk_seed(1, 4, 1, 10));
    struct sched_output so;
    step(&v, &so);
    T_EQ(so.n_items, 1);
    add(&v, mk_seed(2, 30, 2, 5));
    add(&v, mk_seed(3, 4, 3, 5));
    step(&v, &so); /* A decodes, B prefills 15 in the same step; C waits for a slot */
    T_EQ(so.n_items, 2);
    if (so.n_items == 2) {
        T_EQ(so.items[0].req->id, 1);
        T_EQ(so.items[0].n_new, 1);
        T_EQ(so.items[1].req->id, 2);
        T_EQ(so.items[1].n_new, 15);
        T_OK(!so.items[1].sample);
    }
    T_EQ(so.n_tokens, 16);
    fm_run(&v.m, v.s, &v.a, 1000);
    for (uint64_t id = 1; id <= 3; id++)
        expect_result(&v, id, 0, REQ_FINISH_LENGTH, id == 1 ? 10 : 5);
    expect_all_free(&v);
    env_deinit(&v);
}

static void test_preemption(void) {
    /* 12 blocks of 4: each request alone needs ceil(37/4) = 10, together 20. */
    struct sched_config c = small_cfg(12, 32);
    struct env v;
    env_init(&v, &c);
    add(&v, mk_seed(1, 8, 1, 30));
    add(&v, mk_seed(2, 8, 2, 30));
    fm_run(&v.m, v.s, &v.a, 1000);
    struct sched_stats st;
    sched_get_stats(v.s, &st);
    T_OK(st.n_preemptions > 0);
    T_OK(st.prefix_hit_tokens > 0);    /* the preempted request found its blocks still cached */
    T_EQ(st.max_concurrency, 12 / 64); /* max_model_len 256 = 64 blocks: not one */
    T_NEAR(st.max_concurrency_x, 48.0 / 256.0, 1e-9);
    expect_result(&v, 1, 0, REQ_FINISH_LENGTH, 30);
    expect_result(&v, 2, 0, REQ_FINISH_LENGTH, 30);
    expect_all_free(&v);
    env_deinit(&v);
    /* Same requests, one by one in a big pool: identical outputs (scripted per position). */
    c = small_cfg(64, 32);
    env_init(&v, &c);
    add(&v, mk_seed(1, 8, 1, 30));
    add(&v, mk_seed(2, 8, 2, 30));
    fm_run(&v.m, v.s, &v.a, 1000);
    sched_get_stats(v.s, &st);
    T_EQ(st.n_preemptions, 0);
    T_EQ(st.max_concurrency, 1);
    expect_result(&v, 1, 0, REQ_FINISH_LENGTH, 30);
    expect_all_free(&v);
    env_deinit(&v);
}

static void test_prefix_hits(void) {
    struct sched_config c = small_cfg(64, 64);
    struct env v;
    env_init(&v, &c);
    int32_t a[32], b[32];
    fill_prompt(a, 20, 5);
    add(&v, mk(1, a, 20, 2));
    fm_run(&v.m, v.s, &v.a, 100);
    /* B shares 16 tokens (4 blocks) with A, then differs. */
    memcpy(b, a, 16 * sizeof *a);
    fill_prompt(b + 16, 6, 6);
    add(&v, mk(2, b, 22, 2));
    struct sched_output so;
    step(&v, &so);
    T_EQ(so.n_items, 1);
    if (so.n_items == 1) {
        T_EQ(so.items[0].n_computed, 16);
        T_EQ(so.items[0].n_new, 6);
        T_EQ(so.items[0].req->n_hit_tokens, 16);
    }
    fm_run(&v.m, v.s, &v.a, 100);
    /* A prompt of exactly the 4 cached blocks: the last block is computed again (logits). */
    add(&v, mk(3, a, 16, 1));
    step(&v, &so);
    if (so.n_items == 1) {
        T_EQ(so.items[0].n_computed, 12);
        T_EQ(so.items[0].n_new, 4);
    }
    fm_run(&v.m, v.s, &v.a, 100);
    /* Two requests with the same prompt in flight together share blocks by refcount. */
    add(&v, mk(4, a, 20, 8));
    step(&v, &so);
    add(&v, mk(5, a, 20, 8));
    step(&v, &so);
    T_EQ(so.n_items, 2);
    if (so.n_items == 2) T_EQ(so.items[1].n_computed, 16);
    T_EQ(bp_ref_of(sched_pool(v.s), so.items[0].req->blocks[0]), 2);
    fm_run(&v.m, v.s, &v.a, 100);
    expect_result(&v, 4, 0, REQ_FINISH_LENGTH, 8);
    expect_result(&v, 5, 0, REQ_FINISH_LENGTH, 8);
    struct sched_stats st;
    sched_get_stats(v.s, &st);
    T_EQ(st.prefix_hit_tokens, 16 + 12 + 16 + 16);
    T_EQ(st.prefix_query_tokens, 20 + 22 + 16 + 20 + 20);
    expect_all_free(&v);
    env_deinit(&v);
    /* Prefix caching off: no hits. */
    c.prefix_caching = false;
    env_init(&v, &c);
    add(&v, mk(1, a, 20, 2));
    fm_run(&v.m, v.s, &v.a, 100);
    add(&v, mk(2, a, 20, 2));
    step(&v, &so);
    if (so.n_items == 1) T_EQ(so.items[0].n_computed, 0);
    fm_run(&v.m, v.s, &v.a, 100);
    T_EQ(sched_pool(v.s)->n_cached, 0);
    expect_all_free(&v);
    env_deinit(&v);
}

static void test_aborts(void) {
    struct sched_config c = small_cfg(64, 8);
    struct env v;
    env_init(&v, &c);
    add(&v, mk_seed(1, 40, 1, 10)); /* aborted mid-prefill */
    add(&v, mk_seed(2, 4, 2, 50));  /* aborted mid-decode */
    add(&v, mk_seed(3, 4, 3, 5));   /* aborted while waiting */
    struct sched_output so;
    step(&v, &so);
    T_EQ(so.n_items, 1); /* request 1 took the whole budget */
    T_OK(sched_abort(v.s, 1));
    T_OK(sched_abort(v.s, 3));
    T_OK(!sched_abort(v.s, 99));
    T_OK(bp_n_free(sched_pool(v.s)) < 64); /* applied only at the next step */
    step(&v, &so);
    T_EQ(so.n_done, 2);
    if (so.n_done == 2) {
        T_EQ(so.done[0].id, 1);
        T_EQ(so.done[0].finish, REQ_FINISH_ABORT);
        T_EQ(so.done[1].id, 3);
    }
    T_EQ(so.n_items, 1); /* request 2 prefills */
    for (int i = 0; i < 4; i++) step(&v, &so);
    T_EQ(so.n_items, 1);
    if (so.n_items == 1) T_OK(so.items[0].sample && so.items[0].n_new == 1);
    T_OK(sched_abort(v.s, 2));
    step(&v, &so);
    T_EQ(so.n_done, 1);
    T_EQ(so.n_items, 0);
    fm_run(&v.m, v.s, &v.a, 100);
    for (uint64_t id = 1; id <= 3; id++) {
        struct fm_result *x = fm_find(&v.m, id, 0);
        T_OK(x && x->finish == REQ_FINISH_ABORT);
    }
    expect_all_free(&v);
    env_deinit(&v);
}

static int32_t scripted(const struct request *r) {
    int32_t k = req_n_output(r);
    if (stop_tok >= 0 && k == 2) return stop_tok;
    return k >= eos_from ? EOS : fm_default_token(r);
}

static void test_stops(void) {
    struct sched_config c = small_cfg(64, 64);
    c.max_model_len = 16;
    struct env v;
    env_init(&v, &c);
    v.m.token_fn = scripted;
    g_scripted = true;
    add(&v, mk_seed(1, 4, 1, 10)); /* eos at output 4 */
    struct request *r = mk_seed(2, 4, 2, 6);
    r->params.ignore_eos = true; /* runs to max_tokens */
    add(&v, r);
    r = mk_seed(3, 4, 3, 10);
    r->params.min_tokens = 6; /* eos ignored until 6 outputs */
    add(&v, r);
    r = mk_seed(4, 10, 4, -1); /* max_model_len 16: 6 outputs */
    r->params.ignore_eos = true;
    add(&v, r);
    fm_run(&v.m, v.s, &v.a, 100);
    expect_result(&v, 1, 0, REQ_FINISH_STOP, 4);
    struct fm_result *x = fm_find(&v.m, 1, 0);
    if (x) T_EQ(x->stop_token, EOS);
    expect_result(&v, 2, 0, REQ_FINISH_LENGTH, 6);
    expect_result(&v, 3, 0, REQ_FINISH_STOP, 6);
    expect_result(&v, 4, 0, REQ_FINISH_LENGTH, 6);
    /* stop_token_ids stop even with ignore_eos */
    stop_tok = 777;
    r = mk_seed(5, 4, 5, 10);
    r->params.ignore_eos = true;
    r->params.stop_token_ids[0] = 777;
    r->params.n_stop_token_ids = 1;
    add(&v, r);
    fm_run(&v.m, v.s, &v.a, 100);
    expect_result(&v, 5, 0, REQ_FINISH_STOP, 3);
    x = fm_find(&v.m, 5, 0);
    if (x) T_EQ(x->stop_token, 777);
    stop_tok = -1;
    g_scripted = false;
    expect_all_free(&v);
    env_deinit(&v);
}

static void test_reject(void) {
    struct sched_config c = small_cfg(4, 16);
    c.max_model_len = 20;
    c.encoder_cache_tokens = 10;
    struct err e = {0};
    struct sched *s = sched_new(&c, &e);
    T_OK(s != NULL);
    if (!s) return;
    struct request *r = mk_seed(1, 10, 1, 11); /* 21 > max_model_len */
    T_FAILS(sched_add(s, r, &e), VELA_ELIMIT, &e);
    req_free(r);
    r = mk_seed(2, 20, 1, -1); /* no room for output */
    T_FAILS(sched_add(s, r, &e), VELA_ELIMIT, &e);
    req_free(r);
    r = mk_seed(3, 10, 1, 8); /* 18 tokens: KV 17 needs 5 blocks > 4 */
    T_FAILS(sched_add(s, r, &e), VELA_ELIMIT, &e);
    req_free(r);
    r = mk_seed(4, 10, 1, 7); /* KV 16 fits exactly */
    T_RC(sched_add(s, r, &e), &e);
    T_FAILS(sched_add(s, r, &e), VELA_EINVAL, &e); /* twice */
    int32_t t[16];
    fill_prompt(t, 16, 3);
    struct req_image im = {.hash = 5, .offset = 2, .n_tokens = 11};
    struct sampling_params p;
    sp_defaults(&p);
    p.max_tokens = 2;
    r = req_new(5, t, 16, &im, 1, &p, &e);
    T_OK(r != NULL);
    if (r) T_FAILS(sched_add(s, r, &e), VELA_ELIMIT, &e); /* image > encoder cache */
    req_free(r);
    r = mk_seed(8, 4, 1, 2);
    r->params.n = 0;
    T_FAILS(sched_add(s, r, &e), VELA_EINVAL, &e);
    r->params.n = 1;
    r->params.n_stop_token_ids = 1000;
    T_FAILS(sched_add(s, r, &e), VELA_ELIMIT, &e);
    req_free(r);
    im.offset = 10; /* past the prompt */
    T_OK(req_new(6, t, 16, &im, 1, &p, &e) == NULL);
    T_OK(req_new(7, t, 0, NULL, 0, &p, &e) == NULL);
    T_OK(sched_check(s));
    sched_free(s); /* frees request 4 still waiting */
    c.n_blocks = 0;
    T_OK(sched_new(&c, &e) == NULL);
}

static void test_n_samples(void) {
    struct sched_config c = small_cfg(64, 64);
    struct env v;
    env_init(&v, &c);
    struct request *r = mk_seed(7, 10, 7, 4);
    r->params.n = 3;
    add(&v, r);
    fm_run(&v.m, v.s, &v.a, 100);
    for (int32_t k = 0; k < 3; k++) expect_result(&v, 7, k, REQ_FINISH_LENGTH, 4);
    struct sched_stats st;
    sched_get_stats(v.s, &st);
    T_EQ(st.prefix_hit_tokens, 2 * 8); /* each sample reuses the 2 full prompt blocks */
    expect_all_free(&v);
    /* Aborting the id cancels every sample. */
    r = mk_seed(8, 10, 8, 40);
    r->params.n = 2;
    add(&v, r);
    struct sched_output so;
    for (int i = 0; i < 3; i++) step(&v, &so);
    T_OK(sched_abort(v.s, 8));
    fm_run(&v.m, v.s, &v.a, 100);
    T_OK(fm_find(&v.m, 8, 0) && fm_find(&v.m, 8, 0)->finish == REQ_FINISH_ABORT);
    T_OK(fm_find(&v.m, 8, 1) && fm_find(&v.m, 8, 1)->finish == REQ_FINISH_ABORT);
    expect_all_free(&v);
    env_deinit(&v);
}

static struct request *mk_img(uint64_t id, int32_t n, int32_t seed, int32_t max_tokens,
                              const struct req_image *im, int32_t n_im) {
    int32_t t[256];
    fill_prompt(t, n, seed);
    for (int32_t j = 0; j < n_im; j++)
        for (int32_t k = 0; k < im[j].n_tokens; k++) t[im[j].offset + k] = 151655;
    struct sampling_params p;
    sp_defaults(&p);
    p.max_tokens = max_tokens;
    struct err e = {0};
    struct request *r = req_new(id, t, n, im, n_im, &p, &e);
    T_CHECK_(r != NULL, "req_new: %s", e.msg);
    return r;
}

static void test_images(void) {
    struct sched_config c = small_cfg(64, 8);
    c.encoder_cache_tokens = 40;
    struct env v;
    env_init(&v, &c);
    /* One image across three chunks: encoded once, in the step of its first placeholder. */
    struct req_image im = {.hash = 0xabc, .offset = 5, .n_tokens = 20};
    add(&v, mk_img(1, 30, 1, 2, &im, 1));
    struct sched_output so;
    step(&v, &so);
    T_EQ(so.n_encode, 1);
    step(&v, &so);
    T_EQ(so.n_encode, 0);
    fm_run(&v.m, v.s, &v.a, 100);
    T_EQ(v.m.n_encodes, 1);
    expect_result(&v, 1, 0, REQ_FINISH_LENGTH, 2);
    /* Same placeholder tokens, another image: no prefix hit past the image's first block. */
    struct req_image im2 = {.hash = 0xdef, .offset = 5, .n_tokens = 20};
    add(&v, mk_img(2, 30, 1, 2, &im2, 1));
    step(&v, &so);
    if (so.n_items == 1) T_EQ(so.items[0].n_computed, 4);
    fm_run(&v.m, v.s, &v.a, 100);
    /* The same image again: a hit up to the last full block, no new encode. */
    int64_t before = v.m.n_encodes;
    add(&v, mk_img(3, 30, 1, 2, &im, 1));
    step(&v, &so);
    if (so.n_items == 1) T_EQ(so.items[0].n_computed, 28);
    fm_run(&v.m, v.s, &v.a, 100);
    T_EQ(v.m.n_encodes, before);
    expect_all_free(&v);
    T_EQ(ec_check(sched_encoder_cache(v.s)), true);
    env_deinit(&v);

    /* Encoder budget 20: two new 20-token images cannot both be encoded in one step; the
     * second request's chunk stops before its image. */
    c = small_cfg(64, 64);
    c.encoder_cache_tokens = 40;
    c.encoder_budget_tokens = 20;
    env_init(&v, &c);
    struct req_image ia = {.hash = 1, .offset = 2, .n_tokens = 20};
    struct req_image ib = {.hash = 2, .offset = 6, .n_tokens = 20};
    add(&v, mk_img(10, 26, 2, 3, &ia, 1));
    add(&v, mk_img(11, 30, 3, 3, &ib, 1));
    step(&v, &so);
    T_EQ(so.n_items, 2);
    T_EQ(so.n_encode, 1);
    if (so.n_items == 2) {
        T_EQ(so.items[0].n_new, 26);
        T_EQ(so.items[1].n_new, 6);
    }
    fm_run(&v.m, v.s, &v.a, 100);
    T_EQ(v.m.n_encodes, 2);
    expect_result(&v, 10, 0, REQ_FINISH_LENGTH, 3);
    expect_result(&v, 11, 0, REQ_FINISH_LENGTH, 3);
    /* Two requests with the same image in one step: encoded once. */
    struct req_image ic = {.hash = 3, .offset = 0, .n_tokens = 8};
    add(&v, mk_img(12, 12, 4, 2, &ic, 1));
    add(&v, mk_img(13, 12, 5, 2, &ic, 1));
    step(&v, &so);
    T_EQ(so.n_items, 2);
    T_EQ(so.n_encode, 1);
    fm_run(&v.m, v.s, &v.a, 100);
    T_EQ(v.m.n_encodes, 3);
    expect_all_free(&v);
    env_deinit(&v);
}

static uint64_t rnd(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* Thousands of random requests (shared prefixes, images, n = 1..2, eos) with random aborts:
 * every step passes the fake model's checks and sched_check; at the end every block is free
 * and every finished request produced the scripted tokens. */
/* A key function with many collisions: only the first token and the parent's low bits. */
static uint64_t weak_hash(uint64_t parent, const int32_t *tokens, int32_t n, uint64_t extra) {
    (void)n, (void)extra;
    return (parent & 3) * 7 + (uint64_t)(tokens[0] % 3);
}

static void run_random(bool prefix_caching, bool weak, int32_t n_total) {
    struct sched_config c = small_cfg(48, 24);
    c.prefix_caching = prefix_caching;
    c.max_num_seqs = 6;
    c.max_model_len = 96;
    c.encoder_cache_tokens = 24;
    c.encoder_budget_tokens = 16;
    struct env v;
    env_init(&v, &c);
    if (weak) sched_set_hash_fn(v.s, weak_hash); /* the KV checks catch any wrong hit */
    uint64_t rs = 12345;
    int32_t n_req = 0, n_rejected = 0, n_aborts = 0;
    struct sched_output so;
    int32_t prefixes[4][64];
    for (int i = 0; i < 4; i++) fill_prompt(prefixes[i], 64, 100 + i);
    for (int32_t st = 0; st < 20000 && !v.m.fail[0] && (n_req < n_total || sched_n_pending(v.s));
         st++) {
        uint64_t k = rnd(&rs) % 3;
        for (uint64_t q = 0; q < k && n_req < n_total; q++) {
            int32_t t[96], n = 2 + (int32_t)(rnd(&rs) % 60);
            int32_t pre = (int32_t)(rnd(&rs) % 5), cut = (int32_t)(rnd(&rs) % (uint64_t)n);
            fill_prompt(t, n, n_req + 7);
            if (pre < 4) memcpy(t, prefixes[pre], (size_t)cut * sizeof *t);
            struct req_image im[2];
            int32_t n_im = 0;
            if (rnd(&rs) % 3 == 0 && n >= 6) {
                /* the hash covers the resize parameters, so it fixes the token count */
                uint64_t h = rnd(&rs) % 6;
                im[0] = (struct req_image){
                    .hash = h, .offset = (int32_t)(rnd(&rs) % 3), .n_tokens = 1 + (int32_t)(h % 4)};
                n_im = 1;
            }
            struct sampling_params p;
            sp_defaults(&p);
            p.max_tokens = 1 + (int32_t)(rnd(&rs) % 40);
            p.n = 1 + (int32_t)(rnd(&rs) % 2);
            struct err e = {0};
            struct request *r = req_new((uint64_t)n_req, t, n, im, n_im, &p, &e);
            n_req++;
            if (!r) continue;
            if (sched_add(v.s, r, &e) != 0) {
                n_rejected++;
                req_free(r);
            }
        }
        if (rnd(&rs) % 50 == 0 && n_req > 0)
            n_aborts += sched_abort(v.s, rnd(&rs) % (uint64_t)n_req);
        fm_step(&v.m, v.s, &v.a, &so);
    }
    fm_run(&v.m, v.s, &v.a, 5000);
    T_EQ(n_req, n_total);
    T_OK(n_aborts > 10);
    T_OK(n_rejected > 0); /* prompt + max_tokens > 96 happens */
    int32_t n_done = 0, bad = 0;
    for (int32_t i = 0; i < v.m.n_res; i++) {
        const struct fm_result *x = &v.m.res[i];
        if (x->finish == REQ_FINISH_ABORT) continue;
        n_done++;
        bad += !outputs_ok(x) || x->finish != REQ_FINISH_LENGTH;
    }
    T_EQ(bad, 0);
    T_OK(n_done > n_total / 2);
    struct sched_stats st;
    sched_get_stats(v.s, &st);
    T_OK(st.n_preemptions > 0);
    T_EQ(st.prefix_hit_tokens > 0, prefix_caching);
    expect_all_free(&v);
    const struct encoder_cache *ec = sched_encoder_cache(v.s);
    T_EQ(ec->n_freeable_tokens, ec->n_tokens); /* nothing referenced any more */
    env_deinit(&v);
}

static void test_random(void) {
    run_random(true, false, 2000);
    run_random(false, false, 1000);
    run_random(true, true, 1000);
}

static void test_done_bounded_and_arena(void) {
    struct sched_config c = small_cfg(64, 64);
    c.max_num_seqs = 4;
    struct env v;
    env_init(&v, &c);
    for (uint64_t id = 0; id < 10; id++) add(&v, mk_seed(id, 4, (int32_t)id, 20));
    for (uint64_t id = 0; id < 10; id++) T_OK(sched_abort(v.s, id));
    struct sched_output so;
    step(&v, &so);
    T_EQ(so.n_done, 4); /* at most max_num_seqs reports per step */
    T_EQ(so.n_items, 0);
    T_OK(!sched_idle(v.s)); /* six still to report */
    step(&v, &so);
    T_EQ(so.n_done, 4);
    step(&v, &so);
    T_EQ(so.n_done, 2);
    T_OK(sched_idle(v.s));
    expect_all_free(&v);
    /* A step arena below sched_step_arena_bytes fails cleanly. */
    add(&v, mk_seed(20, 4, 1, 2));
    struct arena tiny;
    T_EQ(arena_init(&tiny, 64), 0);
    struct err e = {0};
    T_FAILS(sched_step(v.s, &tiny, &so, &e), VELA_ENOMEM, &e);
    arena_deinit(&tiny);
    fm_run(&v.m, v.s, &v.a, 100);
    expect_result(&v, 20, 0, REQ_FINISH_LENGTH, 2);
    expect_all_free(&v);
    env_deinit(&v);
}

static void test_params(void) {
    struct sampling_params p;
    struct err e = {0};
    sp_defaults(&p);
    T_RC(sp_validate(&p, &e), &e);
    T_OK(!sp_is_greedy(&p));
    p.top_k = -1;
    T_RC(sp_validate(&p, &e), &e);
    T_EQ(p.top_k, 0);
    p.top_p = 0;
    T_FAILS(sp_validate(&p, &e), VELA_EINVAL, &e);
    T_OK(strstr(e.msg, "top_p") != NULL);
    sp_defaults(&p);
    p.min_tokens = 5;
    p.max_tokens = 3;
    T_FAILS(sp_validate(&p, &e), VELA_EINVAL, &e);
    sp_defaults(&p);
    p.n_logit_bias = VELA_SP_MAX_LOGIT_BIAS + 1;
    T_FAILS(sp_validate(&p, &e), VELA_ELIMIT, &e);
    sp_defaults(&p);
    p.logprobs = 21;
    T_FAILS(sp_validate(&p, &e), VELA_EINVAL, &e);
    struct gen_config g;
    gen_config_defaults(&g);
    g.present = true;
    g.temperature = 1e-6;
    g.repetition_penalty = 1.05;
    g.eos_token_ids[0] = 151645;
    g.eos_token_ids[1] = 151643;
    g.n_eos_token_ids = 2;
    sp_defaults(&p);
    sp_apply_gen_config(&p, &g);
    T_NEAR(p.repetition_penalty, 1.05, 1e-6);
    T_EQ(p.n_eos_token_ids, 2);
    T_EQ(p.eos_token_ids[1], 151643);
    T_OK(sp_is_greedy(&p));
    T_RC(sp_validate(&p, &e), &e);
}

int main(void) {
    T_RUN(test_params);
    T_RUN(test_chunked_prefill);
    T_RUN(test_mixed_step_and_seq_cap);
    T_RUN(test_preemption);
    T_RUN(test_prefix_hits);
    T_RUN(test_aborts);
    T_RUN(test_stops);
    T_RUN(test_reject);
    T_RUN(test_n_samples);
    T_RUN(test_images);
    T_RUN(test_done_bounded_and_arena);
    T_RUN(test_random);
    return t_done();
}
