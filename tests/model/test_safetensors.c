/* Tests for model/safetensors: writer -> reader round trips, sharded checkpoints with an
 * index, and hand-made broken files, each of which must be rejected with a message that
 * names the file and the tensor or field (leaks are caught by the sanitizer build).
 * VELA_TEST_LARGE=1 adds a > 4 GB writer/reader round trip (slow, needs ~5 GB of disk). */
#include "t.h"
#include "model/safetensors.h"
#include "util/err.h"
#include "util/bf16.h"
#include "util/file.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers --------------------------------------------------------------------------- */

/* Builds a file image: u64 header length (hdr_len, or strlen(hdr) when UINT64_MAX), the
 * header text and data_len bytes of data (0, 1, 2, ...). Caller frees. */
static unsigned char *make_image(const char *hdr, uint64_t hdr_len, size_t data_len,
                                 size_t *len_out) {
    size_t nh = strlen(hdr);
    if (hdr_len == UINT64_MAX) hdr_len = nh;
    unsigned char *buf = malloc(8 + nh + data_len + 1);
    if (!buf) return NULL;
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hdr_len >> (8 * i));
    memcpy(buf + 8, hdr, nh);
    for (size_t i = 0; i < data_len; i++) buf[8 + nh + i] = (unsigned char)i;
    *len_out = 8 + nh + data_len;
    return buf;
}

/* Parses a header with data_len bytes of data; returns st_parse's code. */
static int parse_hdr(const char *hdr, size_t data_len, struct err *e) {
    size_t len = 0;
    unsigned char *buf = make_image(hdr, UINT64_MAX, data_len, &len);
    if (!buf) return VELA_ENOMEM;
    struct st_file *f = NULL;
    err_clear(e);
    int rc = st_parse(&f, buf, len, "bad.safetensors", e);
    st_close(f);
    free(buf);
    return rc;
}

static int write_file(const char *path, const void *data, size_t n) {
    struct err e = {0};
    return file_write_all(path, data, n, &e);
}

/* Expects st_parse to fail on hdr with code and a message containing want (and the file). */
#define T_BAD(hdr, data_len, code, want)                                                           \
    do {                                                                                           \
        struct err e_ = {0};                                                                       \
        T_FAILS(parse_hdr((hdr), (data_len), &e_), (code), &e_);                                   \
        T_CHECK_(strstr(e_.msg, (want)) && strstr(e_.msg, "bad.safetensors"),                      \
                 "message \"%s\" should name the file and contain \"%s\"", e_.msg, (want));        \
    } while (0)

/* A one-tensor header: {"t": {"dtype": D, "shape": S, "data_offsets": O}}. */
static const char *one(const char *dtype, const char *shape, const char *offsets) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "{\"t\":{\"dtype\":%s,\"shape\":%s,\"data_offsets\":%s}}", dtype,
             shape, offsets);
    return buf;
}

/* ---- dtypes ---------------------------------------------------------------------------- */

static void test_dtypes(void) {
    T_EQ(st_dtype_parse("BF16"), ST_BF16);
    T_EQ(st_dtype_parse("BOOL"), ST_BOOL);
    T_EQ(st_dtype_parse("bf16"), -1);
    T_EQ(st_dtype_parse("F8_E4M3"), -1);
    T_EQ(st_dtype_size(ST_F64), 8);
    T_EQ(st_dtype_size(ST_I16), 2);
    T_EQ(st_dtype_size(ST_N_DTYPES), 0);
    T_STREQ(st_dtype_name(ST_I64), "I64");
    for (int d = 0; d < ST_N_DTYPES; d++) T_EQ(st_dtype_parse(st_dtype_name(d)), d);
}

/* ---- round trip ------------------------------------------------------------------------ */

struct spec {
    const char *name;
    enum st_dtype dtype;
    int32_t n_dims;
    int64_t shape[VELA_ST_MAX_DIMS];
};

static const struct spec specs[] = {
    {"w.f32", ST_F32, 2, {2, 3}},
    {"w.bf16", ST_BF16, 1, {5}},
    {"scalar", ST_I64, 0, {0}},
    {"empty", ST_U8, 2, {0, 5}},
    {"conv.5d", ST_F16, 5, {2, 1, 3, 2, 2}},
    {"mask", ST_BOOL, 1, {3}},
    {"i8", ST_I8, 1, {7}},
    {"i16", ST_I16, 2, {1, 3}},
    {"i32", ST_I32, 1, {2}},
    {"f64", ST_F64, 1, {3}},
};
#define N_SPECS ((int)(sizeof specs / sizeof specs[0]))

