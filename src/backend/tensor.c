/* tensor: bookkeeping for tensor views (shape, stride, bounds) shared by every backend.
 *
 * Invariants of a tensor made here (be_tensor_init and the view functions):
 *   1. 1 <= n_dims <= BE_MAX_DIMS, every shape entry >= 1, unused entries are 1;
 *   2. row_stride >= cols, offset_bytes is a multiple of the element size;
 *   3. the bytes from row 0 to the end of the last row lie inside buf, computed without
 *      overflow, so be_tensor_addr() on any (row, col) in range stays in the buffer.
 * No memory is touched here. Any thread (tensors are plain values). */
#include "backend/backend_impl.h"
#include "backend/tensor.h"
#include "util/size.h"

#include <inttypes.h>

size_t be_dtype_size(enum be_dtype d) {
    switch (d) {
        case BE_F32:
            return 4;
        case BE_BF16:
            return 2;
        case BE_I32:
            return 4;
        default:
            return 0;
    }
}

const char *be_dtype_name(enum be_dtype d) {
    switch (d) {
        case BE_F32:
            return "F32";
        case BE_BF16:
            return "BF16";
        case BE_I32:
            return "I32";
        default:
            return "?";
    }
}

int64_t be_tensor_cols(const struct tensor *t) {
    return t->shape[t->n_dims - 1];
}

int64_t be_tensor_rows(const struct tensor *t) {
    int64_t r = 1;
    for (int i = 0; i < t->n_dims - 1; i++) r *= t->shape[i];
    return r;
}

int64_t be_tensor_nelems(const struct tensor *t) {
    return be_tensor_rows(t) * be_tensor_cols(t);
}

/* Bytes from row 0 to the end of the last row; false on overflow. */
static bool tensor_span_bytes(int64_t rows, int64_t cols, int64_t stride, size_t es, size_t *out) {
    size_t last, n;
    if (!size_mul_ok((size_t)(rows - 1), (size_t)stride, &last)) return false;
    if (!size_add_ok(last, (size_t)cols, &n)) return false;
    return size_mul_ok(n, es, out);
}

int tensor_check_bounds(const struct tensor *t, struct err *e) {
    size_t es = be_dtype_size(t->dtype), span, end;
    int64_t rows = be_tensor_rows(t), cols = be_tensor_cols(t);
    if (!tensor_span_bytes(rows, cols, t->row_stride, es, &span) ||
        !size_add_ok(span, t->offset_bytes, &end) || end > t->buf->n_bytes)
        return err_set(e, VELA_EINVAL,
                       "tensor [%" PRId64 " x %" PRId64 "] %s at offset %zu does not fit in a "
                       "buffer of %zu bytes",
                       rows, cols, be_dtype_name(t->dtype), t->offset_bytes, t->buf->n_bytes);
    return 0;
}

int be_tensor_init(struct tensor *t, struct be_buffer *buf, size_t offset_bytes,
                   enum be_dtype dtype, int32_t n_dims, const int64_t *shape, struct err *e) {
    struct tensor v = {0};
    if (!buf) return err_set(e, VELA_EINVAL, "tensor: no buffer");
    if ((int)dtype < 0 || dtype >= BE_N_DTYPES)
        return err_set(e, VELA_EINVAL, "tensor: unknown dtype %d", (int)dtype);
    if (n_dims < 1 || n_dims > BE_MAX_DIMS)
        return err_set(e, VELA_EINVAL, "tensor: %d dims (1..%d allowed)", (int)n_dims, BE_MAX_DIMS);
    /* Products of dims must fit int64 and size_t: bound each dim, then the total. */
    int64_t total = 1;
    for (int i = 0; i < BE_MAX_DIMS; i++) {
        int64_t d = i < n_dims ? shape[i] : 1;
        if (d < 1 || d > ((int64_t)1 << 40))
            return err_set(e, VELA_EINVAL, "tensor: dim %d is %" PRId64 " (1..2^40 allowed)", i, d);
        if (total > INT64_MAX / d)
            return err_set(e, VELA_EINVAL, "tensor: element count overflows");
        total *= d;
        v.shape[i] = d;
    }
    size_t es = be_dtype_size(dtype);
    if (offset_bytes % es != 0)
        return err_set(e, VELA_EINVAL, "tensor: offset %zu not aligned to %s", offset_bytes,
                       be_dtype_name(dtype));
    v.dtype = dtype;
    v.device = buf->owner->device;
    v.n_dims = n_dims;
    v.row_stride = v.shape[n_dims - 1];
    v.buf = buf;
    v.offset_bytes = offset_bytes;
    int rc = tensor_check_bounds(&v, e);
    if (rc != 0) return rc;
    *t = v;
    return 0;
}

