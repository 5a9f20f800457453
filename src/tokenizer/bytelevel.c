/* bytelevel: GPT-2 byte table and lossy UTF-8 decoding.
 *
 * The table (bytes_to_unicode in the GPT-2 reference): printable bytes 33..126, 161..172 and
 * 174..255 stand for themselves; the other 68 bytes (0..32, 127..160, 173) map, in increasing
 * byte order, to U+0100, U+0101, ...
 *
 * Invariants:
 *  1. bl_cp_to_byte(bl_byte_to_cp(b)) == b for every byte b.
 *  2. u8_lossy_append(final=true) produces the same text as Python's
 *     bytes.decode("utf-8", errors="replace"): one U+FFFD per maximal ill-formed subpart
 *     (Unicode 15, section 3.9, "U+FFFD substitution of maximal subparts").
 *  3. Feeding a byte string in pieces with final=false, re-offering unconsumed bytes, then
 *     ending with final=true gives the same text as one final=true call.
 * Any thread. */
#include "tokenizer/bytelevel.h"

#include "util/err.h"

#include <stdlib.h>
#include <string.h>

int tok_text_append(struct tok_text *t, const void *data, size_t n) {
    if (t->n + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 64;
        while (cap < t->n + n + 1) {
            if (cap > SIZE_MAX / 2) return VELA_ENOMEM;
            cap *= 2;
        }
        char *p = realloc(t->p, cap);
        if (!p) return VELA_ENOMEM;
        t->p = p;
        t->cap = cap;
    }
    if (n) memcpy(t->p + t->n, data, n);
    t->n += n;
    t->p[t->n] = '\0';
    return 0;
}

void tok_text_free(struct tok_text *t) {
    if (!t) return;
    free(t->p);
    t->p = NULL;
    t->n = t->cap = 0;
}

static bool bl_printable(unsigned b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
}

uint32_t bl_byte_to_cp(unsigned char b) {
    if (bl_printable(b)) return b;
    /* rank of b among the non-printable bytes */
    uint32_t k;
    if (b <= 32)
        k = b; /* 0..32   -> 0..32  */
    else if (b <= 160)
        k = 33 + (b - 127); /* 127..160 -> 33..66 */
    else
        k = 67; /* 173 */
    return 256 + k;
}

int bl_cp_to_byte(uint32_t cp) {
    if (cp < 256) return bl_printable(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    uint32_t k = cp - 256;
    if (k <= 32) return (int)k;
    if (k <= 66) return (int)(127 + (k - 33));
    return 173;
}

int u8_classify(const unsigned char *s, size_t n, size_t *len) {
    unsigned c = s[0];
    if (c < 0x80) {
        *len = 1;
        return U8_OK;
    }
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c == 0xE0)
        need = 2, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
        need = 2;
    else if (c == 0xED)
        need = 2, hi = 0x9F; /* no surrogates */
    else if (c == 0xF0)
        need = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
        need = 3;
    else if (c == 0xF4)
        need = 3, hi = 0x8F; /* <= U+10FFFF */
    else {
        *len = 1;
        return U8_BAD;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n) {
            *len = n;
            return U8_SHORT;
        }
        unsigned b = s[i];
        if (b < lo || b > hi) {
            *len = i;
            return U8_BAD;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    *len = need + 1;
    return U8_OK;
}

static const char k_fffd[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

int u8_lossy_append(struct tok_text *out, const unsigned char *s, size_t n, bool final,
                    size_t *consumed) {
    size_t i = 0, run = 0; /* s[run..i) is well-formed and not yet copied */
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t len;
        int k = u8_classify(s + i, n - i, &len);
        if (k == U8_OK) {
            i += len;
            continue;
        }
        if (k == U8_SHORT && !final) break;
        if (tok_text_append(out, s + run, i - run) != 0) return VELA_ENOMEM;
        if (tok_text_append(out, k_fffd, 3) != 0) return VELA_ENOMEM;
        i += len;
        run = i;
    }
    if (tok_text_append(out, s + run, i - run) != 0) return VELA_ENOMEM;
    if (consumed) *consumed = i;
    return 0;
}

bool u8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t len;
        if (u8_classify(s + i, n - i, &len) != U8_OK) return false;
        i += len;
    }
    return true;
}
