/* jinja_eval: walks the AST for one render: scopes, statements, operators.
 *
 * Scoping follows jinja2: a {% for %} iteration gets a fresh scope whose lookups fall through
 * to the enclosing one, so {% set %} inside a loop is gone after the iteration (namespaces
 * carry values out); {% if %} opens no scope; a macro call sees its arguments and the
 * template's top-level names.
 * Operators follow Python: int arithmetic (overflow is an error instead of a bignum), true
 * division, floor division and modulo with the divisor's sign, str/list concatenation and
 * repetition, chained comparisons. An undefined value prints as "", is falsy, iterates as
 * empty, and fails in arithmetic or attribute access, as jinja2's default Undefined does.
 *
 * Invariants:
 *  1. Recursion is bounded: AST depth by the parser, macro calls by VELA_TPL_MAX_CALL_DEPTH.
 *  2. Every loop iteration counts against VELA_TPL_MAX_LOOP_ITERS.
 *  3. Statement results: 0, FLOW_BREAK, FLOW_CONTINUE, or a negative error code.
 * One render per jctx; the thread that calls jinja_render. */
#include "tokenizer/jinja_internal.h"

#include "util/limits.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { FLOW_BREAK = 1, FLOW_CONTINUE = 2 };

struct jvar {
    const char *s;
    size_t n;
    struct jval v;
};

struct jframe {
    struct jframe *parent;
    struct jvar *vars;
    size_t n, cap;
};

static int exec_body(struct jctx *c, struct jnode *const *kids, size_t n);

/* ---------------------------------------------------------------- scopes */

static struct jval *frame_find(struct jframe *f, const char *s, size_t n) {
    for (size_t i = 0; i < f->n; i++)
        if (f->vars[i].n == n && memcmp(f->vars[i].s, s, n) == 0) return &f->vars[i].v;
    return NULL;
}

static int frame_set(struct jctx *c, struct jframe *f, const char *s, size_t n, struct jval v) {
    struct jval *slot = frame_find(f, s, n);
    if (slot) {
        *slot = v;
        return 0;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct jvar *vars = jpool_alloc(c->pool, cap * sizeof *vars);
        if (!vars) return jerr(c, VELA_ELIMIT, "render memory exhausted");
        if (f->n) memcpy(vars, f->vars, f->n * sizeof *vars);
        f->vars = vars;
        f->cap = cap;
    }
    f->vars[f->n].s = s;
    f->vars[f->n].n = n;
    f->vars[f->n].v = v;
    f->n++;
    return 0;
}

int jctx_set_global(struct jctx *c, const char *name, struct jval v) {
    return frame_set(c, c->root, name, strlen(name), v);
}

static const struct {
    const char *name;
    enum jfunc f;
} BUILTIN_FUNCS[] = {{"namespace", JF_NAMESPACE},
                     {"raise_exception", JF_RAISE},
                     {"strftime_now", JF_STRFTIME},
                     {"range", JF_RANGE},
                     {"dict", JF_DICT}};

static struct jval lookup(struct jctx *c, const char *s, size_t n) {
    for (struct jframe *f = c->top; f; f = f->parent) {
        struct jval *v = frame_find(f, s, n);
        if (v) return *v;
    }
    for (size_t k = 0; k < sizeof BUILTIN_FUNCS / sizeof BUILTIN_FUNCS[0]; k++)
        if (strlen(BUILTIN_FUNCS[k].name) == n && memcmp(BUILTIN_FUNCS[k].name, s, n) == 0) {
            struct jval v = {.kind = JV_FUNC};
            v.u.i = BUILTIN_FUNCS[k].f;
            return v;
        }
    struct jval u = {.kind = JV_UNDEF};
    u.u.s = s;
    u.n = n;
    return u;
}

int jerr_undef(struct jctx *c, struct jval u) {
    if (u.u.s && u.n)
        return jerr(c, VELA_EINVAL, "'%.*s' is undefined", (int)(u.n > 60 ? 60 : u.n), u.u.s);
    return jerr(c, VELA_EINVAL, "value is undefined");
}

/* ---------------------------------------------------------------- operators */

static bool is_int(struct jval v) {
    return v.kind == JV_INT || v.kind == JV_BOOL;
}
static int64_t as_int(struct jval v) {
    return v.kind == JV_INT ? v.u.i : (int64_t)v.u.b;
}
static bool is_num(struct jval v) {
    return is_int(v) || v.kind == JV_FLOAT;
}
static double as_f(struct jval v) {
    return v.kind == JV_FLOAT ? v.u.f : (double)as_int(v);
}

