/* rope2d: the vision tower's 2-D rotary embedding on the CPU, in place on q and k (spec §4.3).
 *
 * Numerics follow transformers (Qwen2_5_VLVisionRotaryEmbedding + apply_rotary_pos_emb_vision):
 * inv_freq in FP32, angle = (float)pos * inv_freq[j] as one FP32 product, cos/sin in FP32,
 * q·cos + rotate_half(q)·sin in FP32 (two products and a sum, no fused multiply-add under
 * -std=c11), and a BF16 tensor is rounded once at the store. The first head_dim/4 angle slots
 * use the patch row, the next head_dim/4 the patch column; the second half of a head reuses
 * the same angles (pairs (i, i + head_dim/2), NeoX rotate-half).
 *
 * Invariants: each token row is rotated by exactly one thread (rows are split between pool
 * threads); a row's cos/sin are computed once and shared by all its q and k heads.
 * Owner thread only; work runs on the pool. */
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/vit_ops.h"
#include "util/bf16.h"
#include "util/limits.h"

#include <math.h>

/* Rows per thread below which the pool is not woken. */
#define ROPE2D_MIN_ROWS 8

struct rope2d_ctx {
    const struct tensor *q, *k;
    const struct rope2d_args *a;
    int64_t n;
    float inv_freq[VELA_CFG_MAX_HEAD_DIM / 4];
};

void cpu_rope2d_inv_freq(float theta, int32_t head_dim, float *inv_freq) {
    int32_t spatial = head_dim / 2;
    for (int32_t j = 0; j < head_dim / 4; j++) {
        float ex = (float)(2 * j) / (float)spatial;
        inv_freq[j] = 1.0f / powf(theta, ex);
    }
}

/* Rotates every head of row r of t with the row's cos/sin (half = head_dim / 2 entries). */
static void rotate_row(const struct tensor *t, int64_t r, int32_t hd, const float *c,
                       const float *s) {
    int32_t half = hd / 2;
    int64_t nh = be_tensor_cols(t) / hd;
    for (int64_t h = 0; h < nh; h++) {
        int64_t c0 = h * hd;
        for (int32_t j = 0; j < half; j++) {
            float x0 = cpu_get_f32(t, r, c0 + j), x1 = cpu_get_f32(t, r, c0 + j + half);
            float a0 = x0 * c[j], b0 = x1 * s[j];
            float a1 = x1 * c[j], b1 = x0 * s[j];
            cpu_set_f32(t, r, c0 + j, a0 - b0);
            cpu_set_f32(t, r, c0 + j + half, a1 + b1);
        }
    }
}

static void rope2d_rows(void *arg, int64_t r0, int64_t r1) {
    const struct rope2d_ctx *ctx = arg;
    int32_t hd = ctx->a->head_dim, nf = hd / 4;
    float c[VELA_CFG_MAX_HEAD_DIM / 2], s[VELA_CFG_MAX_HEAD_DIM / 2];
    for (int64_t r = r0; r < r1; r++) {
        float pr = (float)ctx->a->pos[r], pc = (float)ctx->a->pos[ctx->n + r];
        for (int32_t j = 0; j < nf; j++) {
            float tr = pr * ctx->inv_freq[j], tc = pc * ctx->inv_freq[j];
            c[j] = cosf(tr), s[j] = sinf(tr);
            c[nf + j] = cosf(tc), s[nf + j] = sinf(tc);
        }
        rotate_row(ctx->q, r, hd, c, s);
        rotate_row(ctx->k, r, hd, c, s);
    }
}

int cpu_rope2d(struct be *b, struct tensor *q, struct tensor *k, const struct rope2d_args *a,
               struct err *e) {
    (void)e;
    struct rope2d_ctx ctx = {.q = q, .k = k, .a = a, .n = be_tensor_rows(q)};
    cpu_rope2d_inv_freq(a->theta, a->head_dim, ctx.inv_freq);
    cpu_parallel_rows((struct be_cpu *)b, ctx.n, ROPE2D_MIN_ROWS, rope2d_rows, &ctx);
    return 0;
}
