/* lm: the language-model forward, written as one straight pass over backend ops (the
 * run.c layout: structs, setup, forward).
 *
 * Shapes (T = rows of this step, D = hidden, F = intermediate, Nq/Nkv heads of hd, V = vocab,
 * S = logit rows per lm_head call):
 *   h [T, D] residual stream; x [T, D] normed input / projection outputs;
 *   q, att [T, Nq*hd]; k, v [T, Nkv*hd]; gate, up [T, F]; xs [S, D]; lg [S, V] (all F32).
 *
 * Invariants:
 *   1. every tensor of the scratch area is carved once at lm_new; a forward takes row views
 *      of the first T rows, so it allocates nothing;
 *   2. weights are borrowed (be_buffer_from_host over struct weights' BF16 data): the
 *      weights must outlive the lm;
 *   3. the KV cache has one K and one V tensor per layer, each n_blocks * block_size rows of
 *      Nkv*hd; a slot holds post-RoPE keys (spec §5.1);
 *   4. the per-step struct attn_meta is built on the stack from the batch and passed to the
 *      ops: no step state lives in struct lm.
 * Threads: the backend's owner thread. */
#include "model/lm.h"

#include "model/safetensors.h"
#include "model/weights.h"
#include "util/bf16.h"
#include "util/limits.h"
#include "util/size.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct lm_layer {
    struct tensor ln1, wq, bq, wk, bk, wv, bv, wo; /* attention */
    struct tensor ln2, wg, wu, wd;                 /* MLP */
    struct tensor wqkv, bqkv, wgu; /* stacked on a device (lm.stacked) instead of wq..bv, wg, wu */
    struct tensor kc, vc;          /* (n_blocks*block_size, Nkv*hd) cache */
};

