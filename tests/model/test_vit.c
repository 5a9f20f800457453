/* Tests for the vision tower (model/vit.c, vit_window.c) against the transformers FP32
 * reference of tests/fixtures/vision (tools/vision_reference.py) on the tiny preset
 * (re-created here with the generator, same bytes every time): merged outputs and block 0
 * for six calls (partial windows, the empty-window padding quirk, two images in one call, a
 * two-frame-pair video, several whole windows), window_index and cu_seqlens exact, several
 * images in one call equal to each alone, the AVX-512 BF16 path close to the reference, a
 * shared image end to end (decode, preprocess, tower), the transformers-written Qwen2.5-VL
 * and Qwen2-VL checkpoints of tests/fixtures/hf, and bad calls refused.
 *
 * Tolerances (each stated next to its check):
 *   - FP32 path (portable/avx2 matmul) vs the FP32 reference: 1e-4 absolute on outputs of
 *     magnitude ~1 (max ~2). Both sides compute the same FP32 operations; only summation order
 *     (GEMM blocking, SDPA internals) and libm cos/sin/erf/exp ulps differ: ~1e-6 relative
 *     per op, ~1e-5 after the blocks and the merger. A wrong rotation, window or bias moves
 *     outputs by 1e-2 or more.
 *   - same-backend comparisons (one call vs one call per image): 1e-5, only the rows that
 *     share a matmul call change.
 *   - end to end (shared image -> vision/decode + preprocess -> tower) vs transformers on
 *     Qwen2VLImageProcessorPil's pixel values: 1e-4 as above, since preprocessing
 *     reproduces the reference's pixel values exactly (tests/vision).
 *   - BF16 path (avx512: matmul inputs rounded to BF16, 2^-9 relative each): 3e-2 of the
 *     largest |output| of the call. */
#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"
#include "model/generator.h"
#include "model/lm.h"
#include "model/presets.h"
#include "model/safetensors.h"
#include "model/vit.h"
#include "model/vit_window.h"
#include "model/weights.h"
#include "util/file.h"
#include "vision/decode.h"
#include "vision/preprocess.h"
#include "t.h"

#include <stdint.h>

#define N_CASES   6
#define MAX_GRIDS 4
#define PATCH_DIM 1176
#define MAX_PATCH 512

struct vcase {
    struct vit_grid g[MAX_GRIDS];
    int32_t n_grids;
    int64_t n_rows, n_units;
    const int32_t *widx, *cu_win, *cu_full;
    int64_t n_widx, n_cu_win, n_cu_full;
    const float *out, *block0;
    double input_sum;
};

static struct st_file *g_ref;
static struct vcase g_cases[N_CASES];
static struct lm_files g_files;
static bool g_have_model;

static const struct st_tensor *find(const char *what, int i) {
    char name[64];
    snprintf(name, sizeof name, "%s_%d", what, i);
    const struct st_tensor *t = st_file_find(g_ref, name);
    T_CHECK_(t != NULL, "fixture tensor %s missing", name);
    return t;
}

static int load_fixture(void) {
    struct err e = {0};
    int rc = st_open(&g_ref, t_src("tests/fixtures/vision/tiny.safetensors"), &e);
    T_RC(rc, &e);
    if (rc != 0) return rc;
    for (int i = 0; i < N_CASES; i++) {
        struct vcase *c = &g_cases[i];
        const struct st_tensor *g = find("grid", i), *w = find("window_index", i),
                               *cw = find("cu_window", i), *cf = find("cu_full", i),
                               *o = find("out", i), *b0 = find("block0", i),
                               *s = find("input_sum", i);
        if (!g || !w || !cw || !cf || !o || !b0 || !s) return -1;
        c->n_grids = (int32_t)g->shape[0];
        const int32_t *gv = g->data;
        for (int32_t k = 0; k < c->n_grids && k < MAX_GRIDS; k++) {
            c->g[k] = (struct vit_grid){gv[3 * k], gv[3 * k + 1], gv[3 * k + 2]};
            c->n_rows += (int64_t)gv[3 * k] * gv[3 * k + 1] * gv[3 * k + 2];
        }
        c->n_units = c->n_rows / 4;
        c->widx = w->data, c->n_widx = w->n_elems;
        c->cu_win = cw->data, c->n_cu_win = cw->n_elems;
        c->cu_full = cf->data, c->n_cu_full = cf->n_elems;
        c->out = o->data, c->block0 = b0->data;
        memcpy(&c->input_sum, s->data, sizeof(double));
    }
    return 0;
}

