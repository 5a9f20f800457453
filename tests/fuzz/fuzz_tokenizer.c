/* fuzz_tokenizer: arbitrary bytes -> encode (special tokens matched, and as plain text) ->
 * decode, plus incremental detokenization of the ids.
 *
 * Checked on every input, for the generated mini tokenizer (always) and the real Qwen one
 * (when the shared data is present):
 *  - encoding never fails and every id is one the tokenizer knows;
 *  - streaming the ids through detok gives exactly the full decode;
 *  - mini (no normalizer): decode(encode_plain(s)) == s with invalid UTF-8 replaced;
 *  - Qwen (no stripping tokens): both modes decode to the same text, and for text below
 *    U+0300 (where NFC changes nothing) that text is s with invalid UTF-8 replaced.
 * A violated check aborts, which the fuzzer and the replay test report. */
#include "tokenizer/detok.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tokenizer *g_mini, *g_qwen;
static struct tok_ctx *g_mini_ctx, *g_qwen_ctx;

static void load_once(void) {
    static int done;
    if (done) return;
    done = 1;
    char path[4096];
    const char *src = getenv("VELA_SOURCE_DIR"), *sh = getenv("VELA_SHARED_DIR");
    struct err e = {0};
    if (src && *src) {
        snprintf(path, sizeof path, "%s/tests/fixtures/tokenizer/mini_gpt2.json", src);
    } else { /* a fuzzer run outside ctest: find the fixtures next to this source file */
        static const char self[] = __FILE__, tail[] = "tests/fuzz/fuzz_tokenizer.c";
        size_t n = strlen(self) >= strlen(tail) ? strlen(self) - strlen(tail) : 0;
        snprintf(path, sizeof path, "%.*stests/fixtures/tokenizer/mini_gpt2.json", (int)n, self);
    }
    if (tok_load(path, &g_mini, &e) != 0) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", e.msg);
        abort();
    }
    g_mini_ctx = tok_ctx_new(g_mini);
    snprintf(path, sizeof path, "%s/models/qwen2.5-vl-tokenizer/tokenizer.json",
             sh ? sh : "../shared");
    if (tok_load(path, &g_qwen, &e) == 0) g_qwen_ctx = tok_ctx_new(g_qwen);
}

static void check(int cond, const char *what) {
    if (!cond) {
        fprintf(stderr, "fuzz_tokenizer: check failed: %s\n", what);
        abort();
    }
}

static void decode_both(const struct tokenizer *t, const struct tok_ids *v, struct tok_text *out) {
    struct err e = {0};
    out->n = 0;
    check(tok_decode(t, v->ids, v->n, false, out, &e) == 0, "decode");
    for (int skip = 0; skip < 2; skip++) {
        struct tok_text full = {0}, inc = {0};
        struct detok d;
        detok_init(&d, t, skip);
        check(tok_decode(t, v->ids, v->n, skip, &full, &e) == 0, "decode");
        for (int64_t i = 0; i < v->n; i++) check(detok_feed(&d, v->ids[i], &inc, &e) == 0, "feed");
        check(detok_flush(&d, &inc, &e) == 0, "flush");
        check(inc.n == full.n && (!inc.n || memcmp(inc.p, full.p, inc.n) == 0), "detok == decode");
        detok_deinit(&d);
        tok_text_free(&full);
        tok_text_free(&inc);
    }
}

static void run(const struct tokenizer *t, struct tok_ctx *c, const uint8_t *data, size_t size,
                bool is_mini) {
    struct tok_ids a = {0}, b = {0};
    struct tok_text da = {0}, db = {0}, clean = {0};
    struct err e = {0};
    check(tok_encode(c, (const char *)data, size, 0, &a, &e) == 0, "encode");
    check(tok_encode(c, (const char *)data, size, TOK_SPECIAL_AS_TEXT, &b, &e) == 0, "encode");
    for (int64_t i = 0; i < a.n; i++) check(a.ids[i] >= 0 && a.ids[i] < tok_n_ids(t), "id range");
    for (int64_t i = 0; i < b.n; i++) check(b.ids[i] >= 0 && b.ids[i] < tok_n_ids(t), "id range");
    decode_both(t, &a, &da);
    decode_both(t, &b, &db);
    u8_lossy_append(&clean, data, size, true, NULL);
    tok_text_append(&clean, "", 0);
    if (is_mini) {
        check(db.n == clean.n && memcmp(db.p, clean.p, clean.n) == 0, "mini plain round trip");
    } else {
        check(da.n == db.n && memcmp(da.p, db.p, da.n) == 0, "qwen modes decode alike");
        bool low = true;
        for (size_t i = 0; i < clean.n; i++)
            if ((unsigned char)clean.p[i] >= 0xCC) low = false;
        if (low) check(da.n == clean.n && memcmp(da.p, clean.p, clean.n) == 0, "qwen round trip");
    }
    tok_ids_free(&a);
    tok_ids_free(&b);
    tok_text_free(&da);
    tok_text_free(&db);
    tok_text_free(&clean);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load_once();
    if (size > 1 << 16) return 0;
    run(g_mini, g_mini_ctx, data, size, true);
    if (g_qwen) run(g_qwen, g_qwen_ctx, data, size, false);
    return 0;
}
