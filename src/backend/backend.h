/* backend: the op table every compute backend (CPU, CUDA) fills, seen from the model side.
 *
 * A `struct be` is one device with its streams/threads. Memory lives in buffers:
 *   - weights buffers hold parameters. On the CPU they borrow caller memory (an mmapped
 *     safetensors file) and never copy it; a device backend uploads once.
 *   - compute buffers hold activations; the backend allocates them.
 * A `struct tensor` is a plain value: a view (dtype, shape, row stride, byte offset) into a
 * buffer. It never exposes the memory itself: code above the backend reads or writes tensor
 * contents only through be_tensor_write / be_tensor_read (or be_tensor_host_ptr, which
 * returns NULL where the memory is not host-visible), so nothing here assumes the CPU.
 *
 * Shapes are in PyTorch order (shape[0] outermost). Every op sees a tensor as a matrix of
 * rows x cols: cols = shape[n_dims-1], rows = the product of the other dims, row r starting
 * row_stride elements after row r-1. A column slice (be_tensor_cols) shares the buffer.
 *
 * Ops return 0 or a negative VELA_E* code and fill struct err; shapes and dtypes are checked
 * here, once, for every backend. Ops may run asynchronously on a device backend: faults
 * surface at be_sync. Threads: one owner thread per struct be (the engine thread); tensors
 * are values and may be copied freely. */
#ifndef VELA_BACKEND_BACKEND_H
#define VELA_BACKEND_BACKEND_H

#include "util/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BE_MAX_DIMS 4

enum be_dtype { BE_F32 = 0, BE_BF16, BE_I32, BE_N_DTYPES };
enum be_device { BE_DEV_CPU = 0, BE_DEV_CUDA };
enum be_buf_use { BE_BUF_WEIGHTS = 0, BE_BUF_COMPUTE };

struct be;        /* opaque: one backend instance */
struct be_buffer; /* opaque: one allocation or borrowed range */

struct tensor {
    enum be_dtype dtype;
    enum be_device device;
    int32_t n_dims;
    int64_t shape[BE_MAX_DIMS]; /* unused dims are 1 */
    int64_t row_stride;         /* elements between row starts, >= cols */
    struct be_buffer *buf;      /* borrowed: the buffer must outlive the tensor */
    size_t offset_bytes;        /* start of row 0 inside buf */
};

/* ---- backend lifetime (constructors live with each backend: cpu/backend_cpu.h) ---- */
void be_free(struct be *b); /* accepts NULL; buffers must be freed first */
const char *be_name(const struct be *b);
enum be_device be_device_of(const struct be *b);

/* ---- buffers ---- */
/* Allocates n_bytes of device memory (zeroed on the CPU); *out freed with be_buffer_free. */
int be_buffer_new(struct be *b, enum be_buf_use use, size_t n_bytes, struct be_buffer **out,
                  struct err *e);
/* Weights from host memory. The CPU backend borrows `host` (it must stay valid and unchanged
 * until the buffer is freed); a device backend copies it. */
int be_buffer_from_host(struct be *b, const void *host, size_t n_bytes, enum be_buf_use use,
                        struct be_buffer **out, struct err *e);
void be_buffer_free(struct be_buffer *buf); /* accepts NULL */
size_t be_buffer_size(const struct be_buffer *buf);

/* ---- tensors (pure bookkeeping; no memory is touched) ---- */
size_t be_dtype_size(enum be_dtype d);
const char *be_dtype_name(enum be_dtype d);
/* A packed tensor at offset_bytes in buf; checks dims, overflow, alignment and that the
 * whole tensor lies inside the buffer. */
int be_tensor_init(struct tensor *t, struct be_buffer *buf, size_t offset_bytes,
                   enum be_dtype dtype, int32_t n_dims, const int64_t *shape, struct err *e);
int64_t be_tensor_rows(const struct tensor *t);
int64_t be_tensor_cols(const struct tensor *t);
int64_t be_tensor_nelems(const struct tensor *t);
/* Columns [col0, col0+n_cols) of every row of t, as a new view with the same row stride. */
int be_tensor_cols_view(struct tensor *out, const struct tensor *t, int64_t col0, int64_t n_cols,
                        struct err *e);
/* Rows [row0, row0+n_rows) of a 2-D view of t (rows x cols). */
int be_tensor_rows_view(struct tensor *out, const struct tensor *t, int64_t row0, int64_t n_rows,
                        struct err *e);

