/* mm_prompt: placeholder expansion, M-RoPE positions and image hashes of a prompt with
 * images (see mm_prompt.h).
 *
 * Invariants of a built struct mm_prompt:
 *   1. media[k] is the k-th vision item of the prompt (images and videos interleaved as they
 *      appear), and ids[media[k].offset .. + n_tokens) are all its pad token;
 *   2. media[k].n_tokens == pv.n_rows / M², and the runs are sorted and disjoint;
 *   3. pos and delta are what mrope_prompt_positions gives for ids (get_rope_index).
 * Expansion follows Qwen2_5_VLProcessor.__call__: every pad token of the unexpanded prompt is
 * one image (or video), matched in order within its kind.
 * Thread: any (no shared state). */
#include "model/mm_prompt.h"

#include "model/config.h"
#include "model/mrope.h"
#include "util/file.h"
#include "util/limits.h"
#include "vision/decode.h"

#include <stdlib.h>
#include <string.h>

void mmp_tokens_from_config(struct mmp_tokens *t, const struct model_config *c) {
    t->image_pad = c->image_token_id;
    t->video_pad = c->video_token_id;
    t->vision_start = c->vision_start_token_id;
    t->spatial_merge_size = c->vision.spatial_merge_size > 0 ? c->vision.spatial_merge_size : 2;
    /* Qwen2-VL (tokens_per_second 0) numbers frame pairs 0, 1, 2, ...: a step of 1 */
    t->tokens_per_second =
        c->vision.tokens_per_second > 0 ? (float)c->vision.tokens_per_second : 1.0f;
}

/* A 64-bit mixer (splitmix64's finalizer): every input bit reaches every output bit. */
static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t hash_bytes(uint64_t h, const uint8_t *p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = mix64(h ^ w) + 0x9e3779b97f4a7c15ull;
    }
    uint64_t w = 0;
    memcpy(&w, p + i, n - i);
    return mix64(h ^ w ^ ((uint64_t)(n - i) << 56));
}

uint64_t mmp_hash_images(const struct image *ims, int32_t n, const struct preproc_params *p) {
    /* The parameters that decide the pixel values: the same RGB at another budget is a
     * different input for the tower. */
    int64_t par[6] = {p->min_pixels,          p->max_pixels, p->patch_size,
                      p->temporal_patch_size, p->merge_size, n};
    uint64_t h = hash_bytes(0x766c6d6d70ull, (const uint8_t *)par, sizeof par);
    h = hash_bytes(h, (const uint8_t *)p->image_mean, sizeof p->image_mean);
    h = hash_bytes(h, (const uint8_t *)p->image_std, sizeof p->image_std);
    for (int32_t i = 0; i < n; i++) {
        int64_t wh[2] = {ims[i].width, ims[i].height};
        h = hash_bytes(h, (const uint8_t *)wh, sizeof wh);
        h = hash_bytes(h, ims[i].rgb, (size_t)ims[i].width * (size_t)ims[i].height * 3u);
    }
    return h ? h : 1; /* 0 is "no image" in block keys */
}

int mmp_media_from_images(struct mmp_media *out, const struct image *ims, int32_t n, bool video,
                          const struct preproc_params *p, struct err *e) {
    if (n < 1 || (!video && n != 1) || n > VELA_IMG_MAX_FRAMES)
        return err_set(e, VELA_EINVAL, "%d frames for one %s (1..%d)", n, video ? "video" : "image",
                       video ? VELA_IMG_MAX_FRAMES : 1);
    struct mmp_media m = {.video = video, .second_per_grid_t = 1.0f};
    int rc = video ? img_preprocess_frames(ims, n, p, &m.pv, e) : img_preprocess(ims, p, &m.pv, e);
    if (rc != 0) return rc;
    m.hash = mmp_hash_images(ims, n, p);
    if (video) m.hash = mix64(m.hash ^ 0x766964656full) | 1; /* frames != the same images */
    *out = m;
    return 0;
}

void mmp_media_deinit(struct mmp_media *m) {
    if (!m) return;
    pixel_values_deinit(&m->pv);
    memset(m, 0, sizeof *m);
}

/* Reads and decodes one file into *im, naming the file in errors. */
static int load_file(struct image *im, const char *path, struct err *e) {
    char *buf = NULL;
    size_t n = 0;
    int rc = file_read_all(path, VELA_IMG_MAX_ENCODED_BYTES, &buf, &n, e);
    if (rc != 0) return rc; /* file_read_all names the path */
    rc = img_decode(im, (const uint8_t *)buf, n, NULL, e);
    free(buf);
    if (rc != 0) err_wrap(e, "%s", path);
    return rc;
}

