/* weights: checks an open checkpoint against the tensors its config implies (params.h) and
 * gives the model code a lookup by canonical name.
 *
 * Canonical names are the legacy (official hub) names: "model.layers.3.mlp.up_proj.weight",
 * "visual.blocks.0.attn.qkv.weight". A checkpoint may use them or the names some
 * transformers releases write ("model.language_model.*", "model.visual.*"; spec §2.2); both
 * are accepted, and mixed, but a tensor present under both names is an error.
 *
 * Checks: every expected tensor present with the shape the config implies (else an error
 * naming the first bad tensor and its expected shape; the others are logged), dtype BF16,
 * F16 or F32; tensors nobody expects are warned about and listed, never fatal.
 *
 * Data: every weight is readable as BF16. A BF16 tensor aligned to 2 bytes points into the
 * mapping (valid while the st_model stays open); F16 and F32 tensors, and misaligned BF16
 * ones, are converted at load into buffers the struct weights owns (freed by weights_free).
 * With WEIGHTS_CHECK_ONLY nothing is converted and those tensors have bf16 == NULL.
 *
 * One owner thread builds and frees it; once built it is read-only and any thread may read. */
#ifndef VELA_MODEL_WEIGHTS_H
#define VELA_MODEL_WEIGHTS_H

#include "model/config.h"
#include "model/params.h"
#include "model/safetensors.h"
#include "util/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct weight {
    char name[PARAM_NAME_MAX]; /* canonical (legacy) name */
    const char *file_name;     /* name in the checkpoint; borrowed from the st_model */
    enum st_dtype file_dtype;  /* dtype on disk */
    int32_t n_dims;
    int64_t shape[PARAM_MAX_DIMS]; /* as params_tensors() gives it, checked against the file */
    int64_t n_elems;
    bool vision;
    enum param_kind kind;
    const uint16_t *bf16; /* n_elems BF16 values (see the header comment for who owns them) */
    bool owned;           /* bf16 is a buffer of ours, not a pointer into the mapping */
};

enum { WEIGHTS_CHECK_ONLY = 1 }; /* flags for weights_load */

struct weights; /* opaque */

/* Checks m against c and builds the table. c is copied; m is borrowed and must stay open
 * while the result is used (names and in-place data point into it). *out is freed with
 * weights_free(). */
int weights_load(struct weights **out, const struct model_config *c, const struct st_model *m,
                 unsigned flags, struct err *e);
void weights_free(struct weights *w);

/* `--load-format dummy`: every tensor c implies, with the model generator's values for seed
 * (gen_tensor_bf16: the same numbers `vela make-model --seed` writes), generated in memory on
 * n_threads threads; no files. lm_only leaves the vision tower's data out (bf16 NULL). Its
 * names are the canonical ones and file_name is "dummy". VELA_ENOMEM, before allocating, when
 * the data would not fit in the available memory. */
int weights_dummy(struct weights **out, const struct model_config *c, uint64_t seed,
                  int32_t n_threads, bool lm_only, struct err *e);

/* The expected tensors, in params_tensors() order. */
int64_t weights_count(const struct weights *w);
const struct weight *weights_at(const struct weights *w, int64_t i);
/* Lookup by canonical or new-style name; NULL when the config implies no such tensor. */
const struct weight *weights_find(const struct weights *w, const char *name);

/* Checkpoint tensors the config does not imply (names borrowed from the st_model). */
int64_t weights_n_unexpected(const struct weights *w);
const char *weights_unexpected(const struct weights *w, int64_t i);

/* Sums of the element counts of the checked tensors ("counts from the tensors"). */
int64_t weights_params_vision(const struct weights *w);
int64_t weights_params_lm(const struct weights *w);

/* Maps a checkpoint name to its canonical (legacy) form: "model.language_model.X" ->
 * "model.X", "model.visual.X" -> "visual.X", anything else unchanged. VELA_ELIMIT when it
 * does not fit in cap. */
int weights_canonical_name(const char *name, char *out, size_t cap, struct err *e);

#endif
