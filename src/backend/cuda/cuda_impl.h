/* cuda_impl: the CUDA backend's private state and the helpers its host-side files share
 * (backend_cuda.c, cuda_matmul.c, cuda_ops.c, cuda_attn.c): the error macros every CUDA and
 * cuBLASLt call goes through, and the metadata ring that carries per-op host arrays (block
 * tables, positions, row lists) to the device without allocating.
 *
 * Metadata ring: a pinned host buffer and a device buffer of the same size, carved in order.
 * An op reserves one contiguous piece (cu_meta_reserve), fills its host side and sends it with
 * one asynchronous copy (cu_meta_send); the kernels that read it are queued after the copy on
 * the same stream. When the ring is full the stream is synchronized and carving restarts at
 * 0, so no piece is overwritten while a copy or kernel may still use it; a request larger
 * than the ring regrows it (after a sync), the only allocation an op can make.
 * Owner thread of the backend only. */
#ifndef VELA_BACKEND_CUDA_CUDA_IMPL_H
#define VELA_BACKEND_CUDA_CUDA_IMPL_H

#include "backend/backend_impl.h"
#include "backend/cuda/kernels.h"

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <stdbool.h>
#include <stdint.h>

/* cuBLASLt's heuristic answer for one GEMM shape (cuda_matmul.c): asked once per shape, since
 * asking costs tens of microseconds of host time per call, more than a decode GEMM runs. */
#define CU_ALGO_SLOTS 1024
struct cu_algo {
    uint64_t key[4]; /* shape, strides, dtypes, alignments; all zero: empty slot */
    bool none;       /* the heuristic offered nothing: take the fallback */
    cublasLtMatmulAlgo_t algo;
};

struct be_cuda {
    struct be base; /* first: a struct be * points here */
    int device;
    int n_sms;
    size_t max_smem;     /* opt-in dynamic shared memory per block */
    cudaStream_t stream; /* owned: every op and copy runs here */
    cublasLtHandle_t lt; /* owned */
    void *workspace;     /* owned: cuBLASLt workspace, workspace_bytes */
    size_t workspace_bytes;
    uint16_t *scratch; /* owned: BF16 staging of F32 GEMM inputs, scratch_bytes */
    size_t scratch_bytes;
    float *partial; /* owned: split-key attention partials, partial_bytes */
    size_t partial_bytes;
    unsigned char *meta_host; /* owned, pinned: metadata ring (host side) */
    unsigned char *meta_dev;  /* owned: metadata ring (device side) */
    size_t meta_bytes, meta_used;
    int32_t *rd_host;  /* owned, pinned: CU_RD_IDS ids read back for checks */
    bool attn_general; /* VELA_CUDA_ATTN=general: no attention fast paths (A/B runs) */
    struct cu_algo algos[CU_ALGO_SLOTS]; /* open addressing by cu_algo.key; never evicted */
    int32_t n_algos;
};

#define CU_RD_IDS 16384 /* ids per read-back chunk (64 KiB pinned) */

/* A failed CUDA runtime call: VELA_ENOMEM for allocation failures, else VELA_EDEVICE, with
 * file, line, the call and CUDA's message. */
int cu_fail(struct err *e, cudaError_t rc, const char *file, int line, const char *call);
int lt_fail(struct err *e, cublasStatus_t st, const char *file, int line, const char *call);

