/* rope: rotary position embedding on the CPU, in place on q and k, NeoX rotate-half layout
 * with M-RoPE sections (spec §5.2/§5.3).
 *
 * Numerics follow the reference (transformers Qwen2_5_VLRotaryEmbedding + apply_multimodal_
 * rotary_pos_emb): inv_freq in FP32, theta = (float)pos * inv_freq[j] as one FP32 product,
 * cos/sin in FP32. F32 tensors rotate in FP32 (two products and a sum, no fused multiply-add
 * under -std=c11). BF16 tensors round cos/sin to BF16 and round each product and the sum, the
 * three roundings of the BF16 reference (spec §10.1).
 *
 * Invariants: each token row is rotated by exactly one thread (rows are split between pool
 * threads, or all run on the caller for a few rows); a row's cos/sin are computed once and
 * shared by all its q and k heads.
 * Owner thread only; work runs on the pool. */
#include "backend/cpu/attn_ops.h"
#include "backend/cpu/cpu_ops.h"
#include "util/bf16.h"
#include "util/limits.h"

#include <math.h>

/* Up to this many rows (a few decode tokens) rotate on the calling thread. */
#define ROPE_INLINE_ROWS 4

struct rope_ctx {
    struct tensor *q, *k;
    const struct rope_args *a;
    int64_t n;
    float inv_freq[VELA_CFG_MAX_HEAD_DIM / 2];
};

void cpu_rope_inv_freq(float theta, int32_t head_dim, float *inv_freq) {
    for (int32_t j = 0; j < head_dim / 2; j++) {
        float ex = (float)(2 * j) / (float)head_dim;
        inv_freq[j] = 1.0f / powf(theta, ex);
    }
}

static float r16(float x) {
    return bf16_to_f32(f32_to_bf16(x));
}

/* Rotates every head of row r of t with the row's cos/sin (half = head_dim / 2 entries). */
static void rope_row(const struct tensor *t, int64_t r, int32_t hd, const float *c,
                     const float *s) {
    int32_t half = hd / 2;
    int64_t nh = be_tensor_cols(t) / hd;
    if (t->dtype == BE_F32) {
        float *x = be_tensor_addr(t, r, 0);
        for (int64_t h = 0; h < nh; h++, x += hd) {
            for (int32_t j = 0; j < half; j++) {
                float x0 = x[j], x1 = x[j + half];
                float a0 = x0 * c[j], b0 = x1 * s[j];
                float a1 = x1 * c[j], b1 = x0 * s[j];
                x[j] = a0 - b0;
                x[j + half] = a1 + b1;
            }
        }
        return;
    }
    uint16_t *x = be_tensor_addr(t, r, 0);
    for (int64_t h = 0; h < nh; h++, x += hd) {
        for (int32_t j = 0; j < half; j++) {
            float x0 = bf16_to_f32(x[j]), x1 = bf16_to_f32(x[j + half]);
            float cj = r16(c[j]), sj = r16(s[j]);
            x[j] = f32_to_bf16(r16(x0 * cj) - r16(x1 * sj));
            x[j + half] = f32_to_bf16(r16(x1 * cj) + r16(x0 * sj));
        }
    }
}

static void rope_worker(void *arg, int i, int n_threads) {
    const struct rope_ctx *ctx = arg;
    const struct rope_args *a = ctx->a;
    int32_t hd = a->head_dim;
    float c[VELA_CFG_MAX_HEAD_DIM / 2], s[VELA_CFG_MAX_HEAD_DIM / 2];
    int64_t r0, r1;
    tp_partition(ctx->n, 1, i, n_threads, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int32_t j = 0;
        for (int row = 0; row < 3; row++) {
            float p = (float)a->pos[(int64_t)row * ctx->n + r];
            for (int32_t end = j + a->section[row]; j < end; j++) {
                float th = p * ctx->inv_freq[j];
                c[j] = cosf(th);
                s[j] = sinf(th);
            }
        }
        rope_row(ctx->q, r, hd, c, s);
        if (ctx->k) rope_row(ctx->k, r, hd, c, s);
    }
}

int cpu_rope(struct be *b, struct tensor *q, struct tensor *k, const struct rope_args *a,
             struct err *e) {
    (void)e;
    struct be_cpu *cb = (struct be_cpu *)b;
    struct rope_ctx ctx = {.q = q, .k = k, .a = a, .n = be_tensor_rows(q)};
    cpu_rope_inv_freq(a->theta, a->head_dim, ctx.inv_freq);
    if (ctx.n <= ROPE_INLINE_ROWS)
        rope_worker(&ctx, 0, 1); /* decode-sized: cheaper than waking the pool */
    else
        tp_run(cb->pool, rope_worker, &ctx);
    return 0;
}
