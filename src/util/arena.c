/* arena: invariants: used <= cap; peak >= used; base is 64-byte aligned so any alignment
 * up to 64 needs no padding at offset 0. */
#include "util/arena.h"

#include "util/err.h"
#include "util/size.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int arena_init(struct arena *a, size_t cap_bytes) {
    memset(a, 0, sizeof *a);
    if (cap_bytes == 0) return 0;
    size_t rounded = (cap_bytes + 63) & ~(size_t)63;
    a->base = aligned_alloc(64, rounded);
    if (!a->base) return VELA_ENOMEM;
    a->cap = rounded;
    return 0;
}

void arena_deinit(struct arena *a) {
    if (!a) return;
    free(a->base);
    memset(a, 0, sizeof *a);
}

void *arena_alloc(struct arena *a, size_t n_bytes, size_t align) {
    if (align == 0 || (align & (align - 1)) != 0 || align > 4096) return NULL;
    uintptr_t p = (uintptr_t)a->base + a->used;
    size_t pad = (size_t)((align - (p & (align - 1))) & (align - 1));
    if (pad > a->cap - a->used || n_bytes > a->cap - a->used - pad) return NULL;
    void *out = a->base + a->used + pad;
    a->used += pad + n_bytes;
    if (a->used > a->peak) a->peak = a->used;
    return out;
}

void *arena_calloc(struct arena *a, size_t n, size_t size, size_t align) {
    size_t total;
    if (!size_mul_ok(n, size, &total)) return NULL;
    void *p = arena_alloc(a, total, align);
    if (p) memset(p, 0, total);
    return p;
}

void arena_reset(struct arena *a) {
    a->used = 0;
}
