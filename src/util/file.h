/* file: whole-file reads with a size limit, atomic writes, read-only mappings, paths.
 * Any thread; each object has one owner. */
#ifndef VELA_UTIL_FILE_H
#define VELA_UTIL_FILE_H

#include "util/err.h"

#include <stdbool.h>
#include <stddef.h>

/* Reads all of `path` into a new NUL-terminated buffer the caller frees with free().
 * Files above max_bytes give VELA_ELIMIT before anything is allocated. */
int file_read_all(const char *path, size_t max_bytes, char **out, size_t *out_len, struct err *e);

/* Writes data to path through a temporary file and rename, so readers never see half. */
int file_write_all(const char *path, const void *data, size_t len, struct err *e);

/* A whole file in memory, read-only. */
struct file_map {
    const unsigned char *data; /* NULL for an empty file */
    size_t len;
    size_t map_bytes; /* bytes mapped at data (the munmap length) */
};
/* How a file comes into memory. */
enum file_map_mode {
    /* A private read-only mapping: pages come from the page cache on first touch, shared
     * with every process that maps the file, in 4 KB pages. */
    FILE_MAP_MMAP,
    /* Read (in parts, on up to 4 threads) into private anonymous memory aligned to 2 MB and
     * advised as transparent huge pages (where the kernel has them, else 4 KB pages), then
     * made read-only. Streaming weights through 2 MB pages costs far fewer TLB misses
     * (docs/BENCHMARKS.md); the price is reading the whole file up front and memory private
     * to the process. A file larger than MemAvailable is refused (VELA_ENOMEM). */
    FILE_MAP_READ,
};
int file_map_open(struct file_map *m, const char *path, struct err *e); /* FILE_MAP_MMAP */
int file_map_open_mode(struct file_map *m, const char *path, enum file_map_mode mode,
                       struct err *e);
void file_map_close(struct file_map *m);

/* MemAvailable from /proc/meminfo, in bytes: VELA_EIO or VELA_EFORMAT where it cannot be read. */
int file_mem_available(size_t *bytes, struct err *e);

bool file_exists(const char *path);
bool file_is_dir(const char *path);
/* mkdir -p; existing directories are fine. */
int file_mkdirs(const char *path, struct err *e);
/* Joins dir and name into buf (with one '/'); VELA_ELIMIT when it does not fit. */
int path_join(char *buf, size_t cap, const char *dir, const char *name, struct err *e);

#endif
