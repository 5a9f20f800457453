/* weights: the checkpoint checked against the config (see weights.h).
 *
 * weights_load() runs in three passes over plain arrays:
 *   1. params_tensors() gives the expected list; a hash (open addressing over canonical
 *      names) indexes it.
 *   2. each expected tensor is looked up in the st_model under its legacy and its new name;
 *      shape and dtype are checked, and the data bound (in place or converted).
 *   3. every checkpoint tensor whose canonical name is not in the hash is listed as
 *      unexpected.
 *
 * Invariants:
 *   1. items[i] corresponds to params_tensors()[i]; index[] holds each i exactly once.
 *   2. items[i].owned implies items[i].bf16 was malloc'd here and is freed by weights_free.
 *   3. On failure nothing is returned and everything allocated so far is freed.
 * One owner thread while building; read-only afterwards. */
#include "model/weights.h"

#include "model/generator.h"
#include "util/bf16.h"
#include "util/file.h"
#include "util/log.h"
#include "util/size.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct weights {
    struct model_config cfg;
    struct weight *items; /* n, params_tensors() order */
    int64_t n;
    int64_t *index; /* hash slots -> item index, -1 empty; cap is a power of two */
    size_t cap;
    const char **unexpected; /* borrowed names */
    int64_t n_unexpected;
    int64_t params_vision, params_lm;
};

static const char NEW_LM[] = "model.language_model.";
static const char NEW_VIS[] = "model.visual.";

int weights_canonical_name(const char *name, char *out, size_t cap, struct err *e) {
    int n;
    if (strncmp(name, NEW_LM, sizeof NEW_LM - 1) == 0)
        n = snprintf(out, cap, "model.%s", name + sizeof NEW_LM - 1);
    else if (strncmp(name, NEW_VIS, sizeof NEW_VIS - 1) == 0)
        n = snprintf(out, cap, "visual.%s", name + sizeof NEW_VIS - 1);
    else
        n = snprintf(out, cap, "%s", name);
    if (n < 0 || (size_t)n >= cap)
        return err_set(e, VELA_ELIMIT, "tensor name '%.64s...' is longer than %zu bytes", name,
                       cap - 1);
    return 0;
}

/* Legacy -> new name ("model.X" -> "model.language_model.X", "visual.X" -> "model.visual.X");
 * returns false when the name has no second spelling (lm_head). */
static bool new_name(const char *legacy, char *out, size_t cap) {
    int n;
    if (strncmp(legacy, "model.", 6) == 0)
        n = snprintf(out, cap, "%s%s", NEW_LM, legacy + 6);
    else if (strncmp(legacy, "visual.", 7) == 0)
        n = snprintf(out, cap, "%s%s", NEW_VIS, legacy + 7);
    else
        return false;
    return n > 0 && (size_t)n < cap;
}

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static const struct weight *lookup(const struct weights *w, const char *canonical) {
    size_t mask = w->cap - 1;
    for (size_t i = hash_name(canonical) & mask;; i = (i + 1) & mask) {
        if (w->index[i] < 0) return NULL;
        if (strcmp(w->items[w->index[i]].name, canonical) == 0) return &w->items[w->index[i]];
    }
}

static int build_index(struct weights *w, struct err *e) {
    w->cap = 16;
    while (w->cap < (size_t)w->n * 2) w->cap *= 2;
    w->index = malloc(w->cap * sizeof *w->index);
    if (!w->index) return err_set(e, VELA_ENOMEM, "weights: no memory for the name index");
    for (size_t i = 0; i < w->cap; i++) w->index[i] = -1;
    size_t mask = w->cap - 1;
    for (int64_t k = 0; k < w->n; k++) {
        size_t i = hash_name(w->items[k].name) & mask;
        while (w->index[i] >= 0) i = (i + 1) & mask;
        w->index[i] = k;
    }
    return 0;
}

static void shape_str(char *buf, size_t cap, int32_t n_dims, const int64_t *shape) {
    size_t off = 0;
    buf[0] = '\0';
    for (int32_t i = 0; i < n_dims && off < cap; i++)
        off +=
            (size_t)snprintf(buf + off, cap - off, "%s%lld", i ? ", " : "[", (long long)shape[i]);
    if (off < cap) snprintf(buf + off, cap - off, "%s]", n_dims ? "" : "[");
}

static bool same_shape(const struct st_tensor *t, const struct weight *x) {
    if (t->n_dims != x->n_dims) return false;
    for (int32_t i = 0; i < x->n_dims; i++)
        if (t->shape[i] != x->shape[i]) return false;
    return true;
}

