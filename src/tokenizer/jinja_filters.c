/* jinja_filters: the tests ("x is defined") and filters ("x | tojson") templates may use,
 * with jinja2 3.1's semantics; tojson is transformers' override: json.dumps(x,
 * ensure_ascii=False, indent=None, separators=None, sort_keys=False), so "(", ", ")" and ": "
 * separate items unless indent is given (then "," and newlines).
 * Unknown filter and test names are rejected when the template compiles (jfilter_known,
 * jtest_known), as jinja2 does. Render thread only. */
#include "tokenizer/jinja_internal.h"

#include "util/limits.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static bool eq(const char *s, size_t n, const char *z) {
    return strlen(z) == n && memcmp(s, z, n) == 0;
}

static bool in_set(const char *const *set, const char *s, size_t n) {
    for (size_t i = 0; set[i]; i++)
        if (eq(s, n, set[i])) return true;
    return false;
}

#define ARG(k, name) jb_arg(a, n_a, (k), kn, kv, n_kw, (name))

/* ---------------------------------------------------------------- tests */

/* Python's a % b for the number tests (odd, even, divisibleby), ints and floats alike. */
static int py_mod(struct jctx *c, struct jval a, struct jval b, double *out) {
    bool ai = a.kind == JV_INT || a.kind == JV_BOOL, bi = b.kind == JV_INT || b.kind == JV_BOOL;
    if ((!ai && a.kind != JV_FLOAT) || (!bi && b.kind != JV_FLOAT))
        return jerr(c, VELA_EINVAL, "unsupported operand types for %%: '%s' and '%s'",
                    jv_type_name(a), jv_type_name(b));
    if (ai && bi) {
        int64_t x = a.kind == JV_INT ? a.u.i : a.u.b, y = b.kind == JV_INT ? b.u.i : b.u.b;
        if (y == 0) return jerr(c, VELA_EINVAL, "integer division or modulo by zero");
        int64_t r = (y == -1) ? 0 : x % y;
        if (r != 0 && ((r < 0) != (y < 0))) r += y;
        *out = (double)r;
        return 0;
    }
    double x = a.kind == JV_FLOAT ? a.u.f : (double)(a.kind == JV_INT ? a.u.i : a.u.b);
    double y = b.kind == JV_FLOAT ? b.u.f : (double)(b.kind == JV_INT ? b.u.i : b.u.b);
    if (y == 0) return jerr(c, VELA_EINVAL, "float modulo");
    double r = fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    *out = r;
    return 0;
}

static const char *const TESTS[] = {
    "defined",     "undefined", "none",        "string", "mapping", "iterable", "number",
    "sequence",    "boolean",   "true",        "false",  "eq",      "equalto",  "ne",
    "lt",          "gt",        "le",          "ge",     "in",      "integer",  "float",
    "odd",         "even",      "divisibleby", "lower",  "upper",   "callable", "sameas",
    "==",          "!=",        "<",           ">",      "<=",      ">=",       "lessthan",
    "greaterthan", NULL};

bool jtest_known(const char *name, size_t n) {
    return in_set(TESTS, name, n);
}

