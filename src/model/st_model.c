/* st_model: a checkpoint as one set of tensors, from DIR/model.safetensors or from the shards
 * listed by DIR/model.safetensors.index.json; also writes such an index.
 *
 * Invariants of a struct st_model once st_model_open returned it:
 *  1. Each shard file is opened once and fully validated (see safetensors.c).
 *  2. With an index: every tensor of weight_map is in the shard the index names, and every
 *     tensor of every shard is listed in weight_map under that shard; so tensor names are
 *     unique across the model and n equals the size of weight_map.
 *  3. t[i] copies the shard's tensor record (its name borrowed from the shard) with .shard
 *     set; by_name maps every name to its index in t.
 *
 * Threading: one owner thread; see safetensors.h. */
#include "model/safetensors.h"

#include "model/st_map.h"
#include "util/file.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

#define ST_INDEX_NAME  "model.safetensors.index.json"
#define ST_SINGLE_NAME "model.safetensors"

struct st_model {
    int32_t n_files;
    struct st_file **files; /* n_files, owned */
    int64_t n;
    struct st_tensor *t; /* n; names borrowed from files */
    struct st_map by_name;
    uint64_t total_bytes;
};

void st_model_close(struct st_model *m) {
    if (!m) return;
    for (int32_t i = 0; i < m->n_files; i++) st_close(m->files[i]);
    free(m->files);
    free(m->t);
    st_map_deinit(&m->by_name);
    free(m);
}

/* A shard name must be a plain file name inside the model directory. */
static bool st_plain_name(const char *s) {
    size_t n = strlen(s);
    return n > 0 && n < VELA_NAME_MAX && !strchr(s, '/') && !strchr(s, '\\') && !strstr(s, "..");
}

/* Builds m->t and m->by_name from the open files (every tensor of every file). */
static int st_model_collect(struct st_model *m, const char *dir, struct err *e) {
    int64_t n = 0;
    for (int32_t i = 0; i < m->n_files; i++) n += st_file_count(m->files[i]);
    m->t = calloc((size_t)n + 1, sizeof *m->t);
    if (!m->t || st_map_init(&m->by_name, (size_t)n) != 0)
        return err_set(e, VELA_ENOMEM, "%s: out of memory for %lld tensors", dir, (long long)n);
    for (int32_t i = 0; i < m->n_files; i++) {
        for (int64_t j = 0; j < st_file_count(m->files[i]); j++) {
            struct st_tensor *t = &m->t[m->n];
            *t = *st_file_tensor(m->files[i], j);
            t->shard = i;
            int rc = st_map_put(&m->by_name, t->name, m->n, NULL);
            if (rc == 1)
                return err_set(e, VELA_EFORMAT, "%s: tensor '%s' is in more than one shard", dir,
                               t->name);
            if (rc != 0) return err_set(e, VELA_ENOMEM, "%s: out of memory", dir);
            m->total_bytes += t->n_bytes;
            m->n++;
        }
    }
    return 0;
}

/* Opens every distinct shard named in weight_map, in first-mention order; shard_ix maps a
 * shard name (borrowed from the JSON) to its index in m->files. */
static int st_model_open_shards(struct st_model *m, const char *dir, const json_t *wmap,
                                struct st_map *shard_ix, enum file_map_mode mode, struct err *e) {
    m->files = calloc(VELA_MAX_SHARDS, sizeof *m->files);
    if (!m->files) return err_set(e, VELA_ENOMEM, "%s: out of memory", dir);
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)wmap, name, v) {
        if (!json_is_string(v))
            return err_set(e, VELA_EFORMAT, "%s: weight_map entry '%.64s' is not a string",
                           ST_INDEX_NAME, name);
        const char *shard = json_string_value(v);
        if (!st_plain_name(shard))
            return err_set(e, VELA_EFORMAT,
                           "%s: tensor '%.64s': shard name '%.64s' is not a "
                           "plain file name",
                           ST_INDEX_NAME, name, shard);
        if (st_map_get(shard_ix, shard, NULL)) continue;
        if (m->n_files >= VELA_MAX_SHARDS)
            return err_set(e, VELA_ELIMIT, "%s: more than %d shards", ST_INDEX_NAME,
                           VELA_MAX_SHARDS);
        char path[4096];
        int rc = path_join(path, sizeof path, dir, shard, e);
        if (rc == 0) rc = st_open_mode(&m->files[m->n_files], path, mode, e);
        if (rc != 0) {
            err_wrap(e, "%s: shard of tensor '%.64s'", ST_INDEX_NAME, name);
            return rc;
        }
        if (st_map_put(shard_ix, shard, m->n_files, NULL) != 0)
            return err_set(e, VELA_ENOMEM, "%s: out of memory", dir);
        m->n_files++;
    }
    return 0;
}

/* Checks invariant 2 once the shards are collected. */
static int st_model_check_map(const struct st_model *m, const json_t *wmap,
                              const struct st_map *shard_ix, struct err *e) {
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)wmap, name, v) {
        int64_t want = -1;
        st_map_get(shard_ix, json_string_value(v), &want);
        if (!st_file_find(m->files[want], name))
            return err_set(e, VELA_ENOTFOUND, "%s: tensor '%.64s' is not in its shard '%.64s'",
                           ST_INDEX_NAME, name, json_string_value(v));
    }
    for (int64_t i = 0; i < m->n; i++) {
        const json_t *s = json_object_get(wmap, m->t[i].name);
        int64_t mapped = -1;
        if (s) st_map_get(shard_ix, json_string_value(s), &mapped);
        if (mapped != m->t[i].shard)
            return err_set(e, VELA_EFORMAT,
                           "%s: tensor '%.64s' in shard %d is not listed there "
                           "by the index",
                           ST_INDEX_NAME, m->t[i].name, (int)m->t[i].shard);
    }
    return 0;
}

