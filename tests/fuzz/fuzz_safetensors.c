/* fuzz_safetensors: arbitrary bytes as a whole safetensors file image. st_parse must either
 * reject them with an error or return a file whose every tensor lies inside the input: the
 * first and last byte of each are read (so the sanitizers see any out-of-range pointer) and
 * every name must look itself up. */
#include "model/safetensors.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct err e = {0};
    struct st_file *f = NULL;
    if (st_parse(&f, data, size, "fuzz", &e) != 0) {
        if (e.msg[0] == '\0') abort(); /* every failure must say why */
        return 0;
    }
    volatile unsigned sum = 0;
    for (int64_t i = 0; i < st_file_count(f); i++) {
        const struct st_tensor *t = st_file_tensor(f, i);
        if (!t || st_file_find(f, t->name) != t) abort();
        if (t->n_bytes != (size_t)t->n_elems * st_dtype_size(t->dtype)) abort();
        const uint8_t *p = t->data;
        if (t->n_bytes > 0) {
            if (p < data || p + t->n_bytes > data + size) abort();
            sum += p[0];
            sum += p[t->n_bytes - 1];
        }
    }
    if (st_file_find(f, "") != NULL) abort();
    (void)st_file_meta(f, "format");
    (void)sum;
    st_close(f);
    return 0;
}
