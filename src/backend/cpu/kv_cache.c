/* kv_cache: kv_store on the CPU: copies each new token's K and V row into its slot of the
 * paged cache, converting F32 <-> BF16 as the cache dtype asks (round to nearest even).
 * Invariant: slot rows are written whole, and only rows named by slot_mapping are touched.
 * It runs on the calling thread: even a 512-token prefill moves well under a megabyte per
 * layer, less than waking the pool costs when the machine is busy. F32 rows into a BF16 cache
 * (the language model's case) are rounded by the vec.h kernel of the backend's path.
 * Owner thread only. */
#include "backend/backend_impl.h"
#include "backend/cpu/attn_ops.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/vec.h"
#include "util/bf16.h"

#include <string.h>

static void copy_row(const struct vec_ops *v, const struct tensor *d, int64_t dr,
                     const struct tensor *s, int64_t sr) {
    int64_t w = be_tensor_cols(s);
    const void *sp = be_tensor_addr(s, sr, 0);
    void *dp = be_tensor_addr(d, dr, 0);
    if (d->dtype == s->dtype) {
        memcpy(dp, sp, (size_t)w * be_dtype_size(d->dtype));
    } else if (d->dtype == BE_BF16) {
        v->to_bf16(dp, sp, w);
    } else {
        const uint16_t *x = sp;
        float *y = dp;
        for (int64_t i = 0; i < w; i++) y[i] = bf16_to_f32(x[i]);
    }
}

int cpu_kv_store(struct be *b, struct tensor *k_cache, struct tensor *v_cache,
                 const struct tensor *k, const struct tensor *v, const struct attn_meta *m,
                 struct err *e) {
    (void)e;
    const struct vec_ops *vo = vec_ops_for(((const struct be_cpu *)b)->isa);
    for (int64_t r = 0; r < be_tensor_rows(k); r++) {
        copy_row(vo, k_cache, m->slot_mapping[r], k, r);
        copy_row(vo, v_cache, m->slot_mapping[r], v, r);
    }
    return 0;
}
