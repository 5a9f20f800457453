/* vit: the vision-tower forward, one straight pass over backend ops (structs, setup,
 * forward), following transformers' Qwen2_5_VisionTransformerPretrainedModel.
 *
 * Shapes (S = patches of the call, U = S / M² merge units, K = 3·T·P·P, C = hidden,
 * F = intermediate, O = out_hidden; every activation F32):
 *   px [S, K] pixel_values; h [S, C] residual stream (window order); x [S, C] normed input /
 *   projection output, also read as [U, M²·C] by the merger; qkv [S, 3C] (q | k | v, each
 *   head-major); att [S, C]; gate, up [S, F]; m1 [U, M²·C]; y, out [U, O].
 *
 * Invariants:
 *   1. the scratch tensors are carved once at vit_new for max_patches rows, the host index
 *      arrays too; a forward takes row views of the first S (or U) rows and allocates nothing;
 *   2. weights are borrowed (be_buffer_from_host over the source's BF16 data: struct
 *      weights, or any vit_lookup_fn);
 *   3. from the gather after the patch embedding until the merger, rows are in window order
 *      (window_index applied at unit granularity, spec §4.4), and the rotary positions are
 *      permuted the same way; the merger's output is put back in raster order by the inverse
 *      permutation, so units never split (spec §10.2 items 3, 6, 7);
 *   4. per-call metadata (positions, cu_seqlens, row indices) lives in host arrays passed to
 *      the ops for the call: no step state is kept in the ops.
 * Threads: the backend's owner thread. */
#include "model/vit.h"

#include "model/weights.h"
#include "util/limits.h"
#include "util/size.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIT_EPS   1e-6f   /* RMSNorm eps, hard-coded in transformers (spec §11) */
#define VIT_THETA 10000.f /* vision rotary base (spec §4.3) */

struct vit_block {
    struct tensor ln1, bn1, wqkv, bqkv, wo, bo;     /* attention (bn1: LayerNorm bias) */
    struct tensor ln2, bn2, wg, bg, wu, bu, wd, bd; /* MLP; Qwen2-VL: fc1 = wg, fc2 = wd */
    bool full;                                      /* full attention (fullatt_block_indexes) */
};

struct vit {
    struct be *b; /* borrowed */
    struct vision_config c;
    vit_lookup_fn lookup; /* weight source (borrowed context) */
    void *lookup_ctx;
    int64_t max_patches;
    int32_t C, F, O, K, hd, merge, unit_rows, ws;
    bool qwen2; /* Qwen2-VL tower: LayerNorm, fc1 -> quick_gelu -> fc2, no windows */
    float scale;
    struct be_buffer **bufs; /* owned: weight views and the scratch area */
    int32_t n_bufs, cap_bufs;
    struct vit_block *blocks;                                 /* (depth) */
    struct tensor patch, m_ln, m_lnb, m_w0, m_b0, m_w2, m_b2; /* m_lnb: Qwen2-VL only */
    struct tensor px, h, x, qkv, att, gate, up, m1, y, out;   /* scratch (max rows) */
    /* host index arrays, max_patches (S) or max units (U) + 1 entries */
    int32_t *pos_raster, *pos; /* (2, S) */
    int32_t *rows;             /* (S) window order -> raster row */
    int32_t *widx, *inv;       /* (U) */
    int32_t *cu_win, *cu_full; /* (U + 1) */
    int32_t tap_block;
    float *tap; /* borrowed */
};

static int add_buf(struct vit *v, struct be_buffer *buf, struct err *e) {
    if (v->n_bufs == v->cap_bufs) {
        int32_t cap = v->cap_bufs ? 2 * v->cap_bufs : 64;
        struct be_buffer **nb = realloc(v->bufs, (size_t)cap * sizeof *nb);
        if (!nb) {
            be_buffer_free(buf);
            return err_set(e, VELA_ENOMEM, "vit: out of memory");
        }
        v->bufs = nb, v->cap_bufs = cap;
    }
    v->bufs[v->n_bufs++] = buf;
    return 0;
}

/* The weight `name` as a BF16 tensor (shape from the source, or rows x cols when rows > 0:
 * the Conv3d seen as a matrix), borrowed from the weight source. */
