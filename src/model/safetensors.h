/* safetensors: read-only access to safetensors files and sharded checkpoints, and a writer.
 *
 * Reading maps each file (mmap) and validates the whole header before anything uses it:
 * header length inside the file and under VELA_ST_HEADER_MAX_BYTES, a JSON object, known
 * dtypes, shapes with <= VELA_ST_MAX_DIMS non-negative dims, shape x dtype size equal to the
 * byte range, ranges inside the data section and not overlapping. Tensor data is used in
 * place (pointers into the mapping) for as long as the st_file / st_model is open.
 *
 * Alignment: the format does not promise aligned data. Files written by the safetensors
 * library and by st_writer start the data section at an 8-byte aligned file offset, and the
 * mapping is page aligned, so their tensors are aligned as far as their offsets are; a
 * hostile or odd file may not be. Code that reads elements through typed pointers (uint16_t *
 * for BF16, float * for F32) must first check st_tensor_aligned() or read with memcpy.
 *
 * One owner thread; the mapped data may be read from any thread while open. */
#ifndef VELA_MODEL_SAFETENSORS_H
#define VELA_MODEL_SAFETENSORS_H

#include "util/err.h"
#include "util/file.h"
#include "util/limits.h"

#include <stdbool.h>
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
    int32_t shard; /* index of the file it lives in (st_model); 0 for a lone st_file */
};

/* True when t->data is aligned to its element size (always true for empty tensors). */
bool st_tensor_aligned(const struct st_tensor *t);

struct st_file;  /* one mapped .safetensors file */
struct st_model; /* a checkpoint: one file, or shards listed by model.safetensors.index.json */

/* Opens and validates one file; *out is freed with st_close(). */
int st_open(struct st_file **out, const char *path, struct err *e);
/* st_open with the file brought into memory as `mode` says (util/file.h). */
int st_open_mode(struct st_file **out, const char *path, enum file_map_mode mode, struct err *e);
/* Validates a header given as bytes (the whole file image); used by st_open and the fuzzer.
 * On success *out owns a copy of nothing: data pointers point into buf, which must outlive
 * the result. */
int st_parse(struct st_file **out, const unsigned char *buf, size_t len, const char *what,
             struct err *e);
void st_close(struct st_file *f);
int64_t st_file_count(const struct st_file *f);
const struct st_tensor *st_file_tensor(const struct st_file *f, int64_t i);
/* Tensors come in data-offset order. st_file_find is an exact-name lookup (O(1) average),
 * NULL when absent. Returned pointers are borrowed and live until st_close. */
const struct st_tensor *st_file_find(const struct st_file *f, const char *name);
/* Value of key in the header's "__metadata__" (a string->string object); NULL when absent.
 * Borrowed, lives until st_close. */
const char *st_file_meta(const struct st_file *f, const char *key);

/* Opens DIR/model.safetensors or, when present, every shard named by
 * DIR/model.safetensors.index.json (each tensor must be in the shard the index names, shard
 * names must be plain file names, and a tensor in a shard but not in the index is an
 * error). *out is freed with st_model_close(); tensor pointers are borrowed from it. */
int st_model_open(struct st_model **out, const char *dir, struct err *e);
/* st_model_open with every shard brought into memory as `mode` says (util/file.h). */
int st_model_open_mode(struct st_model **out, const char *dir, enum file_map_mode mode,
                       struct err *e);
void st_model_close(struct st_model *m);
int64_t st_model_count(const struct st_model *m);
const struct st_tensor *st_model_tensor(const struct st_model *m, int64_t i);
/* Exact-name lookup (O(1) average); NULL when absent. */
const struct st_tensor *st_model_find(const struct st_model *m, const char *name);
/* Sum of every tensor's n_bytes (computed, not the index's advisory total_size). */
uint64_t st_model_total_bytes(const struct st_model *m);
int32_t st_model_shard_count(const struct st_model *m);

/* Writes DIR/model.safetensors.index.json (atomically) for n tensors: names[i] lives in the
 * shard file shards[i] (a plain file name in DIR). total_size goes to metadata.total_size.
 * Borrows every argument. */
int st_index_write(const char *dir, int64_t n, const char *const *names, const char *const *shards,
                   uint64_t total_size, struct err *e);

const char *st_dtype_name(enum st_dtype d);
size_t st_dtype_size(enum st_dtype d);
/* "BF16" -> ST_BF16; -1 when unknown. */
int st_dtype_parse(const char *s);

/* Streaming writer: declare every tensor first (name, dtype, shape), then write the data of
 * each in declaration order. Writes PATH.tmp and renames it to PATH at st_writer_finish.
 * The header is padded with spaces so the data section starts 8-byte aligned. Tensors are
 * stored back to back (the format's reference reader rejects gaps), so declare larger
 * element sizes first (F64/I64, then F32/I32, then BF16/F16, then bytes) when every tensor
 * must be aligned. Offsets are 64-bit, so files above 4 GB work.
 * Lifetime: st_writer_new ... st_writer_finish, then always st_writer_free (after a
 * successful finish it only releases memory). After any failed call the writer is spent:
 * only st_writer_free is allowed. One owner thread. */
struct st_writer;
int st_writer_new(struct st_writer **out, const char *path, struct err *e);
/* Adds key/value to "__metadata__" (copied); only before the first st_writer_write. */
int st_writer_meta(struct st_writer *w, const char *key, const char *value, struct err *e);
int st_writer_declare(struct st_writer *w, const char *name, enum st_dtype dtype, int32_t n_dims,
                      const int64_t *shape, struct err *e);
/* Appends bytes of the current tensor (may be called several times per tensor; a call may
 * not run past the end of the current tensor). Empty tensors need no call. */
int st_writer_write(struct st_writer *w, const void *data, size_t n_bytes, struct err *e);
/* Checks every declared tensor got exactly its bytes, then renames into place. */
int st_writer_finish(struct st_writer *w, struct err *e);
/* Abandons the file (removes the temporary); accepts NULL. */
void st_writer_free(struct st_writer *w);

#endif
