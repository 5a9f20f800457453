/* vec: FP32 elementwise row kernels (silu·up, add, sum of squares, scale-and-gain, rounding
 * to BF16) with a portable path and AVX2 / AVX-512F paths chosen at run time from
 * cpu_features. The ops in act.c and norm.c call these on contiguous F32 rows (BF16 rows go
 * through a small F32 staging buffer there); kv_cache.c rounds new K/V rows with to_bf16.
 * The tables are static and read-only; any thread. Outputs may alias inputs exactly (each
 * element is read before it is written), never partially. */
#ifndef VELA_BACKEND_CPU_VEC_H
#define VELA_BACKEND_CPU_VEC_H

#include "backend/cpu/cpu_features.h"

#include <stdint.h>

struct vec_ops {
    const char *name;
    /* y[i] = silu(g[i]) * u[i], silu(x) = x / (1 + exp(-x)). */
    void (*silu_mul)(float *y, const float *g, const float *u, int64_t n);
    /* y[i] = a[i] + b[i]. */
    void (*add)(float *y, const float *a, const float *b, int64_t n);
    /* Sum of x[i]^2 (FP32 partial sums, added up in double). */
    double (*sumsq)(const float *x, int64_t n);
    /* y[i] = (x[i] * s) * g[i]. */
    void (*scale_mul)(float *y, const float *x, float s, const float *g, int64_t n);
    /* y[i] = f32_to_bf16(x[i]) (util/bf16.h: nearest even, NaN kept quiet), bit for bit. */
    void (*to_bf16)(uint16_t *y, const float *x, int64_t n);
};

/* The kernels for a path (AUTO: the fastest this CPU supports); NULL when the CPU cannot run
 * it. PORTABLE is plain C with libm expf, the reference the others are tested against. */
const struct vec_ops *vec_ops_get(enum cpu_isa isa);
/* vec_ops_get(isa), or the portable table where that path has none: never NULL. The ops of a
 * backend call it with the backend's isa. */
const struct vec_ops *vec_ops_for(enum cpu_isa isa);

#endif
