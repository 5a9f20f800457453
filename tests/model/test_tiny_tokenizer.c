/* Tests for model/tiny_tokenizer: the byte alphabet matches the GPT-2 table and the real
 * Qwen vocab order, the ASCII pre-tokenizer splits as the Hugging Face Split(regex) does
 * (vectors taken from tokenizers 0.23 on the real pre-tokenizer), training is deterministic
 * with lexicographic tie-breaking, tokenizer.json has the real file's structure, and vela's
 * own tokenizer encodes with it exactly as Hugging Face tokenizers does (ids below taken
 * from tokenizers 0.23 on the generated file). */
#include "t.h"
#include "model/tiny_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "util/rng.h"

#include <stdint.h>

static void test_bytes(void) {
    T_EQ(tt_byte_id('!'), 0); /* real vocab: "!" is id 0 */
    T_EQ(tt_byte_id('~'), 93);
    T_EQ(tt_byte_id(0xa1), 94);
    T_EQ(tt_byte_id(0xff), 187);
    T_EQ(tt_byte_id(0x00), 188); /* "Ā" */
    T_EQ(tt_byte_id(' '), 220);  /* "Ġ", as in the real vocab */
    T_EQ(tt_byte_id('\n'), 198); /* "Ċ" */
    T_EQ(tt_byte_id(0xad), 255);
    T_EQ(tt_byte_codepoint(' '), 0x120);
    T_EQ(tt_byte_codepoint('\n'), 0x10a);
    T_EQ(tt_byte_codepoint('a'), 'a');
    T_EQ(tt_byte_codepoint(0xad), 0x143);
    /* A bijection onto 0..255. */
    int seen[256] = {0};
    for (int b = 0; b < 256; b++) seen[tt_byte_id((uint8_t)b)]++;
    int ok = 1;
    for (int i = 0; i < 256; i++) ok &= seen[i] == 1;
    T_OK(ok);
}

/* Splits text and compares with the expected pieces (NULL-terminated). */
static void check_split(const char *text, const char *const *want) {
    size_t len = strlen(text), i = 0;
    int k = 0;
    while (i < len) {
        size_t j = tt_pretok_next(text, len, i);
        if (!want[k] || j - i != strlen(want[k]) || memcmp(text + i, want[k], j - i) != 0) {
            T_CHECK_(0, "split of \"%s\": piece %d is \"%.*s\", want \"%s\"", text, k, (int)(j - i),
                     text + i, want[k] ? want[k] : "(end)");
            return;
        }
        i = j;
        k++;
    }
    T_CHECK_(want[k] == NULL, "split of \"%s\": only %d pieces", text, k);
}

static void test_pretok(void) {
    const char *const a[] = {"Hello", " world", " ",  " ",    "1", "2",  "3", "4",
                             "5",     "6",      " x", "\n\n", " ", " y", NULL};
    check_split("Hello world  123456 x\n\n  y", a);
    const char *const b[] = {"It", "'s", "  ", " a", " test", "\r\n", NULL};
    check_split("It's   a test\r\n", b);
    const char *const c[] = {" ",  " if", " (", "x", ")",   " {\n", "   ", " y",
                             " =", " a",  "->", "b", ";\n", "}\n",  NULL};
    check_split("  if (x) {\n    y = a->b;\n}\n", c);
    const char *const d[] = {"don", "'T", " we", "'LL",  " ((", "foo",
                             "))",  " !", "bar", "  \t", " z",  NULL};
    check_split("don'T we'LL ((foo)) !bar  \t z", d);
    const char *const e[] = {"a", "  ", NULL};
    check_split("a  ", e);
    const char *const f[] = {"x", "\n \n", " ", " y", NULL};
    check_split("x\n \n  y", f);
}

