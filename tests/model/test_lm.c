/* Tests for the language-model forward (model/lm.c, batch.c, mrope.c) against the
 * transformers FP32 reference of tests/fixtures/lm (tools/lm_reference.py): the logits of
 * every prompt position and a 32-token greedy replay, for the tiny preset (re-created here
 * with the generator, same bytes every time) and the transformers-written fixture
 * tests/fixtures/hf/qwen2_5_vl_bf16. Then: a mixed batch of several sequences equals each
 * sequence alone, chunked prefill (1, 7, 64 tokens) equals one piece, the AVX-512 BF16 path
 * with a BF16 cache stays close to the reference, get_rope_index's worked examples (spec
 * §5.4), and bad batches are refused.
 *
 * Tolerances (each stated next to its check):
 *   - FP32 path (portable/avx2 matmul, F32 cache) vs the FP32 reference: 1e-4 absolute on
 *     logits of magnitude ~1. Both sides compute the same FP32 operations; only the order of
 *     summation differs (GEMM blocking, SDPA internals), which leaves ~1e-6 relative per
 *     op, ~1e-5 after a few layers; 1e-4 leaves a 10x margin without hiding a real bug (a
 *     wrong rotation, mask or bias shifts logits by 1e-2 or more).
 *   - same-backend comparisons (batching, chunking): 1e-5: only the rows sharing a matmul
 *     call change, never the per-row arithmetic order beyond the kernel's tiling.
 *   - BF16 path: matmul inputs and K/V rounded to BF16 (2^-9 relative each): 2e-2 of the
 *     largest |logit| of the prompt (about 1e-2 is measured on the tiny model). */
#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"
#include "model/batch.h"
#include "model/generator.h"
#include "model/lm.h"
#include "model/mrope.h"
#include "model/presets.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "util/bf16.h"
#include "t.h"

#include <stdint.h>

#define N_PROMPTS  5
#define N_GREEDY   32
#define MAX_BLOCKS 32 /* per sequence: 512 tokens */

struct ref {
    struct st_file *f;
    const int32_t *prompt[N_PROMPTS];
    int32_t n[N_PROMPTS];
    const float *logits[N_PROMPTS];
    const int32_t *greedy[N_PROMPTS];
};

static int ref_open(struct ref *r, const char *path) {
    struct err e = {0};
    memset(r, 0, sizeof *r);
    int rc = st_open(&r->f, path, &e);
    T_RC(rc, &e);
    if (rc != 0) return rc;
    for (int i = 0; i < N_PROMPTS; i++) {
        char name[32];
        snprintf(name, sizeof name, "prompt_%d", i);
        const struct st_tensor *p = st_file_find(r->f, name);
        snprintf(name, sizeof name, "logits_%d", i);
        const struct st_tensor *l = st_file_find(r->f, name);
        snprintf(name, sizeof name, "greedy_%d", i);
        const struct st_tensor *g = st_file_find(r->f, name);
        T_OK(p && l && g);
        if (!p || !l || !g) return -1;
        r->prompt[i] = p->data, r->n[i] = (int32_t)p->n_elems;
        r->logits[i] = l->data, r->greedy[i] = g->data;
    }
    return 0;
}

static struct be *mkbe(enum cpu_isa isa) {
    struct err e = {0};
    struct be *b = NULL;
    struct be_cpu_opts o = be_cpu_opts_default(2);
    o.isa = isa;
    T_RC(be_cpu_new_opts(&b, &o, &e), &e);
    return b;
}

/* The FP32 path: avx2 where the CPU has it, else portable; both keep FP32 activations. */
static enum cpu_isa fp32_isa(void) {
    return cpu_isa_supported(CPU_ISA_AVX2) ? CPU_ISA_AVX2 : CPU_ISA_PORTABLE;
}

static int32_t g_stack_weights; /* lm_options.stack_weights of mklm */

static struct lm *mklm(struct be *b, struct lm_files *f, enum be_dtype kv) {
    struct err e = {0};
    struct lm *m = NULL;
    struct lm_options o = {.max_tokens = 256,
                           .max_seqs = 8,
                           .n_blocks = 128,
                           .kv_dtype = kv,
                           .logit_rows = 64,
                           .stack_weights = g_stack_weights};
    T_RC(lm_new(&m, b, &f->cfg, f->w, &o, &e), &e);
    return m;
}

