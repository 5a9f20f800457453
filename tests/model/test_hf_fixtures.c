/* Loader test over checkpoints written by Hugging Face transformers itself.
 *
 * tests/fixtures/hf/<fixture>/ holds a tiny random-weight model saved by save_pretrained
 * (tools/make_hf_fixtures.py) and expected.json, computed on the Python side from the saved
 * files. For each fixture this test reads config.json with cfg_load, the weights with
 * st_model_open, derives the expected tensor list with params_tensors / params_count, and
 * checks them against expected.json and against each other:
 *   1. config values equal the Python config's (text, M-RoPE, special ids, vision tower);
 *   2. every tensor of expected.json is in the checkpoint with its dtype, shape, shard
 *      grouping and values (float64 sum, sum of |x| and the first four values);
 *   3. every tensor params_tensors implies is stored, under the legacy or the new name
 *      (spec §2.2), with the same shape, and nothing else is stored; parameter counts from
 *      the tensors == expected.json == params_count;
 *   4. weights_load (weights.h) resolves every tensor under its stored name, finds nothing
 *      unexpected, and hands out BF16 data equal to the file's values;
 * and across fixtures: the F32 copy converts to BF16 bit for bit equal to the BF16 one (its
 * values are BF16 values), the sharded and new-name copies hold the same bytes, the loader
 * hands out the same BF16 weights for all four, and broken copies of the sharded folder (a
 * missing shard, an index naming the wrong shard) fail to open. */
#include "t.h"
#include "model/config.h"
#include "model/params.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "util/bf16.h"
#include "util/err.h"
#include "util/file.h"
#include "util/json.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>

#define HFX_DIR                "tests/fixtures/hf"
#define HFX_EXPECTED_MAX_BYTES (4u << 20)
#define HFX_PATH_MAX           4096 /* t_src / t_tmpdir buffers */

static const char *const hfx_names[] = {
    "qwen2_5_vl_bf16",     "qwen2_5_vl_f32", "qwen2_5_vl_sharded",
    "qwen2_5_vl_newnames", "qwen2_vl_bf16",  "qwen2_tied_bf16",
};
#define HFX_N (sizeof hfx_names / sizeof hfx_names[0])

/* One opened fixture: the folder, its expected.json, the parsed config and the weights. */
struct hfx {
    const char *name;
    char dir[HFX_PATH_MAX];
    json_t *exp;       /* owned: expected.json */
    const json_t *cfg; /* borrowed from exp: its "config" object */
    struct model_config c;
    struct st_model *m; /* owned; NULL when the open failed */
};

static void hfx_close(struct hfx *f) {
    json_decref(f->exp);
    st_model_close(f->m);
    f->exp = NULL;
    f->m = NULL;
}

/* Opens everything; a failure is a test failure and leaves the parts that did open. */
static int hfx_open(struct hfx *f, const char *name) {
    struct err e = {0};
    memset(f, 0, sizeof *f);
    f->name = name;
    char path[HFX_PATH_MAX];
    int rc = path_join(f->dir, sizeof f->dir, t_src(HFX_DIR), name, &e);
    if (rc == 0) rc = path_join(path, sizeof path, f->dir, "expected.json", &e);
    if (rc == 0) rc = ju_load_file(path, HFX_EXPECTED_MAX_BYTES, &f->exp, &e);
    T_RC(rc, &e);
    if (rc != 0) return rc;
    rc = ju_obj(f->exp, "config", JU_REQUIRED, &f->cfg, &e);
    T_RC(rc, &e);
    if (rc != 0) return rc;
    rc = cfg_load(&f->c, f->dir, &e);
    T_RC(rc, &e);
    if (rc != 0) return rc;
    rc = st_model_open(&f->m, f->dir, &e);
    T_RC(rc, &e);
    return rc;
}

