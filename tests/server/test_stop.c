/* Tests for server/stop.c: a stop string split over several pieces and over multi-byte UTF-8
 * characters, held-back text never shown before the match decides, the vLLM choice among
 * several stop strings (list order among those the same piece completes), overlapping
 * prefixes, include_stop_str_in_output, no match (held text flushed at the end), and the
 * limits (empty, too long, too many, invalid UTF-8). */
#include "server/stop.h"
#include "t.h"

#include <string.h>

/* Feeds pieces[0..n) then finishes; shown gets everything released (NUL-terminated), and
 * the return value is the matched index or -1. *after_hit counts bytes released by calls
 * after the match (must stay 0). */
static int32_t run(struct stop_matcher *m, const char *const *pieces, int n, char *shown,
                   size_t cap, size_t *after_hit) {
    size_t len = 0;
    int32_t hit = -1;
    *after_hit = 0;
    struct err e = {0};
    for (int i = 0; i < n; i++) {
        struct stop_out o;
        T_RC(stop_feed(m, pieces[i], strlen(pieces[i]), &o, &e), &e);
        if (hit >= 0) *after_hit += o.n_text;
        if (len + o.n_text < cap) memcpy(shown + len, o.text, o.n_text), len += o.n_text;
        if (o.hit >= 0) hit = o.hit;
    }
    struct stop_out o;
    stop_finish(m, &o);
    if (hit >= 0) *after_hit += o.n_text;
    if (len + o.n_text < cap) memcpy(shown + len, o.text, o.n_text), len += o.n_text;
    shown[len] = 0;
    return hit;
}

static void test_split_pieces(void) {
    struct stop_matcher m;
    struct err e = {0};
    const char *stops[] = {"STOP"};
    T_RC(stop_init(&m, stops, 1, false, &e), &e);
    struct stop_out o;
    /* the partial "ST" is held back; "S" alone too */
    T_RC(stop_feed(&m, "Hello S", 7, &o, &e), &e);
    T_EQ(o.n_text, 6u);
    T_OK(memcmp(o.text, "Hello ", 6) == 0);
    T_EQ(o.hit, -1);
    T_RC(stop_feed(&m, "T", 1, &o, &e), &e);
    T_EQ(o.n_text, 0u);
    T_RC(stop_feed(&m, "O", 1, &o, &e), &e);
    T_EQ(o.n_text, 0u);
    T_RC(stop_feed(&m, "P and more", 10, &o, &e), &e);
    T_EQ(o.hit, 0);
    T_EQ(o.n_text, 0u); /* "STOP" excluded, " and more" dropped */
    T_STREQ(stop_matched(&m), "STOP");
    T_RC(stop_feed(&m, "x", 1, &o, &e), &e);
    T_EQ(o.n_text, 0u);
    stop_finish(&m, &o);
    T_EQ(o.n_text, 0u);
    stop_deinit(&m);

    /* a false start: the held "ST" is released once it cannot be a stop string any more */
    T_RC(stop_init(&m, stops, 1, false, &e), &e);
    const char *p[] = {"aST", "Xb", "STO", "P!"};
    char shown[128];
    size_t after;
    T_EQ(run(&m, p, 4, shown, sizeof shown, &after), 0);
    T_STREQ(shown, "aSTXb");
    T_EQ(after, 0u);
    stop_deinit(&m);
}

static void test_utf8(void) {
    /* "é" = C3 A9, "世界" = E4 B8 96 E7 95 8C; the stop string is "é世" spread over 3 pieces */
    struct stop_matcher m;
    struct err e = {0};
    const char *stops[] = {"\xC3\xA9\xE4\xB8\x96"};
    T_RC(stop_init(&m, stops, 1, false, &e), &e);
    const char *p[] = {"caf\xC3\xA9", " \xC3\xA9", "\xE4\xB8", "\x96\xE7\x95\x8C tail"};
    char shown[128];
    size_t after;
    T_EQ(run(&m, p, 4, shown, sizeof shown, &after), 0);
    T_STREQ(shown, "caf\xC3\xA9 ");
    stop_deinit(&m);

    /* the same text without a match comes out whole, byte for byte */
    const char *other[] = {"\xC3\xA9\xE7\x95\x8C"};
    T_RC(stop_init(&m, other, 1, false, &e), &e);
    T_EQ(run(&m, p, 4, shown, sizeof shown, &after), -1);
    T_STREQ(shown, "caf\xC3\xA9 \xC3\xA9\xE4\xB8\x96\xE7\x95\x8C tail");
    stop_deinit(&m);
}

static void test_several(void) {
    struct stop_matcher m;
    struct err e = {0};
    char shown[128];
    size_t after;
    /* completed by different pieces: the earlier completion wins whatever the list order */
    const char *s1[] = {"world", "lo"};
    const char *p1[] = {"hello", " world"};
    T_RC(stop_init(&m, s1, 2, false, &e), &e);
    T_EQ(run(&m, p1, 2, shown, sizeof shown, &after), 1);
    T_STREQ(shown, "hel");
    stop_deinit(&m);
    /* completed by the same piece: vLLM tries the list in order, so "world" wins although
     * "lo" starts earlier */
    const char *p2[] = {"hello world"};
    T_RC(stop_init(&m, s1, 2, false, &e), &e);
    T_EQ(run(&m, p2, 1, shown, sizeof shown, &after), 0);
    T_STREQ(shown, "hello ");
    stop_deinit(&m);
    /* and the reversed list gives "lo" */
    const char *s2[] = {"lo", "world"};
    T_RC(stop_init(&m, s2, 2, false, &e), &e);
    T_EQ(run(&m, p2, 1, shown, sizeof shown, &after), 0);
    T_STREQ(shown, "hel");
    stop_deinit(&m);
}

