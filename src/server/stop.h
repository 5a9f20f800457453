/* stop: stop strings, matched on the detokenized text of one sequence as it streams (vLLM's
 * frontend check_stop_strings, with the stream hold-back of its output processor).
 *
 * The caller feeds the text pieces of one sequence in order (detok_feed's output) and gets
 * back, per piece, the text that may be shown now. Text that could still be the start of a
 * stop string is held back, so a client never sees part of a stop string that later
 * completes; stop_finish releases it when the sequence ends without a match.
 *
 * Which stop string wins (vLLM): after each piece, the stop strings are tried in the order
 * the request lists them, each at its first occurrence ending inside the new piece; the first
 * string found wins. A string completed by an earlier piece has already stopped the sequence,
 * so among strings completed by the same piece the list order decides, not the position.
 * The cut follows vLLM: the text after the stop string is dropped, and the stop string itself
 * is dropped too unless include_stop_str_in_output (then nothing is held back either, as in
 * vLLM: a prefix that never completes is shown anyway).
 *
 * Matching is on bytes. Stop strings are valid UTF-8 and so is detok's text, and UTF-8 is
 * self-synchronizing, so a byte match is a match of whole characters.
 *
 * Ownership: struct stop_matcher is caller storage (stop_init / stop_deinit) holding copies of
 * the stop strings; the text stop_feed returns points into it and is valid until the next call.
 * Thread: one thread per matcher (the server thread that streams the sequence). */
#ifndef VELA_SERVER_STOP_H
#define VELA_SERVER_STOP_H

#include "util/err.h"
#include "util/limits.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stop_matcher {
    char *strs[VELA_STOP_MAX_STRINGS]; /* owned NUL-terminated copies */
    size_t lens[VELA_STOP_MAX_STRINGS];
    int32_t n_strs;
    bool include;                   /* include_stop_str_in_output */
    char *buf;                      /* (cap): held-back text, then the piece being checked */
    size_t n_ctx, n_held, off, cap; /* kept text: buf[off, off + n_ctx + n_held) (stop.c) */
    int32_t hit;                    /* index of the stop string that matched, -1 while none */
};

/* What one call released. */
struct stop_out {
    const char *text; /* the bytes to show now (inside the matcher), may be empty */
    size_t n_text;
    int32_t hit; /* the stop string that matched in this call, else -1 */
};

/* Copies strs[0..n) (each non-empty, at most VELA_STOP_MAX_BYTES, valid UTF-8; n at most
 * VELA_STOP_MAX_STRINGS; n == 0 is a matcher that never matches). The message names the
 * string that broke a rule. VELA_EINVAL, VELA_ELIMIT, VELA_ENOMEM; on failure m holds nothing. */
int stop_init(struct stop_matcher *m, const char *const *strs, int32_t n, bool include,
              struct err *e);
void stop_deinit(struct stop_matcher *m); /* accepts a zeroed or deinitialised matcher */

/* Feeds the next n bytes of text. *o gets the text now safe to show and, when this piece
 * completed a stop string, its index (the sequence is over: the caller aborts the request).
 * After a match every further call releases nothing. VELA_ENOMEM. */
int stop_feed(struct stop_matcher *m, const char *piece, size_t n, struct stop_out *o,
              struct err *e);
/* The sequence ended (eos, length, abort) without a match: releases the held-back text. */
void stop_finish(struct stop_matcher *m, struct stop_out *o);

/* The stop string that matched (borrowed from m), or NULL. */
const char *stop_matched(const struct stop_matcher *m);

#endif
