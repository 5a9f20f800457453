/* rowio: moving a chunk of one F32 or BF16 tensor row to and from the F32 arrays the vec.h
 * kernels work on. F32 rows are used in place; BF16 rows are converted into a caller buffer
 * (and rounded once on the way back). No ownership; any thread (pool threads use their own
 * buffers). */
#ifndef VELA_BACKEND_CPU_ROWIO_H
#define VELA_BACKEND_CPU_ROWIO_H

#include "backend/cpu/cpu_ops.h"
#include "util/bf16.h"

/* Columns [c0, c0 + n) of row r as F32: in place when the tensor is F32, else staged. */
static inline const float *rowio_in(const struct tensor *t, int64_t r, int64_t c0, int64_t n,
                                    float *buf) {
    if (t->dtype == BE_F32) return (const float *)be_tensor_addr(t, r, c0);
    const uint16_t *s = (const uint16_t *)be_tensor_addr(t, r, c0);
    for (int64_t i = 0; i < n; i++) buf[i] = bf16_to_f32(s[i]);
    return buf;
}

/* Where a kernel writes columns [c0, c0 + n) of row r: in place for F32, else buf. */
static inline float *rowio_out(const struct tensor *t, int64_t r, int64_t c0, float *buf) {
    return t->dtype == BE_F32 ? (float *)be_tensor_addr(t, r, c0) : buf;
}

/* Stores a staged chunk (BF16 rows only: F32 rows were written in place). */
static inline void rowio_store(const struct tensor *t, int64_t r, int64_t c0, int64_t n,
                               const float *buf) {
    if (t->dtype == BE_F32) return;
    uint16_t *d = (uint16_t *)be_tensor_addr(t, r, c0);
    for (int64_t i = 0; i < n; i++) d[i] = f32_to_bf16(buf[i]);
}

#endif
