/* Tests for prompts with images and videos: the 3-D positions of mrope_prompt_positions
 * (model/mrope.c) against transformers 5.24's get_rope_index on the prompts of
 * tests/fixtures/vision/rope_index.safetensors (tools/vision_reference.py), decode positions
 * from the delta, and model/mrope_vision.c: placeholder expansion (each pad to its grid's
 * token count) and the scatter of vision rows into token embeddings.
 *
 * Prompt 5 is the spec's worked example 2 (a video whose temporal positions pass its spatial
 * ones): transformers 5.24 continues the text at start + max(h, w)/2 there, the spec (and the
 * original Qwen code and vLLM) at 1 + the run's largest position. Its pad run is compared
 * with 5.24, the text after it with the spec's values. */
#include "model/mrope.h"
#include "model/mrope_vision.h"
#include "model/safetensors.h"
#include "t.h"

#include <stdint.h>

#define N_PROMPTS 6
#define MAX_TOK   256
#define VS        151652
#define IMG       151655
#define VID       151656

static struct st_file *g_f;

struct rprompt {
    const int32_t *ids, *pos;
    int64_t n;
    int32_t delta;
    struct mrope_grid images[4], videos[4];
    float spg[4];
    struct mrope_media media;
};

static const struct st_tensor *find(const char *what, int i) {
    char name[64];
    snprintf(name, sizeof name, "%s_%d", what, i);
    return st_file_find(g_f, name);
}

static int load(int i, struct rprompt *p) {
    memset(p, 0, sizeof *p);
    const struct st_tensor *ids = find("ids", i), *pos = find("pos", i), *d = find("delta", i);
    const struct st_tensor *ig = find("image_grid", i), *vg = find("video_grid", i);
    const struct st_tensor *sp = find("second_per_grid", i);
    T_OK(ids && pos && d);
    if (!ids || !pos || !d || ids->n_elems > MAX_TOK) return -1;
    p->ids = ids->data, p->pos = pos->data, p->n = ids->n_elems;
    memcpy(&p->delta, d->data, 4);
    p->media = (struct mrope_media){.image_token_id = IMG,
                                    .video_token_id = VID,
                                    .vision_start_token_id = VS,
                                    .spatial_merge_size = 2,
                                    .tokens_per_second = 2.0f};
    const int32_t *g = ig ? ig->data : NULL;
    for (int k = 0; ig && k < ig->shape[0] && k < 4; k++, p->media.n_images++)
        p->images[k] = (struct mrope_grid){g[3 * k], g[3 * k + 1], g[3 * k + 2]};
    g = vg ? vg->data : NULL;
    for (int k = 0; vg && k < vg->shape[0] && k < 4; k++, p->media.n_videos++)
        p->videos[k] = (struct mrope_grid){g[3 * k], g[3 * k + 1], g[3 * k + 2]};
    if (sp) memcpy(p->spg, sp->data, (size_t)sp->n_elems * 4);
    p->media.images = p->images, p->media.videos = p->videos;
    p->media.second_per_grid_ts = sp ? p->spg : NULL;
    return 0;
}

static void test_positions_match_transformers(void) {
    for (int i = 0; i < N_PROMPTS - 1; i++) {
        struct rprompt p;
        if (load(i, &p) != 0) continue;
        struct err e = {0};
        int32_t pos[3 * MAX_TOK], delta = 0;
        T_RC(mrope_prompt_positions(p.ids, p.n, &p.media, pos, &delta, &e), &e);
        T_CHECK_(memcmp(pos, p.pos, (size_t)(3 * p.n) * 4) == 0, "prompt %d: positions differ", i);
        T_EQ(delta, p.delta);
        /* decode: token n gets n + delta in all three rows */
        int32_t dec[3 * 2];
        mrope_text_positions((int32_t)p.n, 2, delta, dec, 2, 0);
        T_EQ(dec[0], p.n + p.delta);
        T_EQ(dec[5], p.n + 1 + p.delta);
    }
}

