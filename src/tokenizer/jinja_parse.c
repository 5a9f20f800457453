/* jinja_parse: tokens -> AST, a recursive-descent parser following jinja2.parser's grammar
 * and operator precedence (lowest first):
 *   cond-expr (a if b else c) < or < and < not < comparisons/in/not in < + - < ~ < * / // %
 *   < ** < unary -/+ < postfix (.attr [item] (call)) and filters/tests (| name, is name).
 * Statements: if/elif/else, for (tuple targets, inline if filter, else), set (name, tuple,
 * namespace attribute, block form), macro, break/continue, filter blocks, with, raw (in the
 * lexer), generation. Anything else is a load-time error with line and column.
 * Invariants: every recursive step passes through enter(), so nesting never exceeds
 * VELA_TPL_MAX_NEST; all nodes live in the template's pool. */
#include "tokenizer/jinja_internal.h"

#include "util/limits.h"

#include <stdio.h>
#include <string.h>

struct parser {
    struct jpool *pool;
    const struct jtok *t;
    size_t n, i;
    int depth;
    struct err *e;
};

#define NOMEM(P) err_set((P)->e, VELA_ELIMIT, "template: too large to compile")

static const struct jtok *cur(const struct parser *P) {
    return &P->t[P->i];
}

static int perr(struct parser *P, const struct jtok *t, const char *fmt, const char *arg) {
    char msg[160];
    snprintf(msg, sizeof msg, fmt, arg);
    return err_set(P->e, VELA_EFORMAT, "template line %d col %d: %s", t->line, t->col, msg);
}

static bool is_op(const struct jtok *t, const char *op) {
    return t->kind == JT_OP && t->n == strlen(op) && memcmp(t->s, op, t->n) == 0;
}

static bool is_name(const struct jtok *t, const char *name) {
    return t->kind == JT_NAME && t->n == strlen(name) && memcmp(t->s, name, t->n) == 0;
}

static int expect_op(struct parser *P, const char *op) {
    if (!is_op(cur(P), op)) return perr(P, cur(P), "expected '%s'", op);
    P->i++;
    return 0;
}

static int enter(struct parser *P) {
    if (++P->depth > VELA_TPL_MAX_NEST) {
        char lim[16];
        snprintf(lim, sizeof lim, "%d", VELA_TPL_MAX_NEST);
        return perr(P, cur(P), "blocks and expressions nest deeper than %s", lim);
    }
    return 0;
}

static struct jnode *node(struct parser *P, enum jn_kind kind, const struct jtok *at) {
    struct jnode *x = jpool_alloc(P->pool, sizeof *x);
    if (!x) return NULL;
    x->kind = kind;
    x->line = at->line;
    x->col = at->col;
    return x;
}

/* Growable arrays built in the pool (doubling; the old copy is left behind). */
static int push_node(struct parser *P, struct jnode ***arr, size_t *n, size_t *cap,
                     struct jnode *x) {
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        struct jnode **a = jpool_alloc(P->pool, ncap * sizeof *a);
        if (!a) return NOMEM(P);
        if (*n) memcpy(a, *arr, *n * sizeof *a);
        *arr = a;
        *cap = ncap;
    }
    (*arr)[(*n)++] = x;
    return 0;
}

static int push_name(struct parser *P, struct jstr **arr, size_t *n, size_t *cap, const char *s,
                     size_t len) {
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        struct jstr *a = jpool_alloc(P->pool, ncap * sizeof *a);
        if (!a) return NOMEM(P);
        if (*n) memcpy(a, *arr, *n * sizeof *a);
        *arr = a;
        *cap = ncap;
    }
    (*arr)[*n].s = s;
    (*arr)[*n].n = len;
    (*n)++;
    return 0;
}

static int parse_expr(struct parser *P, bool with_cond, struct jnode **out);
static int parse_unary(struct parser *P, bool with_filter, struct jnode **out);

