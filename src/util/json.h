/* json: typed, bounded getters over jansson, so JSON becomes native values at the edge and
 * every bad field gives an error that names it.
 *
 * Convention for the getters: when the key is absent, a required field is an error
 * (VELA_ENOTFOUND) and an optional one returns 0 with *out left as the caller's default.
 * A present field of the wrong type or out of range is always an error. Any thread. */
#ifndef VELA_UTIL_JSON_H
#define VELA_UTIL_JSON_H

#include "util/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { JU_OPTIONAL = 0, JU_REQUIRED = 1 };

/* Parses a file of at most max_bytes; *out is a new reference the caller json_decref()s.
 * The root must be an object. */
int ju_load_file(const char *path, size_t max_bytes, json_t **out, struct err *e);
/* Parses a buffer (need not be NUL-terminated); root must be an object. */
int ju_load_buf(const char *buf, size_t len, const char *what, json_t **out, struct err *e);

/* Integer in [lo, hi]. Integral floats such as 2.0 are accepted, as Python writes them. */
int ju_int(const json_t *obj, const char *key, int req, int64_t lo, int64_t hi, int64_t *out,
           struct err *e);
int ju_i32(const json_t *obj, const char *key, int req, int32_t lo, int32_t hi, int32_t *out,
           struct err *e);
/* Finite number in [lo, hi]. */
int ju_num(const json_t *obj, const char *key, int req, double lo, double hi, double *out,
           struct err *e);
int ju_bool(const json_t *obj, const char *key, int req, bool *out, struct err *e);
/* *out borrows the string inside obj (valid while obj lives). null counts as absent. */
int ju_str(const json_t *obj, const char *key, int req, const char **out, struct err *e);
/* Integer array of 1..cap elements in [lo, hi]; a bare integer reads as a one-element array
 * (config files write eos_token_id either way). */
int ju_i32_array(const json_t *obj, const char *key, int req, int32_t lo, int32_t hi, int32_t *out,
                 int cap, int *n_out, struct err *e);
/* Object member or NULL; a present non-object (other than null) is an error. */
int ju_obj(const json_t *obj, const char *key, int req, const json_t **out, struct err *e);

#endif
