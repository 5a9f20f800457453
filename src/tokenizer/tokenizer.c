/* tokenizer: loading tokenizer.json, the added-token split, and the encode/decode drivers
 * over pretok (normalize, split) and bpe (merge). Matches HF tokenizers
 * (tokenizer/added_vocabulary.rs find_matches and extract_and_normalize, tokenizer/mod.rs
 * decode) for byte-level BPE files.
 *
 * Added tokens: two matchers (byte tries), as in the reference: tokens with normalized=false
 * are matched in the raw text, those with normalized=true in the normalized text of the
 * pieces between. A match is leftmost, longest at that position; scanning resumes after it
 * even when it is then discarded (special token in TOK_SPECIAL_AS_TEXT mode, or a
 * single_word token inside a word), exactly as the reference's find_iter loop does.
 *
 * Invariants:
 *  1. dec_off has n_ids + 1 entries; id i decodes to dec_pool[dec_off[i] .. dec_off[i+1]).
 *  2. added[] is in file order; the matcher tries index into it.
 * Threads: struct tokenizer read-only after load; struct tok_ctx one thread. */
#include "tokenizer/tokenizer.h"

#include "tokenizer/pretok.h"
#include "tokenizer/tokjson.h"
#include "util/file.h"
#include "util/json.h"
#include "util/limits.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

struct added_tok {
    char *content; /* owned, NUL-terminated; normalized form for normalized tokens */
    size_t len;
    int32_t id;
    bool special, lstrip, rstrip, normalized, single_word;
};

struct trie_node {
    int32_t child, sibling; /* -1 when none */
    int32_t tok;            /* index into added[], -1 when no token ends here */
    unsigned char byte;
};

struct matcher {
    struct trie_node *nodes; /* nodes[0] is the root */
    int32_t n, cap;
    bool first[256]; /* bytes that can start a match */
};

struct tokenizer {
    struct bpe *bpe;
    struct pretok *pt;
    struct added_tok *added;
    int32_t n_added;
    struct matcher raw, norm;
    int32_t n_ids;
    unsigned char *dec_pool;
    size_t *dec_off; /* (n_ids + 1) */
    bool *special;   /* (n_ids) */
};

struct tok_ctx {
    const struct tokenizer *t;
    struct pretok_ctx *pc;
    struct bpe_ctx *bc;
    struct tok_text clean; /* input with invalid UTF-8 replaced */
    struct tok_text norm;  /* normalized piece kept while the norm matcher splits it */
};

/* ---- matcher ---- */

static int trie_add(struct matcher *m, const char *s, size_t n, int32_t tok) {
    if (m->n == 0) {
        m->cap = 64;
        m->nodes = malloc((size_t)m->cap * sizeof *m->nodes);
        if (!m->nodes) return VELA_ENOMEM;
        m->nodes[0] = (struct trie_node){-1, -1, -1, 0};
        m->n = 1;
    }
    int32_t cur = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        int32_t c = m->nodes[cur].child;
        while (c >= 0 && m->nodes[c].byte != b) c = m->nodes[c].sibling;
        if (c < 0) {
            if (m->n == m->cap) {
                struct trie_node *p = realloc(m->nodes, (size_t)m->cap * 2 * sizeof *p);
                if (!p) return VELA_ENOMEM;
                m->nodes = p;
                m->cap *= 2;
            }
            c = m->n++;
            m->nodes[c] = (struct trie_node){-1, m->nodes[cur].child, -1, b};
            m->nodes[cur].child = c;
        }
        cur = c;
    }
    if (m->nodes[cur].tok < 0) m->nodes[cur].tok = tok; /* first of duplicate contents wins */
    m->first[(unsigned char)s[0]] = true;
    return 0;
}