/* Call arguments after '(' up to ')': positional into kids, keyword into names/kids2. */
static int parse_args(struct parser *P, struct jnode *x) {
    size_t cap = 0, cap2 = 0, capn = 0;
    int rc = expect_op(P, "(");
    while (rc == 0 && !is_op(cur(P), ")")) {
        if (x->n_kids + x->n_kids2 > 0) {
            rc = expect_op(P, ",");
            if (rc || is_op(cur(P), ")")) break;
        }
        struct jnode *v;
        if (cur(P)->kind == JT_NAME && is_op(&P->t[P->i + 1], "=")) {
            const struct jtok *nt = cur(P);
            P->i += 2;
            rc = parse_expr(P, true, &v);
            if (rc == 0) rc = push_name(P, &x->names, &x->n_names, &capn, nt->s, nt->n);
            if (rc == 0) rc = push_node(P, &x->kids2, &x->n_kids2, &cap2, v);
        } else {
            if (x->n_kids2 > 0) return perr(P, cur(P), "%s", "positional argument after keyword");
            rc = parse_expr(P, true, &v);
            if (rc == 0) rc = push_node(P, &x->kids, &x->n_kids, &cap, v);
        }
    }
    return rc ? rc : expect_op(P, ")");
}

/* Comma-separated expressions up to the closing bracket (already past the opener). */
static int parse_items(struct parser *P, struct jnode *x, const char *close, bool dict) {
    size_t cap = 0, cap2 = 0;
    int rc = 0;
    while (rc == 0 && !is_op(cur(P), close)) {
        if (x->n_kids > 0) {
            rc = expect_op(P, ",");
            if (rc || is_op(cur(P), close)) break;
        }
        struct jnode *k, *v;
        rc = parse_expr(P, true, &k);
        if (rc == 0) rc = push_node(P, &x->kids, &x->n_kids, &cap, k);
        if (rc == 0 && dict) {
            rc = expect_op(P, ":");
            if (rc == 0) rc = parse_expr(P, true, &v);
            if (rc == 0) rc = push_node(P, &x->kids2, &x->n_kids2, &cap2, v);
        }
    }
    return rc ? rc : expect_op(P, close);
}

static int parse_primary(struct parser *P, struct jnode **out) {
    const struct jtok *t = cur(P);
    struct jnode *x = NULL;
    int rc = 0;
    if (t->kind == JT_NAME) {
        if (is_name(t, "true") || is_name(t, "True") || is_name(t, "false") ||
            is_name(t, "False")) {
            x = node(P, JN_BOOL, t);
            if (x) x->i = t->s[0] == 't' || t->s[0] == 'T';
        } else if (is_name(t, "none") || is_name(t, "None")) {
            x = node(P, JN_NONE, t);
        } else {
            x = node(P, JN_NAME, t);
            if (x) {
                x->s = t->s;
                x->n = t->n;
            }
        }
        P->i++;
    } else if (t->kind == JT_STRING) {
        /* adjacent literals concatenate: "a" "b" */
        size_t total = 0, k = P->i;
        for (; P->t[k].kind == JT_STRING; k++) total += P->t[k].n;
        char *s = jpool_alloc(P->pool, total + 1);
        x = node(P, JN_STR, t);
        if (!s || !x) return NOMEM(P);
        size_t o = 0;
        for (; P->i < k; P->i++) {
            memcpy(s + o, P->t[P->i].s, P->t[P->i].n);
            o += P->t[P->i].n;
        }
        x->s = s;
        x->n = total;
    } else if (t->kind == JT_INT || t->kind == JT_FLOAT) {
        x = node(P, t->kind == JT_INT ? JN_INT : JN_FLOAT, t);
        if (x) {
            x->i = t->i;
            x->f = t->f;
        }
        P->i++;
    } else if (is_op(t, "(")) {
        P->i++;
        if (is_op(cur(P), ")")) {
            P->i++;
            x = node(P, JN_TUPLE, t);
        } else {
            rc = parse_expr(P, true, &x);
            if (rc == 0 && is_op(cur(P), ",")) {
                struct jnode *tup = node(P, JN_TUPLE, t);
                size_t cap = 0;
                if (!tup) return NOMEM(P);
                rc = push_node(P, &tup->kids, &tup->n_kids, &cap, x);
                while (rc == 0 && is_op(cur(P), ",")) {
                    P->i++;
                    if (is_op(cur(P), ")")) break;
                    rc = parse_expr(P, true, &x);
                    if (rc == 0) rc = push_node(P, &tup->kids, &tup->n_kids, &cap, x);
                }
                x = tup;
            }
            if (rc == 0) rc = expect_op(P, ")");
        }
    } else if (is_op(t, "[") || is_op(t, "{")) {
        bool dict = is_op(t, "{");
        P->i++;
        x = node(P, dict ? JN_DICT : JN_LIST, t);
        if (!x) return NOMEM(P);
        rc = parse_items(P, x, dict ? "}" : "]", dict);
    } else {
        return perr(P, t, "unexpected '%.40s'",
                    t->kind == JT_EOF                                  ? "end of template"
                    : t->kind == JT_BLOCK_END || t->kind == JT_VAR_END ? "end of tag"
                                                                       : "token");
    }
    if (rc) return rc;
    if (!x) return NOMEM(P);
    *out = x;
    return 0;
}

