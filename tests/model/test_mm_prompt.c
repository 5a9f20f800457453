/* Tests for model/mm_prompt.c:
 *   - the four prompts of the transformers fixture tests/fixtures/vlm (one image, two images
 *     of different sizes, an image after a text turn, a two-frame video): expanded ids,
 *     M-RoPE positions and delta exact, grids exact, pixel values' sums to 1e-9 relative;
 *   - expansion of a hand-made prompt (spec §5.4 worked example 1, images and videos mixed,
 *     media reordered to prompt order);
 *   - errors: more images than placeholders and the reverse, an unreadable file, a truncated
 *     file, an aspect ratio over 200 (the reference's message);
 *   - content hashes: equal for equal pixels and budget, different otherwise. */
#include "model/mm_prompt.h"

#include "engine/vlm_fixture.h"
#include "model/generator.h"
#include "model/presets.h"
#include "vision/image.h"

#include <math.h>

/* The tiny preset's folder (its tokenizer and config.json), written once per run. */
static const char *tiny_dir(void) {
    static char dir[4200];
    struct err e = {0};
    const char *tmp = t_tmpdir("mm_prompt");
    if (!tmp) return NULL;
    snprintf(dir, sizeof dir, "%s/tiny", tmp);
    struct gen_options o = {.seed = 0, .n_threads = 2};
    int rc = gen_model_write(preset_find("tiny"), dir, &o, NULL, &e);
    T_RC(rc, &e);
    return rc == 0 ? dir : NULL;
}

static void test_fixture_prompts(void) {
    struct vf_fixture f;
    struct err e = {0};
    const char *dir = tiny_dir();
    if (!dir || vf_open(&f) != 0) return;
    struct model_config cfg;
    struct tokenizer *tok = NULL;
    int rc = cfg_load(&cfg, dir, &e);
    T_RC(rc, &e);
    if (rc == 0) rc = tok_load(dir, &tok, &e);
    T_RC(rc, &e);
    struct mmp_tokens tk;
    if (rc == 0) mmp_tokens_from_config(&tk, &cfg);
    for (int i = 0; rc == 0 && i < VF_N_PROMPTS; i++) {
        struct mm_prompt *mp = NULL;
        int brc = vf_build(&f, i, tok, &tk, &mp, &e);
        if (brc == 1) break; /* shared data missing: skipped */
        T_RC(brc, &e);
        if (brc != 0) continue;
        const struct st_tensor *ids = vf_tensor(&f, "ids", i), *pos = vf_tensor(&f, "pos", i);
        const struct st_tensor *dl = vf_tensor(&f, "delta", i), *gr = vf_tensor(&f, "grid", i);
        const struct st_tensor *sums = vf_tensor(&f, "pvsum", i);
        if (ids && pos && dl && gr && sums) {
            T_EQ(mp->n_ids, ids->n_elems);
            if (mp->n_ids == ids->n_elems) {
                int bad_id = -1, bad_pos = -1;
                const int32_t *ri = ids->data, *rp = pos->data;
                for (int32_t j = mp->n_ids - 1; j >= 0; j--)
                    if (mp->ids[j] != ri[j]) bad_id = j;
                for (int32_t j = 3 * mp->n_ids - 1; j >= 0; j--)
                    if (mp->pos[j] != rp[j]) bad_pos = j;
                T_CHECK_(bad_id < 0, "prompt %d: first id difference at %d", i, bad_id);
                T_CHECK_(bad_pos < 0, "prompt %d: first position difference at %d", i, bad_pos);
            }
            T_EQ(mp->delta, ((const int32_t *)dl->data)[0]);
            T_EQ(mp->n_media * 3, gr->n_elems);
            const int32_t *g = gr->data;
            const double *s = sums->data;
            for (int32_t k = 0; k < mp->n_media && k * 3 < gr->n_elems; k++) {
                const struct pixel_values *pv = &mp->media[k].pv;
                T_EQ(pv->grid_t, g[3 * k]);
                T_EQ(pv->grid_h, g[3 * k + 1]);
                T_EQ(pv->grid_w, g[3 * k + 2]);
                double s1 = 0, s2 = 0;
                for (int64_t j = 0; j < pv->n_rows * pv->row_len; j++)
                    s1 += pv->data[j], s2 += (double)pv->data[j] * pv->data[j];
                T_NEAR(s1, s[2 * k], 1e-9 * (fabs(s[2 * k + 1]) + 1));
                T_NEAR(s2, s[2 * k + 1], 1e-9 * fabs(s[2 * k + 1]));
                T_OK(mp->media[k].video == (i == 3));
            }
        }
        mmp_unref(mp);
    }
    tok_free(tok);
    vf_close(&f);
}

