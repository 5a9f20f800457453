/* Tests for model/vit_window.c: the worked examples of spec §4.4 (window_index, cu_window,
 * cu_full and the inverse permutation for a 140x168 image; 24 windows of 64 patches for
 * 448x672), the padding quirk (units a multiple of the window: empty windows dropped), video
 * temporal groups, rotary positions in processor row order (§3.6), grid checks, and a
 * comparison over many random grids with a literal transcription of transformers'
 * padded-array algorithm (pad with -100, permute windows, filter). */
#include "model/vit_window.h"
#include "util/limits.h"
#include "t.h"

#include <stdint.h>

#define CAP 20000

static int32_t g_widx[CAP], g_cu[CAP], g_ref_widx[CAP], g_ref_cu[CAP];

static void test_spec_example(void) {
    /* 140x168 px -> grid (1, 10, 12) -> 5x6 merge units, windows 2x2 */
    struct vit_grid g = {1, 10, 12};
    static const int32_t widx[30] = {0,  1, 2, 3,  6,  7,  8,  9,  12, 13, 14, 15, 18, 19, 20,
                                     21, 4, 5, 10, 11, 16, 17, 22, 23, 24, 25, 26, 27, 28, 29};
    static const int32_t inv[30] = {0,  1,  2,  3,  16, 17, 4,  5,  6,  7,  18, 19, 8,  9,  10,
                                    11, 20, 21, 12, 13, 14, 15, 22, 23, 24, 25, 26, 27, 28, 29};
    static const int32_t cu[5] = {0, 64, 96, 112, 120};
    int32_t got_inv[30], full[4];
    T_EQ(vitw_window_index(&g, 1, 2, 4, g_widx, g_cu), 5);
    T_OK(memcmp(g_widx, widx, sizeof widx) == 0);
    T_OK(memcmp(g_cu, cu, sizeof cu) == 0);
    vitw_inverse(g_widx, 30, got_inv);
    T_OK(memcmp(got_inv, inv, sizeof inv) == 0);
    T_EQ(vitw_full_seqlens(&g, 1, full), 2);
    T_EQ(full[0], 0);
    T_EQ(full[1], 120);
}

static void test_large_image(void) {
    /* 448x672 px -> grid (1, 32, 48) -> 16x24 units: 24 non-empty windows of 64 patches */
    struct vit_grid g = {1, 32, 48};
    T_EQ(vitw_window_index(&g, 1, 2, 4, g_widx, g_cu), 25);
    int ok = 1;
    for (int i = 0; i <= 24; i++) ok &= g_cu[i] == 64 * i;
    T_OK(ok);
    T_EQ(g_cu[24], 1536);
}

static void test_padding_quirk_and_video(void) {
    /* 4x4 units: pad = 4, not 0; the extra windows are empty and dropped */
    struct vit_grid g = {1, 8, 8};
    T_EQ(vitw_window_index(&g, 1, 2, 4, g_widx, g_cu), 2);
    T_EQ(g_cu[1], 64);
    int ident = 1;
    for (int i = 0; i < 16; i++) ident &= g_widx[i] == i;
    T_OK(ident);
    /* a video (2, 4, 4): one window and one full segment per temporal group */
    struct vit_grid v = {2, 4, 4};
    int32_t full[4];
    T_EQ(vitw_window_index(&v, 1, 2, 4, g_widx, g_cu), 3);
    T_EQ(g_cu[1], 16);
    T_EQ(g_cu[2], 32);
    T_EQ(vitw_full_seqlens(&v, 1, full), 3);
    T_EQ(full[1], 16);
    T_EQ(full[2], 32);
    /* two grids: unit numbers continue across grids */
    struct vit_grid two[2] = {{1, 4, 6}, {1, 10, 12}};
    T_EQ(vitw_window_index(two, 2, 2, 4, g_widx, g_cu), 6);
    T_EQ(g_widx[6], 6);
    T_EQ(g_widx[22], 10);
    T_EQ(g_cu[1], 24);
    T_EQ(g_cu[5], 144);
}

static void test_positions(void) {
    /* grid (2, 4, 6): rows ordered (gt, bh, bw, mh, mw) */
    struct vit_grid g = {2, 4, 6};
    int32_t pos[2 * 48];
    vitw_positions(&g, 1, 2, pos, 48);
    static const int32_t r0[8] = {0, 0, 1, 1, 0, 0, 1, 1}, c0[8] = {0, 1, 0, 1, 2, 3, 2, 3};
    int ok = 1;
    for (int i = 0; i < 8; i++) ok &= pos[i] == r0[i] && pos[48 + i] == c0[i];
    T_OK(ok);
    /* row 12 = bh 1, bw 0: patch (2, 0); row 23 = bh 1, bw 2, (1, 1): patch (3, 5) */
    T_EQ(pos[12], 2);
    T_EQ(pos[48 + 12], 0);
    T_EQ(pos[23], 3);
    T_EQ(pos[48 + 23], 5);
    /* the second temporal group repeats the first */
    T_OK(memcmp(pos, pos + 24, 24 * sizeof(int32_t)) == 0);
    T_OK(memcmp(pos + 48, pos + 72, 24 * sizeof(int32_t)) == 0);
    int32_t units[3] = {2, 0, 1}, rows[12];
    vitw_expand_rows(units, 3, 4, rows);
    T_EQ(rows[0], 8);
    T_EQ(rows[3], 11);
    T_EQ(rows[4], 0);
    T_EQ(rows[11], 7);
}

