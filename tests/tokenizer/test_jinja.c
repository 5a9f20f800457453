/* test_jinja: the Jinja interpreter against jinja2 itself. tests/fixtures/chat_template/
 * jinja_cases.json holds small templates with the output jinja2 (in transformers' environment)
 * gives, or the fact that it fails; each must match byte for byte or fail too. Then the limits
 * that keep hostile templates from crashing or hanging the process, driven both ways, and error
 * positions. */
#include "t.h"
#include "tokenizer/jinja.h"
#include "util/err.h"
#include "util/limits.h"

#include <jansson.h>
#include <stdbool.h>

/* Compiles and renders src with vars (JSON text); returns the rc, output in *out (or NULL). */
static int render(const char *src, const char *vars_json, char **out, struct err *e) {
    struct jinja_tpl *t = NULL;
    *out = NULL;
    int rc = jinja_compile(src, strlen(src), &t, e);
    if (rc) return rc;
    json_t *vars = json_loads(vars_json ? vars_json : "{}", 0, NULL);
    rc = jinja_render(t, vars, out, NULL, e);
    json_decref(vars);
    jinja_free(t);
    return rc;
}

static void test_fixture_cases(void) {
    json_error_t je;
    json_t *cases = json_load_file(t_src("tests/fixtures/chat_template/jinja_cases.json"), 0, &je);
    T_OK(cases != NULL && json_array_size(cases) > 100);
    if (!cases) return;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *src = json_string_value(json_object_get(c, "template"));
        const json_t *expected = json_object_get(c, "expected");
        struct jinja_tpl *t = NULL;
        struct err e = {0};
        char *out = NULL;
        int rc = jinja_compile(src, strlen(src), &t, &e);
        if (rc == 0) rc = jinja_render(t, json_object_get(c, "vars"), &out, NULL, &e);
        jinja_free(t);
        if (expected) {
            bool same = rc == 0 && strcmp(out, json_string_value(expected)) == 0;
            if (!same)
                fprintf(stderr, "case %zu %s\n  want: %s\n  got:  %s\n", i, src,
                        json_string_value(expected), rc == 0 ? out : e.msg);
            T_OK(same);
        } else {
            if (rc == 0)
                fprintf(stderr, "case %zu %s: expected an error (%s), got \"%s\"\n", i, src,
                        json_string_value(json_object_get(c, "error")), out);
            T_OK(rc != 0 && e.msg[0] != '\0');
        }
        free(out);
    }
    json_decref(cases);
}

static void test_error_positions(void) {
    char *out;
    struct err e = {0};
    T_FAILS(render("line one\n{% if x %}\n  {{ x + }}\n{% endif %}", NULL, &out, &e), VELA_EFORMAT,
            &e);
    T_OK(strstr(e.msg, "line 3") != NULL);
    T_FAILS(render("{% for x in [1] %}", NULL, &out, &e), VELA_EFORMAT, &e);
    T_OK(strstr(e.msg, "endfor") != NULL);
    T_FAILS(render("ok\n  {% include 'x' %}", NULL, &out, &e), VELA_EFORMAT, &e);
    T_OK(strstr(e.msg, "line 2 col 6") != NULL && strstr(e.msg, "include") != NULL);
    T_FAILS(render("{{ raise_exception('no system role') }}", NULL, &out, &e), VELA_EINVAL, &e);
    T_OK(strstr(e.msg, "no system role") != NULL);
    T_FAILS(render("{{ '\xff' }}", NULL, &out, &e), VELA_EFORMAT, &e);
}

