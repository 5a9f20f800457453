/* tok_fixture: helpers shared by the tokenizer tests: reading the gzip JSONL fixtures that
 * tools/tokenizer_corpus.py and tools/tokenizer_reference.py write, and JSON id arrays. */
#ifndef VELA_TESTS_TOK_FIXTURE_H
#define VELA_TESTS_TOK_FIXTURE_H

#include "tokenizer/tokenizer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Next line of a gzip file as a parsed JSON value (new reference), or NULL at the end. */
static inline json_t *fx_next(gzFile f) {
    static char *buf;
    static size_t cap;
    size_t n = 0;
    if (!buf) {
        cap = 1 << 16;
        buf = malloc(cap);
    }
    for (;;) {
        if (!gzgets(f, buf + n, (int)(cap - n))) {
            if (n == 0) {
                free(buf);
                buf = NULL;
                return NULL;
            }
            break;
        }
        n += strlen(buf + n);
        if (n > 0 && buf[n - 1] == '\n') break;
        if (n + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    json_error_t je;
    return json_loadb(buf, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
}

/* Whether a JSON array of integers equals ids[0..n). */
static inline int fx_ids_equal(const json_t *arr, const int32_t *ids, int64_t n) {
    if (!json_is_array(arr) || (int64_t)json_array_size(arr) != n) return 0;
    for (int64_t i = 0; i < n; i++)
        if (json_integer_value(json_array_get(arr, (size_t)i)) != ids[i]) return 0;
    return 1;
}

/* Copies a JSON array of integers into v (cleared first). */
static inline void fx_ids_from(const json_t *arr, struct tok_ids *v) {
    v->n = 0;
    for (size_t i = 0; i < json_array_size(arr); i++)
        tok_ids_push(v, (int32_t)json_integer_value(json_array_get(arr, i)));
}

#endif
