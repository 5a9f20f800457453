/* config: config.json -> struct model_config, in every layout of the model spec §1.3.
 *
 * Layouts handled (any mix of them):
 *   1. original: flat text fields, rope_scaling {"type":"mrope","mrope_section":[...]};
 *   2. re-saved: rope_scaling {"mrope_section","rope_type":"default","type":"default"}, a nested
 *      "text_config" (text fields are read from it when present), transformers v5
 *      "rope_parameters" (which may hold rope_theta), "dtype" instead of "torch_dtype";
 *   3. vision_config written as a diff against the transformers class defaults, so every
 *      missing vision field takes the class default (Qwen2_5_VLVisionConfig, Qwen2VLVisionConfig).
 *
 * Invariants:
 *   1. *out is written only when parsing and cfg_validate() both succeed.
 *   2. The struct is memset to zero before filling, so two parses of equal content compare
 *      equal with memcmp (cfg_to_json's round trip relies on it).
 *   3. Every error message starts with the file name and names the field.
 * Any thread; no state. */
#include "model/config.h"

#include "util/file.h"
#include "util/json.h"
#include "util/limits.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cfg_arch_name(enum model_arch a) {
    switch (a) {
        case ARCH_QWEN2_5_VL:
            return "Qwen2_5_VLForConditionalGeneration";
        case ARCH_QWEN2_VL:
            return "Qwen2VLForConditionalGeneration";
        case ARCH_QWEN2:
            return "Qwen2ForCausalLM";
    }
    return "unknown";
}

const char *cfg_arch_label(enum model_arch a) {
    switch (a) {
        case ARCH_QWEN2_5_VL:
            return "Qwen2.5-VL";
        case ARCH_QWEN2_VL:
            return "Qwen2-VL";
        case ARCH_QWEN2:
            return "Qwen2";
    }
    return "unknown";
}

static const char *arch_model_type(enum model_arch a) {
    return a == ARCH_QWEN2_5_VL ? "qwen2_5_vl" : a == ARCH_QWEN2_VL ? "qwen2_vl" : "qwen2";
}

static void copy_str(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src);
}

/* Architecture from "architectures"[0] (the class transformers instantiates), else from
 * "model_type" (v5 composite configs saved without a model omit "architectures"). */
static int parse_arch(struct model_config *c, const json_t *root, struct err *e) {
    const json_t *archs = json_object_get(root, "architectures");
    const char *name = NULL;
    if (archs && !json_is_null(archs)) {
        if (!json_is_array(archs) || json_array_size(archs) == 0 ||
            !json_is_string(json_array_get(archs, 0)))
            return err_set(e, VELA_EINVAL,
                           "field 'architectures' must be a non-empty string array");
        name = json_string_value(json_array_get(archs, 0));
        if (strcmp(name, "Qwen2_5_VLForConditionalGeneration") == 0)
            c->arch = ARCH_QWEN2_5_VL;
        else if (strcmp(name, "Qwen2VLForConditionalGeneration") == 0)
            c->arch = ARCH_QWEN2_VL;
        else if (strcmp(name, "Qwen2ForCausalLM") == 0)
            c->arch = ARCH_QWEN2;
        else
            return err_set(e, VELA_EUNSUP, "field 'architectures': unknown architecture '%.64s'",
                           name);
    }
    const char *mt = NULL;
    int rc = ju_str(root, "model_type", JU_OPTIONAL, &mt, e);
    if (rc != 0) return rc;
    if (!name) {
        if (!mt)
            return err_set(e, VELA_ENOTFOUND,
                           "field 'architectures' is missing (and no 'model_type')");
        if (strcmp(mt, "qwen2_5_vl") == 0)
            c->arch = ARCH_QWEN2_5_VL;
        else if (strcmp(mt, "qwen2_vl") == 0)
            c->arch = ARCH_QWEN2_VL;
        else if (strcmp(mt, "qwen2") == 0)
            c->arch = ARCH_QWEN2;
        else
            return err_set(e, VELA_EUNSUP, "field 'model_type': unknown architecture '%.32s'", mt);
    }
    copy_str(c->architecture, sizeof c->architecture, cfg_arch_name(c->arch));
    copy_str(c->model_type, sizeof c->model_type, mt ? mt : arch_model_type(c->arch));
    c->has_vision = c->arch != ARCH_QWEN2;
    c->has_mrope = c->has_vision;
    return 0;
}

