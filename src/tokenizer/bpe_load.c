/* bpe_load: builds the BPE tables from tokenizer.json's "model" object: vocab (string -> id)
 * and merges ("a b" strings or ["a", "b"] pairs, in rank order), either from the jansson tree
 * or straight from the file text (struct bpe_raw, read through tokjson), which avoids a JSON
 * node and an allocation per token for the 11 MB Qwen file.
 *
 * Invariants:
 *  1. Every vocab id is in [0, VELA_CFG_MAX_VOCAB) and given to one key; keys are unique.
 *  2. Every merge's parts and its concatenation are vocab tokens (else VELA_EFORMAT, as the
 *     reference refuses such files); the merged id is the concatenation's id.
 * Load-time only; the result is read-only and may be shared by threads. */
#include "tokenizer/bpe_impl.h"

#include "tokenizer/bytelevel.h"
#include "tokenizer/tokjson.h"
#include "util/limits.h"

#include <stdlib.h>
#include <string.h>

static int build_vocab_index(struct bpe *b, struct err *e) {
    if (b->n_entries == 0) return err_set(e, VELA_EFORMAT, "model.vocab: empty");
    int32_t max_id = -1;
    for (int32_t i = 0; i < b->n_entries; i++)
        if (b->entries[i].id > max_id) max_id = b->entries[i].id;
    b->n_ids = max_id + 1;
    uint64_t cap = bpe_pow2_at_least((uint64_t)b->n_entries * 2);
    b->vslots = calloc(cap, sizeof *b->vslots);
    b->id_entry = malloc((size_t)b->n_ids * sizeof *b->id_entry);
    if (!b->vslots || !b->id_entry) return err_set(e, VELA_ENOMEM, "model.vocab: out of memory");
    b->vmask = cap - 1;
    memset(b->id_entry, 0xff, (size_t)b->n_ids * sizeof *b->id_entry);
    for (int32_t k = 0; k < b->n_entries; k++) {
        const struct bpe_entry *en = &b->entries[k];
        const char *key = b->str_pool + en->off;
        if (b->id_entry[en->id] >= 0)
            return err_set(e, VELA_EFORMAT, "model.vocab: id %d is given to two tokens", en->id);
        if (bpe_token_to_id(b, key, en->len) >= 0)
            return err_set(e, VELA_EFORMAT, "model.vocab: duplicate key \"%.*s\"",
                           (int)(en->len < 40 ? en->len : 40), key);
        b->id_entry[en->id] = k;
        uint64_t i = bpe_hash_bytes(key, en->len) & b->vmask;
        while (b->vslots[i] != 0) i = (i + 1) & b->vmask;
        b->vslots[i] = k + 1;
    }
    return 0;
}

static int load_vocab(struct bpe *b, const json_t *vocab, struct err *e) {
    size_t n = json_object_size(vocab), pool = 0;
    if (n == 0 || n > VELA_CFG_MAX_VOCAB)
        return err_set(e, VELA_ELIMIT, "model.vocab: %zu entries (1..%d allowed)", n,
                       VELA_CFG_MAX_VOCAB);
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)vocab, key, val) pool += strlen(key);
    if (pool > UINT32_MAX) return err_set(e, VELA_ELIMIT, "model.vocab: keys too long");
    b->str_pool = malloc(pool ? pool : 1);
    b->entries = malloc(n * sizeof *b->entries);
    if (!b->str_pool || !b->entries) return err_set(e, VELA_ENOMEM, "model.vocab: out of memory");
    size_t off = 0;
    json_object_foreach((json_t *)vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) >= VELA_CFG_MAX_VOCAB)
            return err_set(e, VELA_EFORMAT, "model.vocab[\"%.40s\"]: id must be in [0, %d)", key,
                           VELA_CFG_MAX_VOCAB);
        size_t len = strlen(key);
        memcpy(b->str_pool + off, key, len);
        b->entries[b->n_entries++] =
            (struct bpe_entry){(uint32_t)off, (uint32_t)len, (int32_t)json_integer_value(val)};
        off += len;
    }
    return build_vocab_index(b, e);
}