static int parse_subscript(struct parser *P, struct jnode *obj, const struct jtok *at,
                           struct jnode **out) {
    struct jnode *parts[3] = {NULL, NULL, NULL};
    int k = 0, rc = 0;
    bool slice = false;
    for (;;) {
        if (!is_op(cur(P), ":") && !is_op(cur(P), "]")) {
            rc = parse_expr(P, true, &parts[k]);
            if (rc) return rc;
        }
        if (is_op(cur(P), ":") && k < 2) {
            slice = true;
            k++;
            P->i++;
            continue;
        }
        break;
    }
    rc = expect_op(P, "]");
    if (rc) return rc;
    if (!slice && !parts[0]) return perr(P, at, "%s", "empty subscript");
    struct jnode *x = node(P, slice ? JN_SLICE : JN_GETITEM, at);
    if (!x) return NOMEM(P);
    x->a = obj;
    x->b = parts[0];
    x->c = parts[1];
    x->d = parts[2];
    *out = x;
    return 0;
}

static int parse_postfix(struct parser *P, struct jnode **x) {
    for (;;) {
        const struct jtok *t = cur(P);
        if (is_op(t, ".")) {
            P->i++;
            const struct jtok *nt = cur(P);
            struct jnode *y;
            if (nt->kind == JT_NAME) {
                y = node(P, JN_GETATTR, t);
                if (!y) return NOMEM(P);
                y->s = nt->s;
                y->n = nt->n;
            } else if (nt->kind == JT_INT) {
                struct jnode *k = node(P, JN_INT, nt);
                y = node(P, JN_GETITEM, t);
                if (!y || !k) return NOMEM(P);
                k->i = nt->i;
                y->b = k;
            } else {
                return perr(P, nt, "%s", "expected a name after '.'");
            }
            y->a = *x;
            P->i++;
            *x = y;
        } else if (is_op(t, "[")) {
            P->i++;
            int rc = parse_subscript(P, *x, t, x);
            if (rc) return rc;
        } else if (is_op(t, "(")) {
            struct jnode *y = node(P, JN_CALL, t);
            if (!y) return NOMEM(P);
            y->a = *x;
            int rc = parse_args(P, y);
            if (rc) return rc;
            *x = y;
        } else {
            return 0;
        }
    }
}

