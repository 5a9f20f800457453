/* file: POSIX file helpers. Invariant: every function releases what it opened on every
 * path, error paths included. */
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int file_read_all(const char *path, size_t max_bytes, char **out, size_t *out_len, struct err *e) {
    *out = NULL;
    if (out_len) *out_len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int code = errno == ENOENT ? VELA_ENOTFOUND : VELA_EIO;
        return err_set(e, code, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(e, VELA_EIO, "%s: not a regular file", path);
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        close(fd);
        return err_set(e, VELA_ELIMIT, "%s: %lld bytes exceeds the limit of %zu", path,
                       (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return err_set(e, VELA_ENOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(buf);
        return err_set(e, VELA_EIO, "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = '\0';
    *out = buf;
    if (out_len) *out_len = n;
    return 0;
}

int file_write_all(const char *path, const void *data, size_t len, struct err *e) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return err_set(e, VELA_ELIMIT, "%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return err_set(e, VELA_EIO, "%s: %s", tmp, strerror(errno));
    size_t put = len ? fwrite(data, 1, len, f) : 0;
    int rc_close = fclose(f);
    if (put != len || rc_close != 0) {
        unlink(tmp);
        return err_set(e, VELA_EIO, "%s: write failed", path);
    }
    if (rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        return err_set(e, VELA_EIO, "%s: %s", path, strerror(saved));
    }
    return 0;
}

/* FILE_MAP_READ's alignment (one x86-64 huge page) and the most bytes one read call asks for. */
#define FILE_HUGE_PAGE_BYTES ((size_t)2 << 20)
#define FILE_READ_STEP_BYTES ((size_t)64 << 20)

/* Anonymous read-write memory of `bytes` (a multiple of FILE_HUGE_PAGE_BYTES) starting on a
 * FILE_HUGE_PAGE_BYTES boundary, or NULL: one huge page more is mapped, then the unaligned
 * head and the tail are unmapped. */
static void *file_map_aligned(size_t bytes) {
    size_t span = bytes + FILE_HUGE_PAGE_BYTES;
    char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    uintptr_t a =
        ((uintptr_t)raw + FILE_HUGE_PAGE_BYTES - 1) & ~(uintptr_t)(FILE_HUGE_PAGE_BYTES - 1);
    char *p = (char *)a;
    if (p > raw) munmap(raw, (size_t)(p - raw));
    size_t tail = (size_t)(raw + span - (p + bytes));
    if (tail > 0) munmap(p + bytes, tail);
    return p;
}

/* Threads that read one FILE_MAP_READ file, each a contiguous part: the kernel zeroes every
 * fresh page as a read first touches it, which dominates the load and runs on the faulting
 * thread (a 7.5 GB checkpoint: 12 s on one thread from the page cache). */
#define FILE_READ_THREADS 4

struct file_read_part {
    int fd;
    unsigned char *dst;
    size_t off, end; /* file bytes [off, end) */
    int err;         /* errno, or -1 when the file ended early; 0 when done */
};

static void *file_read_part(void *arg) {
    struct file_read_part *r = arg;
    while (r->off < r->end) {
        size_t want =
            r->end - r->off < FILE_READ_STEP_BYTES ? r->end - r->off : FILE_READ_STEP_BYTES;
        ssize_t n = pread(r->fd, r->dst + r->off, want, (off_t)r->off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            r->err = n < 0 ? errno : -1;
            return NULL;
        }
        r->off += (size_t)n;
    }
    return NULL;
}

/* Reads file bytes [0, len) into p on up to FILE_READ_THREADS threads (the caller's among
 * them); a part whose thread cannot start is read by the caller. */
static int file_read_parallel(int fd, unsigned char *p, size_t len, const char *path,
                              struct err *e) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int n = cpus < 1 ? 1 : cpus > FILE_READ_THREADS ? FILE_READ_THREADS : (int)cpus;
    if (len < (size_t)n * 2 * FILE_HUGE_PAGE_BYTES) n = 1; /* parts of at least 4 MB */
    struct file_read_part part[FILE_READ_THREADS];
    pthread_t tid[FILE_READ_THREADS];
    bool started[FILE_READ_THREADS] = {false};
    size_t per = (len / (size_t)n + FILE_HUGE_PAGE_BYTES - 1) & ~(FILE_HUGE_PAGE_BYTES - 1);
    for (int i = 0; i < n; i++) {
        size_t a = (size_t)i * per < len ? (size_t)i * per : len;
        size_t b = i == n - 1 || a + per > len ? len : a + per;
        part[i] = (struct file_read_part){.fd = fd, .dst = p, .off = a, .end = b};
        if (i > 0) started[i] = pthread_create(&tid[i], NULL, file_read_part, &part[i]) == 0;
    }
    for (int i = 0; i < n; i++)
        if (!started[i]) file_read_part(&part[i]);
    for (int i = 1; i < n; i++)
        if (started[i]) pthread_join(tid[i], NULL);
    for (int i = 0; i < n; i++)
        if (part[i].err != 0)
            return err_set(e, VELA_EIO, "%s: read at byte %zu of %zu: %s", path, part[i].off, len,
                           part[i].err > 0 ? strerror(part[i].err)
                                           : "the file shrank while being read");
    return 0;
}

/* FILE_MAP_READ of the open fd (len > 0 bytes) into m. A file larger than the available
 * memory is refused before anything is allocated: the allocation itself would succeed
 * (overcommit) and the read end in the out-of-memory killer. */
static int file_map_read(struct file_map *m, int fd, size_t len, const char *path, struct err *e) {
    size_t bytes = (len + FILE_HUGE_PAGE_BYTES - 1) & ~(FILE_HUGE_PAGE_BYTES - 1), avail;
    if (file_mem_available(&avail, NULL) == 0 && bytes > avail)
        return err_set(e, VELA_ENOMEM,
                       "%s: reading it into memory needs %zu MiB, %zu MiB available (map it "
                       "instead)",
                       path, bytes >> 20, avail >> 20);
    unsigned char *p = file_map_aligned(bytes);
    if (!p)
        return err_set(e, VELA_ENOMEM, "%s: cannot allocate %zu bytes to read it into: %s", path,
                       bytes, strerror(errno));
#ifdef MADV_HUGEPAGE
    (void)madvise(p, bytes, MADV_HUGEPAGE); /* advice: without THP the pages stay 4 KB */
#endif
    int rc = file_read_parallel(fd, p, len, path, e);
    if (rc != 0) {
        munmap(p, bytes);
        return rc;
    }
    if (mprotect(p, bytes, PROT_READ) != 0) {
        int saved = errno;
        munmap(p, bytes);
        return err_set(e, VELA_EIO, "%s: mprotect: %s", path, strerror(saved));
    }
    m->data = p;
    m->len = len;
    m->map_bytes = bytes;
    return 0;
}

int file_map_open_mode(struct file_map *m, const char *path, enum file_map_mode mode,
                       struct err *e) {
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int code = errno == ENOENT ? VELA_ENOTFOUND : VELA_EIO;
        return err_set(e, code, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(e, VELA_EIO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return 0;
    }
    if (mode == FILE_MAP_READ) {
        int rc = file_map_read(m, fd, (size_t)st.st_size, path, e);
        close(fd);
        return rc;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return err_set(e, VELA_EIO, "%s: mmap: %s", path, strerror(errno));
    m->data = p;
    m->len = m->map_bytes = (size_t)st.st_size;
    return 0;
}

int file_map_open(struct file_map *m, const char *path, struct err *e) {
    return file_map_open_mode(m, path, FILE_MAP_MMAP, e);
}

void file_map_close(struct file_map *m) {
    if (!m) return;
    if (m->data) munmap((void *)m->data, m->map_bytes);
    m->data = NULL;
    m->len = m->map_bytes = 0;
}

int file_mem_available(size_t *bytes, struct err *e) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return err_set(e, VELA_EIO, "/proc/meminfo: cannot open");
    char line[256];
    int rc = err_set(e, VELA_EFORMAT, "/proc/meminfo: no MemAvailable line");
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
            *bytes = kb > SIZE_MAX / 1024 ? SIZE_MAX : (size_t)kb * 1024;
            err_clear(e);
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

bool file_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int file_mkdirs(const char *path, struct err *e) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return err_set(e, VELA_EINVAL, "bad directory path");
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return err_set(e, VELA_EIO, "%s: %s", buf, strerror(errno));
        buf[i] = saved;
    }
    if (!file_is_dir(path)) return err_set(e, VELA_EIO, "%s: not a directory", path);
    return 0;
}

int path_join(char *buf, size_t cap, const char *dir, const char *name, struct err *e) {
    size_t nd = strlen(dir);
    const char *sep = (nd > 0 && dir[nd - 1] == '/') ? "" : "/";
    int n = snprintf(buf, cap, "%s%s%s", dir, sep, name);
    if (n < 0 || (size_t)n >= cap)
        return err_set(e, VELA_ELIMIT, "%s/%s: path too long", dir, name);
    return 0;
}
