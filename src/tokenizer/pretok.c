/* pretok: normalizer and regex pre-tokenizer, matching HF tokenizers for the configurations
 * byte-level BPE models use.
 *
 * Normalizers: NFC, NFD, NFKC, NFKD, and Sequence of those (utf8proc_map with the
 * corresponding options); null means none. Pre-tokenizers: Split with behavior Isolated and
 * invert false (every match is a piece, and so is any text between matches), ByteLevel as the
 * last step with add_prefix_space false (use_regex true adds the GPT-2 split), or a Sequence
 * of those. The byte-level mapping itself is folded into the BPE tables (see bpe.c).
 *
 * Invariants:
 *  1. The spans of pretok_split are non-empty, in order, and cover the text exactly.
 *  2. Text fed to PCRE2 is valid UTF-8, so matching skips PCRE2's own UTF check.
 *  3. Normalization reproduces the reference's tables, not current Unicode: the code points
 *     of nfc_compat.h (added to Unicode after the reference's tables) are left untouched and
 *     the text on either side is normalized separately.
 * Threads: struct pretok read-only; a ctx belongs to one thread. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretok.h"

#include "tokenizer/bytelevel.h"
#include "tokenizer/nfc_compat.h"

#include <pcre2.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define PRETOK_MAX_STEPS 4 /* regex splits in a Sequence; real files use one or two */
#define NORM_MAX_STEPS   4

/* The GPT-2 pattern ByteLevel(use_regex=true) splits with (pre_tokenizers/byte_level.rs). */
static const char k_gpt2_re[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

struct pretok {
    pcre2_code *re[PRETOK_MAX_STEPS];
    bool jit[PRETOK_MAX_STEPS];
    int n_re;
    int norm[NORM_MAX_STEPS]; /* utf8proc option sets, applied in order */
    int n_norm;
    bool nfc_only; /* lets text below U+0300 skip normalization (it is NFC already) */
};

struct pretok_ctx {
    const struct pretok *p;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    struct tok_text norm[2]; /* normalized text, alternating between steps */
    struct pretok_span *a, *b;
    size_t cap_a, cap_b;
};

static int add_norm(struct pretok *p, const json_t *n, struct err *e) {
    const char *t = json_string_value(json_object_get(n, "type"));
    if (!t) return err_set(e, VELA_EFORMAT, "normalizer: missing \"type\"");
    if (strcmp(t, "Sequence") == 0) {
        const json_t *list = json_object_get(n, "normalizers");
        if (!json_is_array(list))
            return err_set(e, VELA_EFORMAT, "normalizer.normalizers: expected an array");
        for (size_t i = 0; i < json_array_size(list); i++) {
            int rc = add_norm(p, json_array_get(list, i), e);
            if (rc != 0) return rc;
        }
        return 0;
    }
    int opt = UTF8PROC_STABLE;
    if (strcmp(t, "NFC") == 0)
        opt |= UTF8PROC_COMPOSE;
    else if (strcmp(t, "NFD") == 0)
        opt |= UTF8PROC_DECOMPOSE;
    else if (strcmp(t, "NFKC") == 0)
        opt |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    else if (strcmp(t, "NFKD") == 0)
        opt |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
    else
        return err_set(e, VELA_EUNSUP, "normalizer: type \"%s\" is not supported", t);
    if (p->n_norm == NORM_MAX_STEPS)
        return err_set(e, VELA_ELIMIT, "normalizer: more than %d steps", NORM_MAX_STEPS);
    p->norm[p->n_norm++] = opt;
    return 0;
}

static int add_regex(struct pretok *p, const char *pat, size_t len, bool literal, struct err *e) {
    if (p->n_re == PRETOK_MAX_STEPS)
        return err_set(e, VELA_ELIMIT, "pre_tokenizer: more than %d splits", PRETOK_MAX_STEPS);
    int code;
    PCRE2_SIZE where;
    uint32_t opt = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, opt, &code, &where, NULL);
    if (!re) {
        PCRE2_UCHAR msg[120];
        pcre2_get_error_message(code, msg, sizeof msg);
        return err_set(e, VELA_EFORMAT, "pre_tokenizer: regex at offset %zu: %s", (size_t)where,
                       (const char *)msg);
    }
    p->jit[p->n_re] = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
    p->re[p->n_re++] = re;
    return 0;
}

