/* tokjson: a minimal JSON scanner for the two large members of tokenizer.json (model.vocab,
 * about 151k entries, and model.merges, about 151k pairs), which are read straight into the
 * BPE tables without building a JSON tree (one allocation per table instead of one per
 * token). Everything else in the file goes through jansson as usual.
 *
 * Functions take the whole buffer and an index; they never read past n and report malformed
 * input by returning -1. No recursion: nesting is tracked with a counter. Any thread. */
#ifndef VELA_TOKENIZER_TOKJSON_H
#define VELA_TOKENIZER_TOKJSON_H

#include "tokenizer/bytelevel.h"

#include <stddef.h>

/* Index of the first non-whitespace byte at or after i (n when none). */
size_t tj_ws(const char *s, size_t n, size_t i);
/* s[i] must start a value; returns the index just past it, or -1 when malformed. */
long long tj_skip(const char *s, size_t n, size_t i);
/* s[i] must be '"'; appends the unescaped string to out (not NUL-separated) and returns the
 * index past the closing quote, or -1 when malformed (bad escape, lone surrogate, raw
 * control character, invalid UTF-8). */
long long tj_string(const char *s, size_t n, size_t i, struct tok_text *out);
/* s[obj] must be '{': finds member `key` (compared unescaped) and sets [*vs, *ve) to its value.
 * Returns 1 when found, 0 when absent, -1 when malformed. */
int tj_member(const char *s, size_t n, size_t obj, const char *key, size_t *vs, size_t *ve);

#endif
