/* Tests for util/rng: the splitmix64 and FNV-1a reference values, the counter form agrees
 * with the sequential one, uniforms stay inside (-1, 1) and are symmetric, rng_below is
 * bounded and covers its range. */
#include "t.h"
#include "util/rng.h"

#include <stdint.h>

static void test_reference_values(void) {
    struct rng r;
    rng_init(&r, 0);
    /* splitmix64 seeded with 0: the published first outputs. */
    T_OK(rng_next(&r) == 0xe220a8397b1dcdafull);
    T_OK(rng_next(&r) == 0x6e789e6aa1b965f4ull);
    T_OK(rng_fnv1a(RNG_FNV_INIT, "", 0) == 0xcbf29ce484222325ull);
    T_OK(rng_fnv1a(RNG_FNV_INIT, "a", 1) == 0xaf63dc4c8601ec8cull);
    T_OK(rng_fnv1a(rng_fnv1a(RNG_FNV_INIT, "fo", 2), "o", 1) ==
         rng_fnv1a(RNG_FNV_INIT, "foo", 3)); /* streaming */
}

static void test_counter_form(void) {
    uint64_t base = rng_stream(7, 3);
    struct rng r;
    rng_init(&r, base);
    int same = 1;
    for (uint64_t k = 0; k < 100; k++) same &= rng_next(&r) == rng_at(base, k + 1);
    T_OK(same); /* counter k + 1 of a stream is the (k+1)-th sequential output */
    T_OK(rng_hash(7, 3, 5) == rng_at(base, 5));
    T_OK(rng_hash(7, 3, 5) != rng_hash(7, 4, 5));
    T_OK(rng_hash(7, 3, 5) != rng_hash(8, 3, 5));
}

static void test_uniform(void) {
    T_OK(rng_unit_f32(0) == -1.0f + 1.0f / 16777216.0f);
    T_OK(rng_unit_f32(UINT64_MAX) == 1.0f - 1.0f / 16777216.0f);
    T_OK(rng_unit_f32(0x8000000000000000ull) == 1.0f / 16777216.0f);
    struct rng r;
    rng_init(&r, 42);
    double s = 0;
    int inside = 1;
    for (int i = 0; i < 100000; i++) {
        float x = rng_unit(&r);
        inside &= x > -1.0f && x < 1.0f && x != 0.0f;
        s += x;
    }
    T_OK(inside);
    T_NEAR(s / 100000, 0.0, 0.01);
    int seen[10] = {0}, ok = 1;
    for (int i = 0; i < 10000; i++) {
        uint64_t v = rng_below(&r, 10);
        ok &= v < 10;
        if (v < 10) seen[v]++;
    }
    T_OK(ok);
    for (int i = 0; i < 10; i++) T_OK(seen[i] > 800 && seen[i] < 1200);
    T_EQ(rng_below(&r, 1), 0);
}

int main(void) {
    T_RUN(test_reference_values);
    T_RUN(test_counter_form);
    T_RUN(test_uniform);
    return t_done();
}
