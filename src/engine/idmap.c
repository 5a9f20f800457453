/* idmap: open-addressing map keyed by (request id, sample index).
 *
 * Invariants:
 *   1. cap is a power of two and n <= 3/4 cap after every put, so a free slot always exists
 *      and every probe ends.
 *   2. For every used slot, every slot between its home (hash & (cap - 1)) and itself is used
 *      (linear probing without tombstones); idmap_del restores this by shifting later members
 *      of the run back (Knuth's Algorithm R).
 * Thread: one owner thread. */
#include "engine/idmap.h"

#include "util/rng.h"

#include <stdlib.h>

static uint32_t home(const struct idmap *m, uint64_t id, int32_t index) {
    return (uint32_t)rng_mix64(id ^ ((uint64_t)(uint32_t)index << 40) ^ 0x5bd1e995ull) &
           (m->cap - 1);
}

int idmap_init(struct idmap *m, uint32_t cap_hint, struct err *e) {
    uint32_t cap = 16;
    while (cap < cap_hint && cap < (1u << 30)) cap <<= 1;
    m->slots = calloc(cap, sizeof *m->slots);
    m->cap = m->slots ? cap : 0;
    m->n = 0;
    return m->slots ? 0 : err_set(e, VELA_ENOMEM, "idmap: out of memory (%u slots)", cap);
}

void idmap_deinit(struct idmap *m) {
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

static struct idmap_slot *find(const struct idmap *m, uint64_t id, int32_t index) {
    if (m->cap == 0) return NULL;
    for (uint32_t i = home(m, id, index);; i = (i + 1) & (m->cap - 1)) {
        struct idmap_slot *s = &m->slots[i];
        if (!s->used) return NULL;
        if (s->id == id && s->index == index) return s;
    }
}

int64_t *idmap_get(const struct idmap *m, uint64_t id, int32_t index) {
    struct idmap_slot *s = find(m, id, index);
    return s ? &s->value : NULL;
}

/* Inserts into a map known not to hold the key and to have room. */
static void insert(struct idmap *m, uint64_t id, int32_t index, int64_t value) {
    uint32_t i = home(m, id, index);
    while (m->slots[i].used) i = (i + 1) & (m->cap - 1);
    m->slots[i] = (struct idmap_slot){.id = id, .index = index, .used = true, .value = value};
    m->n++;
}

static int grow(struct idmap *m, struct err *e) {
    if (m->cap >= (1u << 30)) return err_set(e, VELA_ENOMEM, "idmap: too many keys");
    uint32_t cap = m->cap ? 2 * m->cap : 16;
    struct idmap_slot *ns = calloc(cap, sizeof *ns);
    if (!ns) return err_set(e, VELA_ENOMEM, "idmap: out of memory (%u slots)", cap);
    struct idmap old = *m;
    m->slots = ns, m->cap = cap, m->n = 0;
    for (uint32_t i = 0; i < old.cap; i++)
        if (old.slots[i].used) insert(m, old.slots[i].id, old.slots[i].index, old.slots[i].value);
    free(old.slots);
    return 0;
}

int idmap_put(struct idmap *m, uint64_t id, int32_t index, int64_t value, struct err *e) {
    struct idmap_slot *s = find(m, id, index);
    if (s) {
        s->value = value;
        return 0;
    }
    if ((uint64_t)(m->n + 1) * 4 > (uint64_t)m->cap * 3) {
        int rc = grow(m, e);
        if (rc != 0) return rc;
    }
    insert(m, id, index, value);
    return 0;
}

bool idmap_del(struct idmap *m, uint64_t id, int32_t index) {
    struct idmap_slot *s = find(m, id, index);
    if (!s) return false;
    uint32_t mask = m->cap - 1, hole = (uint32_t)(s - m->slots);
    m->slots[hole].used = false;
    m->n--;
    for (uint32_t j = (hole + 1) & mask; m->slots[j].used; j = (j + 1) & mask) {
        uint32_t h = home(m, m->slots[j].id, m->slots[j].index);
        /* j's entry may move into the hole unless its home lies cyclically in (hole, j] */
        bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
        if (stays) continue;
        m->slots[hole] = m->slots[j];
        m->slots[j].used = false;
        hole = j;
    }
    return true;
}
