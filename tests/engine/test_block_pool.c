/* Tests for engine/block_pool.c: allocation, sharing, lazy LRU eviction, image-keyed hashes,
 * forced hash collisions, double frees, and a long random run against a simple model of the
 * pool. bp_check runs after every operation. */
#include "engine/block_pool.h"
#include "engine/hash.h"
#include "t.h"

#include <stdint.h>

#define BS 4

#define CHECK_POOL(bp)                                                                             \
    do {                                                                                           \
        struct err ce_ = {0};                                                                      \
        T_CHECK_(bp_check_ex((bp), &ce_) == 0, "bp_check: %s", ce_.msg);                           \
    } while (0)

/* Block content number c: tokens c*100 + i. */
static void content(int32_t c, int32_t *tok) {
    for (int32_t i = 0; i < BS; i++) tok[i] = c * 100 + i;
}

static void cache_as(struct block_pool *bp, int32_t id, int32_t c, uint64_t extra) {
    int32_t tok[BS];
    content(c, tok);
    bp_cache(bp, id, bp_hash(bp, 0, tok, extra), 0, tok, extra);
}

static int32_t lookup(const struct block_pool *bp, int32_t c, uint64_t extra) {
    int32_t tok[BS];
    content(c, tok);
    return bp_lookup(bp, bp_hash(bp, 0, tok, extra), 0, tok, extra);
}

static void test_init_limits(void) {
    struct block_pool bp;
    struct err e = {0};
    T_FAILS(bp_init(&bp, 0, 16, true, &e), VELA_EINVAL, &e);
    T_FAILS(bp_init(&bp, 4, 0, true, &e), VELA_EINVAL, &e);
    T_FAILS(bp_init(&bp, 4, 100000, true, &e), VELA_EINVAL, &e);
    bp_deinit(&bp);
    bp_deinit(NULL);
}

static void test_alloc_free(void) {
    struct block_pool bp;
    struct err e = {0};
    T_RC(bp_init(&bp, 8, BS, true, &e), &e);
    CHECK_POOL(&bp);
    int32_t ids[8];
    T_OK(bp_alloc(&bp, 3, ids));
    T_EQ(ids[0], 0);
    T_EQ(ids[1], 1);
    T_EQ(ids[2], 2);
    T_EQ(bp_n_free(&bp), 5);
    CHECK_POOL(&bp);
    T_OK(!bp_alloc(&bp, 6, ids + 3)); /* more than free: nothing changes */
    T_EQ(bp_n_free(&bp), 5);
    CHECK_POOL(&bp);
    T_EQ(bp_free(&bp, ids, 3), 0);
    T_EQ(bp_n_free(&bp), 8);
    CHECK_POOL(&bp);
    /* double free and out-of-range ids are refused without a change */
    T_EQ(bp_free(&bp, ids, 1), VELA_EINTERNAL);
    int32_t bad = 99;
    T_EQ(bp_free(&bp, &bad, 1), VELA_EINTERNAL);
    T_OK(bp_alloc(&bp, 2, ids));
    int32_t twice[2] = {ids[0], ids[0]};
    T_EQ(bp_free(&bp, twice, 2), VELA_EINTERNAL); /* held once, freed twice */
    T_EQ(bp_ref_of(&bp, ids[0]), 1);
    CHECK_POOL(&bp);
    T_EQ(bp_free(&bp, ids, 2), 0);
    T_OK(bp_alloc(&bp, 0, ids));
    CHECK_POOL(&bp);
    bp_deinit(&bp);
}

static void test_sharing(void) {
    struct block_pool bp;
    struct err e = {0};
    T_RC(bp_init(&bp, 4, BS, true, &e), &e);
    int32_t a;
    T_OK(bp_alloc(&bp, 1, &a));
    cache_as(&bp, a, 7, 0);
    CHECK_POOL(&bp);
    T_EQ(lookup(&bp, 7, 0), a);
    T_EQ(lookup(&bp, 8, 0), -1);
    bp_ref(&bp, a); /* a second request shares it */
    T_EQ(bp_ref_of(&bp, a), 2);
    CHECK_POOL(&bp);
    T_EQ(bp_free(&bp, &a, 1), 0);
    T_EQ(bp_ref_of(&bp, a), 1);
    T_EQ(bp_n_free(&bp), 3);
    CHECK_POOL(&bp);
    T_EQ(bp_free(&bp, &a, 1), 0);
    T_EQ(bp_n_free(&bp), 4);
    T_EQ(lookup(&bp, 7, 0), a); /* survives the free */
    bp_ref(&bp, a);             /* revived from the free queue */
    T_EQ(bp_n_free(&bp), 3);
    CHECK_POOL(&bp);
    T_EQ(bp_free(&bp, &a, 1), 0);
    bp_deinit(&bp);
}

