/* config_files: generation_config.json and preprocessor_config.json -> gen_config /
 * preproc_config. A missing file keeps the defaults (present = false); a malformed one is an
 * error naming the file and field.
 *
 * Invariants:
 *   1. *out is written only on success; defaults come from *_defaults() first.
 *   2. min_pixels/max_pixels override "size" {shortest_edge, longest_edge}, as in
 *      Qwen2VLImageProcessor.__init__; the result satisfies 1 <= min <= max <= limit.
 * Any thread; no state. */
#include "model/config.h"

#include "util/file.h"
#include "util/json.h"
#include "util/limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gen_config_defaults(struct gen_config *g) {
    memset(g, 0, sizeof *g);
    g->bos_token_id = -1;
    g->pad_token_id = -1;
    g->temperature = 1.0;
    g->top_p = 1.0;
    g->repetition_penalty = 1.0;
}

void preproc_config_defaults(struct preproc_config *p) {
    memset(p, 0, sizeof *p);
    p->min_pixels = 3136;
    p->max_pixels = 12845056;
    p->patch_size = 14;
    p->temporal_patch_size = 2;
    p->merge_size = 2;
    /* OPENAI_CLIP_MEAN / OPENAI_CLIP_STD (transformers image_utils). */
    p->image_mean[0] = 0.48145466f;
    p->image_mean[1] = 0.4578275f;
    p->image_mean[2] = 0.40821073f;
    p->image_std[0] = 0.26862954f;
    p->image_std[1] = 0.26130258f;
    p->image_std[2] = 0.27577711f;
    p->do_resize = p->do_rescale = p->do_normalize = p->do_convert_rgb = true;
    p->rescale_factor = 1.0 / 255.0;
}

/* Reads DIR/NAME; *buf is NULL (and 0 returned) when the file does not exist. */
static int read_optional(const char *dir, const char *name, char *path, size_t cap, char **buf,
                         size_t *len, struct err *e) {
    *buf = NULL;
    int rc = path_join(path, cap, dir, name, e);
    if (rc) return rc;
    if (!file_exists(path)) return 0;
    return file_read_all(path, VELA_CONFIG_MAX_BYTES, buf, len, e);
}

static int gen_fields(struct gen_config *g, const json_t *root, struct err *e) {
    int rc = 0;
    int n = 0;
    if (!rc)
        rc = ju_i32(root, "bos_token_id", JU_OPTIONAL, 0, VELA_CFG_MAX_VOCAB - 1, &g->bos_token_id,
                    e);
    if (!rc)
        rc = ju_i32(root, "pad_token_id", JU_OPTIONAL, 0, VELA_CFG_MAX_VOCAB - 1, &g->pad_token_id,
                    e);
    if (!rc)
        rc = ju_i32_array(root, "eos_token_id", JU_OPTIONAL, 0, VELA_CFG_MAX_VOCAB - 1,
                          g->eos_token_ids,
                          (int)(sizeof g->eos_token_ids / sizeof g->eos_token_ids[0]), &n, e);
    g->n_eos_token_ids = n;
    if (!rc) rc = ju_bool(root, "do_sample", JU_OPTIONAL, &g->do_sample, e);
    if (!rc) rc = ju_num(root, "temperature", JU_OPTIONAL, 0.0, 100.0, &g->temperature, e);
    if (!rc) rc = ju_num(root, "top_p", JU_OPTIONAL, 0.0, 1.0, &g->top_p, e);
    if (!rc) rc = ju_i32(root, "top_k", JU_OPTIONAL, 0, VELA_CFG_MAX_VOCAB, &g->top_k, e);
    if (!rc)
        rc =
            ju_num(root, "repetition_penalty", JU_OPTIONAL, 1e-6, 100.0, &g->repetition_penalty, e);
    return rc;
}

int gen_config_parse(struct gen_config *out, const char *json, size_t len, const char *what,
                     struct err *e) {
    struct gen_config g;
    gen_config_defaults(&g);
    json_t *root = NULL;
    int rc = ju_load_buf(json, len, what, &root, e);
    if (rc) return rc;
    rc = gen_fields(&g, root, e);
    json_decref(root);
    if (rc) return err_wrap(e, "%s", what);
    g.present = true;
    *out = g;
    return 0;
}

int gen_config_load(struct gen_config *out, const char *dir, struct err *e) {
    char path[4096];
    char *buf = NULL;
    size_t len = 0;
    int rc = read_optional(dir, "generation_config.json", path, sizeof path, &buf, &len, e);
    if (rc) return rc;
    if (!buf) {
        gen_config_defaults(out);
        return 0;
    }
    rc = gen_config_parse(out, buf, len, path, e);
    free(buf);
    return rc;
}