/* Reads key from the first object of objs[] that has it (text_config before the top level). */
static const json_t *first_with(const json_t *const *objs, int n, const char *key) {
    for (int i = 0; i < n; i++) {
        const json_t *v = objs[i] ? json_object_get(objs[i], key) : NULL;
        if (v && !json_is_null(v)) return objs[i];
    }
    return objs[0] ? objs[0] : objs[n - 1];
}

/* The rope block: rope_scaling (v4) or rope_parameters (v5). Only "default" and "mrope" types
 * are accepted: any other scaling changes the frequencies and is not implemented. */
static int parse_rope(struct model_config *c, const json_t *const *src, int n, struct err *e) {
    const json_t *rope = NULL;
    const char *which = "rope_scaling";
    for (int i = 0; i < n && !rope; i++) {
        if (!src[i]) continue;
        int rc = ju_obj(src[i], "rope_scaling", JU_OPTIONAL, &rope, e);
        if (rc != 0) return rc;
        which = "rope_scaling";
        if (!rope) {
            rc = ju_obj(src[i], "rope_parameters", JU_OPTIONAL, &rope, e);
            if (rc != 0) return rc;
            which = "rope_parameters";
        }
    }
    /* rope_theta: beside the other text fields (v4) or inside rope_parameters (v5). */
    c->rope_theta = c->arch == ARCH_QWEN2 ? 10000.0 : 1000000.0; /* class defaults */
    const json_t *theta_src = NULL;
    for (int i = 0; i < n && !theta_src; i++)
        if (src[i] && json_object_get(src[i], "rope_theta")) theta_src = src[i];
    if (!theta_src && rope) theta_src = rope;
    int rc = 0;
    if (theta_src) rc = ju_num(theta_src, "rope_theta", JU_OPTIONAL, 1e-3, 1e12, &c->rope_theta, e);
    if (rc != 0) return rc;
    if (rope) {
        const char *keys[2] = {"type", "rope_type"};
        for (int k = 0; k < 2; k++) {
            const char *t = NULL;
            rc = ju_str(rope, keys[k], JU_OPTIONAL, &t, e);
            if (rc != 0) return err_wrap(e, "%s", which);
            if (t && strcmp(t, "default") != 0 && strcmp(t, "mrope") != 0)
                return err_set(e, VELA_EUNSUP, "field '%s.%s': rope type '%.32s' not supported",
                               which, keys[k], t);
        }
    }
    if (!c->has_mrope) return 0;
    if (!rope) return err_set(e, VELA_ENOTFOUND, "field 'rope_scaling.mrope_section' is missing");
    int n_sec = 0;
    rc = ju_i32_array(rope, "mrope_section", JU_REQUIRED, 0, VELA_CFG_MAX_HEAD_DIM,
                      c->mrope_section, 3, &n_sec, e);
    if (rc == 0 && n_sec != 3)
        rc = err_set(e, VELA_EINVAL, "field 'mrope_section' must have 3 elements, has %d", n_sec);
    if (rc != 0) return err_wrap(e, "%s", which);
    return 0;
}

