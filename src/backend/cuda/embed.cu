/* embed: row-movement kernels of the CUDA backend: the token embedding gather, the ViT's
 * window row gather and kv_store into the paged cache. Grid-stride loops over rows x cols;
 * row indices come from device arrays the host side has already checked (ids in the table,
 * rows inside x, slots inside the cache), so no kernel reads or writes out of bounds.
 * Matches backend/cpu/embed.c, gelu.c (gather) and kv_cache.c: copies, with F32 <-> BF16
 * conversion rounded to nearest even where the dtypes differ.
 * Invariant: each output element is written by one thread, once. Owner thread of the
 * stream. */
#include "backend/cuda/kern_common.cuh"

#define MOVE_THREADS 256

static __global__ void gather_kernel(struct kmat y, struct kmat x, const int32_t *rows, int64_t n,
                                     int64_t cols) {
    int64_t total = n * cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i % cols;
        int64_t src = rows[r];
        if (x.dt == y.dt && x.dt == BE_BF16)
            ((uint16_t *)y.p)[r * y.stride + c] = ((const uint16_t *)x.p)[src * x.stride + c];
        else
            k_st(y, r, c, k_ld(x, src, c));
    }
}

static __global__ void scatter_kernel(struct kmat cache, struct kmat src, const int32_t *slots,
                                      int64_t n, int64_t cols) {
    int64_t total = n * cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i % cols;
        int64_t dst = slots[r];
        if (cache.dt == src.dt && src.dt == BE_BF16)
            ((uint16_t *)cache.p)[dst * cache.stride + c] =
                ((const uint16_t *)src.p)[r * src.stride + c];
        else
            k_st(cache, dst, c, k_ld(src, r, c));
    }
}

extern "C" cudaError_t kl_embed(cudaStream_t s, struct kmat y, struct kmat table,
                                const int32_t *ids, int64_t n, int64_t cols) {
    gather_kernel<<<k_blocks(n * cols, MOVE_THREADS), MOVE_THREADS, 0, s>>>(y, table, ids, n, cols);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_gather_rows(cudaStream_t s, struct kmat y, struct kmat x,
                                      const int32_t *rows, int64_t n, int64_t cols) {
    gather_kernel<<<k_blocks(n * cols, MOVE_THREADS), MOVE_THREADS, 0, s>>>(y, x, rows, n, cols);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_kv_store(cudaStream_t s, struct kmat cache, struct kmat src,
                                   const int32_t *slots, int64_t n, int64_t cols) {
    scatter_kernel<<<k_blocks(n * cols, MOVE_THREADS), MOVE_THREADS, 0, s>>>(cache, src, slots, n,
                                                                             cols);
    return cudaGetLastError();
}
