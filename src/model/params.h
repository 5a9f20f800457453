/* params: what a config implies about its checkpoint: the list of expected tensors (legacy
 * names, shapes) and the parameter, byte and KV-cache counts derived from it.
 * Pure functions of struct model_config; any thread. */
#ifndef VELA_MODEL_PARAMS_H
#define VELA_MODEL_PARAMS_H

#include "model/config.h"
#include "util/err.h"

#include <stdbool.h>
#include <stdint.h>

enum param_kind {
    PARAM_LINEAR = 0, /* [out, in] weight of a Linear layer */
    PARAM_BIAS,       /* [out] bias of a Linear layer */
    PARAM_NORM,       /* RMSNorm / LayerNorm gain */
    PARAM_NORM_BIAS,  /* LayerNorm bias (Qwen2-VL vision tower) */
    PARAM_EMBED,      /* token embedding [V, D] */
    PARAM_CONV,       /* patch embedding Conv3d [C, in_chans, tp, p, p] */
};

#define PARAM_NAME_MAX 96
#define PARAM_MAX_DIMS 5

struct param_tensor {
    char name[PARAM_NAME_MAX]; /* legacy (official hub) name, e.g.
                                  "model.layers.3.mlp.up_proj.weight" */
    int32_t n_dims;
    int64_t shape[PARAM_MAX_DIMS];
    int64_t fan_in; /* input features feeding one output (for weight init scales) */
    bool vision;    /* part of the vision tower (visual.*) */
    enum param_kind kind;
};

/* Fills *out with a new array (caller frees with free()) of every tensor the config implies,
 * in a stable order: vision tower first (if any), then embed_tokens, layers, norm, lm_head
 * (absent when tie_word_embeddings). */
int params_tensors(const struct model_config *c, struct param_tensor **out, int64_t *n_out,
                   struct err *e);

struct param_counts {
    int64_t vision_patch_embed;
    int64_t vision_per_block; /* one ViT block */
    int64_t vision_merger;
    int64_t vision_total;
    int64_t lm_per_layer; /* one decoder layer */
    int64_t lm_embed;
    int64_t lm_head;  /* 0 when tied */
    int64_t lm_total; /* embed + layers + final norm + lm_head */
    int64_t total;
    int64_t n_tensors;
    int64_t kv_bytes_per_token; /* BF16 K and V, all layers: 2 * L * Nkv * head_dim * 2 */
    int64_t vision_bf16_bytes;  /* 2 bytes per parameter */
    int64_t lm_bf16_bytes;
    int64_t total_bf16_bytes;
};

/* Counts from the config alone. c must have passed cfg_validate (products then fit int64). */
void params_count(const struct model_config *c, struct param_counts *out);

/* Element count of one tensor (product of its dims). */
int64_t params_n_elems(const struct param_tensor *t);

#endif