static size_t spec_bytes(const struct spec *s) {
    size_t n = st_dtype_size(s->dtype);
    for (int i = 0; i < s->n_dims; i++) n *= (size_t)s->shape[i];
    return n;
}

/* Byte k of tensor i: distinct per tensor so a mixed-up offset shows. */
static unsigned char spec_byte(int i, size_t k) {
    return (unsigned char)(31 * i + 7 * k + 1);
}

static int write_specs(const char *path, const struct spec *sp, int n, struct err *e) {
    struct st_writer *w = NULL;
    int rc = st_writer_new(&w, path, e);
    if (rc == 0) rc = st_writer_meta(w, "format", "pt", e);
    for (int i = 0; rc == 0 && i < n; i++)
        rc = st_writer_declare(w, sp[i].name, sp[i].dtype, sp[i].n_dims, sp[i].shape, e);
    unsigned char buf[256];
    for (int i = 0; rc == 0 && i < n; i++) {
        size_t nb = spec_bytes(&sp[i]);
        for (size_t k = 0; k < nb; k++) buf[k] = spec_byte((int)(&sp[i] - specs), k);
        /* two pieces, to exercise partial writes */
        rc = st_writer_write(w, buf, nb / 2, e);
        if (rc == 0) rc = st_writer_write(w, buf + nb / 2, nb - nb / 2, e);
    }
    if (rc == 0) rc = st_writer_finish(w, e);
    st_writer_free(w);
    return rc;
}

static void check_specs(const struct st_tensor *t, const struct spec *s) {
    T_OK(t != NULL);
    if (!t) return;
    T_STREQ(t->name, s->name);
    T_EQ(t->dtype, s->dtype);
    T_EQ(t->n_dims, s->n_dims);
    int64_t n = 1;
    for (int i = 0; i < s->n_dims; i++) {
        T_EQ(t->shape[i], s->shape[i]);
        n *= s->shape[i];
    }
    T_EQ(t->n_elems, n);
    T_EQ(t->n_bytes, spec_bytes(s));
    const unsigned char *p = t->data;
    int bad = 0;
    for (size_t k = 0; k < t->n_bytes; k++) bad += p[k] != spec_byte((int)(s - specs), k);
    T_EQ(bad, 0);
}

