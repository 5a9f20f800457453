/* backend_cpu: the CPU backend's constructor and options. Weights buffers borrow host
 * memory (mmapped checkpoints are never copied); ops run on a pool of persistent threads.
 * Threads: as backend.h (one owner thread per struct be). */
#ifndef VELA_BACKEND_CPU_BACKEND_CPU_H
#define VELA_BACKEND_CPU_BACKEND_CPU_H

#include "backend/backend.h"
#include "backend/cpu/cpu_features.h"

#include <stdbool.h>
#include <stddef.h>

/* Default activation scratch: BF16/F32 copies of one chunk of matmul inputs. 8 MiB holds a
 * 512-token prefill chunk at k = 4864 (5 MB as BF16); larger inputs run in several chunks. */
#define BE_CPU_SCRATCH_DEFAULT_BYTES (8u * 1024u * 1024u)

struct be_cpu_opts {
    int n_threads;        /* 1..TP_MAX_THREADS, counting the calling thread */
    enum cpu_isa isa;     /* matmul path; CPU_ISA_AUTO picks the fastest supported */
    bool f32_activations; /* with AUTO: skip paths that round activations to BF16 */
    size_t scratch_bytes; /* 0: BE_CPU_SCRATCH_DEFAULT_BYTES */
};

/* Defaults: auto ISA (BF16 activations allowed), default scratch. */
struct be_cpu_opts be_cpu_opts_default(int n_threads);

/* A CPU backend with explicit options; VELA_EUNSUP when opts->isa needs features this CPU
 * lacks. *out is freed with be_free. */
int be_cpu_new_opts(struct be **out, const struct be_cpu_opts *opts, struct err *e);

/* A CPU backend with default options, except that the environment variable VELA_CPU_ISA
 * (portable | avx2 | avx512 | auto), read here once, forces the matmul path. */
int be_cpu_new(struct be **out, int n_threads, struct err *e);

/* The matmul path in use (never CPU_ISA_AUTO); b must be a CPU backend. */
enum cpu_isa be_cpu_isa(const struct be *b);

#endif
