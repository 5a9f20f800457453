/* vit_ops: the be_* wrappers of the vision-tower ops (rope2d, attention_varlen, gelu,
 * gather_rows, and Qwen2-VL's layer_norm and quick_gelu). Like backend.c, each checks its arguments
 * once for every backend and then calls the op table, so a backend never sees a malformed call.
 *
 * Invariants enforced before any op runs:
 *   1. every tensor belongs to this backend, is F32 or BF16 and lies inside its buffer;
 *      outputs (q and k rotated in place, o, y) are in compute buffers;
 *   2. widths agree: q, k, v, o have the same rows and width, a multiple of head_dim;
 *   3. cu_seqlens starts at 0, increases strictly and ends at the row count, so every row
 *      belongs to exactly one non-empty segment; every gathered row index is a row of x;
 *   4. outputs never overlap inputs, except the exact alias y == x of the elementwise ops.
 * Checking the metadata costs O(segments) or O(rows) per call, small beside the op itself.
 * Threads: the backend's owner thread. */
#include "backend/backend_impl.h"
#include "backend/tensor.h"
#include "util/limits.h"

#include <inttypes.h>

static int check_t(struct be *b, const struct tensor *t, const char *what, bool out,
                   struct err *e) {
    if (!t || !t->buf) return err_set(e, VELA_EINVAL, "%s: missing tensor", what);
    if (t->buf->owner != b)
        return err_set(e, VELA_EINVAL, "%s: tensor belongs to another backend", what);
    if (t->n_dims < 1 || t->n_dims > BE_MAX_DIMS || t->row_stride < be_tensor_cols(t))
        return err_set(e, VELA_EINVAL, "%s: malformed tensor", what);
    if (t->dtype != BE_F32 && t->dtype != BE_BF16)
        return err_set(e, VELA_EINVAL, "%s: dtype %s not accepted (F32 or BF16)", what,
                       be_dtype_name(t->dtype));
    if (tensor_check_bounds(t, e) != 0) return err_wrap(e, "%s", what);
    if (out && t->buf->borrowed)
        return err_set(e, VELA_EINVAL, "%s: output in a borrowed (read-only) buffer", what);
    return 0;
}

/* Invariant 2 for one tensor against the reference shape (rows x cols). */
static int check_like(const struct tensor *t, int64_t rows, int64_t cols, const char *what,
                      struct err *e) {
    if (be_tensor_rows(t) == rows && be_tensor_cols(t) == cols) return 0;
    return err_set(e, VELA_EINVAL,
                   "%s: shape [%" PRId64 " x %" PRId64 "], expected [%" PRId64 " x %" PRId64 "]",
                   what, be_tensor_rows(t), be_tensor_cols(t), rows, cols);
}

int be_rope2d(struct be *b, struct tensor *q, struct tensor *k, const struct rope2d_args *a,
              struct err *e) {
    if (!b || !a || !a->pos || !k) return err_set(e, VELA_EINVAL, "rope2d: NULL argument");
    int rc = check_t(b, q, "rope2d q", true, e);
    if (rc == 0) rc = check_t(b, k, "rope2d k", true, e);
    if (rc != 0) return rc;
    if (a->head_dim < 4 || a->head_dim % 4 != 0 || a->head_dim > VELA_CFG_MAX_HEAD_DIM)
        return err_set(e, VELA_EINVAL, "rope2d: head_dim %d (a multiple of 4, at most %d)",
                       (int)a->head_dim, VELA_CFG_MAX_HEAD_DIM);
    int64_t cols = be_tensor_cols(q);
    if (cols % a->head_dim != 0)
        return err_set(e, VELA_EINVAL, "rope2d: width %" PRId64 " is not a multiple of %d", cols,
                       (int)a->head_dim);
    rc = check_like(k, be_tensor_rows(q), cols, "rope2d k", e);
    if (rc != 0) return rc;
    if (tensor_overlap(q, k)) return err_set(e, VELA_EINVAL, "rope2d: q and k overlap");
    if (!(a->theta > 0.0f)) return err_set(e, VELA_EINVAL, "rope2d: theta %g <= 0", a->theta);
    if (!b->ops->rope2d)
        return err_set(e, VELA_EUNSUP, "rope2d: not supported by %s", b->ops->name);
    return b->ops->rope2d(b, q, k, a, e);
}

