/* be_fixture.h: tensors for backend op tests: mk() makes a 2-D compute tensor (rows, cols) of
 * dtype dt filled from F32 values (rounded to BF16 where dt is BF16; NULL leaves it zeroed),
 * get() reads one back as F32, free_bufs() frees every buffer mk() made. Header-only (static),
 * included after t.h by tests/backend/test_*.c. */
#ifndef VELA_TESTS_BE_FIXTURE_H
#define VELA_TESTS_BE_FIXTURE_H

#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"
#include "t.h"
#include "util/bf16.h"

#include <stdint.h>
#include <stdlib.h>

#define BE_FIXTURE_MAX_BUFS 64

static struct be_buffer *g_bufs[BE_FIXTURE_MAX_BUFS];
static int g_nbufs;

static struct tensor mk(struct be *b, enum be_dtype dt, int64_t rows, int64_t cols,
                        const float *v) {
    struct err e = {0};
    struct tensor t = {0};
    size_t n = (size_t)(rows * cols);
    if (g_nbufs == BE_FIXTURE_MAX_BUFS) {
        T_OK(!"be_fixture: too many buffers; call free_bufs()");
        return t;
    }
    struct be_buffer *buf = NULL;
    T_RC(be_buffer_new(b, BE_BUF_COMPUTE, n * be_dtype_size(dt), &buf, &e), &e);
    g_bufs[g_nbufs++] = buf;
    int64_t shape[2] = {rows, cols};
    T_RC(be_tensor_init(&t, buf, 0, dt, 2, shape, &e), &e);
    if (v) {
        void *h = malloc(n * 4);
        for (size_t i = 0; i < n; i++) {
            if (dt == BE_BF16)
                ((uint16_t *)h)[i] = f32_to_bf16(v[i]);
            else
                ((float *)h)[i] = v[i];
        }
        T_RC(be_tensor_write(b, &t, h, n * be_dtype_size(dt), &e), &e);
        free(h);
    }
    return t;
}

static void get(struct be *b, const struct tensor *t, float *out) {
    struct err e = {0};
    size_t n = (size_t)be_tensor_nelems(t);
    void *h = malloc(n * 4);
    T_RC(be_tensor_read(b, t, h, n * be_dtype_size(t->dtype), &e), &e);
    for (size_t i = 0; i < n; i++)
        out[i] = t->dtype == BE_BF16 ? bf16_to_f32(((uint16_t *)h)[i]) : ((float *)h)[i];
    free(h);
}

/* A CPU backend on path isa with n_threads and scratch bytes (0: the default); NULL after a
 * failed check when it cannot be made. */
static inline struct be *mk_cpu(enum cpu_isa isa, int n_threads, size_t scratch) {
    struct err e = {0};
    struct be *b = NULL;
    struct be_cpu_opts o = be_cpu_opts_default(n_threads);
    o.isa = isa;
    o.scratch_bytes = scratch;
    T_RC(be_cpu_new_opts(&b, &o, &e), &e);
    return b;
}

static void free_bufs(void) {
    for (int i = 0; i < g_nbufs; i++) be_buffer_free(g_bufs[i]);
    g_nbufs = 0;
}

#endif
