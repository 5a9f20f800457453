/* threadpool: persistent pthread workers running one parallel-for at a time.
 *
 * tp_run(p, fn, ctx) calls fn(ctx, i, n) once for every i in [0, n), where n = tp_size(p):
 * the caller runs i = 0 itself and worker i runs i, so a job partitions its work statically
 * by thread index (tp_partition). tp_run returns when every call has returned; it allocates
 * nothing. Idle workers spin briefly (the gap between two ops of a forward pass is
 * microseconds) and then sleep on a condition variable.
 * Threads: one owner thread calls tp_run / tp_free; fn runs on every pool thread. */
#ifndef VELA_BACKEND_CPU_THREADPOOL_H
#define VELA_BACKEND_CPU_THREADPOOL_H

#include "util/err.h"

#include <stdint.h>

/* Cap on pool size: far above the cores of any host we run on; bounds a bad flag. */
#define TP_MAX_THREADS 256

typedef void (*tp_fn)(void *ctx, int i_thread, int n_threads);

struct tp;

/* n_threads in [1, TP_MAX_THREADS] counting the caller; *out freed with tp_free. */
int tp_new(struct tp **out, int n_threads, struct err *e);
void tp_free(struct tp *p); /* joins the workers; accepts NULL */
int tp_size(const struct tp *p);
void tp_run(struct tp *p, tp_fn fn, void *ctx);

/* Thread i's share [*begin, *end) of [0, n) in contiguous blocks whose starts are multiples
 * of align (so neighbours never write the same cache line of an aligned output). Shares
 * differ by at most one block; some may be empty. */
void tp_partition(int64_t n, int64_t align, int i, int n_threads, int64_t *begin, int64_t *end);

#endif
