/* Tests for model/generator (and the side files of gen_files): the weight function is
 * pinned bit for bit, chunk-independent and seed-dependent; a tiny folder is identical
 * across runs, reloads through cfg_load / st_model_open with every expected tensor, and has
 * finite weights; the shard writer splits into several files plus an index under a small
 * limit; --config-only writes no weights; the CLI works and rejects bad input; dummy
 * weights (--load-format dummy) are the bytes the folder holds for the same seed. */
#include "t.h"
#include "model/config.h"
#include "model/gen_files.h"
#include "model/generator.h"
#include "model/lm.h"
#include "model/params.h"
#include "model/presets.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "util/bf16.h"
#include "util/file.h"
#include "util/rng.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <sys/wait.h>

static const char *const FOLDER_FILES[] = {
    "config.json",           "generation_config.json", "preprocessor_config.json", "tokenizer.json",
    "tokenizer_config.json", "chat_template.json",     "model.safetensors",        NULL};

static struct param_tensor linear_tensor(const char *name, int64_t out, int64_t in) {
    struct param_tensor pt = {.n_dims = 2, .shape = {out, in}, .fan_in = in, .kind = PARAM_LINEAR};
    snprintf(pt.name, sizeof pt.name, "%s", name);
    return pt;
}

static void test_tensor_values(void) {
    struct gen_spec g = {.seed = 0};
    struct param_tensor pt = linear_tensor("model.layers.0.mlp.up_proj.weight", 64, 256);
    struct err e = {0};
    enum { N = 64 * 256 };
    static uint16_t all[N], part[N];
    T_RC(gen_tensor_bf16(&g, &pt, 0, N, all, &e), &e);
    /* Pinned: other bytes on any machine (or after any change) fail here. */
    uint64_t h = rng_fnv1a(RNG_FNV_INIT, all, sizeof all);
    T_CHECK_(h == 0xb4b9114c2b454e75ull, "up_proj fnv1a = 0x%016llx", (unsigned long long)h);
    T_CHECK_(all[0] == 0xbce5 && all[1] == 0xbda2 && all[N - 1] == 0xbcb4,
             "first values 0x%04x 0x%04x 0x%04x", all[0], all[1], all[N - 1]);

    /* Any chunking gives the same values. */
    T_RC(gen_tensor_bf16(&g, &pt, 1000, 3000, part, &e), &e);
    T_OK(memcmp(part, all + 1000, 3000 * sizeof part[0]) == 0);
    T_RC(gen_tensor_bf16(&g, &pt, N - 1, 1, part, &e), &e);
    T_EQ(part[0], all[N - 1]);
    T_RC(gen_tensor_bf16(&g, &pt, N, 0, part, &e), &e); /* empty range at the end */

    /* Statistics: uniform(-a, a), a = sqrt(3/fan_in): mean ~0, std a/sqrt(3). */
    double a = gen_tensor_scale(&pt), s = 0, s2 = 0, mx = 0;
    T_NEAR(a, sqrt(3.0 / 256), 1e-7);
    for (int i = 0; i < N; i++) {
        double x = bf16_to_f32(all[i]);
        s += x;
        s2 += x * x;
        if (fabs(x) > mx) mx = fabs(x);
    }
    T_NEAR(s / N, 0.0, 0.003);
    T_NEAR(sqrt(s2 / N), 1.0 / 16, 0.002);
    T_OK(mx <= a * 1.004 && mx > a * 0.98); /* bf16 rounding may pass a by half an ulp */

    /* Another seed or another name: other values. */
    struct gen_spec g1 = {.seed = 1};
    T_RC(gen_tensor_bf16(&g1, &pt, 0, 4096, part, &e), &e);
    T_OK(memcmp(part, all, 4096 * sizeof part[0]) != 0);
    struct param_tensor other = linear_tensor("model.layers.1.mlp.up_proj.weight", 64, 256);
    T_RC(gen_tensor_bf16(&g, &other, 0, 4096, part, &e), &e);
    T_OK(memcmp(part, all, 4096 * sizeof part[0]) != 0);

    /* Ranges outside the tensor are refused. */
    T_FAILS(gen_tensor_bf16(&g, &pt, N - 1, 2, part, &e), VELA_EINVAL, &e);
    T_FAILS(gen_tensor_bf16(&g, &pt, -1, 1, part, &e), VELA_EINVAL, &e);
    T_FAILS(gen_tensor_bf16(&g, &pt, 0, -1, part, &e), VELA_EINVAL, &e);
}

