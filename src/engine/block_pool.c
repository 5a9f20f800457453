/* block_pool: KV block records, reference counts, LRU free queue, prefix-cache hash map.
 *
 * Block states (the function behind each transition):
 *
 *     free, uncached --bp_alloc--> in use --bp_cache--> in use, cached
 *          ^                         |                       |    ^
 *          |                     bp_free (ref 0)        bp_free   | bp_ref (a prefix hit)
 *          |                         v                       v    |
 *          +------ bp_alloc <---- free, uncached      free, cached
 *                  (evicts the key: the block leaves the hash map only when reused)
 *
 * Invariants (bp_check_ex verifies all of them):
 *  1. ref >= 0 for every block; ref == 0 exactly when the block is in the free queue.
 *  2. The free queue is a well-formed circular list through the sentinel, of length n_free.
 *  3. A block is in exactly one hash chain iff cached, namely the chain of its key's bucket;
 *     n_cached counts them. Uncached blocks have hnext == -1.
 *  4. With prefix caching off no block is cached.
 * Reference counts equal the number of requests owning the block; the pool cannot see the
 * requests, so sched_check() verifies that part.
 *
 * Thread: the engine thread only. */
#include "engine/block_pool.h"

#include "engine/hash.h"
#include "util/limits.h"

#include <stdlib.h>
#include <string.h>

static uint32_t bucket_of(const struct block_pool *bp, uint64_t h) {
    return (uint32_t)(h ^ (h >> 32)) & bp->bucket_mask;
}

int bp_init(struct block_pool *bp, int32_t n_blocks, int32_t block_size, bool prefix_caching,
            struct err *e) {
    memset(bp, 0, sizeof *bp);
    if (n_blocks < 1 || n_blocks > VELA_KV_MAX_BLOCKS)
        return err_set(e, VELA_EINVAL, "number of KV blocks %d outside [1, %d]", n_blocks,
                       VELA_KV_MAX_BLOCKS);
    if (block_size < 1 || block_size > VELA_KV_MAX_BLOCK_SIZE)
        return err_set(e, VELA_EINVAL, "block size %d outside [1, %d]", block_size,
                       VELA_KV_MAX_BLOCK_SIZE);
    uint32_t n_buckets = 1;
    while (n_buckets < 2u * (uint32_t)n_blocks) n_buckets <<= 1;
    bp->blocks = calloc((size_t)n_blocks + 1, sizeof *bp->blocks);
    bp->tokens = calloc((size_t)n_blocks * (size_t)block_size, sizeof *bp->tokens);
    bp->buckets = malloc((size_t)n_buckets * sizeof *bp->buckets);
    if (!bp->blocks || !bp->tokens || !bp->buckets) {
        bp_deinit(bp);
        return err_set(e, VELA_ENOMEM, "block pool of %d blocks: out of memory", n_blocks);
    }
    for (uint32_t i = 0; i < n_buckets; i++) bp->buckets[i] = -1;
    bp->n_blocks = n_blocks;
    bp->block_size = block_size;
    bp->prefix_caching = prefix_caching;
    bp->bucket_mask = n_buckets - 1;
    bp->hash_fn = hash_block;
    /* Every block free, in id order: 0 is handed out first. */
    int32_t s = n_blocks;
    for (int32_t i = 0; i <= n_blocks; i++) {
        bp->blocks[i].prev = i == 0 ? s : i - 1;
        bp->blocks[i].next = i == s ? 0 : i + 1;
        bp->blocks[i].hnext = -1;
    }
    bp->n_free = n_blocks;
    return 0;
}

void bp_deinit(struct block_pool *bp) {
    if (!bp) return;
    free(bp->blocks);
    free(bp->tokens);
    free(bp->buckets);
    memset(bp, 0, sizeof *bp);
}

static void queue_remove(struct block_pool *bp, int32_t id) {
    struct bp_block *b = &bp->blocks[id];
    bp->blocks[b->prev].next = b->next;
    bp->blocks[b->next].prev = b->prev;
    b->prev = b->next = -1;
    bp->n_free--;
}

static void queue_push_tail(struct block_pool *bp, int32_t id) {
    int32_t s = bp->n_blocks;
    struct bp_block *b = &bp->blocks[id];
    b->prev = bp->blocks[s].prev;
    b->next = s;
    bp->blocks[b->prev].next = id;
    bp->blocks[s].prev = id;
    bp->n_free++;
}

static void map_remove(struct block_pool *bp, int32_t id) {
    struct bp_block *b = &bp->blocks[id];
    int32_t *link = &bp->buckets[bucket_of(bp, b->hash)];
    while (*link != id) link = &bp->blocks[*link].hnext;
    *link = b->hnext;
    b->hnext = -1;
    b->cached = false;
    bp->n_cached--;
}

bool bp_alloc(struct block_pool *bp, int32_t n, int32_t *out) {
    if (n < 0 || n > bp->n_free) return false;
    for (int32_t i = 0; i < n; i++) {
        int32_t id = bp->blocks[bp->n_blocks].next; /* head: least recently freed */
        queue_remove(bp, id);
        if (bp->blocks[id].cached) map_remove(bp, id); /* lazy eviction */
        bp->blocks[id].ref = 1;
        out[i] = id;
    }
    return true;
}

int bp_free(struct block_pool *bp, const int32_t *ids, int32_t n) {
    /* Drop the references first and undo them all if one would go below zero, so a bad call
     * (a double free, an id repeated more often than it is held) changes nothing. */
    for (int32_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= bp->n_blocks || bp->blocks[id].ref <= 0) {
            while (--i >= 0) bp->blocks[ids[i]].ref++;
            return VELA_EINTERNAL;
        }
        bp->blocks[id].ref--;
    }
    for (int32_t i = n - 1; i >= 0; i--) {
        struct bp_block *b = &bp->blocks[ids[i]];
        if (b->ref == 0 && b->prev < 0) queue_push_tail(bp, ids[i]);
    }
    return 0;
}

