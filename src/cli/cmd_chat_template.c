/* cmd_chat_template: `vela chat-template --model DIR [--add-generation-prompt]
 * [--add-vision-id] [--continue-final-message] [--tools FILE] MESSAGES_JSON|-` prints the
 * prompt the model's chat template renders for the messages (a JSON array, or an object with
 * "messages" and optionally "tools"), byte for byte as transformers'
 * apply_chat_template(tokenize=False). */
#include "cli/args.h"
#include "cli/commands.h"
#include "tokenizer/chat_template.h"
#include "util/file.h"
#include "util/limits.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: vela chat-template --model DIR [--add-generation-prompt] [--add-vision-id]\n"
            "                          [--continue-final-message] [--tools FILE] MESSAGES_JSON|-\n"
            "MESSAGES_JSON: a file (or - for stdin) holding a JSON array of messages, or an\n"
            "object {\"messages\": [...], \"tools\": [...]}.\n");
}

/* Reads a JSON file, or stdin for "-", bounded by VELA_TPL_MAX_CONFIG_BYTES. */
static json_t *read_json(const char *path) {
    json_error_t je;
    json_t *j = NULL;
    if (strcmp(path, "-") == 0) {
        size_t cap = 1 << 16, n = 0;
        char *buf = malloc(cap);
        while (buf) {
            if (n == cap) {
                if (cap >= VELA_TPL_MAX_CONFIG_BYTES) {
                    fprintf(stderr, "error: stdin: more than %u bytes\n",
                            (unsigned)VELA_TPL_MAX_CONFIG_BYTES);
                    free(buf);
                    return NULL;
                }
                char *nb = realloc(buf, cap * 2);
                if (!nb) break;
                buf = nb;
                cap *= 2;
            }
            size_t r = fread(buf + n, 1, cap - n, stdin);
            if (r == 0) break;
            n += r;
        }
        if (buf) j = json_loadb(buf, n, 0, &je);
        free(buf);
    } else {
        struct err e = {0};
        char *buf;
        size_t n;
        if (file_read_all(path, VELA_TPL_MAX_CONFIG_BYTES, &buf, &n, &e) != 0) {
            fprintf(stderr, "error: %s\n", e.msg);
            return NULL;
        }
        j = json_loadb(buf, n, 0, &je);
        free(buf);
    }
    if (!j) fprintf(stderr, "error: %s: line %d: %s\n", path, je.line, je.text);
    return j;
}

int cmd_chat_template(int argc, char **argv) {
    const char *model = NULL, *tools_path = NULL, *msgs_path = NULL;
    struct ct_options opt = {0};
    for (int i = 1; i < argc; i++) {
        int r;
        if (args_switch(argv, i, "--help") || args_switch(argv, i, "-h")) {
            usage(stdout);
            return 0;
        }
        if (args_switch(argv, i, "--add-generation-prompt"))
            opt.add_generation_prompt = true;
        else if (args_switch(argv, i, "--add-vision-id"))
            opt.add_vision_id = true;
        else if (args_switch(argv, i, "--continue-final-message"))
            opt.continue_final_message = true;
        else if ((r = args_value(argc, argv, &i, "--model", &model)) != 0) {
            if (r < 0) return 2;
        } else if ((r = args_value(argc, argv, &i, "--tools", &tools_path)) != 0) {
            if (r < 0) return 2;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "error: unknown flag %s\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (!msgs_path) {
            msgs_path = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!model || !msgs_path) {
        usage(stderr);
        return 2;
    }
    struct err e = {0};
    struct chat_template *t = NULL;
    json_t *doc = NULL, *tools = NULL;
    char *text = NULL;
    int code = 1;
    if (ct_load(&t, model, &e) != 0) {
        fprintf(stderr, "error: %s\n", e.msg);
        goto done;
    }
    if (!(doc = read_json(msgs_path))) goto done;
    const json_t *msgs = doc;
    if (json_is_object(doc)) {
        msgs = json_object_get(doc, "messages");
        opt.tools = json_object_get(doc, "tools");
    }
    if (tools_path) {
        if (!(tools = read_json(tools_path))) goto done;
        opt.tools = tools;
    }
    if (opt.tools && json_is_null(opt.tools)) opt.tools = NULL;
    if (ct_render(t, msgs, &opt, &text, &e) != 0) {
        fprintf(stderr, "error: %s\n", e.msg);
        goto done;
    }
    fputs(text, stdout);
    code = fflush(stdout) == 0 ? 0 : 1;
done:
    free(text);
    json_decref(tools);
    json_decref(doc);
    ct_free(t);
    return code;
}