static int type_error(struct jctx *c, const char *op, struct jval a, struct jval b) {
    if (a.kind == JV_UNDEF) return jerr_undef(c, a);
    if (b.kind == JV_UNDEF) return jerr_undef(c, b);
    return jerr(c, VELA_EINVAL, "unsupported operand types for %s: '%s' and '%s'", op,
                jv_type_name(a), jv_type_name(b));
}

static int concat_str(struct jctx *c, struct jval a, struct jval b, struct jval *out) {
    if (a.n > VELA_TPL_MAX_STRING_BYTES - b.n)
        return jerr(c, VELA_ELIMIT, "string exceeds %u bytes", (unsigned)VELA_TPL_MAX_STRING_BYTES);
    char *s = jpool_alloc(c->pool, a.n + b.n + 1);
    if (!s) return jerr(c, VELA_ELIMIT, "render memory exhausted");
    if (a.n) memcpy(s, a.u.s, a.n);
    if (b.n) memcpy(s + a.n, b.u.s, b.n);
    *out = jv_str(s, a.n + b.n);
    return 0;
}

static int repeat(struct jctx *c, struct jval seq, int64_t k, struct jval *out) {
    if (k < 0) k = 0;
    size_t n = seq.kind == JV_STR ? seq.n : seq.u.l->n;
    if (n && (uint64_t)k > VELA_TPL_MAX_STRING_BYTES / n)
        return jerr(c, VELA_ELIMIT, "repetition exceeds %u items",
                    (unsigned)VELA_TPL_MAX_STRING_BYTES);
    if (seq.kind == JV_STR) {
        char *s = jpool_alloc(c->pool, n * (size_t)k + 1);
        if (!s) return jerr(c, VELA_ELIMIT, "render memory exhausted");
        for (int64_t i = 0; i < k; i++) memcpy(s + (size_t)i * n, seq.u.s, n);
        *out = jv_str(s, n * (size_t)k);
        return 0;
    }
    int rc = jv_new_list(c, n * (size_t)k, out);
    for (int64_t i = 0; rc == 0 && i < k; i++)
        for (size_t j = 0; rc == 0 && j < n; j++) rc = jv_list_push(c, out->u.l, seq.u.l->items[j]);
    return rc;
}

static int arith(struct jctx *c, int op, struct jval a, struct jval b, struct jval *out) {
    static const char *names[] = {"", "+", "-", "*", "/", "//", "%", "**", "~"};
    if (op == JOP_CONCAT) {
        struct jval sa, sb;
        int rc = jv_to_str(c, a, &sa);
        if (rc == 0) rc = jv_to_str(c, b, &sb);
        return rc ? rc : concat_str(c, sa, sb, out);
    }
    if (is_int(a) && is_int(b) && op != JOP_DIV) {
        int64_t x = as_int(a), y = as_int(b), r = 0;
        bool ovf = false;
        switch (op) {
            case JOP_ADD:
                ovf = __builtin_add_overflow(x, y, &r);
                break;
            case JOP_SUB:
                ovf = __builtin_sub_overflow(x, y, &r);
                break;
            case JOP_MUL:
                ovf = __builtin_mul_overflow(x, y, &r);
                break;
            case JOP_FLOORDIV:
            case JOP_MOD:
                if (y == 0) return jerr(c, VELA_EINVAL, "integer division or modulo by zero");
                if (x == INT64_MIN && y == -1) {
                    ovf = op == JOP_FLOORDIV;
                    r = 0;
                    break;
                }
                r = op == JOP_FLOORDIV ? x / y : x % y;
                if (op == JOP_FLOORDIV && (x % y != 0) && ((x < 0) != (y < 0))) r--;
                if (op == JOP_MOD && r != 0 && ((r < 0) != (y < 0))) r += y;
                break;
            case JOP_POW:
                if (y < 0) {
                    *out = jv_float(pow((double)x, (double)y));
                    return 0;
                }
                r = 1;
                for (int64_t i = 0; i < y && !ovf; i++) {
                    ovf = __builtin_mul_overflow(r, x, &r);
                    if (r == 0 || r == 1) break;
                }
                if (!ovf && x == -1) r = (y % 2) ? -1 : 1;
                break;
        }
        if (ovf) return jerr(c, VELA_ELIMIT, "integer overflow in %s", names[op]);
        *out = jv_int(r);
        return 0;
    }
    if (is_num(a) && is_num(b)) {
        double x = as_f(a), y = as_f(b), r = 0;
        switch (op) {
            case JOP_ADD:
                r = x + y;
                break;
            case JOP_SUB:
                r = x - y;
                break;
            case JOP_MUL:
                r = x * y;
                break;
            case JOP_DIV:
            case JOP_FLOORDIV:
            case JOP_MOD:
                if (y == 0) return jerr(c, VELA_EINVAL, "division by zero");
                if (op == JOP_DIV)
                    r = x / y;
                else if (op == JOP_FLOORDIV)
                    r = floor(x / y);
                else {
                    r = fmod(x, y);
                    if (r != 0 && ((r < 0) != (y < 0))) r += y;
                }
                break;
            case JOP_POW:
                r = pow(x, y);
                break;
        }
        *out = jv_float(r);
        return 0;
    }
    if (op == JOP_ADD && a.kind == JV_STR && b.kind == JV_STR) return concat_str(c, a, b, out);
    if (op == JOP_ADD && a.kind == JV_LIST && b.kind == JV_LIST) {
        int rc = jv_new_list(c, a.u.l->n + b.u.l->n, out);
        for (size_t i = 0; rc == 0 && i < a.u.l->n; i++)
            rc = jv_list_push(c, out->u.l, a.u.l->items[i]);
        for (size_t i = 0; rc == 0 && i < b.u.l->n; i++)
            rc = jv_list_push(c, out->u.l, b.u.l->items[i]);
        return rc;
    }
    if (op == JOP_MUL && (a.kind == JV_STR || a.kind == JV_LIST) && is_int(b))
        return repeat(c, a, as_int(b), out);
    if (op == JOP_MUL && (b.kind == JV_STR || b.kind == JV_LIST) && is_int(a))
        return repeat(c, b, as_int(a), out);
    return type_error(c, names[op], a, b);
}

