/* vit_window: window partition and position bookkeeping of the vision tower (see the header).
 *
 * Matches transformers 5.24 vision_utils: get_vision_window_index (including the padding
 * quirk pad = ws - n mod ws, a whole empty window row/column when n is a multiple of ws, and
 * unique_consecutive over cu_window, which here means "skip windows with no unit"),
 * get_vision_cu_seqlens (one segment per temporal group) and get_vision_position_ids.
 *
 * Invariants: window_index is a permutation of [0, U) that keeps each grid's units, and each
 * temporal group's units, contiguous and in grid order, so full-attention boundaries are the
 * same before and after reordering; cu_window is strictly increasing and ends at S.
 * Any thread. */
#include "model/vit_window.h"

#include "util/limits.h"

#include <inttypes.h>

int vitw_check(const struct vit_grid *g, int32_t n, int32_t merge, int64_t max_patches,
               int64_t *n_patches, struct err *e) {
    if (n < 1 || !g) return err_set(e, VELA_EINVAL, "vision: no images in the call");
    if (merge < 1) return err_set(e, VELA_EINVAL, "vision: merge size %d", (int)merge);
    if (max_patches > VELA_VIT_MAX_PATCHES) max_patches = VELA_VIT_MAX_PATCHES;
    int64_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        if (g[i].t < 1 || g[i].h < merge || g[i].w < merge || g[i].h % merge != 0 ||
            g[i].w % merge != 0)
            return err_set(e, VELA_EINVAL,
                           "vision: grid %d is (%d, %d, %d); t >= 1 and h, w positive multiples "
                           "of %d expected",
                           (int)i, (int)g[i].t, (int)g[i].h, (int)g[i].w, (int)merge);
        /* Each factor is below 2^31, so checking against the limit after each product keeps
         * every intermediate inside int64. */
        int64_t p = (int64_t)g[i].t * g[i].h;
        if (p <= max_patches) p *= g[i].w;
        if (p > max_patches || total + p > max_patches)
            return err_set(e, VELA_ELIMIT,
                           "vision: grid %d (%d, %d, %d) brings the call past %" PRId64 " patches",
                           (int)i, (int)g[i].t, (int)g[i].h, (int)g[i].w, max_patches);
        total += p;
    }
    *n_patches = total;
    return 0;
}

int32_t vitw_window_units(int32_t window_size, int32_t merge, int32_t patch) {
    if (window_size <= 0 || merge <= 0 || patch <= 0) return 0;
    return window_size / merge / patch;
}

int64_t vitw_window_index(const struct vit_grid *g, int32_t n, int32_t merge, int32_t ws,
                          int32_t *window_index, int32_t *cu_window) {
    int64_t n_idx = 0, n_cu = 1, unit_base = 0;
    int32_t unit_rows = merge * merge;
    cu_window[0] = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t lh = g[i].h / merge, lw = g[i].w / merge;
        int32_t nwh = (lh + ws - lh % ws) / ws, nww = (lw + ws - lw % ws) / ws;
        for (int32_t gt = 0; gt < g[i].t; gt++) {
            int64_t base = unit_base + (int64_t)gt * lh * lw;
            for (int32_t wr = 0; wr < nwh; wr++) {
                for (int32_t wc = 0; wc < nww; wc++) {
                    int32_t count = 0;
                    for (int32_t r = wr * ws; r < wr * ws + ws && r < lh; r++)
                        for (int32_t c = wc * ws; c < wc * ws + ws && c < lw; c++, count++)
                            window_index[n_idx++] = (int32_t)(base + (int64_t)r * lw + c);
                    if (count > 0) { /* unique_consecutive drops empty windows */
                        cu_window[n_cu] = cu_window[n_cu - 1] + count * unit_rows;
                        n_cu++;
                    }
                }
            }
        }
        unit_base += (int64_t)g[i].t * lh * lw;
    }
    return n_cu;
}

int64_t vitw_full_seqlens(const struct vit_grid *g, int32_t n, int32_t *cu_full) {
    int64_t n_cu = 1;
    cu_full[0] = 0;
    for (int32_t i = 0; i < n; i++)
        for (int32_t gt = 0; gt < g[i].t; gt++, n_cu++)
            cu_full[n_cu] = cu_full[n_cu - 1] + g[i].h * g[i].w;
    return n_cu;
}

void vitw_positions(const struct vit_grid *g, int32_t n, int32_t merge, int32_t *pos,
                    int64_t stride) {
    int64_t s = 0;
    for (int32_t i = 0; i < n; i++)
        for (int32_t gt = 0; gt < g[i].t; gt++)
            for (int32_t bh = 0; bh < g[i].h / merge; bh++)
                for (int32_t bw = 0; bw < g[i].w / merge; bw++)
                    for (int32_t mh = 0; mh < merge; mh++)
                        for (int32_t mw = 0; mw < merge; mw++, s++) {
                            pos[s] = bh * merge + mh;
                            pos[stride + s] = bw * merge + mw;
                        }
}

void vitw_inverse(const int32_t *perm, int64_t n, int32_t *inv) {
    for (int64_t i = 0; i < n; i++) inv[perm[i]] = (int32_t)i;
}

void vitw_expand_rows(const int32_t *units, int64_t n_units, int32_t unit_rows, int32_t *rows) {
    for (int64_t i = 0; i < n_units; i++)
        for (int32_t k = 0; k < unit_rows; k++) rows[i * unit_rows + k] = units[i] * unit_rows + k;
}