/* Non-negative integer below VELA_CFG_MAX_VOCAB at s[*i]; advances *i. */
static int raw_id(const char *s, size_t n, size_t *i, int32_t *out) {
    size_t k = *i;
    int64_t v = 0;
    if (k >= n || s[k] < '0' || s[k] > '9') return -1;
    while (k < n && s[k] >= '0' && s[k] <= '9') {
        v = v * 10 + (s[k] - '0');
        if (v >= VELA_CFG_MAX_VOCAB) return -1;
        k++;
    }
    if (k < n && (s[k] == '.' || s[k] == 'e' || s[k] == 'E')) return -1;
    *i = k;
    *out = (int32_t)v;
    return 0;
}

/* model.vocab straight from the file text s[0..n) (an object of string -> id). */
static int load_vocab_raw(struct bpe *b, const char *s, size_t n, struct err *e) {
    struct tok_text pool = {0};
    size_t cap = 1024, i = tj_ws(s, n, 0);
    b->entries = malloc(cap * sizeof *b->entries);
    int rc = b->entries ? 0 : err_set(e, VELA_ENOMEM, "model.vocab: out of memory");
    if (rc == 0 && (i >= n || s[i] != '{'))
        rc = err_set(e, VELA_EFORMAT, "model.vocab: not an object");
    i = tj_ws(s, n, i + 1);
    bool first = true;
    while (rc == 0) {
        if (first && i < n && s[i] == '}') break;
        first = false;
        size_t off = pool.n;
        long long k = tj_string(s, n, i, &pool);
        int32_t id = -1;
        if (k >= 0) i = tj_ws(s, n, (size_t)k);
        if (k < 0 || i >= n || s[i] != ':') {
            rc = err_set(e, VELA_EFORMAT, "model.vocab: malformed entry %d", b->n_entries);
            break;
        }
        i = tj_ws(s, n, i + 1);
        if (raw_id(s, n, &i, &id) != 0) {
            rc = err_set(e, VELA_EFORMAT, "model.vocab[\"%.*s\"]: id must be an integer in [0, %d)",
                         (int)((pool.n - off) < 40 ? pool.n - off : 40), pool.p + off,
                         VELA_CFG_MAX_VOCAB);
            break;
        }
        if (b->n_entries == VELA_CFG_MAX_VOCAB || pool.n > UINT32_MAX) {
            rc = err_set(e, VELA_ELIMIT, "model.vocab: above %d entries", VELA_CFG_MAX_VOCAB);
            break;
        }
        if ((size_t)b->n_entries == cap) {
            struct bpe_entry *p = realloc(b->entries, cap * 2 * sizeof *p);
            if (!p) {
                rc = err_set(e, VELA_ENOMEM, "model.vocab: out of memory");
                break;
            }
            b->entries = p;
            cap *= 2;
        }
        b->entries[b->n_entries++] =
            (struct bpe_entry){(uint32_t)off, (uint32_t)(pool.n - off), id};
        i = tj_ws(s, n, i);
        if (i < n && s[i] == ',') {
            i = tj_ws(s, n, i + 1);
            continue;
        }
        if (i >= n || s[i] != '}') rc = err_set(e, VELA_EFORMAT, "model.vocab: expected , or }");
        break;
    }
    b->str_pool = pool.p ? pool.p : malloc(1);
    if (rc == 0 && !b->str_pool) rc = err_set(e, VELA_ENOMEM, "model.vocab: out of memory");
    return rc ? rc : build_vocab_index(b, e);
}

/* Splits one merges element into its two byte-level strings (borrowed from the JSON). */
static int merge_parts(const json_t *m, size_t i, const char **a, size_t *na, const char **c,
                       size_t *nc, struct err *e) {
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        const char *sp = strchr(s, ' ');
        if (!sp) return err_set(e, VELA_EFORMAT, "model.merges[%zu]: \"%.40s\" has no space", i, s);
        *a = s;
        *na = (size_t)(sp - s);
        *c = sp + 1;
        *nc = json_string_length(m) - *na - 1;
        return 0;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0));
        *na = json_string_length(json_array_get(m, 0));
        *c = json_string_value(json_array_get(m, 1));
        *nc = json_string_length(json_array_get(m, 1));
        return 0;
    }
    return err_set(e, VELA_EFORMAT, "model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", i);
}

/* Merges resolved to ids, in rank order, before they are hashed. */
struct merge_list {
    int32_t (*v)[3]; /* left, right, merged */
    size_t n, cap;
};

