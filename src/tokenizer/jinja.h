/* jinja: a Jinja2 interpreter for the subset chat templates use, configured as transformers
 * configures its environment (trim_blocks, lstrip_blocks, loop controls, tojson without HTML
 * escaping, raise_exception, strftime_now, namespace). See jinja_*.c for the pieces.
 *
 * A compiled template is immutable and may be rendered by several threads at once; each render
 * allocates its own values and frees them before returning. Every resource a render can use
 * (output, memory, loop iterations, recursion) is bounded by VELA_TPL_* in util/limits.h; the
 * deepest render (nested macro calls over deeply nested expressions) needs about 2 MB of stack.
 *
 * Known differences from jinja2, all outside what chat templates do: integers are 64-bit
 * (overflow is an error), number literals longer than 62 characters are rejected, printing a
 * bound method shows no address, and some rarely used filters/tests are missing (unknown names
 * fail at compile time). */
#ifndef VELA_TOKENIZER_JINJA_H
#define VELA_TOKENIZER_JINJA_H

#include "util/err.h"

#include <jansson.h>
#include <stddef.h>

struct jinja_tpl;

/* Compiles source (n bytes, UTF-8, at most VELA_TPL_MAX_SOURCE_BYTES). Syntax errors and
 * unsupported constructs fail here with VELA_EFORMAT and "template line L col C: ...".
 * *out is freed with jinja_free. */
int jinja_compile(const char *source, size_t n, struct jinja_tpl **out, struct err *e);

/* Renders with the members of vars (a JSON object, borrowed) as the template's variables.
 * *out_text is NUL-terminated, *out_len its length (may be NULL); the caller free()s it.
 * raise_exception(msg) fails with VELA_EINVAL and msg in the error text. */
int jinja_render(const struct jinja_tpl *t, const json_t *vars, char **out_text, size_t *out_len,
                 struct err *e);

void jinja_free(struct jinja_tpl *t);

#endif