/* Leftmost-longest match in s[from..n): returns the token index, or -1. */
static int32_t trie_find(const struct matcher *m, const char *s, size_t n, size_t from, size_t *ms,
                         size_t *me) {
    if (m->n == 0) return -1;
    for (size_t i = from; i < n; i++) {
        if (!m->first[(unsigned char)s[i]]) continue;
        int32_t cur = 0, best = -1;
        size_t best_end = 0;
        for (size_t j = i; j < n; j++) {
            int32_t c = m->nodes[cur].child;
            while (c >= 0 && m->nodes[c].byte != (unsigned char)s[j]) c = m->nodes[c].sibling;
            if (c < 0) break;
            cur = c;
            if (m->nodes[c].tok >= 0) best = m->nodes[c].tok, best_end = j + 1;
        }
        if (best >= 0) {
            *ms = i;
            *me = best_end;
            return best;
        }
    }
    return -1;
}

/* ---- Unicode helpers for lstrip / rstrip / single_word ---- */

/* White_Space property, which Rust's char::is_whitespace and regex \s use. */
static bool is_ws(int32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* Approximates regex \w: letters, marks, decimal digits, connector punctuation, joiners. */
static bool is_word(int32_t c) {
    if (c == 0x200C || c == 0x200D) return true;
    switch (utf8proc_category(c)) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
        case UTF8PROC_CATEGORY_MN:
        case UTF8PROC_CATEGORY_MC:
        case UTF8PROC_CATEGORY_ME:
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_PC:
            return true;
        default:
            return false;
    }
}

/* Code point ending just before s[i] (valid UTF-8); *start gets its first byte. */
static int32_t cp_before(const char *s, size_t i, size_t *start) {
    size_t k = i - 1;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    utf8proc_int32_t c = -1;
    utf8proc_iterate((const utf8proc_uint8_t *)s + k, (utf8proc_ssize_t)(i - k), &c);
    *start = k;
    return c;
}

static int32_t cp_at(const char *s, size_t i, size_t n, size_t *len) {
    utf8proc_int32_t c = -1;
    utf8proc_ssize_t r =
        utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
    *len = r > 0 ? (size_t)r : 1;
    return c;
}

/* ---- encoding ---- */

/* Next accepted added-token match in s[*from..n) after position pos (the end of the previous
 * piece): fills [*start, *stop) including stripped whitespace and returns the token index,
 * or -1 when there is none. Follows find_matches in the reference. */
static int32_t next_added(const struct tokenizer *t, const struct matcher *m, const char *s,
                          size_t n, size_t pos, size_t *from, unsigned flags, size_t *start,
                          size_t *stop) {
    size_t ms, me;
    int32_t k;
    while ((k = trie_find(m, s, n, *from, &ms, &me)) >= 0) {
        const struct added_tok *a = &t->added[k];
        *from = me;
        if ((flags & TOK_SPECIAL_AS_TEXT) && a->special) continue;
        if (a->single_word) {
            size_t q, l;
            bool word_before = ms > 0 && is_word(cp_before(s, ms, &q));
            bool word_after = me < n && is_word(cp_at(s, me, n, &l));
            if (word_before || word_after) continue;
        }
        if (a->lstrip) {
            size_t q = ms;
            while (q > pos) {
                size_t st;
                if (!is_ws(cp_before(s, q, &st))) break;
                q = st;
            }
            ms = q;
        }
        if (a->rstrip) {
            size_t l;
            while (me < n && is_ws(cp_at(s, me, n, &l))) me += l;
            *from = me;
        }
        *start = ms;
        *stop = me;
        return k;
    }
    return -1;
}

/* Pre-tokenizes and merges one normalized piece. */
static int encode_piece(struct tok_ctx *c, const char *s, size_t n, struct tok_ids *out,
                        struct err *e) {
    const struct pretok_span *sp;
    size_t ns;
    int rc = pretok_split(c->pc, s, n, &sp, &ns, e);
    for (size_t i = 0; rc == 0 && i < ns; i++) {
        rc = bpe_encode_word(c->bc, (const unsigned char *)s + sp[i].off, sp[i].len, out);
        if (rc != 0) rc = err_set(e, rc, "tokenizer: out of memory");
    }
    return rc;
}

