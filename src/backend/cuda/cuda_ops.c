/* cuda_ops: host side of the CUDA backend's non-GEMM, non-attention ops: norms, elementwise,
 * embedding and row gathers, rotary embeddings, kv_store and greedy sampling. Each entry
 * turns tensors into device views (struct kmat), moves any host metadata (positions, row
 * lists, slots, inv_freq) through the metadata ring and queues one kernel per tensor.
 * Arguments were validated by backend.c, attn.c or vit_ops.c; the one check left to do here
 * is embed's id range, which lives in device memory: the ids are read back (a sync) so a bad
 * id fails before any row is written, with its position, as on the CPU.
 * Invariant: every kernel is queued on the backend's stream after the copy of its metadata.
 * Owner thread only. */
#include "backend/cpu/attn_ops.h"
#include "backend/cpu/vit_ops.h"
#include "backend/cuda/cuda_impl.h"
#include "util/limits.h"

#include <inttypes.h>
#include <stddef.h>
#include <string.h>

int cu_rms_norm(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *gain,
                float eps, struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    int rc = cu_enter(c, e);
    if (rc != 0) return rc;
    CU_TRY(kl_rms_norm(c->stream, cu_kmat(y), cu_kmat(x), cu_kmat(gain), eps, be_tensor_rows(x),
                       be_tensor_cols(x)),
           e);
    return 0;
}

int cu_add_rms_norm(struct be *b, struct tensor *h, struct tensor *y, const struct tensor *x,
                    const struct tensor *gain, float eps, struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    int rc = cu_enter(c, e);
    if (rc != 0) return rc;
    CU_TRY(kl_add_rms_norm(c->stream, cu_kmat(h), cu_kmat(y), cu_kmat(x), cu_kmat(gain), eps,
                           be_tensor_rows(h), be_tensor_cols(h)),
           e);
    return 0;
}

int cu_add(struct be *b, struct tensor *y, const struct tensor *a, const struct tensor *c2,
           struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    int rc = cu_enter(c, e);
    if (rc != 0) return rc;
    CU_TRY(kl_add(c->stream, cu_kmat(y), cu_kmat(a), cu_kmat(c2), be_tensor_rows(y),
                  be_tensor_cols(y)),
           e);
    return 0;
}

int cu_silu_mul(struct be *b, struct tensor *y, const struct tensor *gate, const struct tensor *up,
                struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    int rc = cu_enter(c, e);
    if (rc != 0) return rc;
    int64_t f = be_tensor_cols(y);
    /* Fused gate_up: the up half starts at column F of the same rows. */
    CU_TRY(kl_silu_mul(c->stream, cu_kmat(y), cu_kmat(gate), cu_kmat(up ? up : gate), up ? 0 : f,
                       be_tensor_rows(y), f),
           e);
    return 0;
}

int cu_gelu(struct be *b, struct tensor *y, const struct tensor *x, struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    int rc = cu_enter(c, e);
    if (rc != 0) return rc;
    CU_TRY(kl_gelu(c->stream, cu_kmat(y), cu_kmat(x), be_tensor_rows(y), be_tensor_cols(y)), e);
    return 0;
}

int cu_layer_norm(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *gain,
                  const struct tensor *bias, float eps, struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    int rc = cu_enter(c, e);
    if (rc != 0) return rc;
    CU_TRY(kl_layer_norm(c->stream, cu_kmat(y), cu_kmat(x), cu_kmat(gain), cu_kmat(bias), eps,
                         be_tensor_rows(x), be_tensor_cols(x)),
           e);
    return 0;
}

int cu_quick_gelu(struct be *b, struct tensor *y, const struct tensor *x, struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    int rc = cu_enter(c, e);
    if (rc != 0) return rc;
    CU_TRY(kl_quick_gelu(c->stream, cu_kmat(y), cu_kmat(x), be_tensor_rows(y), be_tensor_cols(y)),
           e);
    return 0;
}

/* Reads ids (a packed I32 row on the device) back in chunks and checks each lies in
 * [0, vocab). */
static int check_ids(struct be_cuda *c, const struct tensor *ids, int64_t n, int64_t vocab,
                     struct err *e) {
    const int32_t *d = be_tensor_addr(ids, 0, 0);
    for (int64_t i0 = 0; i0 < n; i0 += CU_RD_IDS) {
        int64_t cnt = n - i0 < CU_RD_IDS ? n - i0 : CU_RD_IDS;
        CU_TRY(
            cudaMemcpyAsync(c->rd_host, d + i0, (size_t)cnt * 4, cudaMemcpyDeviceToHost, c->stream),
            e);
        CU_TRY(cudaStreamSynchronize(c->stream), e);
        for (int64_t i = 0; i < cnt; i++)
            if (c->rd_host[i] < 0 || c->rd_host[i] >= vocab)
                return err_set(e, VELA_EINVAL,
                               "embed: token id %" PRId32 " at position %" PRId64
                               " outside the vocabulary [0, %" PRId64 ")",
                               c->rd_host[i], i0 + i, vocab);
    }
    return 0;
}

int cu_embed(struct be *b, struct tensor *y, const struct tensor *table, const struct tensor *ids,
             struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    int64_t n = be_tensor_rows(y), d = be_tensor_cols(y);
    int rc = cu_enter(c, e);
    if (rc == 0) rc = check_ids(c, ids, n, be_tensor_rows(table), e);
    if (rc != 0) return rc;
    CU_TRY(kl_embed(c->stream, cu_kmat(y), cu_kmat(table), be_tensor_addr(ids, 0, 0), n, d), e);
    return 0;
}