static void test_scales(void) {
    struct param_tensor pt = linear_tensor("model.layers.0.self_attn.o_proj.weight", 64, 64);
    T_NEAR(gen_tensor_scale(&pt), 0.5 * sqrt(3.0 / 64), 1e-7); /* residual output: halved */
    pt = linear_tensor("visual.blocks.0.attn.proj.weight", 64, 64);
    T_NEAR(gen_tensor_scale(&pt), 0.5 * sqrt(3.0 / 64), 1e-7);
    pt.kind = PARAM_EMBED;
    T_NEAR(gen_tensor_scale(&pt), 0.05 * sqrt(3.0), 1e-7);
    pt.kind = PARAM_BIAS;
    T_NEAR(gen_tensor_scale(&pt), 0.02, 1e-9);
    pt.kind = PARAM_NORM;
    pt.n_dims = 1;
    T_EQ(gen_tensor_scale(&pt), 0);
    struct gen_spec g = {.seed = 5};
    uint16_t v[64];
    struct err e = {0};
    T_RC(gen_tensor_bf16(&g, &pt, 0, 64, v, &e), &e);
    int ones = 1;
    for (int i = 0; i < 64; i++) ones &= v[i] == 0x3f80;
    T_OK(ones); /* norm gains are exactly 1.0 */
}

static bool files_equal(const char *d1, const char *d2, const char *name) {
    char p1[4096], p2[4096], *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    struct err e = {0};
    snprintf(p1, sizeof p1, "%s/%s", d1, name);
    snprintf(p2, sizeof p2, "%s/%s", d2, name);
    bool ok = file_read_all(p1, 1u << 30, &a, &na, &e) == 0 &&
              file_read_all(p2, 1u << 30, &b, &nb, &e) == 0 && na == nb && memcmp(a, b, na) == 0;
    free(a);
    free(b);
    return ok;
}

static int count_files(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        size_t l = strlen(de->d_name), m = strlen(suffix);
        n += l >= m && strcmp(de->d_name + l - m, suffix) == 0;
    }
    closedir(d);
    return n;
}

static void check_same_config(const struct model_config *a, const struct model_config *b) {
    T_EQ(a->arch, b->arch);
    T_STREQ(a->architecture, b->architecture);
    T_STREQ(a->model_type, b->model_type);
    T_EQ(a->vocab_size, b->vocab_size);
    T_EQ(a->hidden_size, b->hidden_size);
    T_EQ(a->intermediate_size, b->intermediate_size);
    T_EQ(a->num_hidden_layers, b->num_hidden_layers);
    T_EQ(a->num_attention_heads, b->num_attention_heads);
    T_EQ(a->num_key_value_heads, b->num_key_value_heads);
    T_EQ(a->head_dim, b->head_dim);
    T_EQ(a->max_position_embeddings, b->max_position_embeddings);
    T_NEAR(a->rope_theta, b->rope_theta, 0);
    T_NEAR(a->rms_norm_eps, b->rms_norm_eps, 0);
    T_EQ(a->tie_word_embeddings, b->tie_word_embeddings);
    T_EQ(a->has_mrope, b->has_mrope);
    T_OK(memcmp(a->mrope_section, b->mrope_section, sizeof a->mrope_section) == 0);
    T_EQ(a->bos_token_id, b->bos_token_id);
    T_EQ(a->n_eos_token_ids, b->n_eos_token_ids);
    T_EQ(a->eos_token_ids[0], b->eos_token_ids[0]);
    T_EQ(a->image_token_id, b->image_token_id);
    T_EQ(a->video_token_id, b->video_token_id);
    T_EQ(a->vision_start_token_id, b->vision_start_token_id);
    T_EQ(a->vision_end_token_id, b->vision_end_token_id);
    T_EQ(a->has_vision, b->has_vision);
    const struct vision_config *u = &a->vision, *v = &b->vision;
    T_EQ(u->depth, v->depth);
    T_EQ(u->hidden_size, v->hidden_size);
    T_EQ(u->intermediate_size, v->intermediate_size);
    T_EQ(u->num_heads, v->num_heads);
    T_EQ(u->window_size, v->window_size);
    T_EQ(u->out_hidden_size, v->out_hidden_size);
    T_EQ(u->n_fullatt, v->n_fullatt);
    T_OK(memcmp(u->fullatt_block_indexes, v->fullatt_block_indexes,
                sizeof(int32_t) * (size_t)u->n_fullatt) == 0);
    T_EQ(u->patch_size, v->patch_size);
    T_EQ(u->spatial_merge_size, v->spatial_merge_size);
    T_EQ(u->temporal_patch_size, v->temporal_patch_size);
    T_EQ(u->tokens_per_second, v->tokens_per_second);
}