/* Normalizes a raw piece, splits out normalized added tokens, encodes the rest. */
static int encode_segment(struct tok_ctx *c, const char *s, size_t n, unsigned flags,
                          struct tok_ids *out, struct err *e) {
    const struct tokenizer *t = c->t;
    if (n == 0) return 0;
    const char *ns;
    size_t nn;
    int rc = pretok_normalize(c->pc, s, n, &ns, &nn, e);
    if (rc != 0) return rc;
    if (t->norm.n == 0) return encode_piece(c, ns, nn, out, e);
    /* the normalized text lives in the pretok ctx until its next normalize: keep a copy */
    c->norm.n = 0;
    if (tok_text_append(&c->norm, ns, nn) != 0)
        return err_set(e, VELA_ENOMEM, "tokenizer: out of memory");
    const char *p = c->norm.p;
    size_t pos = 0, from = 0, start, stop;
    int32_t k;
    while ((k = next_added(t, &t->norm, p, nn, pos, &from, flags, &start, &stop)) >= 0) {
        if (start > pos && (rc = encode_piece(c, p + pos, start - pos, out, e)) != 0) return rc;
        if (tok_ids_push(out, t->added[k].id) != 0)
            return err_set(e, VELA_ENOMEM, "tokenizer: out of memory");
        pos = stop;
    }
    return pos < nn ? encode_piece(c, p + pos, nn - pos, out, e) : 0;
}

int tok_encode(struct tok_ctx *c, const char *text, size_t len, unsigned flags, struct tok_ids *out,
               struct err *e) {
    const struct tokenizer *t = c->t;
    if (len > VELA_TOK_MAX_INPUT_BYTES)
        return err_set(e, VELA_ELIMIT, "tokenize: text of %zu bytes (max %u)", len,
                       VELA_TOK_MAX_INPUT_BYTES);
    if (len == 0) return 0;
    if (!u8_valid((const unsigned char *)text, len)) {
        c->clean.n = 0;
        if (u8_lossy_append(&c->clean, (const unsigned char *)text, len, true, NULL) != 0)
            return err_set(e, VELA_ENOMEM, "tokenizer: out of memory");
        text = c->clean.p;
        len = c->clean.n;
    }
    size_t pos = 0, from = 0, start, stop;
    int32_t k;
    int rc;
    while ((k = next_added(t, &t->raw, text, len, pos, &from, flags, &start, &stop)) >= 0) {
        if ((rc = encode_segment(c, text + pos, start - pos, flags, out, e)) != 0) return rc;
        if (tok_ids_push(out, t->added[k].id) != 0)
            return err_set(e, VELA_ENOMEM, "tokenizer: out of memory");
        pos = stop;
    }
    return encode_segment(c, text + pos, len - pos, flags, out, e);
}

struct tok_ctx *tok_ctx_new(const struct tokenizer *t) {
    struct tok_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->t = t;
    c->pc = pretok_ctx_new(t->pt);
    c->bc = bpe_ctx_new(t->bpe);
    if (!c->pc || !c->bc) {
        tok_ctx_free(c);
        return NULL;
    }
    return c;
}

void tok_ctx_free(struct tok_ctx *c) {
    if (!c) return;
    pretok_ctx_free(c->pc);
    bpe_ctx_free(c->bc);
    tok_text_free(&c->clean);
    tok_text_free(&c->norm);
    free(c);
}

/* ---- decoding ---- */

int32_t tok_n_ids(const struct tokenizer *t) {
    return t->n_ids;
}

bool tok_is_special(const struct tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_ids && t->special[id];
}

const unsigned char *tok_id_bytes(const struct tokenizer *t, int32_t id, bool skip_special,
                                  size_t *n) {
    *n = 0;
    if (id < 0 || id >= t->n_ids || (skip_special && t->special[id])) return NULL;
    *n = t->dec_off[id + 1] - t->dec_off[id];
    return *n ? t->dec_pool + t->dec_off[id] : NULL;
}