static int32_t argmax(const float *x, int32_t n, float *margin) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    float second = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (i != best && x[i] > second) second = x[i];
    if (margin) *margin = x[best] - second;
    return best;
}

/* Block table of sequence slot s (0..3): blocks s, s + 4, s + 8, ... (non-contiguous). */
static void table(int32_t s, int32_t *bt) {
    for (int32_t j = 0; j < MAX_BLOCKS; j++) bt[j] = s + 4 * j;
}

/* Runs ids[0..n) of one sequence (slot s) in chunks of `chunk` tokens, all logits into out
 * (n, V). */
static int run_chunked(struct lm *m, struct lm_batch_buf *bb, int32_t s, const int32_t *ids,
                       int32_t n, int32_t n0, int32_t chunk, float *out) {
    struct err e = {0};
    int32_t bt[MAX_BLOCKS], V = lm_vocab(m);
    table(s, bt);
    for (int32_t p = 0; p < n; p += chunk) {
        int32_t c = n - p < chunk ? n - p : chunk;
        lmb_reset(bb);
        int rc = lmb_add(bb, ids + p, c, n0 + p, NULL, 0, 0, bt, MAX_BLOCKS, false, &e);
        bb->b.all_logits = true;
        if (rc == 0) rc = lm_forward(m, &bb->b, out + (size_t)p * V, &e);
        T_RC(rc, &e);
        if (rc != 0) return rc;
    }
    return 0;
}

/* Prefill + greedy replay of prompt i; returns the max abs logit diff; *n_same greedy
 * tokens equal to the reference before the first difference; margins (N_GREEDY) receive our
 * top-2 margin at each greedy step when not NULL. */
static double replay(struct lm *m, const struct ref *r, int i, int32_t *n_same, float *margins,
                     double *max_abs, float *prompt_logits) {
    struct err e = {0};
    struct lm_batch_buf bb = {0};
    int32_t V = lm_vocab(m), n = r->n[i];
    float *lg = malloc((size_t)n * V * 4);
    double md = 0, mx = 0;
    T_RC(lmb_init(&bb, 256, 8, MAX_BLOCKS, lm_block_size(m), &e), &e);
    *n_same = 0;
    if (run_chunked(m, &bb, 0, r->prompt[i], n, 0, n, lg) == 0) {
        for (size_t j = 0; j < (size_t)n * V; j++) {
            md = fmax(md, fabs((double)lg[j] - r->logits[i][j]));
            mx = fmax(mx, fabs((double)r->logits[i][j]));
        }
        if (prompt_logits) memcpy(prompt_logits, lg, (size_t)n * V * 4);
        int32_t tok = argmax(lg + (size_t)(n - 1) * V, V, margins ? &margins[0] : NULL);
        int32_t bt[MAX_BLOCKS];
        table(0, bt);
        bool same = true;
        for (int32_t g = 0; g < N_GREEDY; g++) {
            same = same && tok == r->greedy[i][g];
            if (same) ++*n_same;
            if (g == N_GREEDY - 1) break;
            lmb_reset(&bb);
            int rc = lmb_add(&bb, &tok, 1, n + g, NULL, 0, 0, bt, MAX_BLOCKS, true, &e);
            if (rc == 0) rc = lm_forward(m, &bb.b, lg, &e);
            T_RC(rc, &e);
            if (rc != 0) break;
            tok = argmax(lg, V, margins ? &margins[g + 1] : NULL);
        }
    }
    if (max_abs) *max_abs = mx;
    lmb_deinit(&bb);
    free(lg);
    return md;
}

/* Our top-2 margins at each greedy step of the tiny model on the FP32 path (filled by
 * test_tiny_reference, used by test_bf16_path). */
static float g_tiny_margins[N_PROMPTS][N_GREEDY];
static bool g_have_margins;