/* Python ordering for numbers, strings (code point order = UTF-8 byte order) and lists. */
static int order(struct jctx *c, struct jval a, struct jval b, int *out) {
    if (is_num(a) && is_num(b)) {
        if (is_int(a) && is_int(b))
            *out = (as_int(a) > as_int(b)) - (as_int(a) < as_int(b));
        else
            *out = (as_f(a) > as_f(b)) - (as_f(a) < as_f(b));
        return 0;
    }
    if (a.kind == JV_STR && b.kind == JV_STR) {
        size_t n = a.n < b.n ? a.n : b.n;
        int r = n ? memcmp(a.u.s, b.u.s, n) : 0;
        *out = r ? (r > 0) - (r < 0) : (a.n > b.n) - (a.n < b.n);
        return 0;
    }
    if (a.kind == JV_LIST && b.kind == JV_LIST) {
        for (size_t i = 0; i < a.u.l->n && i < b.u.l->n; i++) {
            if (jv_equal(a.u.l->items[i], b.u.l->items[i])) continue;
            return order(c, a.u.l->items[i], b.u.l->items[i], out);
        }
        *out = (a.u.l->n > b.u.l->n) - (a.u.l->n < b.u.l->n);
        return 0;
    }
    return type_error(c, "comparison", a, b);
}

int jv_contains(struct jctx *c, struct jval hay, struct jval needle, bool *out) {
    *out = false;
    switch (hay.kind) {
        case JV_STR:
            if (needle.kind != JV_STR)
                return jerr(c, VELA_EINVAL, "'in <string>' requires string as left operand");
            if (needle.n == 0) *out = true;
            for (size_t i = 0; !*out && needle.n <= hay.n && i <= hay.n - needle.n; i++)
                *out = memcmp(hay.u.s + i, needle.u.s, needle.n) == 0;
            return 0;
        case JV_LIST:
            for (size_t i = 0; !*out && i < hay.u.l->n; i++)
                *out = jv_equal(hay.u.l->items[i], needle);
            return 0;
        case JV_DICT:
        case JV_NS:
            if (needle.kind == JV_LIST || needle.kind == JV_DICT)
                return jerr(c, VELA_EINVAL, "unhashable type: '%s'", jv_type_name(needle));
            *out = jv_dict_get(hay.u.d, needle) != NULL;
            return 0;
        case JV_UNDEF:
            return 0;
        default:
            return jerr(c, VELA_EINVAL, "argument of type '%s' is not iterable", jv_type_name(hay));
    }
}

