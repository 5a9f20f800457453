/* gen_mm: the image/video path of `vela generate` (cmd_generate.c parses the flags): chat
 * template with image/video parts before the text -> tokens -> images read, decoded,
 * preprocessed -> placeholders expanded, M-RoPE positions (model/mm_prompt) -> one request run
 * through the engine's scheduler and runner with the vision tower (engine/solo) -> text
 * streamed to stdout, one timing line on stderr. Main thread only. */
#ifndef VELA_CLI_GEN_MM_H
#define VELA_CLI_GEN_MM_H

#include "backend/backend.h"
#include "backend/device.h"
#include "engine/params.h"
#include "util/err.h"
#include "util/limits.h"

#include <stdint.h>

struct lm_files;
struct tokenizer;

#define GEN_MM_MAX_IMAGES 16 /* --image flags per run (a CLI convenience, not a model limit) */
#define GEN_MM_MAX_FRAMES 64 /* --video-frames entries */

struct gen_mm_args {
    const char *model, *prompt;
    const char *images[GEN_MM_MAX_IMAGES]; /* borrowed from argv */
    int32_t n_images;
    const char *frames[GEN_MM_MAX_FRAMES]; /* pointers into frames_buf */
    int32_t n_frames;
    char *frames_buf;               /* owned copy of the --video-frames list */
    int64_t min_pixels, max_pixels; /* 0: preprocessor_config.json's */
    int64_t threads, max_model_len, chunk, max_new;
    enum be_dtype kv_dtype;
    enum be_device_kind device;               /* --device */
    const char *stops[VELA_STOP_MAX_STRINGS]; /* --stop, borrowed from argv */
    int32_t n_stops;
    bool include_stop; /* --include-stop-str-in-output */
};

/* Splits a comma-separated --video-frames value into a->frames. VELA_EINVAL / VELA_ELIMIT. */
int gen_mm_set_frames(struct gen_mm_args *a, const char *list, struct err *e);
/* Generates with sampling parameters sp (max_tokens already bounded by the caller). */
int gen_mm_run(const struct gen_mm_args *a, const struct lm_files *f, const struct tokenizer *tok,
               const struct sampling_params *sp, struct err *e);

#endif