/* An integer of expected.json; null or absent reads as `dflt` (Python's None). */
static int64_t hfx_int(const json_t *o, const char *key, int64_t dflt) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return dflt;
    T_CHECK_(json_is_integer(v), "expected.json: '%s' is not an integer", key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static const char *hfx_str(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    T_CHECK_(json_is_string(v), "expected.json: '%s' is not a string", key);
    return json_is_string(v) ? json_string_value(v) : "";
}

static double hfx_num(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    T_CHECK_(json_is_number(v), "expected.json: '%s' is not a number", key);
    return json_is_number(v) ? json_number_value(v) : 0.0;
}

/* Checks an int32 array of the config against a JSON array (null = no elements). */
static void hfx_check_ids(const char *what, const json_t *arr, const int32_t *got, int n_got) {
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    T_CHECK_((size_t)n_got == n, "%s: %d values, expected %zu", what, n_got, n);
    for (size_t i = 0; i < n && i < (size_t)n_got; i++) {
        int64_t want = (int64_t)json_integer_value(json_array_get(arr, i));
        T_CHECK_(got[i] == want, "%s[%zu]: %d, expected %" PRId64, what, i, got[i], want);
    }
}

static void hfx_check_vision(const struct hfx *f, const json_t *v) {
    const struct vision_config *vc = &f->c.vision;
    T_OK(f->c.has_vision);
    T_EQ(vc->depth, hfx_int(v, "depth", -1));
    T_EQ(vc->hidden_size, hfx_int(v, "hidden_size", -1));
    T_EQ(vc->num_heads, hfx_int(v, "num_heads", -1));
    T_EQ(vc->intermediate_size, hfx_int(v, "intermediate_size", -1));
    T_EQ(vc->out_hidden_size, hfx_int(v, "out_hidden_size", -1));
    T_EQ(vc->in_chans, hfx_int(v, "in_chans", -1));
    T_EQ(vc->patch_size, hfx_int(v, "patch_size", -1));
    T_EQ(vc->spatial_merge_size, hfx_int(v, "spatial_merge_size", -1));
    T_EQ(vc->temporal_patch_size, hfx_int(v, "temporal_patch_size", -1));
    T_EQ(vc->window_size, hfx_int(v, "window_size", -1));
    T_EQ(vc->tokens_per_second, hfx_int(v, "tokens_per_second", 0)); /* Qwen2-VL: 0 */
    T_STREQ(vc->hidden_act, hfx_str(v, "hidden_act"));
    hfx_check_ids("fullatt_block_indexes", json_object_get(v, "fullatt_block_indexes"),
                  vc->fullatt_block_indexes, vc->n_fullatt);
}

/* 1. config.json as cfg_load reads it == the Python config. */
static void hfx_check_config(const struct hfx *f) {
    const struct model_config *c = &f->c;
    const json_t *x = f->cfg;
    T_STREQ(c->architecture, hfx_str(x, "architecture"));
    T_STREQ(cfg_arch_name(c->arch), hfx_str(x, "architecture"));
    T_STREQ(c->model_type, hfx_str(x, "model_type"));
    T_STREQ(c->torch_dtype, hfx_str(x, "dtype"));
    T_EQ(c->vocab_size, hfx_int(x, "vocab_size", -1));
    T_EQ(c->hidden_size, hfx_int(x, "hidden_size", -1));
    T_EQ(c->intermediate_size, hfx_int(x, "intermediate_size", -1));
    T_EQ(c->num_hidden_layers, hfx_int(x, "num_hidden_layers", -1));
    T_EQ(c->num_attention_heads, hfx_int(x, "num_attention_heads", -1));
    T_EQ(c->num_key_value_heads, hfx_int(x, "num_key_value_heads", -1));
    T_EQ(c->head_dim, hfx_int(x, "head_dim", -1));
    T_EQ(c->max_position_embeddings, hfx_int(x, "max_position_embeddings", -1));
    T_NEAR(c->rope_theta, hfx_num(x, "rope_theta"), 0.0);
    T_NEAR(c->rms_norm_eps, hfx_num(x, "rms_norm_eps"), 0.0);
    T_EQ(c->tie_word_embeddings, json_is_true(json_object_get(x, "tie_word_embeddings")));
    const json_t *ms = json_object_get(x, "mrope_section");
    T_EQ(c->has_mrope, json_is_array(ms));
    if (json_is_array(ms)) hfx_check_ids("mrope_section", ms, c->mrope_section, 3);
    T_EQ(c->bos_token_id, hfx_int(x, "bos_token_id", -1));
    T_EQ(c->pad_token_id, hfx_int(x, "pad_token_id", -1));
    hfx_check_ids("eos_token_ids", json_object_get(x, "eos_token_ids"), c->eos_token_ids,
                  c->n_eos_token_ids);
    T_EQ(c->image_token_id, hfx_int(x, "image_token_id", -1));
    T_EQ(c->video_token_id, hfx_int(x, "video_token_id", -1));
    T_EQ(c->vision_start_token_id, hfx_int(x, "vision_start_token_id", -1));
    T_EQ(c->vision_end_token_id, hfx_int(x, "vision_end_token_id", -1));
    T_EQ(c->vision_token_id, hfx_int(x, "vision_token_id", -1));
    const json_t *v = json_object_get(x, "vision");
    if (json_is_object(v))
        hfx_check_vision(f, v);
    else
        T_OK(!c->has_vision);

    /* generation_config.json as save_pretrained writes it (_from_model_config) */
    struct gen_config g;
    struct err e = {0};
    T_RC(gen_config_load(&g, f->dir, &e), &e);
    T_OK(g.present);
    T_EQ(g.bos_token_id, c->bos_token_id);
    T_EQ(g.pad_token_id, c->pad_token_id);
    T_EQ(g.n_eos_token_ids, c->n_eos_token_ids);
    if (g.n_eos_token_ids > 0 && c->n_eos_token_ids > 0)
        T_EQ(g.eos_token_ids[0], c->eos_token_ids[0]);
}

/* Element i of a stored tensor as a double (unaligned-safe). */
static double hfx_elem(const struct st_tensor *t, int64_t i) {
    const unsigned char *p = t->data;
    uint16_t h;
    float x;
    switch (t->dtype) {
        case ST_BF16:
            memcpy(&h, p + 2 * i, 2);
            return bf16_to_f32(h);
        case ST_F16:
            memcpy(&h, p + 2 * i, 2);
            return f16_to_f32(h);
        case ST_F32:
            memcpy(&x, p + 4 * i, 4);
            return x;
        default:
            return NAN;
    }
}

/* The values of t against the tensor record of expected.json. */
static void hfx_check_values(const struct st_tensor *t, const json_t *xt) {
    double sum = 0, sum_abs = 0;
    for (int64_t i = 0; i < t->n_elems; i++) {
        double v = hfx_elem(t, i);
        sum += v;
        sum_abs += fabs(v);
    }
    /* Python summed the same values in float64 in another order: only rounding differs. */
    double want_abs = hfx_num(xt, "sum_abs");
    double tol = 1e-9 * (1.0 + want_abs);
    T_CHECK_(fabs(sum - hfx_num(xt, "sum")) <= tol, "%s: sum %.17g, expected %.17g", t->name, sum,
             hfx_num(xt, "sum"));
    T_CHECK_(fabs(sum_abs - want_abs) <= tol, "%s: sum_abs %.17g, expected %.17g", t->name, sum_abs,
             want_abs);
    const json_t *head = json_object_get(xt, "head");
    for (size_t i = 0; i < json_array_size(head) && (int64_t)i < t->n_elems; i++) {
        double want = json_number_value(json_array_get(head, i));
        double got = hfx_elem(t, (int64_t)i);
        T_CHECK_(got == want, "%s[%zu]: %.9g, expected %.9g", t->name, i, got, want);
    }
}

/* 2. Every tensor of expected.json: present, dtype, shape, shard grouping, values. */
static void hfx_check_tensors(const struct hfx *f) {
    const json_t *list = json_object_get(f->exp, "tensors");
    const json_t *files = json_object_get(f->exp, "files");
    T_OK(json_is_array(list) && json_is_array(files));
    size_t n_files = json_array_size(files);
    T_EQ(st_model_count(f->m), hfx_int(f->exp, "n_tensors", -1));
    T_EQ(json_array_size(list), hfx_int(f->exp, "n_tensors", -1));
    T_EQ(st_model_shard_count(f->m), n_files);
    /* the loader numbers shards its own way: expected shard k must map to one loader shard */
    int32_t shard_map[16];
    for (size_t k = 0; k < 16; k++) shard_map[k] = -1;
    int64_t n_params = 0;
    uint64_t n_bytes = 0;
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *xt = json_array_get(list, i);
        const char *name = hfx_str(xt, "name");
        const struct st_tensor *t = st_model_find(f->m, name);
        T_CHECK_(t != NULL, "%s: tensor %s missing", f->name, name);
        if (!t) continue;
        T_STREQ(st_dtype_name(t->dtype), hfx_str(xt, "dtype"));
        const json_t *shape = json_object_get(xt, "shape");
        T_CHECK_(t->n_dims == (int32_t)json_array_size(shape), "%s: %d dims, expected %zu", name,
                 t->n_dims, json_array_size(shape));
        for (int32_t d = 0; d < t->n_dims && d < (int32_t)json_array_size(shape); d++) {
            int64_t want = (int64_t)json_integer_value(json_array_get(shape, (size_t)d));
            T_CHECK_(t->shape[d] == want, "%s: dim %d is %" PRId64 ", expected %" PRId64, name, d,
                     t->shape[d], want);
        }
        int64_t k = hfx_int(xt, "shard", -1);
        T_CHECK_(k >= 0 && (size_t)k < n_files && k < 16, "%s: shard %" PRId64, name, k);
        if (k >= 0 && k < 16) {
            if (shard_map[k] < 0) shard_map[k] = t->shard;
            T_CHECK_(shard_map[k] == t->shard, "%s: in loader shard %d, expected with %d", name,
                     t->shard, shard_map[k]);
        }
        hfx_check_values(t, xt);
        n_params += t->n_elems;
        n_bytes += t->n_bytes;
    }
    for (size_t a = 0; a < n_files && a < 16; a++) /* distinct files stay distinct */
        for (size_t b = a + 1; b < n_files && b < 16; b++) T_OK(shard_map[a] != shard_map[b]);
    T_EQ(n_params, hfx_int(f->exp, "total_params", -1));
    T_EQ(st_model_total_bytes(f->m), n_bytes);
}