int mmp_load_frames(struct mmp_media *out, const char *const *paths, int32_t n,
                    const struct preproc_params *p, struct err *e) {
    if (n < 1 || n > VELA_IMG_MAX_FRAMES)
        return err_set(e, VELA_ELIMIT, "%d video frames (1..%d)", n, VELA_IMG_MAX_FRAMES);
    struct image *ims = calloc((size_t)n, sizeof *ims);
    if (!ims) return err_set(e, VELA_ENOMEM, "out of memory for %d frames", n);
    int rc = 0;
    for (int32_t i = 0; i < n && rc == 0; i++) rc = load_file(&ims[i], paths[i], e);
    if (rc == 0) {
        rc = mmp_media_from_images(out, ims, n, true, p, e);
        if (rc != 0) err_wrap(e, "video of %d frames from %s", n, paths[0]);
    }
    for (int32_t i = 0; i < n; i++) img_deinit(&ims[i]);
    free(ims);
    return rc;
}

int mmp_load_image(struct mmp_media *out, const char *path, const struct preproc_params *p,
                   struct err *e) {
    struct image im = {0};
    int rc = load_file(&im, path, e);
    if (rc == 0) {
        rc = mmp_media_from_images(out, &im, 1, false, p, e);
        if (rc != 0) err_wrap(e, "%s", path);
    }
    img_deinit(&im);
    return rc;
}

struct mm_prompt *mmp_ref(struct mm_prompt *mp) {
    if (mp) mp->refs++;
    return mp;
}

void mmp_unref(struct mm_prompt *mp) {
    if (!mp || --mp->refs > 0) return;
    for (int32_t i = 0; i < mp->n_media; i++) mmp_media_deinit(&mp->media[i]);
    free(mp->media);
    free(mp->ids);
    free(mp->pos);
    free(mp);
}

/* Counts the pad tokens of each kind and checks them against the media; *n_out is the
 * expanded length. */
static int count_pads(const int32_t *ids, int32_t n, const struct mmp_tokens *tk,
                      const struct mmp_media *media, int32_t n_media, int64_t *n_out,
                      struct err *e) {
    int32_t n_img = 0, n_vid = 0, want_img = 0, want_vid = 0;
    for (int32_t k = 0; k < n_media; k++) {
        if (media[k].video)
            want_vid++;
        else
            want_img++;
    }
    int64_t len = 0;
    int32_t ki = 0, kv = 0; /* next image / video among media, in order */
    for (int32_t i = 0; i < n; i++) {
        bool img = ids[i] == tk->image_pad && tk->image_pad >= 0;
        bool vid = ids[i] == tk->video_pad && tk->video_pad >= 0;
        if (!img && !vid) {
            len++;
            continue;
        }
        int32_t *next = img ? &ki : &kv;
        while (*next < n_media && media[*next].video != vid) (*next)++;
        if (*next < n_media) len += media[(*next)++].pv.n_tokens;
        if (img)
            n_img++;
        else
            n_vid++;
    }
    if (n_img != want_img || n_vid != want_vid)
        return err_set(e, VELA_EINVAL,
                       "the prompt has %d image and %d video placeholders, but %d images and "
                       "%d videos were given",
                       n_img, n_vid, want_img, want_vid);
    if (len > VELA_REQ_MAX_TOKENS)
        return err_set(e, VELA_ELIMIT, "the prompt with its images has %lld tokens, limit %d",
                       (long long)len, VELA_REQ_MAX_TOKENS);
    *n_out = len;
    return 0;
}

/* Writes the expanded ids and each media item's run; media are visited in prompt order, so
 * the array is reordered to prompt order (images and videos interleaved) on the way. */