/* Points x at BF16 data: in place when possible, else a converted copy we own. */
static int bind_data(struct weight *x, const struct st_tensor *t, unsigned flags, struct err *e) {
    if (t->dtype != ST_BF16 && t->dtype != ST_F16 && t->dtype != ST_F32)
        return err_set(e, VELA_EUNSUP, "tensor '%s' has dtype %s; expected BF16, F16 or F32",
                       t->name, st_dtype_name(t->dtype));
    if (t->dtype == ST_BF16 && st_tensor_aligned(t)) {
        x->bf16 = t->data;
        return 0;
    }
    if (flags & WEIGHTS_CHECK_ONLY) return 0;
    size_t n_bytes;
    if (!size_mul_ok((size_t)x->n_elems, 2, &n_bytes))
        return err_set(e, VELA_ELIMIT, "tensor '%s' is too large", t->name);
    uint16_t *dst = malloc(n_bytes ? n_bytes : 1);
    if (!dst) return err_set(e, VELA_ENOMEM, "no memory to convert tensor '%s'", t->name);
    const unsigned char *src = t->data;
    for (int64_t i = 0; i < x->n_elems; i++) {
        if (t->dtype == ST_BF16) {
            memcpy(&dst[i], src + 2 * i, 2);
        } else if (t->dtype == ST_F16) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = f32_to_bf16(f16_to_f32(h));
        } else {
            float f;
            memcpy(&f, src + 4 * i, 4);
            dst[i] = f32_to_bf16(f);
        }
    }
    x->bf16 = dst;
    x->owned = true;
    return 0;
}

/* Finds x's tensor under either name; NULL (and 0) when missing. */
static int find_tensor(const struct st_model *m, const struct weight *x,
                       const struct st_tensor **out, struct err *e) {
    char alt[PARAM_NAME_MAX + 16];
    const struct st_tensor *a = st_model_find(m, x->name);
    const struct st_tensor *b = new_name(x->name, alt, sizeof alt) ? st_model_find(m, alt) : NULL;
    if (a && b)
        return err_set(e, VELA_EFORMAT, "tensor '%s' appears under both '%s' and '%s'", x->name,
                       a->name, b->name);
    *out = a ? a : b;
    return 0;
}

/* Pass 2: binds every expected tensor. Problems after the first are logged, so one run
 * shows all of them; the error names the first. */
static int bind_all(struct weights *w, const struct st_model *m, unsigned flags, struct err *e) {
    int first = 0;
    int64_t n_bad = 0;
    for (int64_t i = 0; i < w->n; i++) {
        struct weight *x = &w->items[i];
        const struct st_tensor *t = NULL;
        struct err le = {0};
        char want[128], got[128];
        shape_str(want, sizeof want, x->n_dims, x->shape);
        int rc = find_tensor(m, x, &t, &le);
        if (rc == 0 && !t)
            rc = err_set(&le, VELA_ENOTFOUND, "missing tensor '%s' (expected shape %s)", x->name,
                         want);
        if (rc == 0 && !same_shape(t, x)) {
            shape_str(got, sizeof got, t->n_dims, t->shape);
            rc = err_set(&le, VELA_EFORMAT, "tensor '%s' has shape %s, expected %s", t->name, got,
                         want);
        }
        if (rc == 0) {
            x->file_name = t->name;
            x->file_dtype = t->dtype;
            rc = bind_data(x, t, flags, &le);
        }
        if (rc == 0) {
            *(x->vision ? &w->params_vision : &w->params_lm) += t->n_elems;
            continue;
        }
        if (rc == VELA_ENOMEM) return err_set(e, rc, "%s", le.msg);
        if (n_bad++ == 0) {
            first = rc;
            *e = le;
        } else if (n_bad <= 20) {
            LOG_W("%s", le.msg);
        }
    }
    if (n_bad > 1) err_wrap(e, "%lld checkpoint problems, the first", (long long)n_bad);
    return first;
}

/* Pass 3: checkpoint tensors nobody expects. */
static int find_unexpected(struct weights *w, const struct st_model *m, struct err *e) {
    int64_t n = st_model_count(m);
    w->unexpected = calloc((size_t)(n > 0 ? n : 1), sizeof *w->unexpected);
    if (!w->unexpected) return err_set(e, VELA_ENOMEM, "weights: no memory");
    for (int64_t i = 0; i < n; i++) {
        const struct st_tensor *t = st_model_tensor(m, i);
        char canon[VELA_NAME_MAX + 16];
        struct err le = {0};
        const struct weight *x = NULL;
        if (weights_canonical_name(t->name, canon, sizeof canon, &le) == 0) x = lookup(w, canon);
        if (x && x->file_name && strcmp(x->file_name, t->name) == 0) continue;
        w->unexpected[w->n_unexpected++] = t->name;
        if (w->n_unexpected <= 20) LOG_W("unexpected tensor '%s' ignored", t->name);
    }
    if (w->n_unexpected > 20)
        LOG_W("%lld unexpected tensors ignored in all", (long long)w->n_unexpected);
    return 0;
}

/* A table of the tensors c implies, with no data yet, and its lookup index. *pts gets the
 * params_tensors() array (caller frees) when pts is not NULL. */