#define CU_TRY(call, e)                                                                            \
    do {                                                                                           \
        cudaError_t cu_rc_ = (call);                                                               \
        if (cu_rc_ != cudaSuccess) return cu_fail((e), cu_rc_, __FILE__, __LINE__, #call);         \
    } while (0)

#define LT_TRY(call, e)                                                                            \
    do {                                                                                           \
        cublasStatus_t lt_st_ = (call);                                                            \
        if (lt_st_ != CUBLAS_STATUS_SUCCESS)                                                       \
            return lt_fail((e), lt_st_, __FILE__, __LINE__, #call);                                \
    } while (0)

/* Makes the backend's device current for this thread (ops of several GPUs on one thread). */
int cu_enter(struct be_cuda *c, struct err *e);

/* A device view of t (row 0 address, stride, dtype) for the kernels. */
struct kmat cu_kmat(const struct tensor *t);

/* Reserves n_bytes (rounded up to 256) of the metadata ring: *host to fill, *dev where the
 * kernels will find it after cu_meta_send. May synchronize the stream (ring wrap). */
int cu_meta_reserve(struct be_cuda *c, size_t n_bytes, void **host, void **dev, struct err *e);
int cu_meta_send(struct be_cuda *c, const void *host, void *dev, size_t n_bytes, struct err *e);
/* Copies n host bytes to the device through the ring: reserve + memcpy + send. */
int cu_meta_put(struct be_cuda *c, const void *src, size_t n_bytes, void **dev, struct err *e);

/* Op entries (validated by backend.c, attn.c and vit_ops.c before they get here). */
int cu_matmul(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *w,
              const struct tensor *bias, struct err *e);
int cu_rms_norm(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *gain,
                float eps, struct err *e);
int cu_add(struct be *b, struct tensor *y, const struct tensor *a, const struct tensor *c,
           struct err *e);
int cu_add_rms_norm(struct be *b, struct tensor *h, struct tensor *y, const struct tensor *x,
                    const struct tensor *gain, float eps, struct err *e);
int cu_silu_mul(struct be *b, struct tensor *y, const struct tensor *gate, const struct tensor *up,
                struct err *e);
int cu_embed(struct be *b, struct tensor *y, const struct tensor *table, const struct tensor *ids,
             struct err *e);
int cu_rope(struct be *b, struct tensor *q, struct tensor *k, const struct rope_args *a,
            struct err *e);
int cu_kv_store(struct be *b, struct tensor *k_cache, struct tensor *v_cache,
                const struct tensor *k, const struct tensor *v, const struct attn_meta *m,
                struct err *e);
int cu_attention(struct be *b, struct tensor *o, const struct tensor *q,
                 const struct tensor *k_cache, const struct tensor *v_cache,
                 const struct attn_meta *m, struct err *e);
int cu_rope2d(struct be *b, struct tensor *q, struct tensor *k, const struct rope2d_args *a,
              struct err *e);
int cu_attention_varlen(struct be *b, struct tensor *o, const struct tensor *q,
                        const struct tensor *k, const struct tensor *v, const struct varlen_meta *m,
                        struct err *e);
int cu_gelu(struct be *b, struct tensor *y, const struct tensor *x, struct err *e);
int cu_layer_norm(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *gain,
                  const struct tensor *bias, float eps, struct err *e);
int cu_quick_gelu(struct be *b, struct tensor *y, const struct tensor *x, struct err *e);
int cu_gather_rows(struct be *b, struct tensor *y, const struct tensor *x, const int32_t *rows,
                   struct err *e);
int cu_sample_greedy(struct be *b, struct tensor *ids, const struct tensor *logits, struct err *e);
int cu_sample(struct be *b, struct tensor *ids, const struct tensor *logits,
              const struct be_sample_row *rows, struct err *e);

/* Attention fast paths, chosen per sequence by cu_attention (cuda_attn.c). Each takes the
 * sequences s of m whose new-row count query_start[s+1] - query_start[s] lies in
 * [min_rows, max_rows] and writes exactly their rows of o; other rows are left alone.
 * *_applies says, before anything is queued, whether the path handles these dtypes and head
 * size at all (if either says no, cu_attention uses its general kernel for the whole call).
 *   tc:  tensor-core (mma) flash attention for prefill chunks (cuda_attn_tc.c, attention_tc.cu)
 *   dec: memory-bound flash-decoding for decode rows (cuda_attn_dec.c, attention_dec.cu) */
bool cu_attn_tc_applies(const struct be_cuda *c, const struct tensor *o, const struct tensor *q,
                        const struct tensor *k_cache, const struct attn_meta *m);
int cu_attn_tc(struct be_cuda *c, struct tensor *o, const struct tensor *q,
               const struct tensor *k_cache, const struct tensor *v_cache,
               const struct attn_meta *m, int32_t min_rows, int32_t max_rows, struct err *e);
bool cu_attn_dec_applies(const struct be_cuda *c, const struct tensor *o, const struct tensor *q,
                         const struct tensor *k_cache, const struct attn_meta *m);
int cu_attn_dec(struct be_cuda *c, struct tensor *o, const struct tensor *q,
                const struct tensor *k_cache, const struct tensor *v_cache,
                const struct attn_meta *m, int32_t min_rows, int32_t max_rows, struct err *e);

#endif