static int weight(struct vit *v, const char *name, int64_t rows, int64_t cols, struct tensor *t,
                  struct err *e) {
    struct vit_tensor_src w = {0};
    int rc = v->lookup(v->lookup_ctx, name, &w, e);
    if (rc != 0) return rc;
    if (!w.bf16 || w.n_dims < 1 || w.n_dims > 5 || w.n_elems < 1)
        return err_set(e, VELA_EINVAL, "vit: tensor %s has no usable data", name);
    if (rows > 0 && rows * cols != w.n_elems)
        return err_set(e, VELA_EINVAL, "vit: tensor %s has %" PRId64 " elements, expected %" PRId64,
                       name, w.n_elems, rows * cols);
    if (rows <= 0 && w.n_dims > BE_MAX_DIMS)
        return err_set(e, VELA_EINVAL, "vit: tensor %s has %d dims", name, (int)w.n_dims);
    struct be_buffer *buf = NULL;
    int64_t shape2[2] = {rows, cols};
    rc = be_buffer_from_host(v->b, w.bf16, (size_t)w.n_elems * 2, BE_BUF_WEIGHTS, &buf, e);
    if (rc == 0) rc = add_buf(v, buf, e);
    if (rc == 0)
        rc = rows > 0 ? be_tensor_init(t, buf, 0, BE_BF16, 2, shape2, e)
                      : be_tensor_init(t, buf, 0, BE_BF16, w.n_dims, w.shape, e);
    return rc != 0 ? err_wrap(e, "vit: weight %s", name) : 0;
}

/* The lookup of vit_new: struct weights by canonical name. */
static int weights_lookup(void *ctx, const char *name, struct vit_tensor_src *out, struct err *e) {
    const struct weight *w = weights_find(ctx, name);
    if (!w) return err_set(e, VELA_ENOTFOUND, "vit: checkpoint has no tensor %s", name);
    if (!w->bf16) return err_set(e, VELA_EINVAL, "vit: tensor %s was loaded check-only", name);
    out->bf16 = w->bf16;
    out->n_dims = w->n_dims;
    out->n_elems = w->n_elems;
    for (int32_t i = 0; i < 5; i++) out->shape[i] = i < w->n_dims ? w->shape[i] : 1;
    return 0;
}

struct wname {
    const char *name;
    size_t off;
};

#define W(n, f)                                                                                    \
    { n, offsetof(struct vit_block, f) }
static const struct wname g_qwen2_5_vl[] = {
    W("norm1.weight", ln1),        W("attn.qkv.weight", wqkv),    W("attn.qkv.bias", bqkv),
    W("attn.proj.weight", wo),     W("attn.proj.bias", bo),       W("norm2.weight", ln2),
    W("mlp.gate_proj.weight", wg), W("mlp.gate_proj.bias", bg),   W("mlp.up_proj.weight", wu),
    W("mlp.up_proj.bias", bu),     W("mlp.down_proj.weight", wd), W("mlp.down_proj.bias", bd),
};
static const struct wname g_qwen2_vl[] = {
    W("norm1.weight", ln1),   W("norm1.bias", bn1),      W("attn.qkv.weight", wqkv),
    W("attn.qkv.bias", bqkv), W("attn.proj.weight", wo), W("attn.proj.bias", bo),
    W("norm2.weight", ln2),   W("norm2.bias", bn2),      W("mlp.fc1.weight", wg),
    W("mlp.fc1.bias", bg),    W("mlp.fc2.weight", wd),   W("mlp.fc2.bias", bd),
};
#undef W

static int block_weights(struct vit *v, int32_t j, struct err *e) {
    struct vit_block *B = &v->blocks[j];
    const struct wname *tab = v->qwen2 ? g_qwen2_vl : g_qwen2_5_vl;
    size_t n = v->qwen2 ? sizeof g_qwen2_vl / sizeof g_qwen2_vl[0]
                        : sizeof g_qwen2_5_vl / sizeof g_qwen2_5_vl[0];
    for (size_t i = 0; i < n; i++) {
        char name[128];
        snprintf(name, sizeof name, "visual.blocks.%d.%s", (int)j, tab[i].name);
        int rc = weight(v, name, 0, 0, (struct tensor *)((char *)B + tab[i].off), e);
        if (rc != 0) return rc;
    }
    for (int32_t i = 0; i < v->c.n_fullatt; i++)
        if (v->c.fullatt_block_indexes[i] == j) B->full = true;
    return 0;
}

/* One scratch tensor: where it goes and its size (F32). */
struct carve {
    struct tensor *t;
    int64_t rows, cols;
};

