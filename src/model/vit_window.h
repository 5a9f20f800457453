/* vit_window: the index bookkeeping of the Qwen2.5-VL vision tower, pure C (spec §4.3, §4.4):
 * grid checks, the (row, column) rotary position of every patch, the window partition
 * (window_index, cu_window_seqlens), the full-attention boundaries (cu_seqlens) and the
 * permutations that move rows into window order and back.
 *
 * Layout (spec §3.6): pixel_values rows of one grid (t, h, w) are ordered (gt, bh, bw, mh, mw)
 * with merge-block row bh < h/M, column bw < w/M and (mh, mw) inside the M x M block, so the
 * M*M rows of a merge unit are consecutive. Units are numbered in that order across all grids
 * of a call; window_index is a permutation of units, never of single patches.
 *
 * Sizes: S = Σ t·h·w patches, U = S / M² units. window_index has U entries, cu_window at most
 * U + 1, cu_full at most Σ t + 1 <= U + 1. Callers size their arrays with these bounds.
 * Any thread; no state, no allocation. */
#ifndef VELA_MODEL_VIT_WINDOW_H
#define VELA_MODEL_VIT_WINDOW_H

#include "util/err.h"

#include <stdint.h>

/* One image or video in patches, as the processor's grid_thw reports it. */
struct vit_grid {
    int32_t t, h, w;
};

/* Checks n grids (t >= 1, h and w positive multiples of merge) and that their total patch
 * count stays within max_patches (<= VELA_VIT_MAX_PATCHES); *n_patches receives it.
 * VELA_EINVAL / VELA_ELIMIT naming the grid otherwise. */
int vitw_check(const struct vit_grid *g, int32_t n, int32_t merge, int64_t max_patches,
               int64_t *n_patches, struct err *e);

/* Window side in merge units: window_size / merge / patch (4 for 112 / 2 / 14); 0 when the
 * model has no window attention (Qwen2-VL). */
int32_t vitw_window_units(int32_t window_size, int32_t merge, int32_t patch);

/* get_window_index (transformers vision_utils.get_vision_window_index, spec §4.4): fills
 * window_index (U entries) and cu_window (boundaries in patches, starting with 0, empty
 * windows dropped) and returns the number of cu_window entries (windows + 1). ws >= 1;
 * grids already checked. */
int64_t vitw_window_index(const struct vit_grid *g, int32_t n, int32_t merge, int32_t ws,
                          int32_t *window_index, int32_t *cu_window);

/* Full-attention boundaries: one segment per temporal group of each grid (h·w patches each),
 * in patches starting with 0. Returns the number of entries (segments + 1). */
int64_t vitw_full_seqlens(const struct vit_grid *g, int32_t n, int32_t *cu_full);

/* Rotary positions in pixel_values row order: pos[i] = patch row, pos[stride + i] = patch
 * column of row i (S rows); every temporal group repeats its frame's pattern. */
void vitw_positions(const struct vit_grid *g, int32_t n, int32_t merge, int32_t *pos,
                    int64_t stride);

/* inv[perm[i]] = i for a permutation perm of [0, n). */
void vitw_inverse(const int32_t *perm, int64_t n, int32_t *inv);

/* Row indices of a unit permutation: rows[i·unit_rows + k] = units[i]·unit_rows + k. */
void vitw_expand_rows(const int32_t *units, int64_t n_units, int32_t unit_rows, int32_t *rows);

#endif
