/* emu_vec.h: stand-ins for the CUDA vector types and the few runtime/device calls
 * attention_dec.cu uses (included at the end of the emulator's cuda_runtime.h, C++ only).
 * Vector types are plain structs with CUDA's member names and alignment; __ldg is an ordinary
 * load; the occupancy query answers 2 blocks per SM, so the emulated split plans resemble an
 * H100's (132 SMs, a few blocks each). */
#ifndef EMU_VEC_H
#define EMU_VEC_H

struct alignas(16) uint4 {
    unsigned int x, y, z, w;
};
struct alignas(8) uint2 {
    unsigned int x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};

static inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) {
    return uint4{x, y, z, w};
}

template <class T> static inline T __ldg(const T *p) {
    return *p;
}

template <class F>
static inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *n, F, int, size_t) {
    *n = 2;
    return cudaSuccess;
}

#endif
