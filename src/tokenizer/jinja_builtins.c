/* jinja_builtins: what templates can call: attribute and item access, the methods of str and
 * dict that chat templates use, global functions (namespace, raise_exception, strftime_now,
 * range, dict), and the string helpers jinja_filters.c shares. Semantics follow jinja2 3.1 and
 * Python 3; tojson is transformers' override (json.dumps with ensure_ascii=False).
 *
 * Access rules (jinja2's sandbox over our value kinds): obj.name looks for a method first and
 * then an item; obj[key] looks for an item first and then a method; a miss is undefined, not an
 * error. Mutating methods (append, update, pop, ...) do not exist here, as the immutable sandbox
 * refuses them.
 * Invariants: results live in the render pool; string results are valid UTF-8 when the inputs
 * are. Render thread only. */
#include "tokenizer/jinja_internal.h"

#include "util/limits.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

static bool eq(const char *s, size_t n, const char *z) {
    return strlen(z) == n && memcmp(s, z, n) == 0;
}

static int nomem(struct jctx *c) {
    return jerr(c, VELA_ELIMIT, "render memory exhausted");
}

static const char *const STR_METHODS[] = {
    "startswith", "endswith", "split",   "rsplit",  "strip",      "lstrip",     "rstrip",
    "upper",      "lower",    "replace", "title",   "capitalize", "find",       "count",
    "join",       "format",   "isdigit", "isalpha", "isspace",    "splitlines", NULL};
static const char *const DICT_METHODS[] = {"items", "keys", "values", "get", NULL};
static const char *const LIST_METHODS[] = {"count", "index", NULL};

static int method(struct jctx *c, struct jval obj, const char *const *set, const char *s, size_t n,
                  struct jval *out) {
    for (size_t i = 0; set[i]; i++)
        if (eq(s, n, set[i])) {
            struct jmethod *m = jpool_alloc(c->pool, sizeof *m);
            if (!m) return nomem(c);
            m->self = obj;
            m->name = set[i];
            out->kind = JV_METHOD;
            out->n = 0;
            out->u.mt = m;
            return 0;
        }
    return 1;
}

int jget_attr(struct jctx *c, struct jval obj, const char *s, size_t n, struct jval *out) {
    if (n > 0 && s[0] == '_') { /* the sandbox hides private and dunder attributes */
        *out = jv_undef(NULL);
        return 0;
    }
    int rc = 1;
    if (obj.kind == JV_STR) rc = method(c, obj, STR_METHODS, s, n, out);
    if (obj.kind == JV_DICT) rc = method(c, obj, DICT_METHODS, s, n, out);
    if (obj.kind == JV_LIST) rc = method(c, obj, LIST_METHODS, s, n, out);
    if (rc <= 0) return rc;
    if (obj.kind == JV_DICT || obj.kind == JV_NS) {
        struct jval *v = jv_dict_get_str(obj.u.d, s, n);
        if (v) {
            *out = *v;
            return 0;
        }
    }
    *out = jv_undef(NULL);
    return 0;
}

int jget_item(struct jctx *c, struct jval obj, struct jval key, struct jval *out) {
    *out = jv_undef(NULL);
    if (obj.kind == JV_DICT || obj.kind == JV_NS) {
        struct jval *v = jv_dict_get(obj.u.d, key);
        if (v) {
            *out = *v;
            return 0;
        }
    } else if ((obj.kind == JV_LIST || obj.kind == JV_STR) &&
               (key.kind == JV_INT || key.kind == JV_BOOL)) {
        int64_t k = key.kind == JV_INT ? key.u.i : key.u.b;
        size_t len = obj.kind == JV_LIST ? obj.u.l->n : ju8_len(obj.u.s, obj.n);
        if (k < 0) k += (int64_t)len;
        if (k < 0 || (uint64_t)k >= len) return 0;
        if (obj.kind == JV_LIST) {
            *out = obj.u.l->items[k];
        } else {
            size_t b0 = ju8_offset(obj.u.s, obj.n, (size_t)k), b1 = b0;
            ju8_next(obj.u.s, obj.n, &b1);
            *out = jv_str(obj.u.s + b0, b1 - b0);
        }
        return 0;
    }
    if (key.kind == JV_STR) return jget_attr(c, obj, key.u.s, key.n, out);
    return 0;
}

