/* bytelevel: the GPT-2 byte <-> character table, a growable byte buffer, and UTF-8 decoding
 * with replacement exactly as Python's bytes.decode("utf-8", errors="replace") (and Rust's
 * String::from_utf8_lossy) do it: each maximal ill-formed subpart becomes one U+FFFD.
 *
 * Pure functions over caller-owned buffers; any thread. */
#ifndef VELA_TOKENIZER_BYTELEVEL_H
#define VELA_TOKENIZER_BYTELEVEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Growable byte string. Caller owns p (free with tok_text_free); p is kept NUL-terminated
 * whenever it is non-NULL, so it can be printed directly. */
struct tok_text {
    char *p;
    size_t n;   /* bytes used, excluding the NUL */
    size_t cap; /* bytes allocated */
};

/* Appends n bytes; returns 0 or VELA_ENOMEM (text unchanged on failure). */
int tok_text_append(struct tok_text *t, const void *data, size_t n);
void tok_text_free(struct tok_text *t);

/* Code point the GPT-2 table maps byte b to (b itself for 33..126, 161..172, 174..255). */
uint32_t bl_byte_to_cp(unsigned char b);
/* Inverse: the byte for code point cp, or -1 when cp is not in the table. */
int bl_cp_to_byte(uint32_t cp);

/* Result of looking at the UTF-8 sequence that starts a buffer. */
enum { U8_OK = 0, U8_BAD = 1, U8_SHORT = 2 };
/* Classifies the sequence at s[0..n) (n >= 1): U8_OK, a well-formed character of *len bytes;
 * U8_BAD, a maximal ill-formed subpart of *len bytes (one U+FFFD); U8_SHORT, a well-formed
 * prefix that runs to the end of the buffer (*len = n) and may complete with more bytes. */
int u8_classify(const unsigned char *s, size_t n, size_t *len);

/* Appends the lossy UTF-8 decoding of s[0..n) to out. When final is false, a trailing
 * well-formed but incomplete sequence is not consumed: *consumed tells how many bytes were
 * (the rest must be offered again with more bytes). When final is true everything is
 * consumed, a trailing incomplete sequence giving one U+FFFD. Returns 0 or VELA_ENOMEM. */
int u8_lossy_append(struct tok_text *out, const unsigned char *s, size_t n, bool final,
                    size_t *consumed);

/* True when s[0..n) is well-formed UTF-8 (no surrogates, no overlongs, <= U+10FFFF). */
bool u8_valid(const unsigned char *s, size_t n);

#endif
