/* idmap: a hash map from a request key (id, sample index) to an int64 value, for the state
 * the engine and the runner keep per live request (open addressing, linear probing,
 * backward-shift deletion, so there are no tombstones and a long run of adds and removes keeps
 * probes short). It grows by doubling when 3/4 full; it never shrinks.
 *
 * Ownership: the map owns its slot array. Thread: one owner thread (the engine thread). */
#ifndef VELA_ENGINE_IDMAP_H
#define VELA_ENGINE_IDMAP_H

#include "util/err.h"

#include <stdbool.h>
#include <stdint.h>

struct idmap_slot {
    uint64_t id;
    int32_t index;
    bool used;
    int64_t value;
};

struct idmap {
    struct idmap_slot *slots; /* (cap), cap a power of two */
    uint32_t cap;
    uint32_t n;
};

/* An empty map with room for about cap_hint keys before it grows. 0 or VELA_ENOMEM. */
int idmap_init(struct idmap *m, uint32_t cap_hint, struct err *e);
void idmap_deinit(struct idmap *m); /* accepts a zeroed map */

/* The value of (id, index), or NULL when absent. The pointer is valid until the next
 * idmap_put or idmap_del. */
int64_t *idmap_get(const struct idmap *m, uint64_t id, int32_t index);
/* Inserts or overwrites. 0 or VELA_ENOMEM (the map is unchanged then). */
int idmap_put(struct idmap *m, uint64_t id, int32_t index, int64_t value, struct err *e);
/* Removes (id, index); false when absent. */
bool idmap_del(struct idmap *m, uint64_t id, int32_t index);

#endif
