/* preprocess: decoded RGB image(s) -> Qwen2-VL / Qwen2.5-VL vision input: smart_resize,
 * Pillow-exact bicubic resize, rescale, normalize, temporal duplication and patchify into
 * pixel_values (float32, [grid_t*grid_h*grid_w, 3*T*P*P]) plus grid_thw (model spec §3.3-§3.8).
 *
 * Reference matched: transformers 5.24's PIL backend, Qwen2VLImageProcessorPil
 * (models/qwen2_vl/image_processing_pil_qwen2_vl.py), fed the RGB image of vision/decode.
 * AutoImageProcessor in 5.24 picks the torchvision backend (Qwen2VLImageProcessor) when
 * torchvision is installed and the PIL one otherwise (or with backend="pil"/use_fast=False);
 * the torchvision one resizes in float without the 8-bit intermediate and differs by about
 * 1 LSB on some pixels (spec §3.4). The PIL path is also what qwen-vl-utils uses, and it is
 * reproducible bit for bit: pixel_values here equal the reference's exactly.
 *
 * Ownership: inputs are borrowed; *out is written only on success and the caller frees it
 * with pixel_values_deinit. Any thread; no global state. */
#ifndef VELA_VISION_PREPROCESS_H
#define VELA_VISION_PREPROCESS_H

#include "util/err.h"
#include "vision/image.h"

#include <stdbool.h>
#include <stdint.h>

struct preproc_config;

/* The processor's settings; per-call overrides (min/max pixels of a request) are made by
 * editing a copy. */
struct preproc_params {
    int64_t min_pixels;          /* smart_resize lower budget (3136) */
    int64_t max_pixels;          /* smart_resize upper budget (12845056) */
    int32_t patch_size;          /* P = 14 */
    int32_t temporal_patch_size; /* T = 2 */
    int32_t merge_size;          /* M = 2; smart_resize factor = P*M = 28 */
    float image_mean[3];         /* OPENAI_CLIP_MEAN */
    float image_std[3];          /* OPENAI_CLIP_STD */
    double rescale_factor;       /* 1/255 */
    bool do_resize, do_rescale, do_normalize;
};

struct pixel_values {
    float *data;     /* (n_rows, row_len), owned */
    int64_t n_rows;  /* grid_t * grid_h * grid_w */
    int32_t row_len; /* 3 * T * P * P = 1176; columns ordered (c, tp, py, px) */
    int64_t grid_t;  /* frames (padded to a multiple of T) / T; 1 for an image */
    int64_t grid_h;  /* resized_h / P */
    int64_t grid_w;  /* resized_w / P */
    int32_t resized_h, resized_w;
    int64_t n_tokens; /* LM placeholder tokens: n_rows / (M*M) (spec §3.7) */
};

/* The values of the official preprocessor_config.json (all Qwen2.5-VL sizes). */
void preproc_params_default(struct preproc_params *p);
/* Copies the fields of a parsed preprocessor_config.json (model/config.h). */
void preproc_params_from_config(struct preproc_params *p, const struct preproc_config *c);
/* VELA_EINVAL naming the field when p is unusable (sizes, budget order, zero std). */
int preproc_params_check(const struct preproc_params *p, struct err *e);

/* transformers' smart_resize (double precision, round-half-even). Fails with VELA_EINVAL and
 * the reference's message "absolute aspect ratio must be smaller than 200, got R" (R as
 * Python prints the float) when max/min side > 200. */
int img_smart_resize(int64_t height, int64_t width, int32_t factor, int64_t min_pixels,
                     int64_t max_pixels, int32_t *out_h, int32_t *out_w, struct err *e);

/* LM tokens an image of this size will take, without touching pixels (for admission). */
int img_count_tokens(int64_t height, int64_t width, const struct preproc_params *p,
                     int64_t *n_tokens, struct err *e);

/* One image: duplicated into T identical frames, grid_t = 1. */
int img_preprocess(const struct image *im, const struct preproc_params *p, struct pixel_values *out,
                   struct err *e);

/* A video as n_frames same-sized frames: padded to a multiple of T by repeating the last
 * frame, grid_t = n_padded / T, every frame resized to smart_resize of the first's size. */
int img_preprocess_frames(const struct image *frames, int32_t n_frames,
                          const struct preproc_params *p, struct pixel_values *out, struct err *e);

void pixel_values_deinit(struct pixel_values *pv);

#endif