/* ---------------------------------------------------------------- string helpers */

static int new_str(struct jctx *c, size_t cap, char **p) {
    if (cap > VELA_TPL_MAX_STRING_BYTES)
        return jerr(c, VELA_ELIMIT, "string exceeds %u bytes", (unsigned)VELA_TPL_MAX_STRING_BYTES);
    *p = jpool_alloc(c->pool, cap + 1);
    return *p ? 0 : nomem(c);
}

/* Case mapping by code point (utf8proc), mode: 'u' upper, 'l' lower, 't' title, 'c' capitalize. */
int jb_case(struct jctx *c, struct jval s, char mode, struct jval *out) {
    char *d;
    int rc = new_str(c, s.n * 2 + 8, &d);
    if (rc) return rc;
    size_t i = 0, o = 0;
    bool word_start = true, first = true;
    while (i < s.n) {
        uint32_t cp = ju8_next(s.u.s, s.n, &i);
        utf8proc_int32_t m = (utf8proc_int32_t)cp;
        if (mode == 'u')
            m = utf8proc_toupper(m);
        else if (mode == 'l')
            m = utf8proc_tolower(m);
        else if (mode == 'c')
            m = first ? utf8proc_toupper(m) : utf8proc_tolower(m);
        else {
            m = word_start ? utf8proc_totitle(m) : utf8proc_tolower(m);
            if (mode == 'T') { /* Python's str.title(): a word starts after any non-letter */
                utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
                word_start = !(cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO);
            } else { /* jinja's title filter: after whitespace, '-' and opening brackets */
                word_start = ju8_is_space(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' ||
                             cp == '<';
            }
        }
        first = false;
        utf8proc_uint8_t buf[4];
        utf8proc_ssize_t k = utf8proc_encode_char(m, buf);
        if (o + (size_t)k > s.n * 2 + 8) return jerr(c, VELA_EINTERNAL, "case mapping grew");
        memcpy(d + o, buf, (size_t)k);
        o += (size_t)k;
    }
    *out = jv_str(d, o);
    return 0;
}

static bool in_chars(uint32_t cp, struct jval chars) {
    size_t i = 0;
    while (i < chars.n)
        if (ju8_next(chars.u.s, chars.n, &i) == cp) return true;
    return false;
}

/* Python's strip family; chars NULL strips whitespace. */
struct jval jb_strip(struct jval s, const struct jval *chars, bool left, bool right) {
    size_t b = 0, e = s.n;
    if (left)
        while (b < e) {
            size_t k = b;
            uint32_t cp = ju8_next(s.u.s, s.n, &k);
            if (chars ? !in_chars(cp, *chars) : !ju8_is_space(cp)) break;
            b = k;
        }
    if (right)
        while (e > b) {
            size_t k = e - 1;
            while (k > b && ((unsigned char)s.u.s[k] & 0xC0) == 0x80) k--;
            size_t j = k;
            uint32_t cp = ju8_next(s.u.s, s.n, &j);
            if (chars ? !in_chars(cp, *chars) : !ju8_is_space(cp)) break;
            e = k;
        }
    return jv_str(s.u.s + b, e - b);
}

static const char *find_sub(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0) return h;
    for (size_t i = 0; nn <= hn && i <= hn - nn; i++)
        if (memcmp(h + i, nd, nn) == 0) return h + i;
    return NULL;
}

int jb_replace(struct jctx *c, struct jval s, struct jval old, struct jval new_, int64_t count,
               struct jval *out) {
    struct jbuf b = {0};
    int rc = 0;
    size_t i = 0;
    int64_t done = 0;
    if (old.n == 0) { /* Python inserts new_ between characters and at both ends */
        while (rc == 0 && (count < 0 || done < count)) {
            rc = jbuf_put(c, &b, new_.u.s, new_.n);
            done++;
            if (i >= s.n) break;
            size_t k = i;
            ju8_next(s.u.s, s.n, &k);
            if (rc == 0) rc = jbuf_put(c, &b, s.u.s + i, k - i);
            i = k;
        }
    } else {
        while (rc == 0 && (count < 0 || done < count)) {
            const char *hit = find_sub(s.u.s + i, s.n - i, old.u.s, old.n);
            if (!hit) break;
            size_t at = (size_t)(hit - s.u.s);
            rc = jbuf_put(c, &b, s.u.s + i, at - i);
            if (rc == 0) rc = jbuf_put(c, &b, new_.u.s, new_.n);
            i = at + old.n;
            done++;
        }
    }
    if (rc == 0) rc = jbuf_put(c, &b, s.u.s + i, s.n - i);
    return jbuf_finish_str(c, &b, rc, out);
}