static void check_model(const char *dir, enum file_map_mode mode, const char *fixture,
                        const char *label, float (*margins)[N_GREEDY]) {
    struct err e = {0};
    struct lm_files f;
    struct ref r;
    int rc = lm_files_open_mode(&f, dir, mode, &e);
    T_RC(rc, &e);
    if (rc != 0 || ref_open(&r, t_src(fixture)) != 0) {
        lm_files_close(&f);
        return;
    }
    struct be *b = mkbe(fp32_isa());
    struct lm *m = mklm(b, &f, BE_F32);
    double worst = 0;
    for (int i = 0; m && i < N_PROMPTS; i++) {
        int32_t same;
        double md = replay(m, &r, i, &same, margins ? margins[i] : NULL, NULL, NULL);
        worst = fmax(worst, md);
        /* tolerance: see the file comment (FP32 path) */
        T_CHECK_(md <= 1e-4, "%s prompt %d: max |logit diff| %g > 1e-4", label, i, md);
        T_CHECK_(same == N_GREEDY, "%s prompt %d: greedy differs at step %d", label, i, same);
    }
    printf("%s FP32 path (%s, F32 KV): max |logit - reference| = %.3g\n", label,
           cpu_isa_name(fp32_isa()), worst);
    lm_free(m);
    be_free(b);
    st_close(r.f);
    lm_files_close(&f);
}

static const char *tiny_dir(void) {
    static char dir[4200];
    if (dir[0]) return dir;
    struct err e = {0};
    const char *tmp = t_tmpdir("lm");
    if (!tmp) return NULL;
    snprintf(dir, sizeof dir, "%s/tiny", tmp);
    struct gen_options o = {.seed = 0, .n_threads = 2};
    int rc = gen_model_write(preset_find("tiny"), dir, &o, NULL, &e);
    T_RC(rc, &e);
    if (rc != 0) dir[0] = 0;
    return rc == 0 ? dir : NULL;
}

static void test_tiny_reference(void) {
    const char *d = tiny_dir();
    if (!d) return;
    int before = t_fail_;
    check_model(d, FILE_MAP_MMAP, "tests/fixtures/lm/tiny.safetensors", "tiny", g_tiny_margins);
    g_have_margins = t_fail_ == before;
}

/* q/k/v and gate/up stacked into one GEMM each (what device backends run), on the CPU: the
 * same reference logits and greedy tokens. */
static void test_stacked_weights(void) {
    const char *d = tiny_dir();
    if (!d) return;
    g_stack_weights = 1;
    check_model(d, FILE_MAP_MMAP, "tests/fixtures/lm/tiny.safetensors", "tiny (stacked)", NULL);
    check_model(t_src("tests/fixtures/hf/qwen2_5_vl_bf16"), FILE_MAP_MMAP,
                "tests/fixtures/lm/hf_qwen2_5_vl_bf16.safetensors", "hf_qwen2_5_vl_bf16 (stacked)",
                NULL);
    g_stack_weights = 0;
}

/* Mapped, and read into memory (--no-mmap): the same reference logits either way. */
static void test_hf_reference(void) {
    check_model(t_src("tests/fixtures/hf/qwen2_5_vl_bf16"), FILE_MAP_MMAP,
                "tests/fixtures/lm/hf_qwen2_5_vl_bf16.safetensors", "hf_qwen2_5_vl_bf16", NULL);
    check_model(t_src("tests/fixtures/hf/qwen2_5_vl_bf16"), FILE_MAP_READ,
                "tests/fixtures/lm/hf_qwen2_5_vl_bf16.safetensors", "hf_qwen2_5_vl_bf16 (read)",
                NULL);
}

static double max_diff(const float *a, const float *b, size_t n) {
    double md = 0;
    for (size_t i = 0; i < n; i++) md = fmax(md, fabs((double)a[i] - b[i]));
    return md;
}

/* Opens the tiny model on the FP32 path; NULL (after failed checks) when it cannot. */
static struct lm *tiny_lm(struct lm_files *f, struct be **b, struct ref *r, enum cpu_isa isa,
                          enum be_dtype kv) {
    struct err e = {0};
    const char *d = tiny_dir();
    *b = NULL;
    if (!d) return NULL;
    int rc = lm_files_open(f, d, &e);
    T_RC(rc, &e);
    if (rc != 0) return NULL;
    if (ref_open(r, t_src("tests/fixtures/lm/tiny.safetensors")) != 0) {
        lm_files_close(f);
        return NULL;
    }
    *b = mkbe(isa);
    return mklm(*b, f, kv);
}

static void tiny_close(struct lm *m, struct be *b, struct lm_files *f, struct ref *r) {
    lm_free(m);
    be_free(b);
    st_close(r->f);
    lm_files_close(f);
}

