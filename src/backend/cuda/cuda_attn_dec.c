/* cuda_attn_dec: host side of the flash-decoding path (attention_dec.cu) for the sequences
 * of a paged-attention call with few new rows: cuts them into chunks and key splits, sizes
 * the splits to the device and the partial buffer, and ships the plan with the block tables
 * through the metadata ring (no device allocation).
 *
 * Plan:
 *   - query vectors: new row r and head g of a kv head's group are vector r * group + g of the
 *     sequence; chunks of qv consecutive vectors, qv = the most whole rows' vectors that fit
 *     KDEC_MAX_QV (KDEC_MAX_QV itself for groups above it), or fewer when no sequence has that
 *     many: a decode row of a GQA-7 model is one chunk of 7 sharing each K/V load;
 *   - splits (flash-decoding): slots = SMs x resident blocks per SM; a chunk of n keys gets
 *     floor(n * slots / (all chunks' keys * n_kv)) splits, at least 1, at most one per
 *     DEC_MIN_SPLIT keys: the main kernel fills the device about once, long contexts split
 *     most, and every split is long enough to pay for its partial record;
 *   - split lengths are multiples of KDEC_TILE and equal within a chunk;
 *   - when the split chunks' partial records exceed the partial buffer, slots are halved until
 *     they fit (at one split everywhere nothing is stored).
 * Invariants: every query row of an eligible sequence (min_rows <= new rows <= max_rows) is
 * covered by exactly one chunk, for every kv head; other rows of o are never written.
 * Owner thread only. */
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/kernels_dec.h"

#include <stdint.h>
#include <string.h>

/* Both may be set at build time for measurements. */
#ifndef DEC_MIN_SPLIT
#define DEC_MIN_SPLIT 256 /* keys per split at least: 128 KB of K+V per kv head at head_dim 128 */
#endif
#ifndef DEC_WAVES
#define DEC_WAVES 1 /* the main kernel's blocks fill the device about this many times */
#endif
#define DEC_LOG2E 1.4426950408889634f

/* The call-wide numbers both planning passes use. */
struct dec_plan {
    int32_t group, n_kv, hd, qv, min_rows, max_rows;
    int64_t slots;      /* blocks the device holds at once */
    int64_t total_keys; /* sum of chunk keys (one kv head) */
    int32_t n_chunks, n_split_chunks;
    int64_t n_blocks; /* main-kernel blocks: splits x kv heads */
    int64_t records;  /* partial records (all kv heads) */
};

static int32_t seq_rows(const struct attn_meta *m, int32_t s) {
    return m->query_start[s + 1] - m->query_start[s];
}

static bool eligible(const struct dec_plan *pl, const struct attn_meta *m, int32_t s) {
    int32_t n = seq_rows(m, s);
    return n >= 1 && n >= pl->min_rows && n <= pl->max_rows;
}

/* Keys the last row of chunk [qv0, qv0 + n_qv) of sequence s sees. */
static int32_t chunk_keys(const struct dec_plan *pl, const struct attn_meta *m, int32_t s,
                          int32_t qv0, int32_t n_qv) {
    return m->n_computed[s] + (qv0 + n_qv - 1) / pl->group + 1;
}

/* Splits and split length of a chunk of n_keys keys under pl->slots. */
static int32_t chunk_splits(const struct dec_plan *pl, int32_t n_keys, int32_t *split_len) {
    int64_t ns = (int64_t)n_keys * pl->slots / (pl->total_keys * pl->n_kv);
    int64_t cap = n_keys / DEC_MIN_SPLIT;
    if (ns > cap) ns = cap;
    if (ns < 1) ns = 1;
    int64_t len = (n_keys + ns - 1) / ns;
    len = (len + KDEC_TILE - 1) / KDEC_TILE * KDEC_TILE;
    *split_len = (int32_t)len;
    return (int32_t)((n_keys + len - 1) / len);
}

/* Counts chunks, blocks and partial records under pl->slots; with the tables given, also
 * fills them (chunks, blocks, the list of split chunks). */
