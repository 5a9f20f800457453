/* rng: see rng.h. Invariants: (1) every function here is a pure function of its inputs and
 * the generator state; (2) no floating-point operation other than an exact int-to-float
 * conversion and a multiplication by a power of two, so results never depend on the
 * compiler, the FPU mode or the libm in use. */
#include "util/rng.h"

void rng_init(struct rng *r, uint64_t seed) {
    r->state = seed;
}

uint64_t rng_next(struct rng *r) {
    r->state += 0x9e3779b97f4a7c15ull;
    return rng_mix64(r->state);
}

uint64_t rng_below(struct rng *r, uint64_t n) {
    /* Reject the top partial block of 2^64 so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = rng_next(r);
    } while (x >= limit);
    return x % n;
}

float rng_unit(struct rng *r) {
    return rng_unit_f32(rng_next(r));
}

uint64_t rng_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