static int compare(struct jctx *c, const struct jnode *x, struct jval *out) {
    struct jval a;
    int rc = jeval(c, x->a, &a);
    for (size_t k = 0; rc == 0 && k < x->n_kids; k++) {
        struct jval b;
        rc = jeval(c, x->kids[k], &b);
        if (rc) return rc;
        const struct jstr *op = &x->names[k];
        bool r = false;
        int ord;
        c->at = x;
        if (op->n == 2 && op->s[0] == '=')
            r = jv_equal(a, b);
        else if (op->n == 2 && op->s[0] == '!')
            r = !jv_equal(a, b);
        else if (op->n == 2 && op->s[0] == 'i')
            rc = jv_contains(c, b, a, &r);
        else if (op->n == 5) {
            rc = jv_contains(c, b, a, &r);
            r = !r;
        } else {
            rc = order(c, a, b, &ord);
            if (op->s[0] == '<')
                r = op->n == 2 ? ord <= 0 : ord < 0;
            else
                r = op->n == 2 ? ord >= 0 : ord > 0;
        }
        if (rc) return rc;
        *out = jv_bool(r);
        if (!r) return 0;
        a = b;
    }
    return rc;
}

/* ---------------------------------------------------------------- expressions */

/* Positional and keyword arguments of a call or filter node, evaluated. */
struct args {
    struct jval pos[16], kw[16];
    size_t n_pos, n_kw;
};

static int eval_args(struct jctx *c, const struct jnode *x, struct args *a) {
    if (x->n_kids > 16 || x->n_kids2 > 16) return jerr(c, VELA_ELIMIT, "more than 16 arguments");
    a->n_pos = x->n_kids;
    a->n_kw = x->n_kids2;
    for (size_t i = 0; i < x->n_kids; i++) {
        int rc = jeval(c, x->kids[i], &a->pos[i]);
        if (rc) return rc;
    }
    for (size_t i = 0; i < x->n_kids2; i++) {
        int rc = jeval(c, x->kids2[i], &a->kw[i]);
        if (rc) return rc;
    }
    return 0;
}

static int slice(struct jctx *c, const struct jnode *x, struct jval obj, struct jval *out) {
    struct jval parts[3] = {jv_none(), jv_none(), jv_none()};
    const struct jnode *pn[3] = {x->b, x->c, x->d};
    for (int k = 0; k < 3; k++) {
        if (!pn[k]) continue;
        int rc = jeval(c, pn[k], &parts[k]);
        if (rc) return rc;
        if (parts[k].kind != JV_NONE && !is_int(parts[k]))
            return jerr(c, VELA_EINVAL, "slice indices must be integers or None");
    }
    c->at = x;
    if (obj.kind == JV_UNDEF) return jerr_undef(c, obj);
    if (obj.kind != JV_STR && obj.kind != JV_LIST)
        return jerr(c, VELA_EINVAL, "'%s' object is not subscriptable", jv_type_name(obj));
    int64_t n = (int64_t)(obj.kind == JV_STR ? ju8_len(obj.u.s, obj.n) : obj.u.l->n);
    int64_t step = parts[2].kind == JV_NONE ? 1 : as_int(parts[2]);
    if (step == 0) return jerr(c, VELA_EINVAL, "slice step cannot be zero");
    int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? n : n - 1;
    int64_t start = step > 0 ? 0 : n - 1, stop = step > 0 ? n : -1;
    if (parts[0].kind != JV_NONE) {
        start = as_int(parts[0]);
        if (start < 0) start += n;
        start = start < lo ? lo : start > hi ? hi : start;
    }
    if (parts[1].kind != JV_NONE) {
        stop = as_int(parts[1]);
        if (stop < 0) stop += n;
        stop = stop < lo ? lo : stop > hi ? hi : stop;
    }
    if (obj.kind == JV_LIST) {
        int rc = jv_new_list(c, 0, out);
        if (rc == 0) out->u.l->tuple = obj.u.l->tuple;
        for (int64_t i = start; rc == 0 && (step > 0 ? i < stop : i > stop); i += step)
            rc = jv_list_push(c, out->u.l, obj.u.l->items[i]);
        return rc;
    }
    if (step == 1) {
        size_t b0 = ju8_offset(obj.u.s, obj.n, (size_t)start);
        size_t b1 = stop > start ? ju8_offset(obj.u.s, obj.n, (size_t)stop) : b0;
        *out = jv_str(obj.u.s + b0, b1 - b0);
        return 0;
    }
    /* general step over code points: collect offsets first */
    size_t *offs = malloc(((size_t)n + 1) * sizeof *offs);
    char *s = jpool_alloc(c->pool, obj.n + 1);
    if (!offs || !s) {
        free(offs);
        return jerr(c, VELA_ELIMIT, "render memory exhausted");
    }
    size_t i = 0, k = 0, o = 0;
    while (i < obj.n) {
        offs[k++] = i;
        ju8_next(obj.u.s, obj.n, &i);
    }
    offs[k] = obj.n;
    for (int64_t j = start; step > 0 ? j < stop : j > stop; j += step) {
        size_t len = offs[j + 1] - offs[j];
        memcpy(s + o, obj.u.s + offs[j], len);
        o += len;
    }
    free(offs);
    *out = jv_str(s, o);
    return 0;
}

