/* jinja_lex: template source -> tokens, matching jinja2's lexer under the environment
 * transformers builds (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False).
 *
 * Whitespace rules, as jinja2.lexer applies them:
 *  - "{%-", "{{-", "{#-" strip all whitespace (Python's str.isspace) before the tag;
 *    "-%}", "-}}", "-#}" strip all whitespace after it.
 *  - trim_blocks: one "\n" right after "%}" or "#}" is dropped (not after "}}", not after "+%}").
 *  - lstrip_blocks: spaces/tabs between the start of a line and "{%" or "{#" are dropped unless
 *    the tag opens with "{%+"; "start of a line" includes the template start and the point right
 *    after a tag whose consumed text ended with "\n".
 *  - {% raw %}...{% endraw %} becomes one text token.
 * Invariants: tokens come out in source order, line/col are 1-based, TEXT tokens point into the
 * normalized source (owned by the pool) and are never empty. */
#include "tokenizer/jinja_internal.h"

#include "util/limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lexer {
    struct jpool *pool;
    const char *src;
    size_t n, pos;
    struct jtok *toks;
    size_t n_toks, cap;
    size_t lc_off; /* line/col are known at this offset */
    int line, col;
    struct err *e;
};

static void linecol(struct lexer *L, size_t off, int *line, int *col) {
    for (; L->lc_off < off && L->lc_off < L->n; L->lc_off++) {
        if (L->src[L->lc_off] == '\n') {
            L->line++;
            L->col = 1;
        } else if (((unsigned char)L->src[L->lc_off] & 0xC0) != 0x80) {
            L->col++;
        }
    }
    *line = L->line;
    *col = L->col;
}

static int lex_err(struct lexer *L, size_t off, const char *msg) {
    int line, col;
    linecol(L, off, &line, &col);
    return err_set(L->e, VELA_EFORMAT, "template line %d col %d: %s", line, col, msg);
}

static struct jtok *push(struct lexer *L, enum jt_kind kind, size_t off, const char *s, size_t n) {
    if (L->n_toks == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        struct jtok *t = jpool_alloc(L->pool, cap * sizeof *t);
        if (!t) return NULL;
        if (L->n_toks) memcpy(t, L->toks, L->n_toks * sizeof *t);
        L->toks = t;
        L->cap = cap;
    }
    struct jtok *t = &L->toks[L->n_toks++];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->s = s;
    t->n = n;
    linecol(L, off, &t->line, &t->col);
    return t;
}

static bool ws_at(const char *s, size_t n, size_t i, size_t *len) {
    size_t j = i;
    uint32_t cp = ju8_next(s, n, &j);
    *len = j - i;
    return ju8_is_space(cp);
}

static size_t skip_ws(const char *s, size_t n, size_t i) {
    size_t len;
    while (i < n && ws_at(s, n, i, &len)) i += len;
    return i;
}

/* Length of text once trailing whitespace is stripped (Python's rstrip). */
static size_t rstrip_len(const char *s, size_t n) {
    size_t end = 0, i = 0, len;
    while (i < n) {
        bool sp = ws_at(s, n, i, &len);
        i += len;
        if (!sp) end = i;
    }
    return end;
}

static bool all_ws(const char *s, size_t n) {
    return n > 0 && rstrip_len(s, n) == 0;
}

/* Applies the left-side rules to the text before a tag and emits it. */
static int emit_text(struct lexer *L, size_t start, size_t end, char sign, bool lstrip_ok,
                     bool line_starting) {
    const char *t = L->src + start;
    size_t n = end - start;
    if (sign == '-') {
        n = rstrip_len(t, n);
    } else if (sign != '+' && lstrip_ok) {
        size_t l_pos = 0;
        for (size_t i = n; i > 0; i--)
            if (t[i - 1] == '\n') {
                l_pos = i;
                break;
            }
        if ((l_pos > 0 || line_starting) && all_ws(t + l_pos, n - l_pos)) n = l_pos;
    }
    if (n == 0) return 0;
    return push(L, JT_TEXT, start, t, n) ? 0 : VELA_ENOMEM;
}

/* After a closing tag at L->pos (pointing past "%}" / "#}"): '-' eats whitespace, otherwise
 * trim_blocks eats one newline. Returns line_starting. */
static bool after_close(struct lexer *L, char sign, bool trim) {
    if (sign == '-') {
        size_t p = skip_ws(L->src, L->n, L->pos);
        bool nl = p > L->pos && L->src[p - 1] == '\n';
        L->pos = p;
        return nl;
    }
    if (trim && sign != '+' && L->pos < L->n && L->src[L->pos] == '\n') {
        L->pos++;
        return true;
    }
    return false;
}