static void test_round_trip(void) {
    const char *dir = t_tmpdir("st-rt");
    T_OK(dir != NULL);
    if (!dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct err e = {0};
    T_RC(write_specs(path, specs, N_SPECS, &e), &e);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    T_OK(!file_exists(tmp));

    /* the data section starts 8-byte aligned (header padded with spaces) */
    char *raw = NULL;
    size_t raw_len = 0;
    T_RC(file_read_all(path, 1 << 20, &raw, &raw_len, &e), &e);
    if (raw && raw_len >= 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = (n << 8) | (unsigned char)raw[i];
        T_EQ((8 + n) % 8, 0);
        T_OK(raw[8] == '{');
    }
    free(raw);

    struct st_file *f = NULL;
    T_RC(st_open(&f, path, &e), &e);
    T_EQ(st_file_count(f), N_SPECS);
    const struct st_tensor *first = st_file_tensor(f, 0);
    T_OK(first && (uintptr_t)first->data % 8 == 0 && st_tensor_aligned(first));
    for (int i = 0; i < N_SPECS; i++) {
        check_specs(st_file_find(f, specs[i].name), &specs[i]);
        check_specs(st_file_tensor(f, i), &specs[i]); /* data-offset order = declaration */
    }
    T_OK(st_file_find(f, "missing") == NULL);
    T_OK(st_file_tensor(f, N_SPECS) == NULL && st_file_tensor(f, -1) == NULL);
    T_STREQ(st_file_meta(f, "format"), "pt");
    T_OK(st_file_meta(f, "nope") == NULL);
    const struct st_tensor *sc = st_file_find(f, "scalar");
    T_OK(sc && sc->n_dims == 0 && sc->n_elems == 1 && sc->n_bytes == 8);
    st_close(f);

    /* the same directory opens as a one-file model */
    struct st_model *m = NULL;
    T_RC(st_model_open(&m, dir, &e), &e);
    T_EQ(st_model_count(m), N_SPECS);
    T_EQ(st_model_shard_count(m), 1);
    uint64_t total = 0;
    for (int i = 0; i < N_SPECS; i++) total += spec_bytes(&specs[i]);
    T_EQ(st_model_total_bytes(m), total);
    check_specs(st_model_find(m, "conv.5d"), &specs[4]);
    T_OK(st_model_find(m, "nope") == NULL);
    st_model_close(m);
    st_close(NULL);
    st_model_close(NULL);
}

static void test_writer_misuse(void) {
    const char *dir = t_tmpdir("st-w");
    T_OK(dir != NULL);
    if (!dir) return;
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    struct err e = {0};
    int64_t shape[2] = {2, 2};
    float data[5] = {0};

    struct st_writer *w = NULL;
    T_RC(st_writer_new(&w, path, &e), &e);
    T_RC(st_writer_declare(w, "a", ST_F32, 2, shape, &e), &e);
    T_FAILS(st_writer_declare(w, "a", ST_F32, 2, shape, &e), VELA_EINVAL, &e);
    st_writer_free(w);
    T_OK(!file_exists(tmp) && !file_exists(path));

    T_RC(st_writer_new(&w, path, &e), &e);
    T_RC(st_writer_declare(w, "a", ST_F32, 2, shape, &e), &e);
    T_FAILS(st_writer_write(w, data, sizeof data, &e), VELA_EINVAL, &e); /* 20 > 16 bytes */
    T_OK(strstr(e.msg, "'a'") != NULL);
    st_writer_free(w);

    T_RC(st_writer_new(&w, path, &e), &e);
    T_RC(st_writer_declare(w, "a", ST_F32, 2, shape, &e), &e);
    T_RC(st_writer_write(w, data, 8, &e), &e);
    T_FAILS(st_writer_declare(w, "b", ST_F32, 2, shape, &e), VELA_EINVAL, &e);
    st_writer_free(w);

    T_RC(st_writer_new(&w, path, &e), &e);
    T_RC(st_writer_declare(w, "a", ST_F32, 2, shape, &e), &e);
    T_RC(st_writer_write(w, data, 8, &e), &e);
    T_FAILS(st_writer_finish(w, &e), VELA_EINVAL, &e); /* 8 of 16 bytes */
    T_OK(strstr(e.msg, "8 of its 16") != NULL);
    st_writer_free(w);
    T_OK(!file_exists(tmp) && !file_exists(path));

    int64_t neg[1] = {-1}, huge[3] = {INT64_MAX, INT64_MAX, 2};
    T_RC(st_writer_new(&w, path, &e), &e);
    T_FAILS(st_writer_declare(w, "n", ST_F32, 1, neg, &e), VELA_EINVAL, &e);
    st_writer_free(w);
    T_RC(st_writer_new(&w, path, &e), &e);
    T_FAILS(st_writer_declare(w, "h", ST_U8, 3, huge, &e), VELA_EINVAL, &e);
    st_writer_free(w);
    T_RC(st_writer_new(&w, path, &e), &e);
    T_FAILS(st_writer_declare(w, "", ST_U8, 0, NULL, &e), VELA_EINVAL, &e);
    st_writer_free(w);

    /* no tensors at all is a valid file */
    T_RC(st_writer_new(&w, path, &e), &e);
    T_RC(st_writer_finish(w, &e), &e);
    st_writer_free(w);
    struct st_file *f = NULL;
    T_RC(st_open(&f, path, &e), &e);
    T_EQ(st_file_count(f), 0);
    st_close(f);

    char bad[4200];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.safetensors", dir);
    T_FAILS(st_writer_new(&w, bad, &e), VELA_EIO, &e);
    T_OK(w == NULL);
}

/* ---- sharded checkpoints --------------------------------------------------------------- */

static const char *shard_names[] = {"model-00001-of-00002.safetensors",
                                    "model-00002-of-00002.safetensors"};

/* Writes specs[0..4) to shard 1 and specs[4..N) to shard 2, plus the index unless bad. */
static void write_sharded(const char *dir, struct err *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, shard_names[0]);
    T_RC(write_specs(path, specs, 4, e), e);
    snprintf(path, sizeof path, "%s/%s", dir, shard_names[1]);
    T_RC(write_specs(path, specs + 4, N_SPECS - 4, e), e);
}