static void plan_walk(struct dec_plan *pl, const struct attn_meta *m, struct kdec_chunk *ch,
                      struct kdec_block *bl, int32_t *split_list) {
    pl->n_chunks = pl->n_split_chunks = pl->n_blocks = 0;
    pl->records = 0;
    for (int32_t s = 0; s < m->n_seqs; s++) {
        if (!eligible(pl, m, s)) continue;
        int32_t n_vec = seq_rows(m, s) * pl->group;
        for (int32_t v0 = 0; v0 < n_vec; v0 += pl->qv) {
            int32_t n_qv = n_vec - v0 < pl->qv ? n_vec - v0 : pl->qv, len = 0;
            int32_t n_keys = chunk_keys(pl, m, s, v0, n_qv);
            int32_t ns = chunk_splits(pl, n_keys, &len);
            if (ch) {
                ch[pl->n_chunks] = (struct kdec_chunk){.seq = s,
                                                       .row0 = m->query_start[s],
                                                       .qv0 = v0,
                                                       .n_qv = n_qv,
                                                       .pos0 = m->n_computed[s],
                                                       .n_keys = n_keys,
                                                       .n_splits = ns,
                                                       .split_len = len,
                                                       .part = ns > 1 ? (int32_t)pl->records : -1};
                for (int32_t i = 0; i < ns; i++)
                    for (int32_t h = 0; h < pl->n_kv; h++)
                        bl[pl->n_blocks + (int64_t)i * pl->n_kv + h] =
                            (struct kdec_block){pl->n_chunks, i, h, 0};
                if (ns > 1) split_list[pl->n_split_chunks] = pl->n_chunks;
            }
            pl->n_chunks++;
            pl->n_blocks += (int64_t)ns * pl->n_kv;
            if (ns > 1) {
                pl->n_split_chunks++;
                pl->records += (int64_t)pl->n_kv * n_qv * ns;
            }
        }
    }
}

/* Chunk width and total keys (one kv head) of the eligible sequences; 0 when there are none. */
static int64_t plan_sizes(struct dec_plan *pl, const struct attn_meta *m) {
    int32_t most = 0;
    pl->total_keys = 0;
    for (int32_t s = 0; s < m->n_seqs; s++) {
        if (!eligible(pl, m, s)) continue;
        int32_t n_vec = seq_rows(m, s) * pl->group;
        if (n_vec > most) most = n_vec;
    }
    /* whole rows per chunk where a row's group fits (7 of 8 at GQA 7), so decode rows of a call
     * that also holds a prefill tail still run without padded query vectors */
    int32_t width = pl->group <= KDEC_MAX_QV ? KDEC_MAX_QV / pl->group * pl->group : KDEC_MAX_QV;
    pl->qv = most < width ? most : width;
    if (most == 0) return 0;
    for (int32_t s = 0; s < m->n_seqs; s++) {
        if (!eligible(pl, m, s)) continue;
        int32_t n_vec = seq_rows(m, s) * pl->group;
        for (int32_t v0 = 0; v0 < n_vec; v0 += pl->qv) {
            int32_t n_qv = n_vec - v0 < pl->qv ? n_vec - v0 : pl->qv;
            pl->total_keys += chunk_keys(pl, m, s, v0, n_qv);
        }
    }
    return pl->total_keys;
}

/* Halves the slots until the split chunks' partial records fit the partial buffer. */
static void plan_fit(struct dec_plan *pl, const struct be_cuda *c, const struct attn_meta *m) {
    size_t per = (size_t)(pl->hd + 2) * sizeof(float);
    for (;;) {
        plan_walk(pl, m, NULL, NULL, NULL);
        if (pl->records == 0 || (size_t)pl->records <= c->partial_bytes / per) return;
        pl->slots /= 2;
    }
}

static bool dec_dtype_ok(enum be_dtype dt) {
    return dt == BE_F32 || dt == BE_BF16;
}

/* 16-byte K loads (8-byte V loads at head_dim 128) need the row starts 16-byte aligned. */
static bool cache_aligned(const struct tensor *t) {
    struct kmat k = cu_kmat(t);
    return ((uintptr_t)k.p & 15u) == 0 && k.stride % 8 == 0;
}

bool cu_attn_dec_applies(const struct be_cuda *c, const struct tensor *o, const struct tensor *q,
                         const struct tensor *k_cache, const struct attn_meta *m) {
    (void)c;
    return k_cache->dtype == BE_BF16 && (m->head_dim == 64 || m->head_dim == 128) &&
           dec_dtype_ok(q->dtype) && dec_dtype_ok(o->dtype) && m->block_size >= 1 &&
           cache_aligned(k_cache);
}