struct lm {
    struct be *b; /* borrowed */
    struct model_config c;
    struct lm_options o;
    const struct weights *w; /* borrowed */
    struct be_buffer **bufs; /* owned: weights views, the scratch area, the caches */
    int32_t n_bufs, cap_bufs;
    struct lm_layer *layers; /* (L) */
    struct tensor embed, norm, head;
    struct tensor ids, h, x, q, k, v, att, gate, up, xs, lg; /* scratch (max rows) */
    struct tensor sids; /* (1, S) I32: lm_forward_sample's ids */
    /* On a device backend q, k, v are column views of qkv [T, Nq*hd + 2*Nkv*hd] and gate, up
     * of gu [T, 2F], filled by one GEMM each over stacked weights: fewer, larger GEMMs and no
     * per-output conversions, where each launch costs more than a decode GEMM's work. */
    bool stacked;
    struct tensor qkv, gu;
    int32_t section[3];
    float eps, theta, scale;
    struct lm_profile *prof; /* borrowed; NULL = no timing */
    bool prof_sync;          /* timing on a device: each op waits for its work */
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* rc = expr when rc is still 0, timed under `op` when profiling. */
#define LM_RUN(op, expr)                                                                           \
    do {                                                                                           \
        if (rc == 0) {                                                                             \
            double t_ = m->prof ? now_s() : 0.0;                                                   \
            rc = (expr);                                                                           \
            if (m->prof && rc == 0 && m->prof_sync) rc = be_sync(m->b, e);                         \
            if (m->prof) m->prof->seconds[op] += now_s() - t_, m->prof->calls[op]++;               \
        }                                                                                          \
    } while (0)

void lm_set_profile(struct lm *m, struct lm_profile *p) {
    m->prof = p;
    m->prof_sync = p && be_device_of(m->b) != BE_DEV_CPU; /* device ops are asynchronous */
}

const char *lm_op_name(enum lm_op op) {
    static const char *const names[LM_N_OPS] = {
        "embed", "rms_norm", "qkv_proj",     "rope",     "kv_store",  "attention", "o_proj",
        "add",   "add+norm", "gate_up_proj", "silu_mul", "down_proj", "lm_head"};
    return (int)op >= 0 && op < LM_N_OPS ? names[op] : "?";
}

static int add_buf(struct lm *m, struct be_buffer *buf, struct err *e) {
    if (m->n_bufs == m->cap_bufs) {
        int32_t cap = m->cap_bufs ? 2 * m->cap_bufs : 64;
        struct be_buffer **nb = realloc(m->bufs, (size_t)cap * sizeof *nb);
        if (!nb) {
            be_buffer_free(buf);
            return err_set(e, VELA_ENOMEM, "lm: out of memory");
        }
        m->bufs = nb, m->cap_bufs = cap;
    }
    m->bufs[m->n_bufs++] = buf;
    return 0;
}

/* The weight `name` as a BF16 tensor of its checkpoint shape, borrowed from m->w. */
static int weight(struct lm *m, const char *name, struct tensor *t, struct err *e) {
    const struct weight *w = weights_find(m->w, name);
    if (!w) return err_set(e, VELA_ENOTFOUND, "lm: checkpoint has no tensor %s", name);
    if (!w->bf16) return err_set(e, VELA_EINVAL, "lm: tensor %s was loaded check-only", name);
    struct be_buffer *buf = NULL;
    int rc = be_buffer_from_host(m->b, w->bf16, (size_t)w->n_elems * 2, BE_BUF_WEIGHTS, &buf, e);
    if (rc == 0) rc = add_buf(m, buf, e);
    if (rc == 0) rc = be_tensor_init(t, buf, 0, BE_BF16, w->n_dims, w->shape, e);
    return rc != 0 ? err_wrap(e, "lm: weight %s", name) : 0;
}

/* The named tensors of layer il stacked into one new tensor *out: 2-D weights by rows (BF16),
 * or 1-D biases end to end as one F32 row (a GEMM epilogue takes a bias of its output's
 * dtype). Device backends only: the data is copied there. */
static int stacked(struct lm *m, int32_t il, const char *const *names, int n, struct tensor *out,
                   struct err *e) {
    const struct weight *w[3];
    int64_t rows = 0, cols = 1; /* a bias stacks as one row of cols elements: cols stays 1 */
    char name[128];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "model.layers.%d.%s", (int)il, names[i]);
        w[i] = weights_find(m->w, name);
        if (!w[i] || !w[i]->bf16) return err_set(e, VELA_ENOTFOUND, "lm: no data for %s", name);
        if (i == 0 && w[0]->n_dims == 2) cols = w[0]->shape[1];
        if (w[i]->n_dims != w[0]->n_dims || (w[i]->n_dims == 2 && w[i]->shape[1] != cols))
            return err_set(e, VELA_EINVAL, "lm: %s does not stack with %s", name, names[0]);
        rows += w[i]->n_dims == 1 ? w[i]->n_elems : w[i]->shape[0];
    }
    bool bias = w[0]->n_dims == 1;
    enum be_dtype dt = bias ? BE_F32 : BE_BF16;
    int64_t shape[2] = {bias ? 1 : rows, bias ? rows : cols};
    struct be_buffer *buf = NULL;
    int rc =
        be_buffer_new(m->b, BE_BUF_WEIGHTS, (size_t)(rows * cols) * be_dtype_size(dt), &buf, e);
    if (rc == 0) rc = add_buf(m, buf, e);
    if (rc == 0) rc = be_tensor_init(out, buf, 0, dt, 2, shape, e);
    int64_t at = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        struct tensor part;
        int64_t len = bias ? w[i]->n_elems : w[i]->shape[0];
        if (!bias) {
            rc = be_tensor_rows_view(&part, out, at, len, e);
            if (rc == 0)
                rc = be_tensor_write(m->b, &part, w[i]->bf16, (size_t)w[i]->n_elems * 2, e);
        } else {
            float *f = malloc((size_t)len * sizeof *f);
            if (!f) return err_set(e, VELA_ENOMEM, "lm: out of memory");
            for (int64_t j = 0; j < len; j++) f[j] = bf16_to_f32(w[i]->bf16[j]);
            rc = be_tensor_cols_view(&part, out, at, len, e);
            if (rc == 0) rc = be_tensor_write(m->b, &part, f, (size_t)len * sizeof *f, e);
            free(f);
        }
        at += len;
    }
    return rc != 0 ? err_wrap(e, "lm: layer %d stacked %s", (int)il, names[0]) : 0;
}