static int parse_text(struct model_config *c, const json_t *root, const json_t *text,
                      struct err *e) {
    const json_t *t = text ? text : root;
    int rc = 0;
    if (!rc) rc = ju_i32(t, "vocab_size", JU_REQUIRED, 1, VELA_CFG_MAX_VOCAB, &c->vocab_size, e);
    if (!rc) rc = ju_i32(t, "hidden_size", JU_REQUIRED, 1, VELA_CFG_MAX_HIDDEN, &c->hidden_size, e);
    if (!rc)
        rc = ju_i32(t, "intermediate_size", JU_REQUIRED, 1, VELA_CFG_MAX_INTERMEDIATE,
                    &c->intermediate_size, e);
    if (!rc)
        rc = ju_i32(t, "num_hidden_layers", JU_REQUIRED, 1, VELA_CFG_MAX_LAYERS,
                    &c->num_hidden_layers, e);
    if (!rc)
        rc = ju_i32(t, "num_attention_heads", JU_REQUIRED, 1, VELA_CFG_MAX_HEADS,
                    &c->num_attention_heads, e);
    if (rc) return rc;
    /* transformers: num_key_value_heads None means multi-head attention (= heads). */
    c->num_key_value_heads = c->num_attention_heads;
    rc = ju_i32(t, "num_key_value_heads", JU_OPTIONAL, 1, VELA_CFG_MAX_HEADS,
                &c->num_key_value_heads, e);
    c->head_dim = c->hidden_size / c->num_attention_heads;
    if (!rc) rc = ju_i32(t, "head_dim", JU_OPTIONAL, 1, VELA_CFG_MAX_HEAD_DIM, &c->head_dim, e);
    c->max_position_embeddings = 32768;
    if (!rc)
        rc = ju_i32(t, "max_position_embeddings", JU_OPTIONAL, 1, VELA_CFG_MAX_POSITIONS,
                    &c->max_position_embeddings, e);
    /* Class defaults: 1e-5 for the VL text configs, 1e-6 for Qwen2Config (spec §1.3). */
    c->rms_norm_eps = c->arch == ARCH_QWEN2 ? 1e-6 : 1e-5;
    if (!rc) rc = ju_num(t, "rms_norm_eps", JU_OPTIONAL, 1e-12, 1.0, &c->rms_norm_eps, e);
    const char *act = NULL;
    if (!rc) rc = ju_str(t, "hidden_act", JU_OPTIONAL, &act, e);
    if (!rc && act && strcmp(act, "silu") != 0)
        rc = err_set(e, VELA_EUNSUP, "field 'hidden_act': '%.32s' not supported (silu)", act);
    bool sliding = false;
    if (!rc) rc = ju_bool(t, "use_sliding_window", JU_OPTIONAL, &sliding, e);
    if (!rc && sliding)
        rc = err_set(e, VELA_EUNSUP,
                     "field 'use_sliding_window': sliding-window attention "
                     "is not supported");
    if (rc) return text ? err_wrap(e, "text_config") : rc;
    /* The composite model's own flag wins over the text config's (v5 writes both). */
    const json_t *tie_src[2] = {root, text};
    c->tie_word_embeddings = false;
    rc = ju_bool(first_with(tie_src, 2, "tie_word_embeddings"), "tie_word_embeddings", JU_OPTIONAL,
                 &c->tie_word_embeddings, e);
    if (rc) return rc;
    const json_t *rope_src[2] = {text, root};
    return parse_rope(c, text ? rope_src : rope_src + 1, text ? 2 : 1, e);
}

static int parse_dtype(struct model_config *c, const json_t *root, const json_t *text,
                       struct err *e) {
    const json_t *src[4] = {root, root, text, text};
    const char *keys[4] = {"torch_dtype", "dtype", "torch_dtype", "dtype"};
    copy_str(c->torch_dtype, sizeof c->torch_dtype, "bfloat16");
    for (int i = 0; i < 4; i++) {
        const char *s = NULL;
        if (!src[i]) continue;
        int rc = ju_str(src[i], keys[i], JU_OPTIONAL, &s, e);
        if (rc) return rc;
        if (!s) continue;
        if (strcmp(s, "bfloat16") != 0 && strcmp(s, "float16") != 0 && strcmp(s, "float32") != 0)
            return err_set(e, VELA_EUNSUP, "field '%s': dtype '%.32s' not supported", keys[i], s);
        copy_str(c->torch_dtype, sizeof c->torch_dtype, s);
        break;
    }
    return 0;
}

/* Special ids: top level first (where the VL configs keep them), then text_config. */
static int parse_special(struct model_config *c, const json_t *root, const json_t *text,
                         struct err *e) {
    const json_t *src[2] = {root, text};
    int n = text ? 2 : 1;
    struct {
        const char *key;
        int32_t *dst;
    } ids[] = {
        {"bos_token_id", &c->bos_token_id},
        {"pad_token_id", &c->pad_token_id},
        {"image_token_id", &c->image_token_id},
        {"video_token_id", &c->video_token_id},
        {"vision_start_token_id", &c->vision_start_token_id},
        {"vision_end_token_id", &c->vision_end_token_id},
        {"vision_token_id", &c->vision_token_id},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        *ids[i].dst = -1;
        int rc = ju_i32(first_with(src, n, ids[i].key), ids[i].key, JU_OPTIONAL, 0,
                        VELA_CFG_MAX_VOCAB - 1, ids[i].dst, e);
        if (rc) return rc;
    }
    int n_eos = 0;
    int rc = ju_i32_array(first_with(src, n, "eos_token_id"), "eos_token_id", JU_OPTIONAL, 0,
                          VELA_CFG_MAX_VOCAB - 1, c->eos_token_ids,
                          (int)(sizeof c->eos_token_ids / sizeof c->eos_token_ids[0]), &n_eos, e);
    c->n_eos_token_ids = n_eos;
    return rc;
}