static int expand(struct mm_prompt *mp, const int32_t *ids, int32_t n, const struct mmp_tokens *tk,
                  struct mmp_media *media, struct err *e) {
    int32_t o = 0, ki = 0, kv = 0, k = 0;
    for (int32_t i = 0; i < n; i++) {
        bool img = ids[i] == tk->image_pad && tk->image_pad >= 0;
        bool vid = ids[i] == tk->video_pad && tk->video_pad >= 0;
        if (!img && !vid) {
            mp->ids[o++] = ids[i];
            continue;
        }
        int32_t *next = img ? &ki : &kv;
        while (media[*next].video != vid) (*next)++;
        struct mmp_media *m = &media[(*next)++];
        if (m->pv.n_tokens < 1 || m->pv.n_tokens > INT32_MAX)
            return err_set(e, VELA_EINVAL, "image %d has %lld tokens", k,
                           (long long)m->pv.n_tokens);
        m->offset = o;
        m->n_tokens = (int32_t)m->pv.n_tokens;
        for (int32_t j = 0; j < m->n_tokens; j++) mp->ids[o++] = ids[i];
        mp->media[k++] = *m;
        memset(m, 0, sizeof *m); /* moved */
    }
    return 0;
}

/* Positions through get_rope_index (model/mrope.c). */
static int positions(struct mm_prompt *mp, const struct mmp_tokens *tk, struct err *e) {
    int32_t n = mp->n_media;
    struct mrope_grid *ig = calloc((size_t)n + 1, sizeof *ig);
    struct mrope_grid *vg = calloc((size_t)n + 1, sizeof *vg);
    float *spg = calloc((size_t)n + 1, sizeof *spg);
    int rc = 0;
    if (!ig || !vg || !spg) rc = err_set(e, VELA_ENOMEM, "out of memory for %d grids", n);
    int32_t n_img = 0, n_vid = 0;
    for (int32_t k = 0; rc == 0 && k < n; k++) {
        const struct pixel_values *pv = &mp->media[k].pv;
        struct mrope_grid g = {(int32_t)pv->grid_t, (int32_t)pv->grid_h, (int32_t)pv->grid_w};
        if (mp->media[k].video) {
            spg[n_vid] = mp->media[k].second_per_grid_t;
            vg[n_vid++] = g;
        } else {
            ig[n_img++] = g;
        }
    }
    struct mrope_media md = {.image_token_id = tk->image_pad,
                             .video_token_id = tk->video_pad,
                             .vision_start_token_id = tk->vision_start,
                             .images = ig,
                             .n_images = n_img,
                             .videos = vg,
                             .second_per_grid_ts = spg,
                             .n_videos = n_vid,
                             .spatial_merge_size = tk->spatial_merge_size,
                             .tokens_per_second = tk->tokens_per_second};
    if (rc == 0) rc = mrope_prompt_positions(mp->ids, mp->n_ids, &md, mp->pos, &mp->delta, e);
    free(ig), free(vg), free(spg);
    return rc;
}

int mmp_build(struct mm_prompt **out, const int32_t *ids, int32_t n_ids,
              const struct mmp_tokens *tk, struct mmp_media *media, int32_t n_media,
              struct err *e) {
    struct mm_prompt *mp = calloc(1, sizeof *mp);
    int64_t len = 0;
    int rc = mp ? 0 : err_set(e, VELA_ENOMEM, "out of memory for a prompt");
    if (rc == 0 && (n_ids < 1 || n_media < 0 || n_media > VELA_REQ_MAX_IMAGES))
        rc = err_set(e, VELA_ELIMIT, "prompt of %d tokens with %d images (limits 1.., %d)", n_ids,
                     n_media, VELA_REQ_MAX_IMAGES);
    if (rc == 0) rc = count_pads(ids, n_ids, tk, media, n_media, &len, e);
    if (rc == 0) {
        mp->refs = 1;
        mp->n_ids = (int32_t)len;
        mp->ids = malloc((size_t)len * sizeof *mp->ids);
        mp->pos = malloc(3 * (size_t)len * sizeof *mp->pos);
        mp->media = calloc((size_t)n_media + 1, sizeof *mp->media);
        if (!mp->ids || !mp->pos || !mp->media)
            rc = err_set(e, VELA_ENOMEM, "out of memory for a %lld-token prompt", (long long)len);
    }
    if (rc == 0) rc = expand(mp, ids, n_ids, tk, media, e);
    if (rc == 0) mp->n_media = n_media;
    if (rc == 0) rc = positions(mp, tk, e);
    if (rc != 0) {
        if (mp) { /* items already moved are freed with mp, the others below */
            mp->n_media = mp->media ? n_media : 0;
            mp->refs = 1;
        }
        mmp_unref(mp);
        for (int32_t k = 0; k < n_media; k++) mmp_media_deinit(&media[k]);
        return rc;
    }
    *out = mp;
    return 0;
}
