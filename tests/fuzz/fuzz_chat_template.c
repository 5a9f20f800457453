/* fuzz_chat_template: untrusted bytes through the chat template path, both ways in which they
 * arrive: the input is split at its first NUL byte into A and B;
 *  - A is compiled as a template source and rendered with fixed messages and tools;
 *  - B is parsed as messages JSON (an array, or {"messages": [...], "tools": [...]}) and
 *    rendered with the fixed Qwen2.5-VL template (plain; with the generation prompt and vision
 *    ids; continuing the final message).
 * Nothing may crash, hang, leak or trip a sanitizer; every failure must come back as an error
 * with a message. A violated check aborts, which the fuzzer and the replay test report. */
#include "tokenizer/chat_template.h"
#include "util/err.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The Qwen2.5-VL chat template, as in the model's chat_template.json. */
static const char QWEN_VL_TEMPLATE[] =
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% f"
    "or message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>"
    "system\nYou are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'"
    "] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %"
    "}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in c"
    "ontent or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{%"
    " if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_"
    "pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}{% set vid"
    "eo_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.valu"
    "e }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}"
    "{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add"
    "_generation_prompt %}<|im_start|>assistant\n{% endif %}";

static const char FIXED_MESSAGES[] =
    "[{\"role\":\"system\",\"content\":\"Sys\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"Hi\"}]},"
    "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"type\":\"function\","
    "\"function\":{\"name\":\"f\",\"arguments\":{\"x\":1.5,\"y\":[true,null]}}}]},"
    "{\"role\":\"tool\",\"content\":\"ok\"}]";
static const char FIXED_TOOLS[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}]";

static void check(int rc, char *out, const struct err *e) {
    if (rc != 0 && e->msg[0] == '\0') {
        fprintf(stderr, "error %d without a message\n", rc);
        abort();
    }
    if (rc == 0 && !out) abort();
    free(out);
}

static void render_source(const char *src, size_t n) {
    struct err e = {0};
    struct chat_template *t = NULL;
    if (ct_from_source(&t, src, n, &e) != 0) {
        check(-1, NULL, &e);
        return;
    }
    json_t *msgs = json_loads(FIXED_MESSAGES, 0, NULL), *tools = json_loads(FIXED_TOOLS, 0, NULL);
    struct ct_options opt = {.add_generation_prompt = true, .tools = tools};
    char *out = NULL;
    int rc = ct_render(t, msgs, &opt, &out, &e);
    check(rc, rc == 0 ? out : NULL, &e);
    if (rc != 0) free(out);
    json_decref(tools);
    json_decref(msgs);
    ct_free(t);
}

static void render_messages(const char *buf, size_t n) {
    static struct chat_template *vl;
    struct err e = {0};
    if (!vl && ct_from_source(&vl, QWEN_VL_TEMPLATE, strlen(QWEN_VL_TEMPLATE), &e) != 0) {
        fprintf(stderr, "fixed template failed: %s\n", e.msg);
        abort();
    }
    json_error_t je;
    json_t *doc = json_loadb(buf, n, JSON_ALLOW_NUL, &je);
    if (!doc) return;
    const json_t *msgs = doc;
    struct ct_options opt = {0};
    if (json_is_object(doc)) {
        msgs = json_object_get(doc, "messages");
        opt.tools = json_object_get(doc, "tools");
        opt.extra = json_object_get(doc, "extra");
    }
    for (int k = 0; k < 3; k++) {
        opt.add_generation_prompt = k == 1;
        opt.add_vision_id = k == 1;
        opt.continue_final_message = k == 2;
        char *out = NULL;
        int rc = ct_render(vl, msgs, &opt, &out, &e);
        check(rc, rc == 0 ? out : NULL, &e);
        if (rc != 0) free(out);
    }
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = (const char *)data;
    const char *sep = memchr(p, '\0', size);
    size_t na = sep ? (size_t)(sep - p) : size;
    render_source(p, na);
    if (sep) render_messages(sep + 1, size - na - 1);
    return 0;
}
