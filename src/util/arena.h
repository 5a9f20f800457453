/* arena: bump allocator for scratch memory with one lifetime (a step, a request, a parse).
 * Fixed capacity chosen at init; an allocation past it fails (returns NULL) rather than
 * growing, so the memory plan made at startup holds. One owner thread. */
#ifndef VELA_UTIL_ARENA_H
#define VELA_UTIL_ARENA_H

#include <stddef.h>

struct arena {
    unsigned char *base; /* owned, capacity bytes */
    size_t cap;
    size_t used;
    size_t peak; /* high-water mark, for sizing */
};

/* Allocates the backing store; returns 0 or VELA_ENOMEM. */
int arena_init(struct arena *a, size_t cap_bytes);
void arena_deinit(struct arena *a);
/* Returns memory aligned to `align` (a power of two <= 4096), or NULL when full. */
void *arena_alloc(struct arena *a, size_t n_bytes, size_t align);
/* Same, zero-filled; n * size checked for overflow. */
void *arena_calloc(struct arena *a, size_t n, size_t size, size_t align);
void arena_reset(struct arena *a);

#endif