/* Qwen2_5_VLVisionConfig: every absent field takes the class default (spec §1.3 table). */
static int parse_vision_2_5(struct vision_config *v, const json_t *vc, struct err *e) {
    static const int32_t fullatt_default[4] = {7, 15, 23, 31};
    *v = (struct vision_config){.depth = 32,
                                .hidden_size = 3584,
                                .intermediate_size = 3420,
                                .num_heads = 16,
                                .in_chans = 3,
                                .patch_size = 14,
                                .spatial_merge_size = 2,
                                .temporal_patch_size = 2,
                                .tokens_per_second = 4,
                                .window_size = 112,
                                .out_hidden_size = 3584,
                                .n_fullatt = 4};
    memcpy(v->fullatt_block_indexes, fullatt_default, sizeof fullatt_default);
    copy_str(v->hidden_act, sizeof v->hidden_act, "silu");
    if (!vc) return 0;
    int rc = 0;
    if (!rc)
        rc = ju_i32(vc, "intermediate_size", JU_OPTIONAL, 1, VELA_CFG_MAX_INTERMEDIATE,
                    &v->intermediate_size, e);
    if (!rc)
        rc = ju_i32(vc, "tokens_per_second", JU_OPTIONAL, 0, 1000000, &v->tokens_per_second, e);
    if (!rc)
        rc = ju_i32(vc, "window_size", JU_OPTIONAL, 0, VELA_CFG_MAX_WINDOW, &v->window_size, e);
    if (!rc)
        rc = ju_i32(vc, "out_hidden_size", JU_OPTIONAL, 1, VELA_CFG_MAX_HIDDEN, &v->out_hidden_size,
                    e);
    if (!rc && json_object_get(vc, "fullatt_block_indexes")) {
        /* An empty list is legal (every block windowed), which ju_i32_array rejects. */
        const json_t *a = json_object_get(vc, "fullatt_block_indexes");
        if (json_is_array(a) && json_array_size(a) == 0)
            v->n_fullatt = 0;
        else
            rc = ju_i32_array(vc, "fullatt_block_indexes", JU_OPTIONAL, 0, VELA_CFG_MAX_LAYERS,
                              v->fullatt_block_indexes, CFG_MAX_FULLATT, &v->n_fullatt, e);
    }
    return rc;
}

/* Qwen2VLVisionConfig: embed_dim is the ViT width, hidden_size the LM width (the merger's
 * output), MLP width embed_dim * mlp_ratio as int() in Qwen2VisionTransformer; LayerNorm,
 * quick_gelu, no window attention. */
static int parse_vision_2(struct vision_config *v, const json_t *vc, struct err *e) {
    *v = (struct vision_config){.depth = 32,
                                .hidden_size = 1280,
                                .num_heads = 16,
                                .in_chans = 3,
                                .patch_size = 14,
                                .spatial_merge_size = 2,
                                .temporal_patch_size = 2,
                                .out_hidden_size = 3584};
    copy_str(v->hidden_act, sizeof v->hidden_act, "quick_gelu");
    double ratio = 4.0;
    int rc = 0;
    if (vc) {
        if (!rc)
            rc = ju_i32(vc, "embed_dim", JU_OPTIONAL, 1, VELA_CFG_MAX_HIDDEN, &v->hidden_size, e);
        if (!rc)
            rc = ju_i32(vc, "hidden_size", JU_OPTIONAL, 1, VELA_CFG_MAX_HIDDEN, &v->out_hidden_size,
                        e);
        if (!rc) rc = ju_num(vc, "mlp_ratio", JU_OPTIONAL, 1e-3, 1024.0, &ratio, e);
    }
    if (rc) return rc;
    double f = floor((double)v->hidden_size * ratio);
    if (f < 1 || f > VELA_CFG_MAX_INTERMEDIATE)
        return err_set(e, VELA_EINVAL,
                       "field 'mlp_ratio': embed_dim * mlp_ratio = %g is outside "
                       "[1, %d]",
                       f, VELA_CFG_MAX_INTERMEDIATE);
    v->intermediate_size = (int32_t)f;
    return 0;
}