uint64_t bp_hash(const struct block_pool *bp, uint64_t parent, const int32_t *tokens,
                 uint64_t extra) {
    return bp->hash_fn(parent, tokens, bp->block_size, extra);
}

int32_t bp_lookup(const struct block_pool *bp, uint64_t hash, uint64_t parent,
                  const int32_t *tokens, uint64_t extra) {
    if (!bp->prefix_caching) return -1;
    size_t bytes = (size_t)bp->block_size * sizeof *tokens;
    for (int32_t id = bp->buckets[bucket_of(bp, hash)]; id >= 0; id = bp->blocks[id].hnext) {
        const struct bp_block *b = &bp->blocks[id];
        /* The key alone may collide: the tokens, the parent and the image key decide. */
        if (b->hash == hash && b->parent == parent && b->extra == extra &&
            memcmp(bp->tokens + (size_t)id * (size_t)bp->block_size, tokens, bytes) == 0)
            return id;
    }
    return -1;
}

void bp_ref(struct block_pool *bp, int32_t id) {
    struct bp_block *b = &bp->blocks[id];
    if (b->ref++ == 0) queue_remove(bp, id);
}

void bp_cache(struct block_pool *bp, int32_t id, uint64_t hash, uint64_t parent,
              const int32_t *tokens, uint64_t extra) {
    struct bp_block *b = &bp->blocks[id];
    if (!bp->prefix_caching || b->cached) return;
    b->hash = hash;
    b->parent = parent;
    b->extra = extra;
    memcpy(bp->tokens + (size_t)id * (size_t)bp->block_size, tokens,
           (size_t)bp->block_size * sizeof *tokens);
    uint32_t k = bucket_of(bp, hash);
    b->hnext = bp->buckets[k];
    bp->buckets[k] = id;
    b->cached = true;
    bp->n_cached++;
}

void bp_note_query(struct block_pool *bp, int64_t n_query_tokens, int64_t n_hit_tokens) {
    bp->n_query_tokens += (uint64_t)n_query_tokens;
    bp->n_hit_tokens += (uint64_t)n_hit_tokens;
}

static int check_queue(const struct block_pool *bp, struct err *e) {
    int32_t s = bp->n_blocks, n = 0;
    for (int32_t id = bp->blocks[s].next; id != s; id = bp->blocks[id].next) {
        if (id < 0 || id > s || ++n > bp->n_blocks)
            return err_set(e, VELA_EINTERNAL, "free queue broken at %d", id);
        if (bp->blocks[bp->blocks[id].next].prev != id)
            return err_set(e, VELA_EINTERNAL, "free queue: back link of %d's successor", id);
        if (bp->blocks[id].ref != 0)
            return err_set(e, VELA_EINTERNAL, "block %d queued with ref %d", id,
                           bp->blocks[id].ref);
    }
    if (n != bp->n_free)
        return err_set(e, VELA_EINTERNAL, "free queue holds %d blocks, n_free %d", n, bp->n_free);
    return 0;
}

static int check_map(const struct block_pool *bp, struct err *e) {
    int32_t n = 0;
    for (uint32_t k = 0; k <= bp->bucket_mask; k++) {
        for (int32_t id = bp->buckets[k]; id >= 0; id = bp->blocks[id].hnext) {
            if (id >= bp->n_blocks || ++n > bp->n_blocks)
                return err_set(e, VELA_EINTERNAL, "hash chain %u broken at %d", k, id);
            if (!bp->blocks[id].cached || bucket_of(bp, bp->blocks[id].hash) != k)
                return err_set(e, VELA_EINTERNAL, "block %d in the wrong hash chain", id);
        }
    }
    if (n != bp->n_cached)
        return err_set(e, VELA_EINTERNAL, "hash map holds %d blocks, n_cached %d", n, bp->n_cached);
    if (!bp->prefix_caching && n != 0)
        return err_set(e, VELA_EINTERNAL, "%d cached blocks with prefix caching off", n);
    return 0;
}

int bp_check_ex(const struct block_pool *bp, struct err *e) {
    int32_t n_zero = 0, n_cached = 0;
    for (int32_t id = 0; id < bp->n_blocks; id++) {
        const struct bp_block *b = &bp->blocks[id];
        if (b->ref < 0) return err_set(e, VELA_EINTERNAL, "block %d ref %d", id, b->ref);
        bool queued = b->prev >= 0 && b->next >= 0;
        if (queued != (b->ref == 0))
            return err_set(e, VELA_EINTERNAL, "block %d: ref %d but %s the free queue", id, b->ref,
                           queued ? "in" : "not in");
        if (!b->cached && b->hnext != -1)
            return err_set(e, VELA_EINTERNAL, "uncached block %d chained", id);
        n_zero += b->ref == 0;
        n_cached += b->cached;
    }
    if (n_zero != bp->n_free)
        return err_set(e, VELA_EINTERNAL, "%d blocks with ref 0, n_free %d", n_zero, bp->n_free);
    if (n_cached != bp->n_cached)
        return err_set(e, VELA_EINTERNAL, "%d cached flags, n_cached %d", n_cached, bp->n_cached);
    int rc = check_queue(bp, e);
    if (rc == 0) rc = check_map(bp, e);
    return rc;
}

bool bp_check(const struct block_pool *bp) {
    return bp_check_ex(bp, NULL) == 0;
}
