/* err: formatting of error records. No state; any thread. */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(struct err *e, int code, const char *fmt, ...) {
    if (!e) return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

int err_wrap(struct err *e, const char *fmt, ...) {
    if (!e) return VELA_EINTERNAL;
    char prefix[VELA_ERR_MSG_MAX];
    char old[VELA_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    /* Truncation is acceptable: the message is for people and stays NUL-terminated. */
    size_t np = strlen(prefix);
    if (np > sizeof e->msg - 3) np = sizeof e->msg - 3;
    memcpy(e->msg, prefix, np);
    e->msg[np] = ':';
    e->msg[np + 1] = ' ';
    size_t room = sizeof e->msg - np - 3;
    size_t no = strnlen(old, room);
    memcpy(e->msg + np + 2, old, no);
    e->msg[np + 2 + no] = '\0';
    return e->code;
}

void err_clear(struct err *e) {
    if (!e) return;
    e->code = 0;
    e->msg[0] = '\0';
}

const char *err_code_name(int code) {
    switch (code) {
        case VELA_OK:
            return "OK";
        case VELA_EINVAL:
            return "EINVAL";
        case VELA_ENOMEM:
            return "ENOMEM";
        case VELA_EIO:
            return "EIO";
        case VELA_EFORMAT:
            return "EFORMAT";
        case VELA_ELIMIT:
            return "ELIMIT";
        case VELA_ENOTFOUND:
            return "ENOTFOUND";
        case VELA_EUNSUP:
            return "EUNSUP";
        case VELA_EDEVICE:
            return "EDEVICE";
        case VELA_EINTERNAL:
            return "EINTERNAL";
        default:
            return "EUNKNOWN";
    }
}