/* "| name(args)" and "is [not] name [arg | (args)]" chains. */
static int parse_filters(struct parser *P, struct jnode **x) {
    for (;;) {
        const struct jtok *t = cur(P);
        if (is_op(t, "|")) {
            P->i++;
            const struct jtok *nt = cur(P);
            if (nt->kind != JT_NAME) return perr(P, nt, "%s", "expected a filter name");
            if (!jfilter_known(nt->s, nt->n)) {
                char nm[48];
                snprintf(nm, sizeof nm, "%.*s", (int)(nt->n < 40 ? nt->n : 40), nt->s);
                return perr(P, nt, "no filter named '%s'", nm);
            }
            struct jnode *y = node(P, JN_FILTER, nt);
            if (!y) return NOMEM(P);
            y->a = *x;
            y->s = nt->s;
            y->n = nt->n;
            P->i++;
            if (is_op(cur(P), "(")) {
                int rc = parse_args(P, y);
                if (rc) return rc;
            }
            *x = y;
        } else if (is_name(t, "is")) {
            P->i++;
            struct jnode *y = node(P, JN_TEST, t);
            if (!y) return NOMEM(P);
            if (is_name(cur(P), "not")) {
                y->i = 1;
                P->i++;
            }
            const struct jtok *nt = cur(P);
            if (nt->kind != JT_NAME && !(is_op(nt, "==") || is_op(nt, "!=") || is_op(nt, "<") ||
                                         is_op(nt, ">") || is_op(nt, "<=") || is_op(nt, ">=")))
                return perr(P, nt, "%s", "expected a test name");
            if (nt->kind == JT_NAME &&
                (is_name(nt, "none") || is_name(nt, "true") || is_name(nt, "false"))) {
                /* "is none" / "is true": the constants name tests too */
            } else if (!jtest_known(nt->s, nt->n)) {
                char nm[48];
                snprintf(nm, sizeof nm, "%.*s", (int)(nt->n < 40 ? nt->n : 40), nt->s);
                return perr(P, nt, "no test named '%s'", nm);
            }
            y->a = *x;
            y->s = nt->s;
            y->n = nt->n;
            P->i++;
            const struct jtok *at = cur(P);
            int rc = 0;
            if (is_op(at, "(")) {
                rc = parse_args(P, y);
            } else if ((at->kind == JT_NAME && !is_name(at, "else") && !is_name(at, "or") &&
                        !is_name(at, "and") && !is_name(at, "if") && !is_name(at, "is") &&
                        !is_name(at, "in") && !is_name(at, "not")) ||
                       at->kind == JT_STRING || at->kind == JT_INT || at->kind == JT_FLOAT ||
                       is_op(at, "[") || is_op(at, "{")) {
                struct jnode *arg;
                size_t cap = 0;
                rc = parse_unary(P, false, &arg);
                if (rc == 0) rc = push_node(P, &y->kids, &y->n_kids, &cap, arg);
            }
            if (rc) return rc;
            *x = y;
        } else if (is_op(t, "(")) {
            struct jnode *y = node(P, JN_CALL, t);
            if (!y) return NOMEM(P);
            y->a = *x;
            int rc = parse_args(P, y);
            if (rc) return rc;
            *x = y;
        } else {
            return 0;
        }
    }
}

static int parse_unary(struct parser *P, bool with_filter, struct jnode **out) {
    int rc = enter(P);
    if (rc) return rc;
    const struct jtok *t = cur(P);
    struct jnode *x = NULL;
    if (is_op(t, "-") || is_op(t, "+")) {
        P->i++;
        struct jnode *inner;
        rc = parse_unary(P, false, &inner);
        if (rc) return rc;
        x = node(P, is_op(t, "-") ? JN_NEG : JN_POS, t);
        if (!x) return NOMEM(P);
        x->a = inner;
    } else {
        rc = parse_primary(P, &x);
    }
    if (rc == 0) rc = parse_postfix(P, &x);
    if (rc == 0 && with_filter) rc = parse_filters(P, &x);
    P->depth--;
    *out = x;
    return rc;
}

static int binop(struct parser *P, const struct jtok *t, int op, struct jnode *a, struct jnode *b,
                 struct jnode **out) {
    struct jnode *x = node(P, JN_BINOP, t);
    if (!x) return NOMEM(P);
    x->i = op;
    x->a = a;
    x->b = b;
    *out = x;
    return 0;
}

static int parse_pow(struct parser *P, struct jnode **out) {
    int rc = parse_unary(P, true, out);
    while (rc == 0 && is_op(cur(P), "**")) {
        const struct jtok *t = cur(P);
        struct jnode *b;
        P->i++;
        rc = parse_unary(P, true, &b);
        if (rc == 0) rc = binop(P, t, JOP_POW, *out, b, out);
    }
    return rc;
}

static int parse_math2(struct parser *P, struct jnode **out) {
    int rc = parse_pow(P, out);
    for (;;) {
        const struct jtok *t = cur(P);
        int op = is_op(t, "*")    ? JOP_MUL
                 : is_op(t, "/")  ? JOP_DIV
                 : is_op(t, "//") ? JOP_FLOORDIV
                 : is_op(t, "%")  ? JOP_MOD
                                  : 0;
        if (rc || !op) return rc;
        struct jnode *b;
        P->i++;
        rc = parse_pow(P, &b);
        if (rc == 0) rc = binop(P, t, op, *out, b, out);
    }
}

static int parse_concat(struct parser *P, struct jnode **out) {
    int rc = parse_math2(P, out);
    while (rc == 0 && is_op(cur(P), "~")) {
        const struct jtok *t = cur(P);
        struct jnode *b;
        P->i++;
        rc = parse_math2(P, &b);
        if (rc == 0) rc = binop(P, t, JOP_CONCAT, *out, b, out);
    }
    return rc;
}

