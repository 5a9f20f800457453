/* jinja: compile (lex + parse into the template's pool) and render (a fresh pool, scope chain
 * and output buffer per call). Invariant: a compiled template is never written after
 * jinja_compile returns, which is what makes concurrent renders safe. */
#include "tokenizer/jinja.h"

#include "tokenizer/jinja_internal.h"
#include "util/limits.h"

#include <stdlib.h>
#include <string.h>

struct jinja_tpl {
    struct jpool pool; /* tokens, AST, literal strings */
    struct jnode *root;
};

int jinja_compile(const char *source, size_t n, struct jinja_tpl **out, struct err *e) {
    if (n > VELA_TPL_MAX_SOURCE_BYTES)
        return err_set(e, VELA_ELIMIT, "template: %zu bytes, limit %u", n,
                       (unsigned)VELA_TPL_MAX_SOURCE_BYTES);
    struct jinja_tpl *t = calloc(1, sizeof *t);
    if (!t) return err_set(e, VELA_ENOMEM, "template: out of memory");
    /* tokens and nodes take a few dozen bytes per source byte at worst */
    jpool_init(&t->pool, 64 * (size_t)VELA_TPL_MAX_SOURCE_BYTES);
    struct jtok *toks;
    size_t n_toks;
    int rc = jlex(&t->pool, source, n, &toks, &n_toks, e);
    if (rc == 0) rc = jparse(&t->pool, toks, n_toks, &t->root, e);
    if (rc) {
        jinja_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int jinja_render(const struct jinja_tpl *t, const json_t *vars, char **out_text, size_t *out_len,
                 struct err *e) {
    if (!json_is_object(vars))
        return err_set(e, VELA_EINVAL, "template variables must be an object");
    struct jpool pool;
    jpool_init(&pool, VELA_TPL_MAX_HEAP_BYTES);
    struct jbuf out = {0};
    struct jctx c = {.pool = &pool, .out = &out, .e = e};
    int rc = jctx_new_root(&c);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)vars, key, val) {
        struct jval v;
        if (rc == 0) rc = jv_from_json(&c, val, 1, &v);
        if (rc == 0) rc = jctx_set_global(&c, key, v);
    }
    if (rc == 0) rc = jexec_root(&c, t->root);
    if (rc == 0 && !out.p) {
        out.p = malloc(1);
        if (!out.p)
            rc = err_set(e, VELA_ENOMEM, "template: out of memory");
        else
            out.p[0] = '\0';
    }
    jpool_deinit(&pool);
    if (rc) {
        free(out.p);
        return rc;
    }
    *out_text = out.p;
    if (out_len) *out_len = out.n;
    return 0;
}

void jinja_free(struct jinja_tpl *t) {
    if (!t) return;
    jpool_deinit(&t->pool);
    free(t);
}