int jtest_apply(struct jctx *c, const char *name, size_t n, struct jval v, const struct jval *args,
                size_t n_args, bool *out) {
    const struct jval *a0 = n_args > 0 ? &args[0] : NULL;
    enum jv_kind k = v.kind;
    if (eq(name, n, "defined"))
        *out = k != JV_UNDEF;
    else if (eq(name, n, "undefined"))
        *out = k == JV_UNDEF;
    else if (eq(name, n, "none"))
        *out = k == JV_NONE;
    else if (eq(name, n, "string"))
        *out = k == JV_STR;
    else if (eq(name, n, "mapping"))
        *out = k == JV_DICT || k == JV_NS;
    else if (eq(name, n, "iterable"))
        *out = k == JV_STR || k == JV_LIST || k == JV_DICT || k == JV_UNDEF;
    else if (eq(name, n, "sequence"))
        *out = k == JV_STR || k == JV_LIST || k == JV_DICT || k == JV_UNDEF;
    else if (eq(name, n, "number"))
        *out = k == JV_INT || k == JV_FLOAT || k == JV_BOOL;
    else if (eq(name, n, "integer"))
        *out = k == JV_INT;
    else if (eq(name, n, "float"))
        *out = k == JV_FLOAT;
    else if (eq(name, n, "boolean"))
        *out = k == JV_BOOL;
    else if (eq(name, n, "true"))
        *out = k == JV_BOOL && v.u.b;
    else if (eq(name, n, "false"))
        *out = k == JV_BOOL && !v.u.b;
    else if (eq(name, n, "callable"))
        *out = k == JV_MACRO || k == JV_FUNC || k == JV_METHOD;
    else if (eq(name, n, "lower") || eq(name, n, "upper")) {
        struct jval m;
        int rc = k == JV_STR ? jb_case(c, v, name[0] == 'l' ? 'l' : 'u', &m) : 0;
        if (rc) return rc;
        *out = k == JV_STR && jv_equal(m, v);
    } else if (eq(name, n, "odd") || eq(name, n, "even")) {
        double r;
        int rc = py_mod(c, v, jv_int(2), &r);
        if (rc) return rc;
        *out = name[0] == 'o' ? r == 1 : r == 0;
    } else {
        if (!a0) return jerr(c, VELA_EINVAL, "test '%.*s' needs an argument", (int)n, name);
        if (eq(name, n, "divisibleby")) {
            double r;
            int rc = py_mod(c, v, *a0, &r);
            if (rc) return rc;
            *out = r == 0;
            return 0;
        }
        if (eq(name, n, "in")) return jv_contains(c, *a0, v, out);
        if (eq(name, n, "sameas")) {
            *out = v.kind == a0->kind &&
                   (v.kind == JV_NONE || v.kind == JV_UNDEF ||
                    (v.kind == JV_BOOL && v.u.b == a0->u.b) ||
                    ((v.kind == JV_LIST || v.kind == JV_DICT) && v.u.l == a0->u.l));
            return 0;
        }
        bool is_eq = eq(name, n, "eq") || eq(name, n, "equalto") || eq(name, n, "==");
        bool is_ne = eq(name, n, "ne") || eq(name, n, "!=");
        if (is_eq || is_ne) {
            *out = jv_equal(v, *a0) == is_eq;
            return 0;
        }
        /* ordering tests: reuse the comparison operators' rules through numbers and strings */
        int ord;
        if ((v.kind == JV_STR) != (a0->kind == JV_STR) || v.kind == JV_UNDEF ||
            a0->kind == JV_UNDEF ||
            (v.kind != JV_STR &&
             (v.kind == JV_LIST || v.kind == JV_DICT || v.kind == JV_NONE || a0->kind == JV_NONE ||
              a0->kind == JV_LIST || a0->kind == JV_DICT)))
            return jerr(c, VELA_EINVAL, "'%.*s' not supported between '%s' and '%s'", (int)n, name,
                        jv_type_name(v), jv_type_name(*a0));
        if (v.kind == JV_STR) {
            size_t m = v.n < a0->n ? v.n : a0->n;
            int r = m ? memcmp(v.u.s, a0->u.s, m) : 0;
            ord = r ? (r > 0) - (r < 0) : (v.n > a0->n) - (v.n < a0->n);
        } else {
            double x = v.kind == JV_FLOAT ? v.u.f : v.kind == JV_INT ? (double)v.u.i : v.u.b;
            double y = a0->kind == JV_FLOAT ? a0->u.f
                       : a0->kind == JV_INT ? (double)a0->u.i
                                            : a0->u.b;
            ord = (x > y) - (x < y);
        }
        if (eq(name, n, "lt") || eq(name, n, "<") || eq(name, n, "lessthan"))
            *out = ord < 0;
        else if (eq(name, n, "gt") || eq(name, n, ">") || eq(name, n, "greaterthan"))
            *out = ord > 0;
        else if (eq(name, n, "le") || eq(name, n, "<="))
            *out = ord <= 0;
        else
            *out = ord >= 0;
    }
    return 0;
}

