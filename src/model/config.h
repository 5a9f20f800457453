/* config: a model folder's JSON configuration as typed structs.
 *
 * Reads config.json for Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration
 * and text-only Qwen2ForCausalLM, in every layout of the model spec §1.3 (flat, nested
 * text_config, rope_scaling or rope_parameters, vision_config written as a diff against
 * the transformers class defaults), plus generation_config.json and
 * preprocessor_config.json. Special token ids come from the files, never from constants.
 * A missing or invalid field gives an error naming the file and the field.
 * Any thread; the structs are plain values (no pointers), safe to copy. */
#ifndef VELA_MODEL_CONFIG_H
#define VELA_MODEL_CONFIG_H

#include "util/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum model_arch {
    ARCH_QWEN2_5_VL = 0, /* Qwen2_5_VLForConditionalGeneration */
    ARCH_QWEN2_VL = 1,   /* Qwen2VLForConditionalGeneration */
    ARCH_QWEN2 = 2,      /* Qwen2ForCausalLM (text only, 1-D RoPE) */
};

#define CFG_MAX_FULLATT 64

struct vision_config {
    int32_t depth;               /* ViT blocks (32) */
    int32_t hidden_size;         /* ViT width C (1280); Qwen2-VL calls it embed_dim */
    int32_t intermediate_size;   /* Fv: 3420 / 3456 (Qwen2.5-VL); Qwen2-VL: embed_dim*mlp_ratio */
    int32_t num_heads;           /* 16 (head_dim = hidden_size / num_heads = 80) */
    int32_t in_chans;            /* 3 */
    int32_t patch_size;          /* 14 */
    int32_t spatial_merge_size;  /* 2 */
    int32_t temporal_patch_size; /* 2 */
    int32_t tokens_per_second;   /* 2 in real files (class default 4); 0 for Qwen2-VL, whose
                                    temporal position is the frame-pair index */
    int32_t window_size;         /* 112 pixels; 0 for Qwen2-VL (no window attention) */
    int32_t out_hidden_size;     /* merger output width, == text hidden_size */
    int32_t fullatt_block_indexes[CFG_MAX_FULLATT]; /* each in [0, depth); none for Qwen2-VL */
    int32_t n_fullatt;
    char hidden_act[16]; /* "silu" (2.5-VL) or "quick_gelu" (2-VL) */
};

struct model_config {
    enum model_arch arch;
    char architecture[64]; /* class name: "architectures"[0], or derived from model_type */
    char model_type[32];   /* "qwen2_5_vl", "qwen2_vl", "qwen2" */
    char torch_dtype[16];  /* "bfloat16", "float16", "float32" ("torch_dtype" or v5 "dtype") */

    /* text model */
    int32_t vocab_size;          /* V: embedding rows */
    int32_t hidden_size;         /* D */
    int32_t intermediate_size;   /* F */
    int32_t num_hidden_layers;   /* L */
    int32_t num_attention_heads; /* Nq */
    int32_t num_key_value_heads; /* Nkv; divides Nq */
    int32_t head_dim;            /* D / Nq (128 on every real size) */
    int32_t max_position_embeddings;
    double rope_theta;
    double rms_norm_eps;
    bool tie_word_embeddings;
    bool has_mrope;           /* true for the VL models */
    int32_t mrope_section[3]; /* [16, 24, 24]: temporal, height, width; sums to head_dim/2 */

    /* special token ids (from config.json; -1 when the file has none) */
    int32_t bos_token_id;
    int32_t eos_token_ids[8];
    int32_t n_eos_token_ids;
    int32_t pad_token_id;
    int32_t image_token_id;
    int32_t video_token_id;
    int32_t vision_start_token_id;
    int32_t vision_end_token_id;
    int32_t vision_token_id;

    bool has_vision; /* false for ARCH_QWEN2 */
    struct vision_config vision;
};

/* generation_config.json: defaults for sampling. Absent fields keep the values below. */
struct gen_config {
    bool present;         /* the file existed */
    int32_t bos_token_id; /* -1 when absent */
    int32_t eos_token_ids[8];
    int32_t n_eos_token_ids;
    int32_t pad_token_id;      /* -1 when absent */
    bool do_sample;            /* false */
    double temperature;        /* 1.0 */
    double top_p;              /* 1.0 */
    int32_t top_k;             /* 0 = off (transformers' default 50 applies only if present) */
    double repetition_penalty; /* 1.0 */
};

/* preprocessor_config.json of Qwen2VLImageProcessor. Absent fields keep the class defaults. */
struct preproc_config {
    bool present;
    int64_t min_pixels;          /* 3136 = 56*56 */
    int64_t max_pixels;          /* 12845056 = 28*28*16384 */
    int32_t patch_size;          /* 14 */
    int32_t temporal_patch_size; /* 2 */
    int32_t merge_size;          /* 2 */
    float image_mean[3];         /* OPENAI_CLIP_MEAN */
    float image_std[3];          /* OPENAI_CLIP_STD */
    bool do_resize, do_rescale, do_normalize, do_convert_rgb;
    double rescale_factor; /* 1/255 */
};

/* Parses a config.json already in memory (need not be NUL-terminated); `what` names it in
 * errors ("DIR/config.json: field 'hidden_size' is missing"). *out is written only on success.
 * The architecture comes from "architectures"[0], or from "model_type" when that is absent. */
int cfg_parse(struct model_config *out, const char *json, size_t len, const char *what,
              struct err *e);
/* Reads DIR/config.json. */
int cfg_load(struct model_config *out, const char *dir, struct err *e);
/* Checks the cross-field rules (heads divide hidden, kv heads divide heads, mrope sections
 * sum to head_dim/2, out_hidden_size == hidden_size, ...); called by cfg_parse. */
int cfg_validate(const struct model_config *c, struct err *e);

/* DIR/generation_config.json and DIR/preprocessor_config.json; a missing file is not an
 * error (present = false, defaults kept), a malformed one is. */
int gen_config_load(struct gen_config *out, const char *dir, struct err *e);
int preproc_config_load(struct preproc_config *out, const char *dir, struct err *e);
/* The same on a buffer already in memory (the fuzzer's entry points); `what` names it. */
int gen_config_parse(struct gen_config *out, const char *json, size_t len, const char *what,
                     struct err *e);
int preproc_config_parse(struct preproc_config *out, const char *json, size_t len, const char *what,
                         struct err *e);
void gen_config_defaults(struct gen_config *g);
void preproc_config_defaults(struct preproc_config *p);

/* Writes c as a config.json in the original (flat) Qwen layout; the caller frees *out with
 * free(). Used by the model generator. */
int cfg_to_json(const struct model_config *c, char **out, struct err *e);

/* The transformers class name of an architecture ("Qwen2_5_VLForConditionalGeneration"). */
const char *cfg_arch_name(enum model_arch a);
/* A short display name ("Qwen2.5-VL"). */
const char *cfg_arch_label(enum model_arch a);

#endif
