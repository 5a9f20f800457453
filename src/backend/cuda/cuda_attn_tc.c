/* cuda_attn_tc: host side of the tensor-core prefill attention (attention_tc.cu): says which
 * calls it can take, cuts the chosen sequences' new rows into tiles, orders them heaviest
 * first and ships them with the block tables through the metadata ring.
 *
 * Plan:
 *   - tiles of 128 rows (8 warps: half the K/V traffic per row, measured faster on an H100
 *     from 512 rows up), or of 64 rows (4 warps) when the wide tiles would pad the call's
 *     sequences with over 1/8 more rows (short chunks of 17..64 rows);
 *   - tiles never straddle sequences, so a tile's rows share one block table and sit at
 *     consecutive positions pos0, pos0 + 1, ...;
 *   - one block per (tile, query head), heads fastest, so the blocks of one tile (and the
 *     heads of one kv group) run side by side and share K/V in L2;
 *   - tiles sorted by key count, longest first, so the long causal ranges start in the first
 *     wave and the short ones fill the tail.
 * Invariant: the tiles cover every new row of the chosen sequences exactly once and no other
 * row. Owner thread only. */
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/kernels_tc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A BF16 cache whose rows can be copied in 16-byte pieces. */
static bool tc_cache_ok(const struct tensor *t) {
    struct kmat k = cu_kmat(t);
    return t->dtype == BE_BF16 && (uintptr_t)k.p % 16 == 0 && k.stride % 8 == 0;
}

bool cu_attn_tc_applies(const struct be_cuda *c, const struct tensor *o, const struct tensor *q,
                        const struct tensor *k_cache, const struct attn_meta *m) {
    int32_t hd = m->head_dim;
    if (hd != 64 && hd != 128) return false;
    if (q->dtype != BE_F32 && q->dtype != BE_BF16) return false;
    if (o->dtype != BE_F32 && o->dtype != BE_BF16) return false;
    if (!tc_cache_ok(k_cache) || m->block_size <= 0) return false;
    if (!(m->scale > 0.0f) || !isfinite(m->scale)) return false; /* the max folds in the scale */
    return kl_attn_tc_smem(hd) <= c->max_smem;
}

static int tc_tile_cmp(const void *a, const void *b) {
    const struct ktc_tile *x = a, *y = b;
    int32_t kx = x->pos0 + x->n_rows, ky = y->pos0 + y->n_rows;
    if (kx != ky) return kx > ky ? -1 : 1;
    return x->row0 < y->row0 ? -1 : x->row0 > y->row0;
}

/* Rows per tile for this call: 128 unless that pads the chosen sequences much more than 64. */
static int32_t tc_rows_per_tile(const struct attn_meta *m, int32_t min_rows, int32_t max_rows) {
    int64_t padded64 = 0, padded128 = 0;
    for (int32_t s = 0; s < m->n_seqs; s++) {
        int32_t n_new = m->query_start[s + 1] - m->query_start[s];
        if (n_new < min_rows || n_new > max_rows) continue;
        padded64 += (n_new + 63) / 64 * 64;
        padded128 += (n_new + 127) / 128 * 128;
    }
    return padded128 * 8 <= padded64 * 9 ? 128 : 64;
}

/* The tiles of the chosen sequences into t (room for every tile); returns their count. */
static int32_t tc_plan_tiles(struct ktc_tile *t, const struct attn_meta *m, int32_t min_rows,
                             int32_t max_rows, int32_t rows_per_tile) {
    int32_t n = 0;
    for (int32_t s = 0; s < m->n_seqs; s++) {
        int32_t n_new = m->query_start[s + 1] - m->query_start[s];
        if (n_new < min_rows || n_new > max_rows) continue;
        for (int32_t r0 = 0; r0 < n_new; r0 += rows_per_tile) {
            struct ktc_tile *x = &t[n++];
            x->seq = s;
            x->row0 = m->query_start[s] + r0;
            x->n_rows = n_new - r0 < rows_per_tile ? n_new - r0 : rows_per_tile;
            x->pos0 = m->n_computed[s] + r0;
        }
    }
    qsort(t, (size_t)n, sizeof *t, tc_tile_cmp);
    return n;
}

static int32_t tc_log2(int32_t v) {
    if (v <= 0 || (v & (v - 1)) != 0) return -1;
    int32_t s = 0;
    while ((1 << s) != v) s++;
    return s;
}

int cu_attn_tc(struct be_cuda *c, struct tensor *o, const struct tensor *q,
               const struct tensor *k_cache, const struct tensor *v_cache,
               const struct attn_meta *m, int32_t min_rows, int32_t max_rows, struct err *e) {
    if (!tc_cache_ok(v_cache))
        return err_set(e, VELA_EUNSUP,
                       "attention: the tensor-core path needs a BF16 v_cache with 16-byte aligned "
                       "rows, as k_cache has");
    int32_t hd = m->head_dim;
    int32_t n_q_heads = (int32_t)(be_tensor_cols(q) / hd);
    int32_t n_kv_heads = (int32_t)(be_tensor_cols(k_cache) / hd);
    int32_t rows = 0;
    for (int32_t s = 0; s < m->n_seqs; s++) {
        int32_t n_new = m->query_start[s + 1] - m->query_start[s];
        if (n_new >= min_rows && n_new <= max_rows) rows += n_new;
    }
    if (rows == 0) return 0; /* nothing to launch */
    int32_t rpt = tc_rows_per_tile(m, min_rows, max_rows);
    int64_t max_tiles = (rows + 63) / 64 + m->n_seqs; /* bound for either tile size */
    if (max_tiles * n_q_heads > INT32_MAX)
        return err_set(e, VELA_EUNSUP, "attention: %d rows x %d heads exceed one launch", (int)rows,
                       (int)n_q_heads);
    size_t tiles_bytes = ((size_t)max_tiles * sizeof(struct ktc_tile) + 15) & ~(size_t)15;
    size_t bt_bytes = (size_t)m->n_seqs * (size_t)m->max_blocks_per_seq * sizeof(int32_t);
    void *h = NULL, *d = NULL;
    int rc = cu_meta_reserve(c, tiles_bytes + bt_bytes, &h, &d, e);
    if (rc != 0) return rc;
    int32_t n_tiles = tc_plan_tiles(h, m, min_rows, max_rows, rpt);
    memcpy((char *)h + tiles_bytes, m->block_tables, bt_bytes);
    rc = cu_meta_send(c, h, d, tiles_bytes + bt_bytes, e);
    if (rc != 0) return rc;
    struct ktc_params p = {.q = cu_kmat(q),
                           .o = cu_kmat(o),
                           .k = cu_kmat(k_cache),
                           .v = cu_kmat(v_cache),
                           .tiles = d,
                           .n_tiles = n_tiles,
                           .block_tables = (const int32_t *)((const char *)d + tiles_bytes),
                           .max_blocks = m->max_blocks_per_seq,
                           .block_size = m->block_size,
                           .bs_shift = tc_log2(m->block_size),
                           .head_dim = hd,
                           .n_q_heads = n_q_heads,
                           .group = n_q_heads / n_kv_heads,
                           .rows_per_tile = rpt,
                           .scale_log2 = m->scale * 1.4426950408889634f};
    CU_TRY(kl_attn_tc(c->stream, &p), e);
    return 0;
}
