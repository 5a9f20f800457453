/* batch: the lm_batch builder. Arrays are allocated once by lmb_init; lmb_add only copies.
 * Invariants after every successful lmb_add:
 *   1. b.query_start[b.n_seqs] == b.n_tokens and the sequences' rows are back to back;
 *   2. positions are three rows of exactly b.n_tokens entries (stride n_tokens, the layout
 *      lm_batch promises): each lmb_add moves rows 1 and 2 to the new stride, O(n_tokens),
 *      cheap beside a forward pass;
 *   3. block table entries past a sequence's n_table are -1;
 *   4. the pointers in b stay valid until lmb_deinit.
 * One owner thread. */
#include "model/batch.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int lmb_init(struct lm_batch_buf *bb, int32_t max_tokens, int32_t max_seqs,
             int32_t max_blocks_per_seq, int32_t block_size, struct err *e) {
    struct lm_batch_buf z = {0};
    if (max_tokens < 1 || max_seqs < 1 || max_blocks_per_seq < 1 || block_size < 1)
        return err_set(e, VELA_EINVAL, "batch: sizes %d tokens, %d seqs, %d blocks, block %d",
                       (int)max_tokens, (int)max_seqs, (int)max_blocks_per_seq, (int)block_size);
    z.max_tokens = max_tokens, z.max_seqs = max_seqs;
    z.max_blocks_per_seq = max_blocks_per_seq, z.block_size = block_size;
    size_t nt = (size_t)max_tokens, ns = (size_t)max_seqs;
    z.ids = malloc(nt * 4);
    z.pos = malloc(3 * nt * 4);
    z.slots = malloc(nt * 4);
    z.qs = malloc((ns + 1) * 4);
    z.ncomp = malloc(ns * 4);
    z.bt = malloc(ns * (size_t)max_blocks_per_seq * 4);
    z.rows = malloc(ns * 4);
    if (!z.ids || !z.pos || !z.slots || !z.qs || !z.ncomp || !z.bt || !z.rows) {
        lmb_deinit(&z);
        return err_set(e, VELA_ENOMEM, "batch: out of memory");
    }
    *bb = z;
    lmb_reset(bb);
    return 0;
}

void lmb_deinit(struct lm_batch_buf *bb) {
    if (!bb) return;
    free(bb->ids), free(bb->pos), free(bb->slots), free(bb->qs), free(bb->ncomp), free(bb->bt);
    free(bb->rows);
    memset(bb, 0, sizeof *bb);
}

void lmb_reset(struct lm_batch_buf *bb) {
    bb->b = (struct lm_batch){.token_ids = bb->ids,
                              .positions = bb->pos,
                              .slot_mapping = bb->slots,
                              .query_start = bb->qs,
                              .n_computed = bb->ncomp,
                              .block_tables = bb->bt,
                              .max_blocks_per_seq = bb->max_blocks_per_seq,
                              .logit_rows = bb->rows};
    bb->qs[0] = 0;
}

int lmb_add(struct lm_batch_buf *bb, const int32_t *ids, int32_t n, int32_t n_computed,
            const int32_t *pos3, int64_t pos_stride, int32_t delta, const int32_t *block_table,
            int32_t n_table, bool sample, struct err *e) {
    struct lm_batch *b = &bb->b;
    if (n < 1 || n_computed < 0 || n_table < 0 || n_table > bb->max_blocks_per_seq)
        return err_set(e, VELA_EINVAL, "batch: %d new tokens after %d, %d blocks (max %d)", (int)n,
                       (int)n_computed, (int)n_table, (int)bb->max_blocks_per_seq);
    if (b->n_seqs >= bb->max_seqs || n > bb->max_tokens - b->n_tokens)
        return err_set(e, VELA_ELIMIT, "batch: full (%d of %d tokens, %d of %d sequences)",
                       (int)b->n_tokens, (int)bb->max_tokens, (int)b->n_seqs, (int)bb->max_seqs);
    if ((int64_t)n_computed + n > (int64_t)n_table * bb->block_size)
        return err_set(e, VELA_EINVAL, "batch: %" PRId64 " tokens need more than %d blocks",
                       (int64_t)n_computed + n, (int)n_table);
    int32_t t0 = b->n_tokens, nt = t0 + n, s = b->n_seqs;
    /* grow the position rows from stride t0 to stride nt: move rows 2 and 1 back first */
    int32_t *p = bb->pos;
    for (int r = 2; r >= 1; r--) memmove(p + (size_t)r * nt, p + (size_t)r * t0, (size_t)t0 * 4);
    for (int32_t i = 0; i < n; i++) {
        int32_t q = n_computed + i;
        bb->ids[t0 + i] = ids[i];
        bb->slots[t0 + i] = block_table[q / bb->block_size] * bb->block_size + q % bb->block_size;
        for (int r = 0; r < 3; r++)
            p[(size_t)r * nt + t0 + i] = pos3 ? pos3[r * pos_stride + i] : q + delta;
    }
    bb->ncomp[s] = n_computed;
    memcpy(bb->bt + (size_t)s * bb->max_blocks_per_seq, block_table, (size_t)n_table * 4);
    for (int32_t j = n_table; j < bb->max_blocks_per_seq; j++)
        bb->bt[(size_t)s * bb->max_blocks_per_seq + j] = -1;
    if (sample) bb->rows[b->n_logits++] = nt - 1;
    b->n_tokens = nt;
    b->n_seqs = s + 1;
    bb->qs[s + 1] = nt;
    return 0;
}
