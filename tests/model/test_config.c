/* Tests for model/config*.c: the shared real configs (§1.2 values), every layout of §1.3
 * (re-saved diffs, nested text_config, rope_parameters, configs saved by transformers v5),
 * Qwen2-VL and Qwen2, the cfg_to_json round trip, bad configs (each error names its field),
 * and generation_config.json / preprocessor_config.json. */
#include "model/config.h"
#include "model/params.h"
#include "t.h"
#include "util/file.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int parse_path(struct model_config *c, const char *path, const char *what) {
    char *buf = NULL;
    size_t len = 0;
    struct err e = {0};
    int rc = file_read_all(path, 1 << 20, &buf, &len, &e);
    if (rc == 0) rc = cfg_parse(c, buf, len, what, &e);
    T_RC(rc, &e);
    free(buf);
    return rc;
}

static int shared_cfg(struct model_config *c, const char *rel) {
    const char *p = t_shared(rel);
    return p ? parse_path(c, p, rel) : -1;
}

static int fixture(struct model_config *c, const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/fixtures/configs/%s", name);
    return parse_path(c, t_src(rel), name);
}

static void check_7b_values(const struct model_config *c) {
    T_EQ(c->arch, ARCH_QWEN2_5_VL);
    T_STREQ(c->architecture, "Qwen2_5_VLForConditionalGeneration");
    T_EQ(c->vocab_size, 152064);
    T_EQ(c->hidden_size, 3584);
    T_EQ(c->intermediate_size, 18944);
    T_EQ(c->num_hidden_layers, 28);
    T_EQ(c->num_attention_heads, 28);
    T_EQ(c->num_key_value_heads, 4);
    T_EQ(c->head_dim, 128);
    T_EQ(c->max_position_embeddings, 128000);
    T_NEAR(c->rope_theta, 1e6, 0);
    T_NEAR(c->rms_norm_eps, 1e-6, 1e-15);
    T_OK(!c->tie_word_embeddings);
    T_OK(c->has_mrope && c->has_vision);
    T_EQ(c->mrope_section[0], 16);
    T_EQ(c->mrope_section[1], 24);
    T_EQ(c->mrope_section[2], 24);
    T_EQ(c->bos_token_id, 151643);
    T_EQ(c->n_eos_token_ids, 1);
    T_EQ(c->eos_token_ids[0], 151645);
    T_EQ(c->vision_start_token_id, 151652);
    T_EQ(c->vision_end_token_id, 151653);
    T_EQ(c->image_token_id, 151655);
    T_EQ(c->video_token_id, 151656);
    const struct vision_config *v = &c->vision;
    T_EQ(v->depth, 32);
    T_EQ(v->hidden_size, 1280);
    T_EQ(v->intermediate_size, 3420);
    T_EQ(v->num_heads, 16);
    T_EQ(v->in_chans, 3);
    T_EQ(v->patch_size, 14);
    T_EQ(v->spatial_merge_size, 2);
    T_EQ(v->temporal_patch_size, 2);
    T_EQ(v->tokens_per_second, 2);
    T_EQ(v->window_size, 112);
    T_EQ(v->out_hidden_size, 3584);
    T_EQ(v->n_fullatt, 4);
    T_EQ(v->fullatt_block_indexes[0], 7);
    T_EQ(v->fullatt_block_indexes[3], 31);
    T_STREQ(v->hidden_act, "silu");
}

static void test_shared_real(void) {
    struct model_config c7, c3;
    if (shared_cfg(&c7, "models/qwen2.5-vl-7b/config.json") != 0) return;
    check_7b_values(&c7);
    T_STREQ(c7.torch_dtype, "bfloat16");
    T_EQ(c7.vision_token_id, 151654); /* transformers v5 no longer writes this one */
    if (shared_cfg(&c3, "models/qwen2.5-vl-3b/config.json") != 0) return;
    T_EQ(c3.vocab_size, 151936);
    T_EQ(c3.hidden_size, 2048);
    T_EQ(c3.intermediate_size, 11008);
    T_EQ(c3.num_hidden_layers, 36);
    T_EQ(c3.num_attention_heads, 16);
    T_EQ(c3.num_key_value_heads, 2);
    T_EQ(c3.head_dim, 128);
    T_OK(c3.tie_word_embeddings);
    T_EQ(c3.vision.out_hidden_size, 2048);
    T_EQ(c3.vision.intermediate_size, 3420);
}

