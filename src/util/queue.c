/* queue: MPSC FIFO under one mutex, with a condition variable for blocking consumers and an
 * eventfd (or pipe) for polling ones.
 *
 * Invariants (under q->mu):
 *   1. head == NULL <=> tail == NULL <=> n == 0.
 *   2. signalled <=> the fd holds one unread wakeup. It is written on the empty -> non-empty
 *      transition (and on close) and drained by queue_take, both under the lock, so the fd is
 *      readable exactly while nodes are queued (or the queue is closed): a poller never sleeps
 *      on a non-empty queue and never spins on an empty one.
 * The fd is non-blocking: a write or read under the lock never waits.
 * Threads: see queue.h. */
#include "util/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/eventfd.h>
#define QUEUE_HAVE_EVENTFD 1
#endif

static int open_fds(struct queue *q, struct err *e) {
#ifdef QUEUE_HAVE_EVENTFD
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd >= 0) {
        q->fd_read = q->fd_write = fd;
        return 0;
    }
#endif
    int p[2];
    if (pipe(p) != 0)
        return err_set(e, VELA_EIO, "queue: cannot create a wakeup fd: %s", strerror(errno));
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(p[i], F_GETFL);
        if (fl >= 0) fcntl(p[i], F_SETFL, fl | O_NONBLOCK);
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
    }
    q->fd_read = p[0], q->fd_write = p[1];
    return 0;
}

int queue_init(struct queue *q, struct err *e) {
    memset(q, 0, sizeof *q);
    q->fd_read = q->fd_write = -1;
    if (pthread_mutex_init(&q->mu, NULL) != 0)
        return err_set(e, VELA_ENOMEM, "queue: cannot create a mutex");
    pthread_condattr_t ca;
    int ok = pthread_condattr_init(&ca) == 0;
    /* a monotonic clock for timed waits: wall-clock jumps must not stretch a timeout */
    if (ok) pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (!ok || pthread_cond_init(&q->cv, &ca) != 0) {
        if (ok) pthread_condattr_destroy(&ca);
        pthread_mutex_destroy(&q->mu);
        return err_set(e, VELA_ENOMEM, "queue: cannot create a condition variable");
    }
    pthread_condattr_destroy(&ca);
    int rc = open_fds(q, e);
    if (rc != 0) {
        pthread_cond_destroy(&q->cv);
        pthread_mutex_destroy(&q->mu);
    }
    return rc;
}

struct queue_node *queue_deinit(struct queue *q) {
    struct queue_node *left = q->head;
    if (q->fd_read >= 0) close(q->fd_read);
    if (q->fd_write >= 0 && q->fd_write != q->fd_read) close(q->fd_write);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    q->head = q->tail = NULL;
    q->fd_read = q->fd_write = -1;
    return left;
}

/* Under the lock: make the fd readable once. */
static void fd_signal(struct queue *q) {
    if (q->signalled) return;
    uint64_t one = 1;
    ssize_t w = q->fd_read == q->fd_write ? write(q->fd_write, &one, sizeof one)
                                          : write(q->fd_write, "x", 1);
    q->signalled = w > 0;
}

/* Under the lock: drain the wakeup (the fd is non-blocking; an empty read is harmless). */
static void fd_drain(struct queue *q) {
    if (!q->signalled) return;
    uint64_t v;
    ssize_t r = read(q->fd_read, &v, q->fd_read == q->fd_write ? sizeof v : 1);
    (void)r;
    q->signalled = false;
}

bool queue_push(struct queue *q, struct queue_node *node) {
    node->next = NULL;
    pthread_mutex_lock(&q->mu);
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        return false;
    }
    if (q->tail)
        q->tail->next = node;
    else
        q->head = node;
    q->tail = node;
    q->n++;
    fd_signal(q);
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return true;
}

/* Under the lock. */
static struct queue_node *take_locked(struct queue *q) {
    struct queue_node *h = q->head;
    q->head = q->tail = NULL;
    q->n = 0;
    if (!q->closed) fd_drain(q); /* a closed queue stays readable: pollers see the close */
    return h;
}

struct queue_node *queue_take(struct queue *q) {
    pthread_mutex_lock(&q->mu);
    struct queue_node *h = take_locked(q);
    pthread_mutex_unlock(&q->mu);
    return h;
}

struct queue_node *queue_wait(struct queue *q, int64_t timeout_ms) {
    pthread_mutex_lock(&q->mu);
    if (timeout_ms < 0) {
        while (!q->head && !q->closed) pthread_cond_wait(&q->cv, &q->mu);
    } else {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)(timeout_ms / 1000);
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        while (!q->head && !q->closed)
            if (pthread_cond_timedwait(&q->cv, &q->mu, &until) == ETIMEDOUT) break;
    }
    struct queue_node *h = take_locked(q);
    pthread_mutex_unlock(&q->mu);
    return h;
}

void queue_close(struct queue *q) {
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    fd_signal(q);
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

int64_t queue_len(struct queue *q) {
    pthread_mutex_lock(&q->mu);
    int64_t n = q->n;
    pthread_mutex_unlock(&q->mu);
    return n;
}

int queue_fd(const struct queue *q) {
    return q->fd_read;
}
