/* Tests for model/weights.c on small checkpoints written with st_writer: legacy and new
 * names, F16/F32 conversion, misaligned-free in-place BF16, missing tensors, wrong shapes,
 * unexpected tensors, names under both spellings, unsupported dtypes, tied lm_head. */
#include "model/config.h"
#include "model/params.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "t.h"
#include "util/bf16.h"
#include "util/file.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* A small Qwen2.5-VL: every tensor kind, a few KB of data per tensor. */
static void tiny_config(struct model_config *c, bool tied) {
    memset(c, 0, sizeof *c);
    c->arch = ARCH_QWEN2_5_VL;
    snprintf(c->architecture, sizeof c->architecture, "%s", cfg_arch_name(c->arch));
    snprintf(c->model_type, sizeof c->model_type, "qwen2_5_vl");
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "bfloat16");
    c->vocab_size = 96;
    c->hidden_size = 32;
    c->intermediate_size = 48;
    c->num_hidden_layers = 2;
    c->num_attention_heads = 4;
    c->num_key_value_heads = 2;
    c->head_dim = 8;
    c->max_position_embeddings = 256;
    c->rope_theta = 1e6;
    c->rms_norm_eps = 1e-6;
    c->tie_word_embeddings = tied;
    c->has_mrope = c->has_vision = true;
    c->mrope_section[0] = 2;
    c->mrope_section[1] = 1;
    c->mrope_section[2] = 1;
    c->bos_token_id = c->pad_token_id = -1;
    struct vision_config *v = &c->vision;
    v->depth = 2;
    v->hidden_size = 16;
    v->intermediate_size = 24;
    v->num_heads = 2;
    v->in_chans = 3;
    v->patch_size = 2;
    v->spatial_merge_size = 2;
    v->temporal_patch_size = 2;
    v->tokens_per_second = 2;
    v->window_size = 8;
    v->out_hidden_size = 32;
    v->n_fullatt = 1;
    v->fullatt_block_indexes[0] = 1;
    snprintf(v->hidden_act, sizeof v->hidden_act, "silu");
}

/* How the checkpoint written by write_ckpt departs from the config. */
struct variant {
    bool new_names;        /* model.language_model.* / model.visual.* */
    const char *skip;      /* legacy name left out */
    const char *bad_shape; /* legacy name written with one row too many */
    const char *f32;       /* legacy name written as F32 ("*" = all) */
    const char *f16;       /* legacy name written as F16 */
    const char *i32;       /* legacy name written as I32 */
    const char *extra;     /* an extra tensor name */
    const char *dup;       /* legacy name written under both spellings */
};

static float value(int64_t i, int64_t k) {
    return (float)((i * 7 + k) % 13) - 6.0f; /* exact in BF16 and F16 */
}

static bool is(const char *pat, const char *name) {
    return pat && (strcmp(pat, "*") == 0 || strcmp(pat, name) == 0);
}

static int write_one(struct st_writer *wr, enum st_dtype dt, int64_t i, int64_t n, struct err *e) {
    size_t es = st_dtype_size(dt);
    unsigned char *buf = malloc((size_t)n * es + 1);
    if (!buf) return VELA_ENOMEM;
    for (int64_t k = 0; k < n; k++) {
        float f = value(i, k);
        if (dt == ST_F32) {
            memcpy(buf + 4 * k, &f, 4);
        } else if (dt == ST_I32) {
            int32_t x = (int32_t)f;
            memcpy(buf + 4 * k, &x, 4);
        } else { /* BF16, and F16 via the exact small integers (sign, exponent, mantissa) */
            uint16_t h = f32_to_bf16(f);
            if (dt == ST_F16) {
                int32_t x = (int32_t)f;
                uint16_t sign = x < 0 ? 0x8000u : 0;
                uint32_t a = (uint32_t)(x < 0 ? -x : x);
                h = sign;
                if (a) {
                    int ex = 0;
                    while ((a >> ex) > 1) ex++;
                    h |= (uint16_t)(((ex + 15) << 10) | (((a << (10 - ex)) & 0x3ffu)));
                }
            }
            memcpy(buf + 2 * k, &h, 2);
        }
    }
    int rc = st_writer_write(wr, buf, (size_t)n * es, e);
    free(buf);
    return rc;
}

struct entry {
    char name[160];
    enum st_dtype dt;
    int32_t n_dims;
    int64_t shape[PARAM_MAX_DIMS];
    int64_t src; /* index into the expected list, for the values */
};

