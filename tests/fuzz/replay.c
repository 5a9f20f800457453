/* replay: runs a fuzz target's LLVMFuzzerTestOneInput over every file of a corpus directory,
 * so the committed corpus is an ordinary test under gcc and the sanitizers. A crash, a
 * sanitizer report or a leak fails the test; an empty or missing corpus fails too, since a
 * replay that ran nothing proves nothing. */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0) break;
        n += r;
    }
    fclose(f);
    if (!buf) return -1;
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    DIR *d = opendir(argv[1]);
    if (!d) {
        fprintf(stderr, "corpus directory missing: %s\n", argv[1]);
        return 1;
    }
    int n_ok = 0, n_bad = 0;
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", argv[1], de->d_name);
        if (replay_file(path) == 0)
            n_ok++;
        else
            n_bad++;
    }
    closedir(d);
    printf("%d passed, %d failed\n", n_ok, n_bad);
    return (n_ok > 0 && n_bad == 0) ? 0 : 1;
}
