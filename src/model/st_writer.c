/* st_writer: streams one safetensors file to disk.
 *
 * States (the function behind each transition):
 *   DECLARING --st_writer_write/finish--> WRITING --st_writer_finish--> FINISHED
 *   any --a failed call--> SPENT (only st_writer_free remains; it removes PATH.tmp)
 * The header is written at the first write (or at finish), once every tensor is declared.
 *
 * Invariants:
 *  1. Tensors are laid out back to back in declaration order: tensor i starts where i - 1
 *     ends, so data_offsets follow from the byte sizes alone.
 *  2. 8 + header length is a multiple of 8 (spaces pad the JSON), so the data section starts
 *     8-byte aligned in the file.
 *  3. While WRITING, cur is the first tensor not yet complete and cur_done < its size (empty
 *     tensors are skipped as soon as they become current).
 *  4. Offsets and sizes are 64-bit; fwrite gets pieces of at most ST_WRITE_CHUNK bytes, so
 *     files above 4 GB are fine.
 *
 * Threading: one owner thread. */
#include "model/safetensors.h"

#include "model/st_map.h"
#include "util/size.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Largest single fwrite: keeps each libc call well inside 32-bit sizes on every platform. */
#define ST_WRITE_CHUNK ((size_t)64 << 20)

struct st_wdecl {
    char *name; /* owned */
    enum st_dtype dtype;
    int32_t n_dims;
    int64_t shape[VELA_ST_MAX_DIMS];
    uint64_t n_bytes;
};

struct st_writer {
    char *path, *tmp; /* owned */
    FILE *f;          /* open on tmp until finish */
    struct st_wdecl *d;
    int64_t n, cap;
    struct st_map names; /* keys borrowed from d[i].name */
    json_t *meta;        /* "__metadata__" object, or NULL */
    bool started, finished, spent;
    int64_t cur;       /* first incomplete tensor (WRITING) */
    uint64_t cur_done; /* bytes of d[cur] written */
};

static int st_w_fail(struct st_writer *w, struct err *e, int code, const char *what) {
    w->spent = true;
    return err_set(e, code, "%s: %s", w->path, what);
}

int st_writer_new(struct st_writer **out, const char *path, struct err *e) {
    *out = NULL;
    struct st_writer *w = calloc(1, sizeof *w);
    size_t n = strlen(path);
    if (w) w->path = strdup(path);
    if (w) w->tmp = malloc(n + 5);
    if (w && w->tmp) {
        memcpy(w->tmp, path, n);
        memcpy(w->tmp + n, ".tmp", 5);
    }
    if (!w || !w->path || !w->tmp || st_map_init(&w->names, 64) != 0) {
        if (w) w->finished = true; /* nothing was created: do not unlink */
        st_writer_free(w);
        return err_set(e, VELA_ENOMEM, "%s: out of memory", path);
    }
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        err_set(e, VELA_EIO, "%s: %s", w->tmp, strerror(errno));
        w->finished = true; /* nothing was created: do not unlink */
        st_writer_free(w);
        return VELA_EIO;
    }
    *out = w;
    return 0;
}

int st_writer_meta(struct st_writer *w, const char *key, const char *value, struct err *e) {
    if (w->spent || w->started)
        return st_w_fail(w, e, VELA_EINVAL, "metadata after the header was written");
    if (!w->meta && !(w->meta = json_object()))
        return st_w_fail(w, e, VELA_ENOMEM, "out of memory");
    json_t *v = json_string(value);
    if (!v || json_object_set_new(w->meta, key, v) != 0)
        return st_w_fail(w, e, VELA_EINVAL, "metadata key or value is not valid UTF-8");
    return 0;
}

