/* device: backend choice by name, with the CUDA backend registered by main (see device.h). */
#include "backend/device.h"

#include "backend/cpu/backend_cpu.h"

#include <stdio.h>
#include <string.h>

static const struct be_device_ops *g_cuda; /* set once at start-up */

void be_device_register_cuda(const struct be_device_ops *ops) {
    g_cuda = ops;
}

int be_device_parse(const char *s, enum be_device_kind *out, struct err *e) {
    static const char *const names[] = {"auto", "cpu", "cuda"};
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, names[i]) == 0) {
            *out = (enum be_device_kind)i;
            return 0;
        }
    return err_set(e, VELA_EINVAL, "--device %s: expected auto, cpu or cuda", s ? s : "(null)");
}

static int cuda_present(void) {
    return g_cuda && g_cuda->count() > 0;
}

enum be_device_kind be_device_resolve(enum be_device_kind k) {
    if (k != BE_DEVICE_AUTO) return k;
    return cuda_present() ? BE_DEVICE_CUDA : BE_DEVICE_CPU;
}

const char *be_device_name(enum be_device_kind k) {
    return k == BE_DEVICE_CUDA ? "cuda" : k == BE_DEVICE_CPU ? "cpu" : "auto";
}

static int need_cuda(struct err *e) {
    if (!g_cuda)
        return err_set(e, VELA_EUNSUP,
                       "--device cuda: this vela was built without the CUDA backend (build "
                       "where nvcc is found, or with -DVELA_CUDA=ON)");
    if (g_cuda->count() <= 0) return err_set(e, VELA_EUNSUP, "--device cuda: no CUDA GPU found");
    return 0;
}

int be_device_check(enum be_device_kind k, struct err *e) {
    return be_device_resolve(k) == BE_DEVICE_CUDA ? need_cuda(e) : 0;
}

int be_device_open(enum be_device_kind k, int n_threads, struct be **out, struct err *e) {
    k = be_device_resolve(k);
    if (k == BE_DEVICE_CPU) return be_cpu_new(out, n_threads, e);
    int rc = need_cuda(e);
    return rc != 0 ? rc : g_cuda->open(out, 0, e);
}

int be_device_mem_info(enum be_device_kind k, size_t *free_bytes, size_t *total_bytes,
                       struct err *e) {
    if (be_device_resolve(k) != BE_DEVICE_CUDA)
        return err_set(e, VELA_EUNSUP, "device memory: the CPU has none of its own");
    int rc = need_cuda(e);
    return rc != 0 ? rc : g_cuda->mem_info(0, free_bytes, total_bytes, e);
}

const char *be_device_describe(const struct be *b, int n_threads, char *buf, size_t cap) {
    if (be_device_of(b) == BE_DEV_CUDA)
        snprintf(buf, cap, "cuda");
    else
        snprintf(buf, cap, "%s, %d threads", cpu_isa_name(be_cpu_isa(b)), n_threads);
    return buf;
}
