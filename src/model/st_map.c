/* st_map: see st_map.h.
 *
 * Invariants:
 *  1. cap is 0 or a power of two, and n <= cap / 2 after every put (probe chains stay short
 *     and a probe always reaches an empty slot, so lookups terminate).
 *  2. Keys are unique: put refuses a key that is already present. */
#include "model/st_map.h"

#include "util/err.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a, 64-bit: simple and good enough for tensor names (not exposed to hash flooding
 * beyond one file's own header, whose size is bounded by VELA_ST_HEADER_MAX_BYTES). */
static uint64_t st_map_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static int st_map_resize(struct st_map *m, size_t cap) {
    struct st_map_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return VELA_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key) continue;
        size_t j = (size_t)st_map_hash(m->slots[i].key) & (cap - 1);
        while (slots[j].key) j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int st_map_init(struct st_map *m, size_t n_hint) {
    memset(m, 0, sizeof *m);
    size_t cap = 16;
    while (cap / 2 < n_hint && cap < ((size_t)1 << 40)) cap *= 2;
    return st_map_resize(m, cap);
}

void st_map_deinit(struct st_map *m) {
    if (!m) return;
    free(m->slots);
    memset(m, 0, sizeof *m);
}

int st_map_put(struct st_map *m, const char *key, int64_t val, int64_t *old_val) {
    if ((m->n + 1) > m->cap / 2) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        if (cap < m->cap || st_map_resize(m, cap) != 0) return VELA_ENOMEM;
    }
    size_t j = (size_t)st_map_hash(key) & (m->cap - 1);
    while (m->slots[j].key) {
        if (strcmp(m->slots[j].key, key) == 0) {
            if (old_val) *old_val = m->slots[j].val;
            return 1;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->slots[j].key = key;
    m->slots[j].val = val;
    m->n++;
    return 0;
}

bool st_map_get(const struct st_map *m, const char *key, int64_t *val) {
    if (m->cap == 0) return false;
    size_t j = (size_t)st_map_hash(key) & (m->cap - 1);
    while (m->slots[j].key) {
        if (strcmp(m->slots[j].key, key) == 0) {
            if (val) *val = m->slots[j].val;
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return false;
}
