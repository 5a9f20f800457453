/* sched_impl: the scheduler's state, shared by sched.c (admission, aborts, step planning),
 * sched_update.c (results, stops, forks, block caching) and sched_check.c (invariants,
 * stats). Not for use outside src/engine/sched*.c. Thread: the engine thread only. */
#ifndef VELA_ENGINE_SCHED_IMPL_H
#define VELA_ENGINE_SCHED_IMPL_H

#include "engine/block_pool.h"
#include "engine/encoder_cache.h"
#include "engine/request.h"
#include "engine/sched.h"

struct req_list {
    struct request *head, *tail; /* linked through request.prev/next */
    int32_t n;
};

struct sched {
    struct sched_config cfg;
    struct block_pool bp;
    struct encoder_cache ec;
    struct request **running; /* (cfg.max_num_seqs) admission order: newest last */
    int32_t n_running;
    struct req_list waiting;  /* FCFS; preempted requests return to the front */
    struct req_list finished; /* finished or aborted, reported and freed at the next step */
    int32_t n_images_live;    /* images of running + waiting requests (bounds encode lists) */
    int32_t n_abort_pending;
    int64_t n_preemptions;
};

void sched_list_push_back(struct req_list *l, struct request *r);
void sched_list_push_front(struct req_list *l, struct request *r);
void sched_list_remove(struct req_list *l, struct request *r);

/* Keys of r's first n full blocks (computed lazily into r->hashes). */
void sched_ensure_hashes(struct sched *s, struct request *r, int32_t n);
/* Frees r's blocks (deepest evicted first) and encoder references. */
void sched_release(struct sched *s, struct request *r);
/* Moves r (already out of the queues) to the finished list with the given reason. */
void sched_retire(struct sched *s, struct request *r, enum req_finish why);

#endif
