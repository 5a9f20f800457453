/* cuda_probe: finds NVIDIA GPUs and checks that the CUDA runtime and cuBLASLt work there.
 * Plain C interface; CUDA types stay inside backend/cuda/. Any thread. */
#ifndef VELA_BACKEND_CUDA_CUDA_PROBE_H
#define VELA_BACKEND_CUDA_CUDA_PROBE_H

#include "util/err.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct cuda_device_info {
    int index;
    char name[256];
    int cc_major, cc_minor; /* compute capability */
    size_t total_bytes, free_bytes;
    int n_sms;
};

/* Number of usable devices (0 when no driver or no GPU: that is not an error). */
int cuda_probe_count(void);
/* Fills info for device idx and creates/destroys a cuBLASLt handle on it to prove the
 * library loads. Device faults are returned as VELA_EDEVICE with the CUDA message. */
int cuda_probe_device(int idx, struct cuda_device_info *info, struct err *e);

#ifdef __cplusplus
}
#endif

#endif
