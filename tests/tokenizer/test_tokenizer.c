/* test_tokenizer: encode and decode exact to Hugging Face `tokenizers`.
 *
 * - spec section 8 vectors and the added-token table (real Qwen tokenizer.json, shared);
 * - the whole corpus (tests/fixtures/tokenizer, > 2 MB of varied text) against the reference
 *   ids, in both special-token modes, and decode(encode(s)) against the reference decode;
 * - random id sequences (bytes split across tokens, ids past the vocab) against the
 *   reference decode;
 * - small generated tokenizers covering the GPT-2 pre-tokenizer, Sequence normalizers,
 *   both merges formats and the lstrip / rstrip / single_word / normalized flags;
 * - invalid UTF-8 input, limits, and load errors for unsupported or broken files. */
#include "t.h"
#include "tok_fixture.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/tokenizer.h"
#include "util/file.h"
#include "util/limits.h"

#include <pthread.h>
#include <time.h>

#define QWEN "models/qwen2.5-vl-tokenizer/tokenizer.json"

static struct tokenizer *load_qwen(void) {
    const char *p = t_shared(QWEN);
    if (!p) return NULL;
    struct err e = {0};
    struct tokenizer *t = NULL;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = tok_load(p, &t, &e);
    clock_gettime(CLOCK_MONOTONIC, &b);
    T_RC(rc, &e);
    if (rc == 0)
        printf("loaded %s in %.0f ms\n", QWEN,
               (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6);
    return t;
}

/* Encodes s and compares with the expected ids. */
static void check_encode(struct tok_ctx *c, const char *s, size_t n, unsigned flags,
                         const int32_t *want, int64_t n_want) {
    struct tok_ids v = {0};
    struct err e = {0};
    int rc = tok_encode(c, s, n, flags, &v, &e);
    T_RC(rc, &e);
    int same = v.n == n_want && (n_want == 0 || memcmp(v.ids, want, (size_t)n_want * 4) == 0);
    T_CHECK_(same, "encode(\"%.60s\") gave %lld ids, first %d", s, (long long)v.n,
             v.n ? v.ids[0] : -1);
    tok_ids_free(&v);
}

#define CHECK_ENC(c, s, ...)                                                                       \
    do {                                                                                           \
        const int32_t want_[] = {__VA_ARGS__};                                                     \
        check_encode(c, s, strlen(s), 0, want_, (int64_t)(sizeof want_ / sizeof want_[0]));        \
    } while (0)

static void test_spec_vectors(void) {
    struct tokenizer *t = load_qwen();
    if (!t) return;
    struct tok_ctx *c = tok_ctx_new(t);
    CHECK_ENC(c, "What is 2+2?", 3838, 374, 220, 17, 10, 17, 30);
    CHECK_ENC(c, "Hello world  123456 caf\xc3\xa9\n\n  x", 9707, 1879, 220, 220, 16, 17, 18, 19, 20,
              21, 51950, 271, 220, 856);
    CHECK_ENC(c, "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c", 108386, 3837,
              99489);
    CHECK_ENC(c, "It's   a test\r\n", 2132, 594, 256, 264, 1273, 319);
    CHECK_ENC(c, "system", 8948);
    CHECK_ENC(c, "user", 872);
    CHECK_ENC(c, "assistant", 77091);
    CHECK_ENC(c, "\n", 198);
    /* NFC: e + combining acute is the same token as precomposed é */
    CHECK_ENC(c, "Hello world  123456 cafe\xcc\x81\n\n  x", 9707, 1879, 220, 220, 16, 17, 18, 19,
              20, 21, 51950, 271, 220, 856);
    T_EQ(tok_n_ids(t), 151665);
    static const char *added[22] = {
        "<|endoftext|>",      "<|im_start|>",     "<|im_end|>",     "<|object_ref_start|>",
        "<|object_ref_end|>", "<|box_start|>",    "<|box_end|>",    "<|quad_start|>",
        "<|quad_end|>",       "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
        "<|image_pad|>",      "<|video_pad|>",    "<tool_call>",    "</tool_call>",
        "<|fim_prefix|>",     "<|fim_middle|>",   "<|fim_suffix|>", "<|fim_pad|>",
        "<|repo_name|>",      "<|file_sep|>"};
    for (int i = 0; i < 22; i++) {
        int32_t id = 151643 + i;
        T_EQ(tok_token_to_id(t, added[i]), id);
        T_EQ(tok_is_special(t, id), i < 14);
        check_encode(c, added[i], strlen(added[i]), 0, &id, 1);
        struct tok_text out = {0};
        struct err e = {0};
        T_RC(tok_decode(t, &id, 1, false, &out, &e), &e);
        T_STREQ(out.p, added[i]);
        tok_text_free(&out);
    }
    /* special text as plain text; the non-special <tool_call> is still matched */
    const int32_t plain[] = {27, 91, 318, 4906, 91, 29, 8948, 151657};
    check_encode(c, "<|im_start|>system<tool_call>", 29, TOK_SPECIAL_AS_TEXT, plain, 8);
    tok_ctx_free(c);
    tok_free(t);
}

/* Runs one tokenizer over the corpus and its reference file; returns the mismatch count. */
static void run_corpus(const struct tokenizer *t, const char *ref_rel, long stride) {
    gzFile fc = gzopen(t_src("tests/fixtures/tokenizer/corpus.jsonl.gz"), "rb");
    gzFile fr = gzopen(t_src(ref_rel), "rb");
    T_OK(fc != NULL && fr != NULL);
    if (!fc || !fr) {
        if (fc) gzclose(fc);
        if (fr) gzclose(fr);
        return;
    }
    struct tok_ctx *c = tok_ctx_new(t);
    struct tok_ids v = {0};
    struct tok_text out = {0};
    long n = 0, line = 0, bad_ids = 0, bad_plain = 0, bad_dec = 0, bad_skip = 0;
    json_t *js, *jr;
    struct err e = {0};
    while ((jr = fx_next(fr)) != NULL) {
        js = fx_next(fc); /* the reference covers corpus lines 0, stride, 2 * stride, ... */
        for (long k = 1; js && n > 0 && k < stride; k++) {
            json_decref(js);
            js = fx_next(fc);
            line++;
        }
        line++;
        if (!js) {
            json_decref(jr);
            break;
        }
        const char *s = json_string_value(js);
        size_t len = json_string_length(js);
        const json_t *ids = json_object_get(jr, "ids"), *pl = json_object_get(jr, "plain");
        v.n = 0;
        if (tok_encode(c, s, len, 0, &v, &e) != 0 || !fx_ids_equal(ids, v.ids, v.n)) {
            if (bad_ids++ < 5) fprintf(stderr, "  ids differ on line %ld: %.80s\n", line, s);
        }
        v.n = 0;
        if (tok_encode(c, s, len, TOK_SPECIAL_AS_TEXT, &v, &e) != 0 ||
            !fx_ids_equal(pl ? pl : ids, v.ids, v.n)) {
            if (bad_plain++ < 5) fprintf(stderr, "  plain ids differ on line %ld\n", line);
        }
        fx_ids_from(ids, &v);
        const json_t *jd = json_object_get(jr, "dec"), *jk = json_object_get(jr, "skip");
        const char *dec = jd ? json_string_value(jd) : s;
        size_t dec_n = jd ? json_string_length(jd) : len;
        out.n = 0;
        tok_decode(t, v.ids, v.n, false, &out, &e);
        if (out.n != dec_n || (dec_n && memcmp(out.p, dec, dec_n) != 0))
            if (bad_dec++ < 5) fprintf(stderr, "  decode differs on line %ld\n", line);
        const char *skip = jk ? json_string_value(jk) : dec;
        size_t skip_n = jk ? json_string_length(jk) : dec_n;
        out.n = 0;
        tok_decode(t, v.ids, v.n, true, &out, &e);
        if (out.n != skip_n || (skip_n && memcmp(out.p, skip, skip_n) != 0))
            if (bad_skip++ < 5) fprintf(stderr, "  skip-special decode differs, line %ld\n", line);
        json_decref(js);
        json_decref(jr);
        n++;
    }
    while ((jr = fx_next(fr)) != NULL) json_decref(jr); /* also frees the line buffer */
    while ((js = fx_next(fc)) != NULL) json_decref(js);
    printf("%s: %ld strings; mismatches ids %ld, plain %ld, decode %ld, skip %ld\n", ref_rel, n,
           bad_ids, bad_plain, bad_dec, bad_skip);
    T_OK(n > 1000);
    T_EQ(bad_ids, 0);
    T_EQ(bad_plain, 0);
    T_EQ(bad_dec, 0);
    T_EQ(bad_skip, 0);
    tok_ids_free(&v);
    tok_text_free(&out);
    tok_ctx_free(c);
    gzclose(fc);
    gzclose(fr);
}

static void test_corpus_qwen(void) {
    struct tokenizer *t = load_qwen();
    if (!t) return;
    run_corpus(t, "tests/fixtures/tokenizer/qwen2_5_vl.ids.jsonl.gz", 1);
    tok_free(t);
}

static void decode_random_ids(const struct tokenizer *t, const char *rel) {
    gzFile f = gzopen(t_src(rel), "rb");
    T_OK(f != NULL);
    if (!f) return;
    struct tok_ids v = {0};
    struct tok_text out = {0};
    struct err e = {0};
    long n = 0, bad = 0;
    json_t *j;
    while ((j = fx_next(f)) != NULL) {
        fx_ids_from(json_object_get(j, "ids"), &v);
        for (int skip = 0; skip < 2; skip++) {
            const json_t *want = json_object_get(j, skip ? "skip" : "dec");
            out.n = 0;
            T_RC(tok_decode(t, v.ids, v.n, skip, &out, &e), &e);
            if (out.n != json_string_length(want) ||
                memcmp(out.p ? out.p : "", json_string_value(want), out.n) != 0)
                bad++;
        }
        json_decref(j);
        n++;
    }
    T_OK(n >= 100);
    T_EQ(bad, 0);
    /* ids no tokenizer row corresponds to decode to nothing, never fail */
    const int32_t odd[] = {-1, tok_n_ids(t), tok_n_ids(t) + 398, INT32_MAX, INT32_MIN};
    out.n = 0;
    T_RC(tok_decode(t, odd, 5, false, &out, &e), &e);
    T_EQ(out.n, 0);
    tok_ids_free(&v);
    tok_text_free(&out);
    gzclose(f);
}

static void test_decode_random_ids(void) {
    struct tokenizer *t = load_qwen();
    if (!t) return;
    decode_random_ids(t, "tests/fixtures/tokenizer/qwen2_5_vl.decode.jsonl.gz");
    tok_free(t);
}

/* The tokenizer `vela make-model --preset tiny` writes (copied into the fixtures), on every
 * 7th corpus string and on random ids. */
static void test_tiny(void) {
    struct tokenizer *t = NULL;
    struct err e = {0};
    T_RC(tok_load(t_src("tests/fixtures/tokenizer/tiny_tokenizer.json"), &t, &e), &e);
    if (!t) return;
    T_EQ(tok_n_ids(t), 653);
    run_corpus(t, "tests/fixtures/tokenizer/tiny.ids.jsonl.gz", 7);
    decode_random_ids(t, "tests/fixtures/tokenizer/tiny.decode.jsonl.gz");
    tok_free(t);
}

/* The generated mini tokenizers (tools/tokenizer_mini.py) against their reference. */
static void test_mini(void) {
    json_error_t je;
    json_t *all = json_load_file(t_src("tests/fixtures/tokenizer/mini_expect.json"), 0, &je);
    T_OK(json_is_array(all));
    struct tokenizer *tg = NULL, *ts = NULL;
    struct err e = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s", t_src("tests/fixtures/tokenizer/mini_gpt2.json"));
    T_RC(tok_load(path, &tg, &e), &e);
    snprintf(path, sizeof path, "%s", t_src("tests/fixtures/tokenizer/mini_seq.json"));
    T_RC(tok_load(path, &ts, &e), &e);
    if (!tg || !ts || !all) goto done;
    struct tok_ctx *cg = tok_ctx_new(tg), *cs = tok_ctx_new(ts);
    struct tok_ids v = {0};
    struct tok_text out = {0};
    for (size_t i = 0; i < json_array_size(all); i++) {
        const json_t *r = json_array_get(all, i);
        bool gpt2 =
            strcmp(json_string_value(json_object_get(r, "tokenizer")), "mini_gpt2.json") == 0;
        const struct tokenizer *t = gpt2 ? tg : ts;
        struct tok_ctx *c = gpt2 ? cg : cs;
        const json_t *jt = json_object_get(r, "text");
        const char *s = json_string_value(jt);
        for (int plain = 0; plain < 2; plain++) {
            v.n = 0;
            T_RC(tok_encode(c, s, json_string_length(jt), plain ? TOK_SPECIAL_AS_TEXT : 0, &v, &e),
                 &e);
            T_CHECK_(fx_ids_equal(json_object_get(r, plain ? "plain" : "ids"), v.ids, v.n),
                     "%s %s: ids of \"%s\"", gpt2 ? "gpt2" : "seq", plain ? "plain" : "special", s);
        }
        fx_ids_from(json_object_get(r, "ids"), &v);
        for (int skip = 0; skip < 2; skip++) {
            out.n = 0;
            T_RC(tok_decode(t, v.ids, v.n, skip, &out, &e), &e);
            T_STREQ(out.p ? out.p : "",
                    json_string_value(json_object_get(r, skip ? "skip" : "dec")));
        }
    }
    tok_ids_free(&v);
    tok_text_free(&out);
    tok_ctx_free(cg);
    tok_ctx_free(cs);
done:
    tok_free(tg);
    tok_free(ts);
    json_decref(all);
}

/* Invalid UTF-8 encodes as its Python-style replacement would. */
static void test_invalid_utf8(void) {
    static const struct {
        const char *in, *repl;
    } cases[] = {
        {"\xff", "\xef\xbf\xbd"},
        {"a\xe4\xb8", "a\xef\xbf\xbd"},                             /* truncated: one */
        {"\xed\xa0\x80x", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx"}, /* surrogate: three */
        {"\xf0\x9f\x98 ok", "\xef\xbf\xbd ok"},                     /* cut emoji: one */
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                   /* overlong */
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > U+10FFFF */
        {"\xe2\x82\xac\x80\xe2", "\xe2\x82\xac\xef\xbf\xbd\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tok_text out = {0};
        size_t used = 0;
        T_EQ(u8_lossy_append(&out, (const unsigned char *)cases[i].in, strlen(cases[i].in), true,
                             &used),
             0);
        T_STREQ(out.p, cases[i].repl);
        tok_text_free(&out);
    }
    for (int b = 0; b < 256; b++) T_EQ(bl_cp_to_byte(bl_byte_to_cp((unsigned char)b)), b);
    T_EQ(bl_byte_to_cp(' '), 0x120);
    T_EQ(bl_byte_to_cp('\n'), 0x10A);
    T_EQ(bl_byte_to_cp(173), 0x143);
    struct tokenizer *t = load_qwen();
    if (!t) return;
    struct tok_ctx *c = tok_ctx_new(t);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tok_ids a = {0}, b = {0};
        struct err e = {0};
        T_RC(tok_encode(c, cases[i].in, strlen(cases[i].in), 0, &a, &e), &e);
        T_RC(tok_encode(c, cases[i].repl, strlen(cases[i].repl), 0, &b, &e), &e);
        T_OK(a.n == b.n && memcmp(a.ids, b.ids, (size_t)a.n * 4) == 0);
        tok_ids_free(&a);
        tok_ids_free(&b);
    }
    /* limits: the length is checked before the text is read */
    struct tok_ids v = {0};
    struct err e = {0};
    T_FAILS(tok_encode(c, "x", (size_t)VELA_TOK_MAX_INPUT_BYTES + 1, 0, &v, &e), VELA_ELIMIT, &e);
    T_EQ(tok_encode(c, "", 0, 0, &v, &e), 0);
    T_EQ(v.n, 0);
    tok_ids_free(&v);
    tok_ctx_free(c);
    tok_free(t);
}

/* Loads mini_gpt2.json with one field replaced by a JSON snippet; returns the code. */
static int load_patched(const char *key, const char *sub, const char *val, struct err *e) {
    json_error_t je;
    json_t *root = json_load_file(t_src("tests/fixtures/tokenizer/mini_gpt2.json"), 0, &je);
    if (!root) return -100;
    json_t *v = json_loads(val, JSON_DECODE_ANY, &je);
    json_t *obj = sub ? json_object_get(root, sub) : root;
    json_object_set_new(obj, key, v);
    char *s = json_dumps(root, 0);
    struct tokenizer *t = NULL;
    int rc = tok_load_buf(s, strlen(s), "patched", &t, e);
    tok_free(t);
    free(s);
    json_decref(root);
    return rc;
}

static void test_load_errors(void) {
    struct err e = {0};
    struct tokenizer *t = NULL;
    T_FAILS(tok_load_buf("{", 1, "x", &t, &e), VELA_EFORMAT, &e);
    T_OK(tok_load("/nonexistent/tokenizer.json", &t, &e) < 0 && e.msg[0] != 0);
    T_FAILS(load_patched("type", "model", "\"WordPiece\"", &e), VELA_EUNSUP, &e);
    T_FAILS(load_patched("normalizer", NULL, "{\"type\": \"Lowercase\"}", &e), VELA_EUNSUP, &e);
    T_FAILS(load_patched("pre_tokenizer", NULL, "{\"type\": \"Whitespace\"}", &e), VELA_EUNSUP, &e);
    T_FAILS(load_patched("pre_tokenizer", NULL, "null", &e), VELA_EUNSUP, &e);
    T_FAILS(load_patched("pre_tokenizer", NULL,
                         "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": "
                         "\"Removed\", \"invert\": false}",
                         &e),
            VELA_EUNSUP, &e);
    T_FAILS(load_patched("pre_tokenizer", NULL,
                         "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
                         "\"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}, "
                         "{\"type\": \"ByteLevel\"}]}",
                         &e),
            VELA_EFORMAT, &e);
    T_FAILS(load_patched("decoder", NULL, "null", &e), VELA_EUNSUP, &e);
    T_FAILS(load_patched("byte_fallback", "model", "true", &e), VELA_EUNSUP, &e);
    T_FAILS(load_patched("merges", "model", "[\"a zzzz\"]", &e), VELA_EFORMAT, &e);
    T_FAILS(load_patched("merges", "model", "[\"ab\"]", &e), VELA_EFORMAT, &e);
    T_FAILS(load_patched("merges", "model", "[[\"a\"]]", &e), VELA_EFORMAT, &e);
    T_FAILS(load_patched("vocab", "model", "{\"a\": -1}", &e), VELA_EFORMAT, &e);
    T_FAILS(load_patched("vocab", "model", "{\"a\": 0, \"b\": 0}", &e), VELA_EFORMAT, &e);
    T_FAILS(load_patched("added_tokens", NULL, "[{\"id\": 1}]", &e), VELA_ENOTFOUND, &e);
    T_FAILS(load_patched("added_tokens", NULL, "[{\"id\": 1, \"content\": \"\"}]", &e), VELA_ELIMIT,
            &e);
    T_EQ(load_patched("normalizer", NULL, "null", &e), 0);
    /* truncated and NUL-damaged files: an error every time, never a crash or a hang */
    char *doc = NULL;
    size_t n_doc = 0;
    T_RC(file_read_all(t_src("tests/fixtures/tokenizer/mini_gpt2.json"), 1 << 20, &doc, &n_doc, &e),
         &e);
    int n_bad = 0, n_tried = 0;
    for (size_t cut = 0; doc && cut < n_doc; cut += 37) {
        n_tried++;
        if (tok_load_buf(doc, cut, "cut", &t, &e) >= 0) n_bad++, tok_free(t);
        char saved = doc[cut];
        doc[cut] = '\0';
        if (tok_load_buf(doc, n_doc, "nul", &t, &e) >= 0) n_bad++, tok_free(t);
        doc[cut] = saved;
    }
    T_OK(n_tried > 100);
    T_EQ(n_bad, 0);
    free(doc);
    /* without merges the file is read through the JSON tree path: same checks apply */
    json_error_t je;
    json_t *root = json_load_file(t_src("tests/fixtures/tokenizer/mini_gpt2.json"), 0, &je);
    T_OK(root != NULL);
    if (root) {
        json_object_del(json_object_get(root, "model"), "merges");
        char *s = json_dumps(root, 0);
        T_RC(tok_load_buf(s, strlen(s), "no merges", &t, &e), &e);
        if (t) {
            struct tok_ctx *c = tok_ctx_new(t);
            const int32_t hi[] = {71, 72}; /* "hi" without merges: one id per byte */
            check_encode(c, "hi", 2, 0, hi, 2);
            tok_ctx_free(c);
        }
        tok_free(t);
        t = NULL;
        json_object_set_new(json_object_get(root, "model"), "vocab", json_integer(3));
        free(s);
        s = json_dumps(root, 0);
        T_FAILS(tok_load_buf(s, strlen(s), "bad vocab", &t, &e), VELA_EFORMAT, &e);
        free(s);
        json_decref(root);
    }
    T_EQ(load_patched("merges", "model", "[]", &e), 0);
}

/* One shared tokenizer, one tok_ctx per thread: every thread gets the reference ids. */
struct thread_job {
    const struct tokenizer *t;
    int ok;
};

static void *thread_main(void *arg) {
    struct thread_job *j = arg;
    struct tok_ctx *c = tok_ctx_new(j->t);
    struct tok_ids v = {0};
    struct err e = {0};
    static const int32_t want[] = {9707, 1879, 220,   220, 16,  17,  18,    19,
                                   20,   21,   51950, 271, 220, 856, 151645};
    const char *s = "Hello world  123456 caf\xc3\xa9\n\n  x<|im_end|>";
    j->ok = c != NULL;
    for (int i = 0; i < 300 && j->ok; i++) {
        v.n = 0;
        j->ok = tok_encode(c, s, strlen(s), 0, &v, &e) == 0 && v.n == 15 &&
                memcmp(v.ids, want, sizeof want) == 0;
    }
    tok_ids_free(&v);
    tok_ctx_free(c);
    return NULL;
}

static void test_threads(void) {
    struct tokenizer *t = load_qwen();
    if (!t) return;
    pthread_t th[4];
    struct thread_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct thread_job){t, 0};
        T_EQ(pthread_create(&th[i], NULL, thread_main, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        T_OK(jobs[i].ok);
    }
    tok_free(t);
}

/* Runs a shell command and captures its stdout into buf; returns the exit status. */
static int run_cmd(const char *cmd, char *buf, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(buf, 1, cap - 1, p);
    buf[n] = '\0';
    return pclose(p);
}

/* vela tokenize / detokenize, plain and --jsonl, on the mini tokenizer. */
static void test_cli(void) {
    const char *bin = getenv("VELA_BIN");
    if (!bin || !*bin) {
        T_SKIP("VELA_BIN not set: CLI not tested");
        return;
    }
    char tok[4096], cmd[10000], out[4096];
    snprintf(tok, sizeof tok, "%s", t_src("tests/fixtures/tokenizer/mini_gpt2.json"));
    snprintf(cmd, sizeof cmd, "'%s' tokenize --model '%s' 'Hello world'", bin, tok);
    T_EQ(run_cmd(cmd, out, sizeof out), 0);
    T_STREQ(out, "[39, 68, 291, 78, 278, 688]\n");
    snprintf(cmd, sizeof cmd,
             "printf '\"x <mask> y\"\\n\"Hello world\"\\n' | '%s' tokenize --model '%s' --jsonl",
             bin, tok);
    T_EQ(run_cmd(cmd, out, sizeof out), 0);
    T_STREQ(out, "[87, 701, 386]\n[39, 68, 291, 78, 278, 688]\n");
    snprintf(cmd, sizeof cmd, "'%s' tokenize --no-special --model '%s' '<mask>'", bin, tok);
    T_EQ(run_cmd(cmd, out, sizeof out), 0);
    T_STREQ(out, "[27, 76, 358, 74, 29]\n");
    snprintf(cmd, sizeof cmd, "'%s' detokenize --model '%s' 39,68,291,78,278,688,700", bin, tok);
    T_EQ(run_cmd(cmd, out, sizeof out), 0);
    T_STREQ(out, "Hello world<|endoftext|>\n");
    snprintf(cmd, sizeof cmd,
             "printf '[39, 68, 700]\\n[]\\n[240, 5000]\\n' | '%s' detokenize "
             "--skip-special-tokens --model '%s' --jsonl",
             bin, tok);
    T_EQ(run_cmd(cmd, out, sizeof out), 0);
    T_STREQ(out, "\"He\"\n\"\"\n\"\xef\xbf\xbd\"\n");
    snprintf(cmd, sizeof cmd, "'%s' detokenize --model '%s' '1,x' 2>/dev/null", bin, tok);
    T_OK(run_cmd(cmd, out, sizeof out) != 0);
}

int main(void) {
    T_RUN(test_invalid_utf8);
    T_RUN(test_load_errors);
    T_RUN(test_mini);
    T_RUN(test_spec_vectors);
    T_RUN(test_corpus_qwen);
    T_RUN(test_decode_random_ids);
    T_RUN(test_tiny);
    T_RUN(test_cli);
    T_RUN(test_threads);
    return t_done();
}