/* ---------------------------------------------------------------- filters */

static const char *const FILTERS[] = {
    "tojson", "trim",       "length",  "count",      "upper",      "lower",     "default", "d",
    "items",  "join",       "replace", "string",     "first",      "last",      "list",    "int",
    "float",  "capitalize", "title",   "safe",       "escape",     "e",         "abs",     "round",
    "map",    "select",     "reject",  "selectattr", "rejectattr", "reverse",   "unique",  "indent",
    "sum",    "min",        "max",     "sort",       "dictsort",   "wordcount", NULL};

bool jfilter_known(const char *name, size_t n) {
    return in_set(FILTERS, name, n);
}

static int f_tojson(struct jctx *c, struct jval v, const struct jval *a, size_t n_a,
                    const struct jstr *kn, const struct jval *kv, size_t n_kw, struct jval *out) {
    const struct jval *ind = ARG(1, "indent"), *sep = ARG(2, "separators"),
                      *sk = ARG(3, "sort_keys");
    const struct jval *ea = ARG(0, "ensure_ascii");
    if (ea && jv_truthy(*ea))
        return jerr(c, VELA_EUNSUP, "tojson: ensure_ascii=True is not supported");
    int64_t indent = -1;
    if (ind && ind->kind != JV_NONE) {
        int rc = jb_want_int(c, "tojson indent", *ind, &indent);
        if (rc) return rc;
        if (indent < 0 || indent > 64) return jerr(c, VELA_ELIMIT, "tojson: indent out of range");
    }
    char item_sep[16] = ", ", key_sep[16] = ": ";
    if (indent >= 0) strcpy(item_sep, ",");
    if (sep && sep->kind != JV_NONE) {
        if (sep->kind != JV_LIST || sep->u.l->n != 2 || sep->u.l->items[0].kind != JV_STR ||
            sep->u.l->items[1].kind != JV_STR || sep->u.l->items[0].n >= 16 ||
            sep->u.l->items[1].n >= 16)
            return jerr(c, VELA_EINVAL, "tojson: separators must be two short strings");
        memcpy(item_sep, sep->u.l->items[0].u.s, sep->u.l->items[0].n);
        item_sep[sep->u.l->items[0].n] = '\0';
        memcpy(key_sep, sep->u.l->items[1].u.s, sep->u.l->items[1].n);
        key_sep[sep->u.l->items[1].n] = '\0';
    }
    struct jbuf b = {0};
    int rc = jv_write_json(c, &b, v, (int)indent, item_sep, key_sep, sk && jv_truthy(*sk), 0);
    return jbuf_finish_str(c, &b, rc, out);
}

static int length_of(struct jctx *c, struct jval v, int64_t *n) {
    switch (v.kind) {
        case JV_STR:
            *n = (int64_t)ju8_len(v.u.s, v.n);
            return 0;
        case JV_LIST:
            *n = (int64_t)v.u.l->n;
            return 0;
        case JV_DICT:
        case JV_NS:
            *n = (int64_t)v.u.d->n;
            return 0;
        case JV_UNDEF:
            *n = 0;
            return 0;
        default:
            return jerr(c, VELA_EINVAL, "object of type '%s' has no len()", jv_type_name(v));
    }
}

