/* vit_ops: the CPU backend's entries for the vision-tower ops (rope2d.c, attention_varlen.c,
 * gelu.c, layer_norm.c), referenced from the op table in backend_cpu.c. Arguments are already
 * validated by backend/vit_ops.c. Owner thread only; each op fans out to the pool. */
#ifndef VELA_BACKEND_CPU_VIT_OPS_H
#define VELA_BACKEND_CPU_VIT_OPS_H

#include "backend/backend.h"

int cpu_rope2d(struct be *b, struct tensor *q, struct tensor *k, const struct rope2d_args *a,
               struct err *e);
int cpu_attention_varlen(struct be *b, struct tensor *o, const struct tensor *q,
                         const struct tensor *k, const struct tensor *v,
                         const struct varlen_meta *m, struct err *e);
int cpu_gelu(struct be *b, struct tensor *y, const struct tensor *x, struct err *e);
int cpu_quick_gelu(struct be *b, struct tensor *y, const struct tensor *x, struct err *e);
int cpu_layer_norm(struct be *b, struct tensor *y, const struct tensor *x,
                   const struct tensor *gain, const struct tensor *bias, float eps, struct err *e);
int cpu_gather_rows(struct be *b, struct tensor *y, const struct tensor *x, const int32_t *rows,
                    struct err *e);

/* Query rows per tile of attention_varlen's AVX-512F kernel: four row vectors of 16 lanes. */
#define VA_AVX512_ROWS 64

/* attention_varlen's AVX-512F tile (attention_varlen_avx512.c): nq in [1, VA_AVX512_ROWS]
 * query rows (q, row stride q_stride) against the n_keys >= 1 key/value rows of their segment,
 * one head, all F32, head_dim hd a multiple of 16 and at most 256; writes the nq normalized
 * output rows to o (stride o_stride). Strides are in floats. Only call it where
 * cpu_features_get()->avx512f. */
void va_tile_avx512(const float *q, int64_t q_stride, int32_t nq, const float *k, int64_t k_stride,
                    const float *v, int64_t v_stride, int64_t n_keys, int32_t hd, float scale,
                    float *o, int64_t o_stride);

/* inv_freq[j] = 1 / theta^(2j / (head_dim/2)) for j < head_dim / 4, in FP32 as transformers'
 * Qwen2_5_VLVisionRotaryEmbedding computes it (the exponent is an FP32 quotient). */
void cpu_rope2d_inv_freq(float theta, int32_t head_dim, float *inv_freq);

#endif