/* Resolves "a" + "c" to ids and appends them; i is the rank (for messages). */
static int merge_add(struct bpe *b, struct merge_list *ml, const char *a, size_t na, const char *c,
                     size_t nc, size_t i, struct tok_text *buf, struct err *e) {
    buf->n = 0;
    if (tok_text_append(buf, a, na) != 0 || tok_text_append(buf, c, nc) != 0)
        return err_set(e, VELA_ENOMEM, "model.merges: out of memory");
    int32_t l = bpe_token_to_id(b, a, na), r = bpe_token_to_id(b, c, nc);
    int32_t m = bpe_token_to_id(b, buf->p, buf->n);
    if (l < 0 || r < 0 || m < 0)
        return err_set(e, VELA_EFORMAT, "model.merges[%zu]: \"%.*s\" + \"%.*s\" not in vocab", i,
                       (int)(na < 40 ? na : 40), a, (int)(nc < 40 ? nc : 40), c);
    if (ml->n == VELA_CFG_MAX_VOCAB)
        return err_set(e, VELA_ELIMIT, "model.merges: above %d entries", VELA_CFG_MAX_VOCAB);
    if (ml->n == ml->cap) {
        size_t cap = ml->cap ? ml->cap * 2 : 1024;
        int32_t(*p)[3] = realloc(ml->v, cap * sizeof *p);
        if (!p) return err_set(e, VELA_ENOMEM, "model.merges: out of memory");
        ml->v = p;
        ml->cap = cap;
    }
    ml->v[ml->n][0] = l;
    ml->v[ml->n][1] = r;
    ml->v[ml->n][2] = m;
    ml->n++;
    return 0;
}

static int build_merges(struct bpe *b, const struct merge_list *ml, struct err *e) {
    uint64_t cap = bpe_pow2_at_least((uint64_t)ml->n * 2 + 2);
    b->mslots = malloc(cap * sizeof *b->mslots);
    if (!b->mslots) return err_set(e, VELA_ENOMEM, "model.merges: out of memory");
    b->mmask = cap - 1;
    for (uint64_t i = 0; i < cap; i++) b->mslots[i].key = MERGE_EMPTY;
    for (size_t i = 0; i < ml->n; i++)
        bpe_merge_put(b, ml->v[i][0], ml->v[i][1], (int32_t)i, ml->v[i][2]);
    b->n_merges = (int32_t)ml->n;
    return 0;
}

static int load_merges(struct bpe *b, const json_t *merges, struct err *e) {
    struct merge_list ml = {0};
    struct tok_text buf = {0};
    int rc = 0;
    for (size_t i = 0; i < json_array_size(merges) && rc == 0; i++) {
        const char *a = NULL, *c = NULL;
        size_t na = 0, nc = 0;
        rc = merge_parts(json_array_get(merges, i), i, &a, &na, &c, &nc, e);
        if (rc == 0) rc = merge_add(b, &ml, a, na, c, nc, i, &buf, e);
    }
    if (rc == 0) rc = build_merges(b, &ml, e);
    free(ml.v);
    tok_text_free(&buf);
    return rc;
}

/* One element of model.merges from the file text: "a b" or ["a", "b"]; unescaped into t,
 * the first part at [0, *na), the second at [*na, t->n). Returns the index past it or -1. */
static long long merge_raw(const char *s, size_t n, size_t i, struct tok_text *t, size_t *na) {
    t->n = 0;
    if (i < n && s[i] == '"') {
        long long k = tj_string(s, n, i, t);
        char *sp = k < 0 ? NULL : memchr(t->p, ' ', t->n);
        if (!sp) return -1;
        *na = (size_t)(sp - t->p);
        memmove(sp, sp + 1, t->n - *na - 1); /* drop the separating space */
        t->n--;
        return k;
    }
    if (i >= n || s[i] != '[') return -1;
    long long k = tj_string(s, n, tj_ws(s, n, i + 1), t);
    if (k < 0) return -1;
    *na = t->n;
    i = tj_ws(s, n, (size_t)k);
    if (i >= n || s[i] != ',') return -1;
    k = tj_string(s, n, tj_ws(s, n, i + 1), t);
    if (k < 0) return -1;
    i = tj_ws(s, n, (size_t)k);
    return i < n && s[i] == ']' ? (long long)i + 1 : -1;
}