/* A media item with only the fields expansion reads (no pixels). */
static struct mmp_media fake(int32_t t, int32_t h, int32_t w, bool video, uint64_t hash) {
    struct mmp_media m = {.video = video, .second_per_grid_t = 1.0f, .hash = hash};
    m.pv.grid_t = t, m.pv.grid_h = h, m.pv.grid_w = w;
    m.pv.n_rows = (int64_t)t * h * w;
    m.pv.n_tokens = m.pv.n_rows / 4;
    return m;
}

enum { IMG = 10, VID = 11, VS = 12, VE = 13 };

static void test_expand(void) {
    struct err e = {0};
    struct mmp_tokens tk = {.image_pad = IMG,
                            .video_pad = VID,
                            .vision_start = VS,
                            .spatial_merge_size = 2,
                            .tokens_per_second = 2};
    /* a b VS IMG VE c VS VID VE: the video is given first, the image second */
    const int32_t ids[] = {1, 2, VS, IMG, VE, 3, VS, VID, VE};
    struct mmp_media media[2] = {fake(4, 4, 4, true, 7), fake(1, 4, 6, false, 5)};
    struct mm_prompt *mp = NULL;
    int rc = mmp_build(&mp, ids, 9, &tk, media, 2, &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    T_EQ(media[0].pv.n_tokens, 0); /* moved */
    T_EQ(mp->n_ids, 9 - 2 + 6 + 16);
    T_EQ(mp->n_media, 2);
    T_OK(!mp->media[0].video && mp->media[0].hash == 5 && mp->media[0].offset == 3 &&
         mp->media[0].n_tokens == 6);
    T_OK(mp->media[1].video && mp->media[1].offset == 12 && mp->media[1].n_tokens == 16);
    /* worked example 1 for the image: rows t, h, w of tokens 0..10 */
    static const int32_t want[3][11] = {{0, 1, 2, 3, 3, 3, 3, 3, 3, 6, 7},
                                        {0, 1, 2, 3, 3, 3, 4, 4, 4, 6, 7},
                                        {0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7}};
    int bad = 0;
    for (int r = 0; r < 3; r++)
        for (int j = 0; j < 11; j++) bad += mp->pos[r * mp->n_ids + j] != want[r][j];
    T_EQ(bad, 0);
    /* the video starts at 8 with step 2 (worked example 2 shifted by 8 - 2) */
    T_EQ(mp->pos[12], 9);
    T_EQ(mp->pos[12 + 15], 9 + 6);
    T_EQ(mp->pos[mp->n_ids - 1], 16); /* VE after max(9 + 6, 9 + 1, 9 + 1) */
    T_EQ(mp->delta, mp->pos[mp->n_ids - 1] + 1 - mp->n_ids);
    for (int32_t j = 0; j < 6; j++) T_EQ(mp->ids[3 + j], IMG);
    mmp_unref(mp);
}

static void test_count_errors(void) {
    struct err e = {0};
    struct mmp_tokens tk = {.image_pad = IMG,
                            .video_pad = VID,
                            .vision_start = VS,
                            .spatial_merge_size = 2,
                            .tokens_per_second = 2};
    const int32_t one[] = {1, VS, IMG, VE, 2};
    const int32_t two[] = {1, VS, IMG, VE, VS, IMG, VE};
    struct mm_prompt *mp = NULL;
    struct mmp_media m2[2] = {fake(1, 4, 4, false, 1), fake(1, 4, 4, false, 2)};
    T_FAILS(mmp_build(&mp, one, 5, &tk, m2, 2, &e), VELA_EINVAL, &e);
    T_OK(strstr(e.msg, "1 image and 0 video placeholders, but 2 images") != NULL);
    struct mmp_media m1[1] = {fake(1, 4, 4, false, 1)};
    e = (struct err){0};
    T_FAILS(mmp_build(&mp, two, 7, &tk, m1, 1, &e), VELA_EINVAL, &e);
    T_OK(strstr(e.msg, "2 image and 0 video placeholders, but 1 images") != NULL);
    struct mmp_media v1[1] = {fake(2, 4, 4, true, 1)};
    e = (struct err){0};
    T_FAILS(mmp_build(&mp, one, 5, &tk, v1, 1, &e), VELA_EINVAL, &e);
    e = (struct err){0};
    T_FAILS(mmp_build(&mp, one, 5, &tk, NULL, 0, &e), VELA_EINVAL, &e);
    /* a pad without its <|vision_start|> is no image for get_rope_index */
    const int32_t bare[] = {1, IMG, 2};
    struct mmp_media b1[1] = {fake(1, 4, 4, false, 1)};
    e = (struct err){0};
    T_FAILS(mmp_build(&mp, bare, 3, &tk, b1, 1, &e), VELA_EINVAL, &e);
}

static void test_file_errors(void) {
    struct err e = {0};
    struct preproc_params p;
    preproc_params_default(&p);
    struct mmp_media m = {0};
    const char *tmp = t_tmpdir("mm_prompt");
    if (!tmp) return;
    char path[4200];
    snprintf(path, sizeof path, "%s/no-such-image.png", tmp);
    int rc = mmp_load_image(&m, path, &p, &e);
    T_OK(rc == VELA_ENOTFOUND || rc == VELA_EIO);
    T_OK(strstr(e.msg, "no-such-image.png") != NULL);
    const char *tr = t_shared("testdata/images/truncated.jpg");
    if (tr) {
        e = (struct err){0};
        snprintf(path, sizeof path, "%s", tr);
        T_FAILS(mmp_load_image(&m, path, &p, &e), VELA_EFORMAT, &e);
        T_OK(strstr(e.msg, "truncated.jpg") != NULL);
    }
    /* 201 x 1: aspect ratio 201 */
    struct image im = {0};
    rc = img_alloc(&im, 201, 1, &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    memset(im.rgb, 128, 201 * 3);
    e = (struct err){0};
    T_FAILS(mmp_media_from_images(&m, &im, 1, false, &p, &e), VELA_EINVAL, &e);
    T_OK(strstr(e.msg, "absolute aspect ratio must be smaller than 200, got 201") != NULL);
    img_deinit(&im);
}

static void test_hash(void) {
    struct err e = {0};
    struct image a = {0}, b = {0};
    T_RC(img_alloc(&a, 30, 20, &e), &e);
    T_RC(img_alloc(&b, 30, 20, &e), &e);
    if (!a.rgb || !b.rgb) goto out;
    for (int i = 0; i < 30 * 20 * 3; i++) a.rgb[i] = b.rgb[i] = (uint8_t)(i * 7);
    struct preproc_params p, q;
    preproc_params_default(&p);
    q = p;
    q.max_pixels = 28 * 28 * 4;
    uint64_t ha = mmp_hash_images(&a, 1, &p);
    T_EQ(ha, mmp_hash_images(&b, 1, &p));
    T_OK(ha != mmp_hash_images(&a, 1, &q));
    b.rgb[599 * 3 + 2] ^= 1; /* one bit of the last pixel */
    T_OK(ha != mmp_hash_images(&b, 1, &p));
    T_OK(ha != 0);
out:
    img_deinit(&a);
    img_deinit(&b);
}

int main(void) {
    T_RUN(test_expand);
    T_RUN(test_count_errors);
    T_RUN(test_file_errors);
    T_RUN(test_hash);
    T_RUN(test_fixture_prompts);
    return t_done();
}