int jb_split(struct jctx *c, struct jval s, const struct jval *sep, int64_t maxsplit,
             struct jval *out) {
    int rc = jv_new_list(c, 0, out);
    size_t i = 0;
    int64_t done = 0;
    if (sep) {
        if (sep->n == 0) return jerr(c, VELA_EINVAL, "empty separator");
        while (rc == 0) {
            const char *hit = (maxsplit < 0 || done < maxsplit)
                                  ? find_sub(s.u.s + i, s.n - i, sep->u.s, sep->n)
                                  : NULL;
            size_t end = hit ? (size_t)(hit - s.u.s) : s.n;
            rc = jv_list_push(c, out->u.l, jv_str(s.u.s + i, end - i));
            if (!hit) break;
            i = end + sep->n;
            done++;
        }
        return rc;
    }
    while (rc == 0) { /* whitespace runs separate, ends are dropped */
        struct jval rest = jb_strip(jv_str(s.u.s + i, s.n - i), NULL, true, false);
        i = (size_t)(rest.u.s - s.u.s);
        if (i >= s.n) break;
        size_t e = i;
        if (maxsplit >= 0 && done >= maxsplit) {
            rc = jv_list_push(c, out->u.l, jb_strip(jv_str(s.u.s + i, s.n - i), NULL, false, true));
            break;
        }
        while (e < s.n) {
            size_t k = e;
            if (ju8_is_space(ju8_next(s.u.s, s.n, &k))) break;
            e = k;
        }
        rc = jv_list_push(c, out->u.l, jv_str(s.u.s + i, e - i));
        i = e;
        done++;
    }
    return rc;
}

static bool affix(struct jval s, struct jval a, bool start) {
    if (a.n > s.n) return false;
    return memcmp(start ? s.u.s : s.u.s + s.n - a.n, a.u.s, a.n) == 0;
}

int jb_join(struct jctx *c, struct jval seq, struct jval sep, const struct jval *attr,
            struct jval *out) {
    struct jval items;
    int rc = jv_iter_items(c, seq, &items);
    struct jbuf b = {0};
    for (size_t i = 0; rc == 0 && i < items.u.l->n; i++) {
        struct jval v = items.u.l->items[i];
        if (i) rc = jbuf_put(c, &b, sep.u.s, sep.n);
        if (rc == 0 && attr) rc = jget_item(c, v, *attr, &v);
        if (rc == 0) rc = jv_write_str(c, &b, v);
    }
    return jbuf_finish_str(c, &b, rc, out);
}

/* ---------------------------------------------------------------- argument helpers */

int jb_want_str(struct jctx *c, const char *what, struct jval v) {
    if (v.kind == JV_STR) return 0;
    if (v.kind == JV_UNDEF) return jerr_undef(c, v);
    return jerr(c, VELA_EINVAL, "%s expects a string, got '%s'", what, jv_type_name(v));
}

int jb_want_int(struct jctx *c, const char *what, struct jval v, int64_t *out) {
    if (v.kind == JV_INT || v.kind == JV_BOOL) {
        *out = v.kind == JV_INT ? v.u.i : v.u.b;
        return 0;
    }
    return jerr(c, VELA_EINVAL, "%s expects an integer, got '%s'", what, jv_type_name(v));
}

/* Positional argument k, else the keyword `name`, else NULL. */
const struct jval *jb_arg(const struct jval *a, size_t n_a, size_t k, const struct jstr *kn,
                          const struct jval *kv, size_t n_kw, const char *name) {
    if (k < n_a) return &a[k];
    for (size_t i = 0; i < n_kw; i++)
        if (eq(kn[i].s, kn[i].n, name)) return &kv[i];
    return NULL;
}

