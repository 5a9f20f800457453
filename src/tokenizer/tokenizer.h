/* tokenizer: a byte-level BPE tokenizer loaded from a Hugging Face tokenizer.json, exact to
 * the HF `tokenizers` library for the Qwen2 / GPT-2 family (see docs spec section 8).
 *
 * Encoding: added tokens are split out first (leftmost, longest first; with their lstrip,
 * rstrip, single_word and normalized flags), the rest is normalized (NFC for Qwen),
 * pre-tokenized by the file's regex, byte-level mapped and merged by BPE. No BOS/EOS or other
 * post-processing is applied (the caller adds template tokens itself).
 * Invalid UTF-8 input is first decoded with replacement (each maximal ill-formed subpart
 * becomes U+FFFD, as Python's bytes.decode("utf-8", errors="replace")), since the reference
 * only ever sees Python strings; encoding never fails on content.
 *
 * Decoding: each id's bytes are concatenated (byte-level inverse mapping; added tokens and
 * tokens with characters outside the byte table give their raw UTF-8, as the reference's
 * ByteLevel decoder does), then decoded as UTF-8 with replacement. Ids the tokenizer does
 * not know (negative, or padding rows of an embedding past the vocab) decode to nothing, as
 * in the reference.
 *
 * Ownership and threads: struct tokenizer is immutable after tok_load and may be shared by
 * any number of threads. Encoding needs a struct tok_ctx (scratch, regex state and a word
 * cache), one per thread. */
#ifndef VELA_TOKENIZER_TOKENIZER_H
#define VELA_TOKENIZER_TOKENIZER_H

#include "tokenizer/bpe.h"
#include "tokenizer/bytelevel.h"
#include "util/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tokenizer;
struct tok_ctx;

/* tok_encode flags. */
enum {
    /* Treat the text of special added tokens (special: true, e.g. <|im_start|>) as plain text,
     * as HF does with encode_special_tokens=True; for untrusted user content. Non-special
     * added tokens (<tool_call>) are still matched, as in the reference. */
    TOK_SPECIAL_AS_TEXT = 1u << 0,
};

/* Loads path, a tokenizer.json or a folder holding one. *out is freed with tok_free. */
int tok_load(const char *path, struct tokenizer **out, struct err *e);
/* Same from a JSON buffer (need not be NUL-terminated); `what` names it in errors. */
int tok_load_buf(const char *json, size_t len, const char *what, struct tokenizer **out,
                 struct err *e);
void tok_free(struct tokenizer *t);

/* One past the largest id the tokenizer knows (151665 for Qwen2.5). */
int32_t tok_n_ids(const struct tokenizer *t);
/* Id of an added token's content or of a vocab token (given in byte-level form), or -1. */
int32_t tok_token_to_id(const struct tokenizer *t, const char *s);
/* True for added tokens marked special (skipped by skip_special_tokens). */
bool tok_is_special(const struct tokenizer *t, int32_t id);
/* The bytes id decodes to (borrowed from t), or NULL (*n = 0) when it decodes to nothing:
 * unknown ids, and special tokens when skip_special. The bytes need not be whole UTF-8. */
const unsigned char *tok_id_bytes(const struct tokenizer *t, int32_t id, bool skip_special,
                                  size_t *n);

struct tok_ctx *tok_ctx_new(const struct tokenizer *t); /* NULL when out of memory */
void tok_ctx_free(struct tok_ctx *c);

/* Appends the ids of text[0..len) to out (which the caller owns and frees). Fails only on
 * VELA_ENOMEM, VELA_ELIMIT (input above VELA_TOK_MAX_INPUT_BYTES) or a regex engine limit. */
int tok_encode(struct tok_ctx *c, const char *text, size_t len, unsigned flags, struct tok_ids *out,
               struct err *e);

/* Appends the decoded text of ids to out. Never fails on ids; VELA_ENOMEM only. */
int tok_decode(const struct tokenizer *t, const int32_t *ids, int64_t n, bool skip_special,
               struct tok_text *out, struct err *e);

#endif