static int eval_filter(struct jctx *c, const struct jnode *x, struct jval *out) {
    struct jval v;
    int rc;
    if (x->a->kind == JN_NAME && x->a->s == NULL) {
        v = c->block_val;
        rc = 0;
    } else {
        rc = jeval(c, x->a, &v);
    }
    struct args a;
    if (rc == 0) rc = eval_args(c, x, &a);
    if (rc) return rc;
    c->at = x;
    return jfilter_apply(c, x, v, a.pos, a.n_pos, x->names, a.kw, a.n_kw, out);
}

static int eval_test(struct jctx *c, const struct jnode *x, struct jval *out) {
    struct jval v;
    struct args a;
    int rc = jeval(c, x->a, &v);
    if (rc == 0) rc = eval_args(c, x, &a);
    if (rc) return rc;
    c->at = x;
    bool r;
    rc = jtest_apply(c, x->s, x->n, v, a.pos, a.n_pos, &r);
    if (rc == 0) *out = jv_bool(x->i ? !r : r);
    return rc;
}

static int eval_literal(struct jctx *c, const struct jnode *x, struct jval *out) {
    int rc;
    if (x->kind == JN_DICT) {
        rc = jv_new_dict(c, x->n_kids, out);
        for (size_t i = 0; rc == 0 && i < x->n_kids; i++) {
            struct jval k, v;
            rc = jeval(c, x->kids[i], &k);
            if (rc == 0) rc = jeval(c, x->kids2[i], &v);
            if (rc == 0 && (k.kind == JV_LIST || k.kind == JV_DICT))
                rc = jerr(c, VELA_EINVAL, "unhashable type: '%s'", jv_type_name(k));
            if (rc == 0) rc = jv_dict_set(c, out->u.d, k, v);
        }
        return rc;
    }
    rc = jv_new_list(c, x->n_kids, out);
    if (rc == 0) out->u.l->tuple = x->kind == JN_TUPLE;
    for (size_t i = 0; rc == 0 && i < x->n_kids; i++) {
        struct jval v;
        rc = jeval(c, x->kids[i], &v);
        if (rc == 0) rc = jv_list_push(c, out->u.l, v);
    }
    return rc;
}

int jeval(struct jctx *c, const struct jnode *x, struct jval *out) {
    struct jval a, b;
    int rc = 0;
    c->at = x;
    switch (x->kind) {
        case JN_STR:
            *out = jv_str(x->s, x->n);
            return 0;
        case JN_INT:
            *out = jv_int(x->i);
            return 0;
        case JN_FLOAT:
            *out = jv_float(x->f);
            return 0;
        case JN_BOOL:
            *out = jv_bool(x->i != 0);
            return 0;
        case JN_NONE:
            *out = jv_none();
            return 0;
        case JN_NAME:
            if (!x->s) {
                *out = c->block_val;
                return 0;
            }
            *out = lookup(c, x->s, x->n);
            return 0;
        case JN_LIST:
        case JN_TUPLE:
        case JN_DICT:
            return eval_literal(c, x, out);
        case JN_GETATTR:
            rc = jeval(c, x->a, &a);
            c->at = x;
            if (rc == 0 && a.kind == JV_UNDEF) return jerr_undef(c, a);
            return rc ? rc : jget_attr(c, a, x->s, x->n, out);
        case JN_GETITEM:
            rc = jeval(c, x->a, &a);
            if (rc == 0) rc = jeval(c, x->b, &b);
            c->at = x;
            if (rc == 0 && a.kind == JV_UNDEF) return jerr_undef(c, a);
            return rc ? rc : jget_item(c, a, b, out);
        case JN_SLICE:
            rc = jeval(c, x->a, &a);
            return rc ? rc : slice(c, x, a, out);
        case JN_CALL: {
            struct args args;
            rc = jeval(c, x->a, &a);
            if (rc == 0) rc = eval_args(c, x, &args);
            c->at = x;
            return rc ? rc
                      : jcall_value(c, a, args.pos, args.n_pos, x->names, args.kw, args.n_kw, out);
        }
        case JN_FILTER:
            return eval_filter(c, x, out);
        case JN_TEST:
            return eval_test(c, x, out);
        case JN_BINOP:
            rc = jeval(c, x->a, &a);
            if (rc == 0) rc = jeval(c, x->b, &b);
            c->at = x;
            return rc ? rc : arith(c, (int)x->i, a, b, out);
        case JN_NEG:
        case JN_POS:
            rc = jeval(c, x->a, &a);
            c->at = x;
            if (rc) return rc;
            if (x->kind == JN_POS && is_num(a))
                *out = a.kind == JV_BOOL ? jv_int(a.u.b) : a;
            else if (is_int(a) && as_int(a) != INT64_MIN)
                *out = jv_int(-as_int(a));
            else if (a.kind == JV_FLOAT)
                *out = jv_float(-a.u.f);
            else
                return type_error(c, "unary -", a, jv_int(0));
            return 0;
        case JN_NOT:
            rc = jeval(c, x->a, &a);
            if (rc == 0) *out = jv_bool(!jv_truthy(a));
            return rc;
        case JN_AND:
        case JN_OR:
            rc = jeval(c, x->a, &a);
            if (rc) return rc;
            if (jv_truthy(a) == (x->kind == JN_OR)) {
                *out = a;
                return 0;
            }
            return jeval(c, x->b, out);
        case JN_CMP:
            return compare(c, x, out);
        case JN_COND:
            rc = jeval(c, x->a, &a);
            if (rc) return rc;
            if (jv_truthy(a)) return jeval(c, x->b, out);
            if (x->c) return jeval(c, x->c, out);
            *out = jv_undef(NULL);
            return 0;
        default:
            return jerr(c, VELA_EINTERNAL, "statement used as expression");
    }
}