#define ARG(k, name) jb_arg(a, n_a, (k), kn, kv, n_kw, (name))

/* ---------------------------------------------------------------- methods */

int jb_dict_method(struct jctx *c, const char *m, struct jdict *d, const struct jval *a, size_t n_a,
                   const struct jstr *kn, const struct jval *kv, size_t n_kw, struct jval *out) {
    int rc;
    if (strcmp(m, "get") == 0) {
        const struct jval *k = ARG(0, "key"), *def = ARG(1, "default");
        if (!k) return jerr(c, VELA_EINVAL, "get() takes at least 1 argument");
        struct jval *v = jv_dict_get(d, *k);
        *out = v ? *v : def ? *def : jv_none();
        return 0;
    }
    rc = jv_new_list(c, d->n, out);
    for (size_t i = 0; rc == 0 && i < d->n; i++) {
        struct jval v = strcmp(m, "keys") == 0 ? d->keys[i] : d->vals[i];
        if (strcmp(m, "items") == 0) {
            rc = jv_new_list(c, 2, &v);
            if (rc == 0) v.u.l->tuple = true;
            if (rc == 0) rc = jv_list_push(c, v.u.l, d->keys[i]);
            if (rc == 0) rc = jv_list_push(c, v.u.l, d->vals[i]);
        }
        if (rc == 0) rc = jv_list_push(c, out->u.l, v);
    }
    return rc;
}

static int str_format(struct jctx *c, struct jval s, const struct jval *a, size_t n_a,
                      struct jval *out) {
    struct jbuf b = {0};
    size_t next = 0, i = 0, run = 0;
    int rc = 0;
    while (rc == 0 && i < s.n) {
        char ch = s.u.s[i];
        if ((ch == '{' || ch == '}') && i + 1 < s.n && s.u.s[i + 1] == ch) {
            rc = jbuf_put(c, &b, s.u.s + run, i + 1 - run);
            i += 2;
            run = i;
        } else if (ch == '{' && i + 1 < s.n && s.u.s[i + 1] == '}') {
            rc = jbuf_put(c, &b, s.u.s + run, i - run);
            if (rc == 0 && next >= n_a) rc = jerr(c, VELA_EINVAL, "format(): not enough arguments");
            if (rc == 0) rc = jv_write_str(c, &b, a[next++]);
            i += 2;
            run = i;
        } else if (ch == '{') {
            rc = jerr(c, VELA_EUNSUP, "format(): only '{}' fields are supported");
        } else {
            i++;
        }
    }
    if (rc == 0) rc = jbuf_put(c, &b, s.u.s + run, s.n - run);
    return jbuf_finish_str(c, &b, rc, out);
}