/* ---- explicit host access ---- */
/* Copies rows*cols packed elements between host memory and t (honouring its row stride).
 * Synchronous: waits for queued work on a device backend. */
int be_tensor_write(struct be *b, struct tensor *t, const void *src, size_t n_bytes, struct err *e);
int be_tensor_read(struct be *b, const struct tensor *t, void *dst, size_t n_bytes, struct err *e);
/* Host pointer to row 0 when the buffer is host-visible (CPU), else NULL. */
void *be_tensor_host_ptr(const struct tensor *t);

/* ---- ops ---- */
/* y[m, n] = x[m, k] · w[n, k]ᵀ + bias[n] (w as stored by torch Linear). x F32 or BF16, w BF16,
 * y F32 or BF16, bias F32/BF16 or NULL. y must not overlap x. */
int be_matmul(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *w,
              const struct tensor *bias, struct err *e);
/* One product of be_matmul_multi: y = x · wᵀ + bias (bias may be NULL). */
struct be_mm_out {
    struct tensor *y;
    const struct tensor *w;
    const struct tensor *bias;
};
#define BE_MM_MAX_OUT 4
/* Several matmuls of one x (q/k/v, gate/up): each out gets exactly what be_matmul gives it,
 * but a backend may prepare x once and run the products as one dispatch. 1 <= n_out <=
 * BE_MM_MAX_OUT; no y may overlap x, a w, a bias or another y. */
int be_matmul_multi(struct be *b, const struct be_mm_out *outs, int n_out, const struct tensor *x,
                    struct err *e);
/* y = x / sqrt(mean(x², per row) + eps) · gain, FP32 math; gain [cols] BF16 or F32. With a BF16
 * y the normalized value is rounded to BF16 before the gain, as the reference does. y may be x. */
int be_rms_norm(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *gain,
                float eps, struct err *e);
/* y = a + b elementwise (same shape); y may alias a or b (the residual add). */
int be_add(struct be *b, struct tensor *y, const struct tensor *a, const struct tensor *c,
           struct err *e);
/* The residual add and the next RMSNorm in one pass over the rows: h += x, then y =
 * rms_norm(h) with gain, exactly be_add(h, h, x) then be_rms_norm(y, h, gain, eps) (the same
 * roundings). y may be x itself (the projection output becomes the normed input), never h. */
int be_add_rms_norm(struct be *b, struct tensor *h, struct tensor *y, const struct tensor *x,
                    const struct tensor *gain, float eps, struct err *e);
/* y[n, F] = silu(gate) · up. With up == NULL, gate is the fused gate_up [n, 2F] (gate
 * first). Math in FP32. */
int be_silu_mul(struct be *b, struct tensor *y, const struct tensor *gate, const struct tensor *up,
                struct err *e);
/* y[n, D] = table[ids[i], :] (table BF16 [V, D], ids I32 [n]); an id outside [0, V) is
 * VELA_EINVAL naming the position. */
int be_embed(struct be *b, struct tensor *y, const struct tensor *table, const struct tensor *ids,
             struct err *e);
/* Waits for queued work; reports asynchronous faults. */
int be_sync(struct be *b, struct err *e);

/* ---- language-model attention ops: M-RoPE, paged KV cache, attention (src/backend/attn.c) ----
 * Per-step metadata is host memory borrowed for the call (a device backend uploads it); no op
 * keeps a pointer to it after returning. */

/* Rotary embedding (NeoX rotate-half, pairs (j, j + head_dim/2)). Frequency j uses position
 * row 0 (t) for j < section[0], row 1 (h) for the next section[1], row 2 (w) for the rest:
 * M-RoPE with [16, 24, 24] on Qwen2.5-VL, plain RoPE with {head_dim/2, 0, 0}. */
struct rope_args {
    const int32_t *pos; /* (3, n_tokens) host: rows t, h, w, each n_tokens long */
    int32_t head_dim;   /* even; cols of q and k are multiples of it */
    int32_t section[3]; /* sums to head_dim / 2 */
    float theta;        /* base: inv_freq[j] = 1 / theta^(2j / head_dim) in FP32 */
};

