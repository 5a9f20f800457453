/* img_fixture: helpers shared by the vision tests: loading the committed reference outputs
 * (tests/fixtures/images/reference.json, written by tools/image_reference.py), reading an
 * image file named by a case (shared test images or tests/fixtures/images) and checksums. */
#ifndef VELA_TESTS_VISION_IMG_FIXTURE_H
#define VELA_TESTS_VISION_IMG_FIXTURE_H

#include "t.h"
#include "util/file.h"
#include "util/json.h"

#include <stdint.h>
#include <zlib.h>

/* The reference document, or NULL (test marked failed: the fixture is committed). */
static inline json_t *fx_load_reference(void) {
    struct err e = {0};
    json_t *doc = NULL;
    int rc = ju_load_file(t_src("tests/fixtures/images/reference.json"), 64u << 20, &doc, &e);
    T_RC(rc, &e);
    return rc == 0 ? doc : NULL;
}

/* Reads the image of a case; NULL (and a skip) when shared data is missing. *n gets the size;
 * the caller frees the buffer. */
static inline uint8_t *fx_read_image(const json_t *c, size_t *n) {
    const char *file = json_string_value(json_object_get(c, "file"));
    const char *src = json_string_value(json_object_get(c, "source"));
    if (!file || !src) return NULL;
    char rel[512];
    const char *path;
    if (strcmp(src, "shared") == 0) {
        snprintf(rel, sizeof rel, "testdata/images/%s", file);
        path = t_shared(rel);
        if (!path) return NULL;
    } else {
        snprintf(rel, sizeof rel, "tests/fixtures/images/%s", file);
        path = t_src(rel);
    }
    char *buf = NULL;
    struct err e = {0};
    int rc = file_read_all(path, 256u << 20, &buf, n, &e);
    T_RC(rc, &e);
    return (uint8_t *)buf;
}

static inline int64_t fx_int(const json_t *c, const char *key) {
    return (int64_t)json_integer_value(json_object_get(c, key));
}

static inline double fx_num(const json_t *c, const char *key) {
    return json_number_value(json_object_get(c, key));
}

static inline uint32_t fx_crc(const void *p, size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    const uint8_t *b = p;
    while (n > 0) { /* zlib takes uInt lengths */
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, b, chunk);
        b += chunk;
        n -= chunk;
    }
    return (uint32_t)crc;
}

#endif
