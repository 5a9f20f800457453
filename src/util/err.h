/* err: result codes and the error record every fallible function fills.
 *
 * A fallible function returns int: 0 on success, a negative VELA_E* code on failure, and
 * writes a message naming the input and the limit it broke into the caller's struct err.
 * err_set() returns the code so a failure reads `return err_set(e, VELA_EFORMAT, ...)`.
 * Any thread; a struct err belongs to one caller. */
#ifndef VELA_UTIL_ERR_H
#define VELA_UTIL_ERR_H

enum {
    VELA_OK = 0,
    VELA_EINVAL = -1,    /* bad argument or value (a config field, a flag) */
    VELA_ENOMEM = -2,    /* allocation failed */
    VELA_EIO = -3,       /* open/read/write/mmap failed */
    VELA_EFORMAT = -4,   /* malformed file or message (JSON, safetensors, image) */
    VELA_ELIMIT = -5,    /* input exceeds a limit from util/limits.h */
    VELA_ENOTFOUND = -6, /* a named thing (tensor, file, model) is missing */
    VELA_EUNSUP = -7,    /* valid but not supported (dtype, architecture) */
    VELA_EDEVICE = -8,   /* accelerator fault */
    VELA_EINTERNAL = -9  /* a bug of ours, reported instead of aborting */
};

#define VELA_ERR_MSG_MAX 256

struct err {
    int code;                   /* last code set, 0 when none */
    char msg[VELA_ERR_MSG_MAX]; /* human-readable, NUL-terminated, truncated if long */
};

/* Sets e->code and the printf-style message; returns code. e may be NULL. */
int err_set(struct err *e, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prepends "prefix: " to the message already in e (context added on the way up). */
int err_wrap(struct err *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

void err_clear(struct err *e);

/* Short name of a code ("EFORMAT"); never NULL. */
const char *err_code_name(int code);

#endif