/* Re-saved layouts must give the same struct as the original file, apart from the fields
 * the re-save really changed (model_type spelling, max_position_embeddings). */
static void test_resaved_layouts(void) {
    struct model_config orig, diff, v5;
    if (shared_cfg(&orig, "models/qwen2.5-vl-7b/config.json") != 0) return;
    if (fixture(&diff, "q25_7b_resaved_diff.json") != 0) return;
    check_7b_values(&diff); /* vision diff filled from class defaults, tokens_per_second 2 */
    T_OK(memcmp(&orig, &diff, sizeof orig) == 0);
    if (fixture(&v5, "q25_7b_v5.json") != 0) return; /* text_config + rope_parameters */
    check_7b_values(&v5);
    struct param_counts a, b;
    params_count(&orig, &a);
    params_count(&v5, &b);
    T_EQ(b.total, a.total);
}

static void test_tiny_v5(void) {
    struct model_config c;
    if (fixture(&c, "q25_tiny_v5.json") != 0) return;
    T_EQ(c.arch, ARCH_QWEN2_5_VL); /* no "architectures": from model_type */
    T_EQ(c.hidden_size, 256);
    T_EQ(c.head_dim, 64);
    T_EQ(c.num_key_value_heads, 2);
    T_OK(c.tie_word_embeddings);
    T_EQ(c.mrope_section[0], 8);
    T_EQ(c.mrope_section[2], 12);
    T_EQ(c.vision.depth, 2);
    T_EQ(c.vision.n_fullatt, 1);
    T_EQ(c.vision.fullatt_block_indexes[0], 1);
    T_EQ(c.vision.in_chans, 3);
    T_EQ(c.eos_token_ids[0], 151645);
    T_EQ(c.pad_token_id, -1);
    struct param_counts pc;
    params_count(&c, &pc);
    T_EQ(pc.total, 2319232); /* torch numel of the transformers model built from this file */
}

static void test_qwen2_vl(void) {
    struct model_config c, s;
    if (fixture(&c, "q2vl_7b_original.json") != 0) return;
    T_EQ(c.arch, ARCH_QWEN2_VL);
    T_EQ(c.vision.hidden_size, 1280);
    T_EQ(c.vision.intermediate_size, 5120);
    T_EQ(c.vision.out_hidden_size, 3584);
    T_EQ(c.vision.window_size, 0);
    T_EQ(c.vision.n_fullatt, 0);
    T_EQ(c.vision.tokens_per_second, 0);
    T_STREQ(c.vision.hidden_act, "quick_gelu");
    struct param_counts pc;
    params_count(&c, &pc);
    T_EQ(pc.total, 8291375616LL); /* Qwen2-VL-7B's published parameter count */
    if (fixture(&s, "q2vl_2b_v5.json") != 0) return;
    T_EQ(s.vision.out_hidden_size, 1536);
    T_EQ(s.hidden_size, 1536);
    T_EQ(s.num_attention_heads, 12);
    T_OK(s.tie_word_embeddings);
}

static void test_qwen2_text(void) {
    struct model_config c;
    if (fixture(&c, "qwen2_0_5b_v5.json") != 0) return;
    T_EQ(c.arch, ARCH_QWEN2);
    T_OK(!c.has_vision && !c.has_mrope);
    T_NEAR(c.rope_theta, 1e6, 0); /* from rope_parameters */
    T_EQ(c.head_dim, 64);
    T_EQ(c.n_eos_token_ids, 1);
    T_EQ(c.eos_token_ids[0], 151643);
    T_EQ(c.image_token_id, -1);
    T_STREQ(cfg_arch_name(c.arch), "Qwen2ForCausalLM");
    T_STREQ(cfg_arch_label(c.arch), "Qwen2");
}

