/* Tests for util: err, arena, size, json getters, bf16, file helpers. */
#include "t.h"
#include "util/arena.h"
#include "util/bf16.h"
#include "util/err.h"
#include "util/file.h"
#include "util/json.h"
#include "util/size.h"

#include <stdint.h>

static void test_err(void) {
    struct err e = {0};
    T_EQ(err_set(&e, VELA_EFORMAT, "bad %d", 7), VELA_EFORMAT);
    T_STREQ(e.msg, "bad 7");
    err_wrap(&e, "file %s", "x.json");
    T_STREQ(e.msg, "file x.json: bad 7");
    T_EQ(e.code, VELA_EFORMAT);
    T_STREQ(err_code_name(VELA_ELIMIT), "ELIMIT");
    T_EQ(err_set(NULL, VELA_EIO, "ignored"), VELA_EIO);
}

static void test_arena(void) {
    struct arena a;
    T_EQ(arena_init(&a, 1000), 0);
    char *p = arena_alloc(&a, 10, 1);
    T_OK(p != NULL);
    double *d = arena_alloc(&a, sizeof(double) * 4, 64);
    T_OK(d != NULL && ((uintptr_t)d & 63) == 0);
    T_OK(arena_alloc(&a, 1 << 20, 8) == NULL); /* past capacity fails, does not grow */
    T_OK(arena_alloc(&a, 8, 3) == NULL);       /* bad alignment */
    T_OK(arena_calloc(&a, SIZE_MAX / 2, 4, 8) == NULL);
    size_t peak = a.peak;
    arena_reset(&a);
    T_EQ(a.used, 0);
    T_EQ(a.peak, peak);
    arena_deinit(&a);
    arena_deinit(&a); /* idempotent */
}

static void test_size(void) {
    size_t out = 0;
    T_OK(size_mul_ok(1u << 20, 1u << 10, &out) && out == (size_t)1 << 30);
    T_OK(!size_mul_ok(SIZE_MAX / 2 + 1, 2, &out));
    T_OK(!size_add_ok(SIZE_MAX, 1, &out));
    uint64_t u;
    T_OK(!u64_mul_ok(UINT64_MAX, 3, &u));
}

static void test_json(void) {
    struct err e = {0};
    json_t *j = NULL;
    const char *txt = "{\"a\": 5, \"b\": 2.0, \"c\": 2.5, \"s\": \"x\", \"t\": true, "
                      "\"arr\": [1,2,3], \"one\": 7, \"o\": {}, \"n\": null}";
    T_RC(ju_load_buf(txt, strlen(txt), "t", &j, &e), &e);
    int64_t v = -1;
    T_EQ(ju_int(j, "a", JU_REQUIRED, 0, 10, &v, &e), 0);
    T_EQ(v, 5);
    T_EQ(ju_int(j, "b", JU_REQUIRED, 0, 10, &v, &e), 0);
    T_EQ(v, 2);
    T_FAILS(ju_int(j, "c", JU_REQUIRED, 0, 10, &v, &e), VELA_EINVAL, &e);
    T_FAILS(ju_int(j, "a", JU_REQUIRED, 6, 10, &v, &e), VELA_EINVAL, &e);
    T_OK(strstr(e.msg, "'a'") != NULL);
    T_FAILS(ju_int(j, "zz", JU_REQUIRED, 0, 10, &v, &e), VELA_ENOTFOUND, &e);
    v = 42;
    T_EQ(ju_int(j, "zz", JU_OPTIONAL, 0, 10, &v, &e), 0);
    T_EQ(v, 42);
    T_EQ(ju_int(j, "n", JU_OPTIONAL, 0, 10, &v, &e), 0); /* null reads as absent */
    T_FAILS(ju_int(j, "s", JU_REQUIRED, 0, 10, &v, &e), VELA_EINVAL, &e);
    int32_t ids[4];
    int n = 0;
    T_EQ(ju_i32_array(j, "arr", JU_REQUIRED, 0, 9, ids, 4, &n, &e), 0);
    T_EQ(n, 3);
    T_EQ(ids[2], 3);
    T_EQ(ju_i32_array(j, "one", JU_REQUIRED, 0, 9, ids, 4, &n, &e), 0);
    T_EQ(n, 1);
    T_FAILS(ju_i32_array(j, "arr", JU_REQUIRED, 0, 9, ids, 2, &n, &e), VELA_EINVAL, &e);
    bool b = false;
    T_EQ(ju_bool(j, "t", JU_REQUIRED, &b, &e), 0);
    T_OK(b);
    const char *s = NULL;
    T_EQ(ju_str(j, "s", JU_REQUIRED, &s, &e), 0);
    T_STREQ(s, "x");
    const json_t *o = NULL;
    T_EQ(ju_obj(j, "o", JU_REQUIRED, &o, &e), 0);
    T_FAILS(ju_obj(j, "a", JU_REQUIRED, &o, &e), VELA_EINVAL, &e);
    json_decref(j);

    T_FAILS(ju_load_buf("{\"a\":", 5, "broken", &j, &e), VELA_EFORMAT, &e);
    T_FAILS(ju_load_buf("[1]", 3, "array", &j, &e), VELA_EFORMAT, &e);
    T_FAILS(ju_load_buf("{\"a\":1,\"a\":2}", 13, "dup", &j, &e), VELA_EFORMAT, &e);
}

