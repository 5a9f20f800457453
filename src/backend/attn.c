/* attn: the be_* wrappers of the language-model attention ops (rope, kv_store, attention).
 * Like backend.c, each checks its arguments once for every backend and then calls the op
 * table, so a backend never sees a malformed call.
 *
 * Invariants enforced before any op runs:
 *   1. every tensor belongs to this backend and lies inside its buffer; outputs (q, k rotated
 *      in place, the caches, o) are in compute buffers;
 *   2. widths agree: q cols = Nq * head_dim, cache and k/v cols = Nkv * head_dim, Nkv divides
 *      Nq, head_dim even and at most VELA_CFG_MAX_HEAD_DIM;
 *   3. the metadata describes the rows exactly: query_start runs from 0 to n_tokens, every
 *      sequence has at least one new token, every key it will read maps through its block
 *      table to a block inside the cache, and every slot is a cache row;
 *   4. o never overlaps q or the caches; k/v never overlap the caches.
 * Checking the block tables costs O(total blocks) per call, small beside the op itself.
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

static int check_heads(const struct tensor *t, int32_t head_dim, const char *what, int64_t *n_heads,
                       struct err *e) {
    int64_t cols = be_tensor_cols(t);
    if (cols % head_dim != 0)
        return err_set(e, VELA_EINVAL, "%s: width %" PRId64 " is not a multiple of head_dim %d",
                       what, cols, (int)head_dim);
    *n_heads = cols / head_dim;
    return 0;
}

static int check_head_dim(int32_t head_dim, const char *what, struct err *e) {
    if (head_dim < 2 || head_dim % 2 != 0 || head_dim > VELA_CFG_MAX_HEAD_DIM)
        return err_set(e, VELA_EINVAL, "%s: head_dim %d (even, 2..%d)", what, (int)head_dim,
                       VELA_CFG_MAX_HEAD_DIM);
    return 0;
}

int be_rope(struct be *b, struct tensor *q, struct tensor *k, const struct rope_args *a,
            struct err *e) {
    if (!b || !a || !a->pos) return err_set(e, VELA_EINVAL, "rope: NULL argument");
    int rc = check_t(b, q, "rope q", true, e);
    if (rc == 0 && k) rc = check_t(b, k, "rope k", true, e);
    if (rc == 0) rc = check_head_dim(a->head_dim, "rope", e);
    if (rc != 0) return rc;
    int64_t nh = 0;
    rc = check_heads(q, a->head_dim, "rope q", &nh, e);
    if (rc == 0 && k) rc = check_heads(k, a->head_dim, "rope k", &nh, e);
    if (rc != 0) return rc;
    if (k && be_tensor_rows(k) != be_tensor_rows(q))
        return err_set(e, VELA_EINVAL, "rope: q has %" PRId64 " rows, k %" PRId64,
                       be_tensor_rows(q), be_tensor_rows(k));
    if (k && tensor_overlap(q, k)) return err_set(e, VELA_EINVAL, "rope: q and k overlap");
    int32_t s0 = a->section[0], s1 = a->section[1], s2 = a->section[2];
    if (s0 < 0 || s1 < 0 || s2 < 0 || s0 + s1 + s2 != a->head_dim / 2)
        return err_set(e, VELA_EINVAL, "rope: sections [%d, %d, %d] must sum to head_dim/2 = %d",
                       (int)s0, (int)s1, (int)s2, (int)(a->head_dim / 2));
    if (!(a->theta > 0.0f)) return err_set(e, VELA_EINVAL, "rope: theta %g <= 0", a->theta);
    if (!b->ops->rope) return err_set(e, VELA_EUNSUP, "rope: not supported by %s", b->ops->name);
    return b->ops->rope(b, q, k, a, e);
}

/* Invariant 3 for the sequences (not the slots): n_tokens rows of new tokens. */
static int check_meta(const struct attn_meta *m, int64_t n_tokens, int64_t n_slots, struct err *e) {
    if (!m->query_start || !m->n_computed || !m->block_tables)
        return err_set(e, VELA_EINVAL, "attention: metadata array missing");
    if (m->n_seqs < 1 || m->max_blocks_per_seq < 1)
        return err_set(e, VELA_EINVAL, "attention: %d sequences, %d blocks per sequence",
                       (int)m->n_seqs, (int)m->max_blocks_per_seq);
    if (m->block_size < 1 || m->block_size > VELA_KV_MAX_BLOCK_SIZE)
        return err_set(e, VELA_EINVAL, "attention: block size %d (1..%d)", (int)m->block_size,
                       VELA_KV_MAX_BLOCK_SIZE);
    if (n_slots % m->block_size != 0)
        return err_set(e, VELA_EINVAL, "attention: cache rows %" PRId64 " not whole blocks of %d",
                       n_slots, (int)m->block_size);
    int64_t n_blocks = n_slots / m->block_size;
    if (m->query_start[0] != 0)
        return err_set(e, VELA_EINVAL, "attention: query_start[0] = %d", (int)m->query_start[0]);
    for (int32_t s = 0; s < m->n_seqs; s++) {
        int64_t n_new = (int64_t)m->query_start[s + 1] - m->query_start[s];
        int64_t ctx = (int64_t)m->n_computed[s] + n_new;
        if (n_new < 1 || m->n_computed[s] < 0)
            return err_set(e, VELA_EINVAL,
                           "attention: sequence %d has %" PRId64 " new tokens after %d computed",
                           (int)s, n_new, (int)m->n_computed[s]);
        if (ctx > (int64_t)m->max_blocks_per_seq * m->block_size)
            return err_set(e, VELA_EINVAL,
                           "attention: sequence %d needs %" PRId64 " tokens, its block table "
                           "holds %" PRId64,
                           (int)s, ctx, (int64_t)m->max_blocks_per_seq * m->block_size);
        const int32_t *bt = m->block_tables + (size_t)s * (size_t)m->max_blocks_per_seq;
        int64_t used = (ctx + m->block_size - 1) / m->block_size;
        for (int64_t j = 0; j < used; j++)
            if (bt[j] < 0 || bt[j] >= n_blocks)
                return err_set(e, VELA_EINVAL,
                               "attention: sequence %d block %" PRId64 " is %d, cache has %" PRId64
                               " blocks",
                               (int)s, j, (int)bt[j], n_blocks);
    }
    if (m->query_start[m->n_seqs] != n_tokens)
        return err_set(e, VELA_EINVAL,
                       "attention: query_start ends at %d, batch has %" PRId64 " tokens",
                       (int)m->query_start[m->n_seqs], n_tokens);
    return 0;
}

