/* Tests for util/queue.c: FIFO order, the fd readable exactly while nodes are queued, timed
 * and blocking waits, close waking a waiter, and 4 producer threads x 20,000 nodes into one
 * consumer with nothing lost, duplicated or reordered within a producer. */
#include "util/queue.h"
#include "t.h"

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

struct item {
    struct queue_node node; /* first member */
    int producer;
    int seq;
};

static bool fd_ready(const struct queue *q) {
    struct pollfd p = {.fd = queue_fd(q), .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void test_fifo_and_fd(void) {
    struct queue q;
    struct err e = {0};
    T_RC(queue_init(&q, &e), &e);
    T_OK(queue_fd(&q) >= 0);
    T_OK(!fd_ready(&q));
    T_OK(queue_take(&q) == NULL);
    struct item it[5];
    for (int i = 0; i < 5; i++) {
        it[i].seq = i;
        T_OK(queue_push(&q, &it[i].node));
    }
    T_EQ(queue_len(&q), 5);
    T_OK(fd_ready(&q));
    int n = 0, in_order = 1;
    for (struct queue_node *p = queue_take(&q); p; p = p->next, n++)
        in_order &= ((struct item *)(void *)p)->seq == n;
    T_EQ(n, 5);
    T_OK(in_order);
    T_OK(!fd_ready(&q)); /* drained with the take */
    T_EQ(queue_len(&q), 0);
    /* pushes after a take make it readable again */
    T_OK(queue_push(&q, &it[0].node));
    T_OK(fd_ready(&q));
    T_OK(queue_push(&q, &it[1].node));
    T_OK(queue_take(&q) == &it[0].node);
    T_OK(it[0].node.next == &it[1].node && it[1].node.next == NULL);
    T_OK(queue_deinit(&q) == NULL);
}

static void test_timed_wait(void) {
    struct queue q;
    struct err e = {0};
    T_RC(queue_init(&q, &e), &e);
    double t0 = now_ms();
    T_OK(queue_wait(&q, 50) == NULL);
    double dt = now_ms() - t0;
    T_CHECK_(dt >= 45, "timed wait returned after %.1f ms, expected >= 50", dt);
    struct item a;
    T_OK(queue_push(&q, &a.node));
    T_OK(queue_wait(&q, 1000) == &a.node); /* non-empty: no waiting */
    T_OK(queue_wait(&q, 0) == NULL);
    queue_deinit(&q);
}

static void *closer(void *arg) {
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    queue_close(arg);
    return NULL;
}

static void test_close_wakes(void) {
    struct queue q;
    struct err e = {0};
    T_RC(queue_init(&q, &e), &e);
    pthread_t th;
    T_EQ(pthread_create(&th, NULL, closer, &q), 0);
    T_OK(queue_wait(&q, -1) == NULL); /* returns because of the close */
    pthread_join(th, NULL);
    struct item a;
    T_OK(!queue_push(&q, &a.node)); /* refused after close; still the caller's */
    T_OK(fd_ready(&q));             /* a closed queue stays readable for pollers */
    T_OK(queue_deinit(&q) == NULL);
}

/* Leftover nodes come back from deinit. */
static void test_deinit_leftovers(void) {
    struct queue q;
    struct err e = {0};
    T_RC(queue_init(&q, &e), &e);
    struct item a, b;
    queue_push(&q, &a.node);
    queue_push(&q, &b.node);
    struct queue_node *left = queue_deinit(&q);
    T_OK(left == &a.node && left->next == &b.node);
}

#define N_PROD 4
#define N_EACH 20000

struct prod {
    struct queue *q;
    int id;
    struct item *items;
};

static void *producer(void *arg) {
    struct prod *p = arg;
    for (int i = 0; i < N_EACH; i++) {
        p->items[i].producer = p->id;
        p->items[i].seq = i;
        queue_push(p->q, &p->items[i].node);
    }
    return NULL;
}

static void test_many_producers(void) {
    struct queue q;
    struct err e = {0};
    T_RC(queue_init(&q, &e), &e);
    struct item *items = calloc((size_t)N_PROD * N_EACH, sizeof *items);
    struct prod pr[N_PROD];
    pthread_t th[N_PROD];
    for (int i = 0; i < N_PROD; i++) {
        pr[i] = (struct prod){.q = &q, .id = i, .items = items + (size_t)i * N_EACH};
        pthread_create(&th[i], NULL, producer, &pr[i]);
    }
    int next[N_PROD] = {0}, got = 0, bad = 0;
    /* alternate the two consumer styles: blocking waits and fd polling */
    for (int round = 0; got < N_PROD * N_EACH && round < 10000000; round++) {
        struct queue_node *n = NULL;
        if (round & 1) {
            n = queue_wait(&q, 1000);
        } else {
            struct pollfd p = {.fd = queue_fd(&q), .events = POLLIN};
            if (poll(&p, 1, 1000) == 1) n = queue_take(&q);
        }
        for (; n; n = n->next, got++) {
            struct item *it = (struct item *)(void *)n;
            bad += it->seq != next[it->producer];
            next[it->producer] = it->seq + 1;
        }
    }
    for (int i = 0; i < N_PROD; i++) pthread_join(th[i], NULL);
    T_EQ(got, N_PROD * N_EACH);
    T_EQ(bad, 0);
    T_OK(!fd_ready(&q));
    T_OK(queue_deinit(&q) == NULL);
    free(items);
}

int main(void) {
    T_RUN(test_fifo_and_fd);
    T_RUN(test_timed_wait);
    T_RUN(test_close_wakes);
    T_RUN(test_deinit_leftovers);
    T_RUN(test_many_producers);
    return t_done();
}