static int st_w_declare(struct st_writer *w, const char *name, enum st_dtype dtype, int32_t n_dims,
                        const int64_t *shape, struct err *e) {
    if (w->spent || w->started)
        return err_set(e, VELA_EINVAL, "%s: tensor '%.64s' declared after data was written",
                       w->path, name);
    size_t len = strlen(name);
    if (len == 0 || len >= VELA_NAME_MAX || strcmp(name, "__metadata__") == 0)
        return st_w_fail(w, e, VELA_EINVAL, "empty, reserved or too long tensor name");
    if (st_dtype_size(dtype) == 0 || n_dims < 0 || n_dims > VELA_ST_MAX_DIMS)
        return err_set(e, VELA_EINVAL, "%s: tensor '%.64s': bad dtype or %d dims", w->path, name,
                       (int)n_dims);
    if (w->n >= VELA_ST_MAX_TENSORS) return st_w_fail(w, e, VELA_ELIMIT, "too many tensors");
    uint64_t n_bytes = st_dtype_size(dtype);
    for (int32_t i = 0; i < n_dims; i++)
        if (shape[i] < 0 || !u64_mul_ok(n_bytes, (uint64_t)shape[i], &n_bytes))
            return err_set(e, VELA_EINVAL, "%s: tensor '%.64s': bad or overflowing shape", w->path,
                           name);
    if (w->n == w->cap) {
        int64_t cap = w->cap ? w->cap * 2 : 64;
        struct st_wdecl *d = realloc(w->d, (size_t)cap * sizeof *d);
        if (!d) return st_w_fail(w, e, VELA_ENOMEM, "out of memory");
        w->d = d;
        w->cap = cap;
    }
    struct st_wdecl *d = &w->d[w->n];
    memset(d, 0, sizeof *d);
    if (!(d->name = strdup(name))) return st_w_fail(w, e, VELA_ENOMEM, "out of memory");
    int rc = st_map_put(&w->names, d->name, w->n, NULL);
    if (rc != 0) {
        free(d->name);
        if (rc == 1)
            return err_set(e, VELA_EINVAL, "%s: tensor '%.64s' declared twice", w->path, name);
        return st_w_fail(w, e, VELA_ENOMEM, "out of memory");
    }
    d->dtype = dtype;
    d->n_dims = n_dims;
    for (int32_t i = 0; i < n_dims; i++) d->shape[i] = shape[i];
    d->n_bytes = n_bytes;
    w->n++;
    return 0;
}

int st_writer_declare(struct st_writer *w, const char *name, enum st_dtype dtype, int32_t n_dims,
                      const int64_t *shape, struct err *e) {
    int rc = st_w_declare(w, name, dtype, n_dims, shape, e);
    if (rc != 0) w->spent = true; /* every failure spends the writer (see safetensors.h) */
    return rc;
}