/* A mixed batch (prefill, chunk after a prefix, decode, one-token prompt) gives the logits
 * each sequence gets alone, and logit_rows returns exactly the sampled rows. */
static void test_batch_equals_alone(void) {
    struct err e = {0};
    struct lm_files f;
    struct ref r;
    struct be *b;
    struct lm *m = tiny_lm(&f, &b, &r, fp32_isa(), BE_F32);
    struct lm *solo = m ? mklm(b, &f, BE_F32) : NULL;
    if (!solo) {
        tiny_close(m, b, &f, &r);
        return;
    }
    int32_t V = lm_vocab(m), n0 = r.n[0], n2 = r.n[2], n3 = r.n[3], n4 = r.n[4];
    int32_t dec = r.greedy[4][0];
    struct lm_batch_buf bb = {0};
    T_RC(lmb_init(&bb, 256, 8, MAX_BLOCKS, lm_block_size(m), &e), &e);
    /* alone: each sequence in its own runs */
    float *a0 = malloc((size_t)n0 * V * 4), *a2 = malloc((size_t)n2 * V * 4),
          *a3 = malloc((size_t)n3 * V * 4), *a4 = malloc((size_t)n4 * V * 4),
          *ad = malloc((size_t)V * 4);
    run_chunked(solo, &bb, 0, r.prompt[0], n0, 0, n0, a0);
    run_chunked(solo, &bb, 1, r.prompt[2], n2, 0, n2, a2);
    run_chunked(solo, &bb, 3, r.prompt[3], n3, 0, n3, a3);
    run_chunked(solo, &bb, 2, r.prompt[4], n4, 0, n4, a4);
    run_chunked(solo, &bb, 2, &dec, 1, n4, 1, ad);
    /* together: prefixes first (seq 1: 20 tokens, seq 2: the whole prompt), then one step */
    float *lg = malloc((size_t)256 * V * 4), *sm = malloc((size_t)8 * V * 4);
    run_chunked(m, &bb, 1, r.prompt[2], 20, 0, 20, lg);
    run_chunked(m, &bb, 2, r.prompt[4], n4, 0, n4, lg);
    int32_t bt[4][MAX_BLOCKS];
    for (int s = 0; s < 4; s++) table(s, bt[s]);
    for (int pass = 0; pass < 2; pass++) { /* pass 0: all rows; pass 1: sampled rows only */
        lmb_reset(&bb);
        int rc = lmb_add(&bb, r.prompt[0], n0, 0, NULL, 0, 0, bt[0], MAX_BLOCKS, true, &e);
        if (rc == 0)
            rc = lmb_add(&bb, r.prompt[2] + 20, n2 - 20, 20, NULL, 0, 0, bt[1], MAX_BLOCKS, true,
                         &e);
        if (rc == 0) rc = lmb_add(&bb, &dec, 1, n4, NULL, 0, 0, bt[2], MAX_BLOCKS, true, &e);
        if (rc == 0) rc = lmb_add(&bb, r.prompt[3], n3, 0, NULL, 0, 0, bt[3], MAX_BLOCKS, true, &e);
        bb.b.all_logits = pass == 0;
        if (rc == 0) rc = lm_forward(m, &bb.b, pass == 0 ? lg : sm, &e);
        T_RC(rc, &e);
        if (rc != 0) break;
    }
    int32_t o1 = n0, o2 = o1 + n2 - 20, o3 = o2 + 1;
    double md = max_diff(lg, a0, (size_t)n0 * V);
    md = fmax(md, max_diff(lg + (size_t)o1 * V, a2 + (size_t)20 * V, (size_t)(n2 - 20) * V));
    md = fmax(md, max_diff(lg + (size_t)o2 * V, ad, (size_t)V));
    md = fmax(md, max_diff(lg + (size_t)o3 * V, a3, (size_t)n3 * V));
    /* tolerance: same backend, see the file comment */
    T_CHECK_(md <= 1e-5, "batched vs alone: max diff %g > 1e-5", md);
    const int32_t rows[4] = {o1 - 1, o2 - 1, o3 - 1, o3 + n3 - 1};
    double ms = 0;
    for (int i = 0; i < 4; i++)
        ms = fmax(ms, max_diff(sm + (size_t)i * V, lg + (size_t)rows[i] * V, (size_t)V));
    T_CHECK_(ms == 0, "sampled rows differ from the same rows of all_logits by %g", ms);
    printf("mixed batch of 4 sequences vs alone: max diff %.3g\n", md);
    free(a0), free(a2), free(a3), free(a4), free(ad), free(lg), free(sm);
    lmb_deinit(&bb);
    lm_free(solo);
    tiny_close(m, b, &f, &r);
}