/* The fixture's inputs (see tools/vision_reference.py): exact in float32. */
static float *make_pixels(int64_t n_rows, int case_i) {
    float *px = malloc((size_t)n_rows * PATCH_DIM * sizeof(float));
    for (int64_t r = 0; px && r < n_rows; r++)
        for (int64_t j = 0; j < PATCH_DIM; j++) {
            int64_t x = (r * 7919 + j * 104729 + (int64_t)case_i * 31337) % 65521;
            px[r * PATCH_DIM + j] = (float)(x - 32760) / 16384.0f;
        }
    return px;
}

static enum cpu_isa fp32_isa(void) {
    return cpu_isa_supported(CPU_ISA_AVX2) ? CPU_ISA_AVX2 : CPU_ISA_PORTABLE;
}

static struct be *mkbe(enum cpu_isa isa, int n_threads) {
    struct err e = {0};
    struct be *b = NULL;
    struct be_cpu_opts o = be_cpu_opts_default(n_threads);
    o.isa = isa;
    T_RC(be_cpu_new_opts(&b, &o, &e), &e);
    return b;
}

static struct vit *mkvit(struct be *b, int64_t max_patches) {
    struct err e = {0};
    struct vit *v = NULL;
    struct vit_options o = {.max_patches = max_patches};
    if (!b) return NULL;
    T_RC(vit_new(&v, b, &g_files.cfg, g_files.w, &o, &e), &e);
    return v;
}

static double max_diff(const float *a, const float *b, size_t n, size_t *at) {
    double md = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > md || d != d) md = d, *at = i;
    }
    return md;
}

static void test_window_index_exact(void) {
    for (int i = 0; i < N_CASES; i++) {
        const struct vcase *c = &g_cases[i];
        int32_t widx[MAX_PATCH], cu[MAX_PATCH], cf[MAX_PATCH];
        T_EQ(c->n_widx, c->n_units);
        int64_t n_cu = vitw_window_index(c->g, c->n_grids, 2, 4, widx, cu);
        int64_t n_cf = vitw_full_seqlens(c->g, c->n_grids, cf);
        T_EQ(n_cu, c->n_cu_win);
        T_EQ(n_cf, c->n_cu_full);
        T_OK(memcmp(widx, c->widx, (size_t)c->n_units * 4) == 0);
        if (n_cu == c->n_cu_win) T_OK(memcmp(cu, c->cu_win, (size_t)n_cu * 4) == 0);
        if (n_cf == c->n_cu_full) T_OK(memcmp(cf, c->cu_full, (size_t)n_cf * 4) == 0);
    }
}

static void test_inputs_match_generator(void) {
    for (int i = 0; i < N_CASES; i++) {
        float *px = make_pixels(g_cases[i].n_rows, i);
        double s = 0;
        for (int64_t j = 0; j < g_cases[i].n_rows * PATCH_DIM; j++) s += px[j];
        T_NEAR(s, g_cases[i].input_sum, 1e-6 * (1 + fabs(s)));
        free(px);
    }
}

/* Every case on the FP32 path: outputs and block 0 within 1e-4 (see the file comment). */
static void test_reference_fp32(void) {
    struct err e = {0};
    struct be *b = mkbe(fp32_isa(), 2);
    struct vit *v = mkvit(b, MAX_PATCH);
    double worst = 0, worst_b0 = 0;
    for (int i = 0; v && i < N_CASES; i++) {
        const struct vcase *c = &g_cases[i];
        float *px = make_pixels(c->n_rows, i);
        float *out = calloc((size_t)c->n_units * 128, sizeof(float));
        float *b0 = calloc((size_t)c->n_rows * 64, sizeof(float));
        vit_set_tap(v, 0, b0);
        int rc = vit_forward(v, px, c->n_rows, c->g, c->n_grids, out, &e);
        T_RC(rc, &e);
        if (rc == 0) {
            size_t at = 0, at0 = 0;
            double md = max_diff(out, c->out, (size_t)c->n_units * 128, &at);
            double m0 = max_diff(b0, c->block0, (size_t)c->n_rows * 64, &at0);
            T_CHECK_(md <= 1e-4, "case %d: max |out diff| %g at row %zu col %zu", i, md, at / 128,
                     at % 128);
            T_CHECK_(m0 <= 1e-4, "case %d: max |block 0 diff| %g at row %zu col %zu", i, m0,
                     at0 / 64, at0 % 64);
            worst = fmax(worst, md), worst_b0 = fmax(worst_b0, m0);
        }
        free(px), free(out), free(b0);
    }
    if (v) {
        printf("tiny ViT FP32 path (%s): max |out - reference| = %.3g, block 0 %.3g\n",
               cpu_isa_name(fp32_isa()), worst, worst_b0);
    }
    vit_free(v);
    be_free(b);
}