/* The fields both vision configs share; "in_chans" (original) or "in_channels" (re-saved). */
static int parse_vision_common(struct vision_config *v, const json_t *vc, struct err *e) {
    int rc = 0;
    if (!rc) rc = ju_i32(vc, "depth", JU_OPTIONAL, 1, VELA_CFG_MAX_LAYERS, &v->depth, e);
    if (!rc) rc = ju_i32(vc, "num_heads", JU_OPTIONAL, 1, VELA_CFG_MAX_HEADS, &v->num_heads, e);
    if (!rc) rc = ju_i32(vc, "in_chans", JU_OPTIONAL, 1, VELA_CFG_MAX_IN_CHANS, &v->in_chans, e);
    if (!rc && !json_object_get(vc, "in_chans"))
        rc = ju_i32(vc, "in_channels", JU_OPTIONAL, 1, VELA_CFG_MAX_IN_CHANS, &v->in_chans, e);
    if (!rc) rc = ju_i32(vc, "patch_size", JU_OPTIONAL, 1, VELA_CFG_MAX_PATCH, &v->patch_size, e);
    if (!rc)
        rc = ju_i32(vc, "spatial_merge_size", JU_OPTIONAL, 1, VELA_CFG_MAX_MERGE,
                    &v->spatial_merge_size, e);
    if (!rc)
        rc = ju_i32(vc, "temporal_patch_size", JU_OPTIONAL, 1, VELA_CFG_MAX_PATCH,
                    &v->temporal_patch_size, e);
    const char *act = NULL;
    if (!rc) rc = ju_str(vc, "hidden_act", JU_OPTIONAL, &act, e);
    if (!rc && act) {
        if (strcmp(act, "silu") != 0 && strcmp(act, "quick_gelu") != 0 &&
            strcmp(act, "gelu") != 0 && strcmp(act, "gelu_pytorch_tanh") != 0)
            return err_set(e, VELA_EUNSUP, "field 'hidden_act': '%.32s' not supported", act);
        copy_str(v->hidden_act, sizeof v->hidden_act, act);
    }
    return rc;
}

static int parse_vision(struct model_config *c, const json_t *vc, struct err *e) {
    struct vision_config *v = &c->vision;
    int rc = 0;
    if (c->arch == ARCH_QWEN2_VL) {
        rc = parse_vision_2(v, vc, e);
    } else {
        rc = parse_vision_2_5(v, vc, e);
        if (!rc && vc)
            rc = ju_i32(vc, "hidden_size", JU_OPTIONAL, 1, VELA_CFG_MAX_HIDDEN, &v->hidden_size, e);
    }
    if (!rc && vc) rc = parse_vision_common(v, vc, e);
    return rc ? err_wrap(e, "vision_config") : 0;
}

int cfg_parse(struct model_config *out, const char *json, size_t len, const char *what,
              struct err *e) {
    struct model_config c;
    memset(&c, 0, sizeof c);
    json_t *root = NULL;
    int rc = ju_load_buf(json, len, what, &root, e);
    if (rc) return rc;
    const json_t *text = NULL, *vc = NULL;
    rc = parse_arch(&c, root, e);
    if (!rc) rc = ju_obj(root, "text_config", JU_OPTIONAL, &text, e);
    if (!rc) rc = parse_text(&c, root, text, e);
    if (!rc) rc = parse_dtype(&c, root, text, e);
    if (!rc) rc = parse_special(&c, root, text, e);
    if (!rc && c.has_vision) rc = ju_obj(root, "vision_config", JU_OPTIONAL, &vc, e);
    if (!rc && c.has_vision) rc = parse_vision(&c, vc, e);
    if (!rc) rc = cfg_validate(&c, e);
    json_decref(root);
    if (rc) return err_wrap(e, "%s", what);
    memcpy(out, &c, sizeof c);
    return 0;
}

