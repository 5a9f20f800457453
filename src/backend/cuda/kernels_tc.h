/* kernels_tc: the plain-C launcher of the tensor-core prefill attention kernel
 * (attention_tc.cu), planned by cuda_attn_tc.c. Same conventions as kernels.h: the launcher
 * queues on `stream` and returns cudaGetLastError(); pointers are device addresses.
 * Owner thread of the backend that owns the stream. */
#ifndef VELA_BACKEND_CUDA_KERNELS_TC_H
#define VELA_BACKEND_CUDA_KERNELS_TC_H

#include "backend/cuda/kernels.h"

#include <cuda_runtime.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KTC_BLOCK_N 64 /* keys per shared-memory tile */

/* A tile: up to rows_per_tile consecutive new rows of one sequence; row i sits at sequence
 * position pos0 + i and sees keys 0 .. pos0 + i, so the tile needs keys 0 .. pos0+n_rows-1. */
struct ktc_tile {
    int32_t seq;    /* block-table row */
    int32_t row0;   /* first query row (row of q and o) */
    int32_t n_rows; /* 1 .. rows_per_tile */
    int32_t pos0;   /* sequence position of row0 */
};

struct ktc_params {
    struct kmat q, o;             /* F32 or BF16, (n_rows, n_q_heads * head_dim) views */
    struct kmat k, v;             /* BF16 paged caches; p 16-byte aligned, stride % 8 == 0 */
    const struct ktc_tile *tiles; /* n_tiles, heaviest first */
    int32_t n_tiles;
    const int32_t *block_tables; /* (n_seqs, max_blocks) */
    int32_t max_blocks, block_size;
    int32_t bs_shift; /* log2(block_size) when a power of two, else -1 */
    int32_t head_dim; /* 64 or 128 */
    int32_t n_q_heads, group;
    int32_t rows_per_tile; /* 64 (4 warps) or 128 (8 warps) */
    float scale_log2;      /* softmax scale * log2(e), > 0 */
};

/* Dynamic shared memory one block needs (bytes): two stages of a K and a V tile, padded rows
 * (69,632 at head_dim 128; the launcher raises the kernel's limit past the default 48 KiB). */
size_t kl_attn_tc_smem(int32_t head_dim);
/* Queues n_tiles * n_q_heads blocks (n_tiles >= 1). */
cudaError_t kl_attn_tc(cudaStream_t s, const struct ktc_params *p);

#ifdef __cplusplus
}
#endif

#endif
