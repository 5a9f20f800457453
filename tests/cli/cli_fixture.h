/* cli_fixture.h: what the CLI tests share: a tiny model written into a fresh scratch directory,
 * and running `$VELA_BIN args` with stdout and stderr captured. Header-only (static), included
 * by tests/cli/test_*.c after t.h. */
#ifndef VELA_TESTS_CLI_FIXTURE_H
#define VELA_TESTS_CLI_FIXTURE_H

#include "model/generator.h"
#include "model/presets.h"
#include "t.h"

#include <stdbool.h>
#include <stdio.h>
#include <sys/wait.h>

/* Runs `env_prefix '$VELA_BIN' args` with stdout into out and stderr into errbuf (each
 * NUL-terminated, truncated to cap); stderr passes through dir/stderr.txt. Returns the exit
 * code, or -1 when the process could not run or did not exit normally. */
static int cli_run(const char *dir, const char *env_prefix, const char *args, char *out, size_t cap,
                   char *errbuf, size_t ecap) {
    const char *bin = getenv("VELA_BIN");
    out[0] = errbuf[0] = '\0';
    char cmd[12000], epath[4400];
    snprintf(epath, sizeof epath, "%s/stderr.txt", dir);
    snprintf(cmd, sizeof cmd, "%s '%s' %s 2>'%s'", env_prefix, bin, args, epath);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    FILE *f = fopen(epath, "rb");
    if (f) {
        n = fread(errbuf, 1, ecap - 1, f);
        errbuf[n] = '\0';
        fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Skips (returns false) without VELA_BIN; otherwise makes a scratch directory tagged `tag`
 * into dir and writes the tiny preset (seed 0) to dir/tiny. */
static bool cli_setup_tiny(const char *tag, char *dir, size_t cap) {
    if (!getenv("VELA_BIN")) {
        T_SKIP("VELA_BIN not set: CLI cases not run");
        return false;
    }
    const char *tmp = t_tmpdir(tag);
    if (!tmp) return false;
    snprintf(dir, cap, "%s", tmp);
    char model[4300];
    snprintf(model, sizeof model, "%s/tiny", dir);
    struct err e = {0};
    struct gen_options o = {.seed = 0, .n_threads = 2};
    int rc = gen_model_write(preset_find("tiny"), model, &o, NULL, &e);
    T_RC(rc, &e);
    return rc == 0;
}

#endif