/* The header JSON for the declarations, tensors in declaration order (invariant 1). */
static json_t *st_w_header(const struct st_writer *w) {
    json_t *root = json_object();
    uint64_t off = 0;
    bool ok = root != NULL;
    if (ok && w->meta) ok = json_object_set(root, "__metadata__", w->meta) == 0;
    for (int64_t i = 0; ok && i < w->n; i++) {
        const struct st_wdecl *d = &w->d[i];
        json_t *shape = json_array(), *offs = json_array(), *obj = json_object();
        ok = shape && offs && obj;
        for (int32_t k = 0; ok && k < d->n_dims; k++)
            ok = json_array_append_new(shape, json_integer((json_int_t)d->shape[k])) == 0;
        ok = ok && json_array_append_new(offs, json_integer((json_int_t)off)) == 0;
        off += d->n_bytes;
        ok = ok && json_array_append_new(offs, json_integer((json_int_t)off)) == 0;
        ok = ok && json_object_set_new(obj, "dtype", json_string(st_dtype_name(d->dtype))) == 0;
        ok = ok && json_object_set(obj, "shape", shape) == 0;
        ok = ok && json_object_set(obj, "data_offsets", offs) == 0;
        ok = ok && json_object_set(root, d->name, obj) == 0; /* fails on bad UTF-8 */
        json_decref(shape);
        json_decref(offs);
        json_decref(obj);
    }
    if (!ok) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static int st_w_put(struct st_writer *w, const void *data, size_t n, struct err *e) {
    const unsigned char *p = data;
    while (n > 0) {
        size_t k = n < ST_WRITE_CHUNK ? n : ST_WRITE_CHUNK;
        if (fwrite(p, 1, k, w->f) != k) {
            w->spent = true;
            return err_set(e, VELA_EIO, "%s: write failed: %s", w->tmp, strerror(errno));
        }
        p += k;
        n -= k;
    }
    return 0;
}

/* Skips complete (and empty) tensors so cur points at one still needing bytes (inv. 3). */
static void st_w_advance(struct st_writer *w) {
    while (w->cur < w->n && w->cur_done == w->d[w->cur].n_bytes) {
        w->cur++;
        w->cur_done = 0;
    }
}

static int st_w_start(struct st_writer *w, struct err *e) {
    json_t *root = st_w_header(w);
    char *txt = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!txt) return st_w_fail(w, e, VELA_EINVAL, "cannot build header (bad UTF-8 in a name?)");
    size_t n = strlen(txt);
    size_t padded = n + (8 - (8 + n) % 8) % 8; /* invariant 2 */
    int rc = 0;
    if (padded > VELA_ST_HEADER_MAX_BYTES) rc = st_w_fail(w, e, VELA_ELIMIT, "header too large");
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    if (rc == 0) rc = st_w_put(w, len8, 8, e);
    if (rc == 0) rc = st_w_put(w, txt, n, e);
    for (size_t i = n; rc == 0 && i < padded; i++) rc = st_w_put(w, " ", 1, e);
    free(txt);
    w->started = true;
    st_w_advance(w);
    return rc;
}

int st_writer_write(struct st_writer *w, const void *data, size_t n_bytes, struct err *e) {
    if (w->spent || w->finished)
        return err_set(e, VELA_EINVAL, "%s: writer already finished or failed", w->path);
    if (!w->started) {
        int rc = st_w_start(w, e);
        if (rc != 0) return rc;
    }
    if (n_bytes == 0) return 0;
    if (w->cur >= w->n) return st_w_fail(w, e, VELA_EINVAL, "data past the last tensor");
    const struct st_wdecl *d = &w->d[w->cur];
    if (n_bytes > d->n_bytes - w->cur_done) {
        w->spent = true;
        return err_set(e, VELA_EINVAL, "%s: tensor '%.64s': %zu bytes written past its %llu",
                       w->path, d->name, n_bytes, (unsigned long long)d->n_bytes);
    }
    int rc = st_w_put(w, data, n_bytes, e);
    if (rc != 0) return rc;
    w->cur_done += n_bytes;
    st_w_advance(w);
    return 0;
}

int st_writer_finish(struct st_writer *w, struct err *e) {
    if (w->spent || w->finished)
        return err_set(e, VELA_EINVAL, "%s: writer already finished or failed", w->path);
    int rc = w->started ? 0 : st_w_start(w, e);
    if (rc != 0) return rc;
    if (w->cur < w->n) {
        w->spent = true;
        return err_set(e, VELA_EINVAL, "%s: tensor '%.64s' got %llu of its %llu bytes", w->path,
                       w->d[w->cur].name, (unsigned long long)w->cur_done,
                       (unsigned long long)w->d[w->cur].n_bytes);
    }
    int rc_close = fclose(w->f);
    w->f = NULL;
    if (rc_close != 0) return st_w_fail(w, e, VELA_EIO, "close failed (disk full?)");
    if (rename(w->tmp, w->path) != 0) {
        int saved = errno;
        w->spent = true;
        return err_set(e, VELA_EIO, "%s: rename: %s", w->path, strerror(saved));
    }
    w->finished = true;
    return 0;
}

void st_writer_free(struct st_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    if (!w->finished && w->tmp) unlink(w->tmp);
    for (int64_t i = 0; i < w->n; i++) free(w->d[i].name);
    free(w->d);
    st_map_deinit(&w->names);
    json_decref(w->meta);
    free(w->tmp);
    free(w->path);
    free(w);
}