static void test_overlapping_prefixes(void) {
    struct stop_matcher m;
    struct err e = {0};
    char shown[128];
    size_t after;
    /* "abab" and "abc" share prefixes; the text "ababab c abc" hits "abab" first */
    const char *s[] = {"abc", "abab"};
    const char *p[] = {"a", "b", "a", "b", "ab"};
    T_RC(stop_init(&m, s, 2, false, &e), &e);
    struct stop_out o;
    T_RC(stop_feed(&m, "xa", 2, &o, &e), &e);
    T_EQ(o.n_text, 1u);
    stop_deinit(&m);
    T_RC(stop_init(&m, s, 2, false, &e), &e);
    T_EQ(run(&m, p, 5, shown, sizeof shown, &after), 1);
    T_STREQ(shown, "");
    T_EQ(after, 0u);
    stop_deinit(&m);
    /* a self-overlapping string: "aab" inside "aaab" starts one byte into the held run */
    const char *s3[] = {"aab"};
    const char *p3[] = {"x", "a", "a", "a", "b", "y"};
    T_RC(stop_init(&m, s3, 1, false, &e), &e);
    T_EQ(run(&m, p3, 6, shown, sizeof shown, &after), 0);
    T_STREQ(shown, "xa");
    stop_deinit(&m);
}

static void test_include(void) {
    struct stop_matcher m;
    struct err e = {0};
    char shown[128];
    size_t after;
    const char *s[] = {"</a>"};
    const char *p[] = {"x </", "a> y"};
    T_RC(stop_init(&m, s, 1, true, &e), &e);
    struct stop_out o;
    /* with the flag vLLM holds nothing back: the prefix shows at once */
    T_RC(stop_feed(&m, p[0], strlen(p[0]), &o, &e), &e);
    T_EQ(o.n_text, 4u);
    T_RC(stop_feed(&m, p[1], strlen(p[1]), &o, &e), &e);
    T_EQ(o.hit, 0);
    T_EQ(o.n_text, 2u); /* "a>": the rest of the stop string, " y" dropped */
    T_OK(memcmp(o.text, "a>", 2) == 0);
    stop_deinit(&m);
    T_RC(stop_init(&m, s, 1, true, &e), &e);
    T_EQ(run(&m, p, 2, shown, sizeof shown, &after), 0);
    T_STREQ(shown, "x </a>");
    stop_deinit(&m);
}

static void test_no_match_flush(void) {
    struct stop_matcher m;
    struct err e = {0};
    const char *s[] = {"END!"};
    T_RC(stop_init(&m, s, 1, false, &e), &e);
    struct stop_out o;
    T_RC(stop_feed(&m, "the EN", 6, &o, &e), &e);
    T_EQ(o.n_text, 4u);
    T_RC(stop_feed(&m, "D", 1, &o, &e), &e);
    T_EQ(o.n_text, 0u);
    stop_finish(&m, &o);
    T_EQ(o.n_text, 3u);
    T_OK(memcmp(o.text, "END", 3) == 0);
    T_EQ(o.hit, -1);
    T_OK(stop_matched(&m) == NULL);
    stop_deinit(&m);
    /* no stop strings: everything passes straight through */
    T_RC(stop_init(&m, NULL, 0, false, &e), &e);
    T_RC(stop_feed(&m, "abc", 3, &o, &e), &e);
    T_EQ(o.n_text, 3u);
    stop_finish(&m, &o);
    T_EQ(o.n_text, 0u);
    stop_deinit(&m);
}

static void test_limits(void) {
    struct stop_matcher m;
    struct err e = {0};
    const char *empty[] = {"ok", ""};
    T_FAILS(stop_init(&m, empty, 2, false, &e), VELA_EINVAL, &e);
    T_OK(strstr(e.msg, "stop[1]") != NULL);
    const char *bad[] = {"\xC3("};
    T_FAILS(stop_init(&m, bad, 1, false, &e), VELA_EINVAL, &e);
    static char big[VELA_STOP_MAX_BYTES + 2];
    memset(big, 'x', VELA_STOP_MAX_BYTES + 1);
    const char *too_long[] = {big};
    T_FAILS(stop_init(&m, too_long, 1, false, &e), VELA_ELIMIT, &e);
    big[VELA_STOP_MAX_BYTES] = 0; /* exactly at the limit: accepted */
    T_RC(stop_init(&m, too_long, 1, false, &e), &e);
    stop_deinit(&m);
    const char *many[VELA_STOP_MAX_STRINGS + 1];
    for (int i = 0; i <= VELA_STOP_MAX_STRINGS; i++) many[i] = "s";
    T_FAILS(stop_init(&m, many, VELA_STOP_MAX_STRINGS + 1, false, &e), VELA_ELIMIT, &e);
    T_RC(stop_init(&m, many, VELA_STOP_MAX_STRINGS, false, &e), &e);
    stop_deinit(&m);
    stop_deinit(&m); /* twice is harmless */
}

int main(void) {
    T_RUN(test_split_pieces);
    T_RUN(test_utf8);
    T_RUN(test_several);
    T_RUN(test_overlapping_prefixes);
    T_RUN(test_include);
    T_RUN(test_no_match_flush);
    T_RUN(test_limits);
    return t_done();
}
