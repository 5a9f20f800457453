/* tiny_tokenizer: the small byte-level BPE tokenizer vela trains itself for the tiny and
 * demo models, written as a tokenizer.json with the same structure as the real Qwen2.5
 * file (NFC normalizer, Split(regex, Isolated) + ByteLevel pre-tokenizer, ByteLevel
 * post-processor and decoder, BPE model, the 22 Qwen added tokens with their real flags).
 *
 * Ids: 0..255 are the 256 byte symbols in the GPT-2 bytes_to_unicode order (as in the real
 * vocab), then one id per new merged string, then the added tokens. Training is fully
 * deterministic (no hash-order or locale dependence), so every machine writes the same
 * bytes. Only this file writes tokenizers; reading them is the tokenizer module's job.
 * Any thread; no global state. */
#ifndef VELA_MODEL_TINY_TOKENIZER_H
#define VELA_MODEL_TINY_TOKENIZER_H

#include "util/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Merges the tiny tokenizer learns from the built-in corpus (fewer if pairs run out). */
#define TT_MAX_MERGES 400
#define TT_N_ADDED    22

struct tt_added {
    const char *content; /* "<|endoftext|>" ... */
    bool special;        /* the real tokenizer's "special" flag (model spec §8) */
};

/* The 22 Qwen added tokens in id order (static table). */
const struct tt_added *tt_qwen_added(void);

struct tt_bpe {
    char **tokens;        /* id -> byte-level string (UTF-8, NUL-terminated); owned */
    int32_t n_tokens;     /* 256 byte symbols + merged strings (added tokens excluded) */
    int32_t (*merges)[2]; /* rank -> (left id, right id); owned */
    int32_t n_merges;
};

/* The GPT-2 byte-to-unicode table: the code point that stands for byte b. */
uint32_t tt_byte_codepoint(uint8_t b);
/* Id of byte b's symbol (its position in bytes_to_unicode order). */
int32_t tt_byte_id(uint8_t b);

/* End of the pre-token that starts at text[i] (i < len), following the Qwen split regex
 * for ASCII; bytes >= 0x80 count as letters (the corpus is ASCII). */
size_t tt_pretok_next(const char *text, size_t len, size_t i);

/* Learns up to max_merges merges from text: counts adjacent symbol pairs inside each
 * pre-token (weighted by the pre-token's frequency), merges the most frequent pair, ties
 * broken by the byte order of (left string, right string); stops when no pair occurs
 * twice. *out is built fresh; free it with tt_bpe_deinit (also safe after failure). */
int tt_train(struct tt_bpe *out, const char *text, size_t len, int32_t max_merges, struct err *e);
void tt_bpe_deinit(struct tt_bpe *b);

/* The whole tokenizer.json for b plus the Qwen added tokens (ids n_tokens ...); *out is a
 * new reference the caller json_decref()s. */
int tt_to_json(const struct tt_bpe *b, json_t **out, struct err *e);

/* Trains on the built-in corpus and returns the tokenizer.json (new reference). */
int tt_build_json(json_t **out, struct err *e);

/* The built-in training text (static). */
const char *tt_corpus(void);
size_t tt_corpus_len(void);

#endif
