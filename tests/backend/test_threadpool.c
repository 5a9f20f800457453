/* Tests for backend/cpu/threadpool: every index runs exactly once per tp_run, the caller is
 * index 0, jobs never overlap across many back-to-back runs (and after the workers fall
 * asleep), and tp_partition covers [0, n) with aligned, disjoint, balanced slices. */
#include "backend/cpu/threadpool.h"
#include "t.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

struct job {
    _Atomic int hits[8];
    _Atomic int running; /* threads inside fn right now */
    _Atomic int max_running;
    int n_threads_seen;
    pthread_t caller;
    int caller_idx0; /* the caller ran index 0 */
    long sum[8];     /* each thread writes only its own slot */
    long round;
};

static void job_fn(void *arg, int i, int n) {
    struct job *j = arg;
    int now = atomic_fetch_add(&j->running, 1) + 1;
    int prev = atomic_load(&j->max_running);
    while (now > prev && !atomic_compare_exchange_weak(&j->max_running, &prev, now)) {
    }
    atomic_fetch_add(&j->hits[i], 1);
    j->n_threads_seen = n;
    if (i == 0 && pthread_equal(pthread_self(), j->caller)) j->caller_idx0 = 1;
    j->sum[i] += j->round; /* a plain write: a data race here would show under TSan/ASan */
    atomic_fetch_sub(&j->running, 1);
}

static void test_runs(void) {
    for (int nt = 1; nt <= 4; nt++) {
        struct err e = {0};
        struct tp *p = NULL;
        T_RC(tp_new(&p, nt, &e), &e);
        if (!p) continue;
        T_EQ(tp_size(p), nt);
        static struct job j;
        memset(&j, 0, sizeof j);
        j.caller = pthread_self();
        const int rounds = 2000;
        for (int r = 1; r <= rounds; r++) {
            j.round = r;
            tp_run(p, job_fn, &j);
            /* After tp_run returns, every index has run this round exactly once. */
            if (atomic_load(&j.hits[nt - 1]) != r) break;
        }
        int all = 1;
        for (int i = 0; i < nt; i++)
            all &= atomic_load(&j.hits[i]) == rounds && j.sum[i] == (long)rounds * (rounds + 1) / 2;
        T_OK(all);
        T_EQ(atomic_load(&j.hits[nt]), 0);
        T_EQ(j.n_threads_seen, nt);
        T_OK(j.caller_idx0);
        T_OK(atomic_load(&j.max_running) <= nt);
        /* Let the workers fall asleep (spin limit is 2 ms), then run again: no lost wake-up. */
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        tp_run(p, job_fn, &j);
        T_EQ(atomic_load(&j.hits[0]), rounds + 1);
        T_EQ(atomic_load(&j.hits[nt - 1]), rounds + 1);
        tp_free(p);
    }
    struct err e = {0};
    struct tp *p = NULL;
    T_FAILS(tp_new(&p, 0, &e), VELA_EINVAL, &e);
    T_FAILS(tp_new(&p, TP_MAX_THREADS + 1, &e), VELA_EINVAL, &e);
    tp_free(NULL);
}

static void test_partition(void) {
    static const int64_t ns[] = {0, 1, 31, 32, 33, 100, 896, 4864, 151936};
    static const int64_t aligns[] = {1, 16, 32};
    int ok = 1;
    for (size_t a = 0; a < 3; a++)
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
            for (int nt = 1; nt <= 5; nt++) {
                int64_t next = 0, lo = INT64_MAX, hi = 0;
                for (int i = 0; i < nt; i++) {
                    int64_t b, e;
                    tp_partition(ns[k], aligns[a], i, nt, &b, &e);
                    ok &= b == next && e >= b && e <= ns[k]; /* contiguous, in order */
                    ok &= b % aligns[a] == 0 || b == ns[k];  /* aligned starts */
                    next = e;
                    if (e - b < lo) lo = e - b;
                    if (e - b > hi) hi = e - b;
                }
                ok &= next == ns[k];        /* covers everything */
                ok &= hi - lo <= aligns[a]; /* balanced within one block */
            }
    T_OK(ok);
}

int main(void) {
    T_RUN(test_runs);
    T_RUN(test_partition);
    return t_done();
}
