/* hash: a small multiply-xorshift hash over 64-bit words with a splitmix64 finalizer.
 *
 * Invariants: (1) the result depends on every input word and on its position (each step
 * multiplies the running state before adding the next word); (2) hash_block(p, t, n, x)
 * never depends on anything but its arguments. Any thread. */
#include "engine/hash.h"

#include <string.h>

static uint64_t fmix64(uint64_t x) {
    /* splitmix64 finalizer: full avalanche of the running state. */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

uint64_t hash_mix(uint64_t h, uint64_t w) {
    h ^= fmix64(w + 0x9e3779b97f4a7c15ull);
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

uint64_t hash_bytes(uint64_t seed, const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = hash_mix(seed, (uint64_t)n);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = hash_mix(h, w);
        b += 8;
        n -= 8;
    }
    if (n > 0) {
        uint64_t w = 0;
        memcpy(&w, b, n);
        h = hash_mix(h, w ^ ((uint64_t)n << 56));
    }
    return fmix64(h);
}

uint64_t hash_block(uint64_t parent, const int32_t *tokens, int32_t n, uint64_t extra) {
    uint64_t h = hash_mix(0x6b76626c6f636bull, parent); /* "kvblock" */
    h = hash_mix(h, extra);
    int32_t i = 0;
    for (; i + 1 < n; i += 2)
        h = hash_mix(h, (uint64_t)(uint32_t)tokens[i] | ((uint64_t)(uint32_t)tokens[i + 1] << 32));
    if (i < n) h = hash_mix(h, (uint64_t)(uint32_t)tokens[i] | (1ull << 63));
    return fmix64(h ^ (uint64_t)n);
}