static void test_limits(void) {
    char *out = NULL;
    struct err e = {0};
    /* loop iterations: 500 x 1000 stays under VELA_TPL_MAX_LOOP_ITERS, 100000^2 does not */
    int rc = render("{% for i in range(500) %}{% for j in range(1000) %}{% endfor %}{% endfor %}ok",
                    NULL, &out, &e);
    T_RC(rc, &e);
    if (rc == 0) T_STREQ(out, "ok");
    free(out);
    T_FAILS(
        render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
               NULL, &out, &e),
        VELA_ELIMIT, &e);
    T_FAILS(render("{{ range(100001)|length }}", NULL, &out, &e), VELA_ELIMIT, &e);
    /* output size: doubling a string past VELA_TPL_MAX_STRING_BYTES */
    T_FAILS(render("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(40) %}"
                   "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
                   NULL, &out, &e),
            VELA_ELIMIT, &e);
    T_FAILS(render("{{ 'x' * 100000000 }}", NULL, &out, &e), VELA_ELIMIT, &e);
    /* recursion: macros */
    T_FAILS(render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", NULL, &out, &e), VELA_ELIMIT,
            &e);
    /* nesting in the parser, both ways */
    char src[4096];
    size_t o = 0;
    for (int i = 0; i < 20; i++) src[o++] = '(';
    src[o++] = '1';
    for (int i = 0; i < 20; i++) src[o++] = ')';
    src[o] = '\0';
    char tpl[4200];
    snprintf(tpl, sizeof tpl, "{{ %s }}", src);
    rc = render(tpl, NULL, &out, &e);
    T_RC(rc, &e);
    free(out);
    o = 0;
    for (int i = 0; i < 1000; i++) src[o++] = '[';
    src[o] = '\0';
    snprintf(tpl, sizeof tpl, "{{ %s }}", src);
    T_FAILS(render(tpl, NULL, &out, &e), VELA_EFORMAT, &e);
    o = 0;
    for (int i = 0; i < 200; i++) o += (size_t)snprintf(src + o, sizeof src - o, "{%% if 1 %%}");
    T_FAILS(render(src, NULL, &out, &e), VELA_EFORMAT, &e);
    /* values nested at run time */
    T_FAILS(render("{% set ns = namespace(l=[]) %}{% for i in range(200) %}{% set ns.l = [ns.l] %}"
                   "{% endfor %}{{ ns.l }}",
                   NULL, &out, &e),
            VELA_ELIMIT, &e);
    /* deep JSON input */
    char deep[1200];
    o = 0;
    o += (size_t)snprintf(deep, sizeof deep, "{\"x\": ");
    for (int i = 0; i < 100; i++) deep[o++] = '[';
    for (int i = 0; i < 100; i++) deep[o++] = ']';
    deep[o++] = '}';
    deep[o] = '\0';
    T_FAILS(render("{{ x }}", deep, &out, &e), VELA_ELIMIT, &e);
    /* source size */
    struct jinja_tpl *t = NULL;
    char *big = calloc(VELA_TPL_MAX_SOURCE_BYTES + 2, 1);
    if (big) {
        memset(big, 'a', VELA_TPL_MAX_SOURCE_BYTES + 1);
        T_FAILS(jinja_compile(big, VELA_TPL_MAX_SOURCE_BYTES + 1, &t, &e), VELA_ELIMIT, &e);
        free(big);
    }
    /* integer overflow is an error, not a wrap */
    T_FAILS(render("{{ 2 ** 64 }}", NULL, &out, &e), VELA_ELIMIT, &e);
}

static void test_misc(void) {
    char *out = NULL;
    struct err e = {0};
    int rc = render("{{ strftime_now('%Y')|length }}", NULL, &out, &e);
    T_RC(rc, &e);
    if (rc == 0) T_STREQ(out, "4");
    free(out);
    /* NUL bytes inside strings survive */
    struct jinja_tpl *t = NULL;
    rc = jinja_compile("[{{ s }}]", 9, &t, &e);
    T_RC(rc, &e);
    json_t *vars = json_object();
    json_object_set_new(vars, "s", json_stringn("a\0b", 3));
    size_t n = 0;
    if (rc == 0) rc = jinja_render(t, vars, &out, &n, &e);
    T_RC(rc, &e);
    if (rc == 0) T_OK(n == 5 && memcmp(out, "[a\0b]", 5) == 0);
    free(out);
    json_decref(vars);
    jinja_free(t);
    /* a compiled template renders many times with the same result */
    rc = jinja_compile("{% set ns = namespace(n=0) %}{% set ns.n = ns.n + 1 %}{{ ns.n }}", 64, &t,
                       &e);
    T_RC(rc, &e);
    for (int i = 0; rc == 0 && i < 3; i++) {
        vars = json_object();
        rc = jinja_render(t, vars, &out, NULL, &e);
        T_RC(rc, &e);
        if (rc == 0) T_STREQ(out, "1");
        free(out);
        json_decref(vars);
    }
    jinja_free(t);
}

int main(void) {
    T_RUN(test_fixture_cases);
    T_RUN(test_error_positions);
    T_RUN(test_limits);
    T_RUN(test_misc);
    return t_done();
}
