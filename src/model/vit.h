/* vit: the Qwen2.5-VL vision tower (ViT + patch merger) on the backend op table (spec §4):
 * patch embedding (the Conv3d as a [C, 3·T·P·P] matmul), 2-D rotary, window reordering at
 * merge-unit granularity, `depth` blocks (RMSNorm, fused qkv with bias, rotary, segment
 * attention over windows or over whole temporal groups at fullatt_block_indexes, proj,
 * RMSNorm, SwiGLU MLP with biases), the merger (RMSNorm, M x M grouping, Linear, exact GELU,
 * Linear) and the inverse reordering. Output: one row of out_hidden_size per merge unit, in
 * raster order (grid by grid, temporal group, merged row, merged column) — the order of the
 * prompt's <|image_pad|> / <|video_pad|> tokens.
 * The Qwen2-VL tower runs through the same code: LayerNorm with bias instead of RMSNorm,
 * fc1 -> quick_gelu -> fc2 instead of SwiGLU, no windows (every block attends to its whole
 * temporal group), LayerNorm in the merger.
 *
 * Memory: weights are borrowed (struct weights' BF16 data, used in place); one compute
 * buffer of activations for max_patches rows and the host index arrays are allocated at
 * vit_new. A forward allocates nothing.
 * Precision: activations and the residual stream are F32, weights BF16. On the CPU's
 * portable/avx2 matmul path this is an FP32 forward (the reference test); the avx512 path
 * rounds matmul inputs to BF16 as the BF16 reference does.
 *
 * Threads: the backend's owner thread (the engine thread). */
#ifndef VELA_MODEL_VIT_H
#define VELA_MODEL_VIT_H

#include "backend/backend.h"
#include "model/config.h"
#include "model/vit_window.h"
#include "util/err.h"

#include <stdint.h>

struct weights;

struct vit_options {
    int64_t max_patches; /* Σ t·h·w per forward, M² .. VELA_VIT_MAX_PATCHES; sizes the scratch */
};

struct vit;

/* Builds the tower for config c (a Qwen2.5-VL or Qwen2-VL vision tower) over weights w on
 * backend b. All three are borrowed and must outlive the result; w must hold converted data
 * (not WEIGHTS_CHECK_ONLY). *out is freed with vit_free. VELA_EUNSUP for other towers. */
int vit_new(struct vit **out, struct be *b, const struct model_config *c, const struct weights *w,
            const struct vit_options *o, struct err *e);
void vit_free(struct vit *v); /* accepts NULL */

/* A tensor handed to vit_new_lookup: BF16 data (borrowed; must outlive the vit) and shape. */
struct vit_tensor_src {
    const uint16_t *bf16;
    int32_t n_dims;
    int64_t shape[5];
    int64_t n_elems;
};
/* Fills *out for the canonical (legacy) name, or fails (VELA_ENOTFOUND) naming it. */
typedef int (*vit_lookup_fn)(void *ctx, const char *name, struct vit_tensor_src *out,
                             struct err *e);
/* vit_new over any weight source (in-memory generated weights for benchmarks, a device
 * upload later); vit_new is this with a lookup into struct weights. */
int vit_new_lookup(struct vit **out, struct be *b, const struct model_config *c, vit_lookup_fn fn,
                   void *ctx, const struct vit_options *o, struct err *e);

/* Encodes n grids at once. pixel_values: host F32 (n_rows, 3·T·P·P) rows in processor
 * order (spec §3.6), n_rows = Σ t·h·w; out: host F32 (n_rows / M², out_hidden_size), caller
 * owned. Grids never attend to each other, so one call equals one call per grid.
 * VELA_EINVAL / VELA_ELIMIT for bad grids, a row count that does not match, or more than
 * max_patches rows. */
int vit_forward(struct vit *v, const float *pixel_values, int64_t n_rows,
                const struct vit_grid *grids, int32_t n_grids, float *out, struct err *e);

/* Debugging tap: after block `block` of each later forward, the hidden states (n_rows,
 * hidden_size) F32, in window order, are copied to dst (host, borrowed until the next
 * vit_set_tap). block < 0 turns it off. */
void vit_set_tap(struct vit *v, int32_t block, float *dst);

int32_t vit_out_dim(const struct vit *v);   /* out_hidden_size */
int32_t vit_patch_dim(const struct vit *v); /* 3·T·P·P columns of pixel_values (1176) */
int32_t vit_unit_rows(const struct vit *v); /* M²: patches per output row */
int64_t vit_max_patches(const struct vit *v);

#endif
