/* matmul: y[m, n] = x[m, k] · w[n, k]ᵀ + bias on the CPU, with one kernel per ISA path.
 *
 * Numerics (the choice is the backend's isa option, see backend_cpu.h):
 *   - portable and avx2 keep activations in FP32: every product is x_f32 · w_bf16 exactly,
 *     summed in FP32. This is the path the FP32 reference tests use.
 *   - avx512 rounds each activation to BF16 (round to nearest even, subnormal activations
 *     flushed to zero by the conversion instruction) and sums the exact BF16 products in
 *     FP32: the same as running the Linear layer in BF16, as the reference model does in
 *     serving precision. Fast, but not an FP32 reference. Up to MM_TF_MIN_ROWS - 1 rows it
 *     takes dot products with vdpbf16ps (matmul_avx512.c); from there on it runs FP32 FMAs on
 *     weights widened from BF16, which this core issues twice as fast (matmul_avx512_tf.c).
 * All paths add the bias in FP32 and round once when y is BF16.
 *
 * The driver (matmul.c) converts the activations once per call into the backend's scratch
 * buffer and hands out the output columns (rows of w) in contiguous chunks to the threads, so
 * each thread streams its own part of the weights, once per call for m up to the chunk size.
 * Kernels are called on pool threads with disjoint column ranges. */
#ifndef VELA_BACKEND_CPU_MATMUL_H
#define VELA_BACKEND_CPU_MATMUL_H

#include "backend/backend.h"
#include "util/bf16.h"

#include <stdint.h>

struct mm_job {
    const void *x;     /* (m, x_stride): F32 for portable/avx2, BF16 zero-padded for avx512,
                          FP32 groups for mm_avx512_tf */
    int64_t x_stride;  /* elements; for avx512 a multiple of 32 >= k */
    const uint16_t *w; /* (n, w_stride) BF16, borrowed weights */
    int64_t w_stride;
    const void *bias; /* (n) or NULL */
    enum be_dtype bias_dtype;
    void *y; /* (m, y_stride) */
    int64_t y_stride;
    enum be_dtype y_dtype;
    int64_t m, n, k;
};

/* Each computes columns [n0, n1) of every row of y. tmp is the calling thread's own buffer of
 * MM_TF_TMP_FLOATS (64-byte aligned), for the kernels that need one (mm_avx512_tf); the
 * others ignore it. */
typedef void (*mm_kernel)(const struct mm_job *j, int64_t n0, int64_t n1, float *tmp);
void mm_portable(const struct mm_job *j, int64_t n0, int64_t n1, float *tmp);
void mm_avx2(const struct mm_job *j, int64_t n0, int64_t n1, float *tmp);
void mm_avx512(const struct mm_job *j, int64_t n0, int64_t n1, float *tmp);
/* The many-rows AVX-512 kernel, FP32 FMAs on widened BF16 weights (matmul_avx512_tf.c): x is
 * packed by mm_avx512_pack_tf, or by mm_avx512_pack_tf_pairs when m <= 16, and x_stride is
 * kpad, the packed k (a multiple of 32 >= k). */
void mm_avx512_tf(const struct mm_job *j, int64_t n0, int64_t n1, float *tmp);
/* Rows [0, rows) of src (F32 or BF16, src_stride elements apart, k used) -> groups of 16
 * rows, each kpad vectors of 16 FP32 (lane t of vector i = x[t][i] rounded to BF16); rows
 * past `rows` and k past k are zeros. */
void mm_avx512_pack_tf(float *dst, int64_t kpad, const void *src, enum be_dtype dt,
                       int64_t src_stride, int64_t rows, int64_t k);
/* The same for up to 16 rows, as one group in pairs: for each 32 k from kc, 16 pairs q of
 * two vectors, rows 0-7 then 8-15, lanes 2i and 2i + 1 holding row i's (or 8 + i's) values
 * at the k of widened positions 2q and 2q + 1 of the chunk (16 even k, then the odd ones);
 * kpad x 16 floats, as for one group. */
void mm_avx512_pack_tf_pairs(float *dst, int64_t kpad, const void *src, enum be_dtype dt,
                             int64_t src_stride, int64_t rows, int64_t k);
/* k per widened weight block of mm_avx512_tf (8 rows x 1024 x 4 bytes = 32 KB), and the rows
 * of a chunk whose partial sums a thread keeps when k spans several blocks. */
#define MM_TF_KB         1024
#define MM_TF_MAX_ROWS   1024
#define MM_TF_TMP_FLOATS (16 * MM_TF_KB + MM_TF_MAX_ROWS * 16)
/* Rows (m of a call) from which the avx512 path runs mm_avx512_tf: one group of 16 lanes
 * holds up to 16 rows, so below this most lanes would be padding. With one-group chunks in
 * pairs, at 10 rows both kernels measure about the same and from 11 the FP32 kernel is
 * faster (docs/BENCHMARKS.md). */
#ifndef MM_TF_MIN_ROWS
#define MM_TF_MIN_ROWS 11
#endif
/* F32 rows -> BF16 rows (round to nearest even) zero-padded to dst_stride; avx512 only. */
void mm_avx512_pack_f32(uint16_t *dst, int64_t dst_stride, const float *src, int64_t src_stride,
                        int64_t rows, int64_t k);

/* The epilogue every kernel shares: adds the bias of column c and stores y[r, c]. */
static inline void mm_store(const struct mm_job *j, int64_t r, int64_t c, float acc) {
    if (j->bias)
        acc += j->bias_dtype == BE_F32 ? ((const float *)j->bias)[c]
                                       : bf16_to_f32(((const uint16_t *)j->bias)[c]);
    if (j->y_dtype == BE_F32)
        ((float *)j->y)[r * j->y_stride + c] = acc;
    else
        ((uint16_t *)j->y)[r * j->y_stride + c] = f32_to_bf16(acc);
}

#endif
