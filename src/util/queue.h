/* queue: a multi-producer, single-consumer FIFO of intrusive nodes, the one structure threads
 * share (the engine's inbox of requests and aborts; its outbox of token events).
 *
 * One mutex and one condition variable guard the list; an eventfd (a pipe where eventfd is
 * missing) is readable exactly while the queue holds nodes, so an event loop can poll it next
 * to its sockets. A consumer either blocks in queue_wait (the engine thread) or polls the fd
 * and calls queue_take (the server thread). Nothing is allocated: callers embed a struct
 * queue_node in their message and own it until queue_push, after which the consumer owns it
 * once queue_take returned it.
 *
 * Threads: queue_push and queue_close from any thread; queue_take, queue_wait from the one
 * consumer (several are safe, but then the order of delivery between them is unspecified). */
#ifndef VELA_UTIL_QUEUE_H
#define VELA_UTIL_QUEUE_H

#include "util/err.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct queue_node {
    struct queue_node *next; /* set by the queue; NULL at the end of a taken chain */
};

struct queue {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled on push and on close */
    struct queue_node *head, *tail;
    int64_t n;      /* nodes queued */
    bool closed;    /* queue_close called: pushes fail, waits return at once */
    bool signalled; /* the fd currently holds a wakeup (written once per empty->non-empty) */
    int fd_read;    /* eventfd (== fd_write) or the pipe's read end */
    int fd_write;
};

/* Sets up the lock, the condition variable and the wakeup fd. Returns 0, VELA_EIO (no fd) or
 * VELA_ENOMEM; on failure nothing needs freeing. */
int queue_init(struct queue *q, struct err *e);
/* Releases the lock, condvar and fds. Nodes still queued are NOT freed (take them first):
 * returns the chain of leftovers so the owner can free them. */
struct queue_node *queue_deinit(struct queue *q);

/* Appends node (ownership moves to the queue) and wakes the consumer. Returns false, leaving
 * the node to the caller, when the queue is closed. */
bool queue_push(struct queue *q, struct queue_node *node);
/* Removes every queued node without blocking and returns them as a FIFO chain (NULL when
 * empty); clears the fd's readiness. The caller owns the nodes. */
struct queue_node *queue_take(struct queue *q);
/* Blocks until the queue is non-empty, closed, or timeout_ms passes (< 0: no timeout), then
 * takes as queue_take. */
struct queue_node *queue_wait(struct queue *q, int64_t timeout_ms);
/* Wakes a blocked queue_wait without queuing anything (shutdown). Later pushes fail. */
void queue_close(struct queue *q);
/* Nodes queued now (a snapshot). */
int64_t queue_len(struct queue *q);
/* The fd to poll for readability (POLLIN while nodes are queued). */
int queue_fd(const struct queue *q);

#endif