static void test_train_small(void) {
    struct tt_bpe b;
    struct err e = {0};
    /* "ab" occurs 3 times, "cd" 3 times: the tie goes to the smaller strings, "a"+"b". */
    const char *text = "abcd abcd abcd";
    int rc = tt_train(&b, text, strlen(text), 10, &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    /* Then "ab"+"c" beats "c"+"d" (both 3) and "Ġ"+"ab" (2); last " "+"abcd" (2). */
    T_EQ(b.n_merges, 4);
    if (b.n_merges != 4) {
        tt_bpe_deinit(&b);
        return;
    }
    T_STREQ(b.tokens[b.merges[0][0]], "a");
    T_STREQ(b.tokens[b.merges[0][1]], "b");
    T_STREQ(b.tokens[b.merges[1][0]], "ab");
    T_STREQ(b.tokens[b.merges[1][1]], "c");
    T_STREQ(b.tokens[b.merges[2][0]], "abc");
    T_STREQ(b.tokens[b.merges[3][0]], "Ġ");
    T_STREQ(b.tokens[b.merges[3][1]], "abcd");
    T_EQ(b.n_tokens, 256 + b.n_merges); /* no repeated strings here */
    /* Every merge's parts and result are in the vocab. */
    int ok = 1;
    for (int32_t m = 0; m < b.n_merges; m++) {
        char s[256];
        snprintf(s, sizeof s, "%s%s", b.tokens[b.merges[m][0]], b.tokens[b.merges[m][1]]);
        int found = 0;
        for (int32_t i = 0; i < b.n_tokens; i++) found |= strcmp(b.tokens[i], s) == 0;
        ok &= found;
    }
    T_OK(ok);
    tt_bpe_deinit(&b);
    tt_bpe_deinit(&b); /* idempotent */

    /* Pairs that never repeat are not merged. */
    rc = tt_train(&b, "abc", 3, 10, &e);
    T_RC(rc, &e);
    T_EQ(b.n_merges, 0);
    tt_bpe_deinit(&b);
    T_FAILS(tt_train(&b, "abc", 3, -1, &e), VELA_EINVAL, &e);
}

static void test_corpus_tokenizer(void) {
    json_t *a = NULL, *b = NULL;
    struct err e = {0};
    int rc = tt_build_json(&a, &e);
    T_RC(rc, &e);
    T_RC(tt_build_json(&b, &e), &e);
    if (rc != 0 || !b) return;
    char *sa = json_dumps(a, JSON_INDENT(2)), *sb = json_dumps(b, JSON_INDENT(2));
    T_OK(sa && sb && strcmp(sa, sb) == 0);
    /* Pinned: any change in training or layout changes every tiny model on every machine. */
    uint64_t h = rng_fnv1a(RNG_FNV_INIT, sa, strlen(sa));
    T_CHECK_(h == 0x0c556d9be464b832ull, "tokenizer.json fnv1a = 0x%016llx", (unsigned long long)h);
    free(sa);
    free(sb);

    const json_t *model = json_object_get(a, "model");
    const json_t *vocab = json_object_get(model, "vocab");
    const json_t *merges = json_object_get(model, "merges");
    const json_t *added = json_object_get(a, "added_tokens");
    T_STREQ(json_string_value(json_object_get(model, "type")), "BPE");
    T_OK(json_object_size(vocab) > 256 + 200);
    T_EQ(json_array_size(merges) + 256 >= json_object_size(vocab), 1);
    T_OK(json_array_size(merges) >= 200 && json_array_size(merges) <= TT_MAX_MERGES);
    T_EQ(json_integer_value(json_object_get(vocab, "!")), 0);
    T_EQ(json_integer_value(json_object_get(vocab, "Ġ")), 220);
    T_OK(json_object_get(vocab, "Ġthe") != NULL); /* English merges were learned */
    T_EQ(json_array_size(added), TT_N_ADDED);
    int32_t n_vocab = (int32_t)json_object_size(vocab);
    const struct tt_added *qa = tt_qwen_added();
    int ok = 1;
    for (size_t i = 0; i < json_array_size(added); i++) {
        const json_t *t = json_array_get(added, i);
        ok &= json_integer_value(json_object_get(t, "id")) == n_vocab + (json_int_t)i;
        ok &= strcmp(json_string_value(json_object_get(t, "content")), qa[i].content) == 0;
        ok &= json_is_true(json_object_get(t, "special")) == qa[i].special;
        ok &= json_is_false(json_object_get(t, "normalized"));
    }
    T_OK(ok);
    T_STREQ(qa[0].content, "<|endoftext|>");
    T_OK(qa[13].special && !qa[14].special); /* <|video_pad|> special, <tool_call> not */
    T_STREQ(json_string_value(json_object_get(json_object_get(a, "normalizer"), "type")), "NFC");
    const json_t *pre = json_object_get(json_object_get(a, "pre_tokenizer"), "pretokenizers");
    T_EQ(json_array_size(pre), 2);
    T_STREQ(json_string_value(json_object_get(json_array_get(pre, 0), "behavior")), "Isolated");
    T_STREQ(json_string_value(json_object_get(json_array_get(pre, 1), "type")), "ByteLevel");
    T_STREQ(json_string_value(json_object_get(json_object_get(a, "decoder"), "type")), "ByteLevel");
    json_decref(a);
    json_decref(b);
}

struct enc_case {
    const char *text;
    int32_t ids[24];
    int n;
};

static void test_vela_tokenizer(void) {
    static const struct enc_case cases[] = {
        {"Hello world! How can I help you today?",
         {39, 282, 307, 273, 270, 75, 67, 0, 220, 39, 449, 414, 341, 477, 416, 285, 67, 293, 30},
         19},
        {"<|im_start|>user\nWhat is in the picture?<|im_end|>\n<|im_start|>assistant\n",
         {632, 84, 455, 198, 423, 295, 297, 260, 613, 30, 633, 198, 632, 347, 400, 198},
         16},
        {"    for (int i = 0; i < n; i++) {\n",
         {263, 356, 465, 303, 261, 290, 220, 15, 26, 261, 371, 284, 26, 261, 10, 10, 8, 343},
         18},
        {"caf\xc3\xa9 12", {66, 64, 69, 127, 102, 220, 16, 17}, 8},
    };
    json_t *j = NULL;
    struct err e = {0};
    int rc = tt_build_json(&j, &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    char *s = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    struct tokenizer *t = NULL;
    rc = s ? tok_load_buf(s, strlen(s), "tiny tokenizer.json", &t, &e) : VELA_ENOMEM;
    free(s);
    T_RC(rc, &e);
    if (rc != 0) return;
    T_EQ(tok_n_ids(t), 653);
    T_EQ(tok_token_to_id(t, "<|im_end|>"), 633);
    struct tok_ctx *c = tok_ctx_new(t);
    T_OK(c != NULL);
    for (size_t k = 0; c && k < sizeof cases / sizeof cases[0]; k++) {
        struct tok_ids ids = {0};
        struct tok_text txt = {0};
        rc = tok_encode(c, cases[k].text, strlen(cases[k].text), 0, &ids, &e);
        T_RC(rc, &e);
        T_CHECK_(ids.n == cases[k].n &&
                     memcmp(ids.ids, cases[k].ids, sizeof(int32_t) * (size_t)ids.n) == 0,
                 "encode case %zu: %lld ids", k, (long long)ids.n);
        T_RC(tok_decode(t, ids.ids, ids.n, false, &txt, &e), &e);
        T_CHECK_(txt.p && strcmp(txt.p, cases[k].text) == 0, "round trip of case %zu", k);
        tok_ids_free(&ids);
        tok_text_free(&txt);
    }
    tok_ctx_free(c);
    tok_free(t);
}

int main(void) {
    T_RUN(test_bytes);
    T_RUN(test_pretok);
    T_RUN(test_train_small);
    T_RUN(test_corpus_tokenizer);
    T_RUN(test_vela_tokenizer);
    return t_done();
}
