/* backend_cuda: the CUDA backend's constructor and options. One struct be per GPU: one
 * stream, one cuBLASLt handle, and device scratch (cuBLASLt workspace, activation staging,
 * attention partials, per-op metadata) allocated here, so no op allocates device memory in
 * steady state. Weights buffers are copied to the device once (be_buffer_from_host); compute
 * buffers live on the device and are reached only through be_tensor_write/read.
 * Ops are asynchronous on the backend's stream; device faults surface at be_sync (or at the
 * next host copy). Threads: one owner thread per struct be, as backend.h. */
#ifndef VELA_BACKEND_CUDA_BACKEND_CUDA_H
#define VELA_BACKEND_CUDA_BACKEND_CUDA_H

#include "backend/backend.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct be_cuda_opts {
    size_t workspace_bytes; /* cuBLASLt workspace; 0 = 32 MiB */
    size_t scratch_bytes;   /* activation staging (F32 -> BF16 GEMM inputs); 0 = 64 MiB */
    size_t partial_bytes;   /* split-key attention partial results; 0 = 64 MiB */
    size_t meta_bytes;      /* per-op metadata ring (block tables, positions); 0 = 8 MiB */
};

/* A CUDA backend on GPU `device` (0-based). VELA_EUNSUP when no device or a compute
 * capability below 8.0 (BF16 tensor cores); VELA_EDEVICE with the CUDA message on any runtime
 * failure (including running out of device memory). opts may be NULL for the defaults.
 * *out is freed with be_free. */
int be_cuda_new(struct be **out, int device, const struct be_cuda_opts *opts, struct err *e);

/* Number of usable CUDA devices (0 without a driver or GPU; never an error). */
int be_cuda_device_count(void);

/* Makes `--device cuda` (backend/device.h) open this backend. Called once by main(). */
void be_cuda_register_device(void);

#ifdef __cplusplus
}
#endif

#endif
