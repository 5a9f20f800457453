/* backend: the thin be_* wrappers. Each checks its arguments once for every backend (device,
 * ownership, dtypes, shapes, writable outputs, aliasing) and then calls the op table, so a
 * backend never sees a malformed call.
 *
 * Invariants enforced before any op runs:
 *   1. every tensor belongs to a buffer of this backend and lies inside it;
 *   2. outputs live in compute buffers (weights are borrowed read-only memory on the CPU);
 *   3. outputs never partially overlap inputs; exact aliasing is allowed only where the op
 *      says so (elementwise ops).
 * Threads: the backend's owner thread. */
#include "backend/backend_impl.h"
#include "backend/tensor.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

void be_free(struct be *b) {
    if (b) b->ops->free(b);
}

const char *be_name(const struct be *b) {
    return b->ops->name;
}

enum be_device be_device_of(const struct be *b) {
    return b->device;
}

static int buffer_make(struct be *b, enum be_buf_use use, size_t n_bytes, struct be_buffer **out,
                       struct err *e) {
    if (!b || !out) return err_set(e, VELA_EINVAL, "buffer: NULL backend or result");
    if (n_bytes == 0) return err_set(e, VELA_EINVAL, "buffer: zero bytes");
    if (use != BE_BUF_WEIGHTS && use != BE_BUF_COMPUTE)
        return err_set(e, VELA_EINVAL, "buffer: unknown use %d", (int)use);
    struct be_buffer *buf = calloc(1, sizeof *buf);
    if (!buf) return err_set(e, VELA_ENOMEM, "buffer: out of memory");
    buf->owner = b;
    buf->use = use;
    buf->n_bytes = n_bytes;
    *out = buf;
    return 0;
}

