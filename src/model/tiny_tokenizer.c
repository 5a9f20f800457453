/* tiny_tokenizer: trains vela's small byte-level BPE and writes it as tokenizer.json.
 *
 * Training (tt_train), in the manner of the Hugging Face BPE trainer:
 *   text -> pre-tokens (Qwen split regex, ASCII) -> unique pre-tokens with counts, sorted by
 *   bytes -> each a sequence of byte-symbol ids -> repeat: count adjacent pairs (weighted),
 *   take the most frequent, merge it everywhere.
 * Invariants:
 *  1. Determinism: pair counts are sums (order-free); the winner is the highest count, then
 *     the smallest (left string, right string) in byte order, so no hash-table order or
 *     pointer value can influence the result.
 *  2. tokens[] holds each string once: a merge whose result already exists reuses its id
 *     (it still takes a rank, as in the reference trainer's merge list).
 *  3. Every merge names two existing ids, and the concatenation of their strings is in
 *     tokens[], so the written vocab/merges load in any BPE implementation.
 * Any thread; no global state. */
#include "model/tiny_tokenizer.h"

#include <stdlib.h>
#include <string.h>

static const struct tt_added QWEN_ADDED[TT_N_ADDED] = {
    {"<|endoftext|>", true},        {"<|im_start|>", true},       {"<|im_end|>", true},
    {"<|object_ref_start|>", true}, {"<|object_ref_end|>", true}, {"<|box_start|>", true},
    {"<|box_end|>", true},          {"<|quad_start|>", true},     {"<|quad_end|>", true},
    {"<|vision_start|>", true},     {"<|vision_end|>", true},     {"<|vision_pad|>", true},
    {"<|image_pad|>", true},        {"<|video_pad|>", true},      {"<tool_call>", false},
    {"</tool_call>", false},        {"<|fim_prefix|>", false},    {"<|fim_middle|>", false},
    {"<|fim_suffix|>", false},      {"<|fim_pad|>", false},       {"<|repo_name|>", false},
    {"<|file_sep|>", false},
};

/* The Qwen2 pre-tokenizer regex exactly as the real tokenizer.json spells it. */
static const char QWEN_SPLIT_REGEX[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const struct tt_added *tt_qwen_added(void) {
    return QWEN_ADDED;
}

/* ---- byte-level alphabet (GPT-2 bytes_to_unicode) ---- */

static bool byte_printable(uint8_t b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
}

/* Rank of a non-printable byte among the 68 non-printable ones. */
static int32_t byte_np_index(uint8_t b) {
    if (b <= 32) return b;
    if (b <= 160) return 33 + (b - 127);
    return 67; /* 173 */
}

uint32_t tt_byte_codepoint(uint8_t b) {
    return byte_printable(b) ? b : (uint32_t)(256 + byte_np_index(b));
}

int32_t tt_byte_id(uint8_t b) {
    if (b >= 33 && b <= 126) return b - 33;
    if (b >= 161 && b <= 172) return 94 + (b - 161);
    if (b >= 174) return 106 + (b - 174);
    return 188 + byte_np_index(b);
}

/* ---- pre-tokenizer (ASCII rendering of the Qwen regex) ---- */

static bool is_letter(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}
static bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}
static bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
static bool is_nl(unsigned char c) {
    return c == '\r' || c == '\n';
}
static bool is_punct(unsigned char c) {
    return !is_space(c) && !is_letter(c) && !is_digit(c);
}

