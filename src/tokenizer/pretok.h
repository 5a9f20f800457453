/* pretok: the text stages before BPE: the normalizer (Unicode normalization forms through
 * utf8proc) and the pre-tokenizer (regex splits through PCRE2), configured from the
 * "normalizer" and "pre_tokenizer" objects of a tokenizer.json.
 *
 * struct pretok is read-only after pretok_load (any thread); each thread uses its own
 * struct pretok_ctx (regex match data and buffers). Text passed in must be valid UTF-8
 * (the tokenizer replaces invalid sequences first). */
#ifndef VELA_TOKENIZER_PRETOK_H
#define VELA_TOKENIZER_PRETOK_H

#include "util/err.h"

#include <jansson.h>
#include <stddef.h>

struct pretok;
struct pretok_ctx;

struct pretok_span {
    size_t off, len; /* a piece of the text given to pretok_split */
};

/* normalizer may be NULL or JSON null (no normalization); pre_tokenizer must contain a
 * ByteLevel step (Qwen: Sequence[Split(regex, Isolated), ByteLevel(use_regex=false)];
 * GPT-2: ByteLevel(use_regex=true)). Unsupported types give VELA_EUNSUP naming them. */
int pretok_load(const json_t *normalizer, const json_t *pre_tokenizer, struct pretok **out,
                struct err *e);
void pretok_free(struct pretok *p);

struct pretok_ctx *pretok_ctx_new(const struct pretok *p); /* NULL when out of memory */
void pretok_ctx_free(struct pretok_ctx *c);

/* Normalizes s[0..n). *out points either at s itself (nothing to change) or at a buffer
 * inside c, valid until the next call on c. */
int pretok_normalize(struct pretok_ctx *c, const char *s, size_t n, const char **out, size_t *out_n,
                     struct err *e);
/* Splits s[0..n) into pieces; *spans points into c, valid until the next call on c. */
int pretok_split(struct pretok_ctx *c, const char *s, size_t n, const struct pretok_span **spans,
                 size_t *n_spans, struct err *e);

#endif
