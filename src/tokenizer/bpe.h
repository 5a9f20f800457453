/* bpe: the byte-level BPE model of a tokenizer.json ("model": {"type": "BPE", ...}).
 *
 * struct bpe is built once by bpe_load and is then read-only: any thread may encode with it,
 * each thread through its own struct bpe_ctx (merge scratch and a bounded word cache).
 * Words are raw bytes (the byte-level mapping is folded into the tables), ids are int32. */
#ifndef VELA_TOKENIZER_BPE_H
#define VELA_TOKENIZER_BPE_H

#include "util/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bpe;
struct bpe_ctx;

/* Growable id array the caller owns (free with tok_ids_free). */
struct tok_ids {
    int32_t *ids;
    int64_t n;
    int64_t cap;
};
int tok_ids_push(struct tok_ids *v, int32_t id);
void tok_ids_free(struct tok_ids *v);

/* The file text of model.vocab and model.merges (borrowed), read without a JSON tree. */
struct bpe_raw {
    const char *vocab;
    size_t vocab_len;
    const char *merges;
    size_t merges_len;
};

/* Builds the model from the "model" object of a tokenizer.json (borrowed). With raw, vocab
 * and merges come from raw instead of model. Accepts merges as "a b" strings or ["a", "b"]
 * pairs; rejects dropout, byte fallback, subword prefixes and suffixes with VELA_EUNSUP.
 * *out is freed with bpe_free. */
int bpe_load(const json_t *model, const struct bpe_raw *raw, struct bpe **out, struct err *e);
void bpe_free(struct bpe *b);

/* One past the largest vocab id. */
int32_t bpe_n_ids(const struct bpe *b);
/* Id of a token given in its byte-level string form (as vocab keys are written), or -1. */
int32_t bpe_token_to_id(const struct bpe *b, const char *s, size_t n);
/* The byte-level string form of id (borrowed, not NUL-terminated), or NULL when absent. */
const char *bpe_id_to_token(const struct bpe *b, int32_t id, size_t *n);
int32_t bpe_n_merges(const struct bpe *b);

/* Per-thread scratch; bpe_ctx_new returns NULL when out of memory. */
struct bpe_ctx *bpe_ctx_new(const struct bpe *b);
void bpe_ctx_free(struct bpe_ctx *c);

/* Appends the ids of one pre-token (raw bytes w[0..n), n >= 1) to out. Returns 0 or
 * VELA_ENOMEM. Bytes whose single-byte token is missing from the vocab are dropped, as the
 * reference does without an unk token. */
int bpe_encode_word(struct bpe_ctx *c, const unsigned char *w, size_t n, struct tok_ids *out);

#endif
