/* vec: the portable kernels and the run-time choice among the vec_ops tables (vec.h).
 * Invariant: every path computes each element from the same-index inputs only. Any thread. */
#include "backend/cpu/vec.h"
#include "backend/cpu/vec_simd.h"
#include "util/bf16.h"

#include <math.h>
#include <stddef.h>

static void silu_mul_portable(float *y, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float x = g[i];
        y[i] = x / (1.0f + expf(-x)) * u[i];
    }
}

static void add_portable(float *y, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

static double sumsq_portable(const float *x, int64_t n) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    return ss;
}

static void scale_mul_portable(float *y, const float *x, float s, const float *g, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] * s) * g[i];
}

static void to_bf16_portable(uint16_t *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = f32_to_bf16(x[i]);
}

static const struct vec_ops g_portable = {
    .name = "portable",
    .silu_mul = silu_mul_portable,
    .add = add_portable,
    .sumsq = sumsq_portable,
    .scale_mul = scale_mul_portable,
    .to_bf16 = to_bf16_portable,
};

const struct vec_ops *vec_ops_for(enum cpu_isa isa) {
    const struct vec_ops *v = vec_ops_get(isa);
    return v ? v : &g_portable;
}

const struct vec_ops *vec_ops_get(enum cpu_isa isa) {
    const struct cpu_features *f = cpu_features_get();
    bool has512 = vec_ops_avx512 != NULL && f->avx512f;
    bool has2 = vec_ops_avx2 != NULL && f->avx2 && f->fma;
    switch (isa) {
        case CPU_ISA_AUTO:
            return has512 ? vec_ops_avx512 : has2 ? vec_ops_avx2 : &g_portable;
        case CPU_ISA_PORTABLE:
            return &g_portable;
        case CPU_ISA_AVX2:
            return has2 ? vec_ops_avx2 : NULL;
        case CPU_ISA_AVX512:
            return has512 ? vec_ops_avx512 : NULL;
    }
    return NULL;
}
