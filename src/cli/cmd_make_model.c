/* cmd_make_model: `vela make-model` writes a model folder with deterministic random
 * weights from a named preset (see model/generator.h). Main thread. */
#include "cli/args.h"
#include "cli/commands.h"
#include "model/generator.h"
#include "model/params.h"
#include "model/presets.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: vela make-model --preset NAME --out DIR [--seed N] [--tokenizer DIR]\n"
        "                       [--config-only] [--threads N]\n\n"
        "Writes a complete model folder (config.json, generation_config.json,\n"
        "preprocessor_config.json, tokenizer files, chat_template.json and BF16\n"
        "safetensors weights, sharded above 4 GB) with pseudo-random weights that are\n"
        "identical on every machine for a given seed.\n\n"
        "  --preset NAME     model shape (below)\n"
        "  --out DIR         output folder (created if missing)\n"
        "  --seed N          weight seed (default 0)\n"
        "  --tokenizer DIR   copy DIR/tokenizer.json (the real Qwen tokenizer) and size the\n"
        "                    vocabulary for it. Required by the real shapes (3b ... qwen2.5-*);\n"
        "                    tiny and demo default to a small BPE vela trains itself\n"
        "  --config-only     write every file except the weights (existing ones are kept)\n"
        "  --threads N       generation threads (default: online CPUs, at most 16)\n\n"
        "presets:\n");
    for (int32_t i = 0; i < preset_count(); i++)
        fprintf(f, "  %-14s %s\n", preset_at(i)->name, preset_at(i)->description);
}

struct progress {
    int last_pct;
};

/* Prints whole percentages for models above 1 GB; small ones finish too fast to matter. */
static void on_progress(void *ctx, uint64_t done, uint64_t total) {
    struct progress *p = ctx;
    if (total < (1ull << 30)) return;
    int pct = (int)(done * 100 / total);
    if (pct == p->last_pct) return;
    p->last_pct = pct;
    fprintf(stderr, "\rwriting weights: %.1f / %.1f GiB (%d%%)", (double)done / (1 << 30),
            (double)total / (1 << 30), pct);
    if (done == total) fprintf(stderr, "\n");
}

static int parse(int argc, char **argv, const char **preset, const char **out,
                 struct gen_options *o) {
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        int64_t n;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 1;
        } else if (args_switch(argv, i, "--config-only")) {
            o->config_only = true;
        } else if ((r = args_value(argc, argv, &i, "--preset", preset)) != 0) {
            if (r < 0) return -1;
        } else if ((r = args_value(argc, argv, &i, "--out", out)) != 0) {
            if (r < 0) return -1;
        } else if ((r = args_value(argc, argv, &i, "--tokenizer", &o->tokenizer_dir)) != 0) {
            if (r < 0) return -1;
        } else if ((r = args_value(argc, argv, &i, "--seed", &v)) != 0) {
            if (r < 0 || args_int("--seed", v, 0, INT64_MAX, &n) != 0) return -1;
            o->seed = (uint64_t)n;
        } else if ((r = args_value(argc, argv, &i, "--threads", &v)) != 0) {
            if (r < 0 || args_int("--threads", v, 1, GEN_MAX_THREADS, &n) != 0) return -1;
            o->n_threads = (int32_t)n;
        } else {
            fprintf(stderr, "error: make-model: unknown argument '%s'\n", argv[i]);
            return -1;
        }
    }
    if (!*preset || !*out) {
        fprintf(stderr, "error: make-model needs --preset NAME and --out DIR\n\n");
        usage(stderr);
        return -1;
    }
    return 0;
}

int cmd_make_model(int argc, char **argv) {
    const char *name = NULL, *dir = NULL;
    struct progress prog = {-1};
    struct gen_options o = {.progress = on_progress, .progress_ctx = &prog};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o.n_threads = ncpu < 1 ? 1 : (ncpu > 16 ? 16 : (int32_t)ncpu);
    int r = parse(argc, argv, &name, &dir, &o);
    if (r != 0) return r > 0 ? 0 : 2;
    const struct preset *p = preset_find(name);
    if (!p) {
        fprintf(stderr, "error: make-model: unknown preset '%s' (known: %s)\n", name,
                preset_names());
        return 2;
    }
    struct err e = {0};
    struct model_config c;
    if (gen_model_write(p, dir, &o, &c, &e) != 0) {
        fprintf(stderr, "error: make-model: %s\n", e.msg);
        return 1;
    }
    struct param_counts pc;
    params_count(&c, &pc);
    printf("wrote %s: preset %s, %" PRId64 " parameters (%.1f MB BF16%s), vocab %d, seed %" PRIu64
           "\n",
           dir, p->name, pc.total, (double)pc.total * 2 / 1e6,
           o.config_only ? ", weights not written" : "", c.vocab_size, o.seed);
    return 0;
}
