/* safetensors: parse and validate one file's header, map files, look tensors up by name.
 *
 * File layout: u64 little-endian header length N, N bytes of JSON (may end in spaces), then
 * the data section. The JSON maps each tensor name to {"dtype", "shape", "data_offsets"}
 * (offsets relative to the data section), plus an optional "__metadata__" string->string map.
 *
 * Invariants of a struct st_file once st_parse/st_open returned it:
 *  1. Every tensor has a known dtype, 0..VELA_ST_MAX_DIMS non-negative dims, and
 *     n_bytes == n_elems * st_dtype_size(dtype), computed without overflow.
 *  2. Every tensor's bytes [data, data + n_bytes) lie inside the data section, and no two
 *     non-empty tensors share a byte.
 *  3. Names are non-empty, shorter than VELA_NAME_MAX, unique, and by_name maps each name to
 *     its index; tensors are stored in data-offset order.
 *  4. Nothing is read from the data section here: pointers are only computed.
 *
 * Threading: one owner thread per st_file; see safetensors.h. */
#include "model/safetensors.h"

#include "model/st_map.h"
#include "util/file.h"
#include "util/size.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct st_file {
    char *what;          /* file name used in messages, owned */
    struct file_map map; /* the mapping (st_open only; zeroed for st_parse) */
    int64_t n;           /* tensors */
    struct st_tensor *t; /* n, in data-offset order; names owned */
    struct st_map by_name;
    int64_t n_meta;
    char **meta; /* 2 * n_meta: key, value, key, value ...; owned */
};

/* ---- dtypes ---------------------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
} st_dtypes[ST_N_DTYPES] = {
    [ST_BF16] = {"BF16", 2}, [ST_F16] = {"F16", 2},   [ST_F32] = {"F32", 4}, [ST_F64] = {"F64", 8},
    [ST_I8] = {"I8", 1},     [ST_U8] = {"U8", 1},     [ST_I16] = {"I16", 2}, [ST_I32] = {"I32", 4},
    [ST_I64] = {"I64", 8},   [ST_BOOL] = {"BOOL", 1},
};

const char *st_dtype_name(enum st_dtype d) {
    if ((int)d < 0 || d >= ST_N_DTYPES) return "?";
    return st_dtypes[d].name;
}

size_t st_dtype_size(enum st_dtype d) {
    if ((int)d < 0 || d >= ST_N_DTYPES) return 0;
    return st_dtypes[d].size;
}

int st_dtype_parse(const char *s) {
    if (!s) return -1;
    for (int i = 0; i < ST_N_DTYPES; i++)
        if (strcmp(s, st_dtypes[i].name) == 0) return i;
    return -1;
}

bool st_tensor_aligned(const struct st_tensor *t) {
    size_t a = st_dtype_size(t->dtype);
    return t->n_bytes == 0 || a == 0 || (uintptr_t)t->data % a == 0;
}

/* ---- one header entry ------------------------------------------------------------------ */

/* Reads a JSON array of at most cap non-negative integers into out. */
static int st_read_uints(const json_t *arr, size_t cap, uint64_t *out, size_t *n_out,
                         const char *field, const char *what, const char *name, struct err *e) {
    if (!json_is_array(arr))
        return err_set(e, VELA_EFORMAT, "%s: tensor '%s': field '%s' is not an array", what, name,
                       field);
    size_t n = json_array_size(arr);
    if (n > cap)
        return err_set(e, VELA_EFORMAT, "%s: tensor '%s': field '%s' has %zu entries (max %zu)",
                       what, name, field, n, cap);
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return err_set(e, VELA_EFORMAT,
                           "%s: tensor '%s': field '%s'[%zu] is not a non-negative integer", what,
                           name, field, i);
        out[i] = (uint64_t)json_integer_value(v);
    }
    *n_out = n;
    return 0;
}

/* Element count of a shape, or false on int64 overflow. A zero dim makes the product zero
 * whatever the others are, so it is checked first. */
static bool st_shape_elems(const uint64_t *dims, size_t n, int64_t *out) {
    for (size_t i = 0; i < n; i++)
        if (dims[i] == 0) {
            *out = 0;
            return true;
        }
    uint64_t p = 1;
    for (size_t i = 0; i < n; i++)
        if (!u64_mul_ok(p, dims[i], &p) || p > (uint64_t)INT64_MAX) return false;
    *out = (int64_t)p;
    return true;
}