/* Case 3 (two images in one call) equals each image alone; one pool thread equals two. */
static void test_batch_equals_single(void) {
    struct err e = {0};
    const struct vcase *c = &g_cases[3];
    struct be *b = mkbe(fp32_isa(), 2), *b1 = mkbe(fp32_isa(), 1);
    struct vit *v = mkvit(b, MAX_PATCH), *v1 = mkvit(b1, MAX_PATCH);
    float *px = make_pixels(c->n_rows, 3);
    float *all = calloc((size_t)c->n_units * 128, sizeof(float));
    float *one = calloc((size_t)c->n_units * 128, sizeof(float));
    float *thr = calloc((size_t)c->n_units * 128, sizeof(float));
    if (!v || !v1) goto done;
    T_RC(vit_forward(v, px, c->n_rows, c->g, c->n_grids, all, &e), &e);
    T_RC(vit_forward(v1, px, c->n_rows, c->g, c->n_grids, thr, &e), &e);
    int64_t r0 = 0, u0 = 0;
    for (int32_t k = 0; k < c->n_grids; k++) {
        int64_t n = (int64_t)c->g[k].t * c->g[k].h * c->g[k].w;
        T_RC(vit_forward(v, px + r0 * PATCH_DIM, n, &c->g[k], 1, one + u0 * 128, &e), &e);
        r0 += n, u0 += n / 4;
    }
    size_t at = 0;
    double md = max_diff(all, one, (size_t)c->n_units * 128, &at);
    T_CHECK_(md <= 1e-5, "two images in one call vs alone: max diff %g at %zu", md, at);
    md = max_diff(all, thr, (size_t)c->n_units * 128, &at);
    T_CHECK_(md <= 1e-5, "1 thread vs 2: max diff %g at %zu", md, at);
done:
    free(px), free(all), free(one), free(thr);
    vit_free(v), vit_free(v1);
    be_free(b), be_free(b1);
}

/* The AVX-512 path (BF16 matmul inputs) stays within 3e-2 of the largest |output|. */
static void test_bf16_path(void) {
    if (!cpu_isa_supported(CPU_ISA_AVX512)) {
        printf("(BF16 path skipped: no AVX-512 BF16 on this CPU)\n");
        return;
    }
    struct err e = {0};
    struct be *b = mkbe(CPU_ISA_AVX512, 2);
    struct vit *v = mkvit(b, MAX_PATCH);
    double worst = 0;
    for (int i = 0; v && i < N_CASES; i++) {
        const struct vcase *c = &g_cases[i];
        size_t n = (size_t)c->n_units * 128, at = 0;
        float *px = make_pixels(c->n_rows, i), *out = calloc(n, sizeof(float));
        T_RC(vit_forward(v, px, c->n_rows, c->g, c->n_grids, out, &e), &e);
        double mx = 0;
        for (size_t j = 0; j < n; j++) mx = fmax(mx, fabs(c->out[j]));
        double rel = max_diff(out, c->out, n, &at) / mx;
        T_CHECK_(rel <= 3e-2, "case %d BF16 path: max diff / max |out| = %g", i, rel);
        worst = fmax(worst, rel);
        free(px), free(out);
    }
    if (v) printf("tiny ViT BF16 path (avx512): max |diff| / max |out| = %.3g\n", worst);
    vit_free(v);
    be_free(b);
}

