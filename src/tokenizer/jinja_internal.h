/* jinja_internal: the structures shared by the Jinja interpreter's files (lexer, parser, value
 * model, evaluator, builtins). Not a public header: callers use tokenizer/jinja.h.
 *
 * Memory: everything a template owns (normalized source, tokens, AST, literal strings) lives in
 * the template's pool; everything a render creates (values, scopes) lives in the render's pool
 * and dies with it. Pools are chunked bump allocators with a byte cap, so a hostile template
 * fails with VELA_ELIMIT instead of exhausting memory. Any thread; one owner per object. */
#ifndef VELA_TOKENIZER_JINJA_INTERNAL_H
#define VELA_TOKENIZER_JINJA_INTERNAL_H

#include "util/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- pool: chunked bump allocator with a cap on the total ---- */
struct jpool_chunk;
struct jpool {
    struct jpool_chunk *head;
    size_t used_bytes; /* sum of chunk sizes */
    size_t cap_bytes;
};
void jpool_init(struct jpool *p, size_t cap_bytes);
void jpool_deinit(struct jpool *p);
/* 16-byte aligned, zero-filled; NULL when the cap would be passed or malloc fails. */
void *jpool_alloc(struct jpool *p, size_t n_bytes);
/* Copies n bytes (plus a NUL) into the pool. */
char *jpool_strdup(struct jpool *p, const char *s, size_t n);

/* ---- tokens ---- */
enum jt_kind {
    JT_TEXT,
    JT_BLOCK_BEGIN,
    JT_BLOCK_END,
    JT_VAR_BEGIN,
    JT_VAR_END,
    JT_NAME,
    JT_STRING,
    JT_INT,
    JT_FLOAT,
    JT_OP,
    JT_EOF
};

struct jtok {
    enum jt_kind kind;
    const char *s; /* TEXT, NAME, STRING (unescaped), OP: bytes, not NUL-terminated */
    size_t n;
    int64_t i;
    double f;
    int line, col;
};

/* Splits source into tokens with trim_blocks and lstrip_blocks applied, as transformers'
 * environment does. *out lives in pool. */
int jlex(struct jpool *pool, const char *src, size_t n, struct jtok **out, size_t *n_out,
         struct err *e);

/* ---- AST ---- */
enum jn_kind {
    /* expressions */
    JN_STR,
    JN_INT,
    JN_FLOAT,
    JN_BOOL,
    JN_NONE,
    JN_NAME,
    JN_LIST,
    JN_TUPLE,
    JN_DICT,    /* kids: keys, kids2: values */
    JN_GETATTR, /* a.s */
    JN_GETITEM, /* a[b] */
    JN_SLICE,   /* a[b:c:d], each of b, c, d may be NULL */
    JN_CALL,    /* a(kids..., names=kids2...) */
    JN_FILTER,  /* a|s(kids..., names=kids2...) ; a NULL inside {% filter %} */
    JN_TEST,    /* a is [not] s(kids...) ; i = negated */
    JN_BINOP,   /* a op b ; op in i */
    JN_NEG,
    JN_POS,
    JN_NOT,
    JN_AND,
    JN_OR,
    JN_CMP,  /* a (ops[k] kids[k])... ; ops in names[k] */
    JN_COND, /* b if a else c */
    /* statements */
    JS_TEXT,
    JS_OUTPUT,
    JS_IF,  /* if a: kids else kids2 */
    JS_FOR, /* for names in a [if b]: kids else kids2 */
    JS_SET, /* names = a | attribute: c.s = a | block: names = kids (filtered by b) */
    JS_MACRO,
    JS_BREAK,
    JS_CONTINUE,
    JS_FILTER_BLOCK, /* b (a JN_FILTER with a NULL operand) applied to kids' output */
    JS_WITH,         /* names = kids2 values, body kids */
    JS_BODY          /* plain sequence: the template root, {% generation %} */
};

enum jop { JOP_ADD = 1, JOP_SUB, JOP_MUL, JOP_DIV, JOP_FLOORDIV, JOP_MOD, JOP_POW, JOP_CONCAT };

struct jstr {
    const char *s;
    size_t n;
};

struct jnode {
    enum jn_kind kind;
    int line, col;
    struct jnode *a, *b, *c, *d;
    struct jnode **kids;
    size_t n_kids;
    struct jnode **kids2;
    size_t n_kids2;
    struct jstr *names; /* kwarg names, loop targets, macro params, comparison ops */
    size_t n_names;
    const char *s; /* name, string literal, filter/test/attribute name */
    size_t n;
    int64_t i;
    double f;
};