static void test_bf16(void) {
    T_EQ(f32_to_bf16(1.0f), 0x3f80);
    T_NEAR(bf16_to_f32(0x3f80), 1.0, 0);
    /* ties round to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 */
    T_EQ(f32_to_bf16(1.0f + 1.0f / 256.0f), 0x3f80);
    T_EQ(f32_to_bf16(1.0f + 3.0f / 256.0f), 0x3f82);
    T_OK(isnan(bf16_to_f32(f32_to_bf16(NAN))));
    T_NEAR(f16_to_f32(0x3c00), 1.0, 0);
    T_NEAR(f16_to_f32(0xc000), -2.0, 0);
    T_NEAR(f16_to_f32(0x0001), 5.9604644775390625e-8, 0); /* smallest subnormal */
    T_OK(isinf(f16_to_f32(0x7c00)));
}

static void test_file(void) {
    struct err e = {0};
    const char *dir = t_tmpdir("util");
    T_OK(dir != NULL);
    if (!dir) return;
    char path[4200];
    T_EQ(path_join(path, sizeof path, dir, "a/b/c", &e), 0);
    T_EQ(file_mkdirs(path, &e), 0);
    T_OK(file_is_dir(path));
    T_EQ(path_join(path, sizeof path, dir, "f.txt", &e), 0);
    T_EQ(file_write_all(path, "hello", 5, &e), 0);
    char *buf = NULL;
    size_t n = 0;
    T_EQ(file_read_all(path, 100, &buf, &n, &e), 0);
    T_EQ(n, 5);
    T_STREQ(buf, "hello");
    free(buf);
    T_FAILS(file_read_all(path, 4, &buf, &n, &e), VELA_ELIMIT, &e);
    T_FAILS(file_read_all("/nonexistent/x", 4, &buf, &n, &e), VELA_ENOTFOUND, &e);
    struct file_map m;
    T_EQ(file_map_open(&m, path, &e), 0);
    T_EQ(m.len, 5);
    T_OK(memcmp(m.data, "hello", 5) == 0);
    file_map_close(&m);
    file_map_close(&m); /* closed twice: a no-op */
    char small[8];
    T_FAILS(path_join(small, sizeof small, "abcdef", "ghij", &e), VELA_ELIMIT, &e);
}

/* FILE_MAP_READ: the file's bytes (read in parts on several threads) in 2 MB-aligned memory
 * of whole 2 MB units; the same errors as the mapping for a missing file or a directory; an
 * empty file gives no memory. */
static void test_file_read_mode(void) {
    struct err e = {0};
    const char *dir = t_tmpdir("util_read");
    T_OK(dir != NULL);
    if (!dir) return;
    /* past four huge pages, not a multiple of one: read in parts on several threads */
    size_t n = ((size_t)9 << 20) + 12345;
    unsigned char *buf = malloc(n);
    T_OK(buf != NULL);
    if (!buf) return;
    for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)(i * 2654435761u >> 13);
    char path[4200], empty[4200];
    T_EQ(path_join(path, sizeof path, dir, "blob.bin", &e), 0);
    T_EQ(path_join(empty, sizeof empty, dir, "empty.bin", &e), 0);
    T_EQ(file_write_all(path, buf, n, &e), 0);
    T_EQ(file_write_all(empty, "", 0, &e), 0);
    struct file_map m, mm;
    T_RC(file_map_open_mode(&m, path, FILE_MAP_READ, &e), &e);
    T_RC(file_map_open_mode(&mm, path, FILE_MAP_MMAP, &e), &e);
    T_EQ(m.len, n);
    T_OK(m.data && memcmp(m.data, buf, n) == 0);
    T_OK(mm.data && memcmp(mm.data, m.data, n) == 0);
    T_EQ((uintptr_t)m.data % ((uintptr_t)2 << 20), 0);
    T_EQ(m.map_bytes, (size_t)10 << 20);
    file_map_close(&m);
    file_map_close(&mm);
    T_EQ(file_map_open_mode(&m, empty, FILE_MAP_READ, &e), 0);
    T_OK(m.data == NULL && m.len == 0);
    file_map_close(&m);
    T_FAILS(file_map_open_mode(&m, "/nonexistent/x", FILE_MAP_READ, &e), VELA_ENOTFOUND, &e);
    T_FAILS(file_map_open_mode(&m, dir, FILE_MAP_READ, &e), VELA_EIO, &e);
    free(buf);
}

/* A file larger than the available memory is refused with VELA_ENOMEM before anything is
 * read (a sparse file: no disk used); mapping it still works. */
static void test_file_read_too_big(void) {
    struct err e = {0};
    size_t avail = 0;
    if (file_mem_available(&avail, &e) != 0) {
        T_SKIP("no /proc/meminfo: %s", e.msg);
        return;
    }
    T_OK(avail > (16u << 20)); /* any machine running the tests has 16 MiB free */
    const char *dir = t_tmpdir("util_big");
    T_OK(dir != NULL);
    if (!dir) return;
    char path[4200];
    T_EQ(path_join(path, sizeof path, dir, "sparse.bin", &e), 0);
    FILE *f = fopen(path, "wb");
    T_OK(f != NULL);
    if (!f) return;
    off_t size = (off_t)(avail + ((size_t)1 << 30));
    int rc = ftruncate(fileno(f), size);
    fclose(f);
    if (rc != 0) {
        T_SKIP("cannot make a sparse file of %lld bytes here", (long long)size);
        return;
    }
    struct file_map m;
    T_FAILS(file_map_open_mode(&m, path, FILE_MAP_READ, &e), VELA_ENOMEM, &e);
    T_OK(strstr(e.msg, "available") != NULL);
    T_RC(file_map_open_mode(&m, path, FILE_MAP_MMAP, &e), &e);
    T_EQ(m.len, (size_t)size);
    file_map_close(&m);
    remove(path);
}

int main(void) {
    T_RUN(test_err);
    T_RUN(test_arena);
    T_RUN(test_size);
    T_RUN(test_json);
    T_RUN(test_bf16);
    T_RUN(test_file);
    T_RUN(test_file_read_mode);
    T_RUN(test_file_read_too_big);
    return t_done();
}