/* A shared test image through decode, preprocess and the tower, against the reference. */
static void check_e2e(const char *name, const char *file) {
    char rel[128], tname[64];
    snprintf(rel, sizeof rel, "testdata/images/%s", file);
    const char *path = t_shared(rel);
    if (!path) return;
    snprintf(tname, sizeof tname, "e2e_out_%s", name);
    const struct st_tensor *ref = st_file_find(g_ref, tname);
    snprintf(tname, sizeof tname, "e2e_grid_%s", name);
    const struct st_tensor *rg = st_file_find(g_ref, tname);
    T_OK(ref && rg);
    if (!ref || !rg) return;
    struct err e = {0};
    char *buf = NULL;
    size_t len = 0;
    struct image im = {0};
    struct pixel_values pv = {0};
    struct preproc_params pp;
    preproc_params_default(&pp);
    int rc = file_read_all(path, 64u << 20, &buf, &len, &e);
    if (rc == 0) rc = img_decode(&im, (const uint8_t *)buf, len, NULL, &e);
    if (rc == 0) rc = img_preprocess(&im, &pp, &pv, &e);
    T_RC(rc, &e);
    struct be *b = mkbe(fp32_isa(), 2);
    struct vit *v = rc == 0 ? mkvit(b, 1024) : NULL;
    const int32_t *gv = rg->data;
    struct vit_grid g = {(int32_t)pv.grid_t, (int32_t)pv.grid_h, (int32_t)pv.grid_w};
    if (v) {
        T_OK(g.t == gv[0] && g.h == gv[1] && g.w == gv[2]);
        T_EQ(ref->n_elems, pv.n_rows / 4 * 128);
    }
    if (v && ref->n_elems == pv.n_rows / 4 * 128) {
        float *out = calloc((size_t)ref->n_elems, sizeof(float));
        T_RC(vit_forward(v, pv.data, pv.n_rows, &g, 1, out, &e), &e);
        size_t at = 0;
        double md = max_diff(out, ref->data, (size_t)ref->n_elems, &at);
        T_CHECK_(md <= 1e-4, "%s end to end: max |out diff| %g at row %zu", name, md, at / 128);
        printf("%s (%d, %d, %d) end to end: max |out - reference| = %.3g\n", name, g.t, g.h, g.w,
               md);
        free(out);
    }
    vit_free(v);
    be_free(b);
    pixel_values_deinit(&pv);
    img_deinit(&im);
    free(buf);
}

static void test_end_to_end(void) {
    check_e2e("chelsea", "chelsea.png");
    check_e2e("chessboard", "chessboard_GRAY.png");
}

/* The transformers-written checkpoints (a Qwen2.5-VL tower with other widths, and the
 * Qwen2-VL tower: LayerNorm, quick_gelu MLP, no windows): cases 0, 2, 3, 4, FP32 path, 1e-4. */