/* ---------------------------------------------------------------- statements */

/* Runs kids with output going to a fresh buffer; *out is the text as a pool string. */
static int capture(struct jctx *c, struct jnode *const *kids, size_t n, struct jval *out) {
    struct jbuf buf = {0}, *saved = c->out;
    c->out = &buf;
    int rc = exec_body(c, kids, n);
    c->out = saved;
    if (rc > 0) rc = jerr(c, VELA_EFORMAT, "break or continue outside a loop");
    if (rc == 0) {
        char *s = jpool_strdup(c->pool, buf.p ? buf.p : "", buf.n);
        if (!s)
            rc = jerr(c, VELA_ELIMIT, "render memory exhausted");
        else
            *out = jv_str(s, buf.n);
    }
    free(buf.p);
    return rc;
}

/* Binds loop or assignment targets: one name takes the value, several unpack a sequence. */
static int bind(struct jctx *c, struct jframe *f, const struct jnode *x, struct jval v) {
    if (x->n_names == 1) return frame_set(c, f, x->names[0].s, x->names[0].n, v);
    if (v.kind != JV_LIST || v.u.l->n != x->n_names)
        return jerr(c, VELA_EINVAL, "cannot unpack %s into %zu names", jv_type_name(v), x->n_names);
    for (size_t i = 0; i < x->n_names; i++) {
        int rc = frame_set(c, f, x->names[i].s, x->names[i].n, v.u.l->items[i]);
        if (rc) return rc;
    }
    return 0;
}

/* The items a for loop walks: list items, dict keys, string characters; undefined is empty. */
int jv_iter_items(struct jctx *c, struct jval v, struct jval *out) {
    switch (v.kind) {
        case JV_LIST:
            *out = v;
            return 0;
        case JV_UNDEF:
            return jv_new_list(c, 0, out);
        case JV_DICT: {
            int rc = jv_new_list(c, v.u.d->n, out);
            for (size_t i = 0; rc == 0 && i < v.u.d->n; i++)
                rc = jv_list_push(c, out->u.l, v.u.d->keys[i]);
            return rc;
        }
        case JV_STR: {
            int rc = jv_new_list(c, v.n, out);
            size_t i = 0;
            while (rc == 0 && i < v.n) {
                size_t s = i;
                ju8_next(v.u.s, v.n, &i);
                rc = jv_list_push(c, out->u.l, jv_str(v.u.s + s, i - s));
            }
            return rc;
        }
        default:
            return jerr(c, VELA_EINVAL, "'%s' object is not iterable", jv_type_name(v));
    }
}

static int count_iter(struct jctx *c) {
    if (++c->n_iters > VELA_TPL_MAX_LOOP_ITERS)
        return jerr(c, VELA_ELIMIT, "more than %u loop iterations",
                    (unsigned)VELA_TPL_MAX_LOOP_ITERS);
    return 0;
}

