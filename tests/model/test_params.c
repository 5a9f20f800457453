/* Tests for model/params.c: every number of the spec §1.4 table (3B and 7B from the shared
 * real configs, 32B and 72B built from the §1.2 values), tensor counts of §2.3, the tensor
 * list's names and shapes, and the Qwen2-VL / Qwen2 variants. */
#include "model/config.h"
#include "model/params.h"
#include "t.h"
#include "util/file.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static int load_shared(struct model_config *c, const char *rel) {
    const char *path = t_shared(rel);
    if (!path) return -1;
    char *buf = NULL;
    size_t len = 0;
    struct err e = {0};
    int rc = file_read_all(path, 1 << 20, &buf, &len, &e);
    if (rc == 0) rc = cfg_parse(c, buf, len, rel, &e);
    T_RC(rc, &e);
    free(buf);
    return rc;
}

/* 32B / 72B from the 7B config with the §1.2 values (no official file is shared). */
static void make_big(struct model_config *c, const struct model_config *base, int32_t D, int32_t F,
                     int32_t L, int32_t Nq, int32_t Nkv) {
    *c = *base;
    c->hidden_size = D;
    c->intermediate_size = F;
    c->num_hidden_layers = L;
    c->num_attention_heads = Nq;
    c->num_key_value_heads = Nkv;
    c->head_dim = D / Nq;
    c->vocab_size = 152064;
    c->tie_word_embeddings = false;
    c->vision.intermediate_size = 3456;
    c->vision.out_hidden_size = D;
}

struct row {
    const char *name;
    int64_t patch, block, merger, vision, layer, embed, head, lm, total, bv, blm, bt, kv, n;
};

static void check_row(const struct model_config *c, const struct row *r) {
    struct err e = {0};
    T_RC(cfg_validate(c, &e), &e);
    struct param_counts pc;
    params_count(c, &pc);
    fprintf(stderr, "checking %s\n", r->name);
    T_EQ(pc.vision_patch_embed, r->patch);
    T_EQ(pc.vision_per_block, r->block);
    T_EQ(pc.vision_merger, r->merger);
    T_EQ(pc.vision_total, r->vision);
    T_EQ(pc.lm_per_layer, r->layer);
    T_EQ(pc.lm_embed, r->embed);
    T_EQ(pc.lm_head, r->head);
    T_EQ(pc.lm_total, r->lm);
    T_EQ(pc.total, r->total);
    T_EQ(pc.vision_bf16_bytes, r->bv);
    T_EQ(pc.lm_bf16_bytes, r->blm);
    T_EQ(pc.total_bf16_bytes, r->bt);
    T_EQ(pc.kv_bytes_per_token, r->kv);
    T_EQ(pc.n_tensors, r->n);
    /* The enumeration agrees with the counts. */
    struct param_tensor *ts = NULL;
    int64_t n = 0;
    T_RC(params_tensors(c, &ts, &n, &e), &e);
    T_EQ(n, r->n);
    int64_t sum = 0, vis = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += params_n_elems(&ts[i]);
        if (ts[i].vision) vis += params_n_elems(&ts[i]);
    }
    T_EQ(sum, r->total);
    T_EQ(vis, r->vision);
    free(ts);
}

static const struct row ROW_3B = {
    "3B",         1505280,      19702200,     36708608,     668684288,    77076992, 311164928, 0,
    3085938688LL, 3754622976LL, 1337368576LL, 6171877376LL, 7509245952LL, 36864,    824};
static const struct row ROW_7B = {"7B",          1505280,      19702200,     44574464,
                                  676550144,     233057792,    544997376,    544997376,
                                  7615616512LL,  8292166656LL, 1353100288LL, 15231233024LL,
                                  16584333312LL, 57344,        729};
