/* block_pool: the records of the paged KV cache's fixed-size blocks, with reference counts,
 * an LRU free queue and the prefix-cache hash map (vLLM v1 block_pool.py, in C).
 *
 * The pool hands out block ids in [0, n_blocks); the KV memory itself belongs to the backend
 * (engine/kv_cache.c), which indexes it by these ids. A block with ref 0 sits in the free
 * queue; if it is "cached" (a full block registered with bp_cache) it stays in the hash map
 * until it is taken again by bp_alloc (lazy eviction), so a later request can revive it with
 * bp_ref. The free queue is LRU: bp_alloc takes from the head, freed blocks join the tail.
 *
 * Ownership: the pool owns its arrays; callers hold block ids, never pointers.
 * Thread: the engine thread only. */
#ifndef VELA_ENGINE_BLOCK_POOL_H
#define VELA_ENGINE_BLOCK_POOL_H

#include "util/err.h"

#include <stdbool.h>
#include <stdint.h>

/* Block key function; tests inject a weak one to force collisions. */
typedef uint64_t (*bp_hash_fn)(uint64_t parent, const int32_t *tokens, int32_t n, uint64_t extra);

struct bp_block {
    int32_t ref;        /* owning requests; 0 <=> in the free queue */
    int32_t prev, next; /* free queue links (sentinel index n_blocks); -1 when not queued */
    int32_t hnext;      /* next block in the same hash bucket, -1 at the end */
    bool cached;        /* registered in the hash map (full block with a valid key) */
    uint64_t hash;      /* key, valid when cached */
    uint64_t parent;    /* parent block's key, compared on a hit */
    uint64_t extra;     /* image key of the block, compared on a hit */
};

struct block_pool {
    int32_t n_blocks;
    int32_t block_size; /* tokens per block */
    bool prefix_caching;
    struct bp_block *blocks; /* n_blocks + 1 records; [n_blocks] is the free-queue sentinel */
    int32_t *tokens;         /* (n_blocks, block_size): token ids of cached blocks */
    int32_t *buckets;        /* (n_buckets): head block of each hash chain, -1 if empty */
    uint32_t bucket_mask;    /* n_buckets - 1 (a power of two >= 2 * n_blocks) */
    int32_t n_free;          /* blocks in the free queue */
    int32_t n_cached;        /* blocks in the hash map */
    bp_hash_fn hash_fn;      /* hash_block unless a test overrides it */
    /* metrics (vLLM's prefix cache hit rate): tokens looked up and tokens served from cache */
    uint64_t n_query_tokens;
    uint64_t n_hit_tokens;
};

/* n_blocks in [1, VELA_KV_MAX_BLOCKS], block_size in [1, VELA_KV_MAX_BLOCK_SIZE]. Every
 * block starts free. Returns 0, VELA_EINVAL or VELA_ENOMEM (bp left safe to deinit). */
int bp_init(struct block_pool *bp, int32_t n_blocks, int32_t block_size, bool prefix_caching,
            struct err *e);
void bp_deinit(struct block_pool *bp); /* accepts a zeroed or deinited pool */

/* Blocks bp_alloc can hand out now (free, cached or not). */
static inline int32_t bp_n_free(const struct block_pool *bp) {
    return bp->n_free;
}
static inline int32_t bp_ref_of(const struct block_pool *bp, int32_t id) {
    return bp->blocks[id].ref;
}

/* Takes n blocks from the head of the free queue (evicting their cache entries) into out
 * with ref 1. Returns false, changing nothing, when fewer than n are free. */
bool bp_alloc(struct block_pool *bp, int32_t n, int32_t *out);
/* Drops one reference on each of ids[0..n). Blocks reaching 0 join the tail of the free queue
 * in REVERSE order (ids[n-1] first), so a request's deepest blocks are evicted first.
 * Returns VELA_EINTERNAL, changing nothing, if some id is out of range or already free. */
int bp_free(struct block_pool *bp, const int32_t *ids, int32_t n);

/* The key of a block (the pool's hash function: tests may override it). */
uint64_t bp_hash(const struct block_pool *bp, uint64_t parent, const int32_t *tokens,
                 uint64_t extra);
/* A cached block whose key, parent key, extra key and block_size tokens all match, or -1.
 * Always -1 with prefix caching off. Changes nothing. */
int32_t bp_lookup(const struct block_pool *bp, uint64_t hash, uint64_t parent,
                  const int32_t *tokens, uint64_t extra);
/* Takes a reference on a block found by bp_lookup (leaving the free queue if it was free). */
void bp_ref(struct block_pool *bp, int32_t id);
/* Registers a full, referenced block under its key (copying its tokens) so later requests can
 * hit it. No-op with prefix caching off or if the block is already cached. */
void bp_cache(struct block_pool *bp, int32_t id, uint64_t hash, uint64_t parent,
              const int32_t *tokens, uint64_t extra);
/* Records one admission's lookup for the hit-rate metric. */
void bp_note_query(struct block_pool *bp, int64_t n_query_tokens, int64_t n_hit_tokens);

/* Checks every invariant (see block_pool.c); on failure fills e (may be NULL) and returns
 * VELA_EINTERNAL. bp_check is the assert-friendly form. */
int bp_check_ex(const struct block_pool *bp, struct err *e);
bool bp_check(const struct block_pool *bp);

#endif