/* Parses the tokens into a JS_BODY root. Nesting is bounded by VELA_TPL_MAX_NEST. */
int jparse(struct jpool *pool, const struct jtok *toks, size_t n_toks, struct jnode **root,
           struct err *e);

/* ---- values ---- */
enum jv_kind {
    JV_UNDEF,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST, /* lists and tuples */
    JV_DICT,
    JV_NS,     /* namespace(): a dict whose attributes may be assigned */
    JV_MACRO,  /* m: the JS_MACRO node */
    JV_FUNC,   /* i: enum jfunc */
    JV_METHOD, /* bound method: mt */
};

enum jfunc { JF_NAMESPACE = 1, JF_RAISE, JF_STRFTIME, JF_RANGE, JF_DICT };

struct jlist;
struct jdict;
struct jmethod;

struct jval {
    enum jv_kind kind;
    size_t n; /* STR: length in bytes; UNDEF: length of the name */
    union {
        bool b;
        int64_t i;
        double f;
        const char *s; /* STR bytes (UTF-8, may hold NUL); UNDEF: the missing name or NULL */
        struct jlist *l;
        struct jdict *d;
        const struct jnode *m;
        struct jmethod *mt;
    } u;
};

struct jlist {
    struct jval *items;
    size_t n, cap;
    int depth;  /* nesting depth, bounded by VELA_TPL_MAX_VALUE_DEPTH */
    bool tuple; /* prints as (a, b) and never equals a list, as in Python */
};

struct jdict {
    struct jval *keys, *vals; /* insertion order, as Python dicts keep it */
    size_t n, cap;
    int depth;
};

struct jmethod {
    struct jval self;
    const char *name;
};

/* The render state the evaluator and builtins share. */
struct jbuf {
    char *p;
    size_t n, cap;
};

struct jframe;
struct jctx {
    struct jpool *pool;
    struct jframe *root, *top;
    struct jbuf *out;
    uint64_t n_iters;       /* loop iterations so far, all loops together */
    int call_depth;         /* macro calls in progress */
    int print_depth;        /* containers being printed: namespaces can hold themselves */
    const struct jnode *at; /* node being evaluated, for error positions */
    struct jval block_val;  /* text of a {% filter %} / {% set x | f %} block being filtered */
    struct err *e;
};

static inline struct jval jv_undef(const char *name) {
    struct jval v = {.kind = JV_UNDEF};
    v.u.s = name;
    v.n = name ? strlen(name) : 0;
    return v;
}
static inline struct jval jv_none(void) {
    struct jval v = {.kind = JV_NONE};
    return v;
}
static inline struct jval jv_bool(bool b) {
    struct jval v = {.kind = JV_BOOL};
    v.u.b = b;
    return v;
}
static inline struct jval jv_int(int64_t i) {
    struct jval v = {.kind = JV_INT};
    v.u.i = i;
    return v;
}
static inline struct jval jv_float(double f) {
    struct jval v = {.kind = JV_FLOAT};
    v.u.f = f;
    return v;
}
static inline struct jval jv_str(const char *s, size_t n) {
    struct jval v = {.kind = JV_STR};
    v.u.s = s;
    v.n = n;
    return v;
}