static int st_model_open_index(struct st_model *m, const char *dir, const char *index_path,
                               enum file_map_mode mode, struct err *e) {
    json_t *root = NULL;
    int rc = ju_load_file(index_path, VELA_ST_HEADER_MAX_BYTES, &root, e);
    if (rc != 0) return rc;
    const json_t *wmap = NULL;
    struct st_map shard_ix = {0};
    rc = ju_obj(root, "weight_map", JU_REQUIRED, &wmap, e);
    if (rc != 0) err_wrap(e, "%s", index_path);
    if (rc == 0 && json_object_size(wmap) > (size_t)VELA_MAX_SHARDS * VELA_ST_MAX_TENSORS)
        rc = err_set(e, VELA_ELIMIT, "%s: weight_map is too large", index_path);
    if (rc == 0 && st_map_init(&shard_ix, 64) != 0)
        rc = err_set(e, VELA_ENOMEM, "%s: out of memory", dir);
    if (rc == 0) rc = st_model_open_shards(m, dir, wmap, &shard_ix, mode, e);
    if (rc == 0) rc = st_model_collect(m, dir, e);
    if (rc == 0) rc = st_model_check_map(m, wmap, &shard_ix, e);
    st_map_deinit(&shard_ix);
    json_decref(root);
    return rc;
}

int st_model_open(struct st_model **out, const char *dir, struct err *e) {
    return st_model_open_mode(out, dir, FILE_MAP_MMAP, e);
}

int st_model_open_mode(struct st_model **out, const char *dir, enum file_map_mode mode,
                       struct err *e) {
    *out = NULL;
    struct st_model *m = calloc(1, sizeof *m);
    if (!m) return err_set(e, VELA_ENOMEM, "%s: out of memory", dir);
    char path[4096];
    int rc = path_join(path, sizeof path, dir, ST_INDEX_NAME, e);
    if (rc == 0 && file_exists(path)) {
        rc = st_model_open_index(m, dir, path, mode, e);
    } else if (rc == 0) {
        rc = path_join(path, sizeof path, dir, ST_SINGLE_NAME, e);
        if (rc == 0 && !file_exists(path))
            rc = err_set(e, VELA_ENOTFOUND, "%s: neither %s nor %s found", dir, ST_INDEX_NAME,
                         ST_SINGLE_NAME);
        if (rc == 0 && !(m->files = calloc(1, sizeof *m->files)))
            rc = err_set(e, VELA_ENOMEM, "%s: out of memory", dir);
        if (rc == 0) rc = st_open_mode(&m->files[0], path, mode, e);
        if (rc == 0) m->n_files = 1;
        if (rc == 0) rc = st_model_collect(m, dir, e);
    }
    if (rc != 0) {
        st_model_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

int64_t st_model_count(const struct st_model *m) {
    return m ? m->n : 0;
}

int32_t st_model_shard_count(const struct st_model *m) {
    return m ? m->n_files : 0;
}

const struct st_tensor *st_model_tensor(const struct st_model *m, int64_t i) {
    if (!m || i < 0 || i >= m->n) return NULL;
    return &m->t[i];
}

const struct st_tensor *st_model_find(const struct st_model *m, const char *name) {
    int64_t i;
    if (!m || !name || !st_map_get(&m->by_name, name, &i)) return NULL;
    return &m->t[i];
}

uint64_t st_model_total_bytes(const struct st_model *m) {
    return m ? m->total_bytes : 0;
}

/* ---- index writer ---------------------------------------------------------------------- */

int st_index_write(const char *dir, int64_t n, const char *const *names, const char *const *shards,
                   uint64_t total_size, struct err *e) {
    char path[4096];
    int rc = path_join(path, sizeof path, dir, ST_INDEX_NAME, e);
    if (rc != 0) return rc;
    json_t *root = json_object(), *meta = json_object(), *wmap = json_object();
    if (!root || !meta || !wmap) rc = err_set(e, VELA_ENOMEM, "%s: out of memory", path);
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        if (!st_plain_name(shards[i]))
            rc = err_set(e, VELA_EINVAL, "%s: shard name '%.64s' is not a plain file name", path,
                         shards[i]);
        else if (json_object_get(wmap, names[i]))
            rc = err_set(e, VELA_EINVAL, "%s: duplicate tensor '%.64s'", path, names[i]);
        else if (json_object_set_new(wmap, names[i], json_string(shards[i])) != 0)
            rc = err_set(e, VELA_EINVAL, "%s: bad tensor name '%.64s'", path, names[i]);
    }
    if (rc == 0 &&
        (json_object_set_new(meta, "total_size", json_integer((json_int_t)total_size)) ||
         json_object_set(root, "metadata", meta) || json_object_set(root, "weight_map", wmap)))
        rc = err_set(e, VELA_ENOMEM, "%s: out of memory", path);
    char *txt = rc == 0 ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (rc == 0 && !txt) rc = err_set(e, VELA_ENOMEM, "%s: out of memory", path);
    if (rc == 0) rc = file_write_all(path, txt, strlen(txt), e);
    free(txt);
    json_decref(wmap);
    json_decref(meta);
    json_decref(root);
    return rc;
}
