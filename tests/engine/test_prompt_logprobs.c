/* Tests for prompt_logprobs (vLLM's extension) through the engine (runner rows, scheduler,
 * events) on the tiny model, FP32 path with an F32 KV cache:
 *   - the five prompts of tests/fixtures/lm/tiny.safetensors, run together with a 24-token
 *     step budget (chunked prefill, mixed steps): the first token's event carries, for every
 *     prompt position after the first, the actual token's logprob, its rank and the top-3,
 *     equal within 1e-4 to the log-softmax of the reference's all-position logits
 *     (logits_<i>, from transformers); the 1-token prompt gets none; later events none;
 *   - prefix caching: a request asking for prompt_logprobs reads no cached block (n_cached
 *     0, every position reported, values as without the cache), while a request that does
 *     not ask still hits the blocks it left; k = 0 reports no alternatives;
 *   - the pool and runner state are clean afterwards (eng_check). */
#include "engine/engine.h"
#include "model/safetensors.h"
#include "tiny_engine.h"

#include <math.h>

#define N_REF 5
#define TOL   1e-4

static struct engine *open_engine(struct te_model *t, int32_t budget, bool prefix_caching) {
    struct err e = {0};
    if (te_open(t, budget, 8, 96) != 0) return NULL;
    struct eng_config c = {.seed = 5};
    sched_config_defaults(&c.sched);
    c.sched.n_blocks = 96;
    c.sched.max_num_batched_tokens = budget;
    c.sched.max_num_seqs = 8;
    c.sched.max_model_len = 256;
    c.sched.prefix_caching = prefix_caching;
    struct engine *en = NULL;
    T_RC(eng_new(&en, t->m, &c, &e), &e);
    return en;
}

/* What a test keeps of one request's events. */
struct got {
    struct smp_logprobs plp[256];
    int32_t n_plp;      /* entries on the first event */
    int32_t n_carrying; /* events with prompt_logprobs */
    int32_t n_events, n_cached;
    int finish;
};

static void collect(struct got *g, int32_t n_got, struct eng_events *chain) {
    for (struct eng_events *b = chain; b; b = eng_events_next(b))
        for (int32_t i = 0; i < b->n; i++) {
            const struct eng_event *v = &b->ev[i];
            T_OK(v->id < (uint64_t)n_got);
            if (v->id >= (uint64_t)n_got) continue;
            struct got *r = &g[v->id];
            r->n_events++;
            if (v->finish != ENG_FINISH_NONE) r->finish = v->finish;
            if (v->n_output == 1) r->n_cached = v->n_cached;
            if (!v->prompt_logprobs) continue;
            r->n_carrying++;
            T_EQ(v->n_output, 1);
            T_EQ(v->n_prompt_logprobs, v->n_prompt - 1);
            r->n_plp = v->n_prompt_logprobs < 256 ? v->n_prompt_logprobs : 256;
            memcpy(r->plp, v->prompt_logprobs, (size_t)r->n_plp * sizeof r->plp[0]);
        }
    eng_events_free_all(chain);
}

static void run_until_idle(struct engine *en, struct got *g, int32_t n_got) {
    for (int guard = 0; guard < 2000; guard++) {
        struct err e = {0};
        bool idle = false;
        T_RC(eng_step(en, &idle, &e), &e);
        collect(g, n_got, eng_take_events(en));
        if (idle) break;
    }
}

/* Largest difference between entry p of g and the log-softmax of row (V) for token tok;
 * checks the top ids against the row (an id may differ only at a near tie). */
static double compare_row(const struct smp_logprobs *lp, const float *row, int64_t V, int32_t tok,
                          int32_t k) {
    double m = row[0], s = 0;
    for (int64_t j = 1; j < V; j++) m = row[j] > m ? row[j] : m;
    for (int64_t j = 0; j < V; j++) s += exp((double)row[j] - m);
    double lse = m + log(s);
    double d = fabs(lp->logprob - ((double)row[tok] - lse));
    int32_t above = 0, at_least = 0; /* rank bounds allowing near ties */
    for (int64_t j = 0; j < V; j++) {
        above += row[j] > row[tok] + TOL;
        at_least += row[j] >= row[tok] - TOL;
    }
    T_CHECK_(lp->rank > above && lp->rank <= at_least, "rank %d outside [%d, %d]", lp->rank,
             above + 1, at_least);
    T_EQ(lp->n_top, k);
    for (int32_t j = 0; j < lp->n_top && j < k; j++) {
        int32_t id = lp->top_ids[j];
        if (id < 0 || id >= V) return 1e9;
        double want = (double)row[id] - lse;
        double dj = fabs(lp->top_logprobs[j] - want);
        d = dj > d ? dj : d;
        /* the j-th best: at most j ids are clearly above it */
        int32_t clearly_above = 0;
        for (int64_t q = 0; q < V; q++) clearly_above += row[q] > row[id] + TOL;
        T_CHECK_(clearly_above <= j, "top %d (id %d) has %d ids above it", j, id, clearly_above);
    }
    return d;
}