/* Runtime error at the current node: "line L col C: message". Returns code. */
int jerr(struct jctx *c, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* jinja_value.c */
int jv_new_list(struct jctx *c, size_t cap, struct jval *out);
int jv_new_dict(struct jctx *c, size_t cap, struct jval *out);
int jv_list_push(struct jctx *c, struct jlist *l, struct jval v);
/* Sets key to v, replacing an equal key in place (Python dict order). */
int jv_dict_set(struct jctx *c, struct jdict *d, struct jval k, struct jval v);
/* Pointer to the value under key, or NULL. */
struct jval *jv_dict_get(const struct jdict *d, struct jval k);
struct jval *jv_dict_get_str(const struct jdict *d, const char *s, size_t n);
int jv_from_json(struct jctx *c, const json_t *j, int depth, struct jval *out);
bool jv_truthy(struct jval v);
bool jv_equal(struct jval a, struct jval b);
const char *jv_type_name(struct jval v);
/* Appends str(v) (Python's str) / repr(v) to b. */
int jv_write_str(struct jctx *c, struct jbuf *b, struct jval v);
int jv_write_repr(struct jctx *c, struct jbuf *b, struct jval v);
/* str(v) as a pool string. */
int jv_to_str(struct jctx *c, struct jval v, struct jval *out);
/* json.dumps(v, ensure_ascii=False, indent, separators, sort_keys) as transformers' tojson. */
int jv_write_json(struct jctx *c, struct jbuf *b, struct jval v, int indent, const char *item_sep,
                  const char *key_sep, bool sort_keys, int level);
int jbuf_put(struct jctx *c, struct jbuf *b, const char *s, size_t n);
/* Ends a string built in b: when rc == 0, copies it into the render pool as *out; always frees
 * b's heap memory. Returns rc, or the pool's error. */
int jbuf_finish_str(struct jctx *c, struct jbuf *b, int rc, struct jval *out);
/* Python float repr into buf (>= 32 bytes); returns the length. */
size_t jv_format_float(double f, char *buf, size_t cap);
/* Number of code points in a UTF-8 string. */
size_t ju8_len(const char *s, size_t n);
/* Byte offset of code point index k (k <= length). */
size_t ju8_offset(const char *s, size_t n, size_t k);
/* Python's str.isspace() for one code point. */
bool ju8_is_space(uint32_t cp);
/* Decodes one code point at s[*i] (valid UTF-8 assumed) and advances *i. */
uint32_t ju8_next(const char *s, size_t n, size_t *i);

/* jinja_eval.c */
int jctx_new_root(struct jctx *c);
int jctx_set_global(struct jctx *c, const char *name, struct jval v);
int jexec_root(struct jctx *c, const struct jnode *root);
/* "'name' is undefined" for an undefined value. */
int jerr_undef(struct jctx *c, struct jval u);
/* Python's `needle in hay`. */
int jv_contains(struct jctx *c, struct jval hay, struct jval needle, bool *out);
/* What a for loop walks: list items, dict keys, string characters; undefined is empty. */
int jv_iter_items(struct jctx *c, struct jval v, struct jval *out);
int jeval(struct jctx *c, const struct jnode *x, struct jval *out);
int jcall_macro(struct jctx *c, const struct jnode *m, const struct jval *args, size_t n_args,
                const struct jstr *kw_names, const struct jval *kw_vals, size_t n_kw,
                struct jval *out);

/* jinja_builtins.c: string helpers shared with jinja_filters.c */
/* Case mapping by code point: mode 'u' upper, 'l' lower, 't' title, 'c' capitalize. */
int jb_case(struct jctx *c, struct jval s, char mode, struct jval *out);
/* Python's strip/lstrip/rstrip; chars NULL means whitespace. Returns a view into s. */
struct jval jb_strip(struct jval s, const struct jval *chars, bool left, bool right);
/* Python's str.replace; count < 0 replaces all. */
int jb_replace(struct jctx *c, struct jval s, struct jval old, struct jval new_, int64_t count,
               struct jval *out);
/* Python's str.split; sep NULL splits on whitespace runs; maxsplit < 0 is unlimited. */
int jb_split(struct jctx *c, struct jval s, const struct jval *sep, int64_t maxsplit,
             struct jval *out);
/* str() of each item (or of its attribute) joined by sep. */
int jb_join(struct jctx *c, struct jval seq, struct jval sep, const struct jval *attr,
            struct jval *out);
int jb_want_str(struct jctx *c, const char *what, struct jval v);
int jb_want_int(struct jctx *c, const char *what, struct jval v, int64_t *out);
/* dict.items() / keys() / values() as lists ((key, value) tuples for items). */
int jb_dict_method(struct jctx *c, const char *m, struct jdict *d, const struct jval *a, size_t n_a,
                   const struct jstr *kn, const struct jval *kv, size_t n_kw, struct jval *out);
/* Positional argument k, else keyword `name`, else NULL. */
const struct jval *jb_arg(const struct jval *a, size_t n_a, size_t k, const struct jstr *kn,
                          const struct jval *kv, size_t n_kw, const char *name);

/* jinja_builtins.c, jinja_filters.c */
bool jfilter_known(const char *name, size_t n);
bool jtest_known(const char *name, size_t n);
int jfilter_apply(struct jctx *c, const struct jnode *f, struct jval v, const struct jval *args,
                  size_t n_args, const struct jstr *kw_names, const struct jval *kw_vals,
                  size_t n_kw, struct jval *out);
int jtest_apply(struct jctx *c, const char *name, size_t n, struct jval v, const struct jval *args,
                size_t n_args, bool *out);
/* Attribute lookup as jinja's sandbox does it for our value kinds: methods, then items. */
int jget_attr(struct jctx *c, struct jval obj, const char *name, size_t n, struct jval *out);
int jget_item(struct jctx *c, struct jval obj, struct jval key, struct jval *out);
int jcall_value(struct jctx *c, struct jval f, const struct jval *args, size_t n_args,
                const struct jstr *kw_names, const struct jval *kw_vals, size_t n_kw,
                struct jval *out);

#endif