static int parse_math1(struct parser *P, struct jnode **out) {
    int rc = parse_concat(P, out);
    for (;;) {
        const struct jtok *t = cur(P);
        int op = is_op(t, "+") ? JOP_ADD : is_op(t, "-") ? JOP_SUB : 0;
        if (rc || !op) return rc;
        struct jnode *b;
        P->i++;
        rc = parse_concat(P, &b);
        if (rc == 0) rc = binop(P, t, op, *out, b, out);
    }
}

static int parse_compare(struct parser *P, struct jnode **out) {
    struct jnode *a;
    int rc = parse_math1(P, &a);
    if (rc) return rc;
    struct jnode *x = NULL;
    size_t cap = 0, capn = 0;
    for (;;) {
        const struct jtok *t = cur(P);
        const char *op = NULL;
        size_t adv = 1;
        static const char *const ops[] = {"==", "!=", "<", ">", "<=", ">="};
        for (size_t k = 0; k < 6; k++)
            if (is_op(t, ops[k])) op = ops[k];
        if (!op && is_name(t, "in")) op = "in";
        if (!op && is_name(t, "not") && is_name(&P->t[P->i + 1], "in")) {
            op = "notin";
            adv = 2;
        }
        if (!op) break;
        if (!x) {
            x = node(P, JN_CMP, t);
            if (!x) return NOMEM(P);
            x->a = a;
        }
        P->i += adv;
        struct jnode *b;
        rc = parse_math1(P, &b);
        if (rc == 0) rc = push_name(P, &x->names, &x->n_names, &capn, op, strlen(op));
        if (rc == 0) rc = push_node(P, &x->kids, &x->n_kids, &cap, b);
        if (rc) return rc;
    }
    *out = x ? x : a;
    return 0;
}

static int parse_not(struct parser *P, struct jnode **out) {
    const struct jtok *t = cur(P);
    if (!is_name(t, "not")) return parse_compare(P, out);
    int rc = enter(P);
    if (rc) return rc;
    P->i++;
    struct jnode *x = node(P, JN_NOT, t);
    if (!x) return NOMEM(P);
    rc = parse_not(P, &x->a);
    P->depth--;
    *out = x;
    return rc;
}

static int parse_andor(struct parser *P, bool is_or, struct jnode **out) {
    int rc = is_or ? parse_andor(P, false, out) : parse_not(P, out);
    while (rc == 0 && is_name(cur(P), is_or ? "or" : "and")) {
        struct jnode *x = node(P, is_or ? JN_OR : JN_AND, cur(P));
        if (!x) return NOMEM(P);
        P->i++;
        x->a = *out;
        rc = is_or ? parse_andor(P, false, &x->b) : parse_not(P, &x->b);
        *out = x;
    }
    return rc;
}

static int parse_expr(struct parser *P, bool with_cond, struct jnode **out) {
    int rc = enter(P);
    if (rc) return rc;
    rc = parse_andor(P, true, out);
    while (rc == 0 && with_cond && is_name(cur(P), "if")) {
        struct jnode *x = node(P, JN_COND, cur(P));
        if (!x) return NOMEM(P);
        P->i++;
        x->b = *out;
        rc = parse_andor(P, true, &x->a);
        if (rc == 0 && is_name(cur(P), "else")) {
            P->i++;
            rc = parse_expr(P, true, &x->c);
        }
        *out = x;
    }
    P->depth--;
    return rc;
}

/* "a, b" without brackets (set values, for iterables): a tuple when a comma follows. */
static int parse_tuple(struct parser *P, bool with_cond, struct jnode **out) {
    const struct jtok *t = cur(P);
    int rc = parse_expr(P, with_cond, out);
    if (rc || !is_op(cur(P), ",")) return rc;
    struct jnode *tup = node(P, JN_TUPLE, t);
    size_t cap = 0;
    if (!tup) return NOMEM(P);
    rc = push_node(P, &tup->kids, &tup->n_kids, &cap, *out);
    while (rc == 0 && is_op(cur(P), ",")) {
        P->i++;
        if (cur(P)->kind == JT_BLOCK_END || cur(P)->kind == JT_VAR_END) break;
        struct jnode *x;
        rc = parse_expr(P, with_cond, &x);
        if (rc == 0) rc = push_node(P, &tup->kids, &tup->n_kids, &cap, x);
    }
    *out = tup;
    return rc;
}

/* ---------------------------------------------------------------- statements */

