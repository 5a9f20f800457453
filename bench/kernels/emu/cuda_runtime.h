/* cuda_runtime.h stand-in for emu/run.sh: the runtime calls the CUDA backend makes, the
 * device-side keywords and intrinsics its kernels use (as plain C++), and the hooks into
 * emu.cpp. Only what the backend uses; not a CUDA implementation. */
#ifndef EMU_CUDA_RUNTIME_H
#define EMU_CUDA_RUNTIME_H
#include <stddef.h>
#include <stdint.h>
#include <math.h>
typedef enum {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorLaunchFailure = 3
} cudaError_t;
typedef struct emu_stream *cudaStream_t;
enum cudaMemcpyKind {
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3
};
#define cudaStreamNonBlocking 1u
struct cudaDeviceProp {
    char name[256];
    int major, minor, multiProcessorCount;
    size_t sharedMemPerBlockOptin;
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
typedef enum { CUDA_R_32F = 0, CUDA_R_16BF = 14 } cudaDataType_t;
#ifdef __cplusplus
extern "C" {
#endif
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int d);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned f);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaMalloc(void **p, size_t n);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t n);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s);
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, enum cudaMemcpyKind k,
                            cudaStream_t st);
cudaError_t cudaMemcpy2DAsync(void *d, size_t dp, const void *s, size_t sp, size_t w, size_t h,
                              enum cudaMemcpyKind k, cudaStream_t st);
cudaError_t cudaGetLastError(void);
const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaMemGetInfo(size_t *f, size_t *t);
#ifdef __cplusplus
}
#include <functional>
#include <cstring>
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct emu_cfg_t {
    dim3 g, b;
    size_t smem;
};
static inline emu_cfg_t emu_cfg(dim3 g, dim3 b, size_t smem = 0, cudaStream_t s = 0) {
    (void)s;
    return emu_cfg_t{g, b, smem};
}
void emu_launch(emu_cfg_t c, std::function<void()> fn);
dim3 emu_tidx(void);
extern dim3 emu_bidx, emu_bdim, emu_gdim;
void *emu_dyn_smem(void);
void __syncthreads(void);
void __syncwarp(unsigned m = 0xffffffffu);
void emu_shfl_put(uint64_t v);
uint64_t emu_shfl_get(int lane);
int emu_lane(void);
template <class T> static inline T __shfl_xor_sync(unsigned m, T v, int o) {
    (void)m;
    uint64_t u = 0;
    std::memcpy(&u, &v, sizeof v);
    emu_shfl_put(u);
    uint64_t r = emu_shfl_get(emu_lane() ^ o);
    T out;
    std::memcpy(&out, &r, sizeof out);
    return out;
}
template <class T> static inline T __shfl_sync(unsigned m, T v, int src) {
    (void)m;
    uint64_t u = 0;
    std::memcpy(&u, &v, sizeof v);
    emu_shfl_put(u);
    uint64_t r = emu_shfl_get(src);
    T out;
    std::memcpy(&out, &r, sizeof out);
    return out;
}
template <class F> static inline cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute, int) {
    return cudaSuccess;
}
#define threadIdx (emu_tidx())
#define blockIdx  emu_bidx
#define blockDim  emu_bdim
#define gridDim   emu_gdim
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __shared__ static
static inline float __fmul_rn(float a, float b) {
    return a * b;
}
static inline float __fadd_rn(float a, float b) {
    return a + b;
}
static inline float __fsub_rn(float a, float b) {
    return a - b;
}
static inline uint32_t __float_as_uint(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
static inline float __uint_as_float(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
static inline int min(int a, int b) {
    return a < b ? a : b;
}
#include "emu_mma.h" /* tensor-core stand-ins (attention_tc.cu) */
#include "emu_vec.h" /* vector-type stand-ins (attention_dec.cu) */
#endif
#endif
