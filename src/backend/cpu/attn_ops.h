/* attn_ops: the CPU backend's entries for the language-model attention ops (rope.c,
 * kv_cache.c, attention.c, attention_avx512.c, attention_prefill_avx512.c), referenced from
 * the op table in backend_cpu.c.
 * Arguments are already validated by backend/attn.c. Owner thread only; each op fans out to the
 * pool. */
#ifndef VELA_BACKEND_CPU_ATTN_OPS_H
#define VELA_BACKEND_CPU_ATTN_OPS_H

#include "backend/backend.h"

int cpu_rope(struct be *b, struct tensor *q, struct tensor *k, const struct rope_args *a,
             struct err *e);
int cpu_kv_store(struct be *b, struct tensor *k_cache, struct tensor *v_cache,
                 const struct tensor *k, const struct tensor *v, const struct attn_meta *m,
                 struct err *e);
int cpu_attention(struct be *b, struct tensor *o, const struct tensor *q,
                  const struct tensor *k_cache, const struct tensor *v_cache,
                  const struct attn_meta *m, struct err *e);

/* The AVX-512 kernel of cpu_attention (attention_avx512.c), chosen by it on a CPU_ISA_AVX512
 * backend for head_dim up to ATT512_MAX_HEAD_DIM (the per-thread scratch holds 16 transposed
 * keys and the tile's queries at that width); larger head dims use the AVX2 kernel. Same
 * contract as cpu_attention; VELA_EUNSUP above the limit. */
#define ATT512_MAX_HEAD_DIM 256
/* Bytes of the backend's split-K scratch (struct be_cpu attn_scratch), allocated once with
 * the backend: the partials of a decode call split across threads (head tile x (head_dim + 2)
 * floats per split: 1.8 KB at the 0.5B shape, 8 KB at the widest), so 1 MiB holds at least
 * 127 splits; a call that would need more splits fewer. */
#define ATT512_SPLIT_SCRATCH_BYTES (1u << 20)
int cpu_attention_avx512(struct be *b, struct tensor *o, const struct tensor *q,
                         const struct tensor *k_cache, const struct tensor *v_cache,
                         const struct attn_meta *m, struct err *e);

/* A prefill sub-tile of cpu_attention_avx512 for cpu_att512p_run (attention_prefill_avx512.c):
 * query rows [r0, r0 + nr) of one sequence, row r0 at position pos0, and query heads
 * h0 .. h0 + ng - 1, all of kv head kvh, against keys [0, ke) (ke = pos0 + nr) of the BF16
 * cache through the sequence's block table bt; nr * ng <= ATT512P_MAX_QV, head_dim a multiple
 * of 32 up to ATT512_MAX_HEAD_DIM. Writes exactly those rows' heads of o. */
#define ATT512P_MAX_QV 32
struct att512p_tile {
    const struct tensor *q, *kc, *vc;
    struct tensor *o;
    const int32_t *bt;
    int32_t block_size, head_dim;
    float scale;
    int64_t r0, pos0, kvh, h0, ke;
    int nr, ng;
};
void cpu_att512p_run(const struct att512p_tile *a);

/* The last index i < n with a[i] <= v, for a increasing and a[0] <= v: the sequence owning a
 * flattened row (a = query_start), the item owning a split unit (a = unit starts). */
static inline int32_t cpu_last_le(const int32_t *a, int32_t n, int64_t v) {
    int32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int32_t mid = (lo + hi + 1) / 2;
        if (a[mid] <= v)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* inv_freq[j] = 1 / theta^(2j / head_dim) for j < head_dim / 2, in FP32 as the reference
 * computes it (the exponent is an FP32 quotient). */
void cpu_rope_inv_freq(float theta, int32_t head_dim, float *inv_freq);

#endif