/* Chunked prefill in pieces of 1, 7 and 64 tokens gives the logits of one piece. */
static void test_chunked_prefill(void) {
    struct lm_files f;
    struct ref r;
    struct be *b;
    struct err e = {0};
    struct lm *m = tiny_lm(&f, &b, &r, fp32_isa(), BE_F32);
    if (!m) {
        tiny_close(m, b, &f, &r);
        return;
    }
    struct lm_batch_buf bb = {0};
    T_RC(lmb_init(&bb, 256, 8, MAX_BLOCKS, lm_block_size(m), &e), &e);
    int32_t V = lm_vocab(m), n = r.n[4];
    float *one = malloc((size_t)n * V * 4), *ch = malloc((size_t)n * V * 4);
    run_chunked(m, &bb, 0, r.prompt[4], n, 0, n, one);
    static const int32_t sizes[3] = {1, 7, 64};
    for (int i = 0; i < 3; i++) {
        memset(ch, 0, (size_t)n * V * 4);
        run_chunked(m, &bb, 1 + i, r.prompt[4], n, 0, sizes[i], ch);
        double md = max_diff(one, ch, (size_t)n * V);
        T_CHECK_(md <= 1e-5, "chunks of %d: max diff %g > 1e-5", (int)sizes[i], md);
        printf("chunked prefill (%d tokens per chunk) vs one piece: max diff %.3g\n", (int)sizes[i],
               md);
    }
    free(one), free(ch);
    lmb_deinit(&bb);
    tiny_close(m, b, &f, &r);
}

/* AVX-512 BF16 matmul + BF16 KV cache: logits within 2e-2 of the largest |logit| (about
 * twice what the roundings cost here); the argmax is the reference's wherever the
 * reference's top-2 margin exceeds twice the largest logit difference (such a winner cannot
 * be overtaken); greedy tokens equal the reference's at least until the first step whose
 * margin (measured on the FP32 path, which matches the reference) is below that. */
static void test_bf16_path(void) {
    if (!cpu_isa_supported(CPU_ISA_AVX512)) {
        T_SKIP("this CPU has no AVX-512 BF16: BF16 path not tested");
        return;
    }
    if (!g_have_margins) {
        T_SKIP("FP32 reference replay failed: BF16 path not tested");
        return;
    }
    struct lm_files f;
    struct ref r;
    struct be *b;
    struct lm *m = tiny_lm(&f, &b, &r, CPU_ISA_AVX512, BE_BF16);
    if (!m) {
        tiny_close(m, b, &f, &r);
        return;
    }
    int32_t V = lm_vocab(m);
    double worst = 0;
    for (int i = 0; i < N_PROMPTS; i++) {
        int32_t same16;
        double mx;
        float *lg = malloc((size_t)r.n[i] * V * 4);
        double md = replay(m, &r, i, &same16, NULL, &mx, lg);
        double tol = 2e-2 * mx, clear_margin = 2 * md;
        worst = fmax(worst, md / mx);
        T_CHECK_(md <= tol, "bf16 prompt %d: max diff %g > %g", i, md, tol);
        int32_t safe = 0;
        while (safe < N_GREEDY && g_tiny_margins[i][safe] > clear_margin) safe++;
        T_CHECK_(same16 >= safe, "bf16 prompt %d: greedy differs at %d, margins large until %d", i,
                 same16, safe);
        /* prompt positions with a clear reference winner keep their argmax */
        int32_t bad = 0, clear = 0;
        for (int32_t p = 0; p < r.n[i]; p++) {
            float mg;
            int32_t want = argmax(r.logits[i] + (size_t)p * V, V, &mg);
            if (mg <= clear_margin) continue;
            clear++;
            bad += argmax(lg + (size_t)p * V, V, NULL) != want;
        }
        T_CHECK_(bad == 0, "bf16 prompt %d: %d of %d clear argmaxes differ", i, bad, clear);
        printf("bf16 prompt %d: max diff %.3g (max |logit| %.3g), greedy same for %d of %d "
               "(margin clear for %d), argmax kept at %d clear prompt positions\n",
               i, md, mx, same16, N_GREEDY, safe, clear);
        free(lg);
    }
    printf("tiny BF16 path (avx512, BF16 KV): max |diff| / max |logit| = %.3g\n", worst);
    tiny_close(m, b, &f, &r);
}

