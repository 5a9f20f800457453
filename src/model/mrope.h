/* mrope: the 3-D rotary positions of Qwen2-VL / Qwen2.5-VL (get_rope_index, spec §5.4) and
 * the positions of decode steps (§5.5).
 *
 * Every token gets three positions (t, h, w). Text tokens get t = h = w = a running counter;
 * the pad run of an image or video (a <|vision_start|> followed by image/video pad tokens)
 * gets positions from its LM grid (t, h / merge, w / merge) starting at the counter, and the
 * counter continues after the run's largest position. delta = max position + 1 - length;
 * decode token n (0-based sequence index) gets n + delta in all three rows. For text-only
 * prompts (and for Qwen2 without M-RoPE) the three rows are equal and delta is 0.
 *
 * The layout of pos is the backend's (struct rope_args): three rows of n int32, row 0 = t.
 * Any thread; no state. */
#ifndef VELA_MODEL_MROPE_H
#define VELA_MODEL_MROPE_H

#include "util/err.h"

#include <stdbool.h>
#include <stdint.h>

/* The grid of one image or video in patches, as the processor reports it (image_grid_thw). */
struct mrope_grid {
    int32_t t, h, w;
};

/* What get_rope_index needs to know besides the ids. Zero-initialised means text only. */
struct mrope_media {
    int32_t image_token_id, video_token_id, vision_start_token_id; /* -1: absent */
    const struct mrope_grid *images; /* (n_images) in prompt order; borrowed */
    int32_t n_images;
    const struct mrope_grid *videos; /* (n_videos) in prompt order; borrowed */
    const float *second_per_grid_ts; /* (n_videos) or NULL = 1.0 each */
    int32_t n_videos;
    int32_t spatial_merge_size; /* 2 */
    float tokens_per_second;    /* vision_config.tokens_per_second (2) */
    bool int_time_step;         /* truncate second_per_grid_t first, as most transformers
                                   4.5x/5.x releases do (spec §5.4 note) */
};

/* Positions of a whole prompt: pos (3, n) caller-owned, *delta the decode offset. With
 * media == NULL (or no image/video ids) every token is text. VELA_EINVAL when the prompt's
 * images/videos do not match media (count, or a pad run of the wrong length), naming the
 * token index. */
int mrope_prompt_positions(const int32_t *ids, int64_t n, const struct mrope_media *media,
                           int32_t *pos, int32_t *delta, struct err *e);

/* Positions of tokens [n0, n0 + n) of a sequence past its prompt (decode steps, or text
 * that follows the prompt): n0 + i + delta in all three rows of pos (3, stride), starting at
 * column col0. */
void mrope_text_positions(int32_t n0, int32_t n, int32_t delta, int32_t *pos, int64_t stride,
                          int64_t col0);

#endif