/* A 3-float array (image_mean / image_std); a bare number means the same for each channel. */
static int float3(const json_t *root, const char *key, bool positive, float *out, struct err *e) {
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    double x[3];
    if (json_is_number(v)) {
        x[0] = x[1] = x[2] = json_number_value(v);
    } else if (json_is_array(v) && json_array_size(v) == 3) {
        for (size_t i = 0; i < 3; i++) {
            const json_t *it = json_array_get(v, i);
            if (!json_is_number(it))
                return err_set(e, VELA_EINVAL, "field '%s'[%zu] must be a number", key, i);
            x[i] = json_number_value(it);
        }
    } else {
        return err_set(e, VELA_EINVAL, "field '%s' must be an array of 3 numbers", key);
    }
    for (int i = 0; i < 3; i++) {
        if (!(x[i] >= -1e6 && x[i] <= 1e6) || (positive && !(x[i] > 1e-12)))
            return err_set(e, VELA_EINVAL, "field '%s'[%d] = %g is out of range", key, i, x[i]);
        out[i] = (float)x[i];
    }
    return 0;
}

static int preproc_pixels(struct preproc_config *p, const json_t *root, struct err *e) {
    const json_t *size = NULL;
    int rc = ju_obj(root, "size", JU_OPTIONAL, &size, e);
    if (!rc && size && json_object_get(size, "shortest_edge")) {
        rc = ju_int(size, "shortest_edge", JU_REQUIRED, 1, VELA_CFG_MAX_PIXELS, &p->min_pixels, e);
        if (!rc)
            rc = ju_int(size, "longest_edge", JU_REQUIRED, 1, VELA_CFG_MAX_PIXELS, &p->max_pixels,
                        e);
        if (rc) return err_wrap(e, "size");
    }
    if (!rc)
        rc = ju_int(root, "min_pixels", JU_OPTIONAL, 1, VELA_CFG_MAX_PIXELS, &p->min_pixels, e);
    if (!rc)
        rc = ju_int(root, "max_pixels", JU_OPTIONAL, 1, VELA_CFG_MAX_PIXELS, &p->max_pixels, e);
    if (!rc && p->min_pixels > p->max_pixels)
        rc = err_set(e, VELA_EINVAL, "field 'min_pixels' = %lld exceeds max_pixels %lld",
                     (long long)p->min_pixels, (long long)p->max_pixels);
    return rc;
}

static int preproc_fields(struct preproc_config *p, const json_t *root, struct err *e) {
    int rc = preproc_pixels(p, root, e);
    if (!rc) rc = ju_i32(root, "patch_size", JU_OPTIONAL, 1, VELA_CFG_MAX_PATCH, &p->patch_size, e);
    if (!rc)
        rc = ju_i32(root, "temporal_patch_size", JU_OPTIONAL, 1, VELA_CFG_MAX_PATCH,
                    &p->temporal_patch_size, e);
    if (!rc) rc = ju_i32(root, "merge_size", JU_OPTIONAL, 1, VELA_CFG_MAX_MERGE, &p->merge_size, e);
    if (!rc) rc = float3(root, "image_mean", false, p->image_mean, e);
    if (!rc) rc = float3(root, "image_std", true, p->image_std, e);
    if (!rc) rc = ju_bool(root, "do_resize", JU_OPTIONAL, &p->do_resize, e);
    if (!rc) rc = ju_bool(root, "do_rescale", JU_OPTIONAL, &p->do_rescale, e);
    if (!rc) rc = ju_bool(root, "do_normalize", JU_OPTIONAL, &p->do_normalize, e);
    if (!rc) rc = ju_bool(root, "do_convert_rgb", JU_OPTIONAL, &p->do_convert_rgb, e);
    if (!rc) rc = ju_num(root, "rescale_factor", JU_OPTIONAL, 1e-12, 1e6, &p->rescale_factor, e);
    return rc;
}

int preproc_config_parse(struct preproc_config *out, const char *json, size_t len, const char *what,
                         struct err *e) {
    struct preproc_config p;
    preproc_config_defaults(&p);
    json_t *root = NULL;
    int rc = ju_load_buf(json, len, what, &root, e);
    if (rc) return rc;
    rc = preproc_fields(&p, root, e);
    json_decref(root);
    if (rc) return err_wrap(e, "%s", what);
    p.present = true;
    *out = p;
    return 0;
}

int preproc_config_load(struct preproc_config *out, const char *dir, struct err *e) {
    char path[4096];
    char *buf = NULL;
    size_t len = 0;
    int rc = read_optional(dir, "preprocessor_config.json", path, sizeof path, &buf, &len, e);
    if (rc) return rc;
    if (!buf) {
        preproc_config_defaults(out);
        return 0;
    }
    rc = preproc_config_parse(out, buf, len, path, e);
    free(buf);
    return rc;
}
