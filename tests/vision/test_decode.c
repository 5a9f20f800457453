/* Tests for vision/decode.c: every shared and generated image decodes to exactly Pillow's RGB
 * bytes (checksums from tools/image_reference.py), truncated and corrupt files fail cleanly
 * with VELA_EFORMAT, and the size limits are enforced from the header. */
#include "img_fixture.h"
#include "t.h"
#include "util/limits.h"
#include "vision/decode.h"
#include "vision/decode_internal.h"

static void test_detect(void) {
    T_EQ(img_detect_format((const uint8_t *)"\xFF\xD8\xFF\xE0", 4), IMG_FORMAT_JPEG);
    T_EQ(img_detect_format((const uint8_t *)"\x89PNG\r\n\x1a\n", 8), IMG_FORMAT_PNG);
    T_EQ(img_detect_format((const uint8_t *)"RIFF\0\0\0\0WEBPVP8 ", 16), IMG_FORMAT_WEBP);
    T_EQ(img_detect_format((const uint8_t *)"GIF89a", 6), IMG_FORMAT_GIF);
    T_EQ(img_detect_format((const uint8_t *)"\x89PN", 3), IMG_FORMAT_UNKNOWN);
    T_EQ(img_detect_format((const uint8_t *)"RIFF\0\0\0\0WAVE", 12), IMG_FORMAT_UNKNOWN);
    T_STREQ(img_format_name(IMG_FORMAT_WEBP), "WebP");
}

/* Pillow paste rounding: spot values computed with Pillow (and the identities). */
static void test_over_white(void) {
    int bad = 0;
    for (uint32_t v = 0; v < 256; v++) {
        bad += img_over_white(v, 255) != v;
        bad += img_over_white(v, 0) != 255;
    }
    T_EQ(bad, 0);
    T_EQ(img_over_white(0, 128), 127); /* 255*127/255 = 127 */
    T_EQ(img_over_white(0, 1), 254);
    T_EQ(img_over_white(100, 77), 208); /* (255*178 + 100*77)/255 = 208.19 */
}

/* Every case of the reference: decode == Pillow, byte for byte. */
static void test_reference_decodes(void) {
    json_t *doc = fx_load_reference();
    if (!doc) return;
    json_t *cases = json_object_get(doc, "cases");
    size_t i;
    json_t *c;
    int n_checked = 0;
    json_array_foreach(cases, i, c) {
        if (fx_int(c, "max_pixels") != 12845056) continue; /* each file once */
        const char *file = json_string_value(json_object_get(c, "file"));
        size_t n = 0;
        uint8_t *buf = fx_read_image(c, &n);
        if (!buf) continue;
        struct image im = {0};
        struct err e = {0};
        int rc = img_decode(&im, buf, n, NULL, &e);
        const json_t *w = json_object_get(c, "width");
        if (!w) { /* the reference could not decode it (truncated.jpg) */
            T_CHECK_(rc == VELA_EFORMAT && strstr(e.msg, "truncated"),
                     "%s: expected a truncation error, got %d (%s)", file, rc, e.msg);
        } else {
            T_CHECK_(rc == 0, "%s: decode failed: %s", file, e.msg);
            if (rc == 0) {
                T_CHECK_(im.width == fx_int(c, "width") && im.height == fx_int(c, "height"),
                         "%s: size %dx%d", file, im.width, im.height);
                uint32_t crc = fx_crc(im.rgb, (size_t)im.width * im.height * 3);
                T_CHECK_(crc == (uint32_t)fx_int(c, "rgb_crc32"),
                         "%s: RGB bytes differ from Pillow's (crc %08x vs %08x)", file, crc,
                         (unsigned)fx_int(c, "rgb_crc32"));
            }
        }
        n_checked++;
        img_deinit(&im);
        free(buf);
    }
    T_OK(n_checked >= 30);
    json_decref(doc);
}

/* Cuts every valid fixture at many points: each prefix fails with EFORMAT or decodes, never
 * crashes; prefixes missing image data must fail. */
static void test_truncated(void) {
    const char *files[] = {"gen_progressive.jpg", "gen_odd_61x47.jpg", "gen_interlaced.png",
                           "gen_rgba.png",        "gen_lossy.webp",    "gen_alpha.webp",
                           "gen_cmyk.jpg"};
    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        char rel[256], *buf = NULL;
        size_t n = 0;
        struct err e = {0};
        snprintf(rel, sizeof rel, "tests/fixtures/images/%s", files[f]);
        int rc = file_read_all(t_src(rel), 1u << 20, &buf, &n, &e);
        T_RC(rc, &e);
        if (rc != 0) continue;
        int bad = 0;
        for (size_t cut = 0; cut < n * 9 / 10; cut += 1 + cut / 8) {
            struct image im = {0};
            err_clear(&e);
            rc = img_decode(&im, (const uint8_t *)buf, cut, NULL, &e);
            if (rc != VELA_EFORMAT || e.msg[0] == '\0') {
                if (bad++ < 3)
                    fprintf(stderr, "%s cut at %zu: rc %d (%s)\n", files[f], cut, rc, e.msg);
            }
            img_deinit(&im);
        }
        T_CHECK_(bad == 0, "%s: %d truncated prefixes not rejected", files[f], bad);
        free(buf);
    }
}