/* Invariant 3 for the segments of n rows. */
static int check_segments(const struct varlen_meta *m, int64_t n, struct err *e) {
    if (!m->cu_seqlens) return err_set(e, VELA_EINVAL, "attention_varlen: cu_seqlens missing");
    if (m->n_segs < 1)
        return err_set(e, VELA_EINVAL, "attention_varlen: %d segments", (int)m->n_segs);
    if (m->cu_seqlens[0] != 0)
        return err_set(e, VELA_EINVAL, "attention_varlen: cu_seqlens[0] = %d",
                       (int)m->cu_seqlens[0]);
    for (int32_t s = 0; s < m->n_segs; s++)
        if (m->cu_seqlens[s + 1] <= m->cu_seqlens[s])
            return err_set(e, VELA_EINVAL,
                           "attention_varlen: segment %d is empty or reversed (%d..%d)", (int)s,
                           (int)m->cu_seqlens[s], (int)m->cu_seqlens[s + 1]);
    if (m->cu_seqlens[m->n_segs] != n)
        return err_set(e, VELA_EINVAL,
                       "attention_varlen: cu_seqlens ends at %d, tensors have %" PRId64 " rows",
                       (int)m->cu_seqlens[m->n_segs], n);
    return 0;
}

int be_attention_varlen(struct be *b, struct tensor *o, const struct tensor *q,
                        const struct tensor *k, const struct tensor *v, const struct varlen_meta *m,
                        struct err *e) {
    if (!b || !m) return err_set(e, VELA_EINVAL, "attention_varlen: NULL argument");
    int rc = check_t(b, o, "attention_varlen o", true, e);
    if (rc == 0) rc = check_t(b, q, "attention_varlen q", false, e);
    if (rc == 0) rc = check_t(b, k, "attention_varlen k", false, e);
    if (rc == 0) rc = check_t(b, v, "attention_varlen v", false, e);
    if (rc != 0) return rc;
    if (m->head_dim < 1 || m->head_dim > VELA_CFG_MAX_HEAD_DIM)
        return err_set(e, VELA_EINVAL, "attention_varlen: head_dim %d (1..%d)", (int)m->head_dim,
                       VELA_CFG_MAX_HEAD_DIM);
    int64_t n = be_tensor_rows(q), cols = be_tensor_cols(q);
    if (cols % m->head_dim != 0)
        return err_set(e, VELA_EINVAL,
                       "attention_varlen: width %" PRId64 " is not a multiple of head_dim %d", cols,
                       (int)m->head_dim);
    rc = check_like(k, n, cols, "attention_varlen k", e);
    if (rc == 0) rc = check_like(v, n, cols, "attention_varlen v", e);
    if (rc == 0) rc = check_like(o, n, cols, "attention_varlen o", e);
    if (rc == 0) rc = check_segments(m, n, e);
    if (rc != 0) return rc;
    if (!(m->scale > 0.0f) || m->scale != m->scale)
        return err_set(e, VELA_EINVAL, "attention_varlen: scale %g", m->scale);
    if (tensor_overlap(o, q) || tensor_overlap(o, k) || tensor_overlap(o, v))
        return err_set(e, VELA_EINVAL, "attention_varlen: output overlaps an input");
    if (!b->ops->attention_varlen)
        return err_set(e, VELA_EUNSUP, "attention_varlen: not supported by %s", b->ops->name);
    return b->ops->attention_varlen(b, o, q, k, v, m, e);
}

