/* kern_common: device helpers every kernel file shares: loading and storing F32/BF16
 * elements of a struct kmat, bit-exact to util/bf16.h (round to nearest even, NaN kept
 * quiet), and warp reductions. Device code only; included by the .cu files of this
 * directory. */
#ifndef VELA_BACKEND_CUDA_KERN_COMMON_CUH
#define VELA_BACKEND_CUDA_KERN_COMMON_CUH

#include "backend/backend.h"
#include "backend/cuda/kernels.h"

#include <stdint.h>

static __device__ __forceinline__ float k_bf16_to_f32(uint16_t h) {
    return __uint_as_float((uint32_t)h << 16);
}

/* The same integer rounding as util/bf16.h f32_to_bf16, so host and device agree bit for bit. */
static __device__ __forceinline__ uint16_t k_f32_to_bf16(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    uint32_t lsb = (u >> 16) & 1u;
    u += 0x7fffu + lsb;
    return (uint16_t)(u >> 16);
}

static __device__ __forceinline__ float k_round_bf16(float f) {
    return k_bf16_to_f32(k_f32_to_bf16(f));
}

static __device__ __forceinline__ float k_ld(const struct kmat &m, int64_t r, int64_t c) {
    int64_t i = r * m.stride + c;
    if (m.dt == BE_F32) return ((const float *)m.p)[i];
    return k_bf16_to_f32(((const uint16_t *)m.p)[i]);
}

static __device__ __forceinline__ void k_st(const struct kmat &m, int64_t r, int64_t c, float v) {
    int64_t i = r * m.stride + c;
    if (m.dt == BE_F32)
        ((float *)m.p)[i] = v;
    else
        ((uint16_t *)m.p)[i] = k_f32_to_bf16(v);
}

static __device__ __forceinline__ float k_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

static __device__ __forceinline__ float k_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Sum of v over the whole block, returned to every thread; red holds blockDim.x / 32
 * doubles of shared memory. The warps' partial sums are added in warp order, so every
 * thread gets the same value; the closing barrier lets red be reused at once. */
static __device__ double k_block_sum(double v, double *red) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x / 32] = v;
    __syncthreads();
    double t = 0.0;
    for (unsigned w = 0; w < blockDim.x / 32; w++) t += red[w];
    __syncthreads();
    return t;
}

/* Blocks for a grid-stride loop over n items with `threads` per block. */
static inline unsigned k_blocks(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    return b > 65535 * 8 ? 65535u * 8u : (unsigned)b;
}

#endif