static void round_trip(const struct model_config *c, const char *name) {
    char *js = NULL;
    struct err e = {0};
    int rc = cfg_to_json(c, &js, &e);
    T_RC(rc, &e);
    if (rc) return;
    struct model_config back;
    rc = cfg_parse(&back, js, strlen(js), name, &e);
    T_RC(rc, &e);
    if (rc == 0 && memcmp(&back, c, sizeof back) != 0) {
        T_OK(!"round trip differs");
        fprintf(stderr, "  %s:\n%s\n", name, js);
    }
    free(js);
}

static void test_round_trip(void) {
    const char *names[] = {"q25_tiny_v5.json", "q25_7b_v5.json",        "q25_7b_resaved_diff.json",
                           "q2vl_2b_v5.json",  "q2vl_7b_original.json", "qwen2_0_5b_v5.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct model_config c;
        if (fixture(&c, names[i]) == 0) round_trip(&c, names[i]);
    }
    struct model_config c;
    if (shared_cfg(&c, "models/qwen2.5-vl-3b/config.json") == 0) round_trip(&c, "3b");
    if (shared_cfg(&c, "models/qwen2.5-vl-7b/config.json") != 0) return;
    round_trip(&c, "7b");
    c.head_dim = 64; /* explicit head_dim != hidden/heads is written and read back */
    c.mrope_section[0] = 8;
    c.mrope_section[1] = 12;
    c.mrope_section[2] = 12;
    c.n_eos_token_ids = 2;
    c.eos_token_ids[1] = 151643;
    c.pad_token_id = 151643;
    round_trip(&c, "7b-variant");
}

/* --- bad configs: mutate the real 7B JSON and expect an error naming the field ---------- */

static json_t *base_7b(void) {
    const char *p = t_shared("models/qwen2.5-vl-7b/config.json");
    if (!p) return NULL;
    json_error_t je;
    return json_load_file(p, 0, &je);
}

/* Sets path "a" or "a.b" to v (stolen); v NULL deletes the key. */
static void set_path(json_t *root, const char *path, json_t *v) {
    char key[64];
    snprintf(key, sizeof key, "%s", path);
    char *dot = strchr(key, '.');
    json_t *obj = root;
    if (dot) {
        *dot = '\0';
        obj = json_object_get(root, key);
        memmove(key, dot + 1, strlen(dot + 1) + 1);
    }
    if (v)
        json_object_set_new(obj, key, v);
    else
        json_object_del(obj, key);
}

static void expect_bad(const char *path, json_t *v, int code, const char *needle) {
    json_t *root = base_7b();
    if (!root) {
        json_decref(v);
        return;
    }
    set_path(root, path, v);
    char *js = json_dumps(root, 0);
    struct model_config c;
    memset(&c, 0x5a, sizeof c);
    struct model_config before = c;
    struct err e = {0};
    int rc = cfg_parse(&c, js, strlen(js), "bad/config.json", &e);
    T_CHECK_(rc == code, "%s: expected %d, got %d (%s)", path, code, rc, e.msg);
    T_CHECK_(strstr(e.msg, needle) != NULL, "%s: message lacks '%s': %s", path, needle, e.msg);
    T_CHECK_(strncmp(e.msg, "bad/config.json", 15) == 0, "message lacks file name: %s", e.msg);
    T_OK(memcmp(&c, &before, sizeof c) == 0); /* *out untouched on failure */
    free(js);
    json_decref(root);
}