static int add_pretok(struct pretok *p, const json_t *t, bool *saw_bytelevel, struct err *e) {
    const char *type = json_string_value(json_object_get(t, "type"));
    if (!type) return err_set(e, VELA_EFORMAT, "pre_tokenizer: missing \"type\"");
    if (*saw_bytelevel)
        return err_set(e, VELA_EUNSUP, "pre_tokenizer: %s after ByteLevel is not supported", type);
    if (strcmp(type, "Sequence") == 0) {
        const json_t *list = json_object_get(t, "pretokenizers");
        if (!json_is_array(list))
            return err_set(e, VELA_EFORMAT, "pre_tokenizer.pretokenizers: expected an array");
        for (size_t i = 0; i < json_array_size(list); i++) {
            int rc = add_pretok(p, json_array_get(list, i), saw_bytelevel, e);
            if (rc != 0) return rc;
        }
        return 0;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        if (json_is_true(json_object_get(t, "add_prefix_space")))
            return err_set(e, VELA_EUNSUP,
                           "pre_tokenizer: ByteLevel add_prefix_space is not "
                           "supported");
        *saw_bytelevel = true;
        const json_t *ur = json_object_get(t, "use_regex");
        if (ur && json_is_false(ur)) return 0;
        return add_regex(p, k_gpt2_re, sizeof k_gpt2_re - 1, false, e);
    }
    if (strcmp(type, "Split") == 0) {
        const char *beh = json_string_value(json_object_get(t, "behavior"));
        if (!beh || strcmp(beh, "Isolated") != 0)
            return err_set(e, VELA_EUNSUP, "pre_tokenizer: Split behavior \"%s\" is not supported",
                           beh ? beh : "?");
        if (json_is_true(json_object_get(t, "invert")))
            return err_set(e, VELA_EUNSUP, "pre_tokenizer: Split invert is not supported");
        const json_t *pat = json_object_get(t, "pattern");
        const json_t *rx = json_object_get(pat, "Regex"), *str = json_object_get(pat, "String");
        if (json_is_string(rx))
            return add_regex(p, json_string_value(rx), json_string_length(rx), false, e);
        if (json_is_string(str))
            return add_regex(p, json_string_value(str), json_string_length(str), true, e);
        return err_set(e, VELA_EFORMAT, "pre_tokenizer: Split needs pattern.Regex or .String");
    }
    return err_set(e, VELA_EUNSUP, "pre_tokenizer: type \"%s\" is not supported", type);
}

int pretok_load(const json_t *normalizer, const json_t *pre_tokenizer, struct pretok **out,
                struct err *e) {
    struct pretok *p = calloc(1, sizeof *p);
    if (!p) return err_set(e, VELA_ENOMEM, "pretok: out of memory");
    int rc = 0;
    if (normalizer && !json_is_null(normalizer)) rc = add_norm(p, normalizer, e);
    bool saw_bl = false;
    if (rc == 0 && (!pre_tokenizer || json_is_null(pre_tokenizer)))
        rc = err_set(e, VELA_EUNSUP, "pre_tokenizer: null (a byte-level BPE needs ByteLevel)");
    if (rc == 0) rc = add_pretok(p, pre_tokenizer, &saw_bl, e);
    if (rc == 0 && !saw_bl)
        rc = err_set(e, VELA_EUNSUP,
                     "pre_tokenizer: no ByteLevel step (only byte-level BPE is "
                     "supported)");
    if (rc != 0) {
        pretok_free(p);
        return rc;
    }
    p->nfc_only = true;
    for (int i = 0; i < p->n_norm; i++)
        if (p->norm[i] != (UTF8PROC_STABLE | UTF8PROC_COMPOSE)) p->nfc_only = false;
    *out = p;
    return 0;
}

void pretok_free(struct pretok *p) {
    if (!p) return;
    for (int i = 0; i < p->n_re; i++) pcre2_code_free(p->re[i]);
    free(p);
}

struct pretok_ctx *pretok_ctx_new(const struct pretok *p) {
    struct pretok_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->p = p;
    c->md = pcre2_match_data_create(4, NULL);
    c->mctx = pcre2_match_context_create(NULL);
    c->jstack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
    if (!c->md || !c->mctx || !c->jstack) {
        pretok_ctx_free(c);
        return NULL;
    }
    pcre2_jit_stack_assign(c->mctx, NULL, c->jstack);
    /* The default match limit (10 million steps) trips on whitespace runs of about that many
     * bytes (\s*[\r\n]+ backtracks over the run once); the patterns in use backtrack at most
     * linearly, and the input is bounded by VELA_TOK_MAX_INPUT_BYTES, so lift it. */
    pcre2_set_match_limit(c->mctx, UINT32_MAX);
    return c;
}

void pretok_ctx_free(struct pretok_ctx *c) {
    if (!c) return;
    pcre2_match_data_free(c->md);
    pcre2_match_context_free(c->mctx);
    pcre2_jit_stack_free(c->jstack);
    tok_text_free(&c->norm[0]);
    tok_text_free(&c->norm[1]);
    free(c->a);
    free(c->b);
    free(c);
}

/* Whether HF's normalizer lacks cp (see nfc_compat.h): such a code point stays as it is and
 * acts as a starter nothing composes with, so text is normalized around it. */
static bool nfc_compat_has(uint32_t cp) {
    size_t lo = 0, hi = sizeof k_nfc_compat / sizeof k_nfc_compat[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < k_nfc_compat[mid][0])
            hi = mid;
        else if (cp > k_nfc_compat[mid][1])
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

/* Appends utf8proc_map(s[0..n), opt) to out. */
static int map_append(struct tok_text *out, const char *s, size_t n, int opt, struct err *e) {
    if (n == 0) return 0;
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst, opt);
    if (r < 0) return err_set(e, VELA_EFORMAT, "normalizer: %s", utf8proc_errmsg(r));
    int rc = tok_text_append(out, dst, (size_t)r);
    free(dst);
    return rc ? err_set(e, VELA_ENOMEM, "normalizer: out of memory") : 0;
}

