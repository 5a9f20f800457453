/* config_json: struct model_config -> config.json in the original flat Qwen layout (spec
 * §1.3 layout 1), for the model generator.
 *
 * Invariants:
 *   1. cfg_parse(cfg_to_json(c)) gives a struct equal to c (byte for byte) for every c that
 *      cfg_validate() accepts: every field is written, head_dim only when it is not
 *      hidden/heads, doubles with the 17 significant digits jansson uses.
 *   2. The vision_config is written in full (never as a diff), in the spelling of the
 *      architecture: Qwen2-VL's embed_dim / mlp_ratio / hidden_size (= LM width).
 * Any thread; no state. */
#include "model/config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* json_object_set_new that records a failed allocation in *bad instead of branching at
 * each call site. */
static void put(json_t *o, const char *key, json_t *v, bool *bad) {
    if (!v || json_object_set_new(o, key, v) != 0) *bad = true;
}

static json_t *int_array(const int32_t *a, int n) {
    json_t *arr = json_array();
    for (int i = 0; arr && i < n; i++) {
        if (json_array_append_new(arr, json_integer(a[i])) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *vision_json(const struct model_config *c, bool *bad, struct err *e) {
    const struct vision_config *v = &c->vision;
    json_t *o = json_object();
    if (!o) {
        *bad = true;
        return NULL;
    }
    put(o, "depth", json_integer(v->depth), bad);
    put(o, "hidden_act", json_string(v->hidden_act), bad);
    if (c->arch == ARCH_QWEN2_VL) {
        if (v->intermediate_size % v->hidden_size != 0) {
            err_set(e, VELA_EINVAL,
                    "Qwen2-VL vision intermediate_size %d is not a multiple of "
                    "embed_dim %d (mlp_ratio must be whole)",
                    v->intermediate_size, v->hidden_size);
            json_decref(o);
            return NULL;
        }
        put(o, "embed_dim", json_integer(v->hidden_size), bad);
        put(o, "hidden_size", json_integer(v->out_hidden_size), bad);
        put(o, "mlp_ratio", json_integer(v->intermediate_size / v->hidden_size), bad);
    } else {
        put(o, "hidden_size", json_integer(v->hidden_size), bad);
        put(o, "intermediate_size", json_integer(v->intermediate_size), bad);
        put(o, "out_hidden_size", json_integer(v->out_hidden_size), bad);
        put(o, "window_size", json_integer(v->window_size), bad);
        put(o, "fullatt_block_indexes", int_array(v->fullatt_block_indexes, v->n_fullatt), bad);
        put(o, "tokens_per_second", json_integer(v->tokens_per_second), bad);
    }
    put(o, "num_heads", json_integer(v->num_heads), bad);
    put(o, "in_chans", json_integer(v->in_chans), bad);
    put(o, "patch_size", json_integer(v->patch_size), bad);
    put(o, "spatial_merge_size", json_integer(v->spatial_merge_size), bad);
    put(o, "spatial_patch_size", json_integer(v->patch_size), bad);
    put(o, "temporal_patch_size", json_integer(v->temporal_patch_size), bad);
    return o;
}

static void special_ids(json_t *o, const struct model_config *c, bool *bad) {
    struct {
        const char *key;
        int32_t id;
    } ids[] = {
        {"bos_token_id", c->bos_token_id},
        {"pad_token_id", c->pad_token_id},
        {"vision_start_token_id", c->vision_start_token_id},
        {"vision_end_token_id", c->vision_end_token_id},
        {"vision_token_id", c->vision_token_id},
        {"image_token_id", c->image_token_id},
        {"video_token_id", c->video_token_id},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i].id >= 0) put(o, ids[i].key, json_integer(ids[i].id), bad);
    if (c->n_eos_token_ids == 1)
        put(o, "eos_token_id", json_integer(c->eos_token_ids[0]), bad);
    else if (c->n_eos_token_ids > 1)
        put(o, "eos_token_id", int_array(c->eos_token_ids, c->n_eos_token_ids), bad);
}

static void text_fields(json_t *o, const struct model_config *c, bool *bad) {
    put(o, "hidden_act", json_string("silu"), bad);
    put(o, "hidden_size", json_integer(c->hidden_size), bad);
    put(o, "intermediate_size", json_integer(c->intermediate_size), bad);
    put(o, "max_position_embeddings", json_integer(c->max_position_embeddings), bad);
    put(o, "num_attention_heads", json_integer(c->num_attention_heads), bad);
    put(o, "num_hidden_layers", json_integer(c->num_hidden_layers), bad);
    put(o, "num_key_value_heads", json_integer(c->num_key_value_heads), bad);
    if (c->head_dim != c->hidden_size / c->num_attention_heads)
        put(o, "head_dim", json_integer(c->head_dim), bad);
    put(o, "rms_norm_eps", json_real(c->rms_norm_eps), bad);
    put(o, "rope_theta", json_real(c->rope_theta), bad);
    put(o, "tie_word_embeddings", json_boolean(c->tie_word_embeddings), bad);
    put(o, "torch_dtype", json_string(c->torch_dtype), bad);
    put(o, "use_cache", json_true(), bad);
    put(o, "use_sliding_window", json_false(), bad);
    put(o, "vocab_size", json_integer(c->vocab_size), bad);
}

int cfg_to_json(const struct model_config *c, char **out, struct err *e) {
    *out = NULL;
    int rc = cfg_validate(c, e);
    if (rc) return err_wrap(e, "cfg_to_json");
    bool bad = false;
    json_t *o = json_object();
    if (!o) return err_set(e, VELA_ENOMEM, "cfg_to_json: out of memory");
    json_t *archs = json_array();
    if (!archs || json_array_append_new(archs, json_string(cfg_arch_name(c->arch))) != 0)
        bad = true;
    put(o, "architectures", archs, &bad);
    put(o, "model_type", json_string(c->model_type), &bad);
    special_ids(o, c, &bad);
    text_fields(o, c, &bad);
    if (c->has_mrope) {
        json_t *rs = json_object();
        if (rs) {
            put(rs, "type", json_string("mrope"), &bad);
            put(rs, "mrope_section", int_array(c->mrope_section, 3), &bad);
        }
        put(o, "rope_scaling", rs, &bad);
    }
    if (c->has_vision) {
        struct err ve = {0};
        json_t *v = vision_json(c, &bad, &ve);
        if (!v && ve.code) {
            json_decref(o);
            *e = ve;
            return ve.code;
        }
        put(o, "vision_config", v, &bad);
    }
    char *s =
        bad ? NULL : json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (!s) return err_set(e, VELA_ENOMEM, "cfg_to_json: out of memory");
    *out = s;
    return 0;
}
