/* json: see json.h. Messages have the form "field 'key': problem" so callers can prefix the
 * file name with err_wrap(). */
#include "util/json.h"

#include "util/file.h"

#include <math.h>
#include <stdlib.h>

int ju_load_file(const char *path, size_t max_bytes, json_t **out, struct err *e) {
    char *buf = NULL;
    size_t len = 0;
    int rc = file_read_all(path, max_bytes, &buf, &len, e);
    if (rc != 0) return rc;
    rc = ju_load_buf(buf, len, path, out, e);
    free(buf);
    return rc;
}

int ju_load_buf(const char *buf, size_t len, const char *what, json_t **out, struct err *e) {
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return err_set(e, VELA_EFORMAT, "%s: invalid JSON at line %d column %d: %s", what, je.line,
                       je.column, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return err_set(e, VELA_EFORMAT, "%s: top level is not a JSON object", what);
    }
    *out = root;
    return 0;
}

static int absent(const char *key, int req, struct err *e) {
    if (req) return err_set(e, VELA_ENOTFOUND, "field '%s' is missing", key);
    return 0;
}

int ju_int(const json_t *obj, const char *key, int req, int64_t lo, int64_t hi, int64_t *out,
           struct err *e) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return absent(key, req, e);
    int64_t x;
    if (json_is_integer(v)) {
        x = (int64_t)json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || d != floor(d) || d < -9.0e18 || d > 9.0e18)
            return err_set(e, VELA_EINVAL, "field '%s' is not an integer", key);
        x = (int64_t)d;
    } else {
        return err_set(e, VELA_EINVAL, "field '%s' must be an integer", key);
    }
    if (x < lo || x > hi)
        return err_set(e, VELA_EINVAL, "field '%s' = %lld is outside [%lld, %lld]", key,
                       (long long)x, (long long)lo, (long long)hi);
    *out = x;
    return 0;
}

int ju_i32(const json_t *obj, const char *key, int req, int32_t lo, int32_t hi, int32_t *out,
           struct err *e) {
    int64_t x = *out;
    int rc = ju_int(obj, key, req, lo, hi, &x, e);
    if (rc == 0) *out = (int32_t)x;
    return rc;
}

int ju_num(const json_t *obj, const char *key, int req, double lo, double hi, double *out,
           struct err *e) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return absent(key, req, e);
    if (!json_is_number(v)) return err_set(e, VELA_EINVAL, "field '%s' must be a number", key);
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi)
        return err_set(e, VELA_EINVAL, "field '%s' = %g is outside [%g, %g]", key, d, lo, hi);
    *out = d;
    return 0;
}

int ju_bool(const json_t *obj, const char *key, int req, bool *out, struct err *e) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return absent(key, req, e);
    if (!json_is_boolean(v))
        return err_set(e, VELA_EINVAL, "field '%s' must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

int ju_str(const json_t *obj, const char *key, int req, const char **out, struct err *e) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return absent(key, req, e);
    if (!json_is_string(v)) return err_set(e, VELA_EINVAL, "field '%s' must be a string", key);
    *out = json_string_value(v);
    return 0;
}

int ju_i32_array(const json_t *obj, const char *key, int req, int32_t lo, int32_t hi, int32_t *out,
                 int cap, int *n_out, struct err *e) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return absent(key, req, e);
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < lo || x > hi || cap < 1)
            return err_set(e, VELA_EINVAL, "field '%s' = %lld is out of range", key, (long long)x);
        out[0] = (int32_t)x;
        *n_out = 1;
        return 0;
    }
    if (!json_is_array(v))
        return err_set(e, VELA_EINVAL, "field '%s' must be an integer array", key);
    size_t n = json_array_size(v);
    if (n == 0 || n > (size_t)cap)
        return err_set(e, VELA_EINVAL, "field '%s' must have 1 to %d elements, has %zu", key, cap,
                       n);
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(v, i);
        if (!json_is_integer(it))
            return err_set(e, VELA_EINVAL, "field '%s'[%zu] must be an integer", key, i);
        json_int_t x = json_integer_value(it);
        if (x < lo || x > hi)
            return err_set(e, VELA_EINVAL, "field '%s'[%zu] = %lld is outside [%d, %d]", key, i,
                           (long long)x, lo, hi);
        out[i] = (int32_t)x;
    }
    *n_out = (int)n;
    return 0;
}

int ju_obj(const json_t *obj, const char *key, int req, const json_t **out, struct err *e) {
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return absent(key, req, e);
    if (!json_is_object(v)) return err_set(e, VELA_EINVAL, "field '%s' must be an object", key);
    *out = v;
    return 0;
}