/* Legacy (hub) name -> the name transformers' state_dict() uses (spec §2.2). */
static void hfx_new_name(const char *legacy, char *out, size_t cap) {
    if (strncmp(legacy, "visual.", 7) == 0)
        snprintf(out, cap, "model.%s", legacy);
    else if (strncmp(legacy, "model.", 6) == 0)
        snprintf(out, cap, "model.language_model.%s", legacy + 6);
    else
        snprintf(out, cap, "%s", legacy);
}

/* The stored tensor for a legacy name, under either naming. */
static const struct st_tensor *hfx_find_any(const struct st_model *m, const char *legacy) {
    const struct st_tensor *t = st_model_find(m, legacy);
    if (t) return t;
    char alt[VELA_NAME_MAX];
    hfx_new_name(legacy, alt, sizeof alt);
    return st_model_find(m, alt);
}

static int64_t hfx_param_elems(const struct param_tensor *p) {
    int64_t n = 1;
    for (int32_t d = 0; d < p->n_dims; d++) n *= p->shape[d];
    return n;
}

/* 3. What the config implies (params_tensors / params_count) == what is stored. */
static void hfx_check_params(const struct hfx *f) {
    struct param_tensor *pt = NULL;
    int64_t n = 0;
    struct err e = {0};
    int rc = params_tensors(&f->c, &pt, &n, &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    T_EQ(n, st_model_count(f->m));
    int64_t n_params = 0, n_vision = 0;
    for (int64_t i = 0; i < n; i++) {
        const struct param_tensor *p = &pt[i];
        const struct st_tensor *t = hfx_find_any(f->m, p->name);
        T_CHECK_(t != NULL, "%s: implied tensor %s not stored under either name", f->name, p->name);
        n_params += hfx_param_elems(p);
        if (p->vision) n_vision += hfx_param_elems(p);
        T_CHECK_(p->vision == (strncmp(p->name, "visual.", 7) == 0), "%s: vision flag", p->name);
        if (!t) continue;
        T_CHECK_(t->n_dims == p->n_dims, "%s: %d dims stored, config implies %d", p->name,
                 t->n_dims, p->n_dims);
        for (int32_t d = 0; d < p->n_dims && d < t->n_dims; d++)
            T_CHECK_(t->shape[d] == p->shape[d],
                     "%s: dim %d stored %" PRId64 ", config implies %" PRId64, p->name, d,
                     t->shape[d], p->shape[d]);
    }
    /* nothing stored that the config does not imply */
    for (int64_t i = 0; i < st_model_count(f->m); i++) {
        char legacy[VELA_NAME_MAX];
        T_RC(weights_canonical_name(st_model_tensor(f->m, i)->name, legacy, sizeof legacy, &e), &e);
        bool found = false;
        for (int64_t j = 0; j < n && !found; j++) found = strcmp(pt[j].name, legacy) == 0;
        T_CHECK_(found, "%s: stored tensor %s is not implied by the config", f->name,
                 st_model_tensor(f->m, i)->name);
    }
    struct param_counts pc;
    params_count(&f->c, &pc);
    int64_t want = hfx_int(f->exp, "total_params", -1);
    T_EQ(n_params, want);
    T_EQ(pc.total, want);
    T_EQ(pc.n_tensors, n);
    T_EQ(pc.vision_total, n_vision);
    T_EQ(pc.lm_total + pc.vision_total, pc.total);
    T_EQ(pc.lm_head == 0, f->c.tie_word_embeddings);
    free(pt);
}

/* The BF16 value the loader must give element j of a stored tensor. */
static uint16_t hfx_bf16_of(const struct st_tensor *t, int64_t j) {
    uint16_t h;
    float x;
    if (t->dtype == ST_F32) {
        memcpy(&x, (const unsigned char *)t->data + 4 * j, 4);
        return f32_to_bf16(x);
    }
    memcpy(&h, (const unsigned char *)t->data + 2 * j, 2);
    return h;
}

/* 4. weights.h over the checkpoint: every implied tensor resolved under its stored name,
 * nothing unexpected, counts from the tensors, dtypes as saved, and data readable as BF16
 * equal to the file's values (F32 converted with round to nearest even). */
static void hfx_check_weights(const struct hfx *f) {
    struct weights *w = NULL;
    struct err e = {0};
    int rc = weights_load(&w, &f->c, f->m, 0, &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    T_EQ(weights_count(w), st_model_count(f->m));
    T_EQ(weights_n_unexpected(w), 0);
    T_EQ(weights_params_vision(w) + weights_params_lm(w), hfx_int(f->exp, "total_params", -1));
    for (int64_t i = 0; i < weights_count(w); i++) {
        const struct weight *wt = weights_at(w, i);
        const struct st_tensor *t = st_model_find(f->m, wt->file_name);
        T_CHECK_(t != NULL, "%s: %s resolved to %s, which is not stored", f->name, wt->name,
                 wt->file_name);
        if (!t) continue;
        char canon[VELA_NAME_MAX];
        T_RC(weights_canonical_name(t->name, canon, sizeof canon, &e), &e);
        T_STREQ(wt->name, canon);
        T_OK(weights_find(w, wt->name) == wt);
        T_OK(weights_find(w, t->name) == wt);
        T_EQ(wt->file_dtype, t->dtype);
        T_EQ(wt->n_elems, t->n_elems);
        if (t->dtype != ST_BF16) T_OK(wt->owned);
        T_CHECK_(wt->bf16 != NULL, "%s: %s has no BF16 data", f->name, wt->name);
        if (!wt->bf16 || wt->n_elems != t->n_elems) continue;
        int64_t n_diff = 0;
        for (int64_t j = 0; j < t->n_elems; j++) n_diff += wt->bf16[j] != hfx_bf16_of(t, j);
        T_CHECK_(n_diff == 0, "%s: %s: %" PRId64 " BF16 values differ from the file", f->name,
                 wt->name, n_diff);
    }
    weights_free(w);
}

static void test_fixtures(void) {
    for (size_t i = 0; i < HFX_N; i++) {
        struct hfx f;
        int before = t_fail_;
        if (hfx_open(&f, hfx_names[i]) == 0) {
            T_STREQ(hfx_str(f.exp, "fixture"), f.name);
            hfx_check_config(&f);
            hfx_check_tensors(&f);
            hfx_check_params(&f);
            hfx_check_weights(&f);
        }
        hfx_close(&f);
        if (t_fail_ != before) fprintf(stderr, "  in fixture %s\n", hfx_names[i]);
    }
}

/* Another copy of the BF16 fixture's weights must hold the same values: bytes equal for BF16
 * copies, F32 -> BF16 (round to nearest even, as the loader converts) equal for the F32 one. */
static void hfx_check_same_weights(const struct st_model *ref, const struct st_model *m,
                                   const char *what) {
    T_EQ(st_model_count(m), st_model_count(ref));
    for (int64_t i = 0; i < st_model_count(ref); i++) {
        const struct st_tensor *r = st_model_tensor(ref, i);
        const struct st_tensor *t = hfx_find_any(m, r->name);
        T_CHECK_(t != NULL, "%s: %s missing", what, r->name);
        if (!t) continue;
        bool comparable = r->dtype == ST_BF16 && t->n_elems == r->n_elems &&
                          (t->dtype == ST_BF16 || t->dtype == ST_F32);
        T_CHECK_(comparable,
                 "%s: %s: %" PRId64 " elements of %s, the BF16 fixture %" PRId64 " of %s", what,
                 r->name, t->n_elems, st_dtype_name(t->dtype), r->n_elems, st_dtype_name(r->dtype));
        if (!comparable) continue;
        int64_t n_diff = 0;
        for (int64_t j = 0; j < r->n_elems; j++) n_diff += hfx_bf16_of(t, j) != hfx_bf16_of(r, j);
        T_CHECK_(n_diff == 0, "%s: %s: %" PRId64 " elements differ from the BF16 fixture", what,
                 r->name, n_diff);
    }
}

/* What the loader hands the model from a copy == what it hands from the BF16 fixture. */
static void hfx_check_same_loaded(const struct hfx *ref, const struct hfx *f) {
    struct weights *wr = NULL, *wf = NULL;
    struct err e = {0};
    int rc = weights_load(&wr, &ref->c, ref->m, 0, &e);
    if (rc == 0) rc = weights_load(&wf, &f->c, f->m, 0, &e);
    T_RC(rc, &e);
    for (int64_t i = 0; rc == 0 && i < weights_count(wr); i++) {
        const struct weight *a = weights_at(wr, i);
        const struct weight *b = weights_find(wf, a->name);
        T_CHECK_(b != NULL && b->n_elems == a->n_elems && a->bf16 && b->bf16, "%s: %s", f->name,
                 a->name);
        if (b && b->n_elems == a->n_elems && a->bf16 && b->bf16)
            T_CHECK_(memcmp(a->bf16, b->bf16, (size_t)a->n_elems * 2) == 0,
                     "%s: %s loads other BF16 values than the BF16 fixture", f->name, a->name);
    }
    weights_free(wf);
    weights_free(wr);
}

static void test_copies_agree(void) {
    static const char *const copies[] = {"qwen2_5_vl_f32", "qwen2_5_vl_sharded",
                                         "qwen2_5_vl_newnames"};
    struct hfx ref;
    if (hfx_open(&ref, "qwen2_5_vl_bf16") == 0) {
        for (size_t i = 0; i < sizeof copies / sizeof copies[0]; i++) {
            struct hfx f;
            if (hfx_open(&f, copies[i]) == 0) {
                hfx_check_same_weights(ref.m, f.m, copies[i]);
                hfx_check_same_loaded(&ref, &f);
            }
            hfx_close(&f);
        }
    }
    hfx_close(&ref);
}

/* Copies file `name` from src to dst, replacing the first `from` by `to` when from != NULL. */
static int hfx_copy(const char *src, const char *dst, const char *name, const char *from,
                    const char *to) {
    struct err e = {0};
    char p[HFX_PATH_MAX], q[HFX_PATH_MAX];
    char *buf = NULL;
    size_t n = 0;
    int rc = path_join(p, sizeof p, src, name, &e);
    if (rc == 0) rc = path_join(q, sizeof q, dst, name, &e);
    if (rc == 0) rc = file_read_all(p, 16u << 20, &buf, &n, &e);
    if (rc == 0 && from) {
        char *at = strstr(buf, from);
        T_CHECK_(at != NULL && strlen(from) == strlen(to), "%s: '%s' not found", name, from);
        if (at && strlen(from) == strlen(to)) memcpy(at, to, strlen(to));
    }
    if (rc == 0) rc = file_write_all(q, buf, n, &e);
    T_RC(rc, &e);
    free(buf);
    return rc;
}

/* Removes the copies made in dir, then dir. */
static void hfx_rmdir(const char *dir, const char *const *names, int n, const char *index) {
    char p[HFX_PATH_MAX];
    for (int i = -2; i < n; i++) {
        const char *name = i == -2 ? "config.json" : i == -1 ? index : names[i];
        if (path_join(p, sizeof p, dir, name, NULL) == 0) remove(p);
    }
    rmdir(dir);
}

/* Broken copies of the sharded folder must fail to open, with a message. */
static void test_broken_shards(void) {
    char src[HFX_PATH_MAX];
    struct err e0 = {0};
    T_RC(path_join(src, sizeof src, t_src(HFX_DIR), "qwen2_5_vl_sharded", &e0), &e0);
    static const char *const shards[] = {"model-00001-of-00003.safetensors",
                                         "model-00002-of-00003.safetensors",
                                         "model-00003-of-00003.safetensors"};
    const char *index = "model.safetensors.index.json";
    for (int variant = 0; variant < 2; variant++) {
        const char *tmp = t_tmpdir("hf");
        T_OK(tmp != NULL);
        if (!tmp) return;
        char dst[HFX_PATH_MAX];
        memcpy(dst, tmp, strlen(tmp) + 1); /* fits: t_tmpdir's buffer is as large */
        int rc = hfx_copy(src, dst, "config.json", NULL, NULL);
        /* variant 0: the last shard is missing; 1: the index puts lm_head in shard 2 */
        for (int s = 0; s < (variant == 0 ? 2 : 3) && rc == 0; s++)
            rc = hfx_copy(src, dst, shards[s], NULL, NULL);
        if (rc == 0)
            rc = variant == 0
                     ? hfx_copy(src, dst, index, NULL, NULL)
                     : hfx_copy(src, dst, index, "\"lm_head.weight\": \"model-00001-of-00003",
                                "\"lm_head.weight\": \"model-00002-of-00003");
        if (rc != 0) continue;
        struct st_model *m = NULL;
        struct err e = {0};
        rc = st_model_open(&m, dst, &e);
        T_CHECK_(rc < 0 && e.msg[0] != '\0', "broken variant %d opened (rc %d)", variant, rc);
        st_model_close(m);
        hfx_rmdir(dst, shards, 3, index);
    }
}

int main(void) {
    char probe[HFX_PATH_MAX];
    if (path_join(probe, sizeof probe, t_src(HFX_DIR), "qwen2_5_vl_bf16/expected.json", NULL) !=
            0 ||
        !file_exists(probe)) {
        T_SKIP("fixtures missing: %.400s (run from the source root or set VELA_SOURCE_DIR)", probe);
        return t_done();
    }
    T_RUN(test_fixtures);
    T_RUN(test_copies_agree);
    T_RUN(test_broken_shards);
    return t_done();
}
