/* mrope_vision: placeholder expansion and embedding scatter (see the header).
 *
 * Invariants: expansion consumes the grids strictly in prompt order, one grid per pad id of
 * its kind, and fails unless every grid is used; the scatter writes row k of the vision
 * output to the k-th matching token only, after checking the counts, so embeds is either
 * fully updated or untouched. Any thread. */
#include "model/mrope_vision.h"

#include <inttypes.h>
#include <string.h>

int64_t mrv_grid_tokens(struct mrope_grid g, int32_t merge) {
    int32_t m = merge > 0 ? merge : 1;
    return (int64_t)g.t * (g.h / m) * (g.w / m);
}

int mrv_expand(const int32_t *ids, int64_t n, const struct mrope_media *m, int32_t *out,
               int64_t cap, int64_t *n_out, struct err *e) {
    if (!ids || !m || !n_out || n < 0) return err_set(e, VELA_EINVAL, "expand: NULL argument");
    int32_t ii = 0, vi = 0;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        bool img = ids[i] == m->image_token_id && m->image_token_id >= 0;
        bool vid = ids[i] == m->video_token_id && m->video_token_id >= 0;
        int64_t reps = 1;
        if (img || vid) {
            int32_t have = img ? m->n_images : m->n_videos, at = img ? ii++ : vi++;
            if (at >= have)
                return err_set(e, VELA_EINVAL, "expand: %s pad at token %" PRId64 " has no %s",
                               img ? "image" : "video", i, img ? "image" : "video");
            struct mrope_grid g = img ? m->images[at] : m->videos[at];
            reps = mrv_grid_tokens(g, m->spatial_merge_size);
            if (reps < 1)
                return err_set(e, VELA_EINVAL, "expand: %s %d has grid (%d, %d, %d)",
                               img ? "image" : "video", (int)at, (int)g.t, (int)g.h, (int)g.w);
        }
        if (reps > cap - k)
            return err_set(e, VELA_ELIMIT, "expand: prompt exceeds %" PRId64 " tokens", cap);
        for (int64_t r = 0; out && r < reps; r++) out[k + r] = ids[i];
        k += reps;
    }
    if (ii != m->n_images || vi != m->n_videos)
        return err_set(e, VELA_EINVAL,
                       "expand: %d image and %d video pads for %d images and %d videos", (int)ii,
                       (int)vi, (int)m->n_images, (int)m->n_videos);
    *n_out = k;
    return 0;
}

int mrv_scatter(const int32_t *ids, int64_t n, int32_t token_id, const float *rows, int64_t n_rows,
                int32_t dim, float *embeds, uint8_t *mask, struct err *e) {
    if (!ids || !embeds || dim < 1 || (n_rows > 0 && !rows))
        return err_set(e, VELA_EINVAL, "scatter: NULL argument");
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; i++) cnt += ids[i] == token_id;
    if (cnt != n_rows)
        return err_set(e, VELA_EINVAL,
                       "scatter: %" PRId64 " tokens of id %d but %" PRId64 " vision rows", cnt,
                       (int)token_id, n_rows);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] != token_id) continue;
        memcpy(embeds + i * dim, rows + k * dim, (size_t)dim * sizeof(float));
        if (mask) mask[i] = 1;
        k++;
    }
    return 0;
}