static int check_slots(const struct attn_meta *m, int64_t n, int64_t n_slots, struct err *e) {
    if (!m->slot_mapping) return err_set(e, VELA_EINVAL, "kv_store: slot_mapping missing");
    for (int64_t i = 0; i < n; i++)
        if (m->slot_mapping[i] < 0 || m->slot_mapping[i] >= n_slots)
            return err_set(e, VELA_EINVAL,
                           "kv_store: token %" PRId64 " slot %d outside [0, %" PRId64 ")", i,
                           (int)m->slot_mapping[i], n_slots);
    return 0;
}

int be_attn_meta_check(const struct attn_meta *m, int64_t n_tokens, int64_t n_slots,
                       struct err *e) {
    if (!m) return err_set(e, VELA_EINVAL, "attention: NULL metadata");
    int rc = check_meta(m, n_tokens, n_slots, e);
    return rc != 0 ? rc : check_slots(m, n_tokens, n_slots, e);
}

static int check_cache_pair(struct be *b, const struct tensor *kc, const struct tensor *vc,
                            struct err *e) {
    int rc = check_t(b, kc, "k cache", true, e);
    if (rc == 0) rc = check_t(b, vc, "v cache", true, e);
    if (rc != 0) return rc;
    if (kc->dtype != vc->dtype || be_tensor_rows(kc) != be_tensor_rows(vc) ||
        be_tensor_cols(kc) != be_tensor_cols(vc))
        return err_set(e, VELA_EINVAL, "kv cache: k and v caches differ in dtype or shape");
    if (tensor_overlap(kc, vc)) return err_set(e, VELA_EINVAL, "kv cache: k and v overlap");
    return 0;
}