/* Every expected tensor is present with its shape, BF16, finite; norms exactly 1. Returns
 * the FNV-1a of all tensor data in params order (independent of the file layout). */
static uint64_t check_weights(const char *dir, const struct model_config *c) {
    struct st_model *m = NULL;
    struct param_tensor *pts = NULL;
    int64_t n = 0;
    struct err e = {0};
    uint64_t h = RNG_FNV_INIT;
    int rc = st_model_open(&m, dir, &e);
    T_RC(rc, &e);
    if (rc == 0) rc = params_tensors(c, &pts, &n, &e);
    T_RC(rc, &e);
    if (rc != 0) goto done;
    T_EQ(st_model_count(m), n);
    int missing = 0, bad_shape = 0, not_finite = 0, bad_norm = 0;
    for (int64_t i = 0; i < n; i++) {
        const struct st_tensor *t = st_model_find(m, pts[i].name);
        if (!t) {
            missing++;
            continue;
        }
        bad_shape += t->dtype != ST_BF16 || t->n_dims != pts[i].n_dims ||
                     memcmp(t->shape, pts[i].shape, sizeof(int64_t) * (size_t)t->n_dims) != 0;
        const uint16_t *d = t->data;
        for (int64_t k = 0; k < t->n_elems; k++) {
            float x = bf16_to_f32(d[k]);
            not_finite += !isfinite(x);
            bad_norm += pts[i].kind == PARAM_NORM && x != 1.0f;
        }
        h = rng_fnv1a(h, t->data, t->n_bytes);
    }
    T_EQ(missing, 0);
    T_EQ(bad_shape, 0);
    T_EQ(not_finite, 0);
    T_EQ(bad_norm, 0);
done:
    free(pts);
    st_model_close(m);
    return h;
}