/* Validates one tensor entry; fills t (name not set) and *begin. data_len is the size of the
 * data section, base its first byte. */
static int st_parse_entry(const json_t *v, const char *name, const char *what,
                          const unsigned char *base, uint64_t data_len, struct st_tensor *t,
                          uint64_t *begin, struct err *e) {
    if (!json_is_object(v))
        return err_set(e, VELA_EFORMAT, "%s: tensor '%s': entry is not an object", what, name);
    const char *key;
    json_t *member;
    json_object_foreach((json_t *)v, key, member) {
        if (strcmp(key, "dtype") != 0 && strcmp(key, "shape") != 0 &&
            strcmp(key, "data_offsets") != 0)
            return err_set(e, VELA_EFORMAT, "%s: tensor '%s': unknown field '%.64s'", what, name,
                           key);
    }
    const json_t *jd = json_object_get(v, "dtype");
    const json_t *js = json_object_get(v, "shape");
    const json_t *jo = json_object_get(v, "data_offsets");
    const char *missing = !jd ? "dtype" : !js ? "shape" : !jo ? "data_offsets" : NULL;
    if (missing)
        return err_set(e, VELA_EFORMAT, "%s: tensor '%s': field '%s' is missing", what, name,
                       missing);
    int d = json_is_string(jd) ? st_dtype_parse(json_string_value(jd)) : -1;
    if (d < 0)
        return err_set(e, VELA_EFORMAT, "%s: tensor '%s': field 'dtype' is not a known dtype", what,
                       name);
    uint64_t dims[VELA_ST_MAX_DIMS], off[2];
    size_t n_dims = 0, n_off = 0;
    int rc = st_read_uints(js, VELA_ST_MAX_DIMS, dims, &n_dims, "shape", what, name, e);
    if (rc == 0) rc = st_read_uints(jo, 2, off, &n_off, "data_offsets", what, name, e);
    if (rc != 0) return rc;
    if (n_off != 2)
        return err_set(e, VELA_EFORMAT, "%s: tensor '%s': field 'data_offsets' needs 2 entries",
                       what, name);
    if (off[0] > off[1] || off[1] > data_len)
        return err_set(e, VELA_EFORMAT,
                       "%s: tensor '%s': data_offsets [%llu, %llu] outside the %llu-byte data "
                       "section",
                       what, name, (unsigned long long)off[0], (unsigned long long)off[1],
                       (unsigned long long)data_len);
    int64_t n_elems = 0;
    uint64_t n_bytes = 0;
    if (!st_shape_elems(dims, n_dims, &n_elems) ||
        !u64_mul_ok((uint64_t)n_elems, st_dtype_size((enum st_dtype)d), &n_bytes))
        return err_set(e, VELA_EFORMAT, "%s: tensor '%s': shape element count overflows", what,
                       name);
    if (n_bytes != off[1] - off[0])
        return err_set(e, VELA_EFORMAT,
                       "%s: tensor '%s': shape x %s size is %llu bytes but data_offsets span %llu",
                       what, name, st_dtype_name((enum st_dtype)d), (unsigned long long)n_bytes,
                       (unsigned long long)(off[1] - off[0]));
    t->dtype = (enum st_dtype)d;
    t->n_dims = (int32_t)n_dims;
    for (size_t i = 0; i < n_dims; i++) t->shape[i] = (int64_t)dims[i];
    t->n_elems = n_elems;
    t->data = base + off[0];
    t->n_bytes = (size_t)n_bytes; /* <= data_len, which fits in size_t */
    t->shard = 0;
    *begin = off[0];
    return 0;
}

/* ---- metadata, order and overlaps ------------------------------------------------------ */

