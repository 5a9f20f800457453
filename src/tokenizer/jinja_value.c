/* jinja_value: the interpreter's memory pools and value model: construction, JSON input,
 * truthiness and equality with Python's rules, and the three ways a value becomes text:
 * str() (what {{ x }} prints), repr() (items inside a printed list or dict) and json.dumps
 * (transformers' tojson filter: ensure_ascii=False, Python's separators).
 *
 * Invariants:
 *  1. Strings are valid UTF-8 (JSON input and template source are validated), so code point
 *     walks never run past the end.
 *  2. Every list/dict records its nesting depth and none exceeds VELA_TPL_MAX_VALUE_DEPTH, so
 *     the recursive printers and jv_equal are bounded.
 *  3. Values are never freed one by one: they die with the render's pool.
 * Any thread; a pool belongs to one render or one template. */
#include "tokenizer/jinja_internal.h"

#include "util/limits.h"
#include "util/size.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- pools */

struct jpool_chunk {
    struct jpool_chunk *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

enum { JPOOL_CHUNK_BYTES = 64 * 1024 };

void jpool_init(struct jpool *p, size_t cap_bytes) {
    p->head = NULL;
    p->used_bytes = 0;
    p->cap_bytes = cap_bytes;
}

void jpool_deinit(struct jpool *p) {
    if (!p) return;
    struct jpool_chunk *ch = p->head;
    while (ch) {
        struct jpool_chunk *next = ch->next;
        free(ch);
        ch = next;
    }
    p->head = NULL;
    p->used_bytes = 0;
}

void *jpool_alloc(struct jpool *p, size_t n_bytes) {
    size_t need = (n_bytes + 15) & ~(size_t)15;
    if (need < n_bytes) return NULL;
    struct jpool_chunk *ch = p->head;
    if (!ch || ch->cap - ch->used < need) {
        size_t cap = need > JPOOL_CHUNK_BYTES ? need : JPOOL_CHUNK_BYTES;
        size_t total;
        if (!size_add_ok(cap, sizeof *ch, &total)) return NULL;
        if (total > p->cap_bytes - (p->used_bytes < p->cap_bytes ? p->used_bytes : p->cap_bytes))
            return NULL;
        ch = malloc(total);
        if (!ch) return NULL;
        ch->cap = cap;
        ch->used = 0;
        ch->next = p->head;
        p->head = ch;
        p->used_bytes += total;
    }
    void *out = ch->data + ch->used;
    ch->used += need;
    memset(out, 0, n_bytes);
    return out;
}

char *jpool_strdup(struct jpool *p, const char *s, size_t n) {
    if (n == SIZE_MAX) return NULL;
    char *d = jpool_alloc(p, n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* ---------------------------------------------------------------- UTF-8 */

uint32_t ju8_next(const char *s, size_t n, size_t *i) {
    const unsigned char *u = (const unsigned char *)s;
    size_t k = *i;
    uint32_t c = u[k];
    int extra = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
    if (extra) c &= 0x3Fu >> extra;
    k++;
    for (int j = 0; j < extra && k < n; j++, k++) c = (c << 6) | (u[k] & 0x3F);
    *i = k;
    return c;
}

size_t ju8_len(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) k++;
    return k;
}

size_t ju8_offset(const char *s, size_t n, size_t k) {
    size_t i = 0;
    while (k > 0 && i < n) {
        ju8_next(s, n, &i);
        k--;
    }
    return i;
}

bool ju8_is_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* ---------------------------------------------------------------- errors, buffers */

int jerr(struct jctx *c, int code, const char *fmt, ...) {
    char msg[VELA_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->at)
        return err_set(c->e, code, "template line %d col %d: %s", c->at->line, c->at->col, msg);
    return err_set(c->e, code, "template: %s", msg);
}

int jbuf_put(struct jctx *c, struct jbuf *b, const char *s, size_t n) {
    if (n == 0) return 0;
    if (n > VELA_TPL_MAX_OUTPUT_BYTES - b->n || b->n > VELA_TPL_MAX_OUTPUT_BYTES)
        return jerr(c, VELA_ELIMIT, "output exceeds %u bytes", (unsigned)VELA_TPL_MAX_OUTPUT_BYTES);
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return jerr(c, VELA_ENOMEM, "out of memory");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

static int put_z(struct jctx *c, struct jbuf *b, const char *z) {
    return jbuf_put(c, b, z, strlen(z));
}

/* ---------------------------------------------------------------- construction */

static int oom(struct jctx *c) {
    return jerr(c, VELA_ELIMIT, "render memory exceeds %u bytes",
                (unsigned)VELA_TPL_MAX_HEAP_BYTES);
}

int jbuf_finish_str(struct jctx *c, struct jbuf *b, int rc, struct jval *out) {
    if (rc == 0) {
        char *s = jpool_strdup(c->pool, b->p ? b->p : "", b->n);
        if (!s)
            rc = oom(c);
        else
            *out = jv_str(s, b->n);
    }
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    return rc;
}

int jv_new_list(struct jctx *c, size_t cap, struct jval *out) {
    struct jlist *l = jpool_alloc(c->pool, sizeof *l);
    if (!l) return oom(c);
    if (cap) {
        size_t bytes;
        if (!size_mul_ok(cap, sizeof *l->items, &bytes)) return oom(c);
        l->items = jpool_alloc(c->pool, bytes);
        if (!l->items) return oom(c);
        l->cap = cap;
    }
    l->depth = 1;
    out->kind = JV_LIST;
    out->n = 0;
    out->u.l = l;
    return 0;
}

int jv_new_dict(struct jctx *c, size_t cap, struct jval *out) {
    struct jdict *d = jpool_alloc(c->pool, sizeof *d);
    if (!d) return oom(c);
    d->depth = 1;
    if (cap) {
        size_t bytes;
        if (!size_mul_ok(cap, sizeof *d->keys, &bytes)) return oom(c);
        d->keys = jpool_alloc(c->pool, bytes);
        d->vals = jpool_alloc(c->pool, bytes);
        if (!d->keys || !d->vals) return oom(c);
        d->cap = cap;
    }
    out->kind = JV_DICT;
    out->n = 0;
    out->u.d = d;
    return 0;
}

static int depth_of(struct jval v) {
    if (v.kind == JV_LIST) return v.u.l->depth;
    if (v.kind == JV_DICT || v.kind == JV_NS) return v.u.d->depth;
    return 0;
}

static int grow(struct jctx *c, struct jval **arr, size_t n, size_t *cap) {
    if (n < *cap) return 0;
    size_t ncap = *cap ? *cap * 2 : 4, bytes;
    if (!size_mul_ok(ncap, sizeof **arr, &bytes)) return oom(c);
    struct jval *p = jpool_alloc(c->pool, bytes);
    if (!p) return oom(c);
    if (n) memcpy(p, *arr, n * sizeof **arr);
    *arr = p;
    *cap = ncap;
    return 0;
}

int jv_list_push(struct jctx *c, struct jlist *l, struct jval v) {
    int d = depth_of(v) + 1;
    if (d > VELA_TPL_MAX_VALUE_DEPTH)
        return jerr(c, VELA_ELIMIT, "values nest deeper than %d", VELA_TPL_MAX_VALUE_DEPTH);
    int rc = grow(c, &l->items, l->n, &l->cap);
    if (rc) return rc;
    l->items[l->n++] = v;
    if (d > l->depth) l->depth = d;
    return 0;
}

struct jval *jv_dict_get(const struct jdict *d, struct jval k) {
    for (size_t i = 0; i < d->n; i++)
        if (jv_equal(d->keys[i], k)) return &d->vals[i];
    return NULL;
}

struct jval *jv_dict_get_str(const struct jdict *d, const char *s, size_t n) {
    for (size_t i = 0; i < d->n; i++)
        if (d->keys[i].kind == JV_STR && d->keys[i].n == n && memcmp(d->keys[i].u.s, s, n) == 0)
            return &d->vals[i];
    return NULL;
}

int jv_dict_set(struct jctx *c, struct jdict *d, struct jval k, struct jval v) {
    int dep = depth_of(v) + 1;
    if (dep > VELA_TPL_MAX_VALUE_DEPTH)
        return jerr(c, VELA_ELIMIT, "values nest deeper than %d", VELA_TPL_MAX_VALUE_DEPTH);
    struct jval *slot = jv_dict_get(d, k);
    if (slot) {
        *slot = v;
    } else {
        size_t cap = d->cap;
        int rc = grow(c, &d->keys, d->n, &cap);
        if (rc == 0) {
            size_t cap2 = d->cap;
            rc = grow(c, &d->vals, d->n, &cap2);
        }
        if (rc) return rc;
        d->cap = cap;
        d->keys[d->n] = k;
        d->vals[d->n] = v;
        d->n++;
    }
    if (dep > d->depth) d->depth = dep;
    return 0;
}

/* JSON strings are borrowed: the caller's json_t outlives the render. */
int jv_from_json(struct jctx *c, const json_t *j, int depth, struct jval *out) {
    if (depth > VELA_TPL_MAX_VALUE_DEPTH)
        return jerr(c, VELA_ELIMIT, "input JSON nests deeper than %d", VELA_TPL_MAX_VALUE_DEPTH);
    int rc = 0;
    switch (json_typeof(j)) {
        case JSON_NULL:
            *out = jv_none();
            return 0;
        case JSON_TRUE:
            *out = jv_bool(true);
            return 0;
        case JSON_FALSE:
            *out = jv_bool(false);
            return 0;
        case JSON_INTEGER:
            *out = jv_int((int64_t)json_integer_value(j));
            return 0;
        case JSON_REAL:
            *out = jv_float(json_real_value(j));
            return 0;
        case JSON_STRING:
            *out = jv_str(json_string_value(j), json_string_length(j));
            return 0;
        case JSON_ARRAY: {
            rc = jv_new_list(c, json_array_size(j), out);
            for (size_t i = 0; rc == 0 && i < json_array_size(j); i++) {
                struct jval v;
                rc = jv_from_json(c, json_array_get(j, i), depth + 1, &v);
                if (rc == 0) rc = jv_list_push(c, out->u.l, v);
            }
            return rc;
        }
        case JSON_OBJECT: {
            rc = jv_new_dict(c, json_object_size(j), out);
            const char *key;
            size_t klen;
            json_t *val;
            json_object_keylen_foreach((json_t *)j, key, klen, val) {
                struct jval v;
                if (rc == 0) rc = jv_from_json(c, val, depth + 1, &v);
                if (rc == 0) rc = jv_dict_set(c, out->u.d, jv_str(key, klen), v);
            }
            return rc;
        }
    }
    return jerr(c, VELA_EINTERNAL, "unknown JSON type");
}

/* ---------------------------------------------------------------- Python semantics */

bool jv_truthy(struct jval v) {
    switch (v.kind) {
        case JV_UNDEF:
        case JV_NONE:
            return false;
        case JV_BOOL:
            return v.u.b;
        case JV_INT:
            return v.u.i != 0;
        case JV_FLOAT:
            return v.u.f != 0.0;
        case JV_STR:
            return v.n > 0;
        case JV_LIST:
            return v.u.l->n > 0;
        case JV_DICT:
            return v.u.d->n > 0;
        default:
            return true;
    }
}

static bool is_num(struct jval v) {
    return v.kind == JV_INT || v.kind == JV_FLOAT || v.kind == JV_BOOL;
}

static double num_f(struct jval v) {
    return v.kind == JV_FLOAT ? v.u.f : v.kind == JV_INT ? (double)v.u.i : (double)v.u.b;
}

bool jv_equal(struct jval a, struct jval b) {
    if (is_num(a) && is_num(b)) {
        if (a.kind != JV_FLOAT && b.kind != JV_FLOAT) {
            int64_t x = a.kind == JV_INT ? a.u.i : a.u.b, y = b.kind == JV_INT ? b.u.i : b.u.b;
            return x == y;
        }
        return num_f(a) == num_f(b);
    }
    if (a.kind != b.kind) return false;
    switch (a.kind) {
        case JV_UNDEF:
        case JV_NONE:
            return true;
        case JV_STR:
            return a.n == b.n && memcmp(a.u.s, b.u.s, a.n) == 0;
        case JV_LIST:
            if (a.u.l->n != b.u.l->n || a.u.l->tuple != b.u.l->tuple) return false;
            for (size_t i = 0; i < a.u.l->n; i++)
                if (!jv_equal(a.u.l->items[i], b.u.l->items[i])) return false;
            return true;
        case JV_DICT:
            if (a.u.d->n != b.u.d->n) return false;
            for (size_t i = 0; i < a.u.d->n; i++) {
                struct jval *o = jv_dict_get(b.u.d, a.u.d->keys[i]);
                if (!o || !jv_equal(a.u.d->vals[i], *o)) return false;
            }
            return true;
        case JV_NS:
            return a.u.d == b.u.d;
        case JV_MACRO:
            return a.u.m == b.u.m;
        case JV_FUNC:
            return a.u.i == b.u.i;
        default:
            return false;
    }
}

const char *jv_type_name(struct jval v) {
    static const char *names[] = {
        "Undefined", "NoneType", "bool",      "int",   "float",    "str",
        "list",      "dict",     "Namespace", "Macro", "function", "builtin_function_or_method"};
    return names[v.kind];
}

/* ---------------------------------------------------------------- text forms */

/* Python's float repr: the shortest string that reads back to the same double, fixed notation
 * for exponents in [-4, 16), scientific ("1e+16", "1e-05") outside. */
size_t jv_format_float(double f, char *buf, size_t cap) {
    if (isnan(f)) return (size_t)snprintf(buf, cap, "nan");
    if (isinf(f)) return (size_t)snprintf(buf, cap, f < 0 ? "-inf" : "inf");
    char tmp[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* tmp is d.ddde[+-]XX: split digits and exponent */
    char digits[24];
    size_t nd = 0;
    const char *p = tmp;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = '\0';
    size_t o = 0;
    char out[64];
    if (neg) out[o++] = '-';
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 < 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = -1; i > exp10; i--) out[o++] = '0';
            for (size_t i = 0; i < nd; i++) out[o++] = digits[i];
        } else {
            for (int i = 0; i <= exp10; i++) out[o++] = (size_t)i < nd ? digits[i] : '0';
            out[o++] = '.';
            if ((size_t)exp10 + 1 < nd)
                for (size_t i = (size_t)exp10 + 1; i < nd; i++) out[o++] = digits[i];
            else
                out[o++] = '0';
        }
        out[o] = '\0';
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (size_t i = 1; i < nd; i++) out[o++] = digits[i];
        }
        snprintf(out + o, sizeof out - o, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    }
    return (size_t)snprintf(buf, cap, "%s", out);
}

static int write_repr_str(struct jctx *c, struct jbuf *b, const char *s, size_t n) {
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    int rc = jbuf_put(c, b, &q, 1);
    size_t run = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[8];
        const char *rep = NULL;
        if (ch == '\\')
            rep = "\\\\";
        else if (ch == (unsigned char)q)
            rep = q == '\'' ? "\\'" : "\\\"";
        else if (ch == '\n')
            rep = "\\n";
        else if (ch == '\r')
            rep = "\\r";
        else if (ch == '\t')
            rep = "\\t";
        else if (ch < 0x20 || ch == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", ch);
            rep = esc;
        }
        if (!rep) continue;
        rc = jbuf_put(c, b, s + run, i - run);
        if (rc == 0) rc = put_z(c, b, rep);
        run = i + 1;
    }
    if (rc == 0) rc = jbuf_put(c, b, s + run, n - run);
    if (rc == 0) rc = jbuf_put(c, b, &q, 1);
    return rc;
}

