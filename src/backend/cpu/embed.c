/* embed: token embedding lookup on the CPU: rows of a BF16 table gathered by int32 ids.
 * Invariant: every id is checked before any row is written, so a bad id leaves y untouched
 * and the error names its position. Owner thread only. */
#include "backend/cpu/cpu_ops.h"
#include "util/bf16.h"

#include <inttypes.h>
#include <string.h>

int cpu_embed(struct be *b, struct tensor *y, const struct tensor *table, const struct tensor *ids,
              struct err *e) {
    (void)b;
    int64_t n = be_tensor_rows(y), d = be_tensor_cols(y), vocab = be_tensor_rows(table);
    const int32_t *id = be_tensor_addr(ids, 0, 0); /* a packed row (checked by backend.c) */
    for (int64_t i = 0; i < n; i++)
        if (id[i] < 0 || id[i] >= vocab)
            return err_set(e, VELA_EINVAL,
                           "embed: token id %" PRId32 " at position %" PRId64
                           " outside the vocabulary [0, %" PRId64 ")",
                           id[i], i, vocab);
    for (int64_t i = 0; i < n; i++) {
        const uint16_t *src = be_tensor_addr(table, id[i], 0);
        if (y->dtype == BE_BF16) {
            memcpy(be_tensor_addr(y, i, 0), src, (size_t)d * 2);
            continue;
        }
        float *dst = be_tensor_addr(y, i, 0);
        for (int64_t j = 0; j < d; j++) dst[j] = bf16_to_f32(src[j]);
    }
    return 0;
}
