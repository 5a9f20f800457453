/* tokjson: see tokjson.h.
 *
 * Invariants:
 *  1. Every index returned is <= n, and every read is guarded by a bound check against n.
 *  2. tj_skip accepts exactly what the JSON grammar allows for the value's extent (strings
 *     are fully validated by tj_string; numbers and literals by their character sets), so a
 *     span it returns can be handed to jansson or to the member parsers unchanged. */
#include "tokenizer/tokjson.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

size_t tj_ws(const char *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

static int hex4(const char *s, size_t n, size_t i, uint32_t *v) {
    if (i + 4 > n) return -1;
    *v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[i + (size_t)k];
        uint32_t d;
        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return -1;
        *v = *v << 4 | d;
    }
    return 0;
}

static int put_cp(struct tok_text *out, uint32_t cp) {
    unsigned char b[4];
    size_t k;
    if (cp < 0x80)
        b[0] = (unsigned char)cp, k = 1;
    else if (cp < 0x800)
        b[0] = (unsigned char)(0xC0 | cp >> 6), b[1] = 0x80 | (cp & 0x3F), k = 2;
    else if (cp < 0x10000)
        b[0] = (unsigned char)(0xE0 | cp >> 12), b[1] = 0x80 | (cp >> 6 & 0x3F),
        b[2] = 0x80 | (cp & 0x3F), k = 3;
    else
        b[0] = (unsigned char)(0xF0 | cp >> 18), b[1] = 0x80 | (cp >> 12 & 0x3F),
        b[2] = 0x80 | (cp >> 6 & 0x3F), b[3] = 0x80 | (cp & 0x3F), k = 4;
    return tok_text_append(out, b, k);
}

long long tj_string(const char *s, size_t n, size_t i, struct tok_text *out) {
    if (i >= n || s[i] != '"') return -1;
    i++;
    size_t run = i, start = out->n;
    for (;;) {
        if (i >= n) return -1;
        unsigned char c = (unsigned char)s[i];
        if (c == '"') break;
        if (c < 0x20) return -1;
        if (c != '\\') {
            i++;
            continue;
        }
        if (tok_text_append(out, s + run, i - run) != 0 || i + 1 >= n) return -1;
        char x = s[i + 1];
        const char *simple = strchr("\"\\/bfnrt", x);
        if (x != '\0' && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            if (tok_text_append(out, &map[simple - "\"\\/bfnrt"], 1) != 0) return -1;
            i += 2;
        } else if (x == 'u') {
            uint32_t cp, lo;
            if (hex4(s, n, i + 2, &cp) != 0) return -1;
            i += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return -1;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u' || hex4(s, n, i + 2, &lo) != 0 ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return -1;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            if (put_cp(out, cp) != 0) return -1;
        } else {
            return -1;
        }
        run = i;
    }
    if (tok_text_append(out, s + run, i - run) != 0) return -1;
    if (!u8_valid((const unsigned char *)out->p + start, out->n - start)) return -1;
    return (long long)i + 1;
}

long long tj_skip(const char *s, size_t n, size_t i) {
    int depth = 0;
    struct tok_text scratch = {0};
    long long r = -1;
    for (;;) {
        i = tj_ws(s, n, i);
        if (i >= n) break;
        char c = s[i];
        if (c == '{' || c == '[') {
            depth++;
            i++;
            continue; /* separators and closers are handled below */
        }
        if (c == '}' || c == ']') {
            if (--depth < 0) break;
            i++;
        } else if (c == '"') {
            scratch.n = 0;
            long long k = tj_string(s, n, i, &scratch);
            if (k < 0) break;
            i = (size_t)k;
        } else if (c != '\0' && strchr("-0123456789tfn", c)) {
            size_t k = i; /* extent only: jansson or the member parsers validate the text */
            while (i < n && s[i] != '\0' && strchr("+-.0123456789eEtruefalsn", s[i])) i++;
            if (i == k) break;
        } else if ((c == ',' || c == ':') && depth > 0) {
            i++;
            continue;
        } else {
            break;
        }
        if (depth == 0) {
            r = (long long)i;
            break;
        }
    }
    tok_text_free(&scratch);
    return r;
}

int tj_member(const char *s, size_t n, size_t obj, const char *key, size_t *vs, size_t *ve) {
    size_t i = tj_ws(s, n, obj);
    if (i >= n || s[i] != '{') return -1;
    i = tj_ws(s, n, i + 1);
    if (i < n && s[i] == '}') return 0;
    struct tok_text k = {0};
    int r = -1;
    for (;;) {
        k.n = 0;
        long long e = tj_string(s, n, i, &k);
        if (e < 0) break;
        i = tj_ws(s, n, (size_t)e);
        if (i >= n || s[i] != ':') break;
        i = tj_ws(s, n, i + 1);
        long long v = tj_skip(s, n, i);
        if (v < 0) break;
        if (k.n == strlen(key) && memcmp(k.p, key, k.n) == 0) {
            *vs = i;
            *ve = (size_t)v;
            r = 1;
            break;
        }
        i = tj_ws(s, n, (size_t)v);
        if (i < n && s[i] == ',') {
            i = tj_ws(s, n, i + 1);
            continue;
        }
        if (i < n && s[i] == '}') r = 0;
        break;
    }
    tok_text_free(&k);
    return r;
}