int tok_decode(const struct tokenizer *t, const int32_t *ids, int64_t n, bool skip_special,
               struct tok_text *out, struct err *e) {
    struct tok_text raw = {0};
    int rc = 0;
    for (int64_t i = 0; i < n && rc == 0; i++) {
        size_t nb;
        const unsigned char *b = tok_id_bytes(t, ids[i], skip_special, &nb);
        if (nb) rc = tok_text_append(&raw, b, nb);
    }
    if (rc == 0 && raw.n)
        rc = u8_lossy_append(out, (const unsigned char *)raw.p, raw.n, true, NULL);
    if (rc == 0) rc = tok_text_append(out, "", 0); /* out->p valid and terminated even if empty */
    tok_text_free(&raw);
    return rc ? err_set(e, VELA_ENOMEM, "detokenize: out of memory") : 0;
}

int32_t tok_token_to_id(const struct tokenizer *t, const char *s) {
    size_t n = strlen(s);
    for (int32_t i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && memcmp(t->added[i].content, s, n) == 0) return t->added[i].id;
    return bpe_token_to_id(t->bpe, s, n);
}

/* ---- loading ---- */

/* The bytes a token string decodes to (pre_tokenizers/byte_level.rs decode_chain): every
 * character through the inverse byte table, or, if one is not in the table, the token's own
 * UTF-8 unchanged. Appends to pool; returns 0 or VELA_ENOMEM. */
static int dec_bytes(struct tok_text *pool, const char *s, size_t n) {
    size_t start = pool->n, i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t r =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        int b = r > 0 ? bl_cp_to_byte((uint32_t)cp) : -1;
        if (b < 0) {
            pool->n = start;
            return tok_text_append(pool, s, n);
        }
        unsigned char c = (unsigned char)b;
        if (tok_text_append(pool, &c, 1) != 0) return VELA_ENOMEM;
        i += (size_t)r;
    }
    return 0;
}

static int build_decode(struct tokenizer *t, struct err *e) {
    t->dec_off = malloc(((size_t)t->n_ids + 1) * sizeof *t->dec_off);
    t->special = calloc((size_t)t->n_ids, sizeof *t->special);
    const char **over = calloc((size_t)t->n_ids, sizeof *over); /* added content by id */
    size_t *over_n = calloc((size_t)t->n_ids, sizeof *over_n);
    struct tok_text pool = {0};
    int rc = (!t->dec_off || !t->special || !over || !over_n) ? VELA_ENOMEM : 0;
    for (int32_t i = 0; rc == 0 && i < t->n_added; i++) {
        const struct added_tok *a = &t->added[i];
        over[a->id] = a->content;
        over_n[a->id] = a->len;
        t->special[a->id] = a->special;
    }
    for (int32_t id = 0; rc == 0 && id < t->n_ids; id++) {
        t->dec_off[id] = pool.n;
        size_t n;
        const char *s = over[id] ? over[id] : bpe_id_to_token(t->bpe, id, &n);
        if (over[id]) n = over_n[id];
        if (s) rc = dec_bytes(&pool, s, n);
    }
    if (rc == 0) t->dec_off[t->n_ids] = pool.n;
    free(over);
    free(over_n);
    t->dec_pool = (unsigned char *)pool.p;
    return rc ? err_set(e, VELA_ENOMEM, "tokenizer: out of memory") : 0;
}