static int parse_body(struct parser *P, const char *const *ends, struct jnode ***kids,
                      size_t *n_kids);

static int expect_end(struct parser *P) {
    if (cur(P)->kind != JT_BLOCK_END) return perr(P, cur(P), "%s", "expected '%}'");
    P->i++;
    return 0;
}

/* At the name of a closing tag ("endfor"): consume it and its "%}". */
static int close_tag(struct parser *P) {
    P->i++;
    return expect_end(P);
}

static int parse_if(struct parser *P, const struct jtok *t, struct jnode **out) {
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    struct jnode *x = node(P, JS_IF, t);
    if (!x) return NOMEM(P);
    int rc = parse_tuple(P, true, &x->a);
    if (rc == 0) rc = expect_end(P);
    if (rc == 0) rc = parse_body(P, ends, &x->kids, &x->n_kids);
    if (rc) return rc;
    const struct jtok *nt = cur(P);
    if (is_name(nt, "elif")) {
        struct jnode *y;
        size_t cap = 0;
        P->i++;
        rc = parse_if(P, nt, &y);
        if (rc == 0) rc = push_node(P, &x->kids2, &x->n_kids2, &cap, y);
    } else if (is_name(nt, "else")) {
        static const char *const ends2[] = {"endif", NULL};
        P->i++;
        rc = expect_end(P);
        if (rc == 0) rc = parse_body(P, ends2, &x->kids2, &x->n_kids2);
        if (rc == 0) rc = close_tag(P);
    } else {
        rc = close_tag(P);
    }
    *out = x;
    return rc;
}

/* Loop and assignment targets: "a", "a, b" or "(a, b)". */
static int parse_targets(struct parser *P, struct jnode *x) {
    size_t cap = 0;
    bool paren = is_op(cur(P), "(");
    if (paren) P->i++;
    for (;;) {
        const struct jtok *nt = cur(P);
        if (nt->kind != JT_NAME) return perr(P, nt, "%s", "expected a variable name");
        int rc = push_name(P, &x->names, &x->n_names, &cap, nt->s, nt->n);
        if (rc) return rc;
        P->i++;
        if (!is_op(cur(P), ",")) break;
        P->i++;
    }
    return paren ? expect_op(P, ")") : 0;
}

static int parse_for(struct parser *P, const struct jtok *t, struct jnode **out) {
    static const char *const ends[] = {"else", "endfor", NULL};
    static const char *const ends2[] = {"endfor", NULL};
    struct jnode *x = node(P, JS_FOR, t);
    if (!x) return NOMEM(P);
    int rc = parse_targets(P, x);
    if (rc == 0 && !is_name(cur(P), "in")) rc = perr(P, cur(P), "%s", "expected 'in'");
    if (rc) return rc;
    P->i++;
    rc = parse_tuple(P, false, &x->a);
    if (rc == 0 && is_name(cur(P), "if")) {
        P->i++;
        rc = parse_expr(P, true, &x->b);
    }
    if (rc == 0 && is_name(cur(P), "recursive"))
        rc = perr(P, cur(P), "%s", "recursive loops are not supported");
    if (rc == 0) rc = expect_end(P);
    if (rc == 0) rc = parse_body(P, ends, &x->kids, &x->n_kids);
    if (rc == 0 && is_name(cur(P), "else")) {
        P->i++;
        rc = expect_end(P);
        if (rc == 0) rc = parse_body(P, ends2, &x->kids2, &x->n_kids2);
    }
    if (rc == 0) rc = close_tag(P);
    *out = x;
    return rc;
}