static int layer_weights_stacked(struct lm *m, int32_t il, struct err *e) {
    static const char *const wqkv[3] = {"self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                        "self_attn.v_proj.weight"};
    static const char *const bqkv[3] = {"self_attn.q_proj.bias", "self_attn.k_proj.bias",
                                        "self_attn.v_proj.bias"};
    static const char *const wgu[2] = {"mlp.gate_proj.weight", "mlp.up_proj.weight"};
    struct lm_layer *L = &m->layers[il];
    int rc = stacked(m, il, wqkv, 3, &L->wqkv, e);
    if (rc == 0) rc = stacked(m, il, bqkv, 3, &L->bqkv, e);
    if (rc == 0) rc = stacked(m, il, wgu, 2, &L->wgu, e);
    return rc;
}

static int layer_weights(struct lm *m, int32_t il, struct err *e) {
    struct lm_layer *L = &m->layers[il];
    static const struct {
        const char *name;
        size_t off;
        bool stacked; /* part of wqkv, bqkv or wgu when m->stacked */
    } tab[] = {
        {"input_layernorm.weight", offsetof(struct lm_layer, ln1), false},
        {"self_attn.q_proj.weight", offsetof(struct lm_layer, wq), true},
        {"self_attn.q_proj.bias", offsetof(struct lm_layer, bq), true},
        {"self_attn.k_proj.weight", offsetof(struct lm_layer, wk), true},
        {"self_attn.k_proj.bias", offsetof(struct lm_layer, bk), true},
        {"self_attn.v_proj.weight", offsetof(struct lm_layer, wv), true},
        {"self_attn.v_proj.bias", offsetof(struct lm_layer, bv), true},
        {"self_attn.o_proj.weight", offsetof(struct lm_layer, wo), false},
        {"post_attention_layernorm.weight", offsetof(struct lm_layer, ln2), false},
        {"mlp.gate_proj.weight", offsetof(struct lm_layer, wg), true},
        {"mlp.up_proj.weight", offsetof(struct lm_layer, wu), true},
        {"mlp.down_proj.weight", offsetof(struct lm_layer, wd), false},
    };
    int rc = m->stacked ? layer_weights_stacked(m, il, e) : 0;
    for (size_t i = 0; rc == 0 && i < sizeof tab / sizeof tab[0]; i++) {
        if (m->stacked && tab[i].stacked) continue;
        char name[128];
        snprintf(name, sizeof name, "model.layers.%d.%s", (int)il, tab[i].name);
        rc = weight(m, name, (struct tensor *)((char *)L + tab[i].off), e);
    }
    return rc;
}

/* One scratch tensor: where it goes, its dtype and size. */
struct carve {
    struct tensor *t;
    enum be_dtype dt;
    int64_t rows, cols;
};

/* Lays the tensors out back to back (64-byte aligned) in one compute buffer. */
static int carve_scratch(struct lm *m, struct carve *cv, int n, struct err *e) {
    size_t total = 0, off[16];
    if (n > 16) return err_set(e, VELA_EINVAL, "lm: too many scratch tensors");
    for (int i = 0; i < n; i++) {
        size_t bytes;
        off[i] = total; /* a multiple of 64 */
        if (!size_mul_ok((size_t)cv[i].rows, (size_t)cv[i].cols, &bytes) ||
            !size_mul_ok(bytes, be_dtype_size(cv[i].dt), &bytes) ||
            !size_add_ok(total, bytes, &total) || !size_add_ok(total, 63, &total))
            return err_set(e, VELA_ELIMIT, "lm: scratch size overflows");
        total &= ~(size_t)63;
    }
    struct be_buffer *buf = NULL;
    int rc = be_buffer_new(m->b, BE_BUF_COMPUTE, total, &buf, e);
    if (rc == 0) rc = add_buf(m, buf, e);
    for (int i = 0; rc == 0 && i < n; i++) {
        int64_t shape[2] = {cv[i].rows, cv[i].cols};
        rc = be_tensor_init(cv[i].t, buf, off[i], cv[i].dt, 2, shape, e);
    }
    return rc != 0 ? err_wrap(e, "lm: scratch of %zu bytes", total) : 0;
}

static int alloc_cache(struct lm *m, struct err *e) {
    const struct model_config *c = &m->c;
    int64_t rows = (int64_t)m->o.n_blocks * m->o.block_size;
    int64_t cols = (int64_t)c->num_key_value_heads * c->head_dim;
    size_t bytes;
    if (!size_mul_ok((size_t)rows, (size_t)cols, &bytes) ||
        !size_mul_ok(bytes, be_dtype_size(m->o.kv_dtype), &bytes))
        return err_set(e, VELA_ELIMIT, "lm: KV cache size overflows");
    for (int32_t il = 0; il < c->num_hidden_layers; il++) {
        struct tensor *ts[2] = {&m->layers[il].kc, &m->layers[il].vc};
        for (int j = 0; j < 2; j++) {
            struct be_buffer *buf = NULL;
            int64_t shape[2] = {rows, cols};
            int rc = be_buffer_new(m->b, BE_BUF_COMPUTE, bytes, &buf, e);
            if (rc == 0) rc = add_buf(m, buf, e);
            if (rc == 0) rc = be_tensor_init(ts[j], buf, 0, m->o.kv_dtype, 2, shape, e);
            if (rc != 0) return err_wrap(e, "lm: KV cache (%zu bytes per layer and tensor)", bytes);
        }
    }
    return 0;
}

static int check_opts(const struct lm_options *o, struct err *e) {
    if (o->max_tokens < 1 || o->max_seqs < 1 || o->n_blocks < 1 || o->logit_rows < 0)
        return err_set(e, VELA_EINVAL, "lm: options max_tokens %d, max_seqs %d, n_blocks %d",
                       (int)o->max_tokens, (int)o->max_seqs, (int)o->n_blocks);
    if (o->block_size < 1 || o->block_size > VELA_KV_MAX_BLOCK_SIZE ||
        o->n_blocks > VELA_KV_MAX_BLOCKS)
        return err_set(e, VELA_ELIMIT, "lm: block size %d (1..%d), %d blocks (max %d)",
                       (int)o->block_size, VELA_KV_MAX_BLOCK_SIZE, (int)o->n_blocks,
                       VELA_KV_MAX_BLOCKS);
    if (o->kv_dtype != BE_F32 && o->kv_dtype != BE_BF16)
        return err_set(e, VELA_EINVAL, "lm: KV cache dtype %s (F32 or BF16)",
                       be_dtype_name(o->kv_dtype));
    return 0;
}

static int lm_setup(struct lm *m, struct err *e) {
    const struct model_config *c = &m->c;
    int32_t L = c->num_hidden_layers, hd = c->head_dim;
    int64_t D = c->hidden_size, F = c->intermediate_size, V = c->vocab_size;
    int64_t nq = (int64_t)c->num_attention_heads * hd, nkv = (int64_t)c->num_key_value_heads * hd;
    m->layers = calloc((size_t)L, sizeof *m->layers);
    if (!m->layers) return err_set(e, VELA_ENOMEM, "lm: out of memory");
    int rc = weight(m, "model.embed_tokens.weight", &m->embed, e);
    if (rc == 0) rc = weight(m, "model.norm.weight", &m->norm, e);
    if (rc == 0 && c->tie_word_embeddings) m->head = m->embed;
    if (rc == 0 && !c->tie_word_embeddings) rc = weight(m, "lm_head.weight", &m->head, e);
    for (int32_t il = 0; rc == 0 && il < L; il++) rc = layer_weights(m, il, e);
    if (rc != 0) return rc;
    int64_t T = m->o.max_tokens, S = m->o.logit_rows;
    const struct carve common[] = {
        {&m->ids, BE_I32, 1, T},  {&m->h, BE_F32, T, D},  {&m->x, BE_F32, T, D},
        {&m->att, BE_F32, T, nq}, {&m->xs, BE_F32, S, D}, {&m->lg, BE_F32, S, V},
        {&m->sids, BE_I32, 1, S},
    };
    int n = (int)(sizeof common / sizeof common[0]);
    struct carve cv[sizeof common / sizeof common[0] + 5]; /* + the projections' outputs */
    memcpy(cv, common, sizeof common);
    if (m->stacked) { /* the same bytes: q|k|v and gate|up side by side in a row of one each */
        cv[n++] = (struct carve){&m->qkv, BE_F32, T, nq + 2 * nkv};
        cv[n++] = (struct carve){&m->gu, BE_F32, T, 2 * F};
    } else {
        cv[n++] = (struct carve){&m->q, BE_F32, T, nq};
        cv[n++] = (struct carve){&m->k, BE_F32, T, nkv};
        cv[n++] = (struct carve){&m->v, BE_F32, T, nkv};
        cv[n++] = (struct carve){&m->gate, BE_F32, T, F};
        cv[n++] = (struct carve){&m->up, BE_F32, T, F};
    }
    rc = carve_scratch(m, cv, n, e);
    if (rc == 0 && m->stacked) {
        rc = be_tensor_cols_view(&m->q, &m->qkv, 0, nq, e);
        if (rc == 0) rc = be_tensor_cols_view(&m->k, &m->qkv, nq, nkv, e);
        if (rc == 0) rc = be_tensor_cols_view(&m->v, &m->qkv, nq + nkv, nkv, e);
        if (rc == 0) rc = be_tensor_cols_view(&m->gate, &m->gu, 0, F, e);
        if (rc == 0) rc = be_tensor_cols_view(&m->up, &m->gu, F, F, e);
    }
    if (rc == 0) rc = alloc_cache(m, e);
    return rc;
}

int lm_new(struct lm **out, struct be *b, const struct model_config *c, const struct weights *w,
           const struct lm_options *o, struct err *e) {
    if (!out || !b || !c || !w || !o) return err_set(e, VELA_EINVAL, "lm: NULL argument");
    struct lm_options opt = *o;
    if (opt.block_size == 0) opt.block_size = 16;
    if (opt.logit_rows == 0) opt.logit_rows = opt.max_seqs;
    int rc = check_opts(&opt, e);
    if (rc != 0) return rc;
    struct lm *m = calloc(1, sizeof *m);
    if (!m) return err_set(e, VELA_ENOMEM, "lm: out of memory");
    m->b = b, m->c = *c, m->o = opt, m->w = w;
    m->stacked = opt.stack_weights > 0 || (opt.stack_weights == 0 && be_device_of(b) != BE_DEV_CPU);
    int32_t hd = c->head_dim;
    if (c->has_mrope) {
        memcpy(m->section, c->mrope_section, sizeof m->section);
    } else { /* Qwen2: 1-D RoPE, every frequency on row 0 */
        m->section[0] = hd / 2, m->section[1] = m->section[2] = 0;
    }
    m->eps = (float)c->rms_norm_eps;
    m->theta = (float)c->rope_theta;
    m->scale = 1.0f / sqrtf((float)hd);
    rc = lm_setup(m, e);
    if (rc != 0) {
        lm_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void lm_free(struct lm *m) {
    if (!m) return;
    for (int32_t i = m->n_bufs - 1; i >= 0; i--) be_buffer_free(m->bufs[i]);
    free(m->bufs);
    free(m->layers);
    free(m);
}

int32_t lm_vocab(const struct lm *m) {
    return m->c.vocab_size;
}
int32_t lm_block_size(const struct lm *m) {
    return m->o.block_size;
}
int32_t lm_n_blocks(const struct lm *m) {
    return m->o.n_blocks;
}
const struct lm_options *lm_opts(const struct lm *m) {
    return &m->o;
}

static int check_batch(const struct lm *m, const struct lm_batch *bt, struct err *e) {
    if (!bt->token_ids || !bt->positions || !bt->slot_mapping || !bt->query_start ||
        !bt->n_computed || !bt->block_tables)
        return err_set(e, VELA_EINVAL, "lm: batch array missing");
    if (bt->n_tokens < 1 || bt->n_tokens > m->o.max_tokens)
        return err_set(e, VELA_ELIMIT, "lm: batch of %d tokens (1..%d)", (int)bt->n_tokens,
                       (int)m->o.max_tokens);
    if (bt->n_seqs < 1 || bt->n_seqs > m->o.max_seqs)
        return err_set(e, VELA_ELIMIT, "lm: batch of %d sequences (1..%d)", (int)bt->n_seqs,
                       (int)m->o.max_seqs);
    if (!bt->all_logits && (bt->n_logits < 0 || (bt->n_logits > 0 && !bt->logit_rows)))
        return err_set(e, VELA_EINVAL, "lm: %d logit rows", (int)bt->n_logits);
    for (int32_t i = 0; !bt->all_logits && i < bt->n_logits; i++)
        if (bt->logit_rows[i] < 0 || bt->logit_rows[i] >= bt->n_tokens)
            return err_set(e, VELA_EINVAL, "lm: logit row %d outside the batch of %d tokens",
                           (int)bt->logit_rows[i], (int)bt->n_tokens);
    return 0;
}

/* Rows r of src -> rows of dst (1-row views: the final norm of the sampled rows only). */
static int view(struct tensor *out, const struct tensor *t, int64_t r0, int64_t n, struct err *e) {
    return be_tensor_rows_view(out, t, r0, n, e);
}

/* Final norm + lm_head for the requested rows, S at a time, into logits: two ops whatever
 * the row count (a norm per row would be a launch per sequence on a device). */
static int lm_logits(struct lm *m, const struct lm_batch *bt, float *logits, struct err *e) {
    int64_t V = m->c.vocab_size, S = m->o.logit_rows;
    int32_t n_out = bt->all_logits ? bt->n_tokens : bt->n_logits;
    int rc = 0;
    for (int32_t r0 = 0; rc == 0 && r0 < n_out; r0 += (int32_t)S) {
        int32_t cnt = n_out - r0 < S ? n_out - r0 : (int32_t)S;
        struct tensor xs, lg, hr;
        rc = view(&xs, &m->xs, 0, cnt, e);
        if (rc == 0) rc = view(&lg, &m->lg, 0, cnt, e);
        if (rc == 0 && bt->all_logits) { /* contiguous rows: one norm */
            rc = view(&hr, &m->h, r0, cnt, e);
            if (rc == 0) rc = be_rms_norm(m->b, &xs, &hr, &m->norm, m->eps, e);
        }
        if (rc == 0 && !bt->all_logits) { /* the sampled rows, gathered, then one norm */
            rc = be_gather_rows(m->b, &xs, &m->h, bt->logit_rows + r0, e);
            if (rc == 0) rc = be_rms_norm(m->b, &xs, &xs, &m->norm, m->eps, e);
        }
        if (rc == 0) rc = be_matmul(m->b, &lg, &xs, &m->head, NULL, e);
        if (rc == 0 && logits) /* NULL: they stay in m->lg for lm_forward_sample */
            rc = be_tensor_read(m->b, &lg, logits + (size_t)r0 * (size_t)V,
                                (size_t)cnt * (size_t)V * sizeof(float), e);
    }
    return rc;
}

/* Rows of h whose mask byte is set take the caller's embeddings (image tokens). */
static int lm_override(struct lm *m, const struct lm_batch *bt, struct tensor *h, struct err *e) {
    int64_t D = m->c.hidden_size;
    for (int32_t i = 0; i < bt->n_tokens; i++) {
        if (bt->embeds_mask && !bt->embeds_mask[i]) continue;
        struct tensor hr;
        int rc = view(&hr, h, i, 1, e);
        if (rc == 0)
            rc = be_tensor_write(m->b, &hr, bt->embeds + (size_t)i * (size_t)D,
                                 (size_t)D * sizeof(float), e);
        if (rc != 0) return rc;
    }
    return 0;
}

/* The forward of a checked batch; logits NULL leaves them on the backend (m->lg). */
static int forward(struct lm *m, const struct lm_batch *bt, float *logits, struct err *e) {
    int rc = 0;
    int32_t n = bt->n_tokens;
    struct tensor ids, h, x, q, k, v, att, gate, up;
    struct {
        struct tensor *dst;
        const struct tensor *src;
    } vw[] = {{&ids, &m->ids}, {&h, &m->h},     {&x, &m->x},       {&q, &m->q},  {&k, &m->k},
              {&v, &m->v},     {&att, &m->att}, {&gate, &m->gate}, {&up, &m->up}};
    for (size_t i = 0; rc == 0 && i < sizeof vw / sizeof vw[0]; i++)
        rc = vw[i].src == &m->ids ? be_tensor_cols_view(vw[i].dst, vw[i].src, 0, n, e)
                                  : view(vw[i].dst, vw[i].src, 0, n, e);
    struct tensor qkv_all, gu_all; /* stacked: the rows of m->qkv and m->gu */
    if (rc == 0 && m->stacked) rc = view(&qkv_all, &m->qkv, 0, n, e);
    if (rc == 0 && m->stacked) rc = view(&gu_all, &m->gu, 0, n, e);
    if (rc == 0) rc = be_tensor_write(m->b, &ids, bt->token_ids, (size_t)n * 4, e);
    LM_RUN(LM_OP_EMBED, be_embed(m->b, &h, &m->embed, &ids, e));
    if (rc == 0 && bt->embeds) rc = lm_override(m, bt, &h, e);
    if (rc != 0) return rc;

    const struct attn_meta am = {.n_seqs = bt->n_seqs,
                                 .query_start = bt->query_start,
                                 .n_computed = bt->n_computed,
                                 .block_tables = bt->block_tables,
                                 .max_blocks_per_seq = bt->max_blocks_per_seq,
                                 .slot_mapping = bt->slot_mapping,
                                 .block_size = m->o.block_size,
                                 .head_dim = m->c.head_dim,
                                 .scale = m->scale};
    const struct rope_args ra = {.pos = bt->positions,
                                 .head_dim = m->c.head_dim,
                                 .section = {m->section[0], m->section[1], m->section[2]},
                                 .theta = m->theta};
    /* every slot and block checked before layer 0 writes any: a bad batch leaves the cache
     * as it was */
    rc = be_attn_meta_check(&am, n, be_tensor_rows(&m->layers[0].kc), e);
    /* Each residual add runs fused with the norm after it (be_add_rms_norm: the same
     * roundings as the two ops), so a layer's ln1 is applied by the previous layer's last add;
     * only layer 0's ln1 and the last layer's add stand alone. */
    int32_t n_layers = m->c.num_hidden_layers;
    if (rc == 0 && n_layers > 0)
        LM_RUN(LM_OP_NORM, be_rms_norm(m->b, &x, &h, &m->layers[0].ln1, m->eps, e));
    for (int32_t il = 0; rc == 0 && il < n_layers; il++) {
        struct lm_layer *L = &m->layers[il];
        /* attention block: h += o_proj(attn(rope(q), rope(k), v)); x = ln1(h) on entry */
        const struct be_mm_out qkv[3] = {
            {&q, &L->wq, &L->bq}, {&k, &L->wk, &L->bk}, {&v, &L->wv, &L->bv}};
        if (m->stacked)
            LM_RUN(LM_OP_QKV, be_matmul(m->b, &qkv_all, &x, &L->wqkv, &L->bqkv, e));
        else
            LM_RUN(LM_OP_QKV, be_matmul_multi(m->b, qkv, 3, &x, e));
        LM_RUN(LM_OP_ROPE, be_rope(m->b, &q, &k, &ra, e));
        LM_RUN(LM_OP_KV_STORE, be_kv_store(m->b, &L->kc, &L->vc, &k, &v, &am, e));
        LM_RUN(LM_OP_ATTN, be_attention(m->b, &att, &q, &L->kc, &L->vc, &am, e));
        LM_RUN(LM_OP_O_PROJ, be_matmul(m->b, &x, &att, &L->wo, NULL, e));
        /* MLP block: x = ln2(h += x); h += down(silu(gate(x)) * up(x)) */
        LM_RUN(LM_OP_ADD_NORM, be_add_rms_norm(m->b, &h, &x, &x, &L->ln2, m->eps, e));
        const struct be_mm_out gate_up[2] = {{&gate, &L->wg, NULL}, {&up, &L->wu, NULL}};
        if (m->stacked)
            LM_RUN(LM_OP_GATE_UP, be_matmul(m->b, &gu_all, &x, &L->wgu, NULL, e));
        else
            LM_RUN(LM_OP_GATE_UP, be_matmul_multi(m->b, gate_up, 2, &x, e));
        LM_RUN(LM_OP_SILU, be_silu_mul(m->b, &gate, &gate, &up, e));
        LM_RUN(LM_OP_DOWN, be_matmul(m->b, &x, &gate, &L->wd, NULL, e));
        if (il + 1 < n_layers)
            LM_RUN(LM_OP_ADD_NORM,
                   be_add_rms_norm(m->b, &h, &x, &x, &m->layers[il + 1].ln1, m->eps, e));
        else
            LM_RUN(LM_OP_ADD, be_add(m->b, &h, &h, &x, e));
        if (rc != 0) err_wrap(e, "layer %d", (int)il);
    }
    if (bt->all_logits || bt->n_logits > 0) LM_RUN(LM_OP_LM_HEAD, lm_logits(m, bt, logits, e));
    if (rc == 0) rc = be_sync(m->b, e);
    return rc;
}

int lm_forward(struct lm *m, const struct lm_batch *bt, float *logits, struct err *e) {
    if (!m || !bt) return err_set(e, VELA_EINVAL, "lm: NULL argument");
    int rc = check_batch(m, bt, e);
    if (rc != 0) return rc;
    if (!logits && (bt->all_logits || bt->n_logits > 0))
        return err_set(e, VELA_EINVAL, "lm: logits requested without an output array");
    return forward(m, bt, logits, e);
}

bool lm_can_sample(const struct lm *m, bool device_only) {
    return m && be_can_sample(m->b) && (!device_only || be_device_of(m->b) != BE_DEV_CPU);
}

int lm_forward_sample(struct lm *m, const struct lm_batch *bt, const struct be_sample_row *rows,
                      int32_t *ids, struct err *e) {
    if (!m || !bt) return err_set(e, VELA_EINVAL, "lm: NULL argument");
    int rc = check_batch(m, bt, e);
    if (rc != 0) return rc;
    if (bt->all_logits || bt->n_logits > m->o.logit_rows)
        return err_set(e, VELA_EINVAL, "lm: %d rows to sample, at most %d (and not all_logits)",
                       bt->all_logits ? bt->n_tokens : bt->n_logits, (int)m->o.logit_rows);
    if (bt->n_logits > 0 && (!rows || !ids)) return err_set(e, VELA_EINVAL, "lm: NULL argument");
    rc = forward(m, bt, NULL, e);
    if (rc != 0 || bt->n_logits == 0) return rc;
    struct tensor lg, sids;
    rc = view(&lg, &m->lg, 0, bt->n_logits, e);
    if (rc == 0) rc = be_tensor_cols_view(&sids, &m->sids, 0, bt->n_logits, e);
    if (rc == 0) rc = be_sample(m->b, &sids, &lg, rows, e);
    if (rc == 0) rc = be_tensor_read(m->b, &sids, ids, (size_t)bt->n_logits * sizeof *ids, e);
    return rc;
}

int lm_files_open(struct lm_files *f, const char *dir, struct err *e) {
    return lm_files_open_mode(f, dir, FILE_MAP_MMAP, e);
}

int lm_files_open_mode(struct lm_files *f, const char *dir, enum file_map_mode mode,
                       struct err *e) {
    memset(f, 0, sizeof *f);
    int rc = cfg_load(&f->cfg, dir, e);
    if (rc == 0) rc = gen_config_load(&f->gen, dir, e);
    if (rc == 0) rc = st_model_open_mode(&f->st, dir, mode, e);
    if (rc == 0) rc = weights_load(&f->w, &f->cfg, f->st, 0, e);
    if (rc != 0) lm_files_close(f);
    return rc;
}

int lm_files_open_dummy(struct lm_files *f, const char *dir, uint64_t seed, int32_t n_threads,
                        struct err *e) {
    memset(f, 0, sizeof *f);
    int rc = cfg_load(&f->cfg, dir, e);
    if (rc == 0) rc = gen_config_load(&f->gen, dir, e);
    if (rc == 0) rc = weights_dummy(&f->w, &f->cfg, seed, n_threads, true, e);
    if (rc != 0) lm_files_close(f);
    return rc;
}

void lm_files_close(struct lm_files *f) {
    if (!f) return;
    weights_free(f->w);
    st_model_close(f->st);
    f->w = NULL, f->st = NULL;
}
