/* mrope: get_rope_index of transformers' Qwen2_5_VLModel (spec §5.4), one sequence at a
 * time (the batched left-padding rules of the reference do not apply).
 *
 * Invariants: positions only grow along text; a pad run is consumed whole (exactly
 * t * (h/m) * (w/m) tokens) or the call fails; on failure pos is partly written.
 * Any thread. */
#include "model/mrope.h"

#include <inttypes.h>
#include <math.h>

void mrope_text_positions(int32_t n0, int32_t n, int32_t delta, int32_t *pos, int64_t stride,
                          int64_t col0) {
    for (int32_t i = 0; i < n; i++)
        for (int r = 0; r < 3; r++) pos[r * stride + col0 + i] = n0 + i + delta;
}

/* Fills the pad run starting at token i for grid g; returns the next text position. */
static int32_t fill_run(int32_t *pos, int64_t n, int64_t i, struct mrope_grid g, int32_t merge,
                        double step, int32_t s) {
    int32_t hm = g.h / merge, wm = g.w / merge, mx = s;
    for (int32_t tt = 0; tt < g.t; tt++)
        for (int32_t row = 0; row < hm; row++)
            for (int32_t col = 0; col < wm; col++, i++) {
                int32_t pt = s + (int32_t)floor((double)tt * step);
                pos[i] = pt, pos[n + i] = s + row, pos[2 * n + i] = s + col;
                if (pt > mx) mx = pt;
            }
    if (s + hm - 1 > mx) mx = s + hm - 1;
    if (s + wm - 1 > mx) mx = s + wm - 1;
    return mx + 1;
}

int mrope_prompt_positions(const int32_t *ids, int64_t n, const struct mrope_media *media,
                           int32_t *pos, int32_t *delta, struct err *e) {
    const struct mrope_media none = {
        .image_token_id = -1, .video_token_id = -1, .vision_start_token_id = -1};
    const struct mrope_media *m = media ? media : &none;
    int32_t merge = m->spatial_merge_size > 0 ? m->spatial_merge_size : 1;
    int32_t next = 0, mx = -1, ii = 0, vi = 0;
    for (int64_t i = 0; i < n;) {
        bool img = ids[i] == m->image_token_id && m->image_token_id >= 0;
        bool vid = ids[i] == m->video_token_id && m->video_token_id >= 0;
        if ((img || vid) && i > 0 && ids[i - 1] == m->vision_start_token_id) {
            if ((img && ii >= m->n_images) || (vid && vi >= m->n_videos))
                return err_set(e, VELA_EINVAL,
                               "positions: token %" PRId64 " starts %s %d, but only "
                               "%d were given",
                               i, img ? "image" : "video", img ? ii + 1 : vi + 1,
                               img ? m->n_images : m->n_videos);
            struct mrope_grid g = img ? m->images[ii] : m->videos[vi];
            double step = 0.0;
            if (vid) {
                double spg = m->second_per_grid_ts ? m->second_per_grid_ts[vi] : 1.0;
                if (m->int_time_step) spg = trunc(spg);
                step = spg * (double)m->tokens_per_second;
            }
            if (g.t < 1 || g.h < merge || g.w < merge || g.h % merge || g.w % merge)
                return err_set(e, VELA_EINVAL,
                               "positions: %s grid (%d, %d, %d) is not whole "
                               "%dx%d merge units",
                               img ? "image" : "video", (int)g.t, (int)g.h, (int)g.w, (int)merge,
                               (int)merge);
            int64_t len = (int64_t)g.t * (g.h / merge) * (g.w / merge);
            int32_t pad = img ? m->image_token_id : m->video_token_id;
            for (int64_t j = 0; j < len; j++)
                if (i + j >= n || ids[i + j] != pad)
                    return err_set(e, VELA_EINVAL,
                                   "positions: %s at token %" PRId64 " needs %" PRId64
                                   " pad tokens, the run has %" PRId64,
                                   img ? "image" : "video", i, len, j);
            int32_t nx = fill_run(pos, n, i, g, merge, step, next);
            if (nx - 1 > mx) mx = nx - 1;
            next = nx;
            i += len;
            img ? ii++ : vi++;
            continue;
        }
        pos[i] = pos[n + i] = pos[2 * n + i] = next;
        mx = next > mx ? next : mx;
        next++, i++;
    }
    if (ii != m->n_images || vi != m->n_videos)
        return err_set(e, VELA_EINVAL,
                       "positions: prompt holds %d images and %d videos, %d and "
                       "%d were given",
                       (int)ii, (int)vi, (int)m->n_images, (int)m->n_videos);
    *delta = (int32_t)(mx + 1 - n);
    return 0;
}
