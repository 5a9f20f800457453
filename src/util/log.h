/* log: leveled logging to stderr. The level is set once at startup (a permitted global);
 * any thread may log. */
#ifndef VELA_UTIL_LOG_H
#define VELA_UTIL_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_OFF = 4 };

void log_set_level(enum log_level lv);
enum log_level log_get_level(void);
/* Parses "debug"/"info"/"warn"/"error"/"off"; returns -1 when unknown. */
int log_parse_level(const char *s);

void log_msg(enum log_level lv, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#define LOG_D(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define LOG_I(...) log_msg(LOG_INFO, __VA_ARGS__)
#define LOG_W(...) log_msg(LOG_WARN, __VA_ARGS__)
#define LOG_E(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