static void test_bad_configs(void) {
    expect_bad("num_attention_heads", json_integer(0), VELA_EINVAL, "num_attention_heads");
    expect_bad("hidden_size", json_integer(3590), VELA_EINVAL, "hidden_size");
    expect_bad("num_key_value_heads", json_integer(3), VELA_EINVAL, "num_key_value_heads");
    expect_bad("hidden_size", json_integer(-3584), VELA_EINVAL, "hidden_size");
    expect_bad("intermediate_size", json_integer(-1), VELA_EINVAL, "intermediate_size");
    expect_bad("vocab_size", json_integer(1000000000000LL), VELA_EINVAL, "vocab_size");
    expect_bad("num_hidden_layers", json_integer(100000), VELA_EINVAL, "num_hidden_layers");
    expect_bad("hidden_size", json_real(1e300), VELA_EINVAL, "hidden_size");
    expect_bad("head_dim", json_integer(0), VELA_EINVAL, "head_dim");
    expect_bad("max_position_embeddings", json_integer(1LL << 40), VELA_EINVAL,
               "max_position_embeddings");
    expect_bad("hidden_size", NULL, VELA_ENOTFOUND, "hidden_size");
    expect_bad("vocab_size", NULL, VELA_ENOTFOUND, "vocab_size");
    expect_bad("num_hidden_layers", NULL, VELA_ENOTFOUND, "num_hidden_layers");
    expect_bad("hidden_size", json_string("3584"), VELA_EINVAL, "hidden_size");
    expect_bad("tie_word_embeddings", json_string("yes"), VELA_EINVAL, "tie_word_embeddings");
    expect_bad("rms_norm_eps", json_string("1e-6"), VELA_EINVAL, "rms_norm_eps");
    expect_bad("rope_theta", json_integer(-1), VELA_EINVAL, "rope_theta");
    expect_bad("eos_token_id", json_integer(-5), VELA_EINVAL, "eos_token_id");
    expect_bad("image_token_id", json_string("x"), VELA_EINVAL, "image_token_id");
    expect_bad("architectures", json_pack("[s]", "LlamaForCausalLM"), VELA_EUNSUP, "architectures");
    expect_bad("architectures", json_integer(1), VELA_EINVAL, "architectures");
    expect_bad("use_sliding_window", json_true(), VELA_EUNSUP, "use_sliding_window");
    expect_bad("rope_scaling", json_pack("{s:s,s:f}", "type", "yarn", "factor", 4.0), VELA_EUNSUP,
               "rope_scaling");
    expect_bad("rope_scaling", NULL, VELA_ENOTFOUND, "mrope_section");
    expect_bad("rope_scaling.mrope_section", json_pack("[i,i,i]", 16, 24, 16), VELA_EINVAL,
               "mrope_section");
    expect_bad("rope_scaling.mrope_section", json_string("16,24,24"), VELA_EINVAL, "mrope_section");
    expect_bad("rope_scaling.mrope_section", json_pack("[i,i]", 32, 32), VELA_EINVAL,
               "mrope_section");
    expect_bad("vision_config", json_string("none"), VELA_EINVAL, "vision_config");
    expect_bad("vision_config.out_hidden_size", json_integer(2048), VELA_EINVAL, "out_hidden_size");
    expect_bad("vision_config.depth", json_integer(0), VELA_EINVAL, "depth");
    expect_bad("vision_config.num_heads", json_integer(7), VELA_EINVAL, "num_heads");
    expect_bad("vision_config.patch_size", json_integer(100000), VELA_EINVAL, "patch_size");
    expect_bad("vision_config.intermediate_size", json_string("big"), VELA_EINVAL,
               "intermediate_size");
    expect_bad("vision_config.fullatt_block_indexes", json_pack("[i]", 40), VELA_EINVAL,
               "fullatt_block_indexes");
    expect_bad("vision_config.hidden_act", json_string("relu6"), VELA_EUNSUP, "hidden_act");
}

/* transformers 4.52-style: flat fields and a nested text_config side by side. The text
 * config wins for text fields; what it lacks (rope_theta, tie) comes from the top level. */
