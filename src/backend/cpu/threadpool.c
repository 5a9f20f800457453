/* threadpool: a generation counter hands each job to spinning-then-sleeping workers.
 *
 * Invariants:
 *   1. fn and ctx are written by the owner before the release increment of gen, and read by
 *      a worker only after it observes the new gen (acquire), so a worker never sees a torn
 *      job;
 *   2. n_done counts workers that returned from the current job; it is reset before gen
 *      moves, and tp_run returns only when it reaches n - 1, so no worker still runs the old
 *      job when the next one is posted;
 *   3. a sleeping worker re-checks gen under mu, and tp_run broadcasts under mu after moving
 *      gen, so a wake-up is never lost.
 * States of a worker: spinning --(gen moved)--> running --(fn returned)--> spinning
 *                     spinning --(TP_SPIN_NS idle)--> sleeping --(broadcast)--> running
 * Threads: the owner calls tp_run / tp_free; workers only run fn. */
#include "backend/cpu/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

/* How long an idle worker spins before sleeping: the gap between two ops of one forward
 * pass is microseconds, and a futex wake-up costs tens of them; an idle server should not
 * burn a core for longer than this. */
#define TP_SPIN_NS 2000000LL
/* Pauses between sched_yield calls while spinning (~10 us): cheap when the core is ours,
 * and it hands the core over quickly when more threads than cores are runnable. */
#define TP_SPINS_PER_YIELD 64

struct tp_worker {
    struct tp *p;
    int idx;
};

struct tp {
    int n; /* threads including the caller */
    pthread_t *threads;
    struct tp_worker *workers;
    int n_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic uint64_t gen;
    _Atomic int n_done;
    _Atomic bool stop;
    tp_fn fn;
    void *ctx;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Waits until gen differs from seen: spins, then sleeps. Returns the new gen. */
static uint64_t worker_wait(struct tp *p, uint64_t seen) {
    int64_t t0 = now_ns();
    for (unsigned spins = 1;; spins++) {
        uint64_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen) return g;
        cpu_relax();
        if (spins % TP_SPINS_PER_YIELD == 0) {
            if (now_ns() - t0 > TP_SPIN_NS) break;
            sched_yield(); /* on a busy host, let the thread we wait for run */
        }
    }
    pthread_mutex_lock(&p->mu);
    uint64_t g;
    while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *arg) {
    struct tp_worker *w = arg;
    struct tp *p = w->p;
    uint64_t seen = 0;
    for (;;) {
        seen = worker_wait(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) return NULL;
        p->fn(p->ctx, w->idx, p->n);
        atomic_fetch_add_explicit(&p->n_done, 1, memory_order_release);
    }
}

/* Moves gen (invariant 1) and wakes sleepers (invariant 3). */
static void post(struct tp *p) {
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void tp_free(struct tp *p) {
    if (!p) return;
    atomic_store_explicit(&p->stop, true, memory_order_release);
    post(p);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p->workers);
    free(p);
}

int tp_new(struct tp **out, int n_threads, struct err *e) {
    if (n_threads < 1 || n_threads > TP_MAX_THREADS)
        return err_set(e, VELA_EINVAL, "thread pool: %d threads (1..%d allowed)", n_threads,
                       TP_MAX_THREADS);
    struct tp *p = calloc(1, sizeof *p);
    if (!p) return err_set(e, VELA_ENOMEM, "thread pool: out of memory");
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    p->workers = calloc((size_t)n_threads, sizeof *p->workers);
    if (!p->threads || !p->workers) {
        tp_free(p);
        return err_set(e, VELA_ENOMEM, "thread pool: out of memory");
    }
    for (int i = 1; i < n_threads; i++) {
        p->workers[i] = (struct tp_worker){.p = p, .idx = i};
        if (pthread_create(&p->threads[p->n_started], NULL, worker_main, &p->workers[i]) != 0) {
            tp_free(p);
            return err_set(e, VELA_ENOMEM, "thread pool: cannot start thread %d of %d", i,
                           n_threads);
        }
        p->n_started++;
    }
    *out = p;
    return 0;
}

int tp_size(const struct tp *p) {
    return p->n;
}

void tp_run(struct tp *p, tp_fn fn, void *ctx) {
    if (p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->n_done, 0, memory_order_relaxed);
    post(p);
    fn(ctx, 0, p->n);
    for (unsigned spins = 1; atomic_load_explicit(&p->n_done, memory_order_acquire) != p->n - 1;
         spins++) {
        cpu_relax();
        /* A worker descheduled on an oversubscribed host: give it our core. */
        if (spins % TP_SPINS_PER_YIELD == 0) sched_yield();
    }
}

void tp_partition(int64_t n, int64_t align, int i, int n_threads, int64_t *begin, int64_t *end) {
    if (align < 1) align = 1;
    int64_t blocks = (n + align - 1) / align;
    int64_t per = blocks / n_threads, rem = blocks % n_threads;
    /* The last threads take the extra blocks: the final block may be partial, so this keeps
     * shares within one block of each other in elements, not just in blocks. */
    int64_t first_extra = n_threads - rem;
    int64_t b0 = (int64_t)i * per + (i > first_extra ? i - first_extra : 0);
    int64_t b1 = b0 + per + (i >= first_extra ? 1 : 0);
    *begin = b0 * align < n ? b0 * align : n;
    *end = b1 * align < n ? b1 * align : n;
}