static int parse_set(struct parser *P, const struct jtok *t, struct jnode **out) {
    struct jnode *x = node(P, JS_SET, t);
    if (!x) return NOMEM(P);
    *out = x;
    int rc;
    if (cur(P)->kind == JT_NAME && is_op(&P->t[P->i + 1], ".")) {
        /* namespace attribute: set ns.attr = value */
        const struct jtok *nt = cur(P), *at = &P->t[P->i + 2];
        if (at->kind != JT_NAME) return perr(P, at, "%s", "expected an attribute name");
        x->c = node(P, JN_NAME, nt);
        if (!x->c) return NOMEM(P);
        x->c->s = nt->s;
        x->c->n = nt->n;
        x->s = at->s;
        x->n = at->n;
        P->i += 3;
    } else {
        rc = parse_targets(P, x);
        if (rc) return rc;
    }
    if (is_op(cur(P), "=")) {
        P->i++;
        rc = parse_tuple(P, true, &x->a);
        return rc ? rc : expect_end(P);
    }
    /* block set: {% set x %}...{% endset %}, optionally "| filter" */
    static const char *const ends[] = {"endset", NULL};
    if (x->c || x->n_names != 1) return perr(P, cur(P), "%s", "expected '='");
    struct jnode *holder = node(P, JN_NAME, t); /* s == NULL: stands for the block's text */
    if (!holder) return NOMEM(P);
    struct jnode *f = holder;
    rc = parse_filters(P, &f);
    if (rc == 0 && f != holder) x->b = f;
    if (rc == 0) rc = expect_end(P);
    if (rc == 0) rc = parse_body(P, ends, &x->kids, &x->n_kids);
    if (rc == 0) rc = close_tag(P);
    x->i = 1;
    *out = x;
    return rc;
}

static int parse_macro(struct parser *P, const struct jtok *t, struct jnode **out) {
    static const char *const ends[] = {"endmacro", NULL};
    struct jnode *x = node(P, JS_MACRO, t);
    const struct jtok *nt = cur(P);
    if (!x) return NOMEM(P);
    if (nt->kind != JT_NAME) return perr(P, nt, "%s", "expected a macro name");
    x->s = nt->s;
    x->n = nt->n;
    P->i++;
    int rc = expect_op(P, "(");
    size_t capn = 0, cap2 = 0;
    while (rc == 0 && !is_op(cur(P), ")")) {
        if (x->n_names > 0) {
            rc = expect_op(P, ",");
            if (rc || is_op(cur(P), ")")) break;
        }
        const struct jtok *pt = cur(P);
        if (pt->kind != JT_NAME) return perr(P, pt, "%s", "expected a parameter name");
        P->i++;
        struct jnode *def = NULL;
        if (is_op(cur(P), "=")) {
            P->i++;
            rc = parse_expr(P, true, &def);
        } else if (x->n_kids2 > 0 && x->kids2[x->n_kids2 - 1]) {
            return perr(P, pt, "%s", "parameter without default after one with a default");
        }
        if (rc == 0) rc = push_name(P, &x->names, &x->n_names, &capn, pt->s, pt->n);
        if (rc == 0) rc = push_node(P, &x->kids2, &x->n_kids2, &cap2, def);
    }
    if (rc == 0) rc = expect_op(P, ")");
    if (rc == 0) rc = expect_end(P);
    if (rc == 0) rc = parse_body(P, ends, &x->kids, &x->n_kids);
    if (rc == 0) rc = close_tag(P);
    *out = x;
    return rc;
}

static int parse_filter_block(struct parser *P, const struct jtok *t, struct jnode **out) {
    static const char *const ends[] = {"endfilter", NULL};
    struct jnode *x = node(P, JS_FILTER_BLOCK, t);
    struct jnode *holder = node(P, JN_NAME, t); /* s == NULL: stands for the block's text */
    const struct jtok *nt = cur(P);
    if (!x || !holder) return NOMEM(P);
    if (nt->kind != JT_NAME || !jfilter_known(nt->s, nt->n))
        return perr(P, nt, "%s", "expected a filter name");
    struct jnode *f = node(P, JN_FILTER, nt);
    if (!f) return NOMEM(P);
    f->s = nt->s;
    f->n = nt->n;
    f->a = holder;
    P->i++;
    int rc = 0;
    if (is_op(cur(P), "(")) rc = parse_args(P, f);
    x->b = f;
    if (rc == 0) rc = expect_end(P);
    if (rc == 0) rc = parse_body(P, ends, &x->kids, &x->n_kids);
    if (rc == 0) rc = close_tag(P);
    *out = x;
    return rc;
}

