/* kernels_dec: plain-C launchers of attention_dec.cu, the memory-bound flash-decoding kernel
 * for sequences with few new rows (decode tokens, short tails of chunked prefills) over the
 * paged BF16 KV cache. The host side (cuda_attn_dec.c) cuts each sequence's query vectors
 * (new row x query head of one kv head's group) into chunks of at most KDEC_MAX_QV, each
 * chunk's key range into splits, and ships both tables through the metadata ring.
 * Pointers are device addresses. Threads: the owner thread of the backend's stream. */
#ifndef VELA_BACKEND_CUDA_KERNELS_DEC_H
#define VELA_BACKEND_CUDA_KERNELS_DEC_H

#include "backend/cuda/kernels.h"

#include <cuda_runtime.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KDEC_MAX_QV  8  /* query vectors per block: registers per thread grow with it */
#define KDEC_WARPS   4  /* warps per block, each on its own 16-key tiles */
#define KDEC_TILE    16 /* keys per warp tile: one lane pair per key */
#define KDEC_THREADS (KDEC_WARPS * 32)

/* A chunk: query vectors qv0 .. qv0 + n_qv - 1 of one sequence and kv head, where query
 * vector v is new row v / group of the sequence and query head kvh * group + v % group. */
struct kdec_chunk {
    int32_t seq;       /* block-table row */
    int32_t row0;      /* the sequence's first new row in q and o */
    int32_t qv0, n_qv; /* 1 <= n_qv <= the launch's qv */
    int32_t pos0;      /* position of new row 0 (n_computed): row r sees keys 0 .. pos0 + r */
    int32_t n_keys;    /* keys the chunk's last row sees */
    int32_t n_splits;  /* key splits; each covers split_len keys (the last one fewer) */
    int32_t split_len; /* multiple of KDEC_TILE */
    int32_t part;      /* n_splits > 1: first partial record of kv head 0, else -1 */
    int32_t pad_[3];
};

/* A thread block of the main kernel: one split of one chunk for one kv head. The table lists
 * the kv heads of a split next to each other, so they read neighbouring bytes of the same
 * cache rows at about the same time. */
struct kdec_block {
    int32_t chunk, split, kvh, pad_;
};

struct kdec_params {
    struct kmat q, o;               /* F32 or BF16, any row stride */
    const uint16_t *k, *v;          /* BF16 caches: row 0, column 0 */
    int64_t k_stride, v_stride;     /* elements between cache rows */
    const int32_t *block_tables;    /* (n_seqs, max_blocks) */
    int32_t max_blocks, block_size; /* key j: row block_tables[j / bs] * bs + j % bs */
    int32_t head_dim, group, n_kv;  /* head_dim 64 or 128; q heads = n_kv * group */
    int32_t qv;                     /* query vectors per block, 1 .. KDEC_MAX_QV */
    float scale_log2;               /* softmax scale * log2(e): scores in base 2 */
    const struct kdec_chunk *chunks;
    const struct kdec_block *blocks; /* n_blocks entries (kv heads included) */
    int32_t n_blocks;
    const int32_t *split_chunks; /* chunks with n_splits > 1, n_split_chunks of them */
    int32_t n_split_chunks;
    float *part_acc; /* (records, head_dim): unnormalized accumulators of the splits */
    float *part_ml;  /* (records, 2): running max (base 2) and sum of each */
};

/* Dynamic shared memory of one main-kernel block (bytes). */
size_t kl_attn_dec_smem(int32_t head_dim, int32_t qv);
/* Blocks of the main kernel one SM holds at once (>= 1), for the split plan. */
cudaError_t kl_attn_dec_occupancy(int32_t head_dim, int32_t qv, int *blocks_per_sm);
/* Queues the main kernel (n_blocks blocks) and, when some chunk is split, the combine kernel
 * (n_split_chunks x n_kv x qv blocks of head_dim threads). cudaErrorInvalidValue for an empty grid
 * or an unsupported head_dim / qv. */
cudaError_t kl_attn_dec(cudaStream_t s, const struct kdec_params *p);

#ifdef __cplusplus
}
#endif

#endif
