/* test_detok: incremental detokenization. Feeding ids one at a time must give pieces that are
 * each whole UTF-8 and concatenate to the full decode (tok_decode, itself checked against
 * the reference in test_tokenizer), for hand-made byte splits, special tokens with and
 * without skip_special_tokens, unknown ids, the corpus ids and random id sequences. */
#include "t.h"
#include "tok_fixture.h"
#include "tokenizer/detok.h"

/* Id of the single-byte token for byte b. */
static int32_t byte_id(const struct tokenizer *t, unsigned char b) {
    uint32_t cp = bl_byte_to_cp(b);
    char s[3] = {0};
    if (cp < 0x80)
        s[0] = (char)cp;
    else
        s[0] = (char)(0xC0 | (cp >> 6)), s[1] = (char)(0x80 | (cp & 0x3F));
    return tok_token_to_id(t, s);
}

/* Streams ids through a detok; checks each piece is valid UTF-8 and the whole equals the
 * full decode. Returns 1 when all holds. */
static int stream_ok(const struct tokenizer *t, const int32_t *ids, int64_t n, bool skip,
                     struct tok_text *full) {
    struct detok d;
    detok_init(&d, t, skip);
    struct tok_text all = {0}, piece = {0};
    struct err e = {0};
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
        piece.n = 0;
        if (detok_feed(&d, ids[i], &piece, &e) != 0) ok = 0;
        if (!u8_valid((const unsigned char *)piece.p, piece.n)) ok = 0;
        if (piece.n) tok_text_append(&all, piece.p, piece.n);
    }
    piece.n = 0;
    if (detok_flush(&d, &piece, &e) != 0) ok = 0;
    if (piece.n) tok_text_append(&all, piece.p, piece.n);
    full->n = 0;
    tok_decode(t, ids, n, skip, full, &e);
    if (all.n != full->n || (all.n && memcmp(all.p, full->p, all.n) != 0)) ok = 0;
    tok_text_free(&all);
    tok_text_free(&piece);
    detok_deinit(&d);
    return ok;
}

static void test_bytes_split(const struct tokenizer *t, int32_t special_id) {
    struct tok_text full = {0};
    struct detok d;
    struct tok_text out = {0};
    struct err e = {0};
    int32_t e4 = byte_id(t, 0xE4), b8 = byte_id(t, 0xB8), ad = byte_id(t, 0xAD);
    T_OK(e4 >= 0 && b8 >= 0 && ad >= 0);
    /* 中 = E4 B8 AD, one byte token at a time: nothing until the last byte */
    detok_init(&d, t, false);
    T_RC(detok_feed(&d, e4, &out, &e), &e);
    T_EQ(out.n, 0);
    T_RC(detok_feed(&d, b8, &out, &e), &e);
    T_EQ(out.n, 0);
    T_RC(detok_feed(&d, ad, &out, &e), &e);
    T_STREQ(out.p, "\xe4\xb8\xad");
    /* truncated at the end: flush gives one U+FFFD, like the full decode */
    out.n = 0;
    T_RC(detok_feed(&d, e4, &out, &e), &e);
    T_RC(detok_feed(&d, b8, &out, &e), &e);
    T_RC(detok_flush(&d, &out, &e), &e);
    T_STREQ(out.p, "\xef\xbf\xbd");
    /* an invalid byte is replaced at once; ids past the tokenizer add nothing */
    out.n = 0;
    T_RC(detok_feed(&d, byte_id(t, 0xFF), &out, &e), &e);
    T_STREQ(out.p, "\xef\xbf\xbd");
    out.n = 0;
    T_RC(detok_feed(&d, tok_n_ids(t) + 5, &out, &e), &e);
    T_RC(detok_feed(&d, -3, &out, &e), &e);
    T_EQ(out.n, 0);
    detok_deinit(&d);
    tok_text_free(&out);

    const int32_t seqs[][5] = {
        {e4, b8, ad, e4, ad},         {e4, special_id, b8, ad, e4},
        {b8, ad, e4, b8, special_id}, {special_id, e4, special_id, b8, ad},
        {e4, -1, b8, 999999999, ad},  {ad, ad, e4, e4, b8},
    };
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++)
        for (int skip = 0; skip < 2; skip++) T_OK(stream_ok(t, seqs[i], 5, skip, &full));
    /* skip_special_tokens: a skipped token between the bytes of a character is invisible */
    const int32_t mid[] = {e4, special_id, b8, ad};
    T_OK(stream_ok(t, mid, 4, true, &full));
    T_STREQ(full.p, "\xe4\xb8\xad");
    T_OK(stream_ok(t, mid, 4, false, &full));
    T_OK(strstr(full.p, "\xef\xbf\xbd") != NULL);
    tok_text_free(&full);
}

static void stream_file(const struct tokenizer *t, const char *rel, long *n, long *bad);

static void test_mini(void) {
    struct tokenizer *t = NULL;
    struct err e = {0};
    T_RC(tok_load(t_src("tests/fixtures/tokenizer/mini_gpt2.json"), &t, &e), &e);
    if (!t) return;
    test_bytes_split(t, tok_token_to_id(t, "<|endoftext|>"));
    tok_free(t);
    t = NULL;
    /* the tiny model's tokenizer, on its reference ids and random ids past its vocab */
    T_RC(tok_load(t_src("tests/fixtures/tokenizer/tiny_tokenizer.json"), &t, &e), &e);
    if (!t) return;
    test_bytes_split(t, tok_token_to_id(t, "<|im_end|>"));
    long n = 0, bad = 0;
    stream_file(t, "tests/fixtures/tokenizer/tiny.ids.jsonl.gz", &n, &bad);
    stream_file(t, "tests/fixtures/tokenizer/tiny.decode.jsonl.gz", &n, &bad);
    T_OK(n > 1000);
    T_EQ(bad, 0);
    tok_free(t);
}

/* Every corpus id sequence and every random sequence, streamed, both skip modes. */
static void stream_file(const struct tokenizer *t, const char *rel, long *n, long *bad) {
    gzFile f = gzopen(t_src(rel), "rb");
    T_OK(f != NULL);
    if (!f) return;
    struct tok_ids v = {0};
    struct tok_text full = {0};
    json_t *j;
    while ((j = fx_next(f)) != NULL) {
        fx_ids_from(json_object_get(j, "ids"), &v);
        for (int skip = 0; skip < 2; skip++)
            if (!stream_ok(t, v.ids, v.n, skip, &full)) (*bad)++;
        (*n)++;
        json_decref(j);
    }
    tok_ids_free(&v);
    tok_text_free(&full);
    gzclose(f);
}

static void test_qwen(void) {
    const char *p = t_shared("models/qwen2.5-vl-tokenizer/tokenizer.json");
    if (!p) return;
    struct tokenizer *t = NULL;
    struct err e = {0};
    T_RC(tok_load(p, &t, &e), &e);
    if (!t) return;
    test_bytes_split(t, 151645);
    long n = 0, bad = 0;
    stream_file(t, "tests/fixtures/tokenizer/qwen2_5_vl.ids.jsonl.gz", &n, &bad);
    stream_file(t, "tests/fixtures/tokenizer/qwen2_5_vl.decode.jsonl.gz", &n, &bad);
    printf("streamed %ld id sequences (x2 skip modes), %ld differ from the full decode\n", n, bad);
    T_OK(n > 1000);
    T_EQ(bad, 0);
    tok_free(t);
}

int main(void) {
    T_RUN(test_mini);
    T_RUN(test_qwen);
    return t_done();
}