static int parse_with(struct parser *P, const struct jtok *t, struct jnode **out) {
    static const char *const ends[] = {"endwith", NULL};
    struct jnode *x = node(P, JS_WITH, t);
    if (!x) return NOMEM(P);
    size_t capn = 0, cap2 = 0;
    int rc = 0;
    while (rc == 0 && cur(P)->kind != JT_BLOCK_END) {
        if (x->n_names > 0) rc = expect_op(P, ",");
        const struct jtok *nt = cur(P);
        if (rc == 0 && nt->kind != JT_NAME) rc = perr(P, nt, "%s", "expected a variable name");
        if (rc) return rc;
        P->i++;
        struct jnode *v;
        rc = expect_op(P, "=");
        if (rc == 0) rc = parse_expr(P, true, &v);
        if (rc == 0) rc = push_name(P, &x->names, &x->n_names, &capn, nt->s, nt->n);
        if (rc == 0) rc = push_node(P, &x->kids2, &x->n_kids2, &cap2, v);
    }
    if (rc == 0) rc = expect_end(P);
    if (rc == 0) rc = parse_body(P, ends, &x->kids, &x->n_kids);
    if (rc == 0) rc = close_tag(P);
    *out = x;
    return rc;
}

static int parse_statement(struct parser *P, struct jnode **out) {
    const struct jtok *t = cur(P);
    if (t->kind != JT_NAME) return perr(P, t, "%s", "expected a statement name");
    P->i++;
    if (is_name(t, "if")) return parse_if(P, t, out);
    if (is_name(t, "for")) return parse_for(P, t, out);
    if (is_name(t, "set")) return parse_set(P, t, out);
    if (is_name(t, "macro")) return parse_macro(P, t, out);
    if (is_name(t, "filter")) return parse_filter_block(P, t, out);
    if (is_name(t, "with")) return parse_with(P, t, out);
    if (is_name(t, "break") || is_name(t, "continue")) {
        *out = node(P, is_name(t, "break") ? JS_BREAK : JS_CONTINUE, t);
        return *out ? expect_end(P) : NOMEM(P);
    }
    if (is_name(t, "generation")) {
        static const char *const ends[] = {"endgeneration", NULL};
        struct jnode *x = node(P, JS_BODY, t);
        if (!x) return NOMEM(P);
        int rc = expect_end(P);
        if (rc == 0) rc = parse_body(P, ends, &x->kids, &x->n_kids);
        if (rc == 0) rc = close_tag(P);
        *out = x;
        return rc;
    }
    char nm[48];
    snprintf(nm, sizeof nm, "%.*s", (int)(t->n < 40 ? t->n : 40), t->s);
    return perr(P, t, "unsupported statement '%s'", nm);
}

static bool is_end(const struct jtok *t, const char *const *ends) {
    for (size_t k = 0; ends && ends[k]; k++)
        if (is_name(t, ends[k])) return true;
    return false;
}

/* Statements until a block whose name is in ends (left current) or the end of input. */
static int parse_body(struct parser *P, const char *const *ends, struct jnode ***kids,
                      size_t *n_kids) {
    int rc = enter(P);
    size_t cap = 0;
    while (rc == 0) {
        const struct jtok *t = cur(P);
        struct jnode *x = NULL;
        if (t->kind == JT_EOF) {
            if (ends && ends[0]) {
                size_t k = 0;
                while (ends[k + 1]) k++;
                rc = perr(P, t, "unexpected end of template, expected '%s'", ends[k]);
            }
            break;
        }
        if (t->kind == JT_TEXT) {
            x = node(P, JS_TEXT, t);
            if (!x) return NOMEM(P);
            x->s = t->s;
            x->n = t->n;
            P->i++;
        } else if (t->kind == JT_VAR_BEGIN) {
            P->i++;
            x = node(P, JS_OUTPUT, t);
            if (!x) return NOMEM(P);
            rc = parse_tuple(P, true, &x->a);
            if (rc == 0 && cur(P)->kind != JT_VAR_END) rc = perr(P, cur(P), "%s", "expected '}}'");
            P->i++;
        } else if (t->kind == JT_BLOCK_BEGIN) {
            P->i++;
            if (is_end(cur(P), ends)) break;
            rc = parse_statement(P, &x);
        } else {
            rc = perr(P, t, "%s", "unexpected token");
        }
        if (rc == 0 && x) rc = push_node(P, kids, n_kids, &cap, x);
    }
    P->depth--;
    return rc;
}

int jparse(struct jpool *pool, const struct jtok *toks, size_t n_toks, struct jnode **root,
           struct err *e) {
    struct parser P = {.pool = pool, .t = toks, .n = n_toks, .e = e};
    struct jnode *x = node(&P, JS_BODY, &toks[0]);
    if (!x) return NOMEM(&P);
    int rc = parse_body(&P, NULL, &x->kids, &x->n_kids);
    if (rc) return rc;
    *root = x;
    return 0;
}