static int write_seq_inner(struct jctx *c, struct jbuf *b, struct jval v);

/* Containers print recursively; a namespace may contain itself (set ns.x = ns), so the depth
 * is bounded here rather than by construction. */
static int write_seq(struct jctx *c, struct jbuf *b, struct jval v) {
    if (c->print_depth >= VELA_TPL_MAX_VALUE_DEPTH)
        return jerr(c, VELA_ELIMIT, "values nest deeper than %d", VELA_TPL_MAX_VALUE_DEPTH);
    c->print_depth++;
    int rc = write_seq_inner(c, b, v);
    c->print_depth--;
    return rc;
}

static int write_seq_inner(struct jctx *c, struct jbuf *b, struct jval v) {
    int rc;
    if (v.kind == JV_LIST) {
        bool tup = v.u.l->tuple;
        rc = put_z(c, b, tup ? "(" : "[");
        for (size_t i = 0; rc == 0 && i < v.u.l->n; i++) {
            if (i) rc = put_z(c, b, ", ");
            if (rc == 0) rc = jv_write_repr(c, b, v.u.l->items[i]);
        }
        if (rc == 0 && tup && v.u.l->n == 1) rc = put_z(c, b, ",");
        return rc ? rc : put_z(c, b, tup ? ")" : "]");
    }
    rc = put_z(c, b, v.kind == JV_NS ? "<Namespace {" : "{");
    for (size_t i = 0; rc == 0 && i < v.u.d->n; i++) {
        if (i) rc = put_z(c, b, ", ");
        if (rc == 0) rc = jv_write_repr(c, b, v.u.d->keys[i]);
        if (rc == 0) rc = put_z(c, b, ": ");
        if (rc == 0) rc = jv_write_repr(c, b, v.u.d->vals[i]);
    }
    return rc ? rc : put_z(c, b, v.kind == JV_NS ? "}>" : "}");
}