int be_kv_store(struct be *b, struct tensor *k_cache, struct tensor *v_cache,
                const struct tensor *k, const struct tensor *v, const struct attn_meta *m,
                struct err *e) {
    if (!b || !m || !m->slot_mapping) return err_set(e, VELA_EINVAL, "kv_store: NULL argument");
    int rc = check_cache_pair(b, k_cache, v_cache, e);
    if (rc == 0) rc = check_t(b, k, "kv_store k", false, e);
    if (rc == 0) rc = check_t(b, v, "kv_store v", false, e);
    if (rc != 0) return rc;
    int64_t n = be_tensor_rows(k), w = be_tensor_cols(k), n_slots = be_tensor_rows(k_cache);
    if (be_tensor_rows(v) != n || be_tensor_cols(v) != w || be_tensor_cols(k_cache) != w)
        return err_set(e, VELA_EINVAL,
                       "kv_store: k [%" PRId64 " x %" PRId64 "], v [%" PRId64 " x %" PRId64
                       "], cache width %" PRId64,
                       n, w, be_tensor_rows(v), be_tensor_cols(v), be_tensor_cols(k_cache));
    rc = check_slots(m, n, n_slots, e);
    if (rc != 0) return rc;
    const struct tensor *ins[2] = {k, v};
    for (int i = 0; i < 2; i++)
        if (tensor_overlap(ins[i], k_cache) || tensor_overlap(ins[i], v_cache))
            return err_set(e, VELA_EINVAL, "kv_store: new keys/values overlap the cache");
    if (!b->ops->kv_store)
        return err_set(e, VELA_EUNSUP, "kv_store: not supported by %s", b->ops->name);
    return b->ops->kv_store(b, k_cache, v_cache, k, v, m, e);
}

int be_attention(struct be *b, struct tensor *o, const struct tensor *q,
                 const struct tensor *k_cache, const struct tensor *v_cache,
                 const struct attn_meta *m, struct err *e) {
    if (!b || !m) return err_set(e, VELA_EINVAL, "attention: NULL argument");
    int rc = check_cache_pair(b, k_cache, v_cache, e);
    if (rc == 0) rc = check_t(b, o, "attention o", true, e);
    if (rc == 0) rc = check_t(b, q, "attention q", false, e);
    if (rc == 0) rc = check_head_dim(m->head_dim, "attention", e);
    if (rc != 0) return rc;
    int64_t nq = 0, nkv = 1;
    rc = check_heads(q, m->head_dim, "attention q", &nq, e);
    if (rc == 0) rc = check_heads(k_cache, m->head_dim, "attention cache", &nkv, e);
    if (rc != 0) return rc;
    if (nq % nkv != 0)
        return err_set(e, VELA_EINVAL,
                       "attention: %" PRId64 " query heads, %" PRId64 " kv heads (must divide)", nq,
                       nkv);
    if (be_tensor_rows(o) != be_tensor_rows(q) || be_tensor_cols(o) != be_tensor_cols(q))
        return err_set(e, VELA_EINVAL, "attention: o and q differ in shape");
    if (!(m->scale > 0.0f) || m->scale != m->scale)
        return err_set(e, VELA_EINVAL, "attention: scale %g", m->scale);
    rc = check_meta(m, be_tensor_rows(q), be_tensor_rows(k_cache), e);
    if (rc != 0) return rc;
    if (tensor_overlap(o, q) || tensor_overlap(o, k_cache) || tensor_overlap(o, v_cache))
        return err_set(e, VELA_EINVAL, "attention: output overlaps an input");
    if (!b->ops->attention)
        return err_set(e, VELA_EUNSUP, "attention: not supported by %s", b->ops->name);
    return b->ops->attention(b, o, q, k_cache, v_cache, m, e);
}
