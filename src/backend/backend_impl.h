/* backend_impl: what a backend implements. Only backend.c and the backends include this.
 *
 * backend.c validates every argument (dtypes, shapes, bounds, aliasing) before calling an
 * entry, so implementations may assume well-formed inputs: matching shapes, dtypes from the
 * documented sets, views inside their buffers. Entries marked (optional) may be NULL, and
 * the wrapper then reports VELA_EUNSUP. Same threading as backend.h. */
#ifndef VELA_BACKEND_BACKEND_IMPL_H
#define VELA_BACKEND_BACKEND_IMPL_H

#include "backend/backend.h"

struct be_ops {
    const char *name;
    void (*free)(struct be *b);

    /* Buffers: buffer_new fills buf->base for a fresh allocation; buffer_from_host either
     * borrows host (CPU) or copies it. buffer_free releases what the backend allocated. */
    int (*buffer_new)(struct be *b, struct be_buffer *buf, struct err *e);
    int (*buffer_from_host)(struct be *b, struct be_buffer *buf, const void *host, struct err *e);
    void (*buffer_free)(struct be_buffer *buf);
    /* Packed host <-> strided tensor copies. */
    int (*tensor_write)(struct be *b, struct tensor *t, const void *src, struct err *e);
    int (*tensor_read)(struct be *b, const struct tensor *t, void *dst, struct err *e);

    int (*matmul)(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *w,
                  const struct tensor *bias, struct err *e); /* bias may be NULL */
    /* (optional): NULL means be_matmul_multi calls matmul once per output. */
    int (*matmul_multi)(struct be *b, const struct be_mm_out *outs, int n_out,
                        const struct tensor *x, struct err *e);
    int (*rms_norm)(struct be *b, struct tensor *y, const struct tensor *x,
                    const struct tensor *gain, float eps, struct err *e);
    int (*add)(struct be *b, struct tensor *y, const struct tensor *a, const struct tensor *c,
               struct err *e);
    int (*add_rms_norm)(struct be *b, struct tensor *h, struct tensor *y, const struct tensor *x,
                        const struct tensor *gain, float eps, struct err *e);
    int (*silu_mul)(struct be *b, struct tensor *y, const struct tensor *gate,
                    const struct tensor *up, struct err *e); /* up NULL: fused gate_up */
    int (*embed)(struct be *b, struct tensor *y, const struct tensor *table,
                 const struct tensor *ids, struct err *e);
    int (*sync)(struct be *b, struct err *e); /* (optional): NULL means always in sync */

    /* ---- language-model attention ops (backend.h; checked by attn.c) ---- */
    int (*rope)(struct be *b, struct tensor *q, struct tensor *k, const struct rope_args *a,
                struct err *e); /* (optional); k may be NULL */
    int (*kv_store)(struct be *b, struct tensor *k_cache, struct tensor *v_cache,
                    const struct tensor *k, const struct tensor *v, const struct attn_meta *m,
                    struct err *e); /* (optional) */
    int (*attention)(struct be *b, struct tensor *o, const struct tensor *q,
                     const struct tensor *k_cache, const struct tensor *v_cache,
                     const struct attn_meta *m, struct err *e); /* (optional) */

    /* ---- vision-tower ops (backend.h; checked by vit_ops.c) ---- */
    int (*rope2d)(struct be *b, struct tensor *q, struct tensor *k, const struct rope2d_args *a,
                  struct err *e); /* (optional) */
    int (*attention_varlen)(struct be *b, struct tensor *o, const struct tensor *q,
                            const struct tensor *k, const struct tensor *v,
                            const struct varlen_meta *m, struct err *e); /* (optional) */
    int (*gelu)(struct be *b, struct tensor *y, const struct tensor *x,
                struct err *e); /* (optional) */
    int (*gather_rows)(struct be *b, struct tensor *y, const struct tensor *x, const int32_t *rows,
                       struct err *e); /* (optional) */
    int (*layer_norm)(struct be *b, struct tensor *y, const struct tensor *x,
                      const struct tensor *gain, const struct tensor *bias, float eps,
                      struct err *e); /* (optional) */
    int (*quick_gelu)(struct be *b, struct tensor *y, const struct tensor *x,
                      struct err *e); /* (optional) */

    /* ---- sampling (backend.h) ---- */
    int (*sample_greedy)(struct be *b, struct tensor *ids, const struct tensor *logits,
                         struct err *e); /* (optional): the CPU samples in engine/sampler.c */
    int (*sample)(struct be *b, struct tensor *ids, const struct tensor *logits,
                  const struct be_sample_row *rows, struct err *e); /* (optional) */
};

/* Every backend embeds this header first in its own struct. */
struct be {
    const struct be_ops *ops;
    enum be_device device;
};

struct be_buffer {
    struct be *owner; /* borrowed */
    enum be_buf_use use;
    size_t n_bytes;
    void *base;        /* device address; host-visible when host_visible */
    bool host_visible; /* the CPU may dereference base */
    bool borrowed;     /* base belongs to the caller (mmapped weights) */
};

/* Address of row r, column c of t; only valid on host-visible buffers or inside a backend
 * that knows what the address means. */
static inline void *be_tensor_addr(const struct tensor *t, int64_t r, int64_t c) {
    size_t es = be_dtype_size(t->dtype);
    return (char *)t->buf->base + t->offset_bytes +
           ((size_t)r * (size_t)t->row_stride + (size_t)c) * es;
}

#endif
