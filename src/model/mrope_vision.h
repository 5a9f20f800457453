/* mrope_vision: prompt assembly for images and videos, the step between the chat template
 * and the language model (spec §3.7, §6): each <|image_pad|> / <|video_pad|> of the rendered
 * prompt is expanded to its grid's token count, as the processor does, and the vision
 * tower's output rows are scattered into the embedding rows of the expanded pad tokens. The
 * 3-D positions of the expanded prompt come from mrope_prompt_positions (model/mrope.h),
 * decode positions from mrope_text_positions.
 *
 * Ids and grids come from struct mrope_media (model/mrope.h): image/video token ids, the
 * grids in prompt order and the merge size. Inputs are borrowed; outputs are caller-owned.
 * Any thread; no state. */
#ifndef VELA_MODEL_MROPE_VISION_H
#define VELA_MODEL_MROPE_VISION_H

#include "model/mrope.h"
#include "util/err.h"

#include <stdint.h>

/* Placeholder tokens of one grid: t · (h / merge) · (w / merge). */
int64_t mrv_grid_tokens(struct mrope_grid g, int32_t merge);

/* Expands ids[0..n): the k-th image pad (in order) becomes mrv_grid_tokens(images[k]) image
 * pads, likewise for video pads, every other id is copied (Qwen2_5_VLProcessor's string
 * replacement, in ids). With out == NULL only *n_out is computed. VELA_EINVAL when the pads
 * and the grids do not pair up one to one (naming which), VELA_ELIMIT when the result
 * would exceed cap tokens. */
int mrv_expand(const int32_t *ids, int64_t n, const struct mrope_media *m, int32_t *out,
               int64_t cap, int64_t *n_out, struct err *e);

/* Scatters vision output rows into token embeddings: the k-th token of ids equal to token_id
 * takes rows[k] (dim floats) in embeds (n, dim) and gets mask[i] = 1 (other mask entries are
 * left alone, so images and videos can be scattered in turn). VELA_EINVAL, as transformers
 * raises, when the number of such tokens differs from n_rows. */
int mrv_scatter(const int32_t *ids, int64_t n, int32_t token_id, const float *rows, int64_t n_rows,
                int32_t dim, float *embeds, uint8_t *mask, struct err *e);

#endif
