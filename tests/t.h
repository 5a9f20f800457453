/* t.h: the test harness. Each test program runs its cases with T_RUN and ends with
 * `return t_done();`, which prints "N passed, N failed" (or the skip reason) and returns the
 * exit code ctest reads: 0 pass, 1 fail, 77 skip.
 *
 * A test that needs shared data calls t_shared() and skips, with the reason printed, when the
 * data is missing: a skip is never reported as a pass. */
#ifndef VELA_TESTS_T_H
#define VELA_TESTS_T_H

#include <math.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_pass_, t_fail_, t_skipped_;
static char t_skip_reason_[512];

#define T_CHECK_(cond, ...)                                                                        \
    do {                                                                                           \
        if (cond) {                                                                                \
            t_pass_++;                                                                             \
        } else {                                                                                   \
            t_fail_++;                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

#define T_OK(cond) T_CHECK_((cond), "%s", #cond)
#define T_EQ(a, b)                                                                                 \
    T_CHECK_((long long)(a) == (long long)(b), "%s == %s (%lld vs %lld)", #a, #b, (long long)(a),  \
             (long long)(b))
#define T_STREQ(a, b)                                                                              \
    T_CHECK_(strcmp((a), (b)) == 0, "%s == %s (\"%s\" vs \"%s\")", #a, #b, (a), (b))
#define T_NEAR(a, b, tol)                                                                          \
    T_CHECK_(fabs((double)(a) - (double)(b)) <= (tol), "|%s - %s| <= %g (%.9g vs %.9g)", #a, #b,   \
             (double)(tol), (double)(a), (double)(b))
/* Expects rc == 0 and prints the error message otherwise. */
#define T_RC(rc, e) T_CHECK_((rc) == 0, "%s returned %d: %s", #rc, (rc), (e)->msg)
/* Expects a failure with the given code and a non-empty message. */
#define T_FAILS(rc, code, e)                                                                       \
    T_CHECK_((rc) == (code) && (e)->msg[0] != '\0', "%s: expected %d, got %d (%s)", #rc, (code),   \
             (rc), (e)->msg)

#define T_SKIP(...)                                                                                \
    do {                                                                                           \
        t_skipped_ = 1;                                                                            \
        snprintf(t_skip_reason_, sizeof t_skip_reason_, __VA_ARGS__);                              \
    } while (0)

#define T_RUN(fn)                                                                                  \
    do {                                                                                           \
        int before_ = t_fail_;                                                                     \
        fn();                                                                                      \
        if (t_fail_ != before_) fprintf(stderr, "  in %s\n", #fn);                                 \
    } while (0)

/* Directory of the shared test data (VELA_SHARED_DIR, default ../shared from the source
 * root); joined with rel into a static buffer. Returns NULL (and marks the test skipped)
 * when the path does not exist. */
static inline const char *t_shared(const char *rel) {
    static char buf[4096];
    const char *root = getenv("VELA_SHARED_DIR");
    if (!root || !*root) root = "../shared";
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    FILE *f = fopen(buf, "rb");
    if (!f) {
        T_SKIP("shared test data missing: %.400s (set VELA_SHARED_DIR)", buf);
        return NULL;
    }
    fclose(f);
    return buf;
}

/* Path under the source tree (VELA_SOURCE_DIR), e.g. "tests/fixtures/x". Static buffer. */
static inline const char *t_src(const char *rel) {
    static char buf[4096];
    const char *root = getenv("VELA_SOURCE_DIR");
    if (!root || !*root) root = ".";
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    return buf;
}

/* A fresh scratch directory under the build tree (VELA_TMP_DIR or /tmp), unique per call. */
static inline const char *t_tmpdir(const char *tag) {
    static char buf[4096];
    static int seq;
    const char *root = getenv("VELA_TMP_DIR");
    if (!root || !*root) root = "/tmp";
    snprintf(buf, sizeof buf, "%s/vela-%s-%ld-%d", root, tag, (long)getpid(), seq++);
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", buf, buf);
    if (system(cmd) != 0) return NULL;
    return buf;
}

static inline int t_done(void) {
    if (t_fail_ == 0 && t_skipped_ && t_pass_ == 0) {
        printf("SKIP: %s\n", t_skip_reason_);
        return 77;
    }
    if (t_skipped_) printf("(partly skipped: %s)\n", t_skip_reason_);
    printf("%d passed, %d failed\n", t_pass_, t_fail_);
    return t_fail_ ? 1 : 0;
}

#endif