static int f_number(struct jctx *c, struct jval v, bool to_int, const struct jval *def,
                    struct jval *out) {
    struct jval d = def ? *def : to_int ? jv_int(0) : jv_float(0.0);
    if (v.kind == JV_INT || v.kind == JV_BOOL) {
        int64_t i = v.kind == JV_INT ? v.u.i : v.u.b;
        *out = to_int ? jv_int(i) : jv_float((double)i);
    } else if (v.kind == JV_FLOAT) {
        if (to_int && (!isfinite(v.u.f) || fabs(v.u.f) >= 9.2e18))
            *out = d;
        else
            *out = to_int ? jv_int((int64_t)v.u.f) : v;
    } else if (v.kind == JV_STR) {
        char buf[64];
        struct jval t = jb_strip(v, NULL, true, true);
        if (t.n == 0 || t.n >= sizeof buf) {
            *out = d;
            return 0;
        }
        memcpy(buf, t.u.s, t.n);
        buf[t.n] = '\0';
        char *end;
        long long i = strtoll(buf, &end, 10);
        if (*end == '\0') {
            *out = to_int ? jv_int(i) : jv_float((double)i);
            return 0;
        }
        double f = strtod(buf, &end);
        if (*end != '\0' || strchr(buf, 'x') || strchr(buf, 'X'))
            *out = d;
        else if (to_int)
            return f_number(c, jv_float(f), true, def, out);
        else
            *out = jv_float(f);
    } else {
        *out = d;
    }
    return 0;
}

/* select/reject/selectattr/rejectattr/map over a sequence. */
static int f_select(struct jctx *c, const char *f, struct jval v, const struct jval *a, size_t n_a,
                    const struct jstr *kn, const struct jval *kv, size_t n_kw, struct jval *out) {
    struct jval items;
    int rc = jv_iter_items(c, v, &items);
    if (rc == 0) rc = jv_new_list(c, 0, out);
    bool attr = strstr(f, "attr") != NULL, is_map = strcmp(f, "map") == 0;
    const struct jval *attr_name = is_map ? ARG(99, "attribute")
                                   : attr ? ARG(0, "attribute")
                                          : NULL;
    const struct jval *def = is_map ? ARG(99, "default") : NULL;
    size_t t0 = attr ? 1 : 0;
    if (rc == 0 && (attr || (is_map && attr_name)) && (!attr_name || attr_name->kind != JV_STR))
        return jerr(c, VELA_EINVAL, "%s needs an attribute name", f);
    if (rc == 0 && is_map && !attr_name && (n_a < 1 || a[0].kind != JV_STR))
        return jerr(c, VELA_EINVAL, "map needs a filter name or attribute=");
    for (size_t i = 0; rc == 0 && i < items.u.l->n; i++) {
        struct jval x = items.u.l->items[i];
        if (attr_name) {
            /* dotted paths: "function.name" */
            const char *p = attr_name->u.s, *end = p + attr_name->n;
            while (rc == 0 && p < end) {
                const char *dot = memchr(p, '.', (size_t)(end - p));
                size_t len = dot ? (size_t)(dot - p) : (size_t)(end - p);
                if (x.kind == JV_UNDEF) break;
                rc = jget_item(c, x, jv_str(p, len), &x);
                p += len + (dot ? 1 : 0);
            }
            if (x.kind == JV_UNDEF && def) x = *def;
        }
        if (rc) break;
        if (is_map) {
            if (!attr_name) {
                struct jnode fake = {.kind = JN_FILTER,
                                     .s = a[0].u.s,
                                     .n = a[0].n,
                                     .line = c->at ? c->at->line : 0,
                                     .col = c->at ? c->at->col : 0};
                if (!jfilter_known(a[0].u.s, a[0].n))
                    return jerr(c, VELA_EINVAL, "no filter named '%.*s'",
                                (int)(a[0].n > 40 ? 40 : a[0].n), a[0].u.s);
                rc = jfilter_apply(c, &fake, x, a + 1, n_a - 1, kn, kv, n_kw, &x);
            }
            if (rc == 0) rc = jv_list_push(c, out->u.l, x);
            continue;
        }
        bool keep = jv_truthy(x);
        if (n_a > t0) {
            if (a[t0].kind != JV_STR)
                return jerr(c, VELA_EINVAL, "%s: test name must be a string", f);
            if (!jtest_known(a[t0].u.s, a[t0].n) && !eq(a[t0].u.s, a[t0].n, "none"))
                return jerr(c, VELA_EINVAL, "no test named '%.*s'",
                            (int)(a[t0].n > 40 ? 40 : a[t0].n), a[t0].u.s);
            rc = jtest_apply(c, a[t0].u.s, a[t0].n, x, a + t0 + 1, n_a - t0 - 1, &keep);
        }
        if (rc == 0 && keep == (f[0] == 's')) rc = jv_list_push(c, out->u.l, items.u.l->items[i]);
    }
    return rc;
}

