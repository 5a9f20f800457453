/* encoder_cache: bookkeeping for cached vision embeddings (vLLM's EncoderCacheManager).
 *
 * An image, identified by its content hash, is encoded once into the cache and read by every
 * prefill chunk (of every request) that covers its placeholders. Space is counted in
 * embedding rows ("tokens"), within cap_tokens. An entry holds one reference per request that
 * still needs it; at zero references it becomes freeable but stays until its space is needed
 * (LRU), so a preempted or repeated request can reuse it. The embedding memory itself belongs
 * to the runner, keyed by the same hash: entries evicted here are reported by ec_take_freed()
 * so the runner drops them (before it encodes the step's new images).
 *
 * Ownership: the cache owns its arrays. Thread: the engine thread only. */
#ifndef VELA_ENGINE_ENCODER_CACHE_H
#define VELA_ENGINE_ENCODER_CACHE_H

#include "util/err.h"

#include <stdbool.h>
#include <stdint.h>

struct ec_entry {
    uint64_t hash;
    int32_t n_tokens;
    int32_t ref;        /* requests needing it; 0 => on the freeable list */
    int32_t prev, next; /* freeable LRU links (sentinel index max_entries); -1 if not listed */
    int32_t hnext;      /* hash chain, -1 at the end; also the free-slot stack link */
    bool used;          /* slot holds an entry */
};

struct encoder_cache {
    int32_t cap_tokens;  /* embedding rows the cache may hold */
    int32_t max_entries; /* slots */
    int32_t n_tokens;    /* rows held by all entries, freeable ones included */
    int32_t n_freeable_tokens;
    int32_t n_freeable; /* entries on the LRU list */
    int32_t n_entries;
    struct ec_entry *e; /* (max_entries + 1); [max_entries] is the LRU sentinel */
    int32_t *buckets;   /* (bucket_mask + 1) chain heads */
    uint32_t bucket_mask;
    int32_t free_slot; /* head of the unused-slot stack, -1 when none */
    uint64_t *freed;   /* (max_freed) hashes evicted since the last ec_take_freed */
    int32_t n_freed, max_freed;
};

/* cap_tokens >= 1, max_entries >= 1. Returns 0, VELA_EINVAL or VELA_ENOMEM. */
int ec_init(struct encoder_cache *ec, int32_t cap_tokens, int32_t max_entries, struct err *e);
void ec_deinit(struct encoder_cache *ec); /* accepts a zeroed or deinited cache */

/* True when the image's embeddings are (or are being) in the cache. */
bool ec_has(const struct encoder_cache *ec, uint64_t hash);
/* Takes a reference on an existing entry; false when there is none. */
bool ec_ref(struct encoder_cache *ec, uint64_t hash);
/* Drops a reference; at zero the entry becomes freeable (most recently used end). */
void ec_unref(struct encoder_cache *ec, uint64_t hash);
/* True when ec_add(n_tokens) would succeed now (evicting freeable entries if needed). */
bool ec_can_add(const struct encoder_cache *ec, int32_t n_tokens);
/* Creates an entry with one reference, evicting least recently freed entries as needed.
 * Returns false, changing nothing, when it cannot. The hash must not be present. */
bool ec_add(struct encoder_cache *ec, uint64_t hash, int32_t n_tokens);
/* Removes an entry created by ec_add in the step being planned and never encoded (the
 * request that needed it did not get scheduled); no eviction notice. Needs ref == 1. */
void ec_cancel(struct encoder_cache *ec, uint64_t hash);
/* Copies the hashes evicted since the last call into out (room for max_freed) and clears
 * the list; returns their number. */
int32_t ec_take_freed(struct encoder_cache *ec, uint64_t *out);

/* Checks counts, chains and the LRU list; VELA_EINTERNAL with e (may be NULL) filled. */
int ec_check_ex(const struct encoder_cache *ec, struct err *e);
bool ec_check(const struct encoder_cache *ec);

#endif