/* Lays the tensors out back to back (64-byte aligned) in one compute buffer. */
static int carve_scratch(struct vit *v, const struct carve *cv, int n, struct err *e) {
    size_t total = 0, off[16];
    if (n > 16) return err_set(e, VELA_EINVAL, "vit: too many scratch tensors");
    for (int i = 0; i < n; i++) {
        size_t bytes;
        off[i] = total; /* a multiple of 64 */
        if (!size_mul_ok((size_t)cv[i].rows, (size_t)cv[i].cols, &bytes) ||
            !size_mul_ok(bytes, sizeof(float), &bytes) || !size_add_ok(total, bytes, &total) ||
            !size_add_ok(total, 63, &total))
            return err_set(e, VELA_ELIMIT, "vit: scratch size overflows");
        total &= ~(size_t)63;
    }
    struct be_buffer *buf = NULL;
    int rc = be_buffer_new(v->b, BE_BUF_COMPUTE, total, &buf, e);
    if (rc == 0) rc = add_buf(v, buf, e);
    for (int i = 0; rc == 0 && i < n; i++) {
        int64_t shape[2] = {cv[i].rows, cv[i].cols};
        rc = be_tensor_init(cv[i].t, buf, off[i], BE_F32, 2, shape, e);
    }
    return rc != 0 ? err_wrap(e, "vit: scratch of %zu bytes", total) : 0;
}

static int alloc_host(struct vit *v, struct err *e) {
    size_t S = (size_t)v->max_patches, U = S / (size_t)v->unit_rows;
    v->pos_raster = malloc(2 * S * sizeof(int32_t));
    v->pos = malloc(2 * S * sizeof(int32_t));
    v->rows = malloc(S * sizeof(int32_t));
    v->widx = malloc(U * sizeof(int32_t));
    v->inv = malloc(U * sizeof(int32_t));
    v->cu_win = malloc((U + 1) * sizeof(int32_t));
    v->cu_full = malloc((U + 1) * sizeof(int32_t));
    if (!v->pos_raster || !v->pos || !v->rows || !v->widx || !v->inv || !v->cu_win || !v->cu_full)
        return err_set(e, VELA_ENOMEM, "vit: out of memory for %zu patches of indices", S);
    return 0;
}

static int vit_setup(struct vit *v, struct err *e) {
    const struct vision_config *c = &v->c;
    int rc = weight(v, "visual.patch_embed.proj.weight", v->C, v->K, &v->patch, e);
    if (rc == 0) rc = weight(v, "visual.merger.ln_q.weight", 0, 0, &v->m_ln, e);
    if (rc == 0 && v->qwen2) rc = weight(v, "visual.merger.ln_q.bias", 0, 0, &v->m_lnb, e);
    if (rc == 0) rc = weight(v, "visual.merger.mlp.0.weight", 0, 0, &v->m_w0, e);
    if (rc == 0) rc = weight(v, "visual.merger.mlp.0.bias", 0, 0, &v->m_b0, e);
    if (rc == 0) rc = weight(v, "visual.merger.mlp.2.weight", 0, 0, &v->m_w2, e);
    if (rc == 0) rc = weight(v, "visual.merger.mlp.2.bias", 0, 0, &v->m_b2, e);
    v->blocks = rc == 0 ? calloc((size_t)c->depth, sizeof *v->blocks) : NULL;
    if (rc == 0 && !v->blocks) rc = err_set(e, VELA_ENOMEM, "vit: out of memory");
    for (int32_t j = 0; rc == 0 && j < c->depth; j++) rc = block_weights(v, j, e);
    if (rc != 0) return rc;
    int64_t S = v->max_patches, U = S / v->unit_rows, MC = (int64_t)v->unit_rows * v->C;
    /* qkv first, at offset 0: the overlap check of backend/tensor.c tells the q, k and v
     * column slices apart only when the tensor's start is aligned to its row pitch. */
    const struct carve cv[] = {
        {&v->qkv, S, 3 * v->C}, {&v->px, S, v->K},   {&v->h, S, v->C},  {&v->x, S, v->C},
        {&v->att, S, v->C},     {&v->gate, S, v->F}, {&v->up, S, v->F}, {&v->m1, U, MC},
        {&v->y, U, v->O},       {&v->out, U, v->O},
    };
    rc = carve_scratch(v, cv, (int)(sizeof cv / sizeof cv[0]), e);
    return rc == 0 ? alloc_host(v, e) : rc;
}