static int load_merges_raw(struct bpe *b, const char *s, size_t n, struct err *e) {
    struct merge_list ml = {0};
    struct tok_text t = {0}, buf = {0};
    size_t i = tj_ws(s, n, 0);
    int rc = (i < n && s[i] == '[') ? 0 : err_set(e, VELA_EFORMAT, "model.merges: not an array");
    i = tj_ws(s, n, i + 1);
    bool first = true;
    while (rc == 0) {
        if (first && i < n && s[i] == ']') break;
        first = false;
        size_t na = 0;
        long long k = merge_raw(s, n, i, &t, &na);
        if (k < 0) {
            rc = err_set(e, VELA_EFORMAT, "model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]",
                         ml.n);
            break;
        }
        rc = merge_add(b, &ml, t.p, na, t.p + na, t.n - na, ml.n, &buf, e);
        i = tj_ws(s, n, (size_t)k);
        if (rc == 0 && i < n && s[i] == ',') {
            i = tj_ws(s, n, i + 1);
            continue;
        }
        if (rc == 0 && (i >= n || s[i] != ']'))
            rc = err_set(e, VELA_EFORMAT, "model.merges: expected , or ]");
        break;
    }
    if (rc == 0) rc = build_merges(b, &ml, e);
    free(ml.v);
    tok_text_free(&t);
    tok_text_free(&buf);
    return rc;
}

/* Rejects the BPE options this implementation does not have, naming the field. */
static int check_options(struct bpe *b, const json_t *model, struct err *e) {
    const json_t *v = json_object_get(model, "dropout");
    if (v && !json_is_null(v) && !(json_is_number(v) && json_number_value(v) == 0.0))
        return err_set(e, VELA_EUNSUP, "model.dropout: BPE dropout is not supported");
    v = json_object_get(model, "byte_fallback");
    if (json_is_true(v)) return err_set(e, VELA_EUNSUP, "model.byte_fallback: not supported");
    v = json_object_get(model, "fuse_unk");
    if (json_is_true(v)) return err_set(e, VELA_EUNSUP, "model.fuse_unk: not supported");
    const char *names[2] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        v = json_object_get(model, names[i]);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
            return err_set(e, VELA_EUNSUP, "model.%s: not supported", names[i]);
    }
    b->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    b->unk_id = -1;
    v = json_object_get(model, "unk_token");
    if (json_is_string(v)) {
        b->unk_id = bpe_token_to_id(b, json_string_value(v), json_string_length(v));
        if (b->unk_id < 0) return err_set(e, VELA_EFORMAT, "model.unk_token: not in vocab");
    }
    return 0;
}

int bpe_load(const json_t *model, const struct bpe_raw *raw, struct bpe **out, struct err *e) {
    const json_t *type = json_object_get(model, "type");
    if (type && (!json_is_string(type) || strcmp(json_string_value(type), "BPE") != 0))
        return err_set(e, VELA_EUNSUP, "model.type: \"%s\" is not supported (only BPE)",
                       json_is_string(type) ? json_string_value(type) : "?");
    const json_t *vocab = json_object_get(model, "vocab");
    const json_t *merges = json_object_get(model, "merges");
    if (!raw && !json_is_object(vocab))
        return err_set(e, VELA_EFORMAT, "model.vocab: missing object");
    if (!raw && merges && !json_is_array(merges))
        return err_set(e, VELA_EFORMAT, "model.merges: expected an array");
    struct bpe *b = calloc(1, sizeof *b);
    if (!b) return err_set(e, VELA_ENOMEM, "bpe: out of memory");
    int rc = raw ? load_vocab_raw(b, raw->vocab, raw->vocab_len, e) : load_vocab(b, vocab, e);
    if (rc == 0) rc = check_options(b, model, e);
    if (rc == 0)
        rc = raw ? load_merges_raw(b, raw->merges, raw->merges_len, e) : load_merges(b, merges, e);
    if (rc != 0) {
        bpe_free(b);
        return rc;
    }
    for (int i = 0; i < 256; i++) {
        char s[4];
        uint32_t cp = bl_byte_to_cp((unsigned char)i);
        size_t n = 0;
        if (cp < 0x80)
            s[n++] = (char)cp;
        else {
            s[n++] = (char)(0xC0 | (cp >> 6));
            s[n++] = (char)(0x80 | (cp & 0x3F));
        }
        b->byte_id[i] = bpe_token_to_id(b, s, n);
        if (b->byte_id[i] < 0) b->byte_id[i] = b->unk_id;
    }
    *out = b;
    return 0;
}

void bpe_free(struct bpe *b) {
    if (!b) return;
    free(b->str_pool);
    free(b->entries);
    free(b->vslots);
    free(b->id_entry);
    free(b->mslots);
    free(b);
}
