/* kv_plan: how many KV-cache blocks a memory budget buys, decided once at start-up (vLLM's
 * determine_available_memory + get_kv_cache_config, in one pure function).
 *
 * Budget, in order of precedence:
 *   1. kv_cache_bytes > 0: exactly that many bytes of K and V (vLLM's --kv-cache-memory);
 *   2. else mem_fraction x total_bytes - weights_bytes - scratch_bytes, where total_bytes is
 *      the device's memory (--gpu-memory-utilization on a GPU) or, on the CPU, the available
 *      RAM from /proc/meminfo (kv_mem_available), weights count only where they are copied
 *      (a mmapped checkpoint on the CPU still occupies page cache, so it is counted too).
 * The result is also capped at VELA_KV_MAX_BLOCKS and must hold at least one request of
 * max_model_len tokens, as vLLM refuses to start otherwise.
 *
 * Pure functions except kv_mem_available (reads /proc). Any thread. */
#ifndef VELA_ENGINE_KV_PLAN_H
#define VELA_ENGINE_KV_PLAN_H

#include "util/err.h"

#include <stddef.h>
#include <stdint.h>

struct model_config;

struct kv_plan_in {
    const struct model_config *cfg; /* borrowed for the call */
    int32_t block_size;             /* tokens per block */
    size_t kv_dtype_bytes;          /* 2 (BF16) or 4 (F32) */
    int32_t max_model_len;          /* tokens per request at most */
    int32_t max_num_batched_tokens; /* scratch rows of one forward */
    int32_t max_num_seqs;           /* logits rows of one forward */
    size_t kv_cache_bytes;          /* explicit budget; 0 = from mem_fraction */
    double mem_fraction;            /* of total_bytes, in (0, 1] */
    size_t total_bytes;             /* device memory, or available RAM on the CPU */
    size_t weights_bytes;           /* resident weights */
};

struct kv_plan {
    int32_t n_blocks;
    size_t block_bytes;     /* K + V of one block over all layers */
    size_t kv_bytes;        /* n_blocks * block_bytes */
    size_t scratch_bytes;   /* activations of the largest forward (estimate of lm's carve) */
    int64_t n_tokens;       /* n_blocks * block_size: the "KV cache size: N tokens" line */
    double max_concurrency; /* requests of max_model_len tokens held at once */
};

/* Bytes of K and V for one block of block_size tokens over all layers. */
size_t kv_block_bytes(const struct model_config *c, int32_t block_size, size_t kv_dtype_bytes);
/* Bytes of the language model's activation scratch for max_tokens rows and logit_rows rows of
 * logits (mirrors the tensors lm_new carves). */
size_t kv_scratch_bytes(const struct model_config *c, int32_t max_tokens, int32_t logit_rows);

/* Plans the cache. VELA_EINVAL on bad inputs; VELA_ELIMIT when the budget cannot hold one
 * request of max_model_len tokens (the message names the budget and what is needed, and
 * suggests --max-model-len or a larger budget). */
int kv_plan_compute(const struct kv_plan_in *in, struct kv_plan *out, struct err *e);

/* MemAvailable from /proc/meminfo, in bytes. VELA_EIO / VELA_EFORMAT where it cannot be read. */
int kv_mem_available(size_t *bytes, struct err *e);

/* Writes the start-up lines (as vLLM logs them) into buf:
 *   "KV cache: N blocks of B tokens (X MiB), N tokens\n"
 *   "Maximum concurrency for L tokens per request: C.CCx\n" */
void kv_plan_describe(const struct kv_plan *p, int32_t block_size, int32_t max_model_len, char *buf,
                      size_t cap);

#endif
