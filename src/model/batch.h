/* batch: the flattened batch one language-model forward runs, in the shape the engine's
 * runner produces (vLLM's model runner inputs): the new tokens of several sequences back to
 * back, each sequence a prefill chunk or one decode token, with their 3-row M-RoPE positions,
 * KV slots and block tables. Plain data: every array is borrowed by lm_forward for the
 * call only.
 *
 * A small builder (lmb_*) owns arrays sized once for a maximum batch and appends one
 * sequence at a time, computing slot numbers from the block table; the tests and `vela
 * generate` use it, the engine runner fills the same struct from its own persistent arrays.
 * One owner thread per builder. */
#ifndef VELA_MODEL_BATCH_H
#define VELA_MODEL_BATCH_H

#include "util/err.h"

#include <stdbool.h>
#include <stdint.h>

struct lm_batch {
    int32_t n_tokens;
    const int32_t *token_ids;    /* (n_tokens) */
    const int32_t *positions;    /* (3, n_tokens): rows t, h, w */
    const int32_t *slot_mapping; /* (n_tokens): block id * block_size + offset */
    int32_t n_seqs;
    const int32_t *query_start;  /* (n_seqs + 1): rows of each sequence; [0] = 0 */
    const int32_t *n_computed;   /* (n_seqs): tokens already in the KV cache */
    const int32_t *block_tables; /* (n_seqs, max_blocks_per_seq) */
    int32_t max_blocks_per_seq;
    /* Which rows' logits come back, in this order (the sampling rows: usually each
     * sequence's last row, none for a prefill chunk that leaves prompt unprocessed). */
    const int32_t *logit_rows; /* (n_logits) */
    int32_t n_logits;
    bool all_logits; /* every row instead, in order (prompt_logprobs, tests) */
    /* Input embeddings override (image tokens): rows whose mask byte is nonzero take their
     * embedding from embeds instead of the token table. */
    const float *embeds;        /* (n_tokens, hidden) F32, or NULL */
    const uint8_t *embeds_mask; /* (n_tokens), or NULL = every row when embeds is set */
};

/* Builder storage: arrays for up to max_tokens rows and max_seqs sequences. */
struct lm_batch_buf {
    struct lm_batch b; /* points into the arrays below */
    int32_t *ids, *pos, *slots, *qs, *ncomp, *bt, *rows;
    int32_t max_tokens, max_seqs, max_blocks_per_seq, block_size;
};

int lmb_init(struct lm_batch_buf *bb, int32_t max_tokens, int32_t max_seqs,
             int32_t max_blocks_per_seq, int32_t block_size, struct err *e);
void lmb_deinit(struct lm_batch_buf *bb); /* accepts a zeroed or deinitialised one */
void lmb_reset(struct lm_batch_buf *bb);

/* Appends n new tokens of one sequence at positions n_computed .. n_computed + n - 1.
 * pos3: their 3-row positions, row r of token i at pos3[r * pos_stride + i]; NULL means text
 * positions n_computed + i + delta in all rows. block_table: n_table block ids covering at
 * least n_computed + n tokens (copied). sample: the sequence's last new row returns logits.
 * VELA_ELIMIT when the batch is full, VELA_EINVAL on bad counts. */
int lmb_add(struct lm_batch_buf *bb, const int32_t *ids, int32_t n, int32_t n_computed,
            const int32_t *pos3, int64_t pos_stride, int32_t delta, const int32_t *block_table,
            int32_t n_table, bool sample, struct err *e);

#endif