/* Order for sort/min/max/unique: jinja2 compares strings case-insensitively by default
 * (case_sensitive=False lowercases them first), numbers by value. */
static int cmp_vals(const void *pa, const void *pb) {
    const struct jval *a = pa, *b = pb;
    if (a->kind == JV_STR && b->kind == JV_STR) {
        size_t i = 0, j = 0;
        while (i < a->n && j < b->n) {
            utf8proc_int32_t x = utf8proc_tolower((utf8proc_int32_t)ju8_next(a->u.s, a->n, &i));
            utf8proc_int32_t y = utf8proc_tolower((utf8proc_int32_t)ju8_next(b->u.s, b->n, &j));
            if (x != y) return (x > y) - (x < y);
        }
        return (i < a->n) - (j < b->n);
    }
    double x = a->kind == JV_FLOAT  ? a->u.f
               : a->kind == JV_INT  ? (double)a->u.i
               : a->kind == JV_BOOL ? a->u.b
                                    : 0;
    double y = b->kind == JV_FLOAT  ? b->u.f
               : b->kind == JV_INT  ? (double)b->u.i
               : b->kind == JV_BOOL ? b->u.b
                                    : 0;
    return (x > y) - (x < y);
}

static int f_indent(struct jctx *c, struct jval s, const struct jval *a, size_t n_a,
                    const struct jstr *kn, const struct jval *kv, size_t n_kw, struct jval *out) {
    const struct jval *w = ARG(0, "width"), *first = ARG(1, "first"), *blank = ARG(2, "blank");
    int64_t width = 4;
    char pad[65];
    size_t np = 0;
    if (w && w->kind == JV_STR) {
        np = w->n < 64 ? w->n : 64;
        memcpy(pad, w->u.s, np);
    } else {
        if (w && jb_want_int(c, "indent", *w, &width)) return c->e->code;
        np = width < 0 ? 0 : width > 64 ? 64 : (size_t)width;
        memset(pad, ' ', np);
    }
    struct jbuf b = {0};
    int rc = 0;
    size_t i = 0;
    bool line0 = true;
    while (rc == 0 && i <= s.n) {
        const char *nl = memchr(s.u.s + i, '\n', s.n - i);
        size_t e = nl ? (size_t)(nl - s.u.s) : s.n;
        bool empty = e == i;
        if ((line0 ? (first && jv_truthy(*first)) : true) &&
            (!empty || (blank && jv_truthy(*blank))))
            rc = jbuf_put(c, &b, pad, np);
        if (rc == 0) rc = jbuf_put(c, &b, s.u.s + i, e - i);
        if (!nl) break;
        if (rc == 0) rc = jbuf_put(c, &b, "\n", 1);
        i = e + 1;
        line0 = false;
    }
    return jbuf_finish_str(c, &b, rc, out);
}

static int f_escape(struct jctx *c, struct jval s, struct jval *out) {
    struct jbuf b = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < s.n; i++) {
        const char *r = s.u.s[i] == '&'    ? "&amp;"
                        : s.u.s[i] == '<'  ? "&lt;"
                        : s.u.s[i] == '>'  ? "&gt;"
                        : s.u.s[i] == '"'  ? "&#34;"
                        : s.u.s[i] == '\'' ? "&#39;"
                                           : NULL;
        rc = r ? jbuf_put(c, &b, r, strlen(r)) : jbuf_put(c, &b, s.u.s + i, 1);
    }
    return jbuf_finish_str(c, &b, rc, out);
}