static void test_tiny_folder(void) {
    const char *tmp = t_tmpdir("gen");
    if (!tmp) return;
    char d1[4096], d2[4096], d3[4096];
    snprintf(d1, sizeof d1, "%s/a", tmp);
    snprintf(d2, sizeof d2, "%s/b", tmp);
    snprintf(d3, sizeof d3, "%s/c", tmp);
    const struct preset *p = preset_find("tiny");
    struct gen_options o = {.seed = 0}, o3 = {.seed = 3, .n_threads = 4};
    struct model_config c, c3, loaded;
    struct err e = {0};
    int rc = gen_model_write(p, d1, &o, &c, &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    struct gen_options o2 = {.seed = 0, .n_threads = 3}; /* threads must not change bytes */
    T_RC(gen_model_write(p, d2, &o2, NULL, &e), &e);
    T_RC(gen_model_write(p, d3, &o3, &c3, &e), &e);
    for (int i = 0; FOLDER_FILES[i]; i++)
        T_CHECK_(files_equal(d1, d2, FOLDER_FILES[i]), "%s differs between runs", FOLDER_FILES[i]);
    T_OK(files_equal(d1, d3, "config.json"));
    T_OK(files_equal(d1, d3, "tokenizer.json"));
    T_OK(!files_equal(d1, d3, "model.safetensors")); /* other seed, other weights */

    rc = cfg_load(&loaded, d1, &e);
    T_RC(rc, &e);
    if (rc == 0) check_same_config(&c, &loaded);
    T_EQ(c.vocab_size, 704);
    uint64_t h = check_weights(d1, &c);
    T_CHECK_(h == 0x42e2a73d9b744d4dull, "tiny seed 0 weights fnv1a = 0x%016llx",
             (unsigned long long)h);
    T_OK(check_weights(d3, &c3) != h);

    struct gen_config gc;
    struct preproc_config pc;
    T_RC(gen_config_load(&gc, d1, &e), &e);
    T_OK(gc.present && gc.do_sample);
    T_EQ(gc.bos_token_id, c.bos_token_id);
    T_EQ(gc.pad_token_id, c.bos_token_id);
    T_EQ(gc.n_eos_token_ids, 2);
    T_EQ(gc.eos_token_ids[0], c.eos_token_ids[0]);
    T_EQ(gc.eos_token_ids[1], c.bos_token_id);
    T_NEAR(gc.temperature, 0.1, 1e-12);
    T_NEAR(gc.top_p, 0.001, 1e-12);
    T_EQ(gc.top_k, 1);
    T_NEAR(gc.repetition_penalty, 1.05, 1e-12);
    T_RC(preproc_config_load(&pc, d1, &e), &e);
    T_OK(pc.present);
    T_EQ(pc.min_pixels, 3136);
    T_EQ(pc.max_pixels, 28 * 28 * 256);
    T_EQ(pc.patch_size, 14);
    T_NEAR(pc.image_mean[0], 0.48145466, 1e-7);
    T_NEAR(pc.image_std[2], 0.27577711, 1e-7);

    /* The tokenizer files agree with the config's ids. */
    char path[8192];
    json_t *tc = NULL;
    snprintf(path, sizeof path, "%s/tokenizer_config.json", d1);
    tc = json_load_file(path, 0, NULL);
    T_OK(tc != NULL);
    T_STREQ(json_string_value(json_object_get(tc, "eos_token")), "<|im_end|>");
    T_STREQ(json_string_value(json_object_get(tc, "pad_token")), "<|endoftext|>");
    T_OK(json_is_null(json_object_get(tc, "bos_token")));
    T_OK(json_string_value(json_object_get(tc, "chat_template")) != NULL);
    char key[16];
    snprintf(key, sizeof key, "%d", c.image_token_id);
    const json_t *img = json_object_get(json_object_get(tc, "added_tokens_decoder"), key);
    T_STREQ(json_string_value(json_object_get(img, "content")), "<|image_pad|>");
    T_EQ(json_array_size(json_object_get(tc, "additional_special_tokens")), 13);
    json_decref(tc);
}

static void test_shards(void) {
    const char *tmp = t_tmpdir("shard");
    if (!tmp) return;
    char one[4096], many[4096], path[8192];
    snprintf(one, sizeof one, "%s/one", tmp);
    snprintf(many, sizeof many, "%s/many", tmp);
    struct gen_options o = {.seed = 9};
    struct model_config c;
    struct err e = {0};
    int rc = gen_model_write(preset_find("tiny"), one, &o, &c, &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    /* An earlier single-file model in the folder must not survive a sharded write. */
    T_RC(gen_model_write(preset_find("tiny"), many, &o, NULL, &e), &e);
    o.max_shard_bytes = 64 * 1024;
    rc = gen_weights_write(&c, many, &o, &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    int n = count_files(many, ".safetensors");
    T_OK(n >= 3);
    snprintf(path, sizeof path, "%s/model.safetensors", many);
    T_OK(!file_exists(path));
    snprintf(path, sizeof path, "%s/model-00001-of-%05d.safetensors", many, n);
    T_OK(file_exists(path));
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", many);
    json_t *idx = json_load_file(path, 0, NULL);
    T_OK(idx != NULL);
    struct param_counts pc;
    params_count(&c, &pc);
    T_EQ(json_integer_value(json_object_get(json_object_get(idx, "metadata"), "total_size")),
         pc.total * 2);
    T_EQ(json_object_size(json_object_get(idx, "weight_map")), pc.n_tensors);
    json_decref(idx);
    /* Same data whatever the layout. */
    T_EQ(check_weights(many, &c), check_weights(one, &c));
    /* Back to one file: the index goes away. */
    o.max_shard_bytes = 0;
    T_RC(gen_weights_write(&c, many, &o, &e), &e);
    T_OK(!file_exists(path));
    T_EQ(check_weights(many, &c), check_weights(one, &c));
}

/* Runs the vela binary with args; returns the exit status (-1 when it could not run) and
 * the first bytes of its stderr in err_out. */
static int run_vela(const char *args, char *err_out, size_t cap) {
    const char *bin = getenv("VELA_BIN");
    const char *tmp = t_tmpdir("cli-err");
    if (!bin || !*bin || !tmp) return -1;
    char cmd[8192], path[4096];
    snprintf(path, sizeof path, "%s/stderr", tmp);
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>'%s'", bin, args, path);
    int st = system(cmd);
    err_out[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (f) {
        size_t k = fread(err_out, 1, cap - 1, f);
        err_out[k] = '\0';
        fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void) {
    if (!getenv("VELA_BIN")) {
        T_SKIP("VELA_BIN not set: CLI cases not run");
        return;
    }
    const char *tmp = t_tmpdir("cli");
    if (!tmp) return;
    char args[8192], msg[2048], dir[4096];
    snprintf(dir, sizeof dir, "%s/tiny", tmp);
    snprintf(args, sizeof args, "make-model --preset tiny --out '%s' --seed 3", dir);
    T_EQ(run_vela(args, msg, sizeof msg), 0);
    struct model_config c;
    struct err e = {0};
    T_RC(cfg_load(&c, dir, &e), &e);
    char lib[4096];
    snprintf(lib, sizeof lib, "%s/lib", tmp);
    struct gen_options o = {.seed = 3};
    T_RC(gen_model_write(preset_find("tiny"), lib, &o, NULL, &e), &e);
    for (int i = 0; FOLDER_FILES[i]; i++) /* the CLI writes what the library writes */
        T_CHECK_(files_equal(dir, lib, FOLDER_FILES[i]), "%s: CLI differs", FOLDER_FILES[i]);

    snprintf(args, sizeof args, "make-model --preset tinyy --out '%s/x'", tmp);
    T_OK(run_vela(args, msg, sizeof msg) != 0);
    T_OK(strstr(msg, "unknown preset 'tinyy'") != NULL);
    T_OK(run_vela("make-model --preset tiny", msg, sizeof msg) != 0); /* no --out */
    T_OK(strstr(msg, "--out") != NULL);
    snprintf(args, sizeof args, "make-model --preset tiny --out '%s/x' --seed -4", tmp);
    T_OK(run_vela(args, msg, sizeof msg) != 0);
    snprintf(args, sizeof args, "make-model --preset 7b --out '%s/x' --config-only", tmp);
    T_OK(run_vela(args, msg, sizeof msg) != 0); /* real shapes need --tokenizer */
    T_OK(strstr(msg, "--tokenizer") != NULL);
    T_EQ(run_vela("make-model --help", msg, sizeof msg), 0);
}

/* Real shapes with the real tokenizer: --config-only writes no weights, ids are the
 * tokenizer's, tokenizer.json is copied verbatim. */
static void test_real_tokenizer(void) {
    const char *tok = t_shared("models/qwen2.5-vl-tokenizer/tokenizer.json");
    if (!tok) return;
    char tok_dir[4096];
    snprintf(tok_dir, sizeof tok_dir, "%s", tok);
    *strrchr(tok_dir, '/') = '\0';
    const char *tmp = t_tmpdir("real");
    if (!tmp) return;
    char d7[4096], dt[4096];
    snprintf(d7, sizeof d7, "%s/7b", tmp);
    snprintf(dt, sizeof dt, "%s/tiny", tmp);
    struct gen_options o = {.config_only = true, .tokenizer_dir = tok_dir};
    struct model_config c, loaded;
    struct err e = {0};
    int rc = gen_model_write(preset_find("7b"), d7, &o, &c, &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    T_EQ(count_files(d7, ".safetensors"), 0);
    T_EQ(count_files(d7, ".json"), 6);
    T_OK(files_equal(d7, tok_dir, "tokenizer.json"));
    T_RC(cfg_load(&loaded, d7, &e), &e);
    check_same_config(&c, &loaded);
    T_EQ(loaded.vocab_size, 152064);
    T_EQ(loaded.bos_token_id, 151643);
    T_EQ(loaded.eos_token_ids[0], 151645);
    T_EQ(loaded.image_token_id, 151655);
    T_EQ(loaded.vision_start_token_id, 151652);
    struct param_counts pc;
    params_count(&loaded, &pc);
    T_EQ(pc.total, 8292166656LL);

    rc = gen_model_write(preset_find("tiny"), dt, &o, &c, &e);
    T_RC(rc, &e);
    T_EQ(c.vocab_size, 151680); /* 151665 ids rounded up to 64 */
    T_EQ(c.video_token_id, 151656);
    rc = gen_model_write(preset_find("qwen2.5-0.5b"), dt, &o, &c, &e); /* over the tiny */
    T_RC(rc, &e);
    T_OK(!c.has_vision);
    T_EQ(c.vocab_size, 151936);
    T_RC(cfg_load(&loaded, dt, &e), &e);
    check_same_config(&c, &loaded);
    T_EQ(loaded.arch, ARCH_QWEN2);
    T_EQ(count_files(dt, ".json"), 4); /* no preprocessor or VL chat template left over */

    struct gen_options bad = {.tokenizer_dir = "/nonexistent-dir"};
    T_OK(gen_model_write(preset_find("tiny"), dt, &bad, NULL, &e) != 0);
    struct gen_options none = {0};
    T_FAILS(gen_model_write(preset_find("72b"), dt, &none, NULL, &e), VELA_EINVAL, &e);
}

static void test_tok_specials(void) {
    struct preset_specials sp;
    struct err e = {0};
    json_t *j = json_loads("{\"model\":{\"vocab\":{\"a\":0,\"b\":5}},\"added_tokens\":"
                           "[{\"id\":6,\"content\":\"<|im_end|>\"}]}",
                           0, NULL);
    T_RC(gen_tok_specials(j, &sp, &e), &e);
    T_EQ(sp.n_ids, 7);
    T_EQ(sp.im_end, 6);
    T_EQ(sp.endoftext, -1);
    json_decref(j);
    j = json_loads("{\"model\":{\"vocab\":{\"a\":-3}},\"added_tokens\":[]}", 0, NULL);
    T_FAILS(gen_tok_specials(j, &sp, &e), VELA_EFORMAT, &e);
    json_decref(j);
    j = json_loads("{\"model\":{}}", 0, NULL);
    T_FAILS(gen_tok_specials(j, &sp, &e), VELA_EFORMAT, &e);
    json_decref(j);
}

/* --load-format dummy: the in-memory weights equal the checkpoint make-model writes for the
 * same seed, tensor for tensor (language model only; the vision tower is left out), and a
 * folder without config.json is an error. */
static void test_dummy_weights(void) {
    const char *tmp = t_tmpdir("dummy");
    if (!tmp) return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tiny", tmp);
    struct gen_options o = {.seed = 5};
    struct err e = {0};
    int rc = gen_model_write(preset_find("tiny"), dir, &o, NULL, &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    struct lm_files file, dummy, other;
    rc = lm_files_open(&file, dir, &e);
    T_RC(rc, &e);
    T_RC(lm_files_open_dummy(&dummy, dir, 5, 3, &e), &e);
    T_RC(lm_files_open_dummy(&other, dir, 6, 1, &e), &e);
    if (rc == 0 && dummy.w && other.w) {
        int64_t n = weights_count(file.w), n_lm = 0, n_same_other = 0;
        T_EQ(weights_count(dummy.w), n);
        for (int64_t i = 0; i < n; i++) {
            const struct weight *a = weights_at(file.w, i), *b = weights_at(dummy.w, i);
            const struct weight *c = weights_at(other.w, i);
            T_STREQ(a->name, b->name);
            if (b->vision) {
                T_OK(b->bf16 == NULL);
                continue;
            }
            n_lm++;
            T_CHECK_(b->bf16 && memcmp(a->bf16, b->bf16, (size_t)a->n_elems * 2) == 0,
                     "%s differs from the file", a->name);
            if (memcmp(b->bf16, c->bf16, (size_t)b->n_elems * 2) == 0) n_same_other++;
        }
        T_OK(n_lm > 0);
        T_OK(n_same_other < n_lm); /* norm gains are 1.0 whatever the seed; the rest differ */
        T_EQ(weights_params_lm(dummy.w), weights_params_lm(file.w));
        T_EQ(weights_params_vision(dummy.w), 0);
        T_OK(dummy.st == NULL);
    }
    lm_files_close(&file);
    lm_files_close(&dummy);
    lm_files_close(&other);
    struct lm_files none;
    T_FAILS(lm_files_open_dummy(&none, tmp, 5, 1, &e), VELA_ENOTFOUND, &e);
    lm_files_close(&none);
}

int main(void) {
    T_RUN(test_tensor_values);
    T_RUN(test_scales);
    T_RUN(test_tok_specials);
    T_RUN(test_tiny_folder);
    T_RUN(test_shards);
    T_RUN(test_dummy_weights);
    T_RUN(test_real_tokenizer);
    T_RUN(test_cli);
    return t_done();
}
