/* stop: incremental stop-string matching over one sequence's text (see stop.h).
 *
 * Each stop_feed appends the piece behind the held-back text in buf and checks the stop
 * strings in list order (vLLM's check_stop_strings) over buf; then, without a match, it
 * releases buf minus its longest suffix that is a proper prefix of some stop string.
 *
 * Invariants:
 *   1. buf[off, off + n_ctx + n_held) is what stays between calls (moved to the front at the
 *      next feed): n_ctx bytes already shown, then n_held bytes held back; it holds no
 *      complete stop string (that would have matched when it arrived);
 *   2. without include, n_ctx == 0 and n_held < the longest stop string's length (only the
 *      longest proper prefix is held); with include, n_held == 0 and n_ctx is the last
 *      (longest - 1) bytes shown, kept only so a match can start in them;
 *   3. so any match ends inside the newest piece and starts inside buf: a match starting
 *      earlier would need a longer held prefix or context than 2 keeps;
 *   4. once hit >= 0 the matcher releases nothing more.
 * Thread: the caller's, one per matcher. */
#include "server/stop.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 when it is not valid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t k = c < 0x80             ? 1
               : (c & 0xE0) == 0xC0 ? 2
               : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4
                                    : 0;
    if (k == 0 || k > n || (k == 2 && c < 0xC2) || (k == 4 && c > 0xF4)) return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (k == 3 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0))) return 0;
    if (k == 4 && ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))) return 0;
    return k;
}

static bool utf8_valid(const char *z, size_t n) {
    const unsigned char *s = (const unsigned char *)z;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(s + i, n - i);
        if (k == 0) return false;
        i += k;
    }
    return true;
}

int stop_init(struct stop_matcher *m, const char *const *strs, int32_t n, bool include,
              struct err *e) {
    memset(m, 0, sizeof *m);
    m->hit = -1;
    m->include = include;
    if (n < 0 || n > VELA_STOP_MAX_STRINGS)
        return err_set(e, VELA_ELIMIT, "stop: %d stop strings (at most %d)", n,
                       VELA_STOP_MAX_STRINGS);
    for (int32_t i = 0; i < n; i++) {
        size_t len = strs[i] ? strlen(strs[i]) : 0;
        int rc = 0;
        if (len == 0)
            rc = err_set(e, VELA_EINVAL, "stop[%d] is empty", i);
        else if (len > VELA_STOP_MAX_BYTES)
            rc = err_set(e, VELA_ELIMIT, "stop[%d] is %zu bytes (at most %d)", i, len,
                         VELA_STOP_MAX_BYTES);
        else if (!utf8_valid(strs[i], len))
            rc = err_set(e, VELA_EINVAL, "stop[%d] is not valid UTF-8", i);
        else if (!(m->strs[i] = malloc(len + 1)))
            rc = err_set(e, VELA_ENOMEM, "stop: out of memory");
        if (rc != 0) {
            stop_deinit(m);
            return rc;
        }
        memcpy(m->strs[i], strs[i], len + 1);
        m->lens[i] = len;
        m->n_strs = i + 1;
    }
    return 0;
}

void stop_deinit(struct stop_matcher *m) {
    for (int32_t i = 0; i < m->n_strs; i++) free(m->strs[i]);
    free(m->buf);
    memset(m, 0, sizeof *m);
    m->hit = -1;
}

/* First occurrence of needle (nn bytes) in hay (nh bytes), or NULL. */
static const char *find(const char *hay, size_t nh, const char *needle, size_t nn) {
    if (nn > nh) return NULL;
    for (size_t i = 0; i + nn <= nh; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, nn) == 0) return hay + i;
    return NULL;
}

/* Length of the longest suffix of buf[0, n) that is a proper prefix of some stop string. */
static size_t held_suffix(const struct stop_matcher *m, size_t n) {
    size_t best = 0;
    for (int32_t i = 0; i < m->n_strs; i++) {
        size_t k = m->lens[i] - 1 < n ? m->lens[i] - 1 : n;
        for (; k > best; k--)
            if (memcmp(m->buf + n - k, m->strs[i], k) == 0) break;
        if (k > best) best = k;
    }
    return best;
}

/* Longest stop string, in bytes. */
static size_t max_len(const struct stop_matcher *m) {
    size_t n = 0;
    for (int32_t i = 0; i < m->n_strs; i++)
        if (m->lens[i] > n) n = m->lens[i];
    return n;
}

int stop_feed(struct stop_matcher *m, const char *piece, size_t n, struct stop_out *o,
              struct err *e) {
    *o = (struct stop_out){.text = "", .n_text = 0, .hit = -1};
    if (m->hit >= 0 || n == 0) return 0;
    size_t kept = m->n_ctx + m->n_held;
    if (m->off > 0) memmove(m->buf, m->buf + m->off, kept);
    m->off = 0;
    size_t need = kept + n;
    if (need > m->cap) {
        size_t cap = need < 64 ? 64 : need;
        if (cap < 2 * m->cap) cap = 2 * m->cap;
        char *nb = realloc(m->buf, cap);
        if (!nb) return err_set(e, VELA_ENOMEM, "stop: out of memory for %zu bytes", cap);
        m->buf = nb, m->cap = cap;
    }
    memcpy(m->buf + kept, piece, n);
    size_t shown = m->n_ctx; /* buf[0, shown) went out before */
    for (int32_t i = 0; i < m->n_strs; i++) {
        const char *at = find(m->buf, need, m->strs[i], m->lens[i]);
        if (!at) continue;
        size_t end = (size_t)(at - m->buf) + (m->include ? m->lens[i] : 0);
        m->hit = i;
        m->n_held = m->n_ctx = 0;
        *o = (struct stop_out){.text = m->buf + shown, .n_text = end - shown, .hit = i};
        return 0;
    }
    size_t keep = m->include ? 0 : held_suffix(m, need);
    o->text = m->buf + shown;
    o->n_text = need - keep - shown;
    /* what stays (context, then held text) is left in place, since o->text must stay valid
     * until the next call, which moves it to the front */
    m->n_held = keep;
    m->n_ctx = 0;
    if (m->include) {
        size_t ml = max_len(m);
        m->n_ctx = ml > 0 && ml - 1 < need ? ml - 1 : need;
    }
    m->off = need - m->n_held - m->n_ctx;
    return 0;
}

void stop_finish(struct stop_matcher *m, struct stop_out *o) {
    *o = (struct stop_out){.text = "", .n_text = 0, .hit = -1};
    if (m->hit >= 0 || m->n_held == 0) return;
    o->text = m->buf + m->off + m->n_ctx;
    o->n_text = m->n_held;
    m->n_held = 0;
}

const char *stop_matched(const struct stop_matcher *m) {
    return m->hit >= 0 ? m->strs[m->hit] : NULL;
}