int be_tensor_cols_view(struct tensor *out, const struct tensor *t, int64_t col0, int64_t n_cols,
                        struct err *e) {
    int64_t cols = be_tensor_cols(t);
    if (col0 < 0 || n_cols < 1 || col0 > cols || n_cols > cols - col0)
        return err_set(e, VELA_EINVAL,
                       "column view [%" PRId64 ", +%" PRId64 ") outside %" PRId64 " columns", col0,
                       n_cols, cols);
    struct tensor v = *t;
    v.shape[v.n_dims - 1] = n_cols;
    v.offset_bytes += (size_t)col0 * be_dtype_size(t->dtype);
    *out = v;
    return 0;
}

int be_tensor_rows_view(struct tensor *out, const struct tensor *t, int64_t row0, int64_t n_rows,
                        struct err *e) {
    int64_t rows = be_tensor_rows(t);
    if (row0 < 0 || n_rows < 1 || row0 > rows || n_rows > rows - row0)
        return err_set(e, VELA_EINVAL,
                       "row view [%" PRId64 ", +%" PRId64 ") outside %" PRId64 " rows", row0,
                       n_rows, rows);
    struct tensor v = *t;
    v.n_dims = 2;
    v.shape[0] = n_rows;
    v.shape[1] = be_tensor_cols(t);
    v.shape[2] = v.shape[3] = 1;
    v.offset_bytes += (size_t)row0 * (size_t)t->row_stride * be_dtype_size(t->dtype);
    *out = v;
    return 0;
}

void *be_tensor_host_ptr(const struct tensor *t) {
    if (!t || !t->buf || !t->buf->host_visible) return NULL;
    return be_tensor_addr(t, 0, 0);
}

void tensor_byte_range(const struct tensor *t, size_t *begin, size_t *end) {
    size_t span = 0;
    tensor_span_bytes(be_tensor_rows(t), be_tensor_cols(t), t->row_stride, be_dtype_size(t->dtype),
                      &span);
    *begin = t->offset_bytes;
    *end = t->offset_bytes + span;
}

bool tensor_same_view(const struct tensor *a, const struct tensor *b) {
    return a->buf == b->buf && a->offset_bytes == b->offset_bytes &&
           a->row_stride == b->row_stride && a->dtype == b->dtype &&
           be_tensor_rows(a) == be_tensor_rows(b) && be_tensor_cols(a) == be_tensor_cols(b);
}

bool tensor_overlap(const struct tensor *a, const struct tensor *b) {
    if (a->buf != b->buf) return false;
    size_t a0, a1, b0, b1;
    tensor_byte_range(a, &a0, &a1);
    tensor_byte_range(b, &b0, &b1);
    if (!(a0 < b1 && b0 < a1)) return false;
    /* Interleaved column slices of one matrix (q, k, v of a stacked projection, or rows views
     * of them) share a row pitch p: every row of b starts d bytes after a row start of a,
     * modulo p, so they overlap only if [0, wa) and [d, d + wb) meet on a circle of p bytes.
     * (The matrix itself may start anywhere in the buffer: only the difference counts.) */
    size_t pa = (size_t)a->row_stride * be_dtype_size(a->dtype);
    size_t pb = (size_t)b->row_stride * be_dtype_size(b->dtype);
    size_t wa = (size_t)be_tensor_cols(a) * be_dtype_size(a->dtype);
    size_t wb = (size_t)be_tensor_cols(b) * be_dtype_size(b->dtype);
    if (pa != pb || pa == 0 || wa > pa || wb > pa) return true; /* stay conservative */
    size_t d = b0 >= a0 ? (b0 - a0) % pa : (pa - (a0 - b0) % pa) % pa;
    return d < wa || d + wb > pa;
}
