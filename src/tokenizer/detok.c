/* detok: incremental detokenization (see detok.h).
 *
 * Invariants:
 *  1. pend holds only a well-formed but incomplete UTF-8 prefix (0..3 bytes): anything that
 *     is already decidable (complete characters, ill-formed subparts) has been emitted.
 *  2. Hence, for any split of an id sequence, the concatenated pieces equal tok_decode on the
 *     whole sequence: lossy decoding of a prefix never changes once more bytes arrive,
 *     except for a trailing incomplete sequence, which is exactly what pend holds back.
 * One thread per struct detok. */
#include "tokenizer/detok.h"

#include <string.h>

void detok_init(struct detok *d, const struct tokenizer *tok, bool skip_special) {
    memset(d, 0, sizeof *d);
    d->tok = tok;
    d->skip_special = skip_special;
}

void detok_deinit(struct detok *d) {
    if (d) tok_text_free(&d->pend);
}

int detok_feed(struct detok *d, int32_t id, struct tok_text *out, struct err *e) {
    size_t nb;
    const unsigned char *b = tok_id_bytes(d->tok, id, d->skip_special, &nb);
    if (nb == 0) return 0;
    const unsigned char *src = b;
    size_t n = nb;
    if (d->pend.n > 0) { /* rare: a character split across tokens */
        if (tok_text_append(&d->pend, b, nb) != 0)
            return err_set(e, VELA_ENOMEM, "detokenize: out of memory");
        src = (const unsigned char *)d->pend.p;
        n = d->pend.n;
    }
    size_t used;
    if (u8_lossy_append(out, src, n, false, &used) != 0)
        return err_set(e, VELA_ENOMEM, "detokenize: out of memory");
    unsigned char rest[4];
    size_t nr = n - used; /* <= 3 by u8_lossy_append's contract */
    memcpy(rest, src + used, nr);
    d->pend.n = 0;
    if (nr && tok_text_append(&d->pend, rest, nr) != 0)
        return err_set(e, VELA_ENOMEM, "detokenize: out of memory");
    return 0;
}

int detok_flush(struct detok *d, struct tok_text *out, struct err *e) {
    int rc = 0;
    if (d->pend.n > 0 &&
        u8_lossy_append(out, (const unsigned char *)d->pend.p, d->pend.n, true, NULL) != 0)
        rc = err_set(e, VELA_ENOMEM, "detokenize: out of memory");
    d->pend.n = 0;
    return rc;
}