static int check_config(const struct model_config *mc, const struct vit_options *o, struct err *e) {
    const struct vision_config *c = &mc->vision;
    if (!mc->has_vision) return err_set(e, VELA_EINVAL, "vit: the model has no vision tower");
    bool q25 = mc->arch == ARCH_QWEN2_5_VL && strcmp(c->hidden_act, "silu") == 0;
    bool q2 = mc->arch == ARCH_QWEN2_VL && strcmp(c->hidden_act, "quick_gelu") == 0;
    if (!q25 && !q2)
        return err_set(e, VELA_EUNSUP, "vit: no vision tower for %s with hidden_act %s",
                       cfg_arch_label(mc->arch), c->hidden_act);
    if (c->num_heads < 1 || c->hidden_size % c->num_heads != 0 ||
        (c->hidden_size / c->num_heads) % 4 != 0)
        return err_set(e, VELA_EINVAL, "vit: hidden %d over %d heads (head_dim a multiple of 4)",
                       (int)c->hidden_size, (int)c->num_heads);
    int64_t mm = (int64_t)c->spatial_merge_size * c->spatial_merge_size;
    if (o->max_patches < mm || o->max_patches > VELA_VIT_MAX_PATCHES)
        return err_set(e, VELA_ELIMIT, "vit: max_patches %" PRId64 " (%" PRId64 "..%d)",
                       o->max_patches, mm, VELA_VIT_MAX_PATCHES);
    return 0;
}

int vit_new(struct vit **out, struct be *b, const struct model_config *mc, const struct weights *w,
            const struct vit_options *o, struct err *e) {
    if (!w) return err_set(e, VELA_EINVAL, "vit: NULL weights");
    return vit_new_lookup(out, b, mc, weights_lookup, (void *)w, o, e);
}