static int load_added(struct tokenizer *t, const json_t *list, struct err *e) {
    if (!list || json_is_null(list)) return 0;
    if (!json_is_array(list)) return err_set(e, VELA_EFORMAT, "added_tokens: expected an array");
    size_t n = json_array_size(list);
    if (n > VELA_TOK_MAX_ADDED_TOKENS)
        return err_set(e, VELA_ELIMIT, "added_tokens: %zu entries (max %d)", n,
                       VELA_TOK_MAX_ADDED_TOKENS);
    t->added = calloc(n ? n : 1, sizeof *t->added);
    if (!t->added) return err_set(e, VELA_ENOMEM, "added_tokens: out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(list, i);
        struct added_tok *a = &t->added[i];
        int32_t id;
        const char *content;
        int rc = json_is_object(o) ? 0 : err_set(e, VELA_EFORMAT, "expected an object");
        if (rc == 0) rc = ju_i32(o, "id", JU_REQUIRED, 0, VELA_CFG_MAX_VOCAB - 1, &id, e);
        if (rc == 0) rc = ju_str(o, "content", JU_REQUIRED, &content, e);
        if (rc == 0) rc = ju_bool(o, "special", JU_OPTIONAL, &a->special, e);
        if (rc == 0) rc = ju_bool(o, "lstrip", JU_OPTIONAL, &a->lstrip, e);
        if (rc == 0) rc = ju_bool(o, "rstrip", JU_OPTIONAL, &a->rstrip, e);
        if (rc == 0) rc = ju_bool(o, "normalized", JU_OPTIONAL, &a->normalized, e);
        if (rc == 0) rc = ju_bool(o, "single_word", JU_OPTIONAL, &a->single_word, e);
        if (rc != 0) return err_wrap(e, "added_tokens[%zu]", i);
        size_t len = json_string_length(json_object_get(o, "content"));
        if (len == 0 || len > VELA_TOK_MAX_ADDED_TOKEN_BYTES)
            return err_set(e, VELA_ELIMIT, "added_tokens[%zu].content: %zu bytes (1..%d)", i, len,
                           VELA_TOK_MAX_ADDED_TOKEN_BYTES);
        a->id = id;
        a->content = malloc(len + 1);
        if (!a->content) return err_set(e, VELA_ENOMEM, "added_tokens: out of memory");
        memcpy(a->content, content, len + 1);
        a->len = len;
        t->n_added++;
        if (id >= t->n_ids) t->n_ids = id + 1;
    }
    return 0;
}

/* Builds the two matchers; normalized tokens are matched in their normalized form. */
static int build_matchers(struct tokenizer *t, struct err *e) {
    struct pretok_ctx *pc = pretok_ctx_new(t->pt);
    if (!pc) return err_set(e, VELA_ENOMEM, "tokenizer: out of memory");
    int rc = 0;
    for (int32_t i = 0; rc == 0 && i < t->n_added; i++) {
        struct added_tok *a = &t->added[i];
        if (!a->normalized) {
            rc = trie_add(&t->raw, a->content, a->len, i);
            continue;
        }
        const char *s;
        size_t n;
        rc = pretok_normalize(pc, a->content, a->len, &s, &n, e);
        if (rc != 0) break;
        char *c = malloc(n + 1);
        if (!c) {
            rc = VELA_ENOMEM;
            break;
        }
        memcpy(c, s, n);
        c[n] = '\0';
        free(a->content);
        a->content = c;
        a->len = n;
        if (n) rc = trie_add(&t->norm, c, n, i);
    }
    pretok_ctx_free(pc);
    if (rc == VELA_ENOMEM) return err_set(e, rc, "tokenizer: out of memory");
    return rc;
}

static int check_decoder(const json_t *d, struct err *e) {
    const char *type = json_string_value(json_object_get(d, "type"));
    if (!type || strcmp(type, "ByteLevel") != 0)
        return err_set(e, VELA_EUNSUP, "decoder: type \"%s\" is not supported (only ByteLevel)",
                       type ? type : "null");
    return 0;
}

/* Finds model.vocab and model.merges in the file text and makes a copy of the rest with
 * those two values replaced by {} and [], so jansson builds a tree only for the small part.
 * Returns 1 when done (*rest to be freed), 0 when the file does not have that shape (it is
 * then parsed whole, and any error reported by jansson). */