static const struct row ROW_32B = {"32B",         1505280,       19840512,     52440320,
                                   688841984,     487605248,     778567680,    778567680,
                                   32763876352LL, 33452718336LL, 1377683968LL, 65527752704LL,
                                   66905436672LL, 262144,        1161};
static const struct row ROW_72B = {"72B",          1505280,       19840512,     68172032,
                                   704573696,      877684736,     1245708288,   1245708288,
                                   72706203648LL,  73410777344LL, 1409147392LL, 145412407296LL,
                                   146821554688LL, 327680,        1353};

static void test_spec_table(void) {
    struct model_config c3, c7, c32, c72;
    if (load_shared(&c3, "models/qwen2.5-vl-3b/config.json") != 0) return;
    if (load_shared(&c7, "models/qwen2.5-vl-7b/config.json") != 0) return;
    check_row(&c3, &ROW_3B);
    check_row(&c7, &ROW_7B);
    make_big(&c32, &c7, 5120, 27648, 64, 40, 8);
    check_row(&c32, &ROW_32B);
    make_big(&c72, &c7, 8192, 29568, 80, 64, 8);
    check_row(&c72, &ROW_72B);
    /* The quantization-padded 29696 adds exactly the parameters the spec notes. */
    struct param_counts a, b;
    params_count(&c72, &a);
    c72.intermediate_size = 29696;
    params_count(&c72, &b);
    T_EQ(b.total - a.total, 251658240);
}

static const struct param_tensor *find(const struct param_tensor *ts, int64_t n, const char *name) {
    for (int64_t i = 0; i < n; i++)
        if (strcmp(ts[i].name, name) == 0) return &ts[i];
    return NULL;
}

static void test_tensor_list_7b(void) {
    struct model_config c;
    if (load_shared(&c, "models/qwen2.5-vl-7b/config.json") != 0) return;
    struct param_tensor *ts = NULL;
    int64_t n = 0;
    struct err e = {0};
    T_RC(params_tensors(&c, &ts, &n, &e), &e);
    if (!ts) return;
    T_STREQ(ts[0].name, "visual.patch_embed.proj.weight");
    T_EQ(ts[0].n_dims, 5);
    T_EQ(ts[0].shape[0], 1280);
    T_EQ(ts[0].shape[1], 3);
    T_EQ(ts[0].shape[2], 2);
    T_EQ(ts[0].shape[4], 14);
    T_EQ(ts[0].kind, PARAM_CONV);
    T_EQ(ts[0].fan_in, 3 * 2 * 14 * 14);
    T_OK(ts[0].vision);
    T_STREQ(ts[n - 1].name, "lm_head.weight");
    T_OK(!ts[n - 1].vision);
    const struct param_tensor *t = find(ts, n, "model.layers.27.self_attn.k_proj.weight");
    T_OK(t != NULL);
    if (t) {
        T_EQ(t->shape[0], 512);
        T_EQ(t->shape[1], 3584);
        T_EQ(t->kind, PARAM_LINEAR);
        T_EQ(t->fan_in, 3584);
    }
    t = find(ts, n, "model.layers.0.self_attn.q_proj.bias");
    T_OK(t && t->shape[0] == 3584 && t->kind == PARAM_BIAS && t->n_dims == 1);
    T_OK(find(ts, n, "model.layers.0.self_attn.o_proj.bias") == NULL);
    t = find(ts, n, "visual.blocks.31.mlp.down_proj.weight");
    T_OK(t && t->shape[0] == 1280 && t->shape[1] == 3420 && t->vision);
    t = find(ts, n, "visual.merger.mlp.2.weight");
    T_OK(t && t->shape[0] == 3584 && t->shape[1] == 5120);
    t = find(ts, n, "visual.merger.ln_q.weight");
    T_OK(t && t->kind == PARAM_NORM);
    t = find(ts, n, "model.embed_tokens.weight");
    T_OK(t && t->kind == PARAM_EMBED && t->shape[0] == 152064);
    T_OK(find(ts, n, "visual.blocks.32.norm1.weight") == NULL);
    T_OK(find(ts, n, "model.layers.28.input_layernorm.weight") == NULL);
    free(ts);
}