static int set_loop_vars(struct jctx *c, struct jdict *d, size_t i, const struct jlist *items) {
    size_t n = items->n;
    struct jval vals[] = {jv_int((int64_t)i + 1),
                          jv_int((int64_t)i),
                          jv_int((int64_t)(n - i)),
                          jv_int((int64_t)(n - i - 1)),
                          jv_bool(i == 0),
                          jv_bool(i + 1 == n),
                          jv_int((int64_t)n),
                          i > 0 ? items->items[i - 1] : jv_undef(NULL),
                          i + 1 < n ? items->items[i + 1] : jv_undef(NULL),
                          jv_int(1),
                          jv_int(0)};
    static const char *keys[] = {"index",  "index0",   "revindex", "revindex0", "first", "last",
                                 "length", "previtem", "nextitem", "depth",     "depth0"};
    size_t n_keys = sizeof keys / sizeof keys[0];
    if (d->n == n_keys) { /* later iterations: same keys in the same slots, values replaced */
        for (size_t k = 0; k < n_keys; k++) d->vals[k] = vals[k];
        return 0;
    }
    for (size_t k = 0; k < n_keys; k++) {
        int rc = jv_dict_set(c, d, jv_str(keys[k], strlen(keys[k])), vals[k]);
        if (rc) return rc;
    }
    return 0;
}

static int exec_for(struct jctx *c, const struct jnode *x) {
    struct jval it, items;
    int rc = jeval(c, x->a, &it);
    c->at = x;
    if (rc == 0) rc = jv_iter_items(c, it, &items);
    if (rc) return rc;
    struct jframe f = {.parent = c->top};
    c->top = &f;
    if (x->b) { /* "for x in xs if cond": filter first, so loop.length counts what remains */
        struct jval kept;
        rc = jv_new_list(c, 0, &kept);
        for (size_t i = 0; rc == 0 && i < items.u.l->n; i++) {
            struct jval ok;
            f.n = 0;
            rc = count_iter(c);
            if (rc == 0) rc = bind(c, &f, x, items.u.l->items[i]);
            if (rc == 0) rc = jeval(c, x->b, &ok);
            if (rc == 0 && jv_truthy(ok)) rc = jv_list_push(c, kept.u.l, items.u.l->items[i]);
        }
        items = kept;
    }
    struct jval loop;
    if (rc == 0) rc = jv_new_dict(c, 12, &loop);
    const struct jlist *l = rc == 0 ? items.u.l : NULL;
    /* previtem/nextitem are items of l: the loop object nests no deeper than l */
    if (rc == 0 && l->depth > loop.u.d->depth) loop.u.d->depth = l->depth;
    for (size_t i = 0; rc == 0 && i < l->n; i++) {
        f.n = 0;
        rc = count_iter(c);
        if (rc == 0) rc = set_loop_vars(c, loop.u.d, i, l);
        if (rc == 0) rc = frame_set(c, &f, "loop", 4, loop);
        if (rc == 0) rc = bind(c, &f, x, l->items[i]);
        if (rc == 0) rc = exec_body(c, x->kids, x->n_kids);
        if (rc == FLOW_CONTINUE) rc = 0;
        if (rc == FLOW_BREAK) {
            rc = 0;
            break;
        }
    }
    c->top = f.parent;
    if (rc == 0 && l->n == 0) rc = exec_body(c, x->kids2, x->n_kids2);
    return rc;
}

static int exec_set(struct jctx *c, const struct jnode *x) {
    struct jval v;
    int rc;
    if (x->i) { /* block set */
        rc = capture(c, x->kids, x->n_kids, &v);
        if (rc == 0 && x->b) {
            struct jval saved = c->block_val;
            c->block_val = v;
            rc = jeval(c, x->b, &v);
            c->block_val = saved;
        }
    } else {
        rc = jeval(c, x->a, &v);
    }
    c->at = x;
    if (rc) return rc;
    if (!x->c) return bind(c, c->top, x, v);
    struct jval ns = lookup(c, x->c->s, x->c->n);
    if (ns.kind != JV_NS)
        return jerr(c, VELA_EINVAL, "cannot assign attribute on non-namespace object");
    if (x->n > 0 && x->s[0] == '_')
        return jerr(c, VELA_EINVAL, "namespace attributes cannot start with '_'");
    return jv_dict_set(c, ns.u.d, jv_str(x->s, x->n), v);
}

