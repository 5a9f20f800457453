/* cuda_fixture.h: what the CUDA tests (test_cuda_*.c) share: the two backends under test
 * (g_gpu, and g_cpu on its FP32 path as the reference), a seeded pseudo-random source, a list
 * of buffers freed together, a host-filled tensor viewed as its first columns, and reading a
 * tensor back as F32. Header-only (static inline: each test uses what it needs), included
 * after t.h, inside the test's VELA_HAVE_CUDA section. */
#ifndef VELA_TESTS_CUDA_FIXTURE_H
#define VELA_TESTS_CUDA_FIXTURE_H

#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"
#include "backend/cuda/backend_cuda.h"
#include "t.h"
#include "util/bf16.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CF_MAX_BUFS 64

static uint32_t g_rng; /* each test seeds it in main */
static struct be *g_cpu, *g_gpu;
static struct be_buffer *g_bufs[CF_MAX_BUFS];
static int g_nbufs;

static inline float frand(void) { /* uniform in [-2, 2) */
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)((g_rng >> 8) & 0xffffff) / 4194304.0f - 2.0f;
}

static inline uint32_t urand(uint32_t n) {
    g_rng = g_rng * 1664525u + 1013904223u;
    return (g_rng >> 8) % n;
}

static inline void free_bufs(void) {
    for (int i = 0; i < g_nbufs; i++) be_buffer_free(g_bufs[i]);
    g_nbufs = 0;
}

/* A [rows x (cols + pad)] tensor of b holding host (F32 values, converted for a BF16 dt, or
 * I32 ids), in *full when full is not NULL; returns its first cols columns (pad > 0: a
 * strided column view). Its buffer joins the list free_bufs frees. */
static inline struct tensor mk_view(struct be *b, enum be_dtype dt, int64_t rows, int64_t cols,
                                    int64_t pad, const void *host, struct tensor *full) {
    struct err e = {0};
    struct tensor t = {0}, v = {0};
    int64_t w = cols + pad, shape[2] = {rows, w};
    size_t n = (size_t)(rows * w), es = be_dtype_size(dt);
    struct be_buffer *buf = NULL;
    if (g_nbufs == CF_MAX_BUFS) {
        T_OK(!"cuda_fixture: too many buffers; call free_bufs()");
        return v;
    }
    T_RC(be_buffer_new(b, BE_BUF_COMPUTE, n * es, &buf, &e), &e);
    if (!buf) return v;
    g_bufs[g_nbufs++] = buf;
    T_RC(be_tensor_init(&t, buf, 0, dt, 2, shape, &e), &e);
    void *h = malloc(n * es);
    for (size_t i = 0; h && i < n; i++) {
        if (dt == BE_BF16)
            ((uint16_t *)h)[i] = f32_to_bf16(((const float *)host)[i]);
        else /* F32 or I32: the 4 bytes as they are */
            memcpy((char *)h + i * 4, (const char *)host + i * 4, 4);
    }
    if (h) T_RC(be_tensor_write(b, &t, h, n * es, &e), &e);
    free(h);
    if (full) *full = t;
    T_RC(be_tensor_cols_view(&v, &t, 0, cols, &e), &e);
    return v;
}

/* All of t (packed) as F32; the caller frees. */
static inline float *rd(struct be *b, const struct tensor *t) {
    struct err e = {0};
    size_t n = (size_t)be_tensor_nelems(t);
    void *h = malloc(n * 4);
    float *out = malloc(n * 4);
    T_RC(be_tensor_read(b, t, h, n * be_dtype_size(t->dtype), &e), &e);
    for (size_t i = 0; i < n; i++)
        out[i] = t->dtype == BE_BF16 ? bf16_to_f32(((uint16_t *)h)[i]) : ((float *)h)[i];
    free(h);
    return out;
}

/* Opens g_gpu (device 0) and g_cpu (cpu_threads threads, AVX2 or portable: the FP32 path).
 * 77 after printing the skip line where no CUDA device exists; 0 when both are open. */
static inline int cf_open(int cpu_threads) {
    struct err e = {0};
    if (be_cuda_device_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    int rc = be_cuda_new(&g_gpu, 0, NULL, &e);
    T_RC(rc, &e);
    struct be_cpu_opts o = be_cpu_opts_default(cpu_threads);
    o.isa = cpu_isa_supported(CPU_ISA_AVX2) ? CPU_ISA_AVX2 : CPU_ISA_PORTABLE;
    if (rc == 0) rc = be_cpu_new_opts(&g_cpu, &o, &e);
    T_RC(rc, &e);
    return rc;
}

static inline void cf_close(void) {
    free_bufs();
    be_free(g_cpu);
    be_free(g_gpu);
    g_cpu = g_gpu = NULL;
}

#endif
