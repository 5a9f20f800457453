/* cuda_attn: host side of the CUDA attention ops. A BF16 paged cache at head_dim 64 or 128
 * (what the fast paths' applies accept) goes to the fast paths: sequences with 1 ..
 * ATT_DEC_MAX_ROWS new rows to flash-decoding (cuda_attn_dec.c), longer ones to the
 * tensor-core kernel (cuda_attn_tc.c); VELA_CUDA_ATTN=general turns that off. Everything
 * else, and the ViT's varlen attention, runs the general kernel of attention.cu, planned here
 * for one call (tiles of query rows, heads per block, key splits) and shipped with the block
 * tables through the metadata ring.
 *
 * Plan:
 *   - heads per block: all query heads of a kv head's group (up to 32), so each K/V row loaded
 *     serves the whole GQA group; rows per tile: as many as keep rows x heads <= 32 query
 *     vectors (prefill: 32 rows at group 1, 4 at group 7 or 8; decode: the one new row),
 *     both halved until the block's shared memory fits the device;
 *   - tiles never straddle sequences (or segments), so a tile's rows share one block table
 *     and are consecutive positions pos0, pos0 + 1, ...;
 *   - key splits (flash-decoding) only when the tiles alone leave SMs idle and some context is
 *     long (>= ATT_SPLIT_MIN_KEYS): up to two blocks per SM, each split at least
 *     ATT_SPLIT_MIN_KEYS / 2 keys, as many as the partial buffer holds.
 * Invariant: the tiles cover every query row exactly once. Owner thread only. */
#include "backend/cuda/cuda_impl.h"

#include <inttypes.h>
#include <string.h>

#define ATT_MAX_QV         32 /* query vectors per block: one per lane of the score warp */
#define ATT_SPLIT_MIN_KEYS 512
#define ATT_MAX_SPLITS     64
#define ATT_DEC_MAX_ROWS   16 /* sequences with at most this many new rows take the decode path */

/* Heads per block, rows per tile and head groups that fit the device's shared memory. */
static int plan_shape(struct be_cuda *c, struct katt_params *p, struct err *e) {
    int32_t gh = p->group < ATT_MAX_QV ? p->group : ATT_MAX_QV;
    int32_t bq = ATT_MAX_QV / gh > 1 ? ATT_MAX_QV / gh : 1;
    while (kl_attention_smem(p->head_dim, bq * gh) > c->max_smem) {
        if (bq > 1)
            bq /= 2;
        else if (gh > 1)
            gh = (gh + 1) / 2;
        else
            return err_set(e, VELA_EUNSUP,
                           "attention: head_dim %d needs %zu bytes of shared memory per block, "
                           "the device has %zu",
                           (int)p->head_dim, kl_attention_smem(p->head_dim, 1), c->max_smem);
    }
    p->heads_per_block = gh;
    p->rows_per_tile = bq;
    p->n_head_groups = (p->group + gh - 1) / gh;
    return 0;
}

/* Key splits for this call (p->tiles already counted, max_keys the longest tile context). */
static void plan_splits(const struct be_cuda *c, struct katt_params *p, int32_t max_keys) {
    p->n_splits = 1;
    p->split_keys = 0;
    int64_t base = (int64_t)p->n_tiles * (p->n_q_heads / p->group) * p->n_head_groups;
    if (base >= c->n_sms || max_keys < ATT_SPLIT_MIN_KEYS) return;
    int64_t want = (2 * (int64_t)c->n_sms + base - 1) / base;
    int64_t by_len = max_keys / (ATT_SPLIT_MIN_KEYS / 2);
    if (want > by_len) want = by_len;
    if (want > ATT_MAX_SPLITS) want = ATT_MAX_SPLITS;
    size_t per = (size_t)p->n_rows * (size_t)p->n_q_heads * (size_t)(p->head_dim + 2) * 4;
    while (want > 1 && per * (size_t)want > c->partial_bytes) want--;
    if (want <= 1) return;
    int32_t sk = (int32_t)((max_keys + want - 1) / want);
    sk = (sk + 31) & ~31;
    p->split_keys = sk;
    p->n_splits = (max_keys + sk - 1) / sk;
    if (p->n_splits <= 1) {
        p->n_splits = 1;
        return;
    }
    p->part_acc = c->partial;
    p->part_ml = c->partial + (size_t)p->n_rows * p->n_q_heads * p->n_splits * p->head_dim;
}