static void test_lru_eviction(void) {
    struct block_pool bp;
    struct err e = {0};
    T_RC(bp_init(&bp, 4, BS, true, &e), &e);
    int32_t ids[4], got[4];
    T_OK(bp_alloc(&bp, 4, ids));
    for (int32_t i = 0; i < 4; i++) cache_as(&bp, ids[i], 10 + i, 0);
    T_EQ(bp.n_cached, 4);
    /* A request's blocks: the deepest (ids[3]) must be evicted first. */
    T_EQ(bp_free(&bp, ids, 4), 0);
    CHECK_POOL(&bp);
    T_OK(bp_alloc(&bp, 1, got));
    T_EQ(got[0], ids[3]);
    T_EQ(lookup(&bp, 13, 0), -1); /* its key left with it */
    T_EQ(lookup(&bp, 10, 0), ids[0]);
    T_EQ(bp.n_cached, 3);
    CHECK_POOL(&bp);
    /* A hit takes a block from the middle of the queue; the order of the rest holds. */
    bp_ref(&bp, ids[1]);
    CHECK_POOL(&bp);
    T_OK(bp_alloc(&bp, 2, got + 1));
    T_EQ(got[1], ids[2]);
    T_EQ(got[2], ids[0]);
    T_EQ(bp_n_free(&bp), 0);
    T_EQ(lookup(&bp, 11, 0), ids[1]);
    T_EQ(lookup(&bp, 12, 0), -1);
    CHECK_POOL(&bp);
    /* Freed later = evicted later: free ids[1] first, then the others. */
    T_EQ(bp_free(&bp, &ids[1], 1), 0);
    T_EQ(bp_free(&bp, got, 3), 0);
    T_OK(bp_alloc(&bp, 1, got));
    T_EQ(got[0], ids[1]);
    T_EQ(bp_free(&bp, got, 1), 0);
    CHECK_POOL(&bp);
    bp_deinit(&bp);
}

static void test_image_keys(void) {
    struct block_pool bp;
    struct err e = {0};
    T_RC(bp_init(&bp, 4, BS, true, &e), &e);
    int32_t a;
    T_OK(bp_alloc(&bp, 1, &a));
    uint64_t img1 = hash_bytes(1, "cat.png", 7), img2 = hash_bytes(1, "dog.png", 7);
    cache_as(&bp, a, 5, img1);
    T_EQ(lookup(&bp, 5, img1), a);
    T_EQ(lookup(&bp, 5, img2), -1); /* same placeholder tokens, another image: no hit */
    T_EQ(lookup(&bp, 5, 0), -1);
    /* Even when the key function ignores the image, the stored image key is compared. */
    T_OK(bp_hash(&bp, 0, (int32_t[BS]){500, 501, 502, 503}, img1) !=
         bp_hash(&bp, 0, (int32_t[BS]){500, 501, 502, 503}, img2));
    T_EQ(bp_free(&bp, &a, 1), 0);
    CHECK_POOL(&bp);
    bp_deinit(&bp);
}

static uint64_t const_hash(uint64_t parent, const int32_t *tokens, int32_t n, uint64_t extra) {
    (void)parent, (void)tokens, (void)n, (void)extra;
    return 42;
}

static void test_forced_collision(void) {
    struct block_pool bp;
    struct err e = {0};
    T_RC(bp_init(&bp, 4, BS, true, &e), &e);
    bp.hash_fn = const_hash; /* every block has the same key */
    int32_t ids[2];
    T_OK(bp_alloc(&bp, 2, ids));
    cache_as(&bp, ids[0], 1, 0);
    cache_as(&bp, ids[1], 2, 0);
    CHECK_POOL(&bp);
    T_EQ(lookup(&bp, 1, 0), ids[0]);
    T_EQ(lookup(&bp, 2, 0), ids[1]);
    T_EQ(lookup(&bp, 3, 0), -1); /* same key, other tokens: no wrong hit */
    T_EQ(lookup(&bp, 1, 9), -1); /* same key and tokens, other image */
    int32_t tok[BS];
    content(1, tok);
    T_EQ(bp_lookup(&bp, 42, 77, tok, 0), -1); /* other parent */
    T_EQ(bp_free(&bp, ids, 2), 0);
    T_OK(bp_alloc(&bp, 4, (int32_t[4]){0}));
    T_EQ(bp.n_cached, 0);
    CHECK_POOL(&bp);
    bp_deinit(&bp);
}

static void test_caching_off(void) {
    struct block_pool bp;
    struct err e = {0};
    T_RC(bp_init(&bp, 2, BS, false, &e), &e);
    int32_t a;
    T_OK(bp_alloc(&bp, 1, &a));
    cache_as(&bp, a, 1, 0);
    T_EQ(bp.n_cached, 0);
    T_EQ(lookup(&bp, 1, 0), -1);
    T_EQ(bp_free(&bp, &a, 1), 0);
    CHECK_POOL(&bp);
    bp_deinit(&bp);
}

/* ---- random operations against a model: refcounts, LRU order, cached contents ---- */

