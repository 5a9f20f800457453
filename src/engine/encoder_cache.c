/* encoder_cache: vision-embedding entries with references, lazy LRU eviction, eviction log.
 *
 * Entry states:  (absent) --ec_add--> referenced --ec_unref (last)--> freeable
 *                freeable --ec_ref--> referenced;  freeable --ec_add (space needed)--> evicted
 *
 * Invariants (ec_check_ex):
 *  1. n_tokens == sum of n_tokens over used slots <= cap_tokens; n_entries counts them.
 *  2. An entry is on the freeable list iff ref == 0; n_freeable_tokens sums those.
 *  3. Every used entry is in its bucket's chain exactly once; unused slots are on the
 *     free-slot stack.
 *  4. n_freed <= max_freed (ec_add refuses rather than lose an eviction notice).
 * Thread: the engine thread only. */
#include "engine/encoder_cache.h"

#include <stdlib.h>
#include <string.h>

static uint32_t bucket_of(const struct encoder_cache *ec, uint64_t h) {
    return (uint32_t)(h ^ (h >> 29) ^ (h >> 47)) & ec->bucket_mask;
}

int ec_init(struct encoder_cache *ec, int32_t cap_tokens, int32_t max_entries, struct err *e) {
    memset(ec, 0, sizeof *ec);
    if (cap_tokens < 1 || max_entries < 1 || max_entries > (1 << 24))
        return err_set(e, VELA_EINVAL,
                       "encoder cache: %d tokens, %d entries (need >= 1, "
                       "entries <= 2^24)",
                       cap_tokens, max_entries);
    uint32_t nb = 1;
    while (nb < 2u * (uint32_t)max_entries) nb <<= 1;
    ec->e = calloc((size_t)max_entries + 1, sizeof *ec->e);
    ec->buckets = malloc((size_t)nb * sizeof *ec->buckets);
    ec->max_freed = 2 * max_entries;
    ec->freed = malloc((size_t)ec->max_freed * sizeof *ec->freed);
    if (!ec->e || !ec->buckets || !ec->freed) {
        ec_deinit(ec);
        return err_set(e, VELA_ENOMEM, "encoder cache of %d entries: out of memory", max_entries);
    }
    for (uint32_t i = 0; i < nb; i++) ec->buckets[i] = -1;
    ec->bucket_mask = nb - 1;
    ec->cap_tokens = cap_tokens;
    ec->max_entries = max_entries;
    for (int32_t i = 0; i < max_entries; i++) {
        ec->e[i].prev = ec->e[i].next = -1;
        ec->e[i].hnext = i + 1 < max_entries ? i + 1 : -1;
    }
    ec->free_slot = 0;
    ec->e[max_entries].prev = ec->e[max_entries].next = max_entries; /* empty LRU */
    return 0;
}

void ec_deinit(struct encoder_cache *ec) {
    if (!ec) return;
    free(ec->e);
    free(ec->buckets);
    free(ec->freed);
    memset(ec, 0, sizeof *ec);
}

static int32_t find(const struct encoder_cache *ec, uint64_t hash) {
    for (int32_t i = ec->buckets[bucket_of(ec, hash)]; i >= 0; i = ec->e[i].hnext)
        if (ec->e[i].hash == hash) return i;
    return -1;
}

static void lru_remove(struct encoder_cache *ec, int32_t i) {
    struct ec_entry *x = &ec->e[i];
    ec->e[x->prev].next = x->next;
    ec->e[x->next].prev = x->prev;
    x->prev = x->next = -1;
    ec->n_freeable_tokens -= x->n_tokens;
    ec->n_freeable--;
}

static void lru_push_tail(struct encoder_cache *ec, int32_t i) {
    int32_t s = ec->max_entries;
    struct ec_entry *x = &ec->e[i];
    x->prev = ec->e[s].prev;
    x->next = s;
    ec->e[x->prev].next = i;
    ec->e[s].prev = i;
    ec->n_freeable_tokens += x->n_tokens;
    ec->n_freeable++;
}

bool ec_has(const struct encoder_cache *ec, uint64_t hash) {
    return find(ec, hash) >= 0;
}

bool ec_ref(struct encoder_cache *ec, uint64_t hash) {
    int32_t i = find(ec, hash);
    if (i < 0) return false;
    if (ec->e[i].ref++ == 0) lru_remove(ec, i);
    return true;
}

void ec_unref(struct encoder_cache *ec, uint64_t hash) {
    int32_t i = find(ec, hash);
    if (i < 0 || ec->e[i].ref <= 0) return;
    if (--ec->e[i].ref == 0) lru_push_tail(ec, i);
}