static void test_video_past_spatial_extent(void) {
    struct rprompt p;
    if (load(5, &p) != 0) return;
    struct err e = {0};
    int32_t pos[3 * MAX_TOK], delta = 0;
    T_RC(mrope_prompt_positions(p.ids, p.n, &p.media, pos, &delta, &e), &e);
    /* [a, VS, V x 16, VE, c]: the pad run (tokens 2..17) as 5.24 computes it */
    int same = 1;
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < 18; i++) same &= pos[r * p.n + i] == p.pos[r * p.n + i];
    T_OK(same);
    /* after it, the spec: VE -> 9, c -> 10, delta 10 + 1 - 20 = -9 (5.24: 4, 5, -11) */
    T_EQ(pos[18], 9);
    T_EQ(pos[19], 10);
    T_EQ(delta, -9);
    T_EQ(p.pos[18], 4);
    T_EQ(p.delta, -11);
}

/* Each fixture prompt collapsed to one pad per image/video expands back to itself. */
static void test_expand(void) {
    for (int i = 0; i < N_PROMPTS; i++) {
        struct rprompt p;
        if (load(i, &p) != 0) continue;
        struct err e = {0};
        int32_t col[MAX_TOK], out[MAX_TOK];
        int64_t nc = 0, n_out = 0, n_count = 0;
        for (int64_t j = 0; j < p.n; j++)
            if (!(j > 0 && p.ids[j] == p.ids[j - 1] && (p.ids[j] == IMG || p.ids[j] == VID)))
                col[nc++] = p.ids[j];
        T_RC(mrv_expand(col, nc, &p.media, NULL, MAX_TOK, &n_count, &e), &e);
        T_RC(mrv_expand(col, nc, &p.media, out, MAX_TOK, &n_out, &e), &e);
        T_EQ(n_count, p.n);
        T_EQ(n_out, p.n);
        T_OK(memcmp(out, p.ids, (size_t)p.n * 4) == 0);
        e = (struct err){0};
        T_FAILS(mrv_expand(col, nc, &p.media, out, p.n - 1, &n_out, &e), VELA_ELIMIT, &e);
    }
    struct rprompt p;
    if (load(1, &p) != 0) return;
    struct err e = {0};
    int32_t two_pads[4] = {1, IMG, 2, IMG}, three[5] = {IMG, IMG, IMG, 3, 4}, out[MAX_TOK];
    int64_t n = 0;
    T_RC(mrv_expand(two_pads, 4, &p.media, out, MAX_TOK, &n, &e), &e);
    T_EQ(n, 2 + 6 + 30);
    T_EQ(mrv_grid_tokens(p.images[1], 2), 30);
    e = (struct err){0};
    T_FAILS(mrv_expand(three, 5, &p.media, out, MAX_TOK, &n, &e), VELA_EINVAL, &e); /* 3 > 2 */
    e = (struct err){0};
    T_FAILS(mrv_expand(two_pads, 2, &p.media, out, MAX_TOK, &n, &e), VELA_EINVAL, &e); /* 1 < 2 */
}

static void test_scatter(void) {
    struct err e = {0};
    int32_t ids[7] = {1, IMG, IMG, 2, VID, IMG, 3};
    float rows[3 * 2] = {10, 11, 20, 21, 30, 31}, vrow[2] = {-1, -2}, emb[7 * 2] = {0};
    uint8_t mask[7] = {0};
    T_RC(mrv_scatter(ids, 7, IMG, rows, 3, 2, emb, mask, &e), &e);
    T_RC(mrv_scatter(ids, 7, VID, vrow, 1, 2, emb, mask, &e), &e);
    T_NEAR(emb[2], 10, 0);
    T_NEAR(emb[5], 21, 0);
    T_NEAR(emb[10], 30, 0);
    T_NEAR(emb[8], -1, 0);
    T_NEAR(emb[0], 0, 0);
    static const uint8_t want[7] = {0, 1, 1, 0, 1, 1, 0};
    T_OK(memcmp(mask, want, 7) == 0);
    float before[14];
    memcpy(before, emb, sizeof emb);
    e = (struct err){0};
    T_FAILS(mrv_scatter(ids, 7, IMG, rows, 2, 2, emb, mask, &e), VELA_EINVAL, &e);
    T_OK(memcmp(before, emb, sizeof emb) == 0); /* untouched on failure */
}

int main(void) {
    struct err e = {0};
    int rc = st_open(&g_f, t_src("tests/fixtures/vision/rope_index.safetensors"), &e);
    T_RC(rc, &e);
    if (rc == 0) {
        T_RUN(test_positions_match_transformers);
        T_RUN(test_video_past_spatial_extent);
        T_RUN(test_expand);
    }
    T_RUN(test_scatter);
    st_close(g_f);
    return t_done();
}