static int f_seq(struct jctx *c, const char *f, struct jval v, const struct jval *a, size_t n_a,
                 const struct jstr *kn, const struct jval *kv, size_t n_kw, struct jval *out) {
    struct jval items;
    int rc = jv_iter_items(c, v, &items);
    if (rc) return rc;
    struct jlist *l = items.u.l;
    if (strcmp(f, "first") == 0 || strcmp(f, "last") == 0) {
        *out = l->n == 0 ? jv_undef(NULL) : l->items[f[0] == 'f' ? 0 : l->n - 1];
        return 0;
    }
    if (strcmp(f, "list") == 0 || strcmp(f, "reverse") == 0 || strcmp(f, "sort") == 0 ||
        strcmp(f, "unique") == 0) {
        rc = jv_new_list(c, l->n, out);
        for (size_t i = 0; rc == 0 && i < l->n; i++) {
            struct jval x = l->items[f[0] == 'r' ? l->n - 1 - i : i];
            bool dup = false;
            for (size_t j = 0; f[0] == 'u' && j < out->u.l->n && !dup; j++)
                dup = x.kind == JV_STR && out->u.l->items[j].kind == JV_STR
                          ? cmp_vals(&out->u.l->items[j], &x) == 0
                          : jv_equal(out->u.l->items[j], x);
            if (!dup) rc = jv_list_push(c, out->u.l, x);
        }
        if (rc == 0 && f[0] == 'r' && v.kind == JV_STR) { /* reversed string stays a string */
            struct jval sep = jv_str("", 0);
            return jb_join(c, *out, sep, NULL, out);
        }
        if (rc == 0 && f[0] == 's') {
            const struct jval *rev = ARG(0, "reverse");
            for (size_t i = 0; i < out->u.l->n; i++) {
                enum jv_kind k = out->u.l->items[i].kind;
                if (k != JV_STR && k != JV_INT && k != JV_FLOAT && k != JV_BOOL)
                    return jerr(c, VELA_EUNSUP, "sort: only strings and numbers are supported");
            }
            qsort(out->u.l->items, out->u.l->n, sizeof *out->u.l->items, cmp_vals);
            if (rev && jv_truthy(*rev))
                for (size_t i = 0; i < out->u.l->n / 2; i++) {
                    struct jval t = out->u.l->items[i];
                    out->u.l->items[i] = out->u.l->items[out->u.l->n - 1 - i];
                    out->u.l->items[out->u.l->n - 1 - i] = t;
                }
        }
        return rc;
    }
    if (strcmp(f, "sum") == 0) {
        struct jval acc = jv_int(0);
        for (size_t i = 0; i < l->n; i++) {
            struct jval x = l->items[i];
            if (x.kind == JV_FLOAT || acc.kind == JV_FLOAT)
                acc = jv_float((acc.kind == JV_FLOAT ? acc.u.f : (double)acc.u.i) +
                               (x.kind == JV_FLOAT ? x.u.f
                                : x.kind == JV_INT ? (double)x.u.i
                                                   : x.u.b));
            else if (x.kind == JV_INT || x.kind == JV_BOOL) {
                if (__builtin_add_overflow(acc.u.i, x.kind == JV_INT ? x.u.i : x.u.b, &acc.u.i))
                    return jerr(c, VELA_ELIMIT, "integer overflow in sum");
            } else
                return jerr(c, VELA_EINVAL, "sum: unsupported item type '%s'", jv_type_name(x));
        }
        *out = acc;
        return 0;
    }
    /* min / max */
    if (l->n == 0) {
        *out = jv_undef(NULL);
        return 0;
    }
    struct jval best = l->items[0];
    for (size_t i = 1; i < l->n; i++) {
        int r = cmp_vals(&l->items[i], &best);
        if (f[1] == 'i' ? r < 0 : r > 0) best = l->items[i];
    }
    *out = best;
    return 0;
}