static int parse_fixture(struct model_config *c, const char *rel) {
    char *buf = NULL;
    size_t len = 0;
    struct err e = {0};
    int rc = file_read_all(t_src(rel), 1 << 20, &buf, &len, &e);
    if (rc == 0) rc = cfg_parse(c, buf, len, rel, &e);
    T_RC(rc, &e);
    free(buf);
    return rc;
}

/* Qwen2-VL-2B (real saved config): LayerNorm with bias, fc1/fc2, merger of width 5120 -> 1536.
 * Qwen2-VL-2B is published as 2,208,985,600 parameters (tied embeddings). */
static void test_qwen2_vl(void) {
    struct model_config c;
    if (parse_fixture(&c, "tests/fixtures/configs/q2vl_2b_v5.json") != 0) return;
    struct param_tensor *ts = NULL;
    int64_t n = 0;
    struct err e = {0};
    T_RC(params_tensors(&c, &ts, &n, &e), &e);
    if (!ts) return;
    const struct param_tensor *t = find(ts, n, "visual.blocks.0.norm1.bias");
    T_OK(t && t->kind == PARAM_NORM_BIAS && t->shape[0] == 1280);
    t = find(ts, n, "visual.blocks.0.mlp.fc1.weight");
    T_OK(t && t->shape[0] == 5120 && t->shape[1] == 1280);
    T_OK(find(ts, n, "visual.blocks.0.mlp.gate_proj.weight") == NULL);
    t = find(ts, n, "visual.merger.ln_q.bias");
    T_OK(t != NULL);
    t = find(ts, n, "visual.merger.mlp.2.weight");
    T_OK(t && t->shape[0] == 1536 && t->shape[1] == 5120);
    T_OK(find(ts, n, "lm_head.weight") == NULL);
    struct param_counts pc;
    params_count(&c, &pc);
    T_EQ(pc.n_tensors, n);
    T_EQ(pc.n_tensors, 1 + 32 * 12 + 6 + 1 + 12 * 28 + 1);
    T_EQ(pc.total, 2208985600LL);
    T_EQ(pc.lm_head, 0);
    T_EQ(pc.kv_bytes_per_token, 2 * 28 * 2 * 128 * 2);
    free(ts);
}

/* Qwen2.5-0.5B-shaped text model: no vision tensors; 494,032,768 parameters (published). */
static void test_qwen2_text(void) {
    struct model_config c;
    if (parse_fixture(&c, "tests/fixtures/configs/qwen2_0_5b_v5.json") != 0) return;
    struct param_counts pc;
    params_count(&c, &pc);
    T_EQ(pc.vision_total, 0);
    T_EQ(pc.vision_patch_embed, 0);
    T_EQ(pc.n_tensors, 1 + 12 * 24 + 1);
    T_EQ(pc.total, 494032768LL);
    T_EQ(pc.kv_bytes_per_token, 2 * 24 * 2 * 64 * 2);
    struct param_tensor *ts = NULL;
    int64_t n = 0;
    struct err e = {0};
    T_RC(params_tensors(&c, &ts, &n, &e), &e);
    if (ts) T_STREQ(ts[0].name, "model.embed_tokens.weight");
    for (int64_t i = 0; i < n; i++) T_OK(!ts[i].vision && strncmp(ts[i].name, "visual", 6) != 0);
    free(ts);
}

/* An invalid config is refused by params_tensors (never a garbage list). */
static void test_invalid(void) {
    struct model_config c;
    if (parse_fixture(&c, "tests/fixtures/configs/q25_tiny_v5.json") != 0) return;
    c.num_key_value_heads = 3;
    struct param_tensor *ts = NULL;
    int64_t n = 0;
    struct err e = {0};
    T_FAILS(params_tensors(&c, &ts, &n, &e), VELA_EINVAL, &e);
    T_OK(ts == NULL && n == 0);
}