static void check_hf(const char *name) {
    char dir[256], fix[256];
    snprintf(dir, sizeof dir, "tests/fixtures/hf/%s", name);
    snprintf(fix, sizeof fix, "tests/fixtures/vision/hf_%s.safetensors", name);
    struct err e = {0};
    struct lm_files f;
    struct st_file *ref = NULL;
    int rc = lm_files_open(&f, t_src(dir), &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    rc = st_open(&ref, t_src(fix), &e);
    T_RC(rc, &e);
    struct be *b = mkbe(fp32_isa(), 2);
    struct vit *v = NULL;
    struct vit_options o = {.max_patches = MAX_PATCH};
    if (rc == 0 && b) T_RC(vit_new(&v, b, &f.cfg, f.w, &o, &e), &e);
    static const int cases[4] = {0, 2, 3, 4};
    double worst = 0;
    for (int k = 0; v && k < 4; k++) {
        const struct vcase *c = &g_cases[cases[k]];
        char tn[32];
        snprintf(tn, sizeof tn, "out_%d", cases[k]);
        const struct st_tensor *want = st_file_find(ref, tn);
        int32_t O = vit_out_dim(v);
        T_OK(want && want->n_elems == c->n_units * O);
        if (!want || want->n_elems != c->n_units * O) continue;
        float *px = make_pixels(c->n_rows, cases[k]), *out = calloc((size_t)want->n_elems, 4);
        T_RC(vit_forward(v, px, c->n_rows, c->g, c->n_grids, out, &e), &e);
        size_t at = 0;
        double md = max_diff(out, want->data, (size_t)want->n_elems, &at);
        T_CHECK_(md <= 1e-4, "%s case %d: max |out diff| %g at %zu", name, cases[k], md, at);
        worst = fmax(worst, md);
        free(px), free(out);
    }
    if (v) printf("%s FP32 path: max |out - reference| = %.3g\n", name, worst);
    vit_free(v);
    be_free(b);
    st_close(ref);
    lm_files_close(&f);
}

static void test_hf_checkpoints(void) {
    check_hf("qwen2_5_vl_bf16");
    check_hf("qwen2_vl_bf16");
}

/* A weight source that knows no tensor: vit_new_lookup fails cleanly (no leak). */
static int no_lookup(void *ctx, const char *name, struct vit_tensor_src *out, struct err *e) {
    (void)ctx, (void)out;
    return err_set(e, VELA_ENOTFOUND, "no tensor %s", name);
}

static void test_bad_calls(void) {
    struct err e = {0};
    struct be *b = mkbe(fp32_isa(), 1);
    struct vit *v = mkvit(b, 64);
    float *px = make_pixels(128, 0), out[32 * 128];
    if (!v || !px) goto done;
    T_EQ(vit_max_patches(v), 64);
    T_EQ(vit_patch_dim(v), PATCH_DIM);
    T_EQ(vit_out_dim(v), 128);
    T_EQ(vit_unit_rows(v), 4);
    struct vit_grid ok = {1, 4, 6}, odd = {1, 5, 6}, zero_t = {0, 4, 4}, big = {1, 8, 16};
    e = (struct err){0};
    T_FAILS(vit_forward(v, px, 23, &ok, 1, out, &e), VELA_EINVAL, &e); /* rows != 24 */
    e = (struct err){0};
    T_FAILS(vit_forward(v, px, 30, &odd, 1, out, &e), VELA_EINVAL, &e);
    e = (struct err){0};
    T_FAILS(vit_forward(v, px, 0, &zero_t, 1, out, &e), VELA_EINVAL, &e);
    e = (struct err){0};
    T_FAILS(vit_forward(v, px, 128, &big, 1, out, &e), VELA_ELIMIT, &e); /* 128 > 64 patches */
    e = (struct err){0};
    T_FAILS(vit_forward(v, px, 24, &ok, 0, out, &e), VELA_EINVAL, &e);
    e = (struct err){0};
    T_FAILS(vit_forward(v, NULL, 24, &ok, 1, out, &e), VELA_EINVAL, &e);
    /* after refusals the tower still works */
    T_RC(vit_forward(v, px, 24, &ok, 1, out, &e), &e);
    struct vit *bad = NULL;
    struct vit_options o = {.max_patches = 2};
    e = (struct err){0};
    T_FAILS(vit_new(&bad, b, &g_files.cfg, g_files.w, &o, &e), VELA_ELIMIT, &e);
    T_OK(bad == NULL);
    o.max_patches = 64;
    e = (struct err){0};
    T_FAILS(vit_new_lookup(&bad, b, &g_files.cfg, no_lookup, NULL, &o, &e), VELA_ENOTFOUND, &e);
    T_OK(strstr(e.msg, "visual.patch_embed.proj.weight") != NULL);
    struct model_config text = g_files.cfg;
    text.arch = ARCH_QWEN2_VL;
    e = (struct err){0};
    T_FAILS(vit_new(&bad, b, &text, g_files.w, &o, &e), VELA_EUNSUP, &e);
done:
    free(px);
    vit_free(v);
    be_free(b);
}

static void open_tiny(void) {
    struct err e = {0};
    const char *tmp = t_tmpdir("vit");
    if (!tmp) {
        T_CHECK_(0, "cannot make a temporary directory");
        return;
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/tiny", tmp);
    struct gen_options o = {.seed = 0, .n_threads = 2};
    int rc = gen_model_write(preset_find("tiny"), dir, &o, NULL, &e);
    T_RC(rc, &e);
    if (rc == 0) rc = lm_files_open(&g_files, dir, &e);
    T_RC(rc, &e);
    g_have_model = rc == 0;
}

int main(void) {
    if (load_fixture() != 0) {
        st_close(g_ref);
        return t_done();
    }
    T_RUN(test_window_index_exact);
    T_RUN(test_inputs_match_generator);
    open_tiny();
    if (g_have_model) {
        T_RUN(test_reference_fp32);
        T_RUN(test_batch_equals_single);
        T_RUN(test_bf16_path);
        T_RUN(test_bad_calls);
        T_RUN(test_end_to_end);
        T_RUN(test_hf_checkpoints);
    }
    lm_files_close(&g_files);
    st_close(g_ref);
    return t_done();
}
