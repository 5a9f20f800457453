/* cmd_detokenize: `vela detokenize --model DIR [--skip-special-tokens] [--jsonl] IDS`.
 *
 * IDS is "1,2,3" or a JSON array; prints the decoded text and a newline. With --jsonl, reads
 * one JSON array of ids per stdin line and prints one JSON string per line. Ids the
 * tokenizer does not know decode to nothing (as in the reference). Main thread only. */
#include "cli/args.h"
#include "cli/commands.h"
#include "tokenizer/tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses "1,2,3", "[1, 2, 3]" or "" into v; returns 0 or -1. */
static int parse_ids(const char *s, struct tok_ids *v) {
    const char *p = s;
    while (*p == ' ' || *p == '\t') p++;
    bool bracket = *p == '[';
    if (bracket) p++;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
        if (*p == '\0' || *p == ']') break;
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno != 0 || x < INT32_MIN || x > INT32_MAX) return -1;
        if (tok_ids_push(v, (int32_t)x) != 0) return -1;
        p = end;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == ',')
            p++;
        else if (*p != '\0' && *p != ']' && *p != '\n' && *p != '\r')
            return -1;
    }
    if (bracket != (*p == ']')) return -1;
    if (*p == ']') p++;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return *p == '\0' ? 0 : -1;
}

static int decode_print(const struct tokenizer *t, const struct tok_ids *v, bool skip,
                        bool as_json) {
    struct tok_text out = {0};
    struct err e = {0};
    int rc = tok_decode(t, v->ids, v->n, skip, &out, &e);
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", e.msg);
        return 1;
    }
    if (as_json) {
        json_t *s = json_stringn(out.p ? out.p : "", out.n);
        char *dump = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
        if (dump)
            printf("%s\n", dump);
        else
            rc = 1;
        free(dump);
        json_decref(s);
    } else {
        if (out.n) fwrite(out.p, 1, out.n, stdout);
        fputc('\n', stdout);
    }
    tok_text_free(&out);
    return rc;
}

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL, *ids = NULL;
    bool jsonl = false, skip = false;
    for (int i = 1; i < argc; i++) {
        int r = args_value(argc, argv, &i, "--model", &model);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (args_switch(argv, i, "--jsonl"))
            jsonl = true;
        else if (args_switch(argv, i, "--skip-special-tokens"))
            skip = true;
        else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "error: unknown flag %s\n", argv[i]);
            return 2;
        } else if (!ids)
            ids = argv[i];
        else {
            fprintf(stderr, "error: more than one IDS argument\n");
            return 2;
        }
    }
    if (!model || (!jsonl && !ids)) {
        fprintf(stderr, "usage: vela detokenize --model DIR [--skip-special-tokens] "
                        "(IDS | --jsonl)\n");
        return 2;
    }
    struct err e = {0};
    struct tokenizer *t = NULL;
    if (tok_load(model, &t, &e) != 0) {
        fprintf(stderr, "error: %s\n", e.msg);
        return 1;
    }
    struct tok_ids v = {0};
    int rc = 0;
    if (!jsonl) {
        if (parse_ids(ids, &v) != 0) {
            fprintf(stderr, "error: IDS must be like 1,2,3 or [1, 2, 3] (32-bit integers)\n");
            rc = 2;
        } else {
            rc = decode_print(t, &v, skip, false);
        }
    } else {
        char *line = NULL;
        size_t cap = 0;
        long lineno = 0;
        while (rc == 0 && getline(&line, &cap, stdin) >= 0) {
            lineno++;
            v.n = 0;
            if (parse_ids(line, &v) != 0) {
                fprintf(stderr, "error: stdin line %ld: expected a JSON array of ids\n", lineno);
                rc = 1;
            } else {
                rc = decode_print(t, &v, skip, true);
            }
        }
        free(line);
    }
    tok_ids_free(&v);
    tok_free(t);
    return rc;
}
