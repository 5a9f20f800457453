/* Tests for engine/encoder_cache.c: references, lazy LRU eviction with notices, room and slot
 * accounting, cancel, and a random run with ec_check after every call. */
#include "engine/encoder_cache.h"
#include "t.h"

#define CHECK_EC(ec)                                                                               \
    do {                                                                                           \
        struct err ce_ = {0};                                                                      \
        T_CHECK_(ec_check_ex((ec), &ce_) == 0, "ec_check: %s", ce_.msg);                           \
    } while (0)

static void test_init(void) {
    struct encoder_cache ec;
    struct err e = {0};
    T_FAILS(ec_init(&ec, 0, 4, &e), VELA_EINVAL, &e);
    T_FAILS(ec_init(&ec, 10, 0, &e), VELA_EINVAL, &e);
    ec_deinit(&ec);
    ec_deinit(NULL);
}

static void test_ref_and_evict(void) {
    struct encoder_cache ec;
    struct err e = {0};
    T_RC(ec_init(&ec, 100, 8, &e), &e);
    T_OK(!ec_has(&ec, 1));
    T_OK(!ec_ref(&ec, 1));
    T_OK(ec_add(&ec, 1, 40));
    T_OK(!ec_add(&ec, 1, 40)); /* already present */
    T_OK(ec_add(&ec, 2, 40));
    CHECK_EC(&ec);
    T_OK(ec_has(&ec, 1));
    T_OK(!ec_can_add(&ec, 30)); /* 80 of 100 held, all referenced */
    T_OK(!ec_add(&ec, 3, 30));
    T_OK(!ec_can_add(&ec, 101));
    T_OK(ec_ref(&ec, 1)); /* a second request needs image 1 */
    ec_unref(&ec, 1);
    ec_unref(&ec, 1); /* freeable now, still cached */
    T_OK(ec_has(&ec, 1));
    T_EQ(ec.n_freeable_tokens, 40);
    CHECK_EC(&ec);
    T_OK(ec_can_add(&ec, 30));
    T_OK(ec_add(&ec, 3, 30)); /* evicts image 1 */
    T_OK(!ec_has(&ec, 1));
    CHECK_EC(&ec);
    uint64_t freed[16];
    T_EQ(ec_take_freed(&ec, freed), 1);
    T_EQ(freed[0], 1);
    T_EQ(ec_take_freed(&ec, freed), 0);
    /* LRU: the entry freed first goes first. */
    ec_unref(&ec, 3);
    ec_unref(&ec, 2);
    T_OK(ec_add(&ec, 4, 50));
    T_OK(!ec_has(&ec, 3));
    T_OK(ec_has(&ec, 2));
    CHECK_EC(&ec);
    /* Revive a freeable entry: it leaves the LRU list. */
    T_OK(ec_ref(&ec, 2));
    T_EQ(ec.n_freeable_tokens, 0);
    CHECK_EC(&ec);
    /* Cancel removes a just-added entry without a notice. */
    ec_unref(&ec, 2);
    T_OK(ec_add(&ec, 5, 10));
    ec_cancel(&ec, 5);
    T_OK(!ec_has(&ec, 5));
    T_EQ(ec_take_freed(&ec, freed), 1); /* only 3 was evicted */
    T_EQ(freed[0], 3);
    CHECK_EC(&ec);
    ec_deinit(&ec);
}

static void test_slots(void) {
    struct encoder_cache ec;
    struct err e = {0};
    T_RC(ec_init(&ec, 100, 2, &e), &e);
    T_OK(ec_add(&ec, 1, 1));
    T_OK(ec_add(&ec, 2, 1));
    T_OK(!ec_can_add(&ec, 1)); /* room, but no slot */
    ec_unref(&ec, 1);
    T_OK(ec_add(&ec, 3, 1));
    T_OK(!ec_has(&ec, 1));
    CHECK_EC(&ec);
    ec_deinit(&ec);
}

static void test_random(void) {
    struct encoder_cache ec;
    struct err e = {0};
    T_RC(ec_init(&ec, 64, 16, &e), &e);
    int32_t refs[32] = {0};
    uint64_t s = 99;
    int bad = 0;
    for (int step = 0; step < 20000 && !bad; step++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t h = (s >> 33) % 32;
        switch ((s >> 20) % 4) {
            case 0:
                if (ec_ref(&ec, h))
                    refs[h]++;
                else if (ec_add(&ec, h, (int32_t)(h % 9) + 1))
                    refs[h] = 1;
                break;
            case 1:
            case 2:
                if (refs[h] > 0) {
                    ec_unref(&ec, h);
                    refs[h]--;
                }
                break;
            default: {
                uint64_t f[32];
                int32_t n = ec_take_freed(&ec, f);
                /* an evicted hash may have been added again since, so only the range is known */
                for (int32_t i = 0; i < n; i++) bad |= f[i] >= 32;
            }
        }
        for (uint64_t k = 0; k < 32; k++) bad |= refs[k] > 0 && !ec_has(&ec, k);
        if (ec_check_ex(&ec, &e) != 0) {
            fprintf(stderr, "step %d: %s\n", step, e.msg);
            bad = 1;
        }
    }
    T_OK(!bad);
    ec_deinit(&ec);
}

int main(void) {
    T_RUN(test_init);
    T_RUN(test_ref_and_evict);
    T_RUN(test_slots);
    T_RUN(test_random);
    return t_done();
}