int cfg_load(struct model_config *out, const char *dir, struct err *e) {
    char path[4096];
    int rc = path_join(path, sizeof path, dir, "config.json", e);
    if (rc) return rc;
    char *buf = NULL;
    size_t len = 0;
    rc = file_read_all(path, VELA_CONFIG_MAX_BYTES, &buf, &len, e);
    if (rc) return rc;
    rc = cfg_parse(out, buf, len, path, e);
    free(buf);
    return rc;
}

static int check_vision(const struct model_config *c, struct err *e) {
    const struct vision_config *v = &c->vision;
    if (v->num_heads <= 0 || v->hidden_size % v->num_heads != 0)
        return err_set(e, VELA_EINVAL,
                       "field 'vision_config.num_heads' = %d does not divide hidden_size %d",
                       v->num_heads, v->hidden_size);
    if ((v->hidden_size / v->num_heads) % 2 != 0)
        return err_set(e, VELA_EINVAL, "vision head_dim %d must be even (2-D rotary pairs)",
                       v->hidden_size / v->num_heads);
    if (v->out_hidden_size != c->hidden_size)
        return err_set(e, VELA_EINVAL,
                       "field 'vision_config.out_hidden_size' = %d differs from hidden_size %d",
                       v->out_hidden_size, c->hidden_size);
    for (int i = 0; i < v->n_fullatt; i++)
        if (v->fullatt_block_indexes[i] < 0 || v->fullatt_block_indexes[i] >= v->depth)
            return err_set(e, VELA_EINVAL,
                           "field 'vision_config.fullatt_block_indexes'[%d] = %d is outside "
                           "[0, depth %d)",
                           i, v->fullatt_block_indexes[i], v->depth);
    return 0;
}

int cfg_validate(const struct model_config *c, struct err *e) {
    if (c->hidden_size <= 0 || c->hidden_size > VELA_CFG_MAX_HIDDEN)
        return err_set(e, VELA_EINVAL, "field 'hidden_size' = %d is outside [1, %d]",
                       c->hidden_size, VELA_CFG_MAX_HIDDEN);
    if (c->num_attention_heads <= 0 || c->num_attention_heads > VELA_CFG_MAX_HEADS)
        return err_set(e, VELA_EINVAL, "field 'num_attention_heads' = %d is outside [1, %d]",
                       c->num_attention_heads, VELA_CFG_MAX_HEADS);
    if (c->hidden_size % c->num_attention_heads != 0)
        return err_set(e, VELA_EINVAL,
                       "field 'hidden_size' = %d is not divisible by num_attention_heads %d",
                       c->hidden_size, c->num_attention_heads);
    if (c->num_key_value_heads <= 0 || c->num_attention_heads % c->num_key_value_heads != 0)
        return err_set(e, VELA_EINVAL,
                       "field 'num_key_value_heads' = %d does not divide num_attention_heads %d",
                       c->num_key_value_heads, c->num_attention_heads);
    if (c->head_dim <= 0 || c->head_dim > VELA_CFG_MAX_HEAD_DIM || c->head_dim % 2 != 0)
        return err_set(e, VELA_EINVAL, "field 'head_dim' = %d must be even and in [2, %d]",
                       c->head_dim, VELA_CFG_MAX_HEAD_DIM);
    if (c->vocab_size <= 0 || c->intermediate_size <= 0 || c->num_hidden_layers <= 0 ||
        c->max_position_embeddings <= 0)
        return err_set(e, VELA_EINVAL,
                       "vocab_size, intermediate_size, num_hidden_layers and "
                       "max_position_embeddings must be positive");
    if (!(c->rope_theta > 0) || !(c->rms_norm_eps > 0) || !isfinite(c->rope_theta))
        return err_set(e, VELA_EINVAL, "fields 'rope_theta' and 'rms_norm_eps' must be positive");
    if (c->has_mrope) {
        int64_t sum = 0;
        for (int i = 0; i < 3; i++) {
            if (c->mrope_section[i] < 0)
                return err_set(e, VELA_EINVAL, "field 'mrope_section'[%d] is negative", i);
            sum += c->mrope_section[i];
        }
        if (sum != c->head_dim / 2)
            return err_set(e, VELA_EINVAL,
                           "field 'mrope_section' sums to %lld, expected head_dim/2 = %d",
                           (long long)sum, c->head_dim / 2);
    }
    if (c->has_vision) return check_vision(c, e);
    return 0;
}