/* Where a flattened batch of sequences lives in the paged cache. A cache tensor has one row
 * per slot (n_blocks * block_size rows, n_kv_heads * head_dim cols); slot = block id *
 * block_size + offset in the block. Sequence s owns rows query_start[s] ..
 * query_start[s+1]-1 of q/k/v: its new tokens, at sequence positions n_computed[s] ...;
 * its keys 0 .. n_computed[s] + n_new - 1 are found through its block table. */
struct attn_meta {
    int32_t n_seqs;
    const int32_t *query_start;  /* (n_seqs + 1): [0] = 0, increasing, last = n_tokens */
    const int32_t *n_computed;   /* (n_seqs): tokens already in the cache before this step */
    const int32_t *block_tables; /* (n_seqs, max_blocks_per_seq): block ids, row-major */
    int32_t max_blocks_per_seq;
    const int32_t *slot_mapping; /* (n_tokens): cache row of each new token */
    int32_t block_size;          /* tokens per block (16) */
    int32_t head_dim;
    float scale; /* softmax scale, 1/sqrt(head_dim) */
};

/* Checks m for a step of n_tokens rows over a cache of n_slots rows, as be_kv_store and
 * be_attention do (query_start, counts, block tables, slots), without touching memory: a
 * caller that validates first never leaves a step half written. */
int be_attn_meta_check(const struct attn_meta *m, int64_t n_tokens, int64_t n_slots, struct err *e);
/* Rotates q [n, Nq*head_dim] and k [n, Nkv*head_dim] (k may be NULL) in place, F32 or BF16.
 * cos/sin in FP32 from FP32 theta = pos * inv_freq; with F32 tensors the rotation is FP32, with
 * BF16 ones cos/sin and each product and sum are rounded to BF16 as the reference does. */
int be_rope(struct be *b, struct tensor *q, struct tensor *k, const struct rope_args *a,
            struct err *e);
/* Writes row i of k and v [n, Nkv*head_dim] (F32 or BF16) into row slot_mapping[i] of k_cache
 * and v_cache (F32 or BF16, same dtype and shape). */
int be_kv_store(struct be *b, struct tensor *k_cache, struct tensor *v_cache,
                const struct tensor *k, const struct tensor *v, const struct attn_meta *m,
                struct err *e);
/* Causal attention over the paged cache: o[i, head h] = softmax(q_i,h · Kᵀ · scale) · V over
 * the keys 0 .. (sequence position of i) of i's sequence, kv head h / (Nq / Nkv). Softmax and
 * accumulation in FP32. o and q [n, Nq*head_dim] F32 or BF16; kv_store must already have
 * written this step's keys. */
int be_attention(struct be *b, struct tensor *o, const struct tensor *q,
                 const struct tensor *k_cache, const struct tensor *v_cache,
                 const struct attn_meta *m, struct err *e);

/* ---- vision-tower ops: 2-D rotary, segment attention, GELU, row gather (src/backend/vit_ops.c)
 * Per-call metadata is host memory borrowed for the call, as for the attention ops above. */

/* The vision rotary (spec §4.3): each row has a grid position (r, c). With n = head_dim / 4
 * frequencies inv_freq[j] = 1 / theta^(4j / head_dim) (FP32), pair (i, i + head_dim/2) of every
 * head turns by r * inv_freq[i] for i < n and by c * inv_freq[i - n] for n <= i < 2n. */
struct rope2d_args {
    const int32_t *pos; /* (2, n_tokens) host: row 0 = patch row r, row 1 = patch column c */
    int32_t head_dim;   /* multiple of 4; cols of q and k are multiples of it */
    float theta;        /* 10000 on Qwen2.5-VL */
};
/* Rotates q and k [n, heads*head_dim] (F32 or BF16) in place. cos/sin and the rotation are
 * FP32 and each result is rounded once when the tensor is BF16, as the reference does. */
int be_rope2d(struct be *b, struct tensor *q, struct tensor *k, const struct rope2d_args *a,
              struct err *e);

/* Non-causal attention inside segments of a packed sequence (window and full attention of
 * the ViT): rows cu_seqlens[s] .. cu_seqlens[s+1]-1 attend to each other only. */
