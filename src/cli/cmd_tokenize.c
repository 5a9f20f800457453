/* cmd_tokenize: `vela tokenize --model DIR [--no-special] [--jsonl] TEXT|-`.
 *
 * Prints the ids of TEXT (or of all of stdin for "-") as one JSON array. With --jsonl, reads
 * one JSON string per stdin line and prints one JSON array per line, so many strings go
 * through one process (and one tokenizer load). --no-special treats the text of special
 * tokens as plain text. Main thread only. */
#include "cli/args.h"
#include "cli/commands.h"
#include "tokenizer/tokenizer.h"
#include "util/limits.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_ids(const struct tok_ids *v) {
    fputc('[', stdout);
    for (int64_t i = 0; i < v->n; i++) printf(i ? ", %d" : "%d", v->ids[i]);
    fputs("]\n", stdout);
}

static int read_stdin(char **out, size_t *n) {
    struct tok_text t = {0};
    char buf[65536];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, stdin)) > 0) {
        if (t.n + r > VELA_TOK_MAX_INPUT_BYTES || tok_text_append(&t, buf, r) != 0) {
            tok_text_free(&t);
            return -1;
        }
    }
    if (!t.p && tok_text_append(&t, "", 0) != 0) return -1;
    *out = t.p;
    *n = t.n;
    return 0;
}

static int run_jsonl(struct tok_ctx *c, unsigned flags) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    struct tok_ids v = {0};
    struct err e = {0};
    while (rc == 0 && (len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        json_error_t je;
        json_t *s = json_loadb(line, (size_t)len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!json_is_string(s)) {
            fprintf(stderr, "error: stdin line %ld: expected a JSON string\n", lineno);
            rc = 1;
        } else {
            v.n = 0;
            if (tok_encode(c, json_string_value(s), json_string_length(s), flags, &v, &e) != 0) {
                fprintf(stderr, "error: stdin line %ld: %s\n", lineno, e.msg);
                rc = 1;
            } else {
                print_ids(&v);
            }
        }
        json_decref(s);
    }
    free(line);
    tok_ids_free(&v);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL;
    bool jsonl = false;
    unsigned flags = 0;
    for (int i = 1; i < argc; i++) {
        int r = args_value(argc, argv, &i, "--model", &model);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (args_switch(argv, i, "--jsonl"))
            jsonl = true;
        else if (args_switch(argv, i, "--no-special"))
            flags |= TOK_SPECIAL_AS_TEXT;
        else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "error: unknown flag %s\n", argv[i]);
            return 2;
        } else if (!text)
            text = argv[i];
        else {
            fprintf(stderr, "error: more than one TEXT argument\n");
            return 2;
        }
    }
    if (!model || (!jsonl && !text)) {
        fprintf(stderr, "usage: vela tokenize --model DIR [--no-special] (TEXT | - | --jsonl)\n");
        return 2;
    }
    struct err e = {0};
    struct tokenizer *t = NULL;
    if (tok_load(model, &t, &e) != 0) {
        fprintf(stderr, "error: %s\n", e.msg);
        return 1;
    }
    struct tok_ctx *c = tok_ctx_new(t);
    int rc = c ? 0 : 1;
    if (rc == 0 && jsonl) {
        rc = run_jsonl(c, flags);
    } else if (rc == 0) {
        char *buf = NULL;
        size_t n = strlen(text);
        if (strcmp(text, "-") == 0 && read_stdin(&buf, &n) != 0) {
            fprintf(stderr, "error: reading stdin failed or above %u bytes\n",
                    VELA_TOK_MAX_INPUT_BYTES);
            rc = 1;
        }
        struct tok_ids v = {0};
        if (rc == 0 && tok_encode(c, buf ? buf : text, n, flags, &v, &e) != 0) {
            fprintf(stderr, "error: %s\n", e.msg);
            rc = 1;
        }
        if (rc == 0) print_ids(&v);
        tok_ids_free(&v);
        free(buf);
    }
    tok_ctx_free(c);
    tok_free(t);
    return rc;
}
