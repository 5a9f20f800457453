/* matmul_portable: the plain C matmul kernel, the reference every SIMD path is tested
 * against. FP32 activations, BF16 weights widened exactly, FP32 sums in k order.
 * Invariant: touches only columns [n0, n1) of y. Called on pool threads. */
#include "backend/cpu/matmul.h"

void mm_portable(const struct mm_job *j, int64_t n0, int64_t n1, float *tmp) {
    (void)tmp;
    const float *x = j->x;
    for (int64_t c = n0; c < n1; c++) {
        const uint16_t *w = j->w + c * j->w_stride;
        for (int64_t r = 0; r < j->m; r++) {
            const float *xr = x + r * j->x_stride;
            float acc = 0.0f;
            for (int64_t i = 0; i < j->k; i++) acc += xr[i] * bf16_to_f32(w[i]);
            mm_store(j, r, c, acc);
        }
    }
}