/* Fills the metadata piece (chunks, blocks, split list, block tables) and the kernel
 * parameters' pointers into its device copy. */
static int send_plan(struct be_cuda *c, struct dec_plan *pl, const struct attn_meta *m,
                     struct kdec_params *p, struct err *e) {
    size_t ch_bytes = (size_t)pl->n_chunks * sizeof(struct kdec_chunk);
    size_t bl_bytes = ((size_t)pl->n_blocks * sizeof(struct kdec_block) + 15) & ~(size_t)15;
    size_t sl_bytes = ((size_t)pl->n_split_chunks * sizeof(int32_t) + 15) & ~(size_t)15;
    size_t bt_bytes = (size_t)m->n_seqs * (size_t)m->max_blocks_per_seq * sizeof(int32_t);
    size_t total = ch_bytes + bl_bytes + sl_bytes + bt_bytes;
    void *h = NULL, *d = NULL;
    int rc = cu_meta_reserve(c, total, &h, &d, e);
    if (rc != 0) return rc;
    char *hc = h, *dc = d;
    plan_walk(pl, m, (struct kdec_chunk *)hc, (struct kdec_block *)(hc + ch_bytes),
              (int32_t *)(hc + ch_bytes + bl_bytes));
    memcpy(hc + ch_bytes + bl_bytes + sl_bytes, m->block_tables, bt_bytes);
    rc = cu_meta_send(c, h, d, total, e);
    if (rc != 0) return rc;
    p->chunks = (const struct kdec_chunk *)dc;
    p->blocks = (const struct kdec_block *)(dc + ch_bytes);
    p->split_chunks = (const int32_t *)(dc + ch_bytes + bl_bytes);
    p->block_tables = (const int32_t *)(dc + ch_bytes + bl_bytes + sl_bytes);
    return 0;
}

int cu_attn_dec(struct be_cuda *c, struct tensor *o, const struct tensor *q,
                const struct tensor *k_cache, const struct tensor *v_cache,
                const struct attn_meta *m, int32_t min_rows, int32_t max_rows, struct err *e) {
    int32_t hd = m->head_dim;
    struct dec_plan pl = {.hd = hd, .min_rows = min_rows, .max_rows = max_rows};
    pl.n_kv = (int32_t)(be_tensor_cols(k_cache) / hd);
    pl.group = (int32_t)(be_tensor_cols(q) / hd) / pl.n_kv;
    if (!cu_attn_dec_applies(c, o, q, k_cache, m) || !cache_aligned(v_cache) ||
        v_cache->dtype != BE_BF16)
        return err_set(e, VELA_EUNSUP,
                       "attention: decode path does not apply (dtypes %s/%s, "
                       "head_dim %d, cache alignment)",
                       be_dtype_name(q->dtype), be_dtype_name(k_cache->dtype), (int)hd);
    if (plan_sizes(&pl, m) == 0) return 0; /* no sequence in [min_rows, max_rows] */
    int occ = 1;
    CU_TRY(kl_attn_dec_occupancy(hd, pl.qv, &occ), e);
    pl.slots = (int64_t)c->n_sms * occ * DEC_WAVES;
    plan_fit(&pl, c, m);
    if (pl.n_blocks > INT32_MAX)
        return err_set(e, VELA_EUNSUP, "attention: %lld decode blocks", (long long)pl.n_blocks);
    struct kmat kc = cu_kmat(k_cache), vc = cu_kmat(v_cache);
    struct kdec_params p = {.q = cu_kmat(q),
                            .o = cu_kmat(o),
                            .k = kc.p,
                            .v = vc.p,
                            .k_stride = kc.stride,
                            .v_stride = vc.stride,
                            .max_blocks = m->max_blocks_per_seq,
                            .block_size = m->block_size,
                            .head_dim = hd,
                            .group = pl.group,
                            .n_kv = pl.n_kv,
                            .qv = pl.qv,
                            .scale_log2 = m->scale * DEC_LOG2E,
                            .part_acc = c->partial,
                            .part_ml = c->partial + (size_t)pl.records * (size_t)hd};
    int rc = send_plan(c, &pl, m, &p, e);
    if (rc != 0) return rc;
    p.n_blocks = (int32_t)pl.n_blocks;
    p.n_split_chunks = pl.n_split_chunks;
    CU_TRY(kl_attn_dec(c->stream, &p), e);
    return 0;
}
