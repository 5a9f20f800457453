/* kv_plan: KV-cache sizing from a memory budget (see kv_plan.h for the rules).
 *
 * Invariants of a successful plan:
 *   1. n_blocks in [blocks of one max_model_len request, VELA_KV_MAX_BLOCKS];
 *   2. kv_bytes = n_blocks * block_bytes <= the budget (never rounded up);
 *   3. max_concurrency = n_blocks / ceil(max_model_len / block_size), vLLM v1's formula
 *      (get_max_concurrency_for_kv_cache_config): 2.5x means two full-length requests and
 *      half of a third.
 * All size arithmetic is overflow-checked: the config may come from an untrusted folder.
 * Any thread. */
#include "engine/kv_plan.h"

#include "model/config.h"
#include "util/file.h"
#include "util/limits.h"
#include "util/size.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t kv_block_bytes(const struct model_config *c, int32_t block_size, size_t kv_dtype_bytes) {
    size_t n = 2; /* K and V */
    if (!size_mul_ok(n, (size_t)c->num_hidden_layers, &n) ||
        !size_mul_ok(n, (size_t)block_size, &n) ||
        !size_mul_ok(n, (size_t)c->num_key_value_heads, &n) ||
        !size_mul_ok(n, (size_t)c->head_dim, &n) || !size_mul_ok(n, kv_dtype_bytes, &n))
        return SIZE_MAX;
    return n;
}

size_t kv_scratch_bytes(const struct model_config *c, int32_t max_tokens, int32_t logit_rows) {
    /* lm.c carves: ids (T), h, x (T x D), q, att (T x Nq*hd), k, v (T x Nkv*hd), gate, up
     * (T x F), xs (S x D), lg (S x V), sids (S); all 4-byte elements. */
    size_t D = (size_t)c->hidden_size, F = (size_t)c->intermediate_size;
    size_t nq = (size_t)c->num_attention_heads * (size_t)c->head_dim;
    size_t nkv = (size_t)c->num_key_value_heads * (size_t)c->head_dim;
    size_t per_row = 1 + 2 * D + 2 * nq + 2 * nkv + 2 * F,
           per_logit = D + (size_t)c->vocab_size + 1;
    size_t a, b, n;
    if (!size_mul_ok(per_row, (size_t)max_tokens, &a) ||
        !size_mul_ok(per_logit, (size_t)logit_rows, &b) || !size_add_ok(a, b, &n) ||
        !size_mul_ok(n, 4, &n))
        return SIZE_MAX;
    return n;
}

static int check_in(const struct kv_plan_in *in, struct err *e) {
    if (!in->cfg || in->block_size < 1 || in->block_size > VELA_KV_MAX_BLOCK_SIZE ||
        (in->kv_dtype_bytes != 2 && in->kv_dtype_bytes != 4) || in->max_model_len < 1 ||
        in->max_num_batched_tokens < 1 || in->max_num_seqs < 1)
        return err_set(e, VELA_EINVAL,
                       "kv plan: block size %d (1..%d), dtype %zu bytes, max_model_len %d, "
                       "max_num_batched_tokens %d, max_num_seqs %d",
                       in->block_size, VELA_KV_MAX_BLOCK_SIZE, in->kv_dtype_bytes,
                       in->max_model_len, in->max_num_batched_tokens, in->max_num_seqs);
    if (in->kv_cache_bytes == 0 && !(in->mem_fraction > 0 && in->mem_fraction <= 1))
        return err_set(e, VELA_EINVAL, "kv plan: memory fraction %g outside (0, 1]",
                       in->mem_fraction);
    return 0;
}

/* The byte budget for K and V; VELA_ELIMIT when weights and scratch leave nothing. */
static int budget(const struct kv_plan_in *in, size_t scratch, size_t *out, struct err *e) {
    if (in->kv_cache_bytes > 0) {
        *out = in->kv_cache_bytes;
        return 0;
    }
    double share = in->mem_fraction * (double)in->total_bytes;
    double used = (double)in->weights_bytes + (double)scratch;
    if (share <= used)
        return err_set(e, VELA_ELIMIT,
                       "no memory left for the KV cache: %.0f%% of %.1f MiB is %.1f MiB, the "
                       "weights (%.1f MiB) and activations (%.1f MiB) take %.1f MiB",
                       in->mem_fraction * 100, (double)in->total_bytes / 1048576.0,
                       share / 1048576.0, (double)in->weights_bytes / 1048576.0,
                       (double)scratch / 1048576.0, used / 1048576.0);
    double left = share - used;
    *out = left >= (double)SIZE_MAX ? SIZE_MAX : (size_t)left;
    return 0;
}

int kv_plan_compute(const struct kv_plan_in *in, struct kv_plan *out, struct err *e) {
    memset(out, 0, sizeof *out);
    int rc = check_in(in, e);
    if (rc != 0) return rc;
    size_t bb = kv_block_bytes(in->cfg, in->block_size, in->kv_dtype_bytes);
    size_t scratch = kv_scratch_bytes(in->cfg, in->max_num_batched_tokens, in->max_num_seqs);
    if (bb == 0 || bb == SIZE_MAX || scratch == SIZE_MAX)
        return err_set(e, VELA_ELIMIT, "kv plan: block or scratch size overflows");
    size_t avail = 0;
    rc = budget(in, scratch, &avail, e);
    if (rc != 0) return rc;
    size_t n = avail / bb;
    if (n > VELA_KV_MAX_BLOCKS) n = VELA_KV_MAX_BLOCKS;
    int64_t need = ((int64_t)in->max_model_len + in->block_size - 1) / in->block_size;
    if ((int64_t)n < need)
        return err_set(e, VELA_ELIMIT,
                       "the KV cache budget of %.1f MiB holds %zu blocks (%zu tokens); one "
                       "request of max_model_len %d tokens needs %" PRId64
                       " blocks (%.1f MiB): lower --max-model-len or give the cache more memory",
                       (double)avail / 1048576.0, n, n * (size_t)in->block_size, in->max_model_len,
                       need, (double)need * (double)bb / 1048576.0);
    out->n_blocks = (int32_t)n;
    out->block_bytes = bb;
    out->kv_bytes = n * bb;
    out->scratch_bytes = scratch;
    out->n_tokens = (int64_t)n * in->block_size;
    out->max_concurrency = (double)n / (double)need;
    return 0;
}

int kv_mem_available(size_t *bytes, struct err *e) {
    int rc = file_mem_available(bytes, e);
    if (rc != 0) err_wrap(e, "available memory unknown (give --kv-cache-memory)");
    return rc;
}

void kv_plan_describe(const struct kv_plan *p, int32_t block_size, int32_t max_model_len, char *buf,
                      size_t cap) {
    snprintf(buf, cap,
             "KV cache: %d blocks of %d tokens (%.1f MiB), %" PRId64 " tokens\n"
             "Maximum concurrency for %d tokens per request: %.2fx\n",
             p->n_blocks, block_size, (double)p->kv_bytes / 1048576.0, p->n_tokens, max_model_len,
             p->max_concurrency);
}