/* Shared checks of the elementwise activations (gelu, quick_gelu). */
static int check_act(struct be *b, struct tensor *y, const struct tensor *x, const char *what,
                     struct err *e) {
    if (!b) return err_set(e, VELA_EINVAL, "%s: NULL backend", what);
    int rc = check_t(b, y, what, true, e);
    if (rc == 0) rc = check_t(b, x, what, false, e);
    if (rc == 0) rc = check_like(y, be_tensor_rows(x), be_tensor_cols(x), what, e);
    if (rc != 0) return rc;
    /* Element (r, c) of y depends only on element (r, c) of x: an exact alias is safe. */
    if (tensor_overlap(y, x) && !(tensor_same_view(y, x) && y->dtype == x->dtype))
        return err_set(e, VELA_EINVAL, "%s: output overlaps the input", what);
    return 0;
}

int be_gelu(struct be *b, struct tensor *y, const struct tensor *x, struct err *e) {
    int rc = check_act(b, y, x, "gelu", e);
    if (rc != 0) return rc;
    if (!b->ops->gelu) return err_set(e, VELA_EUNSUP, "gelu: not supported by %s", b->ops->name);
    return b->ops->gelu(b, y, x, e);
}

int be_quick_gelu(struct be *b, struct tensor *y, const struct tensor *x, struct err *e) {
    int rc = check_act(b, y, x, "quick_gelu", e);
    if (rc != 0) return rc;
    if (!b->ops->quick_gelu)
        return err_set(e, VELA_EUNSUP, "quick_gelu: not supported by %s", b->ops->name);
    return b->ops->quick_gelu(b, y, x, e);
}

int be_layer_norm(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *gain,
                  const struct tensor *bias, float eps, struct err *e) {
    int rc = check_act(b, y, x, "layer_norm", e);
    if (rc == 0) rc = check_t(b, gain, "layer_norm gain", false, e);
    if (rc == 0) rc = check_t(b, bias, "layer_norm bias", false, e);
    if (rc == 0) rc = check_like(gain, 1, be_tensor_cols(x), "layer_norm gain", e);
    if (rc == 0) rc = check_like(bias, 1, be_tensor_cols(x), "layer_norm bias", e);
    if (rc != 0) return rc;
    if (!(eps >= 0.0f)) return err_set(e, VELA_EINVAL, "layer_norm: eps %g < 0", eps);
    if (tensor_overlap(y, gain) || tensor_overlap(y, bias))
        return err_set(e, VELA_EINVAL, "layer_norm: output overlaps the gain or bias");
    if (!b->ops->layer_norm)
        return err_set(e, VELA_EUNSUP, "layer_norm: not supported by %s", b->ops->name);
    return b->ops->layer_norm(b, y, x, gain, bias, eps, e);
}

int be_gather_rows(struct be *b, struct tensor *y, const struct tensor *x, const int32_t *rows,
                   struct err *e) {
    if (!b || !rows) return err_set(e, VELA_EINVAL, "gather_rows: NULL argument");
    int rc = check_t(b, y, "gather_rows y", true, e);
    if (rc == 0) rc = check_t(b, x, "gather_rows x", false, e);
    if (rc != 0) return rc;
    if (y->dtype != x->dtype || be_tensor_cols(y) != be_tensor_cols(x))
        return err_set(
            e, VELA_EINVAL,
            "gather_rows: y (%s, width %" PRId64 ") differs from x (%s, width %" PRId64 ")",
            be_dtype_name(y->dtype), be_tensor_cols(y), be_dtype_name(x->dtype), be_tensor_cols(x));
    int64_t n = be_tensor_rows(y), nx = be_tensor_rows(x);
    for (int64_t i = 0; i < n; i++)
        if (rows[i] < 0 || rows[i] >= nx)
            return err_set(e, VELA_EINVAL,
                           "gather_rows: entry %" PRId64 " is row %d, x has %" PRId64 " rows", i,
                           (int)rows[i], nx);
    if (tensor_overlap(y, x)) return err_set(e, VELA_EINVAL, "gather_rows: y overlaps x");
    if (!b->ops->gather_rows)
        return err_set(e, VELA_EUNSUP, "gather_rows: not supported by %s", b->ops->name);
    return b->ops->gather_rows(b, y, x, rows, e);
}