/* One normalization step of s[0..n) into out (cleared first). */
static int normalize_step(const char *s, size_t n, int opt, struct tok_text *out, struct err *e) {
    out->n = 0;
    size_t run = 0, i = 0;
    while (i < n) {
        unsigned char b = (unsigned char)s[i];
        if (b < 0xCC) { /* below U+0300 or a continuation byte: never listed */
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) k = 1;
        if (cp >= 0 && nfc_compat_has((uint32_t)cp)) {
            int rc = map_append(out, s + run, i - run, opt, e);
            if (rc == 0 && tok_text_append(out, s + i, (size_t)k) != 0)
                rc = err_set(e, VELA_ENOMEM, "normalizer: out of memory");
            if (rc != 0) return rc;
            run = i + (size_t)k;
        }
        i += (size_t)k;
    }
    int rc = map_append(out, s + run, n - run, opt, e);
    if (rc == 0 && tok_text_append(out, "", 0) != 0)
        rc = err_set(e, VELA_ENOMEM, "normalizer: out of memory");
    return rc;
}

int pretok_normalize(struct pretok_ctx *c, const char *s, size_t n, const char **out, size_t *out_n,
                     struct err *e) {
    const struct pretok *p = c->p;
    *out = s;
    *out_n = n;
    if (p->n_norm == 0) return 0;
    /* Fast path: code points below U+0300 (lead bytes below 0xCC) are unchanged by NFC. */
    unsigned char lim = p->nfc_only ? 0xCC : 0x80;
    size_t i = 0;
    while (i < n && (unsigned char)s[i] < lim) i++;
    if (i == n) return 0;
    for (int k = 0; k < p->n_norm; k++) {
        struct tok_text *dst = &c->norm[k & 1];
        int rc = normalize_step(*out, *out_n, p->norm[k], dst, e);
        if (rc != 0) return rc;
        *out = dst->p;
        *out_n = dst->n;
    }
    return 0;
}

static int span_push(struct pretok_span **v, size_t *n, size_t *cap, size_t off, size_t len) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        struct pretok_span *p = realloc(*v, nc * sizeof *p);
        if (!p) return VELA_ENOMEM;
        *v = p;
        *cap = nc;
    }
    (*v)[(*n)++] = (struct pretok_span){off, len};
    return 0;
}

/* Splits s[off..off+len) with regex k (Isolated), appending pieces to (*v, *n). */
static int split_one(struct pretok_ctx *c, int k, const char *s, size_t off, size_t len,
                     struct pretok_span **v, size_t *n, size_t *cap, struct err *e) {
    const struct pretok *p = c->p;
    const PCRE2_SPTR subj = (PCRE2_SPTR)(s + off);
    size_t pos = 0, last = 0;
    while (pos < len) {
        int r = p->jit[k]
                    ? pcre2_jit_match(p->re[k], subj, len, pos, PCRE2_NO_UTF_CHECK, c->md, c->mctx)
                    : pcre2_match(p->re[k], subj, len, pos, PCRE2_NO_UTF_CHECK, c->md, c->mctx);
        if (r == PCRE2_ERROR_NOMATCH) break;
        if (r < 0) return err_set(e, VELA_ELIMIT, "pre_tokenizer: regex match failed (%d)", r);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) { /* empty match: not a piece; step over one character */
            pos = ms + 1;
            while (pos < len && ((unsigned char)s[off + pos] & 0xC0) == 0x80) pos++;
            continue;
        }
        if (ms > last && span_push(v, n, cap, off + last, ms - last) != 0) return VELA_ENOMEM;
        if (span_push(v, n, cap, off + ms, me - ms) != 0) return VELA_ENOMEM;
        pos = last = me;
    }
    if (last < len && span_push(v, n, cap, off + last, len - last) != 0) return VELA_ENOMEM;
    return 0;
}

int pretok_split(struct pretok_ctx *c, const char *s, size_t n, const struct pretok_span **spans,
                 size_t *n_spans, struct err *e) {
    size_t na = 0;
    if (n > 0 && span_push(&c->a, &na, &c->cap_a, 0, n) != 0)
        return err_set(e, VELA_ENOMEM, "pre_tokenizer: out of memory");
    for (int k = 0; k < c->p->n_re; k++) {
        size_t nb = 0;
        for (size_t i = 0; i < na; i++) {
            int rc = split_one(c, k, s, c->a[i].off, c->a[i].len, &c->b, &nb, &c->cap_b, e);
            if (rc == VELA_ENOMEM) return err_set(e, rc, "pre_tokenizer: out of memory");
            if (rc != 0) return rc;
        }
        struct pretok_span *t = c->a;
        size_t tc = c->cap_a;
        c->a = c->b;
        c->cap_a = c->cap_b;
        c->b = t;
        c->cap_b = tc;
        na = nb;
    }
    *spans = c->a;
    *n_spans = na;
    return 0;
}