int jv_write_repr(struct jctx *c, struct jbuf *b, struct jval v) {
    if (v.kind == JV_STR) return write_repr_str(c, b, v.u.s, v.n);
    if (v.kind == JV_UNDEF) return put_z(c, b, "Undefined");
    return jv_write_str(c, b, v);
}

int jv_write_str(struct jctx *c, struct jbuf *b, struct jval v) {
    char tmp[64];
    switch (v.kind) {
        case JV_UNDEF:
            return 0;
        case JV_NONE:
            return put_z(c, b, "None");
        case JV_BOOL:
            return put_z(c, b, v.u.b ? "True" : "False");
        case JV_INT:
            snprintf(tmp, sizeof tmp, "%" PRId64, v.u.i);
            return put_z(c, b, tmp);
        case JV_FLOAT:
            jv_format_float(v.u.f, tmp, sizeof tmp);
            return put_z(c, b, tmp);
        case JV_STR:
            return jbuf_put(c, b, v.u.s, v.n);
        case JV_LIST:
        case JV_DICT:
        case JV_NS:
            return write_seq(c, b, v);
        case JV_MACRO:
            return put_z(c, b, "<Macro>");
        case JV_FUNC:
            return put_z(c, b, "<function>");
        case JV_METHOD:
            snprintf(tmp, sizeof tmp, "<built-in method %.32s>", v.u.mt->name);
            return put_z(c, b, tmp);
    }
    return 0;
}

