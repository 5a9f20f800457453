/* mm_prompt: a tokenized prompt with images and videos made ready for the engine (the text
 * part of transformers' Qwen2_5_VLProcessor plus get_rope_index; spec §3.7, §5.4, §6):
 *   - each <|image_pad|> / <|video_pad|> of the prompt (as the chat template wrote it: one per
 *     image, in order) is expanded to t·h·w / M² copies, images and videos matched in order;
 *   - the 3-row M-RoPE positions of the whole expanded prompt and the decode offset delta;
 *   - per image: its pixel values, grid, placeholder run (offset, n_tokens) and a content
 *     hash of the decoded RGB plus the resize parameters, so that two different images never
 *     share prefix-cache blocks or encoder-cache entries while the same image (at the same
 *     size) does.
 *
 * Ownership: struct mm_prompt is reference counted (mmp_ref / mmp_unref; the last unref frees
 * it with its pixel values). A request holds one reference; forks of a request share it.
 * Not thread-safe: build it on any thread, then hand it over (with its request) to one
 * thread at a time. */
#ifndef VELA_MODEL_MM_PROMPT_H
#define VELA_MODEL_MM_PROMPT_H

#include "util/err.h"
#include "vision/preprocess.h"

#include <stdbool.h>
#include <stdint.h>

struct model_config;

/* One image or video, in prompt order. */
struct mmp_media {
    struct pixel_values pv;  /* owned */
    bool video;              /* a <|video_pad|> run (frames) rather than an image */
    float second_per_grid_t; /* videos: temporal_patch_size / fps (1.0 at the default 2 fps) */
    uint64_t hash;           /* content hash (pixels + resize parameters) */
    int32_t offset;          /* set by mmp_build: first placeholder token */
    int32_t n_tokens;        /* set by mmp_build: placeholder count = embedding rows */
};

/* Token ids and vision settings the expansion needs (from config.json). */
struct mmp_tokens {
    int32_t image_pad, video_pad, vision_start;
    int32_t spatial_merge_size; /* 2 */
    float tokens_per_second;    /* 2 */
};

struct mm_prompt {
    int32_t *ids; /* (n_ids) expanded prompt; owned */
    int32_t n_ids;
    int32_t *pos;            /* (3, n_ids) M-RoPE positions, rows t, h, w; owned */
    int32_t delta;           /* decode offset: token n gets position n + delta */
    struct mmp_media *media; /* (n_media) prompt order (= offset order); owned */
    int32_t n_media;
    int32_t refs;
};

/* The pad ids and vision settings of config c. */
void mmp_tokens_from_config(struct mmp_tokens *t, const struct model_config *c);

/* Reads, decodes and preprocesses one image file into *out (written only on success).
 * Errors name the file: unreadable (VELA_EIO / VELA_ENOTFOUND), not a complete image
 * (VELA_EFORMAT: truncated files included), too large (VELA_ELIMIT), an aspect ratio over
 * 200 (VELA_EINVAL, the reference's message). */
int mmp_load_image(struct mmp_media *out, const char *path, const struct preproc_params *p,
                   struct err *e);
/* The same for a video given as n frame files (one size; padded to an even count). */
int mmp_load_frames(struct mmp_media *out, const char *const *paths, int32_t n,
                    const struct preproc_params *p, struct err *e);
/* Preprocesses decoded images (borrowed) the same way: one image (n == 1, video false) or the
 * frames of a video. */
int mmp_media_from_images(struct mmp_media *out, const struct image *ims, int32_t n, bool video,
                          const struct preproc_params *p, struct err *e);
void mmp_media_deinit(struct mmp_media *m); /* accepts a zeroed one */

/* Content hash of decoded images (borrowed) and the parameters that decide their pixel values. */
uint64_t mmp_hash_images(const struct image *ims, int32_t n, const struct preproc_params *p);

/* Builds *out (one reference) from the unexpanded prompt ids (borrowed) and media, whose
 * contents move into *out in every case (the caller's array is zeroed; on failure they are
 * freed). VELA_EINVAL when the prompt's image or video placeholders and the media given
 * differ in number (naming both counts), VELA_ELIMIT when the expanded prompt exceeds
 * VELA_REQ_MAX_TOKENS. */
int mmp_build(struct mm_prompt **out, const int32_t *ids, int32_t n_ids,
              const struct mmp_tokens *tk, struct mmp_media *media, int32_t n_media, struct err *e);

struct mm_prompt *mmp_ref(struct mm_prompt *mp); /* returns mp; accepts NULL */
void mmp_unref(struct mm_prompt *mp);            /* frees at zero; accepts NULL */

#endif