static void test_garbage(void) {
    struct image im = {0};
    struct err e = {0};
    T_FAILS(img_decode(&im, NULL, 0, NULL, &e), VELA_EFORMAT, &e);
    T_FAILS(img_decode(&im, (const uint8_t *)"hello world", 11, NULL, &e), VELA_EFORMAT, &e);
    T_FAILS(img_decode(&im, (const uint8_t *)"GIF89a\1\0\1\0", 10, NULL, &e), VELA_EUNSUP, &e);
    /* Valid signatures followed by junk. */
    uint8_t junk[600];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 131 + 7);
    memcpy(junk, "\xFF\xD8\xFF\xDB", 4);
    T_FAILS(img_decode(&im, junk, sizeof junk, NULL, &e), VELA_EFORMAT, &e);
    memcpy(junk, "\x89PNG\r\n\x1a\n", 8);
    T_FAILS(img_decode(&im, junk, sizeof junk, NULL, &e), VELA_EFORMAT, &e);
    memcpy(junk, "RIFF\x50\x02\0\0WEBPVP8 ", 16);
    T_FAILS(img_decode(&im, junk, sizeof junk, NULL, &e), VELA_EFORMAT, &e);
    T_OK(im.rgb == NULL);
}

/* A PNG whose IHDR claims 30000x30000 (then an empty IDAT): rejected from the header with
 * ELIMIT, before any pixel buffer exists. */
static void test_png_header_limits(void) {
    uint8_t png[45] = {0x89, 'P', 'N', 'G',  '\r', '\n', 0x1a, '\n', 0,    0, 0, 13, 'I', 'H', 'D',
                       'R',  0,   0,   0x75, 0x30, 0,    0,    0x75, 0x30, 8, 2, 0,  0,   0};
    uLong crc = crc32(0L, png + 12, 17);
    png[29] = (uint8_t)(crc >> 24), png[30] = (uint8_t)(crc >> 16), png[31] = (uint8_t)(crc >> 8),
    png[32] = (uint8_t)crc;
    memcpy(png + 33, "\0\0\0\0IDAT", 8);
    crc = crc32(0L, (const uint8_t *)"IDAT", 4);
    png[41] = (uint8_t)(crc >> 24), png[42] = (uint8_t)(crc >> 16), png[43] = (uint8_t)(crc >> 8),
    png[44] = (uint8_t)crc;
    struct image im = {0};
    struct err e = {0};
    T_FAILS(img_decode(&im, png, sizeof png, NULL, &e), VELA_ELIMIT, &e);
    T_OK(strstr(e.msg, "30000x30000") != NULL);
    /* Past the side limit (width 95536). */
    png[17] = 0x01;
    crc = crc32(0L, png + 12, 17);
    png[29] = (uint8_t)(crc >> 24), png[30] = (uint8_t)(crc >> 16), png[31] = (uint8_t)(crc >> 8),
    png[32] = (uint8_t)crc;
    T_FAILS(img_decode(&im, png, sizeof png, NULL, &e), VELA_ELIMIT, &e);
    T_OK(strstr(e.msg, "per side") != NULL);
    T_OK(im.rgb == NULL);
}