int jv_to_str(struct jctx *c, struct jval v, struct jval *out) {
    if (v.kind == JV_STR) {
        *out = v;
        return 0;
    }
    struct jbuf b = {0};
    int rc = jv_write_str(c, &b, v);
    return jbuf_finish_str(c, &b, rc, out);
}

static int write_json_str(struct jctx *c, struct jbuf *b, const char *s, size_t n) {
    int rc = put_z(c, b, "\"");
    size_t run = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[8];
        const char *rep = NULL;
        switch (ch) {
            case '"':
                rep = "\\\"";
                break;
            case '\\':
                rep = "\\\\";
                break;
            case '\n':
                rep = "\\n";
                break;
            case '\r':
                rep = "\\r";
                break;
            case '\t':
                rep = "\\t";
                break;
            case '\b':
                rep = "\\b";
                break;
            case '\f':
                rep = "\\f";
                break;
            default:
                if (ch < 0x20) {
                    snprintf(esc, sizeof esc, "\\u%04x", ch);
                    rep = esc;
                }
        }
        if (!rep) continue;
        rc = jbuf_put(c, b, s + run, i - run);
        if (rc == 0) rc = put_z(c, b, rep);
        run = i + 1;
    }
    if (rc == 0) rc = jbuf_put(c, b, s + run, n - run);
    return rc ? rc : put_z(c, b, "\"");
}