static void test_text_config_precedence(void) {
    json_t *root = base_7b();
    if (!root) return;
    json_t *tc = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:{s:s, s:[i,i,i]}}", "vocab_size", 1024,
                           "hidden_size", 256, "intermediate_size", 512, "num_hidden_layers", 2,
                           "num_attention_heads", 4, "num_key_value_heads", 2, "rope_scaling",
                           "type", "mrope", "mrope_section", 8, 12, 12);
    json_object_set_new(root, "text_config", tc);
    json_object_set_new(json_object_get(root, "vision_config"), "out_hidden_size",
                        json_integer(256));
    char *js = json_dumps(root, 0);
    struct model_config c;
    struct err e = {0};
    T_RC(cfg_parse(&c, js, strlen(js), "hybrid.json", &e), &e);
    T_EQ(c.hidden_size, 256);
    T_EQ(c.vocab_size, 1024);
    T_EQ(c.head_dim, 64);
    T_EQ(c.mrope_section[0], 8);
    T_EQ(c.max_position_embeddings, 32768); /* text_config lacks it: class default */
    T_NEAR(c.rope_theta, 1e6, 0);           /* from the top level */
    T_OK(!c.tie_word_embeddings);
    T_EQ(c.image_token_id, 151655);
    free(js);
    json_decref(root);
}

static void test_bad_buffers(void) {
    struct model_config c;
    struct err e = {0};
    T_FAILS(cfg_parse(&c, "{", 1, "x.json", &e), VELA_EFORMAT, &e);
    T_FAILS(cfg_parse(&c, "[1,2]", 5, "x.json", &e), VELA_EFORMAT, &e);
    T_FAILS(cfg_parse(&c, "{}", 2, "x.json", &e), VELA_ENOTFOUND, &e);
    T_OK(strstr(e.msg, "architectures") != NULL);
    const char *mt = "{\"model_type\":\"llama\"}";
    T_FAILS(cfg_parse(&c, mt, strlen(mt), "x.json", &e), VELA_EUNSUP, &e);
    T_OK(strstr(e.msg, "model_type") != NULL);
}

static void test_load_dir(void) {
    const char *dir = t_tmpdir("cfg");
    T_OK(dir != NULL);
    if (!dir) return;
    struct model_config c;
    struct err e = {0};
    T_OK(cfg_load(&c, dir, &e) < 0); /* no config.json */
    T_OK(strstr(e.msg, "config.json") != NULL);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    const char *bad = "{\"architectures\":[\"Qwen2ForCausalLM\"],\"vocab_size\":10}";
    T_RC(file_write_all(path, bad, strlen(bad), &e), &e);
    T_FAILS(cfg_load(&c, dir, &e), VELA_ENOTFOUND, &e);
    T_OK(strstr(e.msg, path) != NULL && strstr(e.msg, "hidden_size") != NULL);

    /* generation / preprocessor configs: missing = defaults */
    struct gen_config g;
    struct preproc_config p;
    T_RC(gen_config_load(&g, dir, &e), &e);
    T_OK(!g.present && g.top_k == 0 && g.temperature == 1.0 && g.bos_token_id == -1);
    T_RC(preproc_config_load(&p, dir, &e), &e);
    T_OK(!p.present && p.min_pixels == 3136 && p.max_pixels == 12845056);
    T_NEAR(p.image_mean[0], 0.48145466, 1e-7);
    T_NEAR(p.image_std[2], 0.27577711, 1e-7);
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    T_RC(file_write_all(path, "{\"top_k\": ", 10, &e), &e);
    T_FAILS(gen_config_load(&g, dir, &e), VELA_EFORMAT, &e);
    const char *gen = "{\"bos_token_id\":151643,\"pad_token_id\":151643,\"do_sample\":true,"
                      "\"eos_token_id\":[151645,151643],\"repetition_penalty\":1.05,"
                      "\"temperature\":0.1,\"top_p\":0.001,\"top_k\":1}";
    T_RC(file_write_all(path, gen, strlen(gen), &e), &e);
    T_RC(gen_config_load(&g, dir, &e), &e);
    T_OK(g.present && g.do_sample && g.top_k == 1 && g.n_eos_token_ids == 2);
    T_EQ(g.eos_token_ids[1], 151643);
    T_NEAR(g.repetition_penalty, 1.05, 1e-12);
    T_NEAR(g.top_p, 0.001, 1e-12);
}

