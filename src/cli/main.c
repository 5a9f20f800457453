/* main: dispatches `vela SUBCOMMAND ...` to the command table. */
#include "cli/commands.h"
#include "util/log.h"

#ifdef VELA_HAVE_CUDA
#include "backend/cuda/backend_cuda.h"
#endif

#include <stdio.h>
#include <string.h>

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static const struct command commands[] = {
    {"inspect", cmd_inspect, "show a model's architecture, parameter counts and memory needs"},
    {"make-model", cmd_make_model, "write a model folder with deterministic random weights"},
    {"tokenize", cmd_tokenize, "text to token ids with a model's tokenizer"},
    {"detokenize", cmd_detokenize, "token ids to text with a model's tokenizer"},
    {"chat-template", cmd_chat_template, "render a model's chat template for JSON messages"},
    {"generate", cmd_generate, "generate text from a prompt with the language model"},
    {"bench", cmd_bench, "benchmarks: throughput (requests through the engine, offline)"},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f, "usage: vela COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nRun 'vela COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv) {
#ifdef VELA_HAVE_CUDA
    be_cuda_register_device(); /* before any thread: --device auto|cuda can open it */
#endif
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("vela 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "error: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
