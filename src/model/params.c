/* params: the tensors a config implies (spec §2.3) and the counts derived from them (§1.4).
 *
 * One walker (walk()) produces every expected tensor in the checkpoint's stable order:
 * vision tower (patch_embed, blocks, merger), then embed_tokens, layers, norm and lm_head
 * (absent when tied). params_tensors() collects the walk into an array; params_count() sums
 * it by group, so the list and the counts can never disagree.
 *
 * Invariants:
 *   1. Names are the legacy (official hub) names; weights.c maps the new prefixes onto them.
 *   2. Shapes follow PyTorch's [out, in] order for Linear weights.
 *   3. For a config that passed cfg_validate every product fits int64 (limits.h bounds).
 * Any thread; no state. */
#include "model/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum group { G_PATCH, G_BLOCK, G_MERGER, G_EMBED, G_LAYER, G_NORM, G_HEAD };

typedef void (*walk_fn)(void *ctx, enum group g, int32_t index, const struct param_tensor *t);

struct walker {
    walk_fn fn;
    void *ctx;
    enum group g;
    int32_t index;
    bool vision;
};

static void emit(struct walker *w, enum param_kind kind, int64_t fan_in, const char *name,
                 int32_t n_dims, int64_t d0, int64_t d1, int64_t d2, int64_t d3, int64_t d4) {
    struct param_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.n_dims = n_dims;
    int64_t d[PARAM_MAX_DIMS] = {d0, d1, d2, d3, d4};
    for (int i = 0; i < n_dims; i++) t.shape[i] = d[i];
    t.fan_in = fan_in;
    t.vision = w->vision;
    t.kind = kind;
    w->fn(w->ctx, w->g, w->index, &t);
}

/* Helpers for the common shapes; prefix and suffix are joined into the name. */
static void linear(struct walker *w, const char *pre, const char *mod, int64_t n_out, int64_t n_in,
                   bool bias) {
    char name[PARAM_NAME_MAX];
    snprintf(name, sizeof name, "%s%s.weight", pre, mod);
    emit(w, PARAM_LINEAR, n_in, name, 2, n_out, n_in, 0, 0, 0);
    if (!bias) return;
    snprintf(name, sizeof name, "%s%s.bias", pre, mod);
    emit(w, PARAM_BIAS, n_in, name, 1, n_out, 0, 0, 0, 0);
}

static void norm(struct walker *w, const char *pre, const char *mod, int64_t n, bool bias) {
    char name[PARAM_NAME_MAX];
    snprintf(name, sizeof name, "%s%s.weight", pre, mod);
    emit(w, PARAM_NORM, n, name, 1, n, 0, 0, 0, 0);
    if (!bias) return;
    snprintf(name, sizeof name, "%s%s.bias", pre, mod);
    emit(w, PARAM_NORM_BIAS, n, name, 1, n, 0, 0, 0, 0);
}

/* Qwen2.5-VL: RMSNorm (gain only) and a SwiGLU MLP with biases. Qwen2-VL: LayerNorm (gain
 * and bias) and fc1 -> quick_gelu -> fc2. */
static void vision_block(struct walker *w, const struct model_config *c, int32_t j) {
    const struct vision_config *v = &c->vision;
    int64_t C = v->hidden_size, F = v->intermediate_size;
    bool ln = c->arch == ARCH_QWEN2_VL;
    char pre[PARAM_NAME_MAX];
    snprintf(pre, sizeof pre, "visual.blocks.%d.", (int)j);
    norm(w, pre, "norm1", C, ln);
    norm(w, pre, "norm2", C, ln);
    linear(w, pre, "attn.qkv", 3 * C, C, true);
    linear(w, pre, "attn.proj", C, C, true);
    if (ln) {
        linear(w, pre, "mlp.fc1", F, C, true);
        linear(w, pre, "mlp.fc2", C, F, true);
    } else {
        linear(w, pre, "mlp.gate_proj", F, C, true);
        linear(w, pre, "mlp.up_proj", F, C, true);
        linear(w, pre, "mlp.down_proj", C, F, true);
    }
}

static void vision(struct walker *w, const struct model_config *c) {
    const struct vision_config *v = &c->vision;
    int64_t C = v->hidden_size, p = v->patch_size, tp = v->temporal_patch_size;
    int64_t M = C * v->spatial_merge_size * v->spatial_merge_size; /* merged width */
    w->vision = true;
    w->g = G_PATCH;
    w->index = 0;
    emit(w, PARAM_CONV, v->in_chans * tp * p * p, "visual.patch_embed.proj.weight", 5, C,
         v->in_chans, tp, p, p);
    w->g = G_BLOCK;
    for (int32_t j = 0; j < v->depth; j++) {
        w->index = j;
        vision_block(w, c, j);
    }
    w->g = G_MERGER;
    w->index = 0;
    norm(w, "visual.merger.", "ln_q", C, c->arch == ARCH_QWEN2_VL);
    linear(w, "visual.merger.", "mlp.0", M, M, true);
    linear(w, "visual.merger.", "mlp.2", v->out_hidden_size, M, true);
    w->vision = false;
}

