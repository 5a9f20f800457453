/* tiny_engine: shared set-up for the runner and engine tests (header-only, static: each test
 * is its own program). Writes the tiny preset with the generator (same bytes every time),
 * opens it on the CPU backend's FP32 path (avx2 or portable matmul, F32 activations) with an
 * F32 KV cache, so that results can be compared exactly, and builds requests.
 *
 * Exactness: on the FP32 path a row's arithmetic does not depend on the other rows of the
 * batch except through the GEMM's tiling, which test_lm bounds to 1e-5 on the logits. The
 * tests therefore compare tokens exactly, and where two runs differ they accept it only at
 * a near tie of the reference run (top-2 logprob margin below TE_TIE_EPS), which they report.
 * On the tiny model no such tie has been seen. */
#ifndef VELA_TESTS_ENGINE_TINY_ENGINE_H
#define VELA_TESTS_ENGINE_TINY_ENGINE_H

#include "backend/cpu/backend_cpu.h"
#include "engine/params.h"
#include "engine/request.h"
#include "model/generator.h"
#include "model/lm.h"
#include "model/presets.h"
#include "util/rng.h"
#include "t.h"

#include <stdint.h>

#define TE_TIE_EPS 1e-4

static const char *te_tiny_dir(void) {
    static char dir[4200];
    if (dir[0]) return dir;
    struct err e = {0};
    const char *tmp = t_tmpdir("engine");
    if (!tmp) return NULL;
    snprintf(dir, sizeof dir, "%s/tiny", tmp);
    struct gen_options o = {.seed = 0, .n_threads = 2};
    int rc = gen_model_write(preset_find("tiny"), dir, &o, NULL, &e);
    T_RC(rc, &e);
    if (rc != 0) dir[0] = 0;
    return rc == 0 ? dir : NULL;
}

static enum cpu_isa te_fp32_isa(void) {
    return cpu_isa_supported(CPU_ISA_AVX2) ? CPU_ISA_AVX2 : CPU_ISA_PORTABLE;
}

/* The tiny model on the FP32 path: files, backend, lm. */
struct te_model {
    struct lm_files f;
    struct be *b;
    struct lm *m;
};

/* The model in dir (NULL: the tiny preset). */
static int te_open_dir(struct te_model *t, const char *dir, int32_t max_tokens, int32_t max_seqs,
                       int32_t n_blocks) {
    struct err e = {0};
    memset(t, 0, sizeof *t);
    const char *d = dir ? dir : te_tiny_dir();
    if (!d) return -1;
    int rc = lm_files_open(&t->f, d, &e);
    T_RC(rc, &e);
    if (rc != 0) return rc;
    struct be_cpu_opts o =
        be_cpu_opts_default(1); /* tiny matmuls: threads cost more than they give */
    o.isa = te_fp32_isa();
    o.f32_activations = true;
    rc = be_cpu_new_opts(&t->b, &o, &e);
    T_RC(rc, &e);
    struct lm_options lo = {.max_tokens = max_tokens,
                            .max_seqs = max_seqs,
                            .n_blocks = n_blocks,
                            .block_size = 16,
                            .kv_dtype = BE_F32};
    if (rc == 0) rc = lm_new(&t->m, t->b, &t->f.cfg, t->f.w, &lo, &e);
    T_RC(rc, &e);
    return rc;
}

static int te_open(struct te_model *t, int32_t max_tokens, int32_t max_seqs, int32_t n_blocks) {
    return te_open_dir(t, NULL, max_tokens, max_seqs, n_blocks);
}

static void te_close(struct te_model *t) {
    lm_free(t->m);
    be_free(t->b);
    lm_files_close(&t->f);
}

/* Neutral sampling: greedy (temperature 0) or seeded sampling at temperature 1 with top-k 50;
 * max_tokens as given; logprobs 2 so the tests can see the top-2 margin. */
static struct sampling_params te_params(bool greedy, uint64_t seed, int32_t max_tokens,
                                        bool ignore_eos) {
    struct sampling_params p;
    sp_defaults(&p);
    p.temperature = greedy ? 0.0f : 1.0f;
    p.top_k = greedy ? 0 : 50;
    p.seed = seed, p.has_seed = !greedy;
    p.max_tokens = max_tokens;
    p.eos_token_ids[0] = 633, p.eos_token_ids[1] = 631, p.n_eos_token_ids = 2;
    p.ignore_eos = ignore_eos;
    p.logprobs = 2;
    return p;
}

/* A prompt of n pseudo-random ids in [0, 600) from stream `stream`; the first n_shared come
 * from stream 0, so prompts with the same n_shared share that prefix. */
static void te_prompt(int32_t *ids, int32_t n, int32_t n_shared, uint64_t stream) {
    for (int32_t i = 0; i < n; i++)
        ids[i] = (int32_t)(rng_hash(7, i < n_shared ? 0 : stream, (uint64_t)i) % 600u);
}

static struct request *te_request(uint64_t id, const int32_t *ids, int32_t n,
                                  const struct sampling_params *p) {
    struct err e = {0};
    struct request *r = req_new(id, ids, n, NULL, 0, p, &e);
    T_CHECK_(r != NULL, "req_new: %s", e.msg);
    return r;
}

#endif
