/* detok: incremental detokenization for streaming. Feeding ids one at a time yields text
 * pieces whose concatenation equals tok_decode of all of them: a UTF-8 character split
 * across tokens is held back until complete, and detok_flush ends the stream, turning a
 * still-incomplete sequence into U+FFFD exactly as the full decode would.
 *
 * A struct detok is caller storage (detok_init / detok_deinit) used by one thread; it
 * borrows the tokenizer, which must outlive it. */
#ifndef VELA_TOKENIZER_DETOK_H
#define VELA_TOKENIZER_DETOK_H

#include "tokenizer/tokenizer.h"

#include <stdbool.h>
#include <stdint.h>

struct detok {
    const struct tokenizer *tok; /* borrowed */
    bool skip_special;
    struct tok_text pend; /* bytes of an incomplete UTF-8 sequence, at most 3 */
};

void detok_init(struct detok *d, const struct tokenizer *tok, bool skip_special);
void detok_deinit(struct detok *d);

/* Appends the text that id completes to out (possibly nothing). Unknown ids add nothing.
 * Returns 0 or VELA_ENOMEM. */
int detok_feed(struct detok *d, int32_t id, struct tok_text *out, struct err *e);
/* Ends the stream: appends U+FFFD if an incomplete sequence is pending, and resets d so it
 * can start a new stream. */
int detok_flush(struct detok *d, struct tok_text *out, struct err *e);

#endif