static int write_indent(struct jctx *c, struct jbuf *b, int indent, int level) {
    int rc = put_z(c, b, "\n");
    for (int i = 0; rc == 0 && i < indent * level; i++) rc = put_z(c, b, " ");
    return rc;
}

/* json.dumps writes dict keys as strings: str keys as they are, numbers and constants
 * converted ("1", "true", "null"). */
static int write_json_key(struct jctx *c, struct jbuf *b, struct jval k) {
    char tmp[64];
    switch (k.kind) {
        case JV_STR:
            return write_json_str(c, b, k.u.s, k.n);
        case JV_INT:
            snprintf(tmp, sizeof tmp, "\"%" PRId64 "\"", k.u.i);
            return put_z(c, b, tmp);
        case JV_FLOAT:
            tmp[0] = '"';
            jv_format_float(k.u.f, tmp + 1, sizeof tmp - 2);
            strcat(tmp, "\"");
            return put_z(c, b, tmp);
        case JV_BOOL:
            return put_z(c, b, k.u.b ? "\"true\"" : "\"false\"");
        case JV_NONE:
            return put_z(c, b, "\"null\"");
        default:
            return jerr(c, VELA_EINVAL, "tojson: keys must be str, int, float, bool or None");
    }
}

static int key_cmp(const void *pa, const void *pb) {
    const struct jval *a = *(const struct jval *const *)pa, *b = *(const struct jval *const *)pb;
    size_t n = a->n < b->n ? a->n : b->n;
    int r = memcmp(a->u.s, b->u.s, n);
    return r ? r : (a->n > b->n) - (a->n < b->n);
}