int jfilter_apply(struct jctx *c, const struct jnode *fn, struct jval v, const struct jval *a,
                  size_t n_a, const struct jstr *kn, const struct jval *kv, size_t n_kw,
                  struct jval *out) {
    char f[16];
    size_t n = fn->n < sizeof f - 1 ? fn->n : sizeof f - 1;
    memcpy(f, fn->s, n);
    f[n] = '\0';
    int rc = 0;
    int64_t len = 0;
    if (strcmp(f, "default") == 0 || strcmp(f, "d") == 0) {
        const struct jval *dv = ARG(0, "default_value"), *bo = ARG(1, "boolean");
        bool use = v.kind == JV_UNDEF || (bo && jv_truthy(*bo) && !jv_truthy(v));
        *out = use ? (dv ? *dv : jv_str("", 0)) : v;
        return 0;
    }
    if (strcmp(f, "tojson") == 0) return f_tojson(c, v, a, n_a, kn, kv, n_kw, out);
    if (strcmp(f, "length") == 0 || strcmp(f, "count") == 0) {
        rc = length_of(c, v, &len);
        if (rc == 0) *out = jv_int(len);
        return rc;
    }
    if (strcmp(f, "items") == 0) {
        if (v.kind == JV_UNDEF) return jv_new_list(c, 0, out);
        if (v.kind != JV_DICT && v.kind != JV_NS)
            return jerr(c, VELA_EINVAL, "can only get item pairs from a mapping");
        return jb_dict_method(c, "items", v.u.d, NULL, 0, NULL, NULL, 0, out);
    }
    if (strcmp(f, "safe") == 0) return jv_to_str(c, v, out); /* Markup is a str */
    if ((strcmp(f, "int") == 0 || strcmp(f, "float") == 0) && v.kind == JV_UNDEF)
        return jerr_undef(c, v); /* Undefined.__int__ fails rather than converting */
    if (strcmp(f, "int") == 0 || strcmp(f, "float") == 0)
        return f_number(c, v, f[0] == 'i', ARG(0, "default"), out);
    if (strcmp(f, "abs") == 0) {
        if (v.kind == JV_INT && v.u.i != INT64_MIN)
            *out = jv_int(v.u.i < 0 ? -v.u.i : v.u.i);
        else if (v.kind == JV_FLOAT)
            *out = jv_float(fabs(v.u.f));
        else if (v.kind == JV_BOOL)
            *out = jv_int(v.u.b);
        else
            return jerr(c, VELA_EINVAL, "bad operand type for abs(): '%s'", jv_type_name(v));
        return 0;
    }
    if (strcmp(f, "round") == 0) {
        const struct jval *pr = ARG(0, "precision"), *method = ARG(1, "method");
        int64_t p = 0;
        if (pr) rc = jb_want_int(c, "round", *pr, &p);
        if (rc == 0 && v.kind != JV_INT && v.kind != JV_FLOAT && v.kind != JV_BOOL)
            rc = jerr(c, VELA_EINVAL, "round: not a number");
        if (rc) return rc;
        double x = v.kind == JV_FLOAT ? v.u.f : v.kind == JV_INT ? (double)v.u.i : v.u.b;
        double m = pow(10.0, (double)(p < -300 ? -300 : p > 300 ? 300 : p));
        bool floor_m = method && method->kind == JV_STR && eq(method->u.s, method->n, "floor");
        bool ceil_m = method && method->kind == JV_STR && eq(method->u.s, method->n, "ceil");
        double r = floor_m ? floor(x * m) / m : ceil_m ? ceil(x * m) / m : nearbyint(x * m) / m;
        /* Python's round(int, n) stays an int */
        *out = (v.kind != JV_FLOAT && p >= 0 && !method) ? jv_int(v.kind == JV_INT ? v.u.i : v.u.b)
                                                         : jv_float(r);
        return 0;
    }
    if (strcmp(f, "map") == 0 || strcmp(f, "select") == 0 || strcmp(f, "reject") == 0 ||
        strcmp(f, "selectattr") == 0 || strcmp(f, "rejectattr") == 0)
        return f_select(c, f, v, a, n_a, kn, kv, n_kw, out);
    if (strcmp(f, "first") == 0 || strcmp(f, "last") == 0 || strcmp(f, "list") == 0 ||
        strcmp(f, "reverse") == 0 || strcmp(f, "sort") == 0 || strcmp(f, "unique") == 0 ||
        strcmp(f, "sum") == 0 || strcmp(f, "min") == 0 || strcmp(f, "max") == 0)
        return f_seq(c, f, v, a, n_a, kn, kv, n_kw, out);
    if (strcmp(f, "dictsort") == 0) {
        if (v.kind != JV_DICT) return jerr(c, VELA_EINVAL, "dictsort needs a mapping");
        rc = jb_dict_method(c, "items", v.u.d, NULL, 0, NULL, NULL, 0, out);
        for (size_t i = 0; rc == 0 && i < out->u.l->n; i++)
            for (size_t j = i + 1; j < out->u.l->n; j++)
                if (cmp_vals(&out->u.l->items[j].u.l->items[0], &out->u.l->items[i].u.l->items[0]) <
                    0) {
                    struct jval t = out->u.l->items[i];
                    out->u.l->items[i] = out->u.l->items[j];
                    out->u.l->items[j] = t;
                }
        return rc;
    }
    if (strcmp(f, "join") == 0) {
        const struct jval *sep = ARG(0, "d"), *attr = ARG(1, "attribute");
        struct jval s = jv_str("", 0);
        if (sep) rc = jv_to_str(c, *sep, &s);
        return rc ? rc : jb_join(c, v, s, attr, out);
    }
    /* the rest work on str(v) */
    struct jval s;
    rc = jv_to_str(c, v, &s);
    if (rc) return rc;
    if (strcmp(f, "string") == 0)
        *out = s;
    else if (strcmp(f, "trim") == 0) {
        const struct jval *chars = ARG(0, "chars");
        if (chars && chars->kind == JV_NONE) chars = NULL;
        if (chars) rc = jb_want_str(c, "trim", *chars);
        if (rc == 0) *out = jb_strip(s, chars, true, true);
    } else if (strcmp(f, "upper") == 0)
        rc = jb_case(c, s, 'u', out);
    else if (strcmp(f, "lower") == 0)
        rc = jb_case(c, s, 'l', out);
    else if (strcmp(f, "capitalize") == 0)
        rc = jb_case(c, s, 'c', out);
    else if (strcmp(f, "title") == 0)
        rc = jb_case(c, s, 't', out);
    else if (strcmp(f, "escape") == 0 || strcmp(f, "e") == 0)
        rc = f_escape(c, s, out);
    else if (strcmp(f, "indent") == 0)
        rc = f_indent(c, s, a, n_a, kn, kv, n_kw, out);
    else if (strcmp(f, "wordcount") == 0) {
        /* jinja counts runs of \w (letters, digits, underscore) */
        int64_t words = 0;
        bool in_word = false;
        for (size_t i = 0; i < s.n;) {
            uint32_t cp = ju8_next(s.u.s, s.n, &i);
            utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
            bool w = cp == '_' || (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_NO);
            if (w && !in_word) words++;
            in_word = w;
        }
        *out = jv_int(words);
    } else if (strcmp(f, "replace") == 0) {
        const struct jval *old = ARG(0, "old"), *nw = ARG(1, "new"), *cnt = ARG(2, "count");
        int64_t k = -1;
        if (!old || !nw) return jerr(c, VELA_EINVAL, "replace needs old and new");
        struct jval so, sn;
        rc = jv_to_str(c, *old, &so);
        if (rc == 0) rc = jv_to_str(c, *nw, &sn);
        if (rc == 0 && cnt && cnt->kind != JV_NONE) rc = jb_want_int(c, "replace", *cnt, &k);
        if (rc == 0) rc = jb_replace(c, s, so, sn, k, out);
    } else {
        rc = jerr(c, VELA_EINTERNAL, "filter '%s' has no implementation", f);
    }
    return rc;
}
