/* lm: the Qwen2 decoder forward (Qwen2.5-VL, Qwen2-VL and Qwen2 language models) on the
 * backend op table: embedding, per layer RMSNorm -> q/k/v (with biases) -> M-RoPE -> paged
 * KV store -> causal GQA attention -> o_proj -> residual -> RMSNorm -> SwiGLU MLP ->
 * residual, then the final RMSNorm and the (tied or untied) lm_head (spec §5.1).
 *
 * One lm_forward runs a flattened batch (model/batch.h) of several sequences, each a prefill
 * chunk or a decode token, and returns logits only for the rows asked for (or for all rows).
 * Memory: weights are used in place (borrowed from struct weights: mmapped BF16); the KV
 * cache (n_blocks x block_size slots per layer, K and V, F32 or BF16) and one scratch area
 * for max_tokens rows of activations are allocated through the backend at lm_new. A forward
 * allocates nothing.
 *
 * Precision: the residual stream and all activations are F32; weights BF16. With a CPU
 * backend on the portable/avx2 path and an F32 cache this is an FP32 forward (the reference
 * test); the avx512 path rounds matmul inputs to BF16 and a BF16 cache rounds K/V, as the
 * BF16 reference does.
 *
 * Threads: the backend's owner thread (the engine thread). */
#ifndef VELA_MODEL_LM_H
#define VELA_MODEL_LM_H

#include "backend/backend.h"
#include "model/batch.h"
#include "model/config.h"
#include "util/err.h"
#include "util/file.h"

#include <stdbool.h>
#include <stdint.h>

struct weights;
struct st_model;

struct lm_options {
    int32_t max_tokens;     /* rows per forward (max_num_batched_tokens), >= 1 */
    int32_t max_seqs;       /* sequences per forward, >= 1 */
    int32_t n_blocks;       /* KV cache blocks (shared by all sequences), >= 1 */
    int32_t block_size;     /* tokens per block; 0 = 16 */
    enum be_dtype kv_dtype; /* BE_BF16 (serving) or BE_F32 (FP32 reference) */
    int32_t logit_rows;     /* rows per lm_head call; 0 = max_seqs (all_logits runs in chunks) */
    /* q/k/v and gate/up weights stacked into one GEMM each (copied at lm_new): 0 = on device
     * backends (which copy the weights anyway), 1 = always (tests), -1 = never */
    int32_t stack_weights;
};

struct lm;

/* Builds the forward for config c over weights w (both borrowed: they must outlive the
 * result; w must hold converted data, not WEIGHTS_CHECK_ONLY) on backend b (borrowed).
 * *out is freed with lm_free. */
int lm_new(struct lm **out, struct be *b, const struct model_config *c, const struct weights *w,
           const struct lm_options *o, struct err *e);
void lm_free(struct lm *m); /* accepts NULL */

/* Runs batch and writes logits (F32, row-major, vocab_size columns) to the caller's array:
 * batch->n_logits rows, or batch->n_tokens rows with all_logits. Bad batches (sizes, ids
 * outside the vocabulary, slots or blocks outside the cache) fail with VELA_EINVAL or
 * VELA_ELIMIT before the cache is touched. */
int lm_forward(struct lm *m, const struct lm_batch *batch, float *logits, struct err *e);

/* Runs batch and samples its logits rows on the backend (be_sample: greedy or a Gumbel-max
 * draw per row, rows[i] for logits row i), so only the ids come back: ids[i] for i <
 * batch->n_logits. The logits never leave the device; every other sampling parameter (top-k,
 * top-p, penalties, logprobs) needs lm_forward and engine/sampler.c. VELA_EINVAL for
 * all_logits or more rows than logit_rows; VELA_EUNSUP where the backend has no be_sample. */
int lm_forward_sample(struct lm *m, const struct lm_batch *batch, const struct be_sample_row *rows,
                      int32_t *ids, struct err *e);
/* Whether m's backend has be_sample (lm_forward_sample can run); with device_only, only when
 * that backend is a device, where keeping the logits there saves their copy. */
bool lm_can_sample(const struct lm *m, bool device_only);

int32_t lm_vocab(const struct lm *m);
int32_t lm_block_size(const struct lm *m);
int32_t lm_n_blocks(const struct lm *m);
const struct lm_options *lm_opts(const struct lm *m);

/* Optional per-op timing of lm_forward (benchmarks): each op's wall time is added to its
 * kind. On the CPU ops are synchronous, so the split is exact; on a device each op is
 * followed by a be_sync while timing, which adds the sync's latency to every op. */
enum lm_op {
    LM_OP_EMBED = 0,
    LM_OP_NORM, /* the first layer's input RMSNorm and the final one */
    LM_OP_QKV,  /* q, k, v projections (with biases) */
    LM_OP_ROPE,
    LM_OP_KV_STORE,
    LM_OP_ATTN,
    LM_OP_O_PROJ,
    LM_OP_ADD,      /* the last layer's residual add */
    LM_OP_ADD_NORM, /* the other residual adds with the RMSNorm after each (be_add_rms_norm) */
    LM_OP_GATE_UP,  /* gate and up projections */
    LM_OP_SILU,
    LM_OP_DOWN,
    LM_OP_LM_HEAD, /* lm_head matmul and the logits copy */
    LM_N_OPS
};
struct lm_profile {
    double seconds[LM_N_OPS];
    int64_t calls[LM_N_OPS];
};
/* Starts (p borrowed, accumulated into, never reset here) or stops (NULL) timing. */
void lm_set_profile(struct lm *m, struct lm_profile *p);
const char *lm_op_name(enum lm_op op);

/* A model folder opened for the language model: config.json, generation_config.json, the
 * checkpoint (mapped, or read into memory with lm_files_open_mode's FILE_MAP_READ) and its
 * checked weight table. Close with lm_files_close (safe on a zeroed or half-opened one). */
struct lm_files {
    struct model_config cfg;
    struct gen_config gen;
    struct st_model *st; /* owned */
    struct weights *w;   /* owned */
};
int lm_files_open(struct lm_files *f, const char *dir, struct err *e); /* FILE_MAP_MMAP */
int lm_files_open_mode(struct lm_files *f, const char *dir, enum file_map_mode mode, struct err *e);
/* `--load-format dummy`: DIR's config files, and generated weights of the config's shapes
 * instead of a checkpoint (weights_dummy, language model only; st stays NULL). */
int lm_files_open_dummy(struct lm_files *f, const char *dir, uint64_t seed, int32_t n_threads,
                        struct err *e);
void lm_files_close(struct lm_files *f);

#endif
