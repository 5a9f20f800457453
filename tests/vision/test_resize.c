/* Tests for vision/resize.c: Pillow-exact BICUBIC. For every reference case the resized bytes
 * must equal Pillow's Image.resize output (crc32 from tools/image_reference.py), covering
 * upscaling (tiny images), downscaling with antialiasing (photos, wood-d.webp), one-axis
 * changes and identity; plus properties that need no fixture. */
#include "img_fixture.h"
#include "t.h"
#include "vision/decode.h"
#include "vision/resize.h"

static void test_reference_resizes(void) {
    json_t *doc = fx_load_reference();
    if (!doc) return;
    size_t i;
    json_t *c;
    int n_checked = 0;
    json_array_foreach(json_object_get(doc, "cases"), i, c) {
        if (!json_object_get(c, "resized_crc32")) continue;
        const char *file = json_string_value(json_object_get(c, "file"));
        int32_t rh = (int32_t)fx_int(c, "resized_h"), rw = (int32_t)fx_int(c, "resized_w");
        /* The 3584x3584 wood-d resize is the slowest case; the 200704 budget covers it. */
        if (rh * (int64_t)rw > 4000000) continue;
        size_t n = 0;
        uint8_t *buf = fx_read_image(c, &n);
        if (!buf) continue;
        struct image im = {0}, out = {0};
        struct err e = {0};
        int rc = img_decode(&im, buf, n, NULL, &e);
        if (rc == 0) rc = img_resize_bicubic(&out, &im, rw, rh, &e);
        T_CHECK_(rc == 0, "%s: %s", file, e.msg);
        if (rc == 0) {
            uint32_t crc = fx_crc(out.rgb, (size_t)rw * rh * 3);
            T_CHECK_(crc == (uint32_t)fx_int(c, "resized_crc32"),
                     "%s -> %dx%d: bytes differ from Pillow's BICUBIC", file, rw, rh);
            n_checked++;
        }
        img_deinit(&im);
        img_deinit(&out);
        free(buf);
    }
    T_OK(n_checked >= 50);
    json_decref(doc);
}

static int fill(struct image *im, int32_t w, int32_t h, uint8_t v) {
    struct err e = {0};
    if (img_alloc(im, w, h, &e) != 0) return -1;
    memset(im->rgb, v, (size_t)w * h * 3);
    return 0;
}

/* A constant image stays constant at any scale (weights are normalized per pixel). */
static void test_constant(void) {
    const int32_t sizes[][2] = {{1, 1}, {3, 7}, {100, 3}, {57, 57}, {13, 200}};
    struct image in = {0};
    T_OK(fill(&in, 41, 29, 200) == 0);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        struct image out = {0};
        struct err e = {0};
        int rc = img_resize_bicubic(&out, &in, sizes[s][0], sizes[s][1], &e);
        T_RC(rc, &e);
        int bad = 0;
        for (size_t k = 0; rc == 0 && k < (size_t)sizes[s][0] * sizes[s][1] * 3; k++)
            bad += out.rgb[k] != 200;
        T_EQ(bad, 0);
        img_deinit(&out);
    }
    img_deinit(&in);
}

/* Same size: an exact copy (Pillow returns im.copy()). Bad sizes: EINVAL. */
static void test_identity_and_errors(void) {
    struct image in = {0}, out = {0};
    struct err e = {0};
    T_OK(fill(&in, 5, 4, 0) == 0);
    for (int k = 0; k < 60; k++) in.rgb[k] = (uint8_t)(k * 37);
    T_RC(img_resize_bicubic(&out, &in, 5, 4, &e), &e);
    T_OK(out.rgb && out.rgb != in.rgb && memcmp(out.rgb, in.rgb, 60) == 0);
    img_deinit(&out);
    T_FAILS(img_resize_bicubic(&out, &in, 0, 4, &e), VELA_EINVAL, &e);
    T_FAILS(img_resize_bicubic(&out, &in, 5, -1, &e), VELA_EINVAL, &e);
    T_OK(out.rgb == NULL);
    img_deinit(&in);
}

/* Hand-computed: 2 -> 1 pixel horizontally. scale 2, support 4, taps 0..1 weighted
 * bicubic(+-0.25) equally -> the mean, rounded: (10 + 21) / 2 = 15.5 -> 16. */
static void test_small_by_hand(void) {
    struct image in = {0}, out = {0};
    struct err e = {0};
    T_OK(fill(&in, 2, 1, 0) == 0);
    in.rgb[0] = 10, in.rgb[3] = 21;
    T_RC(img_resize_bicubic(&out, &in, 1, 1, &e), &e);
    if (out.rgb) T_EQ(out.rgb[0], 16);
    img_deinit(&out);
    img_deinit(&in);
}

int main(void) {
    T_RUN(test_reference_resizes);
    T_RUN(test_constant);
    T_RUN(test_identity_and_errors);
    T_RUN(test_small_by_hand);
    return t_done();
}