int cu_attention(struct be *b, struct tensor *o, const struct tensor *q,
                 const struct tensor *k_cache, const struct tensor *v_cache,
                 const struct attn_meta *m, struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    int32_t hd = m->head_dim;
    struct katt_params p = {.q = cu_kmat(q),
                            .k = cu_kmat(k_cache),
                            .v = cu_kmat(v_cache),
                            .o = cu_kmat(o),
                            .max_blocks = m->max_blocks_per_seq,
                            .block_size = m->block_size,
                            .head_dim = hd,
                            .n_q_heads = (int32_t)(be_tensor_cols(q) / hd),
                            .causal = 1,
                            .scale = m->scale,
                            .n_rows = be_tensor_rows(q)};
    p.group = p.n_q_heads / (int32_t)(be_tensor_cols(k_cache) / hd);
    int rc = cu_enter(c, e);
    if (rc != 0) return rc;
    if (!c->attn_general && cu_attn_tc_applies(c, o, q, k_cache, m) &&
        cu_attn_dec_applies(c, o, q, k_cache, m)) {
        rc = cu_attn_dec(c, o, q, k_cache, v_cache, m, 1, ATT_DEC_MAX_ROWS, e);
        if (rc == 0)
            rc = cu_attn_tc(c, o, q, k_cache, v_cache, m, ATT_DEC_MAX_ROWS + 1, INT32_MAX, e);
        return rc;
    }
    rc = plan_shape(c, &p, e);
    if (rc != 0) return rc;
    /* One metadata piece: tiles (at most one per row), then the block tables. */
    size_t tiles_bytes = ((size_t)p.n_rows * sizeof(struct katt_tile) + 15) & ~(size_t)15;
    size_t bt_bytes = (size_t)m->n_seqs * (size_t)m->max_blocks_per_seq * 4;
    void *h = NULL, *d = NULL;
    rc = cu_meta_reserve(c, tiles_bytes + bt_bytes, &h, &d, e);
    if (rc != 0) return rc;
    struct katt_tile *t = h;
    int32_t n_tiles = 0, max_keys = 0;
    for (int32_t s = 0; s < m->n_seqs; s++) {
        int32_t n_new = m->query_start[s + 1] - m->query_start[s];
        for (int32_t r0 = 0; r0 < n_new; r0 += p.rows_per_tile) {
            struct katt_tile *x = &t[n_tiles++];
            x->seq = s;
            x->row0 = m->query_start[s] + r0;
            x->n_rows = n_new - r0 < p.rows_per_tile ? n_new - r0 : p.rows_per_tile;
            x->pos0 = m->n_computed[s] + r0;
            x->key_base = 0;
            x->n_keys = x->pos0 + x->n_rows;
            if (x->n_keys > max_keys) max_keys = x->n_keys;
        }
    }
    memcpy((char *)h + tiles_bytes, m->block_tables, bt_bytes);
    rc = cu_meta_send(c, h, d, tiles_bytes + bt_bytes, e);
    if (rc != 0) return rc;
    p.tiles = d;
    p.n_tiles = n_tiles;
    p.block_tables = (const int32_t *)((const char *)d + tiles_bytes);
    plan_splits(c, &p, max_keys);
    CU_TRY(kl_attention(c->stream, &p), e);
    return 0;
}

int cu_attention_varlen(struct be *b, struct tensor *o, const struct tensor *q,
                        const struct tensor *k, const struct tensor *v, const struct varlen_meta *m,
                        struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    int32_t hd = m->head_dim;
    struct katt_params p = {.q = cu_kmat(q),
                            .k = cu_kmat(k),
                            .v = cu_kmat(v),
                            .o = cu_kmat(o),
                            .head_dim = hd,
                            .n_q_heads = (int32_t)(be_tensor_cols(q) / hd),
                            .group = 1,
                            .causal = 0,
                            .scale = m->scale,
                            .n_rows = be_tensor_rows(q)};
    int rc = cu_enter(c, e);
    if (rc == 0) rc = plan_shape(c, &p, e);
    if (rc != 0) return rc;
    void *h = NULL, *d = NULL;
    size_t bytes = (size_t)p.n_rows * sizeof(struct katt_tile);
    rc = cu_meta_reserve(c, bytes, &h, &d, e);
    if (rc != 0) return rc;
    struct katt_tile *t = h;
    int32_t n_tiles = 0, max_keys = 0;
    for (int32_t s = 0; s < m->n_segs; s++) {
        int32_t s0 = m->cu_seqlens[s], len = m->cu_seqlens[s + 1] - s0;
        for (int32_t r0 = 0; r0 < len; r0 += p.rows_per_tile) {
            struct katt_tile *x = &t[n_tiles++];
            x->seq = s;
            x->row0 = s0 + r0;
            x->n_rows = len - r0 < p.rows_per_tile ? len - r0 : p.rows_per_tile;
            x->pos0 = 0;
            x->key_base = s0;
            x->n_keys = len;
        }
        if (len > max_keys) max_keys = len;
    }
    rc = cu_meta_send(c, h, d, (size_t)n_tiles * sizeof(struct katt_tile), e);
    if (rc != 0) return rc;
    p.tiles = d;
    p.n_tiles = n_tiles;
    plan_splits(c, &p, max_keys);
    CU_TRY(kl_attention(c->stream, &p), e);
    return 0;
}