struct varlen_meta {
    int32_t n_segs;
    const int32_t *cu_seqlens; /* (n_segs + 1) host: [0] = 0, strictly increasing, last = rows */
    int32_t head_dim;
    float scale; /* softmax scale, 1/sqrt(head_dim) */
};
/* o[i, head h] = softmax(q_i,h · K_segᵀ · scale) · V_seg over the keys of i's segment. q, k, v,
 * o [n, heads*head_dim] F32 or BF16 (q, k, v may be column views of one fused qkv tensor);
 * scores, softmax and accumulation in FP32. o must not overlap q, k or v. */
int be_attention_varlen(struct be *b, struct tensor *o, const struct tensor *q,
                        const struct tensor *k, const struct tensor *v, const struct varlen_meta *m,
                        struct err *e);

/* y = gelu(x) = 0.5 · x · (1 + erf(x / √2)) elementwise (exact GELU, nn.GELU()), FP32 math;
 * y may be x. */
int be_gelu(struct be *b, struct tensor *y, const struct tensor *x, struct err *e);

/* Qwen2-VL's vision tower: LayerNorm and quick_gelu. */
/* y = (x - mean) / sqrt(var + eps) · gain + bias per row (torch LayerNorm: biased variance),
 * FP32 math; gain and bias [cols] F32 or BF16. y may be x. */
int be_layer_norm(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *gain,
                  const struct tensor *bias, float eps, struct err *e);
/* y = x · sigmoid(1.702 · x) elementwise (quick_gelu), FP32 math; y may be x. */
int be_quick_gelu(struct be *b, struct tensor *y, const struct tensor *x, struct err *e);

/* y[i, :] = x[rows[i], :] for i < rows of y; x and y of the same dtype (F32 or BF16) and
 * width; rows is host memory (rows of y entries), each in [0, rows of x). y must not overlap
 * x. The ViT's window reordering and its inverse. */
int be_gather_rows(struct be *b, struct tensor *y, const struct tensor *x, const int32_t *rows,
                   struct err *e);

/* ---- sampling on the device (optional: VELA_EUNSUP where the backend lacks it) ----
 * ids[r] = the lowest index of the largest value of row r of logits (torch.argmax's tie rule,
 * as engine/sampler.c's greedy path); -1 where every value is -inf or NaN. logits F32 or
 * BF16 [rows, V]; ids I32 with rows elements in one packed row. Asynchronous like the other
 * ops: read ids with be_tensor_read, so only the ids cross to the host. */
int be_sample_greedy(struct be *b, struct tensor *ids, const struct tensor *logits, struct err *e);

/* One row's choice for be_sample: greedy when temperature < BE_SAMPLE_GREEDY_EPS (the
 * filters are then ignored), else a draw with Gumbel noise from key among the logits the
 * filters keep. */
struct be_sample_row {
    float temperature;
    int32_t top_k; /* 0 = off */
    float top_p;   /* 0 or 1 = off (so a zeroed row is unfiltered) */
    float min_p;   /* 0 = off */
    uint64_t key;  /* the draw's random stream (the engine: the request's seed and position) */
};
#define BE_SAMPLE_GREEDY_EPS 1e-5f /* = VELA_SP_GREEDY_EPS */
/* ids[r] = argmax over the kept i of (z_i + G(key_r, i)), z = x[r] / T_r: the Gumbel-max trick,
 * an exact draw from softmax(z) restricted to the kept set. G(key, i) = -ln(-ln u),
 * u = ((rng_at(key, i) >> 40) + 0.5) / 2^24 in FP32 (util/rng.h), so every backend draws the
 * same noise. Kept: the finite z (NaN and -inf never), then in vLLM's order
 *   top-k (0 < k < finite count): z >= the k-th largest z (ties at it kept);
 *   top-p (0 < p < 1): the largest threshold t among the kept z such that the kept z >= t hold at
 *     least p of the kept softmax mass (sums in double), then z >= t: the smallest
 *     most-likely set, ties kept;
 *   min-p (m > 0): z >= max z + ln m (probability at least m times the largest).
 * Greedy rows take x alone, so their id is be_sample_greedy's; ties go to the lowest index;
 * -1 when nothing is finite. rows: host, one per logits row, borrowed for the call. Same
 * tensors as be_sample_greedy; only the ids need to cross to the host. */
int be_sample(struct be *b, struct tensor *ids, const struct tensor *logits,
              const struct be_sample_row *rows, struct err *e);
/* Whether b implements be_sample. */
bool be_can_sample(const struct be *b);

#endif
