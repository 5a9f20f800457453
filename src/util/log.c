/* log: one line per call, written with a single fprintf so lines from threads do not
 * interleave mid-line. The level is written at startup and only read afterwards. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level g_level = LOG_INFO;

void log_set_level(enum log_level lv) {
    g_level = lv;
}

enum log_level log_get_level(void) {
    return g_level;
}

int log_parse_level(const char *s) {
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

void log_msg(enum log_level lv, const char *fmt, ...) {
    if (lv < g_level) return;
    static const char tags[] = "DIWE";
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%c %02d:%02d:%02d.%03ld %s\n", tags[lv], tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000L, line);
}