int jcall_macro(struct jctx *c, const struct jnode *m, const struct jval *args, size_t n_args,
                const struct jstr *kw_names, const struct jval *kw_vals, size_t n_kw,
                struct jval *out) {
    if (n_args > m->n_names)
        return jerr(c, VELA_EINVAL, "macro '%.*s' takes not more than %zu argument(s)",
                    (int)(m->n > 60 ? 60 : m->n), m->s, m->n_names);
    if (c->call_depth >= VELA_TPL_MAX_CALL_DEPTH)
        return jerr(c, VELA_ELIMIT, "macro calls nest deeper than %d", VELA_TPL_MAX_CALL_DEPTH);
    struct jframe f = {.parent = c->root};
    struct jframe *saved = c->top;
    c->top = &f;
    c->call_depth++;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < m->n_names; i++) {
        struct jval v = jv_undef(NULL);
        bool have = i < n_args;
        if (have) v = args[i];
        for (size_t k = 0; !have && k < n_kw; k++)
            if (kw_names[k].n == m->names[i].n &&
                memcmp(kw_names[k].s, m->names[i].s, m->names[i].n) == 0) {
                v = kw_vals[k];
                have = true;
            }
        if (!have && m->kids2[i]) rc = jeval(c, m->kids2[i], &v);
        if (!have && !m->kids2[i]) {
            v.u.s = m->names[i].s;
            v.n = m->names[i].n;
        }
        if (rc == 0) rc = frame_set(c, &f, m->names[i].s, m->names[i].n, v);
    }
    for (size_t k = 0; rc == 0 && k < n_kw; k++) {
        bool known = false;
        for (size_t i = 0; i < m->n_names; i++)
            known |= kw_names[k].n == m->names[i].n &&
                     memcmp(kw_names[k].s, m->names[i].s, m->names[i].n) == 0;
        if (!known)
            rc = jerr(c, VELA_EINVAL, "macro '%.*s' has no argument '%.*s'",
                      (int)(m->n > 60 ? 60 : m->n), m->s,
                      (int)(kw_names[k].n > 60 ? 60 : kw_names[k].n), kw_names[k].s);
    }
    if (rc == 0) rc = capture(c, m->kids, m->n_kids, out);
    c->call_depth--;
    c->top = saved;
    return rc;
}

static int exec_one(struct jctx *c, const struct jnode *x) {
    struct jval v;
    int rc;
    c->at = x;
    switch (x->kind) {
        case JS_TEXT:
            return jbuf_put(c, c->out, x->s, x->n);
        case JS_OUTPUT:
            rc = jeval(c, x->a, &v);
            c->at = x;
            return rc ? rc : jv_write_str(c, c->out, v);
        case JS_IF:
            rc = jeval(c, x->a, &v);
            if (rc) return rc;
            return jv_truthy(v) ? exec_body(c, x->kids, x->n_kids)
                                : exec_body(c, x->kids2, x->n_kids2);
        case JS_FOR:
            return exec_for(c, x);
        case JS_SET:
            return exec_set(c, x);
        case JS_MACRO:
            v.kind = JV_MACRO;
            v.n = 0;
            v.u.m = x;
            return frame_set(c, c->top, x->s, x->n, v);
        case JS_BREAK:
            return FLOW_BREAK;
        case JS_CONTINUE:
            return FLOW_CONTINUE;
        case JS_FILTER_BLOCK: {
            struct jval saved = c->block_val;
            rc = capture(c, x->kids, x->n_kids, &c->block_val);
            if (rc == 0) rc = jeval(c, x->b, &v);
            c->block_val = saved;
            return rc ? rc : jv_write_str(c, c->out, v);
        }
        case JS_WITH: {
            struct jframe f = {.parent = c->top};
            rc = 0;
            for (size_t i = 0; rc == 0 && i < x->n_kids2; i++) {
                rc = jeval(c, x->kids2[i], &v);
                if (rc == 0) rc = frame_set(c, &f, x->names[i].s, x->names[i].n, v);
            }
            c->top = &f;
            if (rc == 0) rc = exec_body(c, x->kids, x->n_kids);
            c->top = f.parent;
            return rc;
        }
        case JS_BODY:
            return exec_body(c, x->kids, x->n_kids);
        default:
            return jerr(c, VELA_EINTERNAL, "expression used as statement");
    }
}

static int exec_body(struct jctx *c, struct jnode *const *kids, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int rc = exec_one(c, kids[i]);
        if (rc) return rc;
    }
    return 0;
}

int jexec_root(struct jctx *c, const struct jnode *root) {
    int rc = exec_body(c, root->kids, root->n_kids);
    if (rc > 0) {
        c->at = NULL;
        return jerr(c, VELA_EFORMAT, "break or continue outside a loop");
    }
    return rc;
}

int jctx_new_root(struct jctx *c) {
    struct jframe *f = jpool_alloc(c->pool, sizeof *f);
    if (!f) return err_set(c->e, VELA_ENOMEM, "template: out of memory");
    c->root = c->top = f;
    return 0;
}