static int write_json_dict(struct jctx *c, struct jbuf *b, const struct jdict *d, int indent,
                           const char *item_sep, const char *key_sep, bool sort_keys, int level) {
    if (d->n == 0) return put_z(c, b, "{}");
    size_t *order = malloc(d->n * sizeof *order);
    if (!order) return jerr(c, VELA_ENOMEM, "out of memory");
    for (size_t i = 0; i < d->n; i++) order[i] = i;
    if (sort_keys) {
        for (size_t i = 0; i < d->n; i++)
            if (d->keys[i].kind != JV_STR) {
                free(order);
                return jerr(c, VELA_EUNSUP, "tojson: sort_keys needs string keys");
            }
        const struct jval **ptrs = malloc(d->n * sizeof *ptrs);
        if (!ptrs) {
            free(order);
            return jerr(c, VELA_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < d->n; i++) ptrs[i] = &d->keys[i];
        qsort(ptrs, d->n, sizeof *ptrs, key_cmp);
        for (size_t i = 0; i < d->n; i++) order[i] = (size_t)(ptrs[i] - d->keys);
        free(ptrs);
    }
    int rc = put_z(c, b, "{");
    for (size_t k = 0; rc == 0 && k < d->n; k++) {
        size_t i = order[k];
        if (k) rc = put_z(c, b, item_sep);
        if (rc == 0 && indent >= 0) rc = write_indent(c, b, indent, level + 1);
        if (rc == 0) rc = write_json_key(c, b, d->keys[i]);
        if (rc == 0) rc = put_z(c, b, key_sep);
        if (rc == 0)
            rc = jv_write_json(c, b, d->vals[i], indent, item_sep, key_sep, sort_keys, level + 1);
    }
    free(order);
    if (rc == 0 && indent >= 0) rc = write_indent(c, b, indent, level);
    return rc ? rc : put_z(c, b, "}");
}

int jv_write_json(struct jctx *c, struct jbuf *b, struct jval v, int indent, const char *item_sep,
                  const char *key_sep, bool sort_keys, int level) {
    char tmp[64];
    switch (v.kind) {
        case JV_NONE:
            return put_z(c, b, "null");
        case JV_BOOL:
            return put_z(c, b, v.u.b ? "true" : "false");
        case JV_INT:
            snprintf(tmp, sizeof tmp, "%" PRId64, v.u.i);
            return put_z(c, b, tmp);
        case JV_FLOAT:
            if (isnan(v.u.f)) return put_z(c, b, "NaN");
            if (isinf(v.u.f)) return put_z(c, b, v.u.f < 0 ? "-Infinity" : "Infinity");
            jv_format_float(v.u.f, tmp, sizeof tmp);
            return put_z(c, b, tmp);
        case JV_STR:
            return write_json_str(c, b, v.u.s, v.n);
        case JV_LIST: {
            if (v.u.l->n == 0) return put_z(c, b, "[]");
            int rc = put_z(c, b, "[");
            for (size_t i = 0; rc == 0 && i < v.u.l->n; i++) {
                if (i) rc = put_z(c, b, item_sep);
                if (rc == 0 && indent >= 0) rc = write_indent(c, b, indent, level + 1);
                if (rc == 0)
                    rc = jv_write_json(c, b, v.u.l->items[i], indent, item_sep, key_sep, sort_keys,
                                       level + 1);
            }
            if (rc == 0 && indent >= 0) rc = write_indent(c, b, indent, level);
            return rc ? rc : put_z(c, b, "]");
        }
        case JV_DICT:
            return write_json_dict(c, b, v.u.d, indent, item_sep, key_sep, sort_keys, level);
        default:
            return jerr(c, VELA_EINVAL, "tojson: object of type %s is not JSON serializable",
                        jv_type_name(v));
    }
}
