/* st_map: a small open-addressing hash table from borrowed NUL-terminated names to int64
 * indices, used by the safetensors reader (name -> tensor), the sharded-model loader
 * (name -> tensor, shard name -> shard) and the writer (duplicate-name checks).
 *
 * Keys are borrowed: the caller keeps every inserted name alive and unchanged while the map
 * lives. Linear probing over a power-of-two table kept at most half full, so lookups are O(1)
 * on average. No deletions (nothing here needs them). One owner thread. */
#ifndef VELA_MODEL_ST_MAP_H
#define VELA_MODEL_ST_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct st_map_slot {
    const char *key; /* borrowed; NULL marks an empty slot */
    int64_t val;
};

struct st_map {
    struct st_map_slot *slots; /* cap entries, owned */
    size_t cap;                /* 0 or a power of two */
    size_t n;                  /* occupied slots */
};

/* Sizes the table for about n_hint keys (it grows as needed). 0 or VELA_ENOMEM. */
int st_map_init(struct st_map *m, size_t n_hint);
void st_map_deinit(struct st_map *m);
/* Inserts key -> val. Returns 0, 1 when the key is already present (*old_val, when not
 * NULL, gets the existing value and nothing changes), or VELA_ENOMEM. */
int st_map_put(struct st_map *m, const char *key, int64_t val, int64_t *old_val);
/* Looks key up; false when absent. */
bool st_map_get(const struct st_map *m, const char *key, int64_t *val);

#endif
