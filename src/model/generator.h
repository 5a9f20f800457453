/* generator: deterministic model folders (`vela make-model`) and dummy weights.
 *
 * Weights are pseudo-random BF16 values that are a pure function of (seed, tensor name,
 * element index), so the same bytes come out on every machine, in any chunking and in any
 * order: gen_tensor_bf16() is the one definition, used by the file writer here and by
 * `--load-format dummy` (in memory, later on a device). Distributions per parameter kind
 * are chosen so activations stay finite through a whole forward pass (see generator.c).
 *
 * gen_model_write() writes a complete folder: config.json, generation_config.json,
 * preprocessor_config.json (vision models), tokenizer.json, tokenizer_config.json,
 * chat_template.json and model.safetensors, or shards model-0000k-of-0000n.safetensors
 * plus model.safetensors.index.json when the weights exceed the shard size.
 * Main thread; gen_tensor_bf16 may be called from any thread. */
#ifndef VELA_MODEL_GENERATOR_H
#define VELA_MODEL_GENERATOR_H

#include "model/config.h"
#include "model/params.h"
#include "model/presets.h"
#include "util/err.h"

#include <stdbool.h>
#include <stdint.h>

/* Shard size like the Hugging Face "4GB" max_shard_size (tensor bytes per file). */
#define GEN_DEFAULT_SHARD_BYTES 4000000000ull
/* Generation buffer: bounds memory whatever the model size (the 72B writes 147 GB). */
#define GEN_CHUNK_BYTES (64ull << 20)
#define GEN_MAX_THREADS 64

struct gen_spec {
    uint64_t seed;
};

/* Half-width a of the uniform(-a, a) distribution of tensor pt; 0 for norm gains, which
 * are exactly 1.0. */
float gen_tensor_scale(const struct param_tensor *pt);

/* Writes elements [elem_begin, elem_begin + n) of tensor pt (row-major, as stored) as BF16
 * into out (n elements, caller-owned). VELA_EINVAL when the range is outside the tensor. */
int gen_tensor_bf16(const struct gen_spec *g, const struct param_tensor *pt, int64_t elem_begin,
                    int64_t n, uint16_t *out, struct err *e);

/* gen_tensor_bf16 split over up to n_threads threads (same values whatever the count). */
int gen_tensor_bf16_par(const struct gen_spec *g, const struct param_tensor *pt, int64_t begin,
                        int64_t n, uint16_t *out, int32_t n_threads, struct err *e);

typedef void (*gen_progress_fn)(void *ctx, uint64_t done_bytes, uint64_t total_bytes);

struct gen_options {
    uint64_t seed;
    uint64_t max_shard_bytes;  /* tensor bytes per file; 0 = GEN_DEFAULT_SHARD_BYTES */
    bool config_only;          /* every file except the weights */
    const char *tokenizer_dir; /* borrowed; NULL = the tiny tokenizer (small presets only) */
    int32_t n_threads;         /* generation threads; <= 0 means 1 */
    gen_progress_fn progress;  /* optional; called after each chunk */
    void *progress_ctx;
};

/* Writes the weights of config c into dir (which must exist): model.safetensors, or shards
 * and an index when they exceed o->max_shard_bytes. Only seed, max_shard_bytes, n_threads
 * and progress of o are used. */
int gen_weights_write(const struct model_config *c, const char *dir, const struct gen_options *o,
                      struct err *e);

/* Writes the whole folder for preset p into dir (created if missing). When cfg_out is not
 * NULL it receives the config written (vocab and special ids completed). */
int gen_model_write(const struct preset *p, const char *dir, const struct gen_options *o,
                    struct model_config *cfg_out, struct err *e);

#endif
