/* rng: deterministic pseudo-random numbers, identical bit for bit on every machine.
 *
 * Two forms. rng_hash() is counter-based: a value is a pure function of (seed, stream,
 * counter), so any slice of a long sequence (one tensor, one chunk of one tensor, one GPU
 * thread's elements) can be produced independently and in any order. struct rng is the
 * ordinary sequential form (splitmix64) for callers that just want the next number.
 * Only integer arithmetic and exactly-rounded float operations are used: no libm.
 * Any thread; a struct rng belongs to one caller. */
#ifndef VELA_UTIL_RNG_H
#define VELA_UTIL_RNG_H

#include <stddef.h>
#include <stdint.h>

/* The splitmix64 finalizer: a bijection on 64-bit values with full avalanche. */
static inline uint64_t rng_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Counter-based value: element `counter` of stream `stream` under `seed`. Consecutive
 * counters of one stream are the splitmix64 sequence started at a stream-specific state;
 * rng_stream() computes that state once so a loop over counters costs one mix each. */
static inline uint64_t rng_stream(uint64_t seed, uint64_t stream) {
    return rng_mix64(seed ^ rng_mix64(stream + 0x9e3779b97f4a7c15ull));
}
static inline uint64_t rng_at(uint64_t base, uint64_t counter) {
    return rng_mix64(base + counter * 0x9e3779b97f4a7c15ull);
}
static inline uint64_t rng_hash(uint64_t seed, uint64_t stream, uint64_t counter) {
    return rng_at(rng_stream(seed, stream), counter);
}

/* Uniform float in (-1, 1) from the top 24 bits of h: (2k+1) / 2^24 for k in
 * [-2^23, 2^23), exactly representable, symmetric around 0, never exactly 0 or +-1. */
static inline float rng_unit_f32(uint64_t h) {
    int32_t k = (int32_t)(h >> 40) - (1 << 23);
    return (float)(2 * k + 1) * (1.0f / 16777216.0f);
}

struct rng {
    uint64_t state;
};

void rng_init(struct rng *r, uint64_t seed);
/* Next 64 random bits (splitmix64). */
uint64_t rng_next(struct rng *r);
/* Uniform integer in [0, n); n > 0. Unbiased (rejection sampling). */
uint64_t rng_below(struct rng *r, uint64_t n);
/* Uniform float in (-1, 1), as rng_unit_f32. */
float rng_unit(struct rng *r);

/* FNV-1a 64 over bytes, continuing from h (start with RNG_FNV_INIT): used to name streams
 * by a string and to checksum generated data. */
#define RNG_FNV_INIT 0xcbf29ce484222325ull
uint64_t rng_fnv1a(uint64_t h, const void *data, size_t n);

#endif