/* Runs `$VELA_BIN args` and captures stdout and stderr; returns the exit status or -1. */
static int run_vela(const char *args, char *out, size_t cap) {
    const char *bin = getenv("VELA_BIN");
    out[0] = '\0';
    if (!bin || !*bin) return -1;
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", bin, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `vela inspect` on a folder holding only the real 7B config.json. */
static void test_inspect_config_only(void) {
    const char *src = t_shared("models/qwen2.5-vl-7b/config.json");
    if (!src) return;
    if (!getenv("VELA_BIN")) {
        T_SKIP("VELA_BIN not set");
        return;
    }
    char *buf = NULL;
    size_t len = 0;
    struct err e = {0};
    T_RC(file_read_all(src, 1 << 20, &buf, &len, &e), &e);
    const char *dir = t_tmpdir("inspect");
    if (!buf || !dir) {
        free(buf);
        return;
    }
    char dir_copy[4096], path[4200], args[4300];
    snprintf(dir_copy, sizeof dir_copy, "%s", dir);
    snprintf(path, sizeof path, "%s/config.json", dir_copy);
    T_RC(file_write_all(path, buf, len, &e), &e);
    free(buf);
    static char out[65536];
    snprintf(args, sizeof args, "inspect '%s'", dir_copy);
    T_EQ(run_vela(args, out, sizeof out), 0);
    T_OK(strstr(out, "Qwen2_5_VLForConditionalGeneration") != NULL);
    T_OK(strstr(out, "parameters (from config)") != NULL);
    T_OK(strstr(out, "vision tower:   676,550,144") != NULL);
    T_OK(strstr(out, "language model: 7,615,616,512") != NULL);
    T_OK(strstr(out, "total:          8,292,166,656") != NULL);
    T_OK(strstr(out, "16,584,333,312") != NULL);
    T_OK(strstr(out, "57,344 bytes per token") != NULL);
    T_OK(strstr(out, "one sequence of 128,000 tokens: kv 7,340,032,000") != NULL);
    snprintf(args, sizeof args, "inspect '%s' --json --max-model-len 1000", dir_copy);
    T_EQ(run_vela(args, out, sizeof out), 0);
    T_OK(strstr(out, "\"total\": 8292166656") != NULL);
    T_OK(strstr(out, "\"kv_bytes_per_sequence\": 57344000") != NULL);
    T_OK(strstr(out, "\"memory_bytes\": 16641677312") != NULL);
    snprintf(args, sizeof args, "inspect '%s' --max-model-len 0", dir_copy);
    T_EQ(run_vela(args, out, sizeof out), 2);
    snprintf(args, sizeof args, "inspect '%s/nothing-here'", dir_copy);
    T_EQ(run_vela(args, out, sizeof out), 1);
    T_OK(strstr(out, "config.json") != NULL);
    /* A broken config: exit 1 with the field named. */
    const char *bad = "{\"architectures\":[\"Qwen2ForCausalLM\"],\"vocab_size\":10,"
                      "\"hidden_size\":30,\"intermediate_size\":8,\"num_hidden_layers\":1,"
                      "\"num_attention_heads\":4}";
    T_RC(file_write_all(path, bad, strlen(bad), &e), &e);
    snprintf(args, sizeof args, "inspect '%s'", dir_copy);
    T_EQ(run_vela(args, out, sizeof out), 1);
    T_OK(strstr(out, "hidden_size") != NULL);
}

int main(void) {
    T_RUN(test_spec_table);
    T_RUN(test_tensor_list_7b);
    T_RUN(test_qwen2_vl);
    T_RUN(test_qwen2_text);
    T_RUN(test_invalid);
    T_RUN(test_inspect_config_only);
    return t_done();
}
