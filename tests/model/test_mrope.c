/* Tests for model/mrope.c: get_rope_index's worked examples of spec §5.4 (one image; one
 * video at second_per_grid_t 1.0 and 0.5, float and integer-truncating time step), text-only
 * prompts, decode positions (§5.5), and prompts that do not match their media. */
#include "model/mrope.h"
#include "t.h"

#include <stdint.h>

enum { A = 1, B = 2, C = 3, VS = 265, VE = 266, IMG = 268, VID = 269 };

static struct mrope_media media(void) {
    return (struct mrope_media){.image_token_id = IMG,
                                .video_token_id = VID,
                                .vision_start_token_id = VS,
                                .spatial_merge_size = 2,
                                .tokens_per_second = 2.0f};
}

static void test_image_example(void) {
    struct err e = {0};
    const int32_t ids[11] = {A, B, VS, IMG, IMG, IMG, IMG, IMG, IMG, VE, C};
    const int32_t want[3][11] = {{0, 1, 2, 3, 3, 3, 3, 3, 3, 6, 7},
                                 {0, 1, 2, 3, 3, 3, 4, 4, 4, 6, 7},
                                 {0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7}};
    struct mrope_grid g = {1, 4, 6};
    struct mrope_media m = media();
    m.images = &g, m.n_images = 1;
    int32_t pos[33], delta = 99;
    T_RC(mrope_prompt_positions(ids, 11, &m, pos, &delta, &e), &e);
    T_OK(memcmp(pos, want, sizeof want) == 0);
    T_EQ(delta, -3);
    /* the next generated token (index 11) gets 8 in all rows */
    int32_t dp[3];
    mrope_text_positions(11, 1, delta, dp, 1, 0);
    T_EQ(dp[0], 8);
    T_EQ(dp[1], 8);
    T_EQ(dp[2], 8);
}

static void video_case(float spg, bool int_step, const int32_t *want_t, int32_t want_ve,
                       int32_t want_delta) {
    struct err e = {0};
    int32_t ids[20] = {A, VS};
    for (int i = 0; i < 16; i++) ids[2 + i] = VID;
    ids[18] = VE, ids[19] = C;
    struct mrope_grid g = {4, 4, 4};
    struct mrope_media m = media();
    m.videos = &g, m.n_videos = 1, m.second_per_grid_ts = &spg, m.int_time_step = int_step;
    int32_t pos[60], delta = 0;
    T_RC(mrope_prompt_positions(ids, 20, &m, pos, &delta, &e), &e);
    for (int i = 0; i < 16; i++) {
        T_EQ(pos[2 + i], want_t[i]);
        T_EQ(pos[20 + 2 + i], 2 + (i % 4) / 2); /* h: 2,2,3,3 */
        T_EQ(pos[40 + 2 + i], 2 + i % 2);       /* w: 2,3,2,3 */
    }
    T_EQ(pos[18], want_ve);
    T_EQ(pos[38], want_ve);
    T_EQ(pos[58], want_ve);
    T_EQ(delta, want_delta);
}

static void test_video_examples(void) {
    const int32_t t1[16] = {2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6, 8, 8, 8, 8};
    video_case(1.0f, false, t1, 9, -9);
    const int32_t t05[16] = {2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5};
    video_case(0.5f, false, t05, 6, -12);
    const int32_t t0[16] = {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
    video_case(0.5f, true, t0, 4, -14);
}

static void test_text(void) {
    struct err e = {0};
    const int32_t ids[5] = {5, IMG, 7, 8, 9}; /* a pad not after vision_start is text */
    struct mrope_media m = media();
    int32_t pos[15], delta = 1;
    T_RC(mrope_prompt_positions(ids, 5, NULL, pos, &delta, &e), &e);
    for (int i = 0; i < 15; i++) T_EQ(pos[i], i % 5);
    T_EQ(delta, 0);
    T_RC(mrope_prompt_positions(ids, 5, &m, pos, &delta, &e), &e);
    for (int i = 0; i < 15; i++) T_EQ(pos[i], i % 5);
    int32_t dp[6];
    mrope_text_positions(5, 2, 0, dp, 2, 0);
    T_EQ(dp[0], 5);
    T_EQ(dp[1], 6);
    T_EQ(dp[4], 5);
    T_EQ(dp[5], 6);
}

static void test_mismatch(void) {
    struct err e = {0};
    int32_t pos[33], delta;
    struct mrope_grid g = {1, 4, 6};
    struct mrope_media m = media();
    const int32_t short_run[6] = {A, VS, IMG, IMG, VE, C};
    m.images = &g, m.n_images = 1;
    T_FAILS(mrope_prompt_positions(short_run, 6, &m, pos, &delta, &e), VELA_EINVAL, &e);
    const int32_t one[4] = {A, VS, IMG, VE};
    m.n_images = 0; /* an image in the prompt, none given */
    T_FAILS(mrope_prompt_positions(one, 4, &m, pos, &delta, &e), VELA_EINVAL, &e);
    const int32_t none[2] = {A, B};
    m.n_images = 1; /* given but absent */
    T_FAILS(mrope_prompt_positions(none, 2, &m, pos, &delta, &e), VELA_EINVAL, &e);
    struct mrope_grid odd = {1, 3, 6};
    m.images = &odd;
    T_FAILS(mrope_prompt_positions(one, 4, &m, pos, &delta, &e), VELA_EINVAL, &e);
}

int main(void) {
    T_RUN(test_image_example);
    T_RUN(test_video_examples);
    T_RUN(test_text);
    T_RUN(test_mismatch);
    return t_done();
}
