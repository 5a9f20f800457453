/* vlm_fixture: the transformers reference of tools/vlm_reference.py (tests/fixtures/vlm/) and
 * the prompts built from it the way `vela generate --image` builds them: the reference's
 * rendered chat text, tokenized by the model's tokenizer, then mmp_build with the media files
 * read, decoded and preprocessed at the reference's pixel budget (header-only, static: each
 * test is its own program). Paths: shared images from VELA_SHARED_DIR, generated ones from
 * the fixture folder. */
#ifndef VELA_TESTS_ENGINE_VLM_FIXTURE_H
#define VELA_TESTS_ENGINE_VLM_FIXTURE_H

#include "model/config.h"
#include "model/mm_prompt.h"
#include "model/safetensors.h"
#include "tokenizer/tokenizer.h"
#include "util/file.h"
#include "t.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define VF_N_PROMPTS 4
#define VF_N_GREEDY  32
#define VF_MAX_MEDIA 4

struct vf_fixture {
    struct st_file *st;
    json_t *meta;
    int64_t min_pixels, max_pixels;
};

static void vf_close(struct vf_fixture *f) {
    st_close(f->st);
    json_decref(f->meta);
    memset(f, 0, sizeof *f);
}

/* 0, or -1 with the failure reported. */
static int vf_open(struct vf_fixture *f) {
    struct err e = {0};
    memset(f, 0, sizeof *f);
    int rc = st_open(&f->st, t_src("tests/fixtures/vlm/tiny.safetensors"), &e);
    T_RC(rc, &e);
    json_error_t je;
    f->meta = rc == 0 ? json_load_file(t_src("tests/fixtures/vlm/tiny.json"), 0, &je) : NULL;
    T_OK(f->meta != NULL);
    if (!f->meta) return -1;
    f->min_pixels = json_integer_value(json_object_get(f->meta, "min_pixels"));
    f->max_pixels = json_integer_value(json_object_get(f->meta, "max_pixels"));
    return 0;
}

static const struct st_tensor *vf_tensor(const struct vf_fixture *f, const char *what, int i) {
    char name[64];
    snprintf(name, sizeof name, "%s_%d", what, i);
    const struct st_tensor *t = st_file_find(f->st, name);
    T_CHECK_(t != NULL, "fixture tensor %s missing", name);
    return t;
}

/* Path of a media file named in the fixture: the generated ones live next to it. */
static const char *vf_media_path(const char *name, char *buf, size_t n) {
    if (strcmp(name, "gradient.png") == 0 || strcmp(name, "frame2.png") == 0) {
        snprintf(buf, n, "%s", t_src("tests/fixtures/vlm/"));
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s", name);
        return buf;
    }
    char rel[512];
    snprintf(rel, sizeof rel, "testdata/images/%s", name);
    const char *p = t_shared(rel);
    if (!p) return NULL;
    snprintf(buf, n, "%s", p);
    return buf;
}

static void vf_params(const struct vf_fixture *f, struct preproc_params *p) {
    preproc_params_default(p);
    p->min_pixels = f->min_pixels;
    p->max_pixels = f->max_pixels;
}

/* Builds prompt i: *mp (one reference) or an error (rc < 0; skipped when shared data is
 * missing: rc 1). tok: the model's tokenizer; tk: its vision tokens. */
static int vf_build(const struct vf_fixture *f, int i, const struct tokenizer *tok,
                    const struct mmp_tokens *tk, struct mm_prompt **mp, struct err *e) {
    json_t *p = json_array_get(json_object_get(f->meta, "prompts"), (size_t)i);
    const char *text = json_string_value(json_object_get(p, "text"));
    json_t *ims = json_object_get(p, "images"), *vid = json_object_get(p, "video");
    if (!text || !json_is_array(ims) || !json_is_array(vid))
        return err_set(e, VELA_EFORMAT, "fixture prompt %d malformed", i);
    struct preproc_params pp;
    vf_params(f, &pp);
    struct mmp_media media[VF_MAX_MEDIA];
    memset(media, 0, sizeof media);
    int32_t n_media = 0;
    int rc = 0;
    char buf[4][4200];
    for (size_t k = 0; rc == 0 && k < json_array_size(ims) && n_media < VF_MAX_MEDIA; k++) {
        const char *path = vf_media_path(json_string_value(json_array_get(ims, k)), buf[0], 4200);
        if (!path) rc = 1;
        if (rc == 0) rc = mmp_load_image(&media[n_media++], path, &pp, e);
    }
    if (rc == 0 && json_array_size(vid) > 0) {
        const char *paths[4];
        size_t nf = json_array_size(vid) < 4 ? json_array_size(vid) : 4;
        for (size_t k = 0; rc == 0 && k < nf; k++) {
            paths[k] = vf_media_path(json_string_value(json_array_get(vid, k)), buf[k], 4200);
            if (!paths[k]) rc = 1;
        }
        if (rc == 0) rc = mmp_load_frames(&media[n_media++], paths, (int32_t)nf, &pp, e);
    }
    struct tok_ids ids = {0};
    struct tok_ctx *tc = rc == 0 ? tok_ctx_new(tok) : NULL;
    if (rc == 0 && !tc) rc = err_set(e, VELA_ENOMEM, "out of memory");
    if (rc == 0) rc = tok_encode(tc, text, strlen(text), 0, &ids, e);
    tok_ctx_free(tc);
    if (rc == 0)
        rc = mmp_build(mp, ids.ids, (int32_t)ids.n, tk, media, n_media, e);
    else
        for (int32_t k = 0; k < n_media; k++) mmp_media_deinit(&media[k]);
    free(ids.ids);
    return rc;
}

#endif