int be_buffer_new(struct be *b, enum be_buf_use use, size_t n_bytes, struct be_buffer **out,
                  struct err *e) {
    struct be_buffer *buf = NULL;
    int rc = buffer_make(b, use, n_bytes, &buf, e);
    if (rc == 0) rc = b->ops->buffer_new(b, buf, e);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

int be_buffer_from_host(struct be *b, const void *host, size_t n_bytes, enum be_buf_use use,
                        struct be_buffer **out, struct err *e) {
    if (!host) return err_set(e, VELA_EINVAL, "buffer: NULL host memory");
    struct be_buffer *buf = NULL;
    int rc = buffer_make(b, use, n_bytes, &buf, e);
    if (rc == 0) rc = b->ops->buffer_from_host(b, buf, host, e);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

void be_buffer_free(struct be_buffer *buf) {
    if (!buf) return;
    buf->owner->ops->buffer_free(buf);
    free(buf);
}

size_t be_buffer_size(const struct be_buffer *buf) {
    return buf->n_bytes;
}

/* Invariant 1 for one tensor; `what` names it in the message. */
static int check_tensor(struct be *b, const struct tensor *t, const char *what, struct err *e) {
    if (!t || !t->buf) return err_set(e, VELA_EINVAL, "%s: missing tensor", what);
    if (t->buf->owner != b)
        return err_set(e, VELA_EINVAL, "%s: tensor belongs to another backend", what);
    if (t->n_dims < 1 || t->n_dims > BE_MAX_DIMS || t->row_stride < be_tensor_cols(t))
        return err_set(e, VELA_EINVAL, "%s: malformed tensor", what);
    int rc = tensor_check_bounds(t, e);
    return rc != 0 ? err_wrap(e, "%s", what) : 0;
}

static int check_output(struct be *b, const struct tensor *t, const char *what, struct err *e) {
    int rc = check_tensor(b, t, what, e);
    if (rc == 0 && t->buf->borrowed)
        rc = err_set(e, VELA_EINVAL, "%s: output in a borrowed (read-only) buffer", what);
    return rc;
}

static int check_dtype(const struct tensor *t, const char *what, bool f32, bool bf16, bool i32,
                       struct err *e) {
    bool ok =
        (t->dtype == BE_F32 && f32) || (t->dtype == BE_BF16 && bf16) || (t->dtype == BE_I32 && i32);
    return ok ? 0
              : err_set(e, VELA_EINVAL, "%s: dtype %s not accepted", what, be_dtype_name(t->dtype));
}

static int check_dims(const struct tensor *t, const char *what, int64_t rows, int64_t cols,
                      struct err *e) {
    if (be_tensor_rows(t) == rows && be_tensor_cols(t) == cols) return 0;
    return err_set(e, VELA_EINVAL,
                   "%s: shape [%" PRId64 " x %" PRId64 "], expected [%" PRId64 " x %" PRId64 "]",
                   what, be_tensor_rows(t), be_tensor_cols(t), rows, cols);
}

/* Output y may equal x exactly (when allowed) but never overlap it otherwise. */
static int check_alias(const struct tensor *y, const struct tensor *x, bool exact_ok,
                       const char *what, struct err *e) {
    if (!tensor_overlap(y, x)) return 0;
    if (exact_ok && tensor_same_view(y, x)) return 0;
    return err_set(e, VELA_EINVAL, "%s: output overlaps an input", what);
}

/* Every check of be_matmul, shared with be_matmul_multi. */
static int check_matmul(struct be *b, struct tensor *y, const struct tensor *x,
                        const struct tensor *w, const struct tensor *bias, struct err *e) {
    int rc = check_output(b, y, "matmul y", e);
    if (rc == 0) rc = check_tensor(b, x, "matmul x", e);
    if (rc == 0) rc = check_tensor(b, w, "matmul w", e);
    if (rc == 0 && bias) rc = check_tensor(b, bias, "matmul bias", e);
    if (rc == 0) rc = check_dtype(y, "matmul y", true, true, false, e);
    if (rc == 0) rc = check_dtype(x, "matmul x", true, true, false, e);
    if (rc == 0) rc = check_dtype(w, "matmul w", false, true, false, e);
    if (rc == 0 && bias) rc = check_dtype(bias, "matmul bias", true, true, false, e);
    if (rc != 0) return rc;
    int64_t m = be_tensor_rows(x), k = be_tensor_cols(x), n = be_tensor_rows(w);
    rc = check_dims(w, "matmul w", n, k, e);
    if (rc == 0) rc = check_dims(y, "matmul y", m, n, e);
    if (rc == 0 && bias) rc = check_dims(bias, "matmul bias", 1, n, e);
    if (rc == 0) rc = check_alias(y, x, false, "matmul", e);
    if (rc == 0) rc = check_alias(y, w, false, "matmul", e);
    if (rc == 0 && bias) rc = check_alias(y, bias, false, "matmul", e);
    return rc;
}

int be_matmul(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *w,
              const struct tensor *bias, struct err *e) {
    int rc = check_matmul(b, y, x, w, bias, e);
    return rc != 0 ? rc : b->ops->matmul(b, y, x, w, bias, e);
}

int be_matmul_multi(struct be *b, const struct be_mm_out *outs, int n_out, const struct tensor *x,
                    struct err *e) {
    if (!outs || n_out < 1 || n_out > BE_MM_MAX_OUT)
        return err_set(e, VELA_EINVAL, "matmul_multi: %d outputs (1..%d allowed)", n_out,
                       BE_MM_MAX_OUT);
    for (int i = 0; i < n_out; i++)
        if (!outs[i].y || !outs[i].w)
            return err_set(e, VELA_EINVAL, "matmul_multi: output %d without y or w", i);
    for (int i = 0; i < n_out; i++) {
        int rc = check_matmul(b, outs[i].y, x, outs[i].w, outs[i].bias, e);
        for (int o = 0; rc == 0 && o < n_out; o++) {
            if (o != i) rc = check_alias(outs[i].y, outs[o].w, false, "matmul_multi", e);
            if (rc == 0 && o != i && outs[o].bias)
                rc = check_alias(outs[i].y, outs[o].bias, false, "matmul_multi", e);
            if (rc == 0 && o > i) rc = check_alias(outs[i].y, outs[o].y, false, "matmul_multi", e);
        }
        if (rc != 0) return err_wrap(e, "matmul_multi output %d", i);
    }
    if (b->ops->matmul_multi) return b->ops->matmul_multi(b, outs, n_out, x, e);
    for (int i = 0; i < n_out; i++) {
        int rc = b->ops->matmul(b, outs[i].y, x, outs[i].w, outs[i].bias, e);
        if (rc != 0) return rc;
    }
    return 0;
}

static int check_rms_norm(struct be *b, struct tensor *y, const struct tensor *x,
                          const struct tensor *gain, float eps, struct err *e) {
    int rc = check_output(b, y, "rms_norm y", e);
    if (rc == 0) rc = check_tensor(b, x, "rms_norm x", e);
    if (rc == 0) rc = check_tensor(b, gain, "rms_norm gain", e);
    if (rc == 0) rc = check_dtype(y, "rms_norm y", true, true, false, e);
    if (rc == 0) rc = check_dtype(x, "rms_norm x", true, true, false, e);
    if (rc == 0) rc = check_dtype(gain, "rms_norm gain", true, true, false, e);
    if (rc == 0) rc = check_dims(y, "rms_norm y", be_tensor_rows(x), be_tensor_cols(x), e);
    if (rc == 0) rc = check_dims(gain, "rms_norm gain", 1, be_tensor_cols(x), e);
    if (rc == 0 && !(eps >= 0.0f)) rc = err_set(e, VELA_EINVAL, "rms_norm: eps %g < 0", eps);
    if (rc == 0) rc = check_alias(y, x, y->dtype == x->dtype, "rms_norm", e);
    if (rc == 0) rc = check_alias(y, gain, false, "rms_norm", e);
    return rc;
}

int be_rms_norm(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *gain,
                float eps, struct err *e) {
    int rc = check_rms_norm(b, y, x, gain, eps, e);
    return rc != 0 ? rc : b->ops->rms_norm(b, y, x, gain, eps, e);
}

static int check_add(struct be *b, struct tensor *y, const struct tensor *a, const struct tensor *c,
                     struct err *e) {
    int rc = check_output(b, y, "add y", e);
    if (rc == 0) rc = check_tensor(b, a, "add a", e);
    if (rc == 0) rc = check_tensor(b, c, "add b", e);
    if (rc == 0) rc = check_dtype(y, "add y", true, true, false, e);
    if (rc == 0) rc = check_dtype(a, "add a", true, true, false, e);
    if (rc == 0) rc = check_dtype(c, "add b", true, true, false, e);
    if (rc == 0) rc = check_dims(y, "add y", be_tensor_rows(a), be_tensor_cols(a), e);
    if (rc == 0) rc = check_dims(c, "add b", be_tensor_rows(a), be_tensor_cols(a), e);
    if (rc == 0) rc = check_alias(y, a, y->dtype == a->dtype, "add", e);
    if (rc == 0) rc = check_alias(y, c, y->dtype == c->dtype, "add", e);
    return rc;
}

int be_add(struct be *b, struct tensor *y, const struct tensor *a, const struct tensor *c,
           struct err *e) {
    int rc = check_add(b, y, a, c, e);
    return rc != 0 ? rc : b->ops->add(b, y, a, c, e);
}

int be_add_rms_norm(struct be *b, struct tensor *h, struct tensor *y, const struct tensor *x,
                    const struct tensor *gain, float eps, struct err *e) {
    int rc = check_add(b, h, h, x, e);
    if (rc == 0) rc = check_rms_norm(b, y, h, gain, eps, e);
    /* y is written after h: it may be x itself, never h */
    if (rc == 0) rc = check_alias(y, h, false, "add_rms_norm", e);
    if (rc == 0) rc = check_alias(y, x, y->dtype == x->dtype, "add_rms_norm", e);
    return rc != 0 ? rc : b->ops->add_rms_norm(b, h, y, x, gain, eps, e);
}

int be_silu_mul(struct be *b, struct tensor *y, const struct tensor *gate, const struct tensor *up,
                struct err *e) {
    int rc = check_output(b, y, "silu_mul y", e);
    if (rc == 0) rc = check_tensor(b, gate, "silu_mul gate", e);
    if (rc == 0 && up) rc = check_tensor(b, up, "silu_mul up", e);
    if (rc == 0) rc = check_dtype(y, "silu_mul y", true, true, false, e);
    if (rc == 0) rc = check_dtype(gate, "silu_mul gate", true, true, false, e);
    if (rc == 0 && up) rc = check_dtype(up, "silu_mul up", true, true, false, e);
    if (rc != 0) return rc;
    int64_t n = be_tensor_rows(gate), f = be_tensor_cols(gate);
    if (!up) {
        if (f % 2 != 0)
            return err_set(e, VELA_EINVAL, "silu_mul: fused gate_up has odd width %" PRId64, f);
        f /= 2;
    }
    rc = check_dims(y, "silu_mul y", n, f, e);
    if (rc == 0 && up) rc = check_dims(up, "silu_mul up", n, f, e);
    /* Row by row, y[r][j] depends only on gate[r][j] and up[r][j]: an exact alias of the
     * separate gate is safe, the fused layout is not (its up half starts at column F). */
    if (rc == 0) rc = check_alias(y, gate, up != NULL && y->dtype == gate->dtype, "silu_mul", e);
    if (rc == 0 && up) rc = check_alias(y, up, y->dtype == up->dtype, "silu_mul", e);
    return rc != 0 ? rc : b->ops->silu_mul(b, y, gate, up, e);
}

int be_embed(struct be *b, struct tensor *y, const struct tensor *table, const struct tensor *ids,
             struct err *e) {
    int rc = check_output(b, y, "embed y", e);
    if (rc == 0) rc = check_tensor(b, table, "embed table", e);
    if (rc == 0) rc = check_tensor(b, ids, "embed ids", e);
    if (rc == 0) rc = check_dtype(y, "embed y", true, true, false, e);
    if (rc == 0) rc = check_dtype(table, "embed table", false, true, false, e);
    if (rc == 0) rc = check_dtype(ids, "embed ids", false, false, true, e);
    if (rc == 0) rc = check_dims(ids, "embed ids", 1, be_tensor_nelems(ids), e);
    if (rc == 0) rc = check_dims(y, "embed y", be_tensor_nelems(ids), be_tensor_cols(table), e);
    if (rc == 0) rc = check_alias(y, ids, false, "embed", e);
    return rc != 0 ? rc : b->ops->embed(b, y, table, ids, e);
}

/* The tensors of be_sample_greedy and be_sample: I32 ids, one per row of F32/BF16 logits. */
static int check_sample(struct be *b, struct tensor *ids, const struct tensor *logits,
                        const char *what, struct err *e) {
    int rc = check_output(b, ids, what, e);
    if (rc == 0) rc = check_tensor(b, logits, what, e);
    if (rc == 0) rc = check_dtype(ids, what, false, false, true, e);
    if (rc == 0) rc = check_dtype(logits, what, true, true, false, e);
    if (rc == 0) rc = check_dims(ids, what, 1, be_tensor_rows(logits), e);
    if (rc == 0) rc = check_alias(ids, logits, false, what, e);
    return rc;
}

int be_sample_greedy(struct be *b, struct tensor *ids, const struct tensor *logits, struct err *e) {
    int rc = check_sample(b, ids, logits, "sample_greedy", e);
    if (rc != 0) return rc;
    if (!b->ops->sample_greedy)
        return err_set(e, VELA_EUNSUP, "sample_greedy: not supported by %s", b->ops->name);
    return b->ops->sample_greedy(b, ids, logits, e);
}

int be_sample(struct be *b, struct tensor *ids, const struct tensor *logits,
              const struct be_sample_row *rows, struct err *e) {
    int rc = check_sample(b, ids, logits, "sample", e);
    if (rc == 0 && !rows) rc = err_set(e, VELA_EINVAL, "sample: NULL rows");
    for (int64_t r = 0; rc == 0 && r < be_tensor_rows(logits); r++)
        if (!(rows[r].temperature >= 0.0f) || isinf(rows[r].temperature) || rows[r].top_k < 0 ||
            !(rows[r].top_p >= 0.0f && rows[r].top_p <= 1.0f) ||
            !(rows[r].min_p >= 0.0f && rows[r].min_p <= 1.0f))
            rc = err_set(e, VELA_EINVAL,
                         "sample: row %lld has temperature %g, top_k %d, top_p %g, min_p %g",
                         (long long)r, (double)rows[r].temperature, (int)rows[r].top_k,
                         (double)rows[r].top_p, (double)rows[r].min_p);
    if (rc != 0) return rc;
    if (!b->ops->sample)
        return err_set(e, VELA_EUNSUP, "sample: not supported by %s", b->ops->name);
    return b->ops->sample(b, ids, logits, rows, e);
}

bool be_can_sample(const struct be *b) {
    return b && b->ops->sample != NULL;
}

int be_sync(struct be *b, struct err *e) {
    return b->ops->sync ? b->ops->sync(b, e) : 0;
}

static int check_host_copy(struct be *b, const struct tensor *t, size_t n_bytes, struct err *e) {
    int rc = check_tensor(b, t, "host copy", e);
    if (rc != 0) return rc;
    size_t want = (size_t)be_tensor_nelems(t) * be_dtype_size(t->dtype);
    if (n_bytes != want)
        return err_set(e, VELA_EINVAL, "host copy: %zu bytes given, tensor holds %zu", n_bytes,
                       want);
    return 0;
}

int be_tensor_write(struct be *b, struct tensor *t, const void *src, size_t n_bytes,
                    struct err *e) {
    int rc = check_host_copy(b, t, n_bytes, e);
    if (rc == 0 && t->buf->borrowed)
        rc = err_set(e, VELA_EINVAL, "host copy: tensor is in a borrowed (read-only) buffer");
    return rc != 0 ? rc : b->ops->tensor_write(b, t, src, e);
}

int be_tensor_read(struct be *b, const struct tensor *t, void *dst, size_t n_bytes, struct err *e) {
    int rc = check_host_copy(b, t, n_bytes, e);
    return rc != 0 ? rc : b->ops->tensor_read(b, t, dst, e);
}