bool ec_can_add(const struct encoder_cache *ec, int32_t n_tokens) {
    if (n_tokens < 1 || n_tokens > ec->cap_tokens) return false;
    int32_t room = ec->cap_tokens - ec->n_tokens + ec->n_freeable_tokens;
    bool slot = ec->free_slot >= 0 || ec->n_freeable > 0;
    /* Every eviction needed must fit the notice list: at most one per freeable entry. */
    return room >= n_tokens && slot && ec->n_freed + ec->n_freeable <= ec->max_freed;
}

static void drop(struct encoder_cache *ec, int32_t i) {
    struct ec_entry *x = &ec->e[i];
    int32_t *link = &ec->buckets[bucket_of(ec, x->hash)];
    while (*link != i) link = &ec->e[*link].hnext;
    *link = x->hnext;
    ec->n_tokens -= x->n_tokens;
    ec->n_entries--;
    memset(x, 0, sizeof *x);
    x->prev = x->next = -1;
    x->hnext = ec->free_slot;
    ec->free_slot = i;
}

static void evict(struct encoder_cache *ec, int32_t i) {
    lru_remove(ec, i);
    ec->freed[ec->n_freed++] = ec->e[i].hash;
    drop(ec, i);
}

void ec_cancel(struct encoder_cache *ec, uint64_t hash) {
    int32_t i = find(ec, hash);
    if (i >= 0 && ec->e[i].ref == 1) drop(ec, i);
}

bool ec_add(struct encoder_cache *ec, uint64_t hash, int32_t n_tokens) {
    if (!ec_can_add(ec, n_tokens) || find(ec, hash) >= 0) return false;
    int32_t s = ec->max_entries;
    while (ec->cap_tokens - ec->n_tokens < n_tokens || ec->free_slot < 0) evict(ec, ec->e[s].next);
    int32_t i = ec->free_slot;
    struct ec_entry *x = &ec->e[i];
    ec->free_slot = x->hnext;
    uint32_t k = bucket_of(ec, hash);
    *x = (struct ec_entry){.hash = hash,
                           .n_tokens = n_tokens,
                           .ref = 1,
                           .prev = -1,
                           .next = -1,
                           .hnext = ec->buckets[k],
                           .used = true};
    ec->buckets[k] = i;
    ec->n_tokens += n_tokens;
    ec->n_entries++;
    return true;
}

int32_t ec_take_freed(struct encoder_cache *ec, uint64_t *out) {
    int32_t n = ec->n_freed;
    if (n > 0) memcpy(out, ec->freed, (size_t)n * sizeof *out);
    ec->n_freed = 0;
    return n;
}

int ec_check_ex(const struct encoder_cache *ec, struct err *e) {
    int32_t n_used = 0, n_tok = 0, n_free_tok = 0, n_listed = 0, n_slots = 0;
    for (int32_t i = 0; i < ec->max_entries; i++) {
        const struct ec_entry *x = &ec->e[i];
        if (!x->used) continue;
        n_used++;
        n_tok += x->n_tokens;
        bool listed = x->prev >= 0;
        if (x->ref < 0 || listed != (x->ref == 0))
            return err_set(e, VELA_EINTERNAL, "encoder entry %d: ref %d, listed %d", i, x->ref,
                           listed);
        if (listed) n_free_tok += x->n_tokens;
        if (find(ec, x->hash) != i)
            return err_set(e, VELA_EINTERNAL, "encoder entry %d not found by its hash", i);
    }
    for (int32_t i = ec->e[ec->max_entries].next; i != ec->max_entries; i = ec->e[i].next)
        if (++n_listed > n_used || !ec->e[i].used || ec->e[ec->e[i].next].prev != i)
            return err_set(e, VELA_EINTERNAL, "encoder LRU list broken at %d", i);
    for (int32_t i = ec->free_slot; i >= 0; i = ec->e[i].hnext)
        if (++n_slots > ec->max_entries || ec->e[i].used)
            return err_set(e, VELA_EINTERNAL, "encoder free-slot stack broken at %d", i);
    if (n_used != ec->n_entries || n_tok != ec->n_tokens || n_tok > ec->cap_tokens ||
        n_free_tok != ec->n_freeable_tokens || n_listed != ec->n_freeable ||
        n_slots + n_used != ec->max_entries || ec->n_freed > ec->max_freed)
        return err_set(e, VELA_EINTERNAL,
                       "encoder counts: %d/%d entries, %d/%d tokens (cap %d), %d/%d freeable, "
                       "%d free slots",
                       n_used, ec->n_entries, n_tok, ec->n_tokens, ec->cap_tokens, n_free_tok,
                       ec->n_freeable_tokens, n_slots);
    return 0;
}

bool ec_check(const struct encoder_cache *ec) {
    return ec_check_ex(ec, NULL) == 0;
}