int vit_new_lookup(struct vit **out, struct be *b, const struct model_config *mc, vit_lookup_fn fn,
                   void *ctx, const struct vit_options *o, struct err *e) {
    if (!out || !b || !mc || !fn || !o) return err_set(e, VELA_EINVAL, "vit: NULL argument");
    int rc = check_config(mc, o, e);
    if (rc != 0) return rc;
    struct vit *v = calloc(1, sizeof *v);
    if (!v) return err_set(e, VELA_ENOMEM, "vit: out of memory");
    const struct vision_config *c = &mc->vision;
    v->b = b, v->c = *c, v->lookup = fn, v->lookup_ctx = ctx;
    v->C = c->hidden_size, v->F = c->intermediate_size, v->O = c->out_hidden_size;
    v->K = c->in_chans * c->temporal_patch_size * c->patch_size * c->patch_size;
    v->hd = c->hidden_size / c->num_heads;
    v->merge = c->spatial_merge_size;
    v->unit_rows = v->merge * v->merge;
    v->max_patches = o->max_patches / v->unit_rows * v->unit_rows;
    v->qwen2 = mc->arch == ARCH_QWEN2_VL;
    v->ws = v->qwen2 ? 0 : vitw_window_units(c->window_size, v->merge, c->patch_size);
    v->scale = 1.0f / sqrtf((float)v->hd);
    v->tap_block = -1;
    rc = vit_setup(v, e);
    if (rc != 0) {
        vit_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

void vit_free(struct vit *v) {
    if (!v) return;
    for (int32_t i = v->n_bufs - 1; i >= 0; i--) be_buffer_free(v->bufs[i]);
    free(v->bufs);
    free(v->blocks);
    free(v->pos_raster);
    free(v->pos);
    free(v->rows);
    free(v->widx);
    free(v->inv);
    free(v->cu_win);
    free(v->cu_full);
    free(v);
}

void vit_set_tap(struct vit *v, int32_t block, float *dst) {
    v->tap_block = dst ? block : -1;
    v->tap = dst;
}

int32_t vit_out_dim(const struct vit *v) {
    return v->O;
}
int32_t vit_patch_dim(const struct vit *v) {
    return v->K;
}
int32_t vit_unit_rows(const struct vit *v) {
    return v->unit_rows;
}
int64_t vit_max_patches(const struct vit *v) {
    return v->max_patches;
}

/* Host metadata of one call: window order, positions in window order, segment bounds.
 * *n_win / *n_full receive the segment counts. */
static void vit_plan(struct vit *v, const struct vit_grid *g, int32_t n, int64_t S, int32_t *n_win,
                     int32_t *n_full) {
    int64_t U = S / v->unit_rows;
    *n_full = (int32_t)vitw_full_seqlens(g, n, v->cu_full) - 1;
    if (v->ws > 0) {
        *n_win = (int32_t)vitw_window_index(g, n, v->merge, v->ws, v->widx, v->cu_win) - 1;
    } else { /* no windows: identity order, every block attends fully */
        for (int64_t i = 0; i < U; i++) v->widx[i] = (int32_t)i;
        memcpy(v->cu_win, v->cu_full, (size_t)(*n_full + 1) * sizeof(int32_t));
        *n_win = *n_full;
    }
    vitw_inverse(v->widx, U, v->inv);
    vitw_expand_rows(v->widx, U, v->unit_rows, v->rows);
    vitw_positions(g, n, v->merge, v->pos_raster, S);
    for (int64_t i = 0; i < S; i++) {
        v->pos[i] = v->pos_raster[v->rows[i]];
        v->pos[S + i] = v->pos_raster[S + v->rows[i]];
    }
}

#define VIT_RUN(call)                                                                              \
    do {                                                                                           \
        if (rc == 0) rc = (call);                                                                  \
    } while (0)

/* The block norm: RMSNorm (Qwen2.5-VL) or LayerNorm with bias (Qwen2-VL). */
static int vit_norm(struct vit *v, struct tensor *y, const struct tensor *x,
                    const struct tensor *gain, const struct tensor *bias, struct err *e) {
    return v->qwen2 ? be_layer_norm(v->b, y, x, gain, bias, VIT_EPS, e)
                    : be_rms_norm(v->b, y, x, gain, VIT_EPS, e);
}

/* One block over the S rows of h (window order). */
static int vit_block(struct vit *v, const struct vit_block *B, struct tensor *h, struct tensor *x,
                     struct tensor *qkv, struct tensor *att, struct tensor *gate, struct tensor *up,
                     const struct rope2d_args *ra, const struct varlen_meta *vm, struct err *e) {
    struct tensor q, k, val;
    int rc = be_tensor_cols_view(&q, qkv, 0, v->C, e);
    VIT_RUN(be_tensor_cols_view(&k, qkv, v->C, v->C, e));
    VIT_RUN(be_tensor_cols_view(&val, qkv, 2 * (int64_t)v->C, v->C, e));
    /* attention: h += proj(attn(rope(q), rope(k), v)) within the segments of vm */
    VIT_RUN(vit_norm(v, x, h, &B->ln1, &B->bn1, e));
    VIT_RUN(be_matmul(v->b, qkv, x, &B->wqkv, &B->bqkv, e));
    VIT_RUN(be_rope2d(v->b, &q, &k, ra, e));
    VIT_RUN(be_attention_varlen(v->b, att, &q, &k, &val, vm, e));
    VIT_RUN(be_matmul(v->b, x, att, &B->wo, &B->bo, e));
    VIT_RUN(be_add(v->b, h, h, x, e));
    /* MLP: h += down(silu(gate(x)) * up(x)), every Linear with its bias; Qwen2-VL:
     * h += fc2(quick_gelu(fc1(x))) */
    VIT_RUN(vit_norm(v, x, h, &B->ln2, &B->bn2, e));
    if (v->qwen2) {
        VIT_RUN(be_matmul(v->b, gate, x, &B->wg, &B->bg, e));
        VIT_RUN(be_quick_gelu(v->b, gate, gate, e));
    } else {
        const struct be_mm_out gate_up[2] = {{gate, &B->wg, &B->bg}, {up, &B->wu, &B->bu}};
        VIT_RUN(be_matmul_multi(v->b, gate_up, 2, x, e));
        VIT_RUN(be_silu_mul(v->b, gate, gate, up, e));
    }
    VIT_RUN(be_matmul(v->b, x, gate, &B->wd, &B->bd, e));
    VIT_RUN(be_add(v->b, h, h, x, e));
    return rc;
}

/* Merger over the S rows of h: RMSNorm (Qwen2-VL: LayerNorm), M² rows -> one, Linear, GELU, Linear,
 * back to raster order; the result is in the first U rows of v->out. */
static int vit_merger(struct vit *v, struct tensor *h, struct tensor *x, int64_t S, struct err *e) {
    int64_t U = S / v->unit_rows, shape[2] = {U, (int64_t)v->unit_rows * v->C};
    struct tensor xu, m1, y, out;
    int rc = vit_norm(v, x, h, &v->m_ln, &v->m_lnb, e);
    /* x is packed (row stride C), so its first S rows are also U rows of M²·C: each merge
     * unit's patches concatenated in (mh, mw) order (spec §4.6). */
    VIT_RUN(be_tensor_init(&xu, x->buf, x->offset_bytes, BE_F32, 2, shape, e));
    VIT_RUN(be_tensor_rows_view(&m1, &v->m1, 0, U, e));
    VIT_RUN(be_tensor_rows_view(&y, &v->y, 0, U, e));
    VIT_RUN(be_tensor_rows_view(&out, &v->out, 0, U, e));
    VIT_RUN(be_matmul(v->b, &m1, &xu, &v->m_w0, &v->m_b0, e));
    VIT_RUN(be_gelu(v->b, &m1, &m1, e));
    VIT_RUN(be_matmul(v->b, &y, &m1, &v->m_w2, &v->m_b2, e));
    VIT_RUN(be_gather_rows(v->b, &out, &y, v->inv, e));
    return rc;
}

int vit_forward(struct vit *v, const float *pixel_values, int64_t n_rows,
                const struct vit_grid *grids, int32_t n_grids, float *out, struct err *e) {
    if (!v || !pixel_values || !grids || !out) return err_set(e, VELA_EINVAL, "vit: NULL argument");
    int64_t S = 0;
    int rc = vitw_check(grids, n_grids, v->merge, v->max_patches, &S, e);
    if (rc != 0) return rc;
    if (n_rows != S)
        return err_set(e, VELA_EINVAL,
                       "vit: %" PRId64 " rows of pixel_values, the grids hold %" PRId64 " patches",
                       n_rows, S);
    int32_t n_win = 0, n_full = 0;
    vit_plan(v, grids, n_grids, S, &n_win, &n_full);
    struct tensor px, h, x, qkv, att, gate, up;
    struct {
        struct tensor *dst;
        const struct tensor *src;
    } vw[] = {{&px, &v->px},   {&h, &v->h},       {&x, &v->x},  {&qkv, &v->qkv},
              {&att, &v->att}, {&gate, &v->gate}, {&up, &v->up}};
    for (size_t i = 0; rc == 0 && i < sizeof vw / sizeof vw[0]; i++)
        rc = be_tensor_rows_view(vw[i].dst, vw[i].src, 0, S, e);
    VIT_RUN(be_tensor_write(v->b, &px, pixel_values, (size_t)S * (size_t)v->K * sizeof(float), e));
    /* patch embedding in raster order, then into window order (invariant 3) */
    VIT_RUN(be_matmul(v->b, &x, &px, &v->patch, NULL, e));
    VIT_RUN(be_gather_rows(v->b, &h, &x, v->rows, e));
    if (rc != 0) return err_wrap(e, "vit: patch embedding");

    const struct rope2d_args ra = {.pos = v->pos, .head_dim = v->hd, .theta = VIT_THETA};
    const struct varlen_meta vm_win = {
        .n_segs = n_win, .cu_seqlens = v->cu_win, .head_dim = v->hd, .scale = v->scale};
    const struct varlen_meta vm_full = {
        .n_segs = n_full, .cu_seqlens = v->cu_full, .head_dim = v->hd, .scale = v->scale};
    for (int32_t j = 0; rc == 0 && j < v->c.depth; j++) {
        const struct vit_block *B = &v->blocks[j];
        rc = vit_block(v, B, &h, &x, &qkv, &att, &gate, &up, &ra, B->full ? &vm_full : &vm_win, e);
        if (rc == 0 && j == v->tap_block)
            rc = be_tensor_read(v->b, &h, v->tap, (size_t)S * (size_t)v->C * sizeof(float), e);
        if (rc != 0) return err_wrap(e, "vit: block %d", (int)j);
    }
    rc = vit_merger(v, &h, &x, S, e);
    if (rc != 0) return err_wrap(e, "vit: merger");
    int64_t U = S / v->unit_rows;
    struct tensor o;
    rc = be_tensor_rows_view(&o, &v->out, 0, U, e);
    VIT_RUN(be_tensor_read(v->b, &o, out, (size_t)U * (size_t)v->O * sizeof(float), e));
    VIT_RUN(be_sync(v->b, e));
    return rc;
}
