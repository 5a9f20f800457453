/* presets: the named model shapes `vela make-model --preset NAME` can write: small ones for
 * tests and demos (with a tokenizer vela trains itself) and the real Qwen2.5-VL and Qwen2.5
 * shapes (which need the real Qwen tokenizer). A preset is a struct model_config whose
 * vocabulary size and special token ids are completed by preset_config() from the
 * tokenizer actually written. Any thread; the table is static and read-only. */
#ifndef VELA_MODEL_PRESETS_H
#define VELA_MODEL_PRESETS_H

#include "model/config.h"
#include "util/err.h"

#include <stdbool.h>
#include <stdint.h>

enum preset_vocab {
    /* Small shapes: vocab = tokenizer ids rounded up to a multiple of 64 (the tiny
     * tokenizer by default, the real one when --tokenizer is given). */
    PRESET_VOCAB_FROM_TOKENIZER = 0,
    /* Real shapes: vocab_size is fixed by the checkpoint (151936 / 152064) and the real
     * Qwen tokenizer is required; its ids must fit. */
    PRESET_VOCAB_FIXED = 1,
};

struct preset {
    const char *name;        /* "tiny", "demo", "3b", ... */
    const char *description; /* one line for --help */
    enum preset_vocab vocab;
    int64_t max_pixels;      /* preprocessor_config.json max_pixels (VL presets) */
    struct model_config cfg; /* special ids are the real Qwen ones until preset_config() */
};

/* Special token ids of the tokenizer written next to the model. */
struct preset_specials {
    int32_t n_ids;        /* ids the tokenizer knows (vocab plus added tokens) */
    int32_t endoftext;    /* <|endoftext|>: bos and pad */
    int32_t im_start;     /* <|im_start|> */
    int32_t im_end;       /* <|im_end|>: eos of the chat models */
    int32_t vision_start; /* <|vision_start|> ... (-1 when absent: text-only tokenizer) */
    int32_t vision_end;
    int32_t vision_pad;
    int32_t image_pad;
    int32_t video_pad;
};

int32_t preset_count(void);
/* i in [0, preset_count()); borrowed static entry. */
const struct preset *preset_at(int32_t i);
/* Exact-name lookup; NULL when unknown. */
const struct preset *preset_find(const char *name);
/* "tiny, demo, 3b, ..." for error messages and --help (static string). */
const char *preset_names(void);

/* The preset's config completed for the tokenizer described by sp: vocab_size (rounded
 * or checked, see enum preset_vocab) and every special token id. VELA_EINVAL when the
 * tokenizer lacks a token the model needs or has more ids than a fixed vocab holds. */
int preset_config(const struct preset *p, const struct preset_specials *sp,
                  struct model_config *out, struct err *e);

#endif