#define NB 48
#define NC 12 /* distinct contents */

struct model {
    int32_t ref[NB];
    int32_t content[NB]; /* -1 when not cached */
    int32_t queue[NB];   /* free queue, head first */
    int32_t n_queue;
};

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void model_queue_remove(struct model *m, int32_t id) {
    int32_t k = 0;
    for (int32_t i = 0; i < m->n_queue; i++)
        if (m->queue[i] != id) m->queue[k++] = m->queue[i];
    m->n_queue = k;
}

static void test_random_vs_model(void) {
    struct block_pool bp;
    struct err e = {0};
    T_RC(bp_init(&bp, NB, BS, true, &e), &e);
    struct model m;
    for (int32_t i = 0; i < NB; i++) {
        m.ref[i] = 0;
        m.content[i] = -1;
        m.queue[i] = i;
    }
    m.n_queue = NB;
    int32_t held[4 * NB], n_held = 0; /* one entry per reference held */
    uint64_t rs = 0x1234567ull;
    int32_t bad = 0;
    for (int32_t step = 0; step < 20000 && !bad; step++) {
        uint32_t op = (uint32_t)(rng_next(&rs) % 4);
        if (op == 0 && n_held + 4 <= 4 * NB) { /* alloc k */
            int32_t k = (int32_t)(rng_next(&rs) % 4), out[4];
            bool ok = bp_alloc(&bp, k, out);
            bad |= ok != (k <= m.n_queue);
            for (int32_t i = 0; ok && i < k; i++) {
                bad |= out[i] != m.queue[i];
                m.ref[out[i]] = 1;
                m.content[out[i]] = -1;
                held[n_held++] = out[i];
            }
            if (ok) {
                for (int32_t i = k; i < m.n_queue; i++) m.queue[i - k] = m.queue[i];
                m.n_queue -= k;
            }
        } else if (op == 1 && n_held > 0) { /* free one held reference */
            int32_t i = (int32_t)(rng_next(&rs) % (uint64_t)n_held), id = held[i];
            held[i] = held[--n_held];
            bad |= bp_free(&bp, &id, 1) != 0;
            if (--m.ref[id] == 0) m.queue[m.n_queue++] = id;
        } else if (op == 2 && n_held > 0) { /* cache a held block as some content */
            int32_t id = held[rng_next(&rs) % (uint64_t)n_held];
            int32_t c = (int32_t)(rng_next(&rs) % NC);
            cache_as(&bp, id, c, 0);
            if (m.content[id] < 0) m.content[id] = c;
        } else if (op == 3) { /* look up a content and take a reference on a hit */
            int32_t c = (int32_t)(rng_next(&rs) % NC), id = lookup(&bp, c, 0);
            bool any = false;
            for (int32_t i = 0; i < NB; i++) any |= m.content[i] == c;
            bad |= any != (id >= 0);
            if (id >= 0 && n_held < 4 * NB) {
                bad |= m.content[id] != c;
                bp_ref(&bp, id);
                if (m.ref[id]++ == 0) model_queue_remove(&m, id);
                held[n_held++] = id;
            }
        }
        for (int32_t i = 0; i < NB; i++) bad |= bp_ref_of(&bp, i) != m.ref[i];
        bad |= bp_n_free(&bp) != m.n_queue;
        if (bp_check_ex(&bp, &e) != 0) {
            fprintf(stderr, "step %d: %s\n", step, e.msg);
            bad = 1;
        }
        if (bad) fprintf(stderr, "model mismatch at step %d (op %u)\n", step, op);
    }
    T_OK(!bad);
    T_EQ(bp_free(&bp, held, n_held), 0);
    T_EQ(bp_n_free(&bp), NB);
    CHECK_POOL(&bp);
    T_OK(bp.n_cached > 0);
    bp_deinit(&bp);
}

static void test_hash(void) {
    int32_t a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 5};
    T_OK(hash_block(0, a, 4, 0) == hash_block(0, a, 4, 0));
    T_OK(hash_block(0, a, 4, 0) != hash_block(0, b, 4, 0));
    T_OK(hash_block(0, a, 4, 0) != hash_block(1, a, 4, 0));
    T_OK(hash_block(0, a, 4, 0) != hash_block(0, a, 4, 1));
    T_OK(hash_block(0, a, 3, 0) != hash_block(0, a, 4, 0));
    T_OK(hash_bytes(0, "ab", 2) != hash_bytes(0, "ba", 2));
    T_OK(hash_bytes(0, "abcdefghij", 10) != hash_bytes(0, "abcdefghik", 10));
}

int main(void) {
    T_RUN(test_init_limits);
    T_RUN(test_alloc_free);
    T_RUN(test_sharing);
    T_RUN(test_lru_eviction);
    T_RUN(test_image_keys);
    T_RUN(test_forced_collision);
    T_RUN(test_caching_off);
    T_RUN(test_random_vs_model);
    T_RUN(test_hash);
    return t_done();
}