/* Embeddings override: rows replaced by the token table's own rows change nothing; a row
 * replaced by something else changes the logits from that row on, not before it. */
static void test_embeds_override(void) {
    struct lm_files f;
    struct ref r;
    struct be *b;
    struct err e = {0};
    struct lm *m = tiny_lm(&f, &b, &r, fp32_isa(), BE_F32);
    if (!m) {
        tiny_close(m, b, &f, &r);
        return;
    }
    int32_t V = lm_vocab(m), n = r.n[0], D = f.cfg.hidden_size;
    const struct weight *emb = weights_find(f.w, "model.embed_tokens.weight");
    float *ev = malloc((size_t)n * D * 4), *base = malloc((size_t)n * V * 4),
          *lg = malloc((size_t)n * V * 4);
    uint8_t mask[64] = {0};
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j < D; j++)
            ev[(size_t)i * D + j] = bf16_to_f32(emb->bf16[(size_t)r.prompt[0][i] * D + j]);
    struct lm_batch_buf bb = {0};
    int32_t bt[MAX_BLOCKS];
    table(0, bt);
    T_RC(lmb_init(&bb, 256, 8, MAX_BLOCKS, lm_block_size(m), &e), &e);
    run_chunked(m, &bb, 0, r.prompt[0], n, 0, n, base);
    for (int pass = 0; pass < 2; pass++) {
        lmb_reset(&bb);
        T_RC(lmb_add(&bb, r.prompt[0], n, 0, NULL, 0, 0, bt, MAX_BLOCKS, false, &e), &e);
        bb.b.all_logits = true;
        bb.b.embeds = ev;
        if (pass == 1) { /* only row 5, with other values */
            mask[5] = 1;
            for (int32_t j = 0; j < D; j++) ev[5 * D + j] = 0.01f * (float)(j % 7);
            bb.b.embeds_mask = mask;
        }
        T_RC(lm_forward(m, &bb.b, lg, &e), &e);
        if (pass == 0) T_OK(max_diff(lg, base, (size_t)n * V) == 0);
    }
    T_OK(max_diff(lg, base, (size_t)5 * V) == 0);
    T_OK(max_diff(lg + (size_t)5 * V, base + (size_t)5 * V, (size_t)V) > 1e-3);
    lmb_deinit(&bb);
    free(ev), free(base), free(lg);
    tiny_close(m, b, &f, &r);
}