/* A baseline JPEG SOF0 claiming 60000x60000 (past 2^26 pixels): ELIMIT before decoding. */
static void test_jpeg_header_limits(void) {
    char *buf = NULL;
    size_t n = 0;
    struct err e = {0};
    int rc =
        file_read_all(t_src("tests/fixtures/images/gen_odd_61x47.jpg"), 1u << 20, &buf, &n, &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    int patched = 0;
    for (size_t i = 2; i + 9 < n; i++) {
        uint8_t *b = (uint8_t *)buf;
        if (b[i] == 0xFF && (b[i + 1] == 0xC0 || b[i + 1] == 0xC2)) {
            b[i + 5] = 0xEA, b[i + 6] = 0x60, b[i + 7] = 0xEA, b[i + 8] = 0x60;
            patched = 1;
            break;
        }
    }
    T_OK(patched);
    struct image im = {0};
    T_FAILS(img_decode(&im, (uint8_t *)buf, n, NULL, &e), VELA_ELIMIT, &e);
    free(buf);
}

static void test_caller_limits(void) {
    char *buf = NULL;
    size_t n = 0;
    struct err e = {0};
    int rc = file_read_all(t_src("tests/fixtures/images/gen_lossy.webp"), 1u << 20, &buf, &n, &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    struct img_limits lim;
    img_limits_default(&lim);
    T_EQ(lim.max_pixels, VELA_IMG_MAX_PIXELS);
    struct image im = {0};
    lim.max_side = 89; /* the image is 90x60 */
    T_FAILS(img_decode(&im, (uint8_t *)buf, n, &lim, &e), VELA_ELIMIT, &e);
    img_limits_default(&lim);
    lim.max_pixels = 90 * 60 - 1;
    T_FAILS(img_decode(&im, (uint8_t *)buf, n, &lim, &e), VELA_ELIMIT, &e);
    img_limits_default(&lim);
    lim.max_encoded_bytes = n - 1;
    T_FAILS(img_decode(&im, (uint8_t *)buf, n, &lim, &e), VELA_ELIMIT, &e);
    lim.max_encoded_bytes = n;
    lim.max_pixels = 90 * 60;
    rc = img_decode(&im, (uint8_t *)buf, n, &lim, &e);
    T_RC(rc, &e);
    T_EQ(im.width, 90);
    T_EQ(im.height, 60);
    img_deinit(&im);
    img_deinit(&im); /* twice is fine */
    img_deinit(NULL);
    free(buf);
}

/* The libjpeg memory cap scales with max_pixels: a progressive JPEG exactly at the pixel
 * limit (and one at a 1x1 limit's cap) must still decode or fail cleanly. */
static void test_jpeg_memory_cap(void) {
    const char *files[] = {"gen_progressive.jpg", "gen_cmyk.jpg"};
    const int64_t px[] = {130 * 90, 56 * 40};
    for (int f = 0; f < 2; f++) {
        char rel[128], *buf = NULL;
        size_t n = 0;
        struct err e = {0};
        snprintf(rel, sizeof rel, "tests/fixtures/images/%s", files[f]);
        int rc = file_read_all(t_src(rel), 1u << 20, &buf, &n, &e);
        T_RC(rc, &e);
        if (rc != 0) continue;
        struct img_limits lim;
        img_limits_default(&lim);
        lim.max_pixels = px[f];
        struct image im = {0};
        rc = img_decode(&im, (uint8_t *)buf, n, &lim, &e);
        T_RC(rc, &e);
        img_deinit(&im);
        free(buf);
    }
}

/* A progressive JPEG whose last scan is repeated 600 times (libjpeg only warns about the
 * bogus progression, so without a limit it would decode them all): ELIMIT after
 * VELA_IMG_MAX_JPEG_SCANS scans. The same file with the scan repeated 100 times decodes. */
static void test_jpeg_scan_limit(void) {
    char *buf = NULL;
    size_t n = 0;
    struct err e = {0};
    int rc =
        file_read_all(t_src("tests/fixtures/images/gen_progressive.jpg"), 1u << 20, &buf, &n, &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    const uint8_t *b = (const uint8_t *)buf;
    size_t last_sos = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (b[i] == 0xFF && b[i + 1] == 0xDA) last_sos = i;
    T_OK(last_sos > 0 && b[n - 2] == 0xFF && b[n - 1] == 0xD9);
    size_t seg = n - 2 - last_sos;
    const int reps[2] = {100, 600};
    for (int r = 0; r < 2 && last_sos > 0; r++) {
        size_t m = last_sos + seg * (size_t)reps[r] + 2;
        uint8_t *big = malloc(m);
        if (!big) break;
        memcpy(big, b, last_sos);
        for (int k = 0; k < reps[r]; k++)
            memcpy(big + last_sos + seg * (size_t)k, b + last_sos, seg);
        big[m - 2] = 0xFF, big[m - 1] = 0xD9;
        struct image im = {0};
        rc = img_decode(&im, big, m, NULL, &e);
        if (r == 0)
            T_RC(rc, &e);
        else
            T_FAILS(rc, VELA_ELIMIT, &e);
        img_deinit(&im);
        free(big);
    }
    free(buf);
}

/* wood-d.webp (4096x4096 = 2^24 pixels) is inside the default limits. */
static void test_large_webp(void) {
    const char *path = t_shared("testdata/images/wood-d.webp");
    if (!path) return;
    char *buf = NULL;
    size_t n = 0;
    struct err e = {0};
    int rc = file_read_all(path, VELA_IMG_MAX_ENCODED_BYTES, &buf, &n, &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    struct img_limits lim;
    img_limits_default(&lim);
    lim.max_pixels = 4096 * 4095;
    struct image im = {0};
    T_FAILS(img_decode(&im, (uint8_t *)buf, n, &lim, &e), VELA_ELIMIT, &e);
    free(buf);
}

int main(void) {
    T_RUN(test_detect);
    T_RUN(test_over_white);
    T_RUN(test_reference_decodes);
    T_RUN(test_truncated);
    T_RUN(test_garbage);
    T_RUN(test_png_header_limits);
    T_RUN(test_jpeg_header_limits);
    T_RUN(test_caller_limits);
    T_RUN(test_jpeg_memory_cap);
    T_RUN(test_jpeg_scan_limit);
    T_RUN(test_large_webp);
    return t_done();
}