static int st_parse_meta(struct st_file *f, const json_t *v, struct err *e) {
    if (!json_is_object(v))
        return err_set(e, VELA_EFORMAT, "%s: '__metadata__' is not an object", f->what);
    size_t n = json_object_size(v);
    f->meta = calloc(n * 2 + 1, sizeof *f->meta);
    if (!f->meta) return err_set(e, VELA_ENOMEM, "%s: out of memory", f->what);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val) {
        if (!json_is_string(val))
            return err_set(e, VELA_EFORMAT, "%s: '__metadata__' field '%.64s' is not a string",
                           f->what, key);
        char **kv = &f->meta[2 * f->n_meta];
        kv[0] = strdup(key);
        kv[1] = strdup(json_string_value(val));
        f->n_meta++; /* counted before the check so st_close frees a half pair */
        if (!kv[0] || !kv[1]) return err_set(e, VELA_ENOMEM, "%s: out of memory", f->what);
    }
    return 0;
}

struct st_span {
    uint64_t begin, end;
    int64_t i; /* index in header order */
};

static int st_span_cmp(const void *a, const void *b) {
    const struct st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Sorts the tensors by offset (O(n log n)) and rejects overlapping byte ranges. Empty
 * tensors own no bytes, so they overlap nothing. */
static int st_order_and_check(struct st_file *f, const uint64_t *begins, struct err *e) {
    if (f->n == 0) return 0;
    struct st_span *sp = malloc((size_t)f->n * sizeof *sp);
    struct st_tensor *sorted = malloc((size_t)f->n * sizeof *sorted);
    if (!sp || !sorted) {
        free(sp);
        free(sorted);
        return err_set(e, VELA_ENOMEM, "%s: out of memory", f->what);
    }
    for (int64_t i = 0; i < f->n; i++)
        sp[i] = (struct st_span){begins[i], begins[i] + f->t[i].n_bytes, i};
    qsort(sp, (size_t)f->n, sizeof *sp, st_span_cmp);
    int rc = 0;
    int64_t last = -1; /* last non-empty tensor, in sorted order */
    for (int64_t i = 0; i < f->n && rc == 0; i++) {
        if (sp[i].end == sp[i].begin) continue;
        if (last >= 0 && sp[i].begin < sp[last].end)
            rc = err_set(e, VELA_EFORMAT, "%s: tensors '%s' and '%s' overlap", f->what,
                         f->t[sp[last].i].name, f->t[sp[i].i].name);
        last = i;
    }
    for (int64_t i = 0; i < f->n; i++) sorted[i] = f->t[sp[i].i];
    free(f->t);
    f->t = sorted;
    free(sp);
    return rc;
}

/* ---- the header ------------------------------------------------------------------------ */

static int st_read_header_len(const unsigned char *buf, size_t len, const char *what,
                              uint64_t *n_out, struct err *e) {
    if (len < 8)
        return err_set(e, VELA_EFORMAT, "%s: %zu bytes is shorter than the 8-byte header length",
                       what, len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | buf[i];
    if (n < 2)
        return err_set(e, VELA_EFORMAT, "%s: header length %llu is too small", what,
                       (unsigned long long)n);
    if (n > VELA_ST_HEADER_MAX_BYTES)
        return err_set(e, VELA_ELIMIT, "%s: header length %llu exceeds the limit of %u bytes", what,
                       (unsigned long long)n, VELA_ST_HEADER_MAX_BYTES);
    if (n > len - 8)
        return err_set(e, VELA_EFORMAT, "%s: header length %llu past end of file (%zu bytes)", what,
                       (unsigned long long)n, len);
    *n_out = n;
    return 0;
}

/* Fills f's tensors and metadata from the parsed root object. */
static int st_parse_root(struct st_file *f, const json_t *root, const unsigned char *base,
                         uint64_t data_len, struct err *e) {
    size_t n_keys = json_object_size(root);
    bool has_meta = json_object_get(root, "__metadata__") != NULL;
    size_t n = n_keys - (has_meta ? 1 : 0);
    if (n > VELA_ST_MAX_TENSORS)
        return err_set(e, VELA_ELIMIT, "%s: %zu tensors exceeds the limit of %d", f->what, n,
                       VELA_ST_MAX_TENSORS);
    f->t = calloc(n + 1, sizeof *f->t);
    uint64_t *begins = malloc((n + 1) * sizeof *begins);
    int rc = (f->t && begins) ? st_map_init(&f->by_name, n) : VELA_ENOMEM;
    if (rc != 0) {
        free(begins);
        return err_set(e, VELA_ENOMEM, "%s: out of memory for %zu tensors", f->what, n);
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            rc = st_parse_meta(f, v, e);
        } else if (key[0] == '\0' || strlen(key) >= VELA_NAME_MAX) {
            rc = err_set(e, VELA_EFORMAT, "%s: tensor name '%.64s' is empty or too long", f->what,
                         key);
        } else {
            struct st_tensor *t = &f->t[f->n];
            rc = st_parse_entry(v, key, f->what, base, data_len, t, &begins[f->n], e);
            if (rc == 0 && !(t->name = strdup(key)))
                rc = err_set(e, VELA_ENOMEM, "%s: out of memory", f->what);
            if (rc == 0) f->n++;
        }
        if (rc != 0) break;
    }
    if (rc == 0) rc = st_order_and_check(f, begins, e);
    free(begins);
    for (int64_t i = 0; rc == 0 && i < f->n; i++) {
        int put = st_map_put(&f->by_name, f->t[i].name, i, NULL);
        if (put == 1) /* unreachable: the JSON parser rejects duplicate keys */
            rc = err_set(e, VELA_EFORMAT, "%s: duplicate tensor '%s'", f->what, f->t[i].name);
        else if (put != 0)
            rc = err_set(e, VELA_ENOMEM, "%s: out of memory", f->what);
    }
    return rc;
}

int st_parse(struct st_file **out, const unsigned char *buf, size_t len, const char *what,
             struct err *e) {
    *out = NULL;
    if (!what) what = "safetensors";
    uint64_t n_hdr = 0;
    int rc = st_read_header_len(buf, len, what, &n_hdr, e);
    if (rc != 0) return rc;
    struct st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->what = strdup(what))) {
        free(f);
        return err_set(e, VELA_ENOMEM, "%s: out of memory", what);
    }
    json_error_t je;
    /* Duplicate keys are rejected by the parser: two tensors with one name is an error. */
    json_t *root = json_loadb((const char *)buf + 8, (size_t)n_hdr, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        rc = err_set(e, VELA_EFORMAT, "%s: header is not valid JSON (column %d): %s", what,
                     je.column, je.text);
    } else if (!json_is_object(root)) {
        rc = err_set(e, VELA_EFORMAT, "%s: header is not a JSON object", what);
    } else {
        const unsigned char *base = buf + 8 + n_hdr;
        rc = st_parse_root(f, root, base, (uint64_t)(len - 8 - n_hdr), e);
    }
    json_decref(root);
    if (rc != 0) {
        st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

/* ---- files ----------------------------------------------------------------------------- */

int st_open(struct st_file **out, const char *path, struct err *e) {
    return st_open_mode(out, path, FILE_MAP_MMAP, e);
}

int st_open_mode(struct st_file **out, const char *path, enum file_map_mode mode, struct err *e) {
    *out = NULL;
    struct file_map map;
    int rc = file_map_open_mode(&map, path, mode, e);
    if (rc != 0) return rc;
    struct st_file *f = NULL;
    rc = st_parse(&f, map.data, map.len, path, e);
    if (rc != 0) {
        file_map_close(&map);
        return rc;
    }
    f->map = map; /* the file now owns the mapping its pointers point into */
    *out = f;
    return 0;
}

void st_close(struct st_file *f) {
    if (!f) return;
    for (int64_t i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    for (int64_t i = 0; i < 2 * f->n_meta; i++) free(f->meta[i]);
    free(f->meta);
    st_map_deinit(&f->by_name);
    file_map_close(&f->map);
    free(f->what);
    free(f);
}

int64_t st_file_count(const struct st_file *f) {
    return f ? f->n : 0;
}

const struct st_tensor *st_file_tensor(const struct st_file *f, int64_t i) {
    if (!f || i < 0 || i >= f->n) return NULL;
    return &f->t[i];
}

const struct st_tensor *st_file_find(const struct st_file *f, const char *name) {
    int64_t i;
    if (!f || !name || !st_map_get(&f->by_name, name, &i)) return NULL;
    return &f->t[i];
}

const char *st_file_meta(const struct st_file *f, const char *key) {
    if (!f || !key) return NULL;
    for (int64_t i = 0; i < f->n_meta; i++)
        if (f->meta[2 * i] && strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}