/* Length of a contraction ('s 't 're 've 'm 'll 'd, any case) at s, or 0. */
static size_t contraction_len(const unsigned char *s, size_t n) {
    if (n < 2 || s[0] != '\'') return 0;
    unsigned char a = (unsigned char)(s[1] | 0x20), b = n >= 3 ? (unsigned char)(s[2] | 0x20) : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

size_t tt_pretok_next(const char *text, size_t len, size_t i) {
    const unsigned char *s = (const unsigned char *)text;
    size_t j, c = contraction_len(s + i, len - i);
    if (c) return i + c;
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    j = i;
    if (!is_letter(s[j]) && !is_nl(s[j]) && !is_digit(s[j]) && j + 1 < len && is_letter(s[j + 1]))
        j++;
    if (is_letter(s[j])) {
        while (j < len && is_letter(s[j])) j++;
        return j;
    }
    if (is_digit(s[i])) return i + 1; /* \p{N} */
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    j = i;
    if (s[j] == ' ' && j + 1 < len && is_punct(s[j + 1])) j++;
    if (is_punct(s[j])) {
        while (j < len && is_punct(s[j])) j++;
        while (j < len && is_nl(s[j])) j++;
        return j;
    }
    /* whitespace run [i, j) */
    j = i;
    while (j < len && is_space(s[j])) j++;
    for (size_t k = j; k > i; k--) /* \s*[\r\n]+ : up to the run's last newline */
        if (is_nl(s[k - 1])) return k;
    if (j - i >= 2 && j < len) return j - 1; /* \s+(?!\S) leaves one space for the word */
    return j;                                /* \s+ */
}

/* ---- training ---- */

struct piece {
    const unsigned char *p;
    size_t n;
};

static int piece_cmp(const void *a, const void *b) {
    const struct piece *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    if (c != 0) return c;
    return (x->n > y->n) - (x->n < y->n);
}

struct word {
    int32_t *sym; /* symbol ids; shrinks as merges apply */
    int32_t n;
    int64_t count; /* occurrences of this pre-token in the text */
};

struct train {
    struct word *words;
    int32_t n_words;
    int32_t *sym_store; /* backing of every word's sym */
    uint64_t *keys;     /* pair table: (left << 32 | right) + 1, 0 = empty */
    int64_t *counts;
    size_t cap; /* power of two */
    int32_t tok_cap, merge_cap;
};

static void train_free(struct train *t) {
    free(t->words);
    free(t->sym_store);
    free(t->keys);
    free(t->counts);
}

/* Splits text into pre-tokens and collapses equal ones into words with counts. */
static int train_words(struct train *t, const char *text, size_t len, struct err *e) {
    size_t n_pieces = 0, cap = 64;
    struct piece *pc = malloc(cap * sizeof *pc);
    if (!pc) return err_set(e, VELA_ENOMEM, "tiny tokenizer: out of memory");
    for (size_t i = 0; i < len;) {
        size_t j = tt_pretok_next(text, len, i);
        if (n_pieces == cap) {
            struct piece *np = realloc(pc, 2 * cap * sizeof *pc);
            if (!np) {
                free(pc);
                return err_set(e, VELA_ENOMEM, "tiny tokenizer: out of memory");
            }
            pc = np;
            cap *= 2;
        }
        pc[n_pieces++] = (struct piece){(const unsigned char *)text + i, j - i};
        i = j;
    }
    qsort(pc, n_pieces, sizeof *pc, piece_cmp);
    t->words = calloc(n_pieces ? n_pieces : 1, sizeof *t->words);
    t->sym_store = malloc((len ? len : 1) * sizeof *t->sym_store);
    if (!t->words || !t->sym_store) {
        free(pc);
        return err_set(e, VELA_ENOMEM, "tiny tokenizer: out of memory");
    }
    size_t used = 0;
    for (size_t i = 0; i < n_pieces; i++) {
        if (i > 0 && piece_cmp(&pc[i - 1], &pc[i]) == 0) {
            t->words[t->n_words - 1].count++;
            continue;
        }
        struct word *w = &t->words[t->n_words++];
        w->sym = t->sym_store + used;
        w->n = (int32_t)pc[i].n;
        w->count = 1;
        for (size_t k = 0; k < pc[i].n; k++) w->sym[k] = tt_byte_id(pc[i].p[k]);
        used += pc[i].n;
    }
    free(pc);
    t->cap = 64;
    while (t->cap < 2 * used + 16) t->cap *= 2;
    t->keys = malloc(t->cap * sizeof *t->keys);
    t->counts = malloc(t->cap * sizeof *t->counts);
    if (!t->keys || !t->counts) return err_set(e, VELA_ENOMEM, "tiny tokenizer: out of memory");
    return 0;
}

static void pairs_count(struct train *t) {
    memset(t->keys, 0, t->cap * sizeof *t->keys);
    for (int32_t w = 0; w < t->n_words; w++) {
        const struct word *wd = &t->words[w];
        for (int32_t k = 0; k + 1 < wd->n; k++) {
            uint64_t key = (((uint64_t)(uint32_t)wd->sym[k] << 32) | (uint32_t)wd->sym[k + 1]) + 1;
            size_t h = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & (t->cap - 1);
            while (t->keys[h] != 0 && t->keys[h] != key) h = (h + 1) & (t->cap - 1);
            if (t->keys[h] == 0) {
                t->keys[h] = key;
                t->counts[h] = 0;
            }
            t->counts[h] += wd->count;
        }
    }
}

/* Best pair by (count desc, left string, right string); false when none occurs twice. */
static bool pairs_best(const struct train *t, char *const *tokens, int32_t *l, int32_t *r) {
    int64_t best = 1;
    bool found = false;
    for (size_t h = 0; h < t->cap; h++) {
        if (t->keys[h] == 0 || t->counts[h] < best) continue;
        int32_t a = (int32_t)((t->keys[h] - 1) >> 32),
                b = (int32_t)((t->keys[h] - 1) & 0xffffffffu);
        if (found && t->counts[h] == best) {
            int c = strcmp(tokens[a], tokens[*l]);
            if (c > 0 || (c == 0 && strcmp(tokens[b], tokens[*r]) >= 0)) continue;
        }
        best = t->counts[h];
        *l = a;
        *r = b;
        found = true;
    }
    return found && best >= 2;
}

static void words_apply(struct train *t, int32_t l, int32_t r, int32_t id) {
    for (int32_t w = 0; w < t->n_words; w++) {
        struct word *wd = &t->words[w];
        int32_t o = 0;
        for (int32_t k = 0; k < wd->n; k++) {
            if (k + 1 < wd->n && wd->sym[k] == l && wd->sym[k + 1] == r) {
                wd->sym[o++] = id;
                k++;
            } else {
                wd->sym[o++] = wd->sym[k];
            }
        }
        wd->n = o;
    }
}

/* Appends UTF-8 of code point cp (< 0x800 here) to buf at *n. */
static void utf8_put(char *buf, size_t *n, uint32_t cp) {
    if (cp < 0x80) {
        buf[(*n)++] = (char)cp;
    } else {
        buf[(*n)++] = (char)(0xc0 | (cp >> 6));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

static int bpe_alloc(struct tt_bpe *b, int32_t max_merges, struct err *e) {
    b->tokens = calloc((size_t)256 + (size_t)max_merges, sizeof *b->tokens);
    b->merges = calloc((size_t)max_merges + 1, sizeof *b->merges);
    if (!b->tokens || !b->merges) return err_set(e, VELA_ENOMEM, "tiny tokenizer: out of memory");
    for (int v = 0; v < 256; v++) {
        char s[4];
        size_t n = 0;
        utf8_put(s, &n, tt_byte_codepoint((uint8_t)v));
        s[n] = '\0';
        int32_t id = tt_byte_id((uint8_t)v);
        b->tokens[id] = strdup(s);
        if (!b->tokens[id]) return err_set(e, VELA_ENOMEM, "tiny tokenizer: out of memory");
    }
    b->n_tokens = 256;
    return 0;
}

/* Id of the merged string l+r, added to b->tokens when new; -1 on allocation failure. */
static int32_t bpe_intern(struct tt_bpe *b, int32_t l, int32_t r) {
    size_t nl = strlen(b->tokens[l]), nr = strlen(b->tokens[r]);
    char *s = malloc(nl + nr + 1);
    if (!s) return -1;
    memcpy(s, b->tokens[l], nl);
    memcpy(s + nl, b->tokens[r], nr + 1);
    for (int32_t i = 256; i < b->n_tokens; i++) {
        if (strcmp(b->tokens[i], s) == 0) {
            free(s);
            return i;
        }
    }
    b->tokens[b->n_tokens] = s;
    return b->n_tokens++;
}

int tt_train(struct tt_bpe *out, const char *text, size_t len, int32_t max_merges, struct err *e) {
    struct tt_bpe b = {0};
    struct train t = {0};
    memset(out, 0, sizeof *out);
    if (max_merges < 0 || max_merges > 100000)
        return err_set(e, VELA_EINVAL, "tiny tokenizer: max_merges %d outside [0, 100000]",
                       max_merges);
    int rc = bpe_alloc(&b, max_merges, e);
    if (rc == 0) rc = train_words(&t, text, len, e);
    while (rc == 0 && b.n_merges < max_merges) {
        int32_t l = -1, r = -1;
        pairs_count(&t);
        if (!pairs_best(&t, b.tokens, &l, &r)) break;
        int32_t id = bpe_intern(&b, l, r);
        if (id < 0) {
            rc = err_set(e, VELA_ENOMEM, "tiny tokenizer: out of memory");
            break;
        }
        b.merges[b.n_merges][0] = l;
        b.merges[b.n_merges][1] = r;
        b.n_merges++;
        words_apply(&t, l, r, id);
    }
    train_free(&t);
    if (rc != 0) {
        tt_bpe_deinit(&b);
        return rc;
    }
    *out = b;
    return 0;
}

void tt_bpe_deinit(struct tt_bpe *b) {
    if (!b) return;
    if (b->tokens)
        for (int32_t i = 0; i < 256 + b->n_merges; i++) free(b->tokens[i]);
    free(b->tokens);
    free(b->merges);
    memset(b, 0, sizeof *b);
}

/* ---- tokenizer.json ---- */

static json_t *byte_level(void) {
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0,
                     "trim_offsets", 0, "use_regex", 0);
}

static json_t *added_tokens_json(int32_t first_id) {
    json_t *a = json_array();
    for (int i = 0; a && i < TT_N_ADDED; i++) {
        json_t *o = json_pack("{s:I, s:s, s:b, s:b, s:b, s:b, s:b}", "id", (json_int_t)first_id + i,
                              "content", QWEN_ADDED[i].content, "single_word", 0, "lstrip", 0,
                              "rstrip", 0, "normalized", 0, "special", QWEN_ADDED[i].special);
        if (json_array_append_new(a, o) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *bpe_model_json(const struct tt_bpe *b) {
    json_t *vocab = json_object(), *merges = json_array();
    bool ok = vocab && merges;
    for (int32_t i = 0; ok && i < b->n_tokens; i++)
        ok = json_object_set_new(vocab, b->tokens[i], json_integer(i)) == 0;
    for (int32_t i = 0; ok && i < b->n_merges; i++)
        ok = json_array_append_new(merges, json_pack("[s,s]", b->tokens[b->merges[i][0]],
                                                     b->tokens[b->merges[i][1]])) == 0;
    if (!ok) {
        json_decref(vocab);
        json_decref(merges);
        return NULL;
    }
    return json_pack("{s:s, s:n, s:n, s:s, s:s, s:b, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout",
                     "unk_token", "continuing_subword_prefix", "", "end_of_word_suffix", "",
                     "fuse_unk", 0, "byte_fallback", 0, "ignore_merges", 0, "vocab", vocab,
                     "merges", merges);
}

int tt_to_json(const struct tt_bpe *b, json_t **out, struct err *e) {
    json_t *split = json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "Regex",
                              QWEN_SPLIT_REGEX, "behavior", "Isolated", "invert", 0);
    json_t *root = json_pack(
        "{s:s, s:n, s:n, s:o, s:{s:s}, s:{s:s, s:[o,o]}, s:o, s:o, s:o}", "version", "1.0",
        "truncation", "padding", "added_tokens", added_tokens_json(b->n_tokens), "normalizer",
        "type", "NFC", "pre_tokenizer", "type", "Sequence", "pretokenizers", split, byte_level(),
        "post_processor", byte_level(), "decoder", byte_level(), "model", bpe_model_json(b));
    if (!root) return err_set(e, VELA_ENOMEM, "tiny tokenizer: building tokenizer.json failed");
    *out = root;
    return 0;
}

int tt_build_json(json_t **out, struct err *e) {
    struct tt_bpe b;
    int rc = tt_train(&b, tt_corpus(), tt_corpus_len(), TT_MAX_MERGES, e);
    if (rc == 0) rc = tt_to_json(&b, out, e);
    tt_bpe_deinit(&b);
    return rc;
}