static void test_gen_bad(void) {
    struct gen_config g;
    struct err e = {0};
    const char *a = "{\"temperature\":\"hot\"}";
    T_FAILS(gen_config_parse(&g, a, strlen(a), "gen.json", &e), VELA_EINVAL, &e);
    T_OK(strstr(e.msg, "gen.json") && strstr(e.msg, "temperature"));
    const char *b = "{\"top_p\":2}";
    T_FAILS(gen_config_parse(&g, b, strlen(b), "gen.json", &e), VELA_EINVAL, &e);
    T_OK(strstr(e.msg, "top_p") != NULL);
    const char *c = "{\"eos_token_id\":[]}";
    T_FAILS(gen_config_parse(&g, c, strlen(c), "gen.json", &e), VELA_EINVAL, &e);
}

static void test_preproc(void) {
    struct preproc_config p;
    struct err e = {0};
    const char *orig = "{\"min_pixels\":3136,\"max_pixels\":1003520,\"patch_size\":14,"
                       "\"temporal_patch_size\":2,\"merge_size\":2,\"image_mean\":[0.5,0.5,0.5],"
                       "\"image_std\":[0.25,0.25,0.25],\"image_processor_type\":"
                       "\"Qwen2VLImageProcessor\"}";
    T_RC(preproc_config_parse(&p, orig, strlen(orig), "pp.json", &e), &e);
    T_OK(p.present && p.min_pixels == 3136 && p.max_pixels == 1003520);
    T_NEAR(p.image_std[1], 0.25, 0);
    const char *newer = "{\"size\":{\"shortest_edge\":3136,\"longest_edge\":12845056},"
                        "\"do_rescale\":false,\"rescale_factor\":0.00392156862745098}";
    T_RC(preproc_config_parse(&p, newer, strlen(newer), "pp.json", &e), &e);
    T_OK(p.max_pixels == 12845056 && !p.do_rescale && p.do_normalize);
    const char *both = "{\"size\":{\"shortest_edge\":100,\"longest_edge\":200},"
                       "\"max_pixels\":5000}";
    T_RC(preproc_config_parse(&p, both, strlen(both), "pp.json", &e), &e);
    T_OK(p.min_pixels == 100 && p.max_pixels == 5000);
    const char *inv = "{\"min_pixels\":5000,\"max_pixels\":100}";
    T_FAILS(preproc_config_parse(&p, inv, strlen(inv), "pp.json", &e), VELA_EINVAL, &e);
    T_OK(strstr(e.msg, "min_pixels") != NULL);
    const char *std0 = "{\"image_std\":[0.2,0,0.2]}";
    T_FAILS(preproc_config_parse(&p, std0, strlen(std0), "pp.json", &e), VELA_EINVAL, &e);
    T_OK(strstr(e.msg, "image_std") != NULL);
    const char *huge = "{\"max_pixels\":1e15}";
    T_FAILS(preproc_config_parse(&p, huge, strlen(huge), "pp.json", &e), VELA_EINVAL, &e);
    const char *sz = "{\"size\":{\"shortest_edge\":\"a\",\"longest_edge\":5}}";
    T_FAILS(preproc_config_parse(&p, sz, strlen(sz), "pp.json", &e), VELA_EINVAL, &e);
    T_OK(strstr(e.msg, "shortest_edge") != NULL);
}

int main(void) {
    T_RUN(test_shared_real);
    T_RUN(test_resaved_layouts);
    T_RUN(test_tiny_v5);
    T_RUN(test_qwen2_vl);
    T_RUN(test_qwen2_text);
    T_RUN(test_round_trip);
    T_RUN(test_bad_configs);
    T_RUN(test_text_config_precedence);
    T_RUN(test_bad_buffers);
    T_RUN(test_load_dir);
    T_RUN(test_gen_bad);
    T_RUN(test_preproc);
    return t_done();
}