static int cut_big_members(const char *s, size_t n, struct bpe_raw *raw, char **rest,
                           size_t *rest_n) {
    size_t ms, me, r[2][2];
    if (tj_member(s, n, 0, "model", &ms, &me) != 1 || s[ms] != '{') return 0;
    if (tj_member(s, n, ms, "vocab", &r[0][0], &r[0][1]) != 1) return 0;
    if (tj_member(s, n, ms, "merges", &r[1][0], &r[1][1]) != 1) return 0;
    *raw = (struct bpe_raw){s + r[0][0], r[0][1] - r[0][0], s + r[1][0], r[1][1] - r[1][0]};
    int first = r[0][0] < r[1][0] ? 0 : 1, second = 1 - first;
    const char *sub[2] = {"{}", "[]"};
    char *p = malloc(n + 5);
    if (!p) return 0;
    size_t k = 0;
    memcpy(p, s, r[first][0]);
    k = r[first][0];
    memcpy(p + k, sub[first], 2);
    k += 2;
    memcpy(p + k, s + r[first][1], r[second][0] - r[first][1]);
    k += r[second][0] - r[first][1];
    memcpy(p + k, sub[second], 2);
    k += 2;
    memcpy(p + k, s + r[second][1], n - r[second][1]);
    k += n - r[second][1];
    *rest = p;
    *rest_n = k;
    return 1;
}

int tok_load_buf(const char *json, size_t len, const char *what, struct tokenizer **out,
                 struct err *e) {
    json_t *root = NULL;
    struct bpe_raw raw;
    char *rest = NULL;
    size_t rest_n = 0;
    bool cut = cut_big_members(json, len, &raw, &rest, &rest_n) == 1;
    int rc =
        cut ? ju_load_buf(rest, rest_n, what, &root, e) : ju_load_buf(json, len, what, &root, e);
    free(rest);
    if (rc != 0) return rc;
    struct tokenizer *t = calloc(1, sizeof *t);
    if (!t) rc = err_set(e, VELA_ENOMEM, "tokenizer: out of memory");
    const json_t *model = json_object_get(root, "model");
    if (rc == 0 && !json_is_object(model)) rc = err_set(e, VELA_EFORMAT, "model: missing object");
    if (rc == 0) rc = bpe_load(model, cut ? &raw : NULL, &t->bpe, e);
    if (rc == 0)
        rc = pretok_load(json_object_get(root, "normalizer"),
                         json_object_get(root, "pre_tokenizer"), &t->pt, e);
    if (rc == 0) rc = check_decoder(json_object_get(root, "decoder"), e);
    if (rc == 0) {
        t->n_ids = bpe_n_ids(t->bpe);
        rc = load_added(t, json_object_get(root, "added_tokens"), e);
    }
    if (rc == 0) rc = build_matchers(t, e);
    if (rc == 0) rc = build_decode(t, e);
    json_decref(root);
    if (rc != 0) {
        tok_free(t);
        return err_wrap(e, "%s", what);
    }
    *out = t;
    return 0;
}

int tok_load(const char *path, struct tokenizer **out, struct err *e) {
    char buf[4096];
    if (file_is_dir(path)) {
        int rc = path_join(buf, sizeof buf, path, "tokenizer.json", e);
        if (rc != 0) return rc;
        path = buf;
    }
    char *data = NULL;
    size_t n = 0;
    int rc = file_read_all(path, VELA_TOKENIZER_MAX_BYTES, &data, &n, e);
    if (rc != 0) return rc;
    rc = tok_load_buf(data, n, path, out, e);
    free(data);
    return rc;
}

void tok_free(struct tokenizer *t) {
    if (!t) return;
    bpe_free(t->bpe);
    pretok_free(t->pt);
    for (int32_t i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->raw.nodes);
    free(t->norm.nodes);
    free(t->dec_pool);
    free(t->dec_off);
    free(t->special);
    free(t);
}