static void write_index_text(const char *dir, const char *txt) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    T_EQ(write_file(path, txt, strlen(txt)), 0);
}

static void test_sharded(void) {
    const char *d = t_tmpdir("st-shard");
    T_OK(d != NULL);
    if (!d) return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", d);
    struct err e = {0};
    write_sharded(dir, &e);
    const char *names[N_SPECS], *shards[N_SPECS];
    uint64_t total = 0;
    for (int i = 0; i < N_SPECS; i++) {
        names[i] = specs[i].name;
        shards[i] = shard_names[i < 4 ? 0 : 1];
        total += spec_bytes(&specs[i]);
    }
    T_RC(st_index_write(dir, N_SPECS, names, shards, total, &e), &e);
    struct st_model *m = NULL;
    T_RC(st_model_open(&m, dir, &e), &e);
    T_EQ(st_model_count(m), N_SPECS);
    T_EQ(st_model_shard_count(m), 2);
    T_EQ(st_model_total_bytes(m), total);
    for (int i = 0; i < N_SPECS; i++) {
        const struct st_tensor *t = st_model_find(m, specs[i].name);
        check_specs(t, &specs[i]);
        if (t) T_EQ(t->shard, i < 4 ? 0 : 1);
    }
    T_OK(st_model_tensor(m, N_SPECS) == NULL && st_model_tensor(m, 0) != NULL);
    st_model_close(m);

    const char *bad_shard[1] = {"../escape.safetensors"};
    T_FAILS(st_index_write(dir, 1, names, bad_shard, 0, &e), VELA_EINVAL, &e);
}

static void test_sharded_broken(void) {
    const char *d = t_tmpdir("st-shard-bad");
    T_OK(d != NULL);
    if (!d) return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", d);
    struct err e = {0};
    struct st_model *m = NULL;
    T_FAILS(st_model_open(&m, dir, &e), VELA_ENOTFOUND, &e); /* empty directory */
    write_sharded(dir, &e);

    /* the index names a shard that does not exist */
    write_index_text(dir, "{\"weight_map\": {\"w.f32\": \"model-00003.safetensors\"}}");
    T_FAILS(st_model_open(&m, dir, &e), VELA_ENOTFOUND, &e);
    T_OK(strstr(e.msg, "model-00003.safetensors") != NULL);

    /* a shard name that leaves the directory */
    write_index_text(dir, "{\"weight_map\": {\"w.f32\": \"../model-00001-of-00002.safetensors\"}}");
    T_FAILS(st_model_open(&m, dir, &e), VELA_EFORMAT, &e);
    T_OK(strstr(e.msg, "plain file name") != NULL);
    write_index_text(dir, "{\"weight_map\": {\"w.f32\": \"sub/x.safetensors\"}}");
    T_FAILS(st_model_open(&m, dir, &e), VELA_EFORMAT, &e);

    /* a mapped tensor missing from its shard (it is in the other one) */
    write_index_text(dir, "{\"weight_map\": {\"w.f32\": \"model-00002-of-00002.safetensors\"}}");
    T_FAILS(st_model_open(&m, dir, &e), VELA_ENOTFOUND, &e);
    T_OK(strstr(e.msg, "w.f32") != NULL);

    /* shard 1 holds tensors the index does not list */
    write_index_text(dir, "{\"weight_map\": {\"w.f32\": \"model-00001-of-00002.safetensors\"}}");
    T_FAILS(st_model_open(&m, dir, &e), VELA_EFORMAT, &e);
    T_OK(strstr(e.msg, "not listed") != NULL);

    /* no weight_map, a non-string entry, not JSON */
    write_index_text(dir, "{\"metadata\": {}}");
    T_FAILS(st_model_open(&m, dir, &e), VELA_ENOTFOUND, &e);
    T_OK(strstr(e.msg, "weight_map") != NULL);
    write_index_text(dir, "{\"weight_map\": {\"w.f32\": 3}}");
    T_FAILS(st_model_open(&m, dir, &e), VELA_EFORMAT, &e);
    write_index_text(dir, "{\"weight_map\": ");
    T_FAILS(st_model_open(&m, dir, &e), VELA_EFORMAT, &e);
    T_OK(m == NULL);
}