static int lex_string(struct lexer *L, size_t start) {
    char q = L->src[start];
    size_t i = start + 1;
    while (i < L->n && L->src[i] != q) i += (L->src[i] == '\\' && i + 1 < L->n) ? 2 : 1;
    if (i >= L->n) return lex_err(L, start, "unterminated string");
    const char *s = L->src + start + 1;
    size_t n = i - start - 1;
    char *d = jpool_alloc(L->pool, n + 1);
    if (!d) return VELA_ENOMEM;
    size_t o = 0;
    for (size_t k = 0; k < n; k++) {
        if (s[k] != '\\' || k + 1 >= n) {
            d[o++] = s[k];
            continue;
        }
        char c = s[++k];
        uint32_t cp = 0;
        int hex = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
        switch (c) {
            case 'n':
                d[o++] = '\n';
                continue;
            case 't':
                d[o++] = '\t';
                continue;
            case 'r':
                d[o++] = '\r';
                continue;
            case '\\':
                d[o++] = '\\';
                continue;
            case '\'':
                d[o++] = '\'';
                continue;
            case '"':
                d[o++] = '"';
                continue;
            case 'a':
                d[o++] = '\a';
                continue;
            case 'b':
                d[o++] = '\b';
                continue;
            case 'f':
                d[o++] = '\f';
                continue;
            case 'v':
                d[o++] = '\v';
                continue;
            case '\n':
                continue;
            default:
                break;
        }
        if (c >= '0' && c <= '7') {
            int m = 0;
            while (m < 3 && k < n && s[k] >= '0' && s[k] <= '7') {
                cp = cp * 8 + (uint32_t)(s[k++] - '0');
                m++;
            }
            k--;
        } else if (hex) {
            if (k + (size_t)hex >= n) return lex_err(L, start, "truncated escape in string");
            for (int m = 0; m < hex; m++) {
                char h = s[k + 1 + (size_t)m];
                int v = (h >= '0' && h <= '9')   ? h - '0'
                        : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                        : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                                 : -1;
                if (v < 0) return lex_err(L, start, "bad escape in string");
                cp = cp * 16 + (uint32_t)v;
            }
            k += (size_t)hex;
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return lex_err(L, start, "escape is not a valid code point");
        } else {
            d[o++] = '\\';
            d[o++] = c;
            continue;
        }
        /* encode cp as UTF-8 (escapes never produce more bytes than they take) */
        if (cp < 0x80)
            d[o++] = (char)cp;
        else if (cp < 0x800) {
            d[o++] = (char)(0xC0 | (cp >> 6));
            d[o++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            d[o++] = (char)(0xE0 | (cp >> 12));
            d[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            d[o++] = (char)(0x80 | (cp & 0x3F));
        } else {
            d[o++] = (char)(0xF0 | (cp >> 18));
            d[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            d[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            d[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    if (!push(L, JT_STRING, start, d, o)) return VELA_ENOMEM;
    L->pos = i + 1;
    return 0;
}

static int lex_number(struct lexer *L, size_t start) {
    const char *s = L->src;
    size_t i = start;
    char buf[64];
    size_t o = 0;
    bool is_float = false;
#define DIGITS()                                                                                   \
    while (i < L->n && ((s[i] >= '0' && s[i] <= '9') ||                                            \
                        (s[i] == '_' && i + 1 < L->n && s[i + 1] >= '0' && s[i + 1] <= '9'))) {    \
        if (s[i] != '_' && o < sizeof buf - 1) buf[o++] = s[i];                                    \
        i++;                                                                                       \
    }
    DIGITS();
    if (i + 1 < L->n && s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9') {
        is_float = true;
        if (o < sizeof buf - 1) buf[o++] = s[i];
        i++;
        DIGITS();
    }
    if (i < L->n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < L->n && (s[j] == '+' || s[j] == '-')) j++;
        if (j < L->n && s[j] >= '0' && s[j] <= '9') {
            is_float = true;
            for (; i < j; i++)
                if (o < sizeof buf - 1) buf[o++] = s[i];
            DIGITS();
        }
    }
#undef DIGITS
    buf[o] = '\0';
    if (o >= sizeof buf - 1) return lex_err(L, start, "number literal too long");
    struct jtok *t = push(L, is_float ? JT_FLOAT : JT_INT, start, s + start, i - start);
    if (!t) return VELA_ENOMEM;
    if (is_float) {
        t->f = strtod(buf, NULL);
    } else {
        unsigned long long v = strtoull(buf, NULL, 10);
        if (o > 18 && (o > 19 || v > (unsigned long long)INT64_MAX))
            return lex_err(L, start, "integer literal too large");
        t->i = (int64_t)v;
    }
    L->pos = i;
    return 0;
}

static const char *const OPS2[] = {"//", "**", "==", "!=", "<=", ">="};
static const char OPS1[] = "+-/*%~[](){}<>=.:|,;";

/* Tokens inside {% %} or {{ }} up to the closing tag; brackets must balance before the close
 * counts, as in jinja2 (so "}}" can close nested dict literals). */
static int lex_tag(struct lexer *L, bool block, bool *line_starting) {
    char stack[VELA_TPL_MAX_NEST];
    size_t depth = 0;
    const char *s = L->src;
    for (;;) {
        L->pos = skip_ws(s, L->n, L->pos);
        size_t p = L->pos;
        if (p >= L->n) return lex_err(L, p, block ? "missing '%}'" : "missing '}}'");
        if (depth == 0) {
            char sign = 0;
            size_t q = p;
            if ((s[q] == '-' || (block && s[q] == '+')) && q + 1 < L->n) sign = s[q++];
            const char *close = block ? "%}" : "}}";
            if (q + 1 < L->n + 0 && s[q] == close[0] && s[q + 1] == close[1]) {
                if (!push(L, block ? JT_BLOCK_END : JT_VAR_END, p, s + p, q + 2 - p))
                    return VELA_ENOMEM;
                L->pos = q + 2;
                *line_starting = after_close(L, sign, block);
                return 0;
            }
        }
        char ch = s[p];
        if (ch == '\'' || ch == '"') {
            int rc = lex_string(L, p);
            if (rc) return rc;
            continue;
        }
        if (ch >= '0' && ch <= '9') {
            int rc = lex_number(L, p);
            if (rc) return rc;
            continue;
        }
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_') {
            size_t q = p;
            while (q < L->n && ((s[q] >= 'a' && s[q] <= 'z') || (s[q] >= 'A' && s[q] <= 'Z') ||
                                (s[q] >= '0' && s[q] <= '9') || s[q] == '_'))
                q++;
            if (!push(L, JT_NAME, p, s + p, q - p)) return VELA_ENOMEM;
            L->pos = q;
            continue;
        }
        size_t oplen = 0;
        for (size_t k = 0; k < sizeof OPS2 / sizeof OPS2[0]; k++)
            if (p + 1 < L->n && s[p] == OPS2[k][0] && s[p + 1] == OPS2[k][1]) oplen = 2;
        if (!oplen && strchr(OPS1, ch) && ch != '\0') oplen = 1;
        if (!oplen) {
            char msg[64];
            snprintf(msg, sizeof msg, "unexpected character '%c'",
                     (ch >= 0x20 && ch < 0x7f) ? ch : '?');
            return lex_err(L, p, msg);
        }
        if (oplen == 1 && (ch == '(' || ch == '[' || ch == '{')) {
            if (depth == sizeof stack) return lex_err(L, p, "brackets nest too deep");
            stack[depth++] = ch == '(' ? ')' : ch == '[' ? ']' : '}';
        } else if (oplen == 1 && (ch == ')' || ch == ']' || ch == '}')) {
            if (depth == 0 || stack[depth - 1] != ch) {
                char msg[32];
                snprintf(msg, sizeof msg, "unexpected '%c'", ch);
                return lex_err(L, p, msg);
            }
            depth--;
        }
        if (!push(L, JT_OP, p, s + p, oplen)) return VELA_ENOMEM;
        L->pos = p + oplen;
    }
}

/* "{% raw %}" (any sign, any spacing) at p? Sets *body to where the raw text starts. */
static bool raw_begin(struct lexer *L, size_t p, size_t *body) {
    const char *s = L->src;
    size_t q = p + 2;
    if (q < L->n && (s[q] == '-' || s[q] == '+')) q++;
    q = skip_ws(s, L->n, q);
    if (L->n - q < 3 || memcmp(s + q, "raw", 3) != 0) return false;
    q = skip_ws(s, L->n, q + 3);
    if (q + 2 < L->n + 0 && s[q] == '-' && q + 2 < L->n && s[q + 1] == '%' && s[q + 2] == '}') {
        *body = skip_ws(s, L->n, q + 3);
        return true;
    }
    if (q + 1 < L->n && s[q] == '%' && s[q + 1] == '}') {
        *body = q + 2;
        return true;
    }
    return false;
}

/* Finds "{% endraw %}" from p; emits the raw text and moves past the tag. */
static int lex_raw(struct lexer *L, size_t open, size_t p, bool *line_starting) {
    const char *s = L->src;
    for (size_t i = p; i + 1 < L->n; i++) {
        if (s[i] != '{' || s[i + 1] != '%') continue;
        size_t q = i + 2;
        char sign = 0;
        if (q < L->n && (s[q] == '-' || s[q] == '+')) sign = s[q++];
        q = skip_ws(s, L->n, q);
        if (L->n - q < 6 || memcmp(s + q, "endraw", 6) != 0) continue;
        q = skip_ws(s, L->n, q + 6);
        char csign = 0;
        if (q < L->n && (s[q] == '-' || s[q] == '+')) csign = s[q++];
        if (q + 1 >= L->n || s[q] != '%' || s[q + 1] != '}') continue;
        int rc = emit_text(L, p, i, sign, true, false);
        if (rc) return rc;
        L->pos = q + 2;
        *line_starting = after_close(L, csign, true);
        return 0;
    }
    return lex_err(L, open, "missing end of raw directive");
}

static int lex_comment(struct lexer *L, size_t open, size_t p, bool *line_starting) {
    const char *s = L->src;
    for (size_t i = p; i + 1 < L->n; i++) {
        if (s[i] != '#' || s[i + 1] != '}') continue;
        char sign = (i > p && (s[i - 1] == '-' || s[i - 1] == '+')) ? s[i - 1] : 0;
        L->pos = i + 2;
        *line_starting = after_close(L, sign, true);
        return 0;
    }
    return lex_err(L, open, "missing end of comment tag");
}

static int lex_all(struct lexer *L) {
    const char *s = L->src;
    bool line_starting = true;
    while (L->pos < L->n) {
        size_t p = L->pos, open = L->n;
        for (size_t i = p; i + 1 < L->n; i++)
            if (s[i] == '{' && (s[i + 1] == '%' || s[i + 1] == '{' || s[i + 1] == '#')) {
                open = i;
                break;
            }
        if (open == L->n) return emit_text(L, p, L->n, 0, false, false);
        char kind = s[open + 1];
        size_t q = open + 2;
        char sign = 0;
        if (q < L->n && (s[q] == '-' || s[q] == '+')) sign = s[q++];
        size_t body;
        int rc;
        if (kind == '%' && raw_begin(L, open, &body)) {
            rc = emit_text(L, p, open, sign, true, line_starting);
            if (rc == 0) rc = lex_raw(L, open, body, &line_starting);
        } else if (kind == '#') {
            rc = emit_text(L, p, open, sign, true, line_starting);
            if (rc == 0) rc = lex_comment(L, open, q, &line_starting);
        } else {
            rc = emit_text(L, p, open, sign, kind == '%', line_starting);
            if (rc == 0 &&
                !push(L, kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, open, s + open, q - open))
                rc = VELA_ENOMEM;
            L->pos = q;
            if (rc == 0) rc = lex_tag(L, kind == '%', &line_starting);
        }
        if (rc) return rc;
    }
    return 0;
}

/* Normalizes newlines ("\r\n" and "\r" become "\n") and drops one trailing newline, as jinja2
 * does before lexing; validates UTF-8. */
static int normalize(struct jpool *pool, const char *src, size_t n, char **out, size_t *n_out,
                     struct err *e) {
    char *d = jpool_alloc(pool, n + 1);
    if (!d) return err_set(e, VELA_ENOMEM, "template: out of memory");
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\r') {
            d[o++] = '\n';
            if (i + 1 < n && src[i + 1] == '\n') i++;
        } else {
            d[o++] = src[i];
        }
    }
    if (o > 0 && d[o - 1] == '\n') o--;
    d[o] = '\0';
    for (size_t i = 0; i < o;) {
        unsigned char c = (unsigned char)d[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = len > 0 && i + len <= o;
        for (size_t k = 1; ok && k < len; k++) ok = ((unsigned char)d[i + k] & 0xC0) == 0x80;
        if (ok && len > 1) {
            size_t j = i;
            uint32_t cp = ju8_next(d, o, &j);
            ok = (len == 2 && cp >= 0x80) ||
                 (len == 3 && cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) ||
                 (len == 4 && cp >= 0x10000 && cp <= 0x10FFFF);
        }
        if (!ok) return err_set(e, VELA_EFORMAT, "template: invalid UTF-8 at byte %zu", i);
        i += len;
    }
    *out = d;
    *n_out = o;
    return 0;
}

int jlex(struct jpool *pool, const char *src, size_t n, struct jtok **out, size_t *n_out,
         struct err *e) {
    struct lexer L = {.pool = pool, .line = 1, .col = 1, .e = e};
    char *norm = NULL;
    int rc = normalize(pool, src, n, &norm, &L.n, e);
    if (rc) return rc;
    L.src = norm;
    rc = lex_all(&L);
    if (rc == VELA_ENOMEM) return err_set(e, VELA_ELIMIT, "template: too large to compile");
    if (rc) return rc;
    if (!push(&L, JT_EOF, L.n, L.src + L.n, 0))
        return err_set(e, VELA_ELIMIT, "template: too large to compile");
    *out = L.toks;
    *n_out = L.n_toks;
    return 0;
}