static int call_str_method(struct jctx *c, const char *m, struct jval s, const struct jval *a,
                           size_t n_a, const struct jstr *kn, const struct jval *kv, size_t n_kw,
                           struct jval *out) {
    const struct jval *a0 = ARG(0, "__a0"), *a1 = ARG(1, "__a1");
    int rc = 0;
    int64_t k = -1;
    if (strcmp(m, "startswith") == 0 || strcmp(m, "endswith") == 0) {
        bool start = m[0] == 's', r = false;
        if (!a0) return jerr(c, VELA_EINVAL, "%s() takes 1 argument", m);
        if (a0->kind == JV_LIST) {
            for (size_t i = 0; rc == 0 && i < a0->u.l->n && !r; i++) {
                rc = jb_want_str(c, m, a0->u.l->items[i]);
                if (rc == 0) r = affix(s, a0->u.l->items[i], start);
            }
        } else {
            rc = jb_want_str(c, m, *a0);
            if (rc == 0) r = affix(s, *a0, start);
        }
        *out = jv_bool(r);
        return rc;
    }
    if (strcmp(m, "split") == 0 || strcmp(m, "rsplit") == 0) {
        const struct jval *sep = ARG(0, "sep"), *mx = ARG(1, "maxsplit");
        if (sep && sep->kind == JV_NONE) sep = NULL;
        if (sep) rc = jb_want_str(c, "split", *sep);
        if (rc == 0 && mx) rc = jb_want_int(c, "split", *mx, &k);
        if (rc == 0 && m[0] == 'r' && k >= 0)
            rc = jerr(c, VELA_EUNSUP, "rsplit() with maxsplit is not supported");
        return rc ? rc : jb_split(c, s, sep, k, out);
    }
    if (strcmp(m, "strip") == 0 || strcmp(m, "lstrip") == 0 || strcmp(m, "rstrip") == 0) {
        if (a0 && a0->kind == JV_NONE) a0 = NULL;
        if (a0) rc = jb_want_str(c, m, *a0);
        if (rc == 0) *out = jb_strip(s, a0, m[0] != 'r', m[0] != 'l');
        return rc;
    }
    if (strcmp(m, "upper") == 0) return jb_case(c, s, 'u', out);
    if (strcmp(m, "lower") == 0) return jb_case(c, s, 'l', out);
    if (strcmp(m, "title") == 0) return jb_case(c, s, 'T', out);
    if (strcmp(m, "capitalize") == 0) return jb_case(c, s, 'c', out);
    if (strcmp(m, "replace") == 0) {
        const struct jval *cnt = ARG(2, "count");
        if (!a0 || !a1) return jerr(c, VELA_EINVAL, "replace() takes 2 arguments");
        rc = jb_want_str(c, m, *a0);
        if (rc == 0) rc = jb_want_str(c, m, *a1);
        if (rc == 0 && cnt) rc = jb_want_int(c, m, *cnt, &k);
        return rc ? rc : jb_replace(c, s, *a0, *a1, k, out);
    }
    if (strcmp(m, "find") == 0 || strcmp(m, "count") == 0) {
        if (!a0) return jerr(c, VELA_EINVAL, "%s() takes 1 argument", m);
        rc = jb_want_str(c, m, *a0);
        if (rc) return rc;
        if (m[0] == 'f') {
            const char *hit = find_sub(s.u.s, s.n, a0->u.s, a0->n);
            *out = jv_int(hit ? (int64_t)ju8_len(s.u.s, (size_t)(hit - s.u.s)) : -1);
            return 0;
        }
        int64_t n = 0;
        if (a0->n == 0) n = (int64_t)ju8_len(s.u.s, s.n) + 1;
        for (size_t i = 0; a0->n && i + a0->n <= s.n;) {
            const char *hit = find_sub(s.u.s + i, s.n - i, a0->u.s, a0->n);
            if (!hit) break;
            n++;
            i = (size_t)(hit - s.u.s) + a0->n;
        }
        *out = jv_int(n);
        return 0;
    }
    if (strcmp(m, "join") == 0) {
        if (!a0) return jerr(c, VELA_EINVAL, "join() takes 1 argument");
        return jb_join(c, *a0, s, NULL, out);
    }
    if (strcmp(m, "format") == 0) return str_format(c, s, a, n_a, out);
    if (strcmp(m, "splitlines") == 0) {
        struct jval nl = jv_str("\n", 1);
        if (s.n == 0) return jv_new_list(c, 0, out);
        struct jval body = s;
        if (s.u.s[s.n - 1] == '\n') body.n--;
        return jb_split(c, body, &nl, -1, out);
    }
    bool r = s.n > 0;
    for (size_t i = 0; i < s.n && r;) {
        uint32_t cp = ju8_next(s.u.s, s.n, &i);
        utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
        if (strcmp(m, "isdigit") == 0)
            r = cat == UTF8PROC_CATEGORY_ND;
        else if (strcmp(m, "isspace") == 0)
            r = ju8_is_space(cp);
        else
            r = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
    }
    *out = jv_bool(r);
    return 0;
}

/* ---------------------------------------------------------------- global functions */

