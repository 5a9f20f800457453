/* kernels: the plain-C launchers of the CUDA kernels (one .cu per op family: act.cu, norm.cu,
 * embed.cu, rope.cu, attention.cu, sample.cu). Each launcher queues its kernel on `stream`
 * and returns cudaGetLastError() (launch-configuration faults); faults inside a kernel
 * surface at the next synchronizing call. Pointers are device addresses unless named host.
 * Arguments are validated by backend.c / attn.c / vit_ops.c before they get here.
 * Threads: the owner thread of the backend that owns the stream. */
#ifndef VELA_BACKEND_CUDA_KERNELS_H
#define VELA_BACKEND_CUDA_KERNELS_H

#include <cuda_runtime.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A strided matrix on the device: row r, column c at p + (r * stride + c) elements. */
struct kmat {
    void *p;
    int64_t stride; /* elements between row starts */
    int32_t dt;     /* enum be_dtype: BE_F32, BE_BF16 or BE_I32 */
};

/* ---- act.cu: elementwise ---- */
/* y = silu(g[:, j]) * u[:, uc0 + j] for j < cols (u may be g itself, with uc0 = cols). */
cudaError_t kl_silu_mul(cudaStream_t s, struct kmat y, struct kmat g, struct kmat u, int64_t uc0,
                        int64_t rows, int64_t cols);
cudaError_t kl_add(cudaStream_t s, struct kmat y, struct kmat a, struct kmat b, int64_t rows,
                   int64_t cols);
cudaError_t kl_gelu(cudaStream_t s, struct kmat y, struct kmat x, int64_t rows, int64_t cols);
cudaError_t kl_quick_gelu(cudaStream_t s, struct kmat y, struct kmat x, int64_t rows, int64_t cols);
/* Packed BF16 copy of an F32 or BF16 matrix: dst[r * cols + c]. */
cudaError_t kl_to_bf16(cudaStream_t s, uint16_t *dst, struct kmat x, int64_t rows, int64_t cols);
/* y[r, c] += bias[c] in FP32, rounded once if y is BF16 (the GEMM fallback without epilogue). */
cudaError_t kl_bias_add(cudaStream_t s, struct kmat y, struct kmat bias, int64_t rows,
                        int64_t cols);

/* ---- norm.cu ---- */
cudaError_t kl_rms_norm(cudaStream_t s, struct kmat y, struct kmat x, struct kmat gain, float eps,
                        int64_t rows, int64_t cols);
/* h += x, then y = rms_norm(h) * gain (y may be x). */
cudaError_t kl_add_rms_norm(cudaStream_t s, struct kmat h, struct kmat y, struct kmat x,
                            struct kmat gain, float eps, int64_t rows, int64_t cols);

/* LayerNorm with gain and bias (the Qwen2-VL vision tower). */
cudaError_t kl_layer_norm(cudaStream_t s, struct kmat y, struct kmat x, struct kmat gain,
                          struct kmat bias, float eps, int64_t rows, int64_t cols);

/* ---- embed.cu: row movement ---- */
/* y[i, :] = table[ids[i], :]; ids already checked to lie in the table. */
cudaError_t kl_embed(cudaStream_t s, struct kmat y, struct kmat table, const int32_t *ids,
                     int64_t n, int64_t cols);
/* y[i, :] = x[rows[i], :], same dtype. */
cudaError_t kl_gather_rows(cudaStream_t s, struct kmat y, struct kmat x, const int32_t *rows,
                           int64_t n, int64_t cols);
/* cache[slot[i], :] = src[i, :] with F32 <-> BF16 conversion. */
cudaError_t kl_kv_store(cudaStream_t s, struct kmat cache, struct kmat src, const int32_t *slots,
                        int64_t n, int64_t cols);

/* ---- rope.cu ---- */
/* M-RoPE in place on t (n rows, n_heads heads of head_dim). pos (3, n); inv_freq (head_dim/2);
 * sec0, sec1: first two section sizes. */
cudaError_t kl_rope(cudaStream_t s, struct kmat t, int64_t n, int64_t n_heads, int32_t head_dim,
                    const int32_t *pos, const float *inv_freq, int32_t sec0, int32_t sec1);
/* Vision 2-D rotary in place on t. pos (2, n); inv_freq (head_dim/4). */
cudaError_t kl_rope2d(cudaStream_t s, struct kmat t, int64_t n, int64_t n_heads, int32_t head_dim,
                      const int32_t *pos, const float *inv_freq);

/* ---- attention.cu ---- */
/* A tile: up to rows_per_tile consecutive query rows of one sequence/segment. */
struct katt_tile {
    int32_t seq;      /* sequence (block table row) or segment index */
    int32_t row0;     /* first query row */
    int32_t n_rows;   /* rows in the tile, >= 1 */
    int32_t pos0;     /* causal: sequence position of row0; keys 0..pos0+i for row i */
    int32_t key_base; /* varlen: first k/v row of the segment */
    int32_t n_keys;   /* keys the tile's last row sees (causal) or the segment length */
};

struct katt_params {
    struct kmat q, k, v, o; /* k, v: caches (paged) or packed rows (varlen) */
    const struct katt_tile *tiles;
    int32_t n_tiles;
    const int32_t *block_tables; /* paged: (n_seqs, max_blocks); NULL for varlen */
    int32_t max_blocks, block_size;
    int32_t head_dim, n_q_heads, group; /* group = q heads per kv head */
    int32_t heads_per_block, n_head_groups, rows_per_tile;
    int32_t causal;
    float scale;
    int32_t n_splits, split_keys; /* keys per split (multiple of 32) when n_splits > 1 */
    float *part_acc;              /* (n_rows, n_q_heads, n_splits, head_dim) when n_splits > 1 */
    float *part_ml;               /* (n_rows, n_q_heads, n_splits, 2): running max, sum */
    int64_t n_rows;               /* query rows in the call */
};

/* Dynamic shared memory one attention block needs (bytes). */
size_t kl_attention_smem(int32_t head_dim, int32_t n_qv);
/* Raises the kernel's dynamic shared-memory limit to max_bytes (once, at backend setup). */
cudaError_t kl_attention_setup(size_t max_bytes);
/* Runs the tiles (and, with splits, the combine pass). */
cudaError_t kl_attention(cudaStream_t s, const struct katt_params *p);

/* ---- sample.cu ---- */
/* ids[r] = the lowest index of the largest value of row r of logits (torch.argmax's tie
 * rule); -1 when every value is -inf or NaN. */
cudaError_t kl_argmax(cudaStream_t s, int32_t *ids, struct kmat logits, int64_t rows, int64_t cols);
/* be_sample's per-row parameters (the layout of struct be_sample_row). */
struct ksample_row {
    float temperature;
    int32_t top_k;
    float top_p;
    float min_p;
    uint64_t key;
};
/* be_sample: ids[r] = argmax over the kept c of (x[r, c] / T + Gumbel(key, c)) (backend.h's
 * filters), or argmax x for T < 1e-5; params: rows entries on the device. */
cudaError_t kl_sample(cudaStream_t s, int32_t *ids, struct kmat logits, int64_t rows, int64_t cols,
                      const struct ksample_row *params);

#ifdef __cplusplus
}
#endif

#endif