static void test_reference(void) {
    struct te_model t;
    struct err e = {0};
    struct st_file *f = NULL;
    int rc = st_open(&f, t_src("tests/fixtures/lm/tiny.safetensors"), &e);
    T_RC(rc, &e);
    struct engine *en = rc == 0 ? open_engine(&t, 24, true) : NULL;
    if (!en) {
        if (rc == 0) te_close(&t);
        st_close(f);
        return;
    }
    const struct st_tensor *p[N_REF], *l[N_REF];
    for (int i = 0; i < N_REF; i++) {
        char name[32];
        snprintf(name, sizeof name, "prompt_%d", i);
        p[i] = st_file_find(f, name);
        snprintf(name, sizeof name, "logits_%d", i);
        l[i] = st_file_find(f, name);
        T_OK(p[i] && l[i] && l[i]->dtype == ST_F32 && l[i]->n_dims == 2);
        if (!p[i] || !l[i]) goto out;
        T_EQ(l[i]->shape[0], p[i]->n_elems);
        struct sampling_params sp = te_params(true, 0, 3, true);
        sp.prompt_logprobs = 3;
        T_RC(eng_submit(en, te_request((uint64_t)i, p[i]->data, (int32_t)p[i]->n_elems, &sp), &e),
             &e);
    }
    static struct got g[N_REF];
    memset(g, 0, sizeof g);
    run_until_idle(en, g, N_REF);
    for (int i = 0; i < N_REF; i++) {
        int32_t n = (int32_t)p[i]->n_elems;
        int64_t V = l[i]->shape[1];
        const int32_t *ids = p[i]->data;
        const float *lg = l[i]->data;
        T_EQ(g[i].finish, ENG_FINISH_LENGTH);
        T_EQ(g[i].n_events, 3);
        T_EQ(g[i].n_carrying, n > 1 ? 1 : 0);
        T_EQ(g[i].n_plp, n - 1);
        double worst = 0;
        int32_t at = -1;
        for (int32_t q = 0; q < g[i].n_plp; q++) {
            double d = compare_row(&g[i].plp[q], lg + (size_t)q * (size_t)V, V, ids[q + 1], 3);
            if (d > worst) worst = d, at = q;
        }
        T_CHECK_(worst <= TOL, "prompt %d: largest logprob difference %g at position %d", i, worst,
                 at);
    }
    T_RC(eng_check(en, &e), &e);
    T_EQ(eng_n_live(en), 0);
out:
    eng_free(en);
    te_close(&t);
    st_close(f);
}

static void test_prefix_cache(void) {
    struct te_model t;
    struct err e = {0};
    struct engine *en = open_engine(&t, 64, true);
    if (!en) {
        te_close(&t);
        return;
    }
    int32_t ids[48];
    te_prompt(ids, 48, 48, 1);
    struct sampling_params plain = te_params(true, 0, 2, true), asks = plain;
    asks.prompt_logprobs = 0;
    static struct got g[4];
    memset(g, 0, sizeof g);
    /* 0: asks, on an empty cache; 1: fills the cache; 2: asks again; 3: plain, hits */
    T_RC(eng_submit(en, te_request(0, ids, 48, &asks), &e), &e);
    run_until_idle(en, g, 4);
    T_RC(eng_submit(en, te_request(1, ids, 48, &plain), &e), &e);
    run_until_idle(en, g, 4);
    T_RC(eng_submit(en, te_request(2, ids, 48, &asks), &e), &e);
    run_until_idle(en, g, 4);
    T_RC(eng_submit(en, te_request(3, ids, 48, &plain), &e), &e);
    run_until_idle(en, g, 4);
    T_EQ(g[1].n_cached, 32); /* request 0 left its two full blocks (of 16) */
    T_EQ(g[2].n_cached, 0);  /* prompt_logprobs reads no cache */
    T_EQ(g[3].n_cached, 32);
    T_EQ(g[1].n_carrying + g[3].n_carrying, 0);
    T_EQ(g[2].n_plp, 47);
    double worst = 0;
    for (int32_t q = 0; q < 47 && q < g[0].n_plp; q++) {
        double d = fabs(g[0].plp[q].logprob - g[2].plp[q].logprob);
        worst = d > worst ? d : worst;
        T_EQ(g[2].plp[q].n_top, 0); /* k = 0: the token only */
        T_OK(g[2].plp[q].rank >= 1 && g[2].plp[q].logprob <= 0);
    }
    T_CHECK_(worst <= TOL, "with and without cached blocks around: %g apart", worst);
    T_RC(eng_check(en, &e), &e);
    T_EQ(eng_n_live(en), 0);
    eng_free(en);
    te_close(&t);
}

int main(void) {
    T_RUN(test_reference);
    T_RUN(test_prefix_cache);
    return t_done();
}