static int call_func(struct jctx *c, enum jfunc f, const struct jval *a, size_t n_a,
                     const struct jstr *kn, const struct jval *kv, size_t n_kw, struct jval *out) {
    int rc = 0;
    switch (f) {
        case JF_NAMESPACE:
        case JF_DICT:
            rc = jv_new_dict(c, n_kw, out);
            if (rc == 0 && n_a > 0) {
                if (n_a > 1 || a[0].kind != JV_DICT)
                    return jerr(c, VELA_EINVAL, "namespace()/dict() takes one mapping");
                for (size_t i = 0; rc == 0 && i < a[0].u.d->n; i++)
                    rc = jv_dict_set(c, out->u.d, a[0].u.d->keys[i], a[0].u.d->vals[i]);
            }
            for (size_t i = 0; rc == 0 && i < n_kw; i++) {
                if (f == JF_NAMESPACE && kn[i].n > 0 && kn[i].s[0] == '_')
                    return jerr(c, VELA_EINVAL, "namespace attributes cannot start with '_'");
                rc = jv_dict_set(c, out->u.d, jv_str(kn[i].s, kn[i].n), kv[i]);
            }
            if (f == JF_NAMESPACE) out->kind = JV_NS;
            return rc;
        case JF_RAISE: {
            struct jval msg = jv_str("", 0);
            if (n_a > 0) rc = jv_to_str(c, a[0], &msg);
            return rc ? rc
                      : jerr(c, VELA_EINVAL, "raise_exception: %.*s",
                             (int)(msg.n > 180 ? 180 : msg.n), msg.u.s);
        }
        case JF_STRFTIME: {
            if (n_a < 1 || a[0].kind != JV_STR)
                return jerr(c, VELA_EINVAL, "strftime_now() takes a format string");
            char fmt[256], buf[512];
            if (a[0].n >= sizeof fmt)
                return jerr(c, VELA_ELIMIT, "strftime_now(): format too long");
            memcpy(fmt, a[0].u.s, a[0].n);
            fmt[a[0].n] = '\0';
            time_t now = time(NULL);
            struct tm tm;
            localtime_r(&now, &tm);
            size_t n = strftime(buf, sizeof buf, fmt, &tm);
            char *d = jpool_strdup(c->pool, buf, n);
            if (!d) return nomem(c);
            *out = jv_str(d, n);
            return 0;
        }
        case JF_RANGE: {
            int64_t v[3] = {0, 0, 1};
            if (n_a < 1 || n_a > 3) return jerr(c, VELA_EINVAL, "range() takes 1 to 3 arguments");
            for (size_t i = 0; rc == 0 && i < n_a; i++)
                rc = jb_want_int(c, "range", a[i], &v[n_a == 1 ? 1 : i]);
            if (rc) return rc;
            if (v[2] == 0) return jerr(c, VELA_EINVAL, "range() step must not be zero");
            double n = ceil(((double)v[1] - (double)v[0]) / (double)v[2]);
            if (n > VELA_TPL_MAX_RANGE)
                return jerr(c, VELA_ELIMIT, "range() longer than %d", VELA_TPL_MAX_RANGE);
            rc = jv_new_list(c, n > 0 ? (size_t)n : 0, out);
            for (int64_t i = 0; rc == 0 && i < (int64_t)n; i++)
                rc = jv_list_push(c, out->u.l, jv_int(v[0] + i * v[2]));
            return rc;
        }
    }
    return jerr(c, VELA_EINTERNAL, "unknown function");
}

int jcall_value(struct jctx *c, struct jval f, const struct jval *a, size_t n_a,
                const struct jstr *kn, const struct jval *kv, size_t n_kw, struct jval *out) {
    switch (f.kind) {
        case JV_MACRO:
            return jcall_macro(c, f.u.m, a, n_a, kn, kv, n_kw, out);
        case JV_FUNC:
            return call_func(c, (enum jfunc)f.u.i, a, n_a, kn, kv, n_kw, out);
        case JV_METHOD:
            if (f.u.mt->self.kind == JV_DICT)
                return jb_dict_method(c, f.u.mt->name, f.u.mt->self.u.d, a, n_a, kn, kv, n_kw, out);
            return call_str_method(c, f.u.mt->name, f.u.mt->self, a, n_a, kn, kv, n_kw, out);
        case JV_UNDEF:
            return jerr_undef(c, f);
        default:
            return jerr(c, VELA_EINVAL, "'%s' object is not callable", jv_type_name(f));
    }
}