/* Bad batches fail with a message before anything runs. */
static void test_bad_batches(void) {
    struct lm_files f;
    struct ref r;
    struct be *b;
    struct err e = {0};
    struct lm *m = tiny_lm(&f, &b, &r, fp32_isa(), BE_F32);
    if (!m) {
        tiny_close(m, b, &f, &r);
        return;
    }
    float *lg = malloc((size_t)lm_vocab(m) * 4 * 256);
    struct lm_batch_buf bb = {0};
    int32_t bt[MAX_BLOCKS], ids[300] = {0};
    table(0, bt);
    T_RC(lmb_init(&bb, 300, 9, MAX_BLOCKS, lm_block_size(m), &e), &e);
    ids[1] = lm_vocab(m); /* one past the vocabulary */
    T_RC(lmb_add(&bb, ids, 3, 0, NULL, 0, 0, bt, MAX_BLOCKS, true, &e), &e);
    T_FAILS(lm_forward(m, &bb.b, lg, &e), VELA_EINVAL, &e);
    T_OK(strstr(e.msg, "position 1") != NULL);
    ids[1] = -1;
    T_FAILS(lm_forward(m, &bb.b, lg, &e), VELA_EINVAL, &e);
    ids[1] = 0;
    lmb_reset(&bb);
    T_RC(lmb_add(&bb, ids, 257, 0, NULL, 0, 0, bt, MAX_BLOCKS, true, &e), &e);
    T_FAILS(lm_forward(m, &bb.b, lg, &e), VELA_ELIMIT, &e); /* above max_tokens 256 */
    lmb_reset(&bb);
    for (int s = 0; s < 9; s++)
        T_RC(lmb_add(&bb, ids, 1, 0, NULL, 0, 0, bt, MAX_BLOCKS, true, &e), &e);
    T_FAILS(lm_forward(m, &bb.b, lg, &e), VELA_ELIMIT, &e); /* above max_seqs 8 */
    lmb_reset(&bb);
    T_RC(lmb_add(&bb, ids, 2, 0, NULL, 0, 0, bt, MAX_BLOCKS, true, &e), &e);
    bb.rows[0] = 2; /* logit row outside the batch */
    T_FAILS(lm_forward(m, &bb.b, lg, &e), VELA_EINVAL, &e);
    T_FAILS(lm_forward(m, &bb.b, NULL, &e), VELA_EINVAL, &e);
    bb.rows[0] = 1;
    bt[0] = lm_n_blocks(m); /* block outside the cache */
    lmb_reset(&bb);
    T_RC(lmb_add(&bb, ids, 2, 0, NULL, 0, 0, bt, MAX_BLOCKS, true, &e), &e);
    T_FAILS(lm_forward(m, &bb.b, lg, &e), VELA_EINVAL, &e);
    /* the builder refuses what it cannot hold */
    T_FAILS(lmb_add(&bb, ids, 1, 16 * MAX_BLOCKS, NULL, 0, 0, bt, MAX_BLOCKS, true, &e),
            VELA_EINVAL, &e);
    T_FAILS(lmb_add(&bb, ids, 299, 0, NULL, 0, 0, bt, MAX_BLOCKS, true, &e), VELA_ELIMIT, &e);
    lmb_deinit(&bb);
    free(lg);
    tiny_close(m, b, &f, &r);
}

/* The other architectures of the fixtures run: Qwen2-VL (M-RoPE, untied) and Qwen2 (1-D
 * RoPE, tied lm_head): finite logits, a chunked prefill equal to one piece. */
static void smoke(const char *rel) {
    struct err e = {0};
    struct lm_files f;
    int rc = lm_files_open(&f, t_src(rel), &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    struct be *b = mkbe(fp32_isa());
    struct lm *m = mklm(b, &f, BE_F32);
    if (m) {
        int32_t ids[40], V = lm_vocab(m);
        for (int i = 0; i < 40; i++) ids[i] = (i * 37 + 11) % 256;
        float *one = malloc((size_t)40 * V * 4), *ch = malloc((size_t)40 * V * 4);
        struct lm_batch_buf bb = {0};
        T_RC(lmb_init(&bb, 256, 8, MAX_BLOCKS, lm_block_size(m), &e), &e);
        run_chunked(m, &bb, 0, ids, 40, 0, 40, one);
        run_chunked(m, &bb, 1, ids, 40, 0, 9, ch);
        bool finite = true;
        for (size_t i = 0; i < (size_t)40 * V; i++) finite = finite && isfinite(one[i]);
        T_OK(finite);
        T_CHECK_(max_diff(one, ch, (size_t)40 * V) <= 1e-5, "%s: chunked differs", rel);
        T_OK(f.cfg.tie_word_embeddings == (f.cfg.arch == ARCH_QWEN2));
        lmb_deinit(&bb);
        free(one), free(ch);
    }
    lm_free(m);
    be_free(b);
    lm_files_close(&f);
}

static void test_other_archs(void) {
    smoke("tests/fixtures/hf/qwen2_vl_bf16");
    smoke("tests/fixtures/hf/qwen2_tied_bf16");
    smoke("tests/fixtures/hf/qwen2_5_vl_f32");
}

int main(void) {
    T_RUN(test_tiny_reference);
    T_RUN(test_hf_reference);
    T_RUN(test_stacked_weights);
    T_RUN(test_batch_equals_alone);
    T_RUN(test_chunked_prefill);
    T_RUN(test_bf16_path);
    T_RUN(test_embeds_override);
    T_RUN(test_bad_batches);
    T_RUN(test_other_archs);
    return t_done();
}
