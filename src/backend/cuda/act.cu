/* act: elementwise kernels of the CUDA backend: silu_mul (SwiGLU), the residual add, exact
 * GELU, quick_gelu, the F32 -> BF16 staging copy of GEMM inputs and the bias add of the GEMM
 * fallback. Numerics match backend/cpu/act.c and gelu.c: FP32 math with expf/erff (no fast-math), a
 * BF16 output rounded once at the store. Every kernel is a grid-stride loop over rows x cols,
 * so any shape (odd widths, one row) is covered by one launch.
 * Invariant: element (r, c) of y is computed from element (r, c) of the inputs (and (r, uc0+c)
 * of the fused gate_up) by the thread that stores it, so the exact aliases backend.c allows
 * are safe. Owner thread of the stream. */
#include "backend/cuda/kern_common.cuh"

#define ACT_THREADS 256

static __global__ void silu_mul_kernel(struct kmat y, struct kmat g, struct kmat u, int64_t uc0,
                                       int64_t rows, int64_t cols) {
    int64_t n = rows * cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i % cols;
        float gv = k_ld(g, r, c);
        float sv = gv / (1.0f + expf(-gv));
        k_st(y, r, c, __fmul_rn(sv, k_ld(u, r, uc0 + c)));
    }
}

static __global__ void add_kernel(struct kmat y, struct kmat a, struct kmat b, int64_t rows,
                                  int64_t cols) {
    int64_t n = rows * cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i % cols;
        k_st(y, r, c, k_ld(a, r, c) + k_ld(b, r, c));
    }
}

static __global__ void gelu_kernel(struct kmat y, struct kmat x, int64_t rows, int64_t cols) {
    const float k = 0.70710678118654752f; /* 1/sqrt(2) */
    int64_t n = rows * cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i % cols;
        float v = k_ld(x, r, c);
        float t = __fadd_rn(1.0f, erff(__fmul_rn(v, k)));
        k_st(y, r, c, __fmul_rn(__fmul_rn(0.5f, v), t));
    }
}

/* x · sigmoid(1.702 x) as backend/cpu/gelu.c writes it: x / (1 + expf(-1.702 x)). */
static __global__ void quick_gelu_kernel(struct kmat y, struct kmat x, int64_t rows, int64_t cols) {
    int64_t n = rows * cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i % cols;
        float v = k_ld(x, r, c);
        k_st(y, r, c, v / (1.0f + expf(__fmul_rn(-1.702f, v))));
    }
}

static __global__ void to_bf16_kernel(uint16_t *dst, struct kmat x, int64_t rows, int64_t cols) {
    int64_t n = rows * cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i % cols;
        dst[i] = k_f32_to_bf16(k_ld(x, r, c));
    }
}

static __global__ void bias_add_kernel(struct kmat y, struct kmat bias, int64_t rows,
                                       int64_t cols) {
    int64_t n = rows * cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i % cols;
        k_st(y, r, c, k_ld(y, r, c) + k_ld(bias, 0, c));
    }
}

extern "C" cudaError_t kl_silu_mul(cudaStream_t s, struct kmat y, struct kmat g, struct kmat u,
                                   int64_t uc0, int64_t rows, int64_t cols) {
    silu_mul_kernel<<<k_blocks(rows * cols, ACT_THREADS), ACT_THREADS, 0, s>>>(y, g, u, uc0, rows,
                                                                               cols);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_add(cudaStream_t s, struct kmat y, struct kmat a, struct kmat b,
                              int64_t rows, int64_t cols) {
    add_kernel<<<k_blocks(rows * cols, ACT_THREADS), ACT_THREADS, 0, s>>>(y, a, b, rows, cols);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_gelu(cudaStream_t s, struct kmat y, struct kmat x, int64_t rows,
                               int64_t cols) {
    gelu_kernel<<<k_blocks(rows * cols, ACT_THREADS), ACT_THREADS, 0, s>>>(y, x, rows, cols);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_quick_gelu(cudaStream_t s, struct kmat y, struct kmat x, int64_t rows,
                                     int64_t cols) {
    quick_gelu_kernel<<<k_blocks(rows * cols, ACT_THREADS), ACT_THREADS, 0, s>>>(y, x, rows, cols);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_to_bf16(cudaStream_t s, uint16_t *dst, struct kmat x, int64_t rows,
                                  int64_t cols) {
    to_bf16_kernel<<<k_blocks(rows * cols, ACT_THREADS), ACT_THREADS, 0, s>>>(dst, x, rows, cols);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_bias_add(cudaStream_t s, struct kmat y, struct kmat bias, int64_t rows,
                                   int64_t cols) {
    bias_add_kernel<<<k_blocks(rows * cols, ACT_THREADS), ACT_THREADS, 0, s>>>(y, bias, rows, cols);
    return cudaGetLastError();
}