static int write_ckpt(const char *dir, const struct model_config *c, const struct variant *v) {
    struct param_tensor *ts = NULL;
    int64_t n = 0;
    struct err e = {0};
    int rc = params_tensors(c, &ts, &n, &e);
    if (rc) return rc;
    struct entry *es = calloc((size_t)n + 2, sizeof *es);
    int64_t ne = 0;
    for (int64_t i = 0; i < n; i++) {
        const char *nm = ts[i].name;
        if (is(v->skip, nm)) continue;
        struct entry *x = &es[ne++];
        x->src = i;
        x->n_dims = ts[i].n_dims;
        memcpy(x->shape, ts[i].shape, sizeof x->shape);
        if (is(v->bad_shape, nm)) x->shape[0]++;
        x->dt = is(v->f32, nm)   ? ST_F32
                : is(v->f16, nm) ? ST_F16
                : is(v->i32, nm) ? ST_I32
                                 : ST_BF16;
        if (v->new_names && strncmp(nm, "model.", 6) == 0)
            snprintf(x->name, sizeof x->name, "model.language_model.%s", nm + 6);
        else if (v->new_names && strncmp(nm, "visual.", 7) == 0)
            snprintf(x->name, sizeof x->name, "model.visual.%s", nm + 7);
        else
            snprintf(x->name, sizeof x->name, "%s", nm);
        if (is(v->dup, nm)) {
            es[ne] = *x;
            snprintf(es[ne].name, sizeof es[ne].name, "model.language_model.%s", nm + 6);
            ne++;
        }
    }
    if (v->extra) {
        struct entry *x = &es[ne++];
        snprintf(x->name, sizeof x->name, "%s", v->extra);
        x->dt = ST_F32;
        x->n_dims = 1;
        x->shape[0] = 4;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct st_writer *wr = NULL;
    rc = st_writer_new(&wr, path, &e);
    for (int64_t i = 0; rc == 0 && i < ne; i++)
        rc = st_writer_declare(wr, es[i].name, es[i].dt, es[i].n_dims, es[i].shape, &e);
    for (int64_t i = 0; rc == 0 && i < ne; i++) {
        int64_t cnt = 1;
        for (int32_t d = 0; d < es[i].n_dims; d++) cnt *= es[i].shape[d];
        rc = write_one(wr, es[i].dt, es[i].src, cnt, &e);
    }
    if (rc == 0) rc = st_writer_finish(wr, &e);
    if (rc) fprintf(stderr, "write_ckpt: %s\n", e.msg);
    st_writer_free(wr);
    free(es);
    free(ts);
    return rc;
}

/* Writes a variant and loads it; returns weights_load's code (*m and *w stay NULL on error). */
static int load_variant(const struct model_config *c, const struct variant *v, unsigned flags,
                        struct st_model **m, struct weights **w, struct err *e) {
    *m = NULL;
    *w = NULL;
    const char *dir = t_tmpdir("weights");
    if (!dir || write_ckpt(dir, c, v) != 0) return VELA_EIO;
    int rc = st_model_open(m, dir, e);
    if (rc) return rc;
    rc = weights_load(w, c, *m, flags, e);
    if (rc) {
        st_model_close(*m);
        *m = NULL;
    }
    return rc;
}

static void check_values(const struct weight *x, int64_t src) {
    int bad = 0;
    for (int64_t k = 0; k < x->n_elems; k++)
        if (bf16_to_f32(x->bf16[k]) != value(src, k)) bad++;
    T_CHECK_(bad == 0, "%s: %d values differ", x->name, bad);
}

static void test_legacy_bf16(void) {
    struct model_config c;
    tiny_config(&c, false);
    struct st_model *m;
    struct weights *w;
    struct err e = {0};
    struct variant v = {0};
    T_RC(load_variant(&c, &v, 0, &m, &w, &e), &e);
    if (!w) return;
    struct param_counts pc;
    params_count(&c, &pc);
    T_EQ(weights_count(w), pc.n_tensors);
    T_EQ(weights_n_unexpected(w), 0);
    T_EQ(weights_params_vision(w), pc.vision_total);
    T_EQ(weights_params_lm(w), pc.lm_total);
    for (int64_t i = 0; i < weights_count(w); i++) {
        const struct weight *x = weights_at(w, i);
        T_OK(!x->owned && x->bf16 != NULL && x->file_dtype == ST_BF16);
        check_values(x, i);
    }
    const struct weight *x = weights_find(w, "model.layers.1.mlp.up_proj.weight");
    T_OK(x && x->shape[0] == 48 && x->shape[1] == 32);
    const struct st_tensor *t = st_model_find(m, "model.layers.1.mlp.up_proj.weight");
    T_OK(x && t && (const void *)x->bf16 == t->data); /* in place */
    T_OK(weights_find(w, "model.language_model.layers.1.mlp.up_proj.weight") == x);
    T_OK(weights_find(w, "model.layers.2.mlp.up_proj.weight") == NULL);
    T_OK(weights_find(w, "lm_head.weight") != NULL);
    weights_free(w);
    st_model_close(m);
}

static void test_new_names_and_conversion(void) {
    struct model_config c;
    tiny_config(&c, false);
    struct st_model *m;
    struct weights *w;
    struct err e = {0};
    struct variant v = {.new_names = true,
                        .f32 = "visual.merger.mlp.0.weight",
                        .f16 = "model.layers.0.self_attn.q_proj.bias"};
    T_RC(load_variant(&c, &v, 0, &m, &w, &e), &e);
    if (!w) return;
    const struct weight *x = weights_find(w, "visual.blocks.1.attn.qkv.weight");
    T_OK(x && strcmp(x->file_name, "model.visual.blocks.1.attn.qkv.weight") == 0);
    x = weights_find(w, "visual.merger.mlp.0.weight");
    T_OK(x && x->owned && x->file_dtype == ST_F32);
    x = weights_find(w, "model.layers.0.self_attn.q_proj.bias");
    T_OK(x && x->owned && x->file_dtype == ST_F16);
    for (int64_t i = 0; i < weights_count(w); i++) check_values(weights_at(w, i), i);
    T_EQ(weights_n_unexpected(w), 0);
    weights_free(w);
    st_model_close(m);

    /* Check-only mode converts nothing. */
    struct variant all32 = {.f32 = "*"};
    T_RC(load_variant(&c, &all32, WEIGHTS_CHECK_ONLY, &m, &w, &e), &e);
    if (!w) return;
    x = weights_at(w, 0);
    T_OK(x && x->bf16 == NULL && !x->owned && x->file_dtype == ST_F32);
    struct param_counts pc;
    params_count(&c, &pc);
    T_EQ(weights_params_vision(w) + weights_params_lm(w), pc.total);
    weights_free(w);
    st_model_close(m);
}

static void expect_fail(const struct model_config *c, const struct variant *v, int code,
                        const char *needle1, const char *needle2) {
    struct st_model *m;
    struct weights *w;
    struct err e = {0};
    int rc = load_variant(c, v, 0, &m, &w, &e);
    T_CHECK_(rc == code, "expected %d, got %d (%s)", code, rc, e.msg);
    T_CHECK_(strstr(e.msg, needle1) != NULL, "message lacks '%s': %s", needle1, e.msg);
    T_CHECK_(!needle2 || strstr(e.msg, needle2) != NULL, "message lacks '%s': %s", needle2, e.msg);
    T_OK(w == NULL && m == NULL);
}

static void test_errors(void) {
    struct model_config c;
    tiny_config(&c, false);
    struct variant v1 = {.skip = "model.layers.1.self_attn.k_proj.weight"};
    expect_fail(&c, &v1, VELA_ENOTFOUND, "model.layers.1.self_attn.k_proj.weight", "[16, 32]");
    struct variant v2 = {.skip = "visual.patch_embed.proj.weight", .new_names = true};
    expect_fail(&c, &v2, VELA_ENOTFOUND, "visual.patch_embed.proj.weight", "[16, 3, 2, 2, 2]");
    struct variant v3 = {.bad_shape = "model.embed_tokens.weight"};
    expect_fail(&c, &v3, VELA_EFORMAT, "model.embed_tokens.weight", "[97, 32], expected [96, 32]");
    struct variant v4 = {.i32 = "model.norm.weight"};
    expect_fail(&c, &v4, VELA_EUNSUP, "model.norm.weight", "I32");
    struct variant v5 = {.dup = "model.norm.weight"};
    expect_fail(&c, &v5, VELA_EFORMAT, "model.norm.weight", "both");
    /* Several problems: the first is named, the count given. */
    struct variant v6 = {.skip = "model.norm.weight", .bad_shape = "lm_head.weight"};
    expect_fail(&c, &v6, VELA_ENOTFOUND, "2 checkpoint problems", "model.norm.weight");
}

static void test_unexpected_and_tied(void) {
    struct model_config c;
    tiny_config(&c, false);
    struct st_model *m;
    struct weights *w;
    struct err e = {0};
    struct variant v = {.extra = "model.rotary_emb.inv_freq"};
    T_RC(load_variant(&c, &v, 0, &m, &w, &e), &e);
    if (w) {
        T_EQ(weights_n_unexpected(w), 1);
        T_STREQ(weights_unexpected(w, 0), "model.rotary_emb.inv_freq");
        T_OK(weights_unexpected(w, 1) == NULL);
        weights_free(w);
        st_model_close(m);
    }
    /* A checkpoint written untied, read with a tied config: lm_head is unexpected. */
    struct model_config tied;
    tiny_config(&tied, true);
    const char *dir = t_tmpdir("weights");
    struct variant plain = {0};
    T_OK(dir && write_ckpt(dir, &c, &plain) == 0);
    T_RC(st_model_open(&m, dir, &e), &e);
    if (!m) return;
    T_RC(weights_load(&w, &tied, m, 0, &e), &e);
    if (w) {
        T_EQ(weights_n_unexpected(w), 1);
        T_STREQ(weights_unexpected(w, 0), "lm_head.weight");
        T_OK(weights_find(w, "lm_head.weight") == NULL);
        weights_free(w);
    }
    st_model_close(m);
}

static void test_canonical_names(void) {
    char buf[64];
    struct err e = {0};
    T_RC(weights_canonical_name("model.language_model.norm.weight", buf, sizeof buf, &e), &e);
    T_STREQ(buf, "model.norm.weight");
    T_RC(weights_canonical_name("model.visual.merger.ln_q.weight", buf, sizeof buf, &e), &e);
    T_STREQ(buf, "visual.merger.ln_q.weight");
    T_RC(weights_canonical_name("lm_head.weight", buf, sizeof buf, &e), &e);
    T_STREQ(buf, "lm_head.weight");
    T_FAILS(
        weights_canonical_name("model.language_model.layers.0.mlp.gate_proj.weight", buf, 16, &e),
        VELA_ELIMIT, &e);
}

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

/* `vela inspect` on a full folder: counts from the tensors; a broken checkpoint fails. */
static void test_inspect_full_folder(void) {
    if (!getenv("VELA_BIN")) {
        T_SKIP("VELA_BIN not set");
        return;
    }
    struct model_config c;
    tiny_config(&c, false);
    struct err e = {0};
    char *js = NULL;
    T_RC(cfg_to_json(&c, &js, &e), &e);
    static char out[65536];
    char dir[4096], path[4200], args[4300];
    for (int round = 0; round < 2 && js; round++) {
        const char *d = t_tmpdir("inspect");
        if (!d) break;
        snprintf(dir, sizeof dir, "%s", d);
        struct variant ok = {.extra = "model.rotary_emb.inv_freq"};
        struct variant broken = {.bad_shape = "visual.blocks.1.attn.proj.bias"};
        T_OK(write_ckpt(dir, &c, round == 0 ? &ok : &broken) == 0);
        snprintf(path, sizeof path, "%s/config.json", dir);
        T_RC(file_write_all(path, js, strlen(js), &e), &e);
        snprintf(args, sizeof args, "inspect '%s'", dir);
        int rc = run_vela(args, out, sizeof out);
        if (round == 0) {
            struct param_counts pc;
            params_count(&c, &pc);
            char want[128];
            long long t = pc.total; /* < 10^6 here: "123,456" */
            snprintf(want, sizeof want, "total:          %lld,%03lld\n", t / 1000, t % 1000);
            T_EQ(rc, 0);
            T_OK(strstr(out, "parameters (from tensors)") != NULL);
            T_OK(pc.total < 1000000 && strstr(out, want) != NULL);
            T_OK(strstr(out, "(+1 unexpected, ignored)") != NULL);
        } else {
            T_EQ(rc, 1);
            T_OK(strstr(out, "visual.blocks.1.attn.proj.bias") != NULL);
        }
    }
    free(js);
}

int main(void) {
    log_set_level(LOG_ERROR); /* the unexpected-tensor warnings are expected here */
    T_RUN(test_legacy_bf16);
    T_RUN(test_new_names_and_conversion);
    T_RUN(test_errors);
    T_RUN(test_unexpected_and_tied);
    T_RUN(test_canonical_names);
    T_RUN(test_inspect_full_folder);
    return t_done();
}