static void lm_layer(struct walker *w, const struct model_config *c, int32_t i) {
    int64_t D = c->hidden_size, F = c->intermediate_size;
    int64_t q = (int64_t)c->num_attention_heads * c->head_dim;
    int64_t kv = (int64_t)c->num_key_value_heads * c->head_dim;
    char pre[PARAM_NAME_MAX];
    snprintf(pre, sizeof pre, "model.layers.%d.", (int)i);
    norm(w, pre, "input_layernorm", D, false);
    linear(w, pre, "self_attn.q_proj", q, D, true);
    linear(w, pre, "self_attn.k_proj", kv, D, true);
    linear(w, pre, "self_attn.v_proj", kv, D, true);
    linear(w, pre, "self_attn.o_proj", D, q, false);
    norm(w, pre, "post_attention_layernorm", D, false);
    linear(w, pre, "mlp.gate_proj", F, D, false);
    linear(w, pre, "mlp.up_proj", F, D, false);
    linear(w, pre, "mlp.down_proj", D, F, false);
}

static void walk(const struct model_config *c, walk_fn fn, void *ctx) {
    struct walker w = {.fn = fn, .ctx = ctx};
    int64_t V = c->vocab_size, D = c->hidden_size;
    if (c->has_vision) vision(&w, c);
    w.g = G_EMBED;
    emit(&w, PARAM_EMBED, D, "model.embed_tokens.weight", 2, V, D, 0, 0, 0);
    w.g = G_LAYER;
    for (int32_t i = 0; i < c->num_hidden_layers; i++) {
        w.index = i;
        lm_layer(&w, c, i);
    }
    w.g = G_NORM;
    w.index = 0;
    norm(&w, "model.", "norm", D, false);
    if (!c->tie_word_embeddings) {
        w.g = G_HEAD;
        emit(&w, PARAM_LINEAR, D, "lm_head.weight", 2, V, D, 0, 0, 0);
    }
}

int64_t params_n_elems(const struct param_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->n_dims; i++) n *= t->shape[i];
    return n;
}

static void count_one(void *ctx, enum group g, int32_t index, const struct param_tensor *t) {
    struct param_counts *pc = ctx;
    int64_t n = params_n_elems(t);
    pc->n_tensors++;
    switch (g) {
        case G_PATCH:
            pc->vision_patch_embed += n;
            break;
        case G_BLOCK:
            if (index == 0) pc->vision_per_block += n;
            break;
        case G_MERGER:
            pc->vision_merger += n;
            break;
        case G_EMBED:
            pc->lm_embed += n;
            break;
        case G_LAYER:
            if (index == 0) pc->lm_per_layer += n;
            break;
        case G_NORM:
            break;
        case G_HEAD:
            pc->lm_head += n;
            break;
    }
    if (t->vision)
        pc->vision_total += n;
    else
        pc->lm_total += n;
}

void params_count(const struct model_config *c, struct param_counts *out) {
    memset(out, 0, sizeof *out);
    walk(c, count_one, out);
    out->total = out->vision_total + out->lm_total;
    out->kv_bytes_per_token =
        2 * (int64_t)c->num_hidden_layers * c->num_key_value_heads * c->head_dim * 2;
    out->vision_bf16_bytes = 2 * out->vision_total;
    out->lm_bf16_bytes = 2 * out->lm_total;
    out->total_bf16_bytes = 2 * out->total;
}

struct collect {
    struct param_tensor *items;
    int64_t n;
};

static void collect_one(void *ctx, enum group g, int32_t index, const struct param_tensor *t) {
    (void)g;
    (void)index;
    struct collect *col = ctx;
    col->items[col->n++] = *t;
}

int params_tensors(const struct model_config *c, struct param_tensor **out, int64_t *n_out,
                   struct err *e) {
    *out = NULL;
    *n_out = 0;
    int rc = cfg_validate(c, e);
    if (rc) return rc;
    struct param_counts pc;
    params_count(c, &pc);
    struct collect col = {.items = calloc((size_t)pc.n_tensors, sizeof *col.items)};
    if (!col.items)
        return err_set(e, VELA_ENOMEM, "params: no memory for %lld tensor records",
                       (long long)pc.n_tensors);
    walk(c, collect_one, &col);
    *out = col.items;
    *n_out = col.n;
    return 0;
}