static void test_check(void) {
    struct err e = {0};
    int64_t n = 0;
    struct vit_grid ok[2] = {{1, 4, 6}, {2, 4, 4}};
    T_RC(vitw_check(ok, 2, 2, 1000, &n, &e), &e);
    T_EQ(n, 56);
    struct vit_grid bad[] = {{0, 4, 4}, {1, 3, 4}, {1, 4, 5}, {1, 0, 4}, {-1, 4, 4}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e = (struct err){0};
        T_FAILS(vitw_check(&bad[i], 1, 2, 1000, &n, &e), VELA_EINVAL, &e);
    }
    e = (struct err){0};
    T_FAILS(vitw_check(ok, 2, 2, 55, &n, &e), VELA_ELIMIT, &e);
    struct vit_grid huge = {1 << 30, 1 << 30, 1 << 30};
    e = (struct err){0};
    T_FAILS(vitw_check(&huge, 1, 2, VELA_VIT_MAX_PATCHES, &n, &e), VELA_ELIMIT, &e);
    e = (struct err){0};
    T_FAILS(vitw_check(ok, 0, 2, 1000, &n, &e), VELA_EINVAL, &e);
    T_EQ(vitw_window_units(112, 2, 14), 4);
    T_EQ(vitw_window_units(0, 2, 14), 0);
}

/* transformers' algorithm written literally: the unit index grid padded with -100, cut into
 * ws x ws windows (row-major), filtered; cu from per-window counts, then de-duplicated. */
static int64_t ref_window_index(const struct vit_grid *g, int32_t n, int32_t ws, int32_t *widx,
                                int32_t *cu) {
    static int32_t pad[CAP];
    int64_t ni = 0, nc = 1, base = 0;
    cu[0] = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t lh = g[i].h / 2, lw = g[i].w / 2;
        int32_t ph = lh + ws - lh % ws, pw = lw + ws - lw % ws;
        for (int32_t t = 0; t < g[i].t; t++) {
            for (int32_t r = 0; r < ph; r++)
                for (int32_t c = 0; c < pw; c++)
                    pad[r * pw + c] =
                        r < lh && c < lw ? (int32_t)(base + (t * lh + r) * lw + c) : -100;
            for (int32_t wr = 0; wr < ph / ws; wr++)
                for (int32_t wc = 0; wc < pw / ws; wc++) {
                    int32_t cnt = 0;
                    for (int32_t r = 0; r < ws; r++)
                        for (int32_t c = 0; c < ws; c++) {
                            int32_t u = pad[(wr * ws + r) * pw + wc * ws + c];
                            if (u != -100) widx[ni++] = u, cnt++;
                        }
                    int32_t next = cu[nc - 1] + cnt * 4;
                    if (next != cu[nc - 1]) cu[nc++] = next; /* unique_consecutive */
                }
        }
        base += (int64_t)g[i].t * lh * lw;
    }
    return nc;
}

static void test_random_grids(void) {
    uint32_t s = 12345;
    int bad = 0;
    for (int it = 0; it < 300; it++) {
        struct vit_grid g[3];
        int32_t n = 1 + (int32_t)(it % 3);
        for (int32_t i = 0; i < n; i++) {
            s = s * 1664525u + 1013904223u;
            g[i].t = 1 + (int32_t)((s >> 8) % 3);
            g[i].h = 2 * (1 + (int32_t)((s >> 12) % 20));
            g[i].w = 2 * (1 + (int32_t)((s >> 20) % 20));
        }
        int64_t n1 = vitw_window_index(g, n, 2, 4, g_widx, g_cu);
        int64_t n2 = ref_window_index(g, n, 4, g_ref_widx, g_ref_cu);
        int64_t units = 0;
        for (int32_t i = 0; i < n; i++) units += (int64_t)g[i].t * g[i].h * g[i].w / 4;
        if (n1 != n2 || memcmp(g_widx, g_ref_widx, (size_t)units * 4) != 0 ||
            memcmp(g_cu, g_ref_cu, (size_t)n1 * 4) != 0 || g_cu[n1 - 1] != units * 4)
            bad++;
    }
    T_EQ(bad, 0);
}

int main(void) {
    T_RUN(test_spec_example);
    T_RUN(test_large_image);
    T_RUN(test_padding_quirk_and_video);
    T_RUN(test_positions);
    T_RUN(test_check);
    T_RUN(test_random_grids);
    return t_done();
}
