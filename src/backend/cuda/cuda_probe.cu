/* cuda_probe: device discovery. Every CUDA call goes through CUDA_TRY, which turns a failure
 * into a struct err with file and line instead of aborting. */
#include "backend/cuda/cuda_probe.h"

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

#define CUDA_TRY(call, e)                                                                          \
    do {                                                                                           \
        cudaError_t rc_ = (call);                                                                  \
        if (rc_ != cudaSuccess)                                                                    \
            return err_set((e), VELA_EDEVICE, "%s:%d: %s: %s", __FILE__, __LINE__, #call,          \
                           cudaGetErrorString(rc_));                                               \
    } while (0)

extern "C" int cuda_probe_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no driver" error */
        return 0;
    }
    return n;
}

extern "C" int cuda_probe_device(int idx, struct cuda_device_info *info, struct err *e) {
    memset(info, 0, sizeof *info);
    cudaDeviceProp prop;
    CUDA_TRY(cudaGetDeviceProperties(&prop, idx), e);
    CUDA_TRY(cudaSetDevice(idx), e);
    info->index = idx;
    snprintf(info->name, sizeof info->name, "%s", prop.name);
    info->cc_major = prop.major;
    info->cc_minor = prop.minor;
    info->n_sms = prop.multiProcessorCount;
    CUDA_TRY(cudaMemGetInfo(&info->free_bytes, &info->total_bytes), e);
    cublasLtHandle_t lt = NULL;
    cublasStatus_t st = cublasLtCreate(&lt);
    if (st != CUBLAS_STATUS_SUCCESS)
        return err_set(e, VELA_EDEVICE, "cublasLtCreate failed with status %d", (int)st);
    cublasLtDestroy(lt);
    return 0;
}