int cu_gather_rows(struct be *b, struct tensor *y, const struct tensor *x, const int32_t *rows,
                   struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    int64_t n = be_tensor_rows(y);
    void *d_rows = NULL;
    int rc = cu_enter(c, e);
    if (rc == 0) rc = cu_meta_put(c, rows, (size_t)n * 4, &d_rows, e);
    if (rc != 0) return rc;
    CU_TRY(kl_gather_rows(c->stream, cu_kmat(y), cu_kmat(x), d_rows, n, be_tensor_cols(y)), e);
    return 0;
}

int cu_kv_store(struct be *b, struct tensor *k_cache, struct tensor *v_cache,
                const struct tensor *k, const struct tensor *v, const struct attn_meta *m,
                struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    int64_t n = be_tensor_rows(k), w = be_tensor_cols(k);
    void *slots = NULL;
    int rc = cu_enter(c, e);
    if (rc == 0) rc = cu_meta_put(c, m->slot_mapping, (size_t)n * 4, &slots, e);
    if (rc != 0) return rc;
    CU_TRY(kl_kv_store(c->stream, cu_kmat(k_cache), cu_kmat(k), slots, n, w), e);
    CU_TRY(kl_kv_store(c->stream, cu_kmat(v_cache), cu_kmat(v), slots, n, w), e);
    return 0;
}

/* Positions (rows x n int32) and inv_freq (n_freq floats) in one metadata piece. */
static int put_pos(struct be_cuda *c, const int32_t *pos, int64_t rows, int64_t n,
                   const float *inv_freq, int32_t n_freq, int32_t **d_pos, float **d_inv,
                   struct err *e) {
    size_t pos_bytes = ((size_t)(rows * n) * 4 + 15) & ~(size_t)15;
    size_t total = pos_bytes + (size_t)n_freq * 4;
    void *h = NULL, *d = NULL;
    int rc = cu_meta_reserve(c, total, &h, &d, e);
    if (rc != 0) return rc;
    memcpy(h, pos, (size_t)(rows * n) * 4);
    memcpy((char *)h + pos_bytes, inv_freq, (size_t)n_freq * 4);
    *d_pos = d;
    *d_inv = (float *)((char *)d + pos_bytes);
    return cu_meta_send(c, h, d, total, e);
}

int cu_rope(struct be *b, struct tensor *q, struct tensor *k, const struct rope_args *a,
            struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    int32_t hd = a->head_dim;
    int64_t n = be_tensor_rows(q);
    float inv[VELA_CFG_MAX_HEAD_DIM / 2];
    cpu_rope_inv_freq(a->theta, hd, inv); /* the CPU's own FP32 values, bit for bit */
    int32_t *d_pos = NULL;
    float *d_inv = NULL;
    int rc = cu_enter(c, e);
    if (rc == 0) rc = put_pos(c, a->pos, 3, n, inv, hd / 2, &d_pos, &d_inv, e);
    if (rc != 0) return rc;
    CU_TRY(kl_rope(c->stream, cu_kmat(q), n, be_tensor_cols(q) / hd, hd, d_pos, d_inv,
                   a->section[0], a->section[1]),
           e);
    if (k)
        CU_TRY(kl_rope(c->stream, cu_kmat(k), n, be_tensor_cols(k) / hd, hd, d_pos, d_inv,
                       a->section[0], a->section[1]),
               e);
    return 0;
}

int cu_rope2d(struct be *b, struct tensor *q, struct tensor *k, const struct rope2d_args *a,
              struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    int32_t hd = a->head_dim;
    int64_t n = be_tensor_rows(q);
    float inv[VELA_CFG_MAX_HEAD_DIM / 4];
    cpu_rope2d_inv_freq(a->theta, hd, inv);
    int32_t *d_pos = NULL;
    float *d_inv = NULL;
    int rc = cu_enter(c, e);
    if (rc == 0) rc = put_pos(c, a->pos, 2, n, inv, hd / 4, &d_pos, &d_inv, e);
    if (rc != 0) return rc;
    CU_TRY(kl_rope2d(c->stream, cu_kmat(q), n, be_tensor_cols(q) / hd, hd, d_pos, d_inv), e);
    CU_TRY(kl_rope2d(c->stream, cu_kmat(k), n, be_tensor_cols(k) / hd, hd, d_pos, d_inv), e);
    return 0;
}

int cu_sample_greedy(struct be *b, struct tensor *ids, const struct tensor *logits, struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    int rc = cu_enter(c, e);
    if (rc != 0) return rc;
    CU_TRY(kl_argmax(c->stream, be_tensor_addr(ids, 0, 0), cu_kmat(logits), be_tensor_rows(logits),
                     be_tensor_cols(logits)),
           e);
    return 0;
}

int cu_sample(struct be *b, struct tensor *ids, const struct tensor *logits,
              const struct be_sample_row *rows, struct err *e) {
    _Static_assert(
        sizeof(struct ksample_row) == sizeof(struct be_sample_row) &&
            offsetof(struct ksample_row, top_k) == offsetof(struct be_sample_row, top_k) &&
            offsetof(struct ksample_row, min_p) == offsetof(struct be_sample_row, min_p) &&
            offsetof(struct ksample_row, key) == offsetof(struct be_sample_row, key),
        "ksample_row mirrors be_sample_row");
    struct be_cuda *c = (struct be_cuda *)b;
    int64_t n = be_tensor_rows(logits);
    void *d = NULL;
    int rc = cu_enter(c, e);
    if (rc == 0) rc = cu_meta_put(c, rows, (size_t)n * sizeof *rows, &d, e);
    if (rc != 0) return rc;
    CU_TRY(kl_sample(c->stream, be_tensor_addr(ids, 0, 0), cu_kmat(logits), n,
                     be_tensor_cols(logits), d),
           e);
    return 0;
}
