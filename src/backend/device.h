/* device: which backend a command runs on (`--device auto|cpu|cuda`, as vLLM's --device).
 *
 * The CPU backend is always linked. The CUDA backend lives in a separate library that only
 * builds with the CUDA toolkit link, so velacore cannot call it directly: the binary's main()
 * registers it (be_cuda_register_device in backend_cuda.h) and commands open devices through
 * here. "auto" is CUDA when a CUDA backend is registered and a GPU is present, else the CPU.
 *
 * Registration happens once at start-up, before any thread; afterwards any thread may call. */
#ifndef VELA_BACKEND_DEVICE_H
#define VELA_BACKEND_DEVICE_H

#include "backend/backend.h"
#include "util/err.h"

#include <stddef.h>

enum be_device_kind { BE_DEVICE_AUTO, BE_DEVICE_CPU, BE_DEVICE_CUDA };

/* What a GPU backend library provides. */
struct be_device_ops {
    int (*count)(void); /* usable devices; 0 without a driver or GPU */
    int (*open)(struct be **out, int index, struct err *e);
    /* free and total bytes of device memory as the driver reports them */
    int (*mem_info)(int index, size_t *free_bytes, size_t *total_bytes, struct err *e);
};

/* Registers the CUDA backend (ops borrowed for the process's lifetime). */
void be_device_register_cuda(const struct be_device_ops *ops);

/* "auto", "cpu" or "cuda" -> *out; VELA_EINVAL naming the accepted values otherwise. */
int be_device_parse(const char *s, enum be_device_kind *out, struct err *e);
/* AUTO resolved: CUDA when registered with a device present, else CPU. */
enum be_device_kind be_device_resolve(enum be_device_kind k);
const char *be_device_name(enum be_device_kind k);

/* Opens device 0 of kind k (resolved); n_threads is for the CPU backend. VELA_EUNSUP when
 * CUDA is asked for but this binary was built without it or no GPU is present. */
int be_device_open(enum be_device_kind k, int n_threads, struct be **out, struct err *e);
/* 0 when kind k can be opened here; else the error be_device_open would give (so a command
 * can refuse before spending minutes loading a model). */
int be_device_check(enum be_device_kind k, struct err *e);
/* What b runs on, for a timing line: "cuda", or the CPU's matmul path and threads
 * ("avx512, 2 threads"). Returns buf. */
const char *be_device_describe(const struct be *b, int n_threads, char *buf, size_t cap);
/* Device memory of GPU 0 (k must resolve to CUDA); VELA_EUNSUP for the CPU. */
int be_device_mem_info(enum be_device_kind k, size_t *free_bytes, size_t *total_bytes,
                       struct err *e);

#endif
