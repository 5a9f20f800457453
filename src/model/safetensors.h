/* safetensors: read-only access to safetensors files and sharded checkpoints, and a writer.
 *
 * Reading maps each file (mmap) and validates the whole header before anything uses it:
 * header length inside the file and under VELA_ST_HEADER_MAX_BYTES, a JSON object, known
 * dtypes, shapes with <= VELA_ST_MAX_DIMS non-negative dims, shape x dtype size equal to the
 * byte range, ranges inside the data section and not overlapping. Tensor data is used in
 * place (pointers into the mapping) for as long as the st_file / st_model is open.
 * One owner thread; the mapped data may be read from any thread while open. */
#ifndef VELA_MODEL_SAFETENSORS_H
#define VELA_MODEL_SAFETENSORS_H

#include "util/err.h"
#include "util/limits.h"

#include <stddef.h>
#include <stdint.h>

enum st_dtype {
    ST_BF16 = 0,
    ST_F16,
    ST_F32,
    ST_F64,
    ST_I8,
    ST_U8,
    ST_I16,
    ST_I32,
    ST_I64,
    ST_BOOL,
    ST_N_DTYPES
};

struct st_tensor {
    char *name; /* owned by the file */
    enum st_dtype dtype;
    int32_t n_dims;
    int64_t shape[VELA_ST_MAX_DIMS];
    int64_t n_elems;
    const void *data; /* into the mapping, n_bytes long */
    size_t n_bytes;
    int32_t shard; /* index of the file it lives in (st_model) */
};

struct st_file;  /* one mapped .safetensors file */
struct st_model; /* a checkpoint: one file, or shards listed by model.safetensors.index.json */

/* Opens and validates one file; *out is freed with st_close(). */
int st_open(struct st_file **out, const char *path, struct err *e);
/* Validates a header given as bytes (the whole file image); used by st_open and the fuzzer.
 * On success *out owns a copy of nothing: data pointers point into buf, which must outlive
 * the result. */
int st_parse(struct st_file **out, const unsigned char *buf, size_t len, const char *what,
             struct err *e);
void st_close(struct st_file *f);
int64_t st_file_count(const struct st_file *f);
const struct st_tensor *st_file_tensor(const struct st_file *f, int64_t i);
const struct st_tensor *st_file_find(const struct st_file *f, const char *name);

/* Opens DIR/model.safetensors or, when present, every shard named by
 * DIR/model.safetensors.index.json (each tensor must be in the shard the index names). */
int st_model_open(struct st_model **out, const char *dir, struct err *e);
void st_model_close(struct st_model *m);
int64_t st_model_count(const struct st_model *m);
const struct st_tensor *st_model_tensor(const struct st_model *m, int64_t i);
/* Exact-name lookup (O(1) average); NULL when absent. */
const struct st_tensor *st_model_find(const struct st_model *m, const char *name);
uint64_t st_model_total_bytes(const struct st_model *m);

const char *st_dtype_name(enum st_dtype d);
size_t st_dtype_size(enum st_dtype d);
/* "BF16" -> ST_BF16; -1 when unknown. */
int st_dtype_parse(const char *s);

/* Streaming writer: declare every tensor first (name, dtype, shape), then write the data of
 * each in declaration order. Writes to a temporary name and renames at st_writer_finish. */
struct st_writer;
int st_writer_new(struct st_writer **out, const char *path, struct err *e);
int st_writer_declare(struct st_writer *w, const char *name, enum st_dtype dtype, int32_t n_dims,
                      const int64_t *shape, struct err *e);
/* Appends bytes of the current tensor (may be called several times per tensor). */
int st_writer_write(struct st_writer *w, const void *data, size_t n_bytes, struct err *e);
/* Checks every declared tensor got exactly its bytes, then renames into place. */
int st_writer_finish(struct st_writer *w, struct err *e);
/* Abandons the file (removes the temporary); accepts NULL. */
void st_writer_free(struct st_writer *w);

#endif