static int table_new(struct weights **out, const struct model_config *c, struct param_tensor **pts,
                     struct err *e) {
    struct weights *w = calloc(1, sizeof *w);
    if (!w) return err_set(e, VELA_ENOMEM, "weights: no memory");
    w->cfg = *c;
    struct param_tensor *p = NULL;
    int rc = params_tensors(c, &p, &w->n, e);
    if (rc == 0) {
        w->items = calloc((size_t)(w->n > 0 ? w->n : 1), sizeof *w->items);
        if (!w->items) rc = err_set(e, VELA_ENOMEM, "weights: no memory");
    }
    for (int64_t i = 0; rc == 0 && i < w->n; i++) {
        struct weight *x = &w->items[i];
        memcpy(x->name, p[i].name, sizeof x->name);
        x->n_dims = p[i].n_dims;
        memcpy(x->shape, p[i].shape, sizeof x->shape);
        x->n_elems = params_n_elems(&p[i]);
        x->vision = p[i].vision;
        x->kind = p[i].kind;
    }
    if (rc == 0) rc = build_index(w, e);
    if (rc == 0 && pts)
        *pts = p;
    else
        free(p);
    if (rc != 0) {
        weights_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int weights_load(struct weights **out, const struct model_config *c, const struct st_model *m,
                 unsigned flags, struct err *e) {
    *out = NULL;
    struct weights *w = NULL;
    int rc = table_new(&w, c, NULL, e);
    if (rc != 0) return rc;
    rc = bind_all(w, m, flags, e);
    if (rc == 0) rc = find_unexpected(w, m, e);
    if (rc != 0) {
        weights_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

/* Generates the data of every wanted tensor. Checks the total against the available memory
 * first: with overcommit a too-large allocation would succeed and the fill end in the OOM
 * killer. */
static int dummy_fill(struct weights *w, const struct param_tensor *pts, uint64_t seed,
                      int32_t n_threads, bool lm_only, struct err *e) {
    size_t need = 0, avail = 0;
    for (int64_t i = 0; i < w->n; i++)
        if (!(lm_only && w->items[i].vision)) need += (size_t)w->items[i].n_elems * 2;
    int rc = file_mem_available(&avail, e);
    if (rc != 0) return rc;
    if (need > avail)
        return err_set(e, VELA_ENOMEM,
                       "dummy weights need %zu MiB of memory, %zu MiB available (use a smaller "
                       "model or more memory)",
                       need >> 20, avail >> 20);
    struct gen_spec g = {.seed = seed};
    for (int64_t i = 0; i < w->n; i++) {
        struct weight *x = &w->items[i];
        x->file_name = "dummy";
        x->file_dtype = ST_BF16;
        if (lm_only && x->vision) continue; /* bf16 stays NULL: the model says so if asked */
        uint16_t *buf = malloc((size_t)x->n_elems * 2);
        if (!buf) return err_set(e, VELA_ENOMEM, "dummy weights: no memory for %s", x->name);
        x->bf16 = buf, x->owned = true;
        rc = gen_tensor_bf16_par(&g, &pts[i], 0, x->n_elems, buf, n_threads, e);
        if (rc != 0) return rc;
        *(x->vision ? &w->params_vision : &w->params_lm) += x->n_elems;
    }
    return 0;
}

int weights_dummy(struct weights **out, const struct model_config *c, uint64_t seed,
                  int32_t n_threads, bool lm_only, struct err *e) {
    *out = NULL;
    struct weights *w = NULL;
    struct param_tensor *pts = NULL;
    int rc = table_new(&w, c, &pts, e);
    if (rc != 0) return rc;
    rc = dummy_fill(w, pts, seed, n_threads, lm_only, e);
    free(pts);
    if (rc != 0) {
        weights_free(w);
        return err_wrap(e, "--load-format dummy");
    }
    *out = w;
    return 0;
}

void weights_free(struct weights *w) {
    if (!w) return;
    for (int64_t i = 0; w->items && i < w->n; i++)
        if (w->items[i].owned) free((void *)w->items[i].bf16);
    free(w->items);
    free(w->index);
    free(w->unexpected);
    free(w);
}

int64_t weights_count(const struct weights *w) {
    return w->n;
}

const struct weight *weights_at(const struct weights *w, int64_t i) {
    return i >= 0 && i < w->n ? &w->items[i] : NULL;
}

const struct weight *weights_find(const struct weights *w, const char *name) {
    char canon[VELA_NAME_MAX + 16];
    struct err e = {0};
    if (weights_canonical_name(name, canon, sizeof canon, &e) != 0) return NULL;
    return lookup(w, canon);
}

int64_t weights_n_unexpected(const struct weights *w) {
    return w->n_unexpected;
}

const char *weights_unexpected(const struct weights *w, int64_t i) {
    return i >= 0 && i < w->n_unexpected ? w->unexpected[i] : NULL;
}

int64_t weights_params_vision(const struct weights *w) {
    return w->params_vision;
}

int64_t weights_params_lm(const struct weights *w) {
    return w->params_lm;
}