/* ---- broken single files --------------------------------------------------------------- */

static void test_broken_prefix(void) {
    const char *dir = t_tmpdir("st-bad");
    T_OK(dir != NULL);
    if (!dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/short.safetensors", dir);
    struct err e = {0};
    struct st_file *f = NULL;
    T_EQ(write_file(path, "\x10\0\0\0\0", 5), 0); /* shorter than the length field */
    T_FAILS(st_open(&f, path, &e), VELA_EFORMAT, &e);
    T_OK(strstr(e.msg, "short.safetensors") && strstr(e.msg, "8-byte"));
    T_EQ(write_file(path, "", 0), 0); /* empty file */
    T_FAILS(st_open(&f, path, &e), VELA_EFORMAT, &e);

    size_t len = 0;
    unsigned char *img = make_image("{}", 100, 0, &len); /* length past end of file */
    T_EQ(write_file(path, img, len), 0);
    free(img);
    T_FAILS(st_open(&f, path, &e), VELA_EFORMAT, &e);
    T_OK(strstr(e.msg, "past end") != NULL);

    img = make_image("{}", (uint64_t)VELA_ST_HEADER_MAX_BYTES + 1, 0, &len);
    T_FAILS(st_parse(&f, img, len, "big", &e), VELA_ELIMIT, &e);
    free(img);
    img = make_image("{}", UINT64_MAX - 3, 0, &len); /* would overflow 8 + n */
    T_FAILS(st_parse(&f, img, len, "huge", &e), VELA_ELIMIT, &e);
    free(img);
    img = make_image("{", 1, 0, &len);
    T_FAILS(st_parse(&f, img, len, "tiny", &e), VELA_EFORMAT, &e);
    free(img);
    snprintf(path, sizeof path, "%s/absent.safetensors", dir);
    T_FAILS(st_open(&f, path, &e), VELA_ENOTFOUND, &e);
    T_OK(f == NULL);
}

static void test_broken_headers(void) {
    T_BAD("not json", 0, VELA_EFORMAT, "JSON");
    T_BAD("[1, 2]", 0, VELA_EFORMAT, "not a JSON object");
    T_BAD("{\"t\": 5}", 0, VELA_EFORMAT, "'t'");
    T_BAD(one("\"F8\"", "[1]", "[0,1]"), 1, VELA_EFORMAT, "dtype");
    T_BAD(one("5", "[1]", "[0,1]"), 1, VELA_EFORMAT, "dtype");
    T_BAD("{\"t\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1, VELA_EFORMAT, "'dtype' is missing");
    T_BAD("{\"t\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1, VELA_EFORMAT, "'shape'");
    T_BAD("{\"t\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, VELA_EFORMAT, "'data_offsets'");
    T_BAD("{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1}}", 1,
          VELA_EFORMAT, "unknown field 'x'");
    T_BAD(one("\"U8\"", "[-1]", "[0,1]"), 1, VELA_EFORMAT, "'shape'[0]");
    T_BAD(one("\"U8\"", "[1.5]", "[0,1]"), 1, VELA_EFORMAT, "'shape'[0]");
    T_BAD(one("\"U8\"", "[1, \"2\"]", "[0,2]"), 2, VELA_EFORMAT, "'shape'[1]");
    T_BAD(one("\"U8\"", "{}", "[0,1]"), 1, VELA_EFORMAT, "not an array");
    T_BAD(one("\"U8\"", "[1,1,1,1,1,1,1,1,1]", "[0,1]"), 1, VELA_EFORMAT, "9 entries");
    T_BAD(one("\"U8\"", "[8]", "[0,8]"), 4, VELA_EFORMAT, "outside"); /* past the end */
    T_BAD(one("\"U8\"", "[0]", "[4,0]"), 8, VELA_EFORMAT, "outside"); /* begin > end */
    T_BAD(one("\"U8\"", "[1]", "[0,1,2]"), 8, VELA_EFORMAT, "3 entries");
    T_BAD(one("\"U8\"", "[1]", "[0]"), 8, VELA_EFORMAT, "2 entries");
    T_BAD(one("\"U8\"", "[1]", "[-1,0]"), 8, VELA_EFORMAT, "data_offsets");
    T_BAD(one("\"F32\"", "[3]", "[0,8]"), 8, VELA_EFORMAT, "12 bytes");
    T_BAD(one("\"U8\"", "[4294967296,4294967296,4]", "[0,1]"), 1, VELA_EFORMAT, "overflow");
    T_BAD(one("\"U8\"", "[99999999999999999999]", "[0,1]"), 1, VELA_EFORMAT, "JSON");
    T_BAD("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
          "\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}",
          12, VELA_EFORMAT, "overlap");
    T_BAD("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
          "\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}",
          4, VELA_EFORMAT, "duplicate");
    T_BAD("{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, VELA_EFORMAT,
          "empty or too long");
    T_BAD("{\"__metadata__\": []}", 0, VELA_EFORMAT, "__metadata__");
    T_BAD("{\"__metadata__\": {\"k\": 1}}", 0, VELA_EFORMAT, "'k'");
    T_BAD("{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}} x", 1, VELA_EFORMAT,
          "JSON");

    /* nesting far past the JSON parser's depth limit fails cleanly (no stack overflow) */
    char *deep = malloc(200002);
    if (deep) {
        memset(deep, '[', 100000);
        memset(deep + 100000, ']', 100000);
        deep[200000] = '\0';
        T_BAD(deep, 0, VELA_EFORMAT, "JSON");
        char *in_entry = malloc(200100);
        if (in_entry) {
            snprintf(in_entry, 200100, "{\"t\":%s}", deep);
            T_BAD(in_entry, 0, VELA_EFORMAT, "JSON");
        }
        free(in_entry);
    }
    free(deep);

    char *longname = malloc(VELA_NAME_MAX + 100);
    if (longname) {
        memset(longname, 'n', VELA_NAME_MAX + 99);
        longname[VELA_NAME_MAX + 99] = '\0';
        char *hdr = malloc(VELA_NAME_MAX + 200);
        if (hdr) {
            snprintf(hdr, VELA_NAME_MAX + 200, "{\"%.*s\":{}}", VELA_NAME_MAX, longname);
            T_BAD(hdr, 0, VELA_EFORMAT, "too long");
            snprintf(hdr, VELA_NAME_MAX + 200,
                     "{\"%.*s\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}",
                     VELA_NAME_MAX - 1, longname);
            struct err e = {0};
            T_RC(parse_hdr(hdr, 1, &e), &e); /* one under the limit is fine */
        }
        free(hdr);
    }
    free(longname);
}

/* Accepted corner cases: padding, gaps, empty tensors at shared offsets, zero dims. */
static void test_valid_corners(void) {
    struct err e = {0};
    T_RC(parse_hdr("{}", 0, &e), &e);
    T_RC(parse_hdr("{}      ", 3, &e), &e);
    T_RC(parse_hdr("{\"__metadata__\":{\"a\":\"b\"}}", 0, &e), &e);
    T_RC(parse_hdr("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,2]},"
                   "\"b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,2]},"
                   "\"c\":{\"dtype\":\"U8\",\"shape\":[0,4611686018427387904],"
                   "\"data_offsets\":[4,4]},"
                   "\"d\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]},"
                   "\"e\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[3,4]}}",
                   4, &e),
         &e);

    /* tensors come back in offset order whatever the header order; data points at them */
    size_t len = 0;
    unsigned char *img =
        make_image("{\"late\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[5,7]},"
                   "\"early\":{\"dtype\":\"U8\",\"shape\":[1,1],\"data_offsets\":[0,1]}}",
                   UINT64_MAX, 7, &len);
    struct st_file *f = NULL;
    T_RC(st_parse(&f, img, len, "order", &e), &e);
    T_EQ(st_file_count(f), 2);
    const struct st_tensor *t0 = st_file_tensor(f, 0), *t1 = st_file_tensor(f, 1);
    T_OK(t0 && t1 && strcmp(t0->name, "early") == 0 && strcmp(t1->name, "late") == 0);
    if (t1) {
        T_EQ(((const unsigned char *)t1->data)[0], 5);
        T_EQ(st_tensor_aligned(t1), (uintptr_t)t1->data % 2 == 0);
    }
    st_close(f);
    free(img);
}

/* A file written by the format's reference library (committed as a fuzz seed): BF16 a =
 * arange(12) as (3, 4), I64 scalar s = -3, F32 e of shape (0, 2), BOOL b = [true, false]. */
static void test_reference_file(void) {
    const char *path = t_src("tests/fuzz/corpus/safetensors/valid_reference_writer.safetensors");
    struct err e = {0};
    struct st_file *f = NULL;
    T_RC(st_open(&f, path, &e), &e);
    if (!f) return;
    T_EQ(st_file_count(f), 4);
    T_STREQ(st_file_meta(f, "format"), "pt");
    const struct st_tensor *a = st_file_find(f, "a"), *sc = st_file_find(f, "s");
    const struct st_tensor *em = st_file_find(f, "e"), *b = st_file_find(f, "b");
    T_OK(a && sc && em && b);
    if (a && sc && em && b) {
        T_OK(a->dtype == ST_BF16 && a->n_dims == 2 && a->shape[0] == 3 && a->shape[1] == 4);
        for (int k = 0; k < 12; k++) {
            uint16_t h; /* memcpy: the format does not promise alignment */
            memcpy(&h, (const unsigned char *)a->data + 2 * k, 2);
            T_NEAR(bf16_to_f32(h), (float)k, 0.0);
        }
        int64_t v;
        memcpy(&v, sc->data, 8);
        T_OK(sc->dtype == ST_I64 && sc->n_dims == 0 && v == -3);
        T_OK(em->dtype == ST_F32 && em->n_elems == 0 && em->n_bytes == 0);
        const unsigned char *pb = b->data;
        T_OK(b->dtype == ST_BOOL && b->n_bytes == 2 && pb[0] == 1 && pb[1] == 0);
    }
    st_close(f);
}

/* The tensor-count limit, both ways; entries past the limit are never parsed. */
static void test_tensor_limit(void) {
    size_t cap = (size_t)(VELA_ST_MAX_TENSORS + 2) * 16 + 16;
    char *hdr = malloc(cap);
    if (!hdr) return;
    size_t n = 0;
    hdr[n++] = '{';
    for (int i = 0; i <= VELA_ST_MAX_TENSORS; i++)
        n += (size_t)snprintf(hdr + n, cap - n, "%s\"t%d\":0", i ? "," : "", i);
    hdr[n++] = '}';
    hdr[n] = '\0';
    struct err e = {0};
    T_FAILS(parse_hdr(hdr, 0, &e), VELA_ELIMIT, &e);
    T_OK(strstr(e.msg, "200001 tensors") != NULL);
    free(hdr);
}

/* Opt-in: a single tensor above 4 GB through the writer and back. */
static void test_large(void) {
    const char *on = getenv("VELA_TEST_LARGE");
    if (!on || strcmp(on, "1") != 0) return;
    const char *dir = t_tmpdir("st-large");
    if (!dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/big.safetensors", dir);
    const size_t chunk = (size_t)64 << 20;
    int64_t shape[1] = {(int64_t)72 * (int64_t)chunk}; /* 4.5 GiB */
    unsigned char *buf = calloc(1, chunk);
    struct err e = {0};
    struct st_writer *w = NULL;
    int rc = buf ? st_writer_new(&w, path, &e) : VELA_ENOMEM;
    if (rc == 0) rc = st_writer_declare(w, "big", ST_U8, 1, shape, &e);
    for (int i = 0; rc == 0 && i < 72; i++) {
        buf[chunk - 1] = (unsigned char)i;
        rc = st_writer_write(w, buf, chunk, &e);
    }
    if (rc == 0) rc = st_writer_finish(w, &e);
    st_writer_free(w);
    free(buf);
    T_RC(rc, &e);
    struct st_file *f = NULL;
    T_RC(st_open(&f, path, &e), &e);
    const struct st_tensor *t = st_file_find(f, "big");
    T_OK(t && t->n_bytes == (size_t)shape[0]);
    if (t) T_EQ(((const unsigned char *)t->data)[t->n_bytes - 1], 71);
    st_close(f);
    remove(path);
}

int main(void) {
    T_RUN(test_dtypes);
    T_RUN(test_round_trip);
    T_RUN(test_writer_misuse);
    T_RUN(test_sharded);
    T_RUN(test_sharded_broken);
    T_RUN(test_broken_prefix);
    T_RUN(test_broken_headers);
    T_RUN(test_valid_corners);
    T_RUN(test_reference_file);
    T_RUN(test_tensor_limit);
    T_RUN(test_large);
    return t_done();
}
