/* chat_template: a model's chat template, loaded as transformers finds it and rendered as
 * transformers' apply_chat_template(tokenize=False) renders it.
 *
 * Where the template comes from (first found wins, as transformers' processor and tokenizer
 * loading resolve it): the "chat_template" string in processor_config.json, chat_template.json
 * {"chat_template": "..."}, chat_template.jinja, then the "chat_template" field of
 * tokenizer_config.json (a string, or a list of {name, template} where "default" is taken).
 * The special tokens of tokenizer_config.json (bos/eos/pad/unk) become template variables.
 *
 * Thread safety: a loaded template is immutable; ct_render may run on several threads at once
 * (the server's prep workers). */
#ifndef VELA_TOKENIZER_CHAT_TEMPLATE_H
#define VELA_TOKENIZER_CHAT_TEMPLATE_H

#include "util/err.h"

#include <jansson.h>
#include <stdbool.h>

struct chat_template;

struct ct_options {
    bool add_generation_prompt;
    /* Leave the final message open for the model to continue (assistant prefill): the prompt
     * ends right after its text (transformers' continue_final_message). Excludes
     * add_generation_prompt. */
    bool continue_final_message;
    bool add_vision_id;  /* Qwen-VL: "Picture 1: " before each image */
    const json_t *tools; /* JSON array of tool schemas, or NULL (the template sees None) */
    const json_t *extra; /* object of more variables (documents, enable_thinking, bos_token...)
                            that override the defaults, or NULL */
};

/* Loads the template of the model folder model_dir. VELA_ENOTFOUND when it has none. *out is
 * freed with ct_free. */
int ct_load(struct chat_template **out, const char *model_dir, struct err *e);

/* Compiles a template from source (borrowed; copied as needed). */
int ct_from_source(struct chat_template **out, const char *source, size_t len, struct err *e);

/* Renders messages (a JSON array of message objects, borrowed). As transformers does before
 * rendering: message keys whose value is null are dropped, and a message's reasoning (under
 * reasoning_content, thinking or reasoning) is copied to "thinking" and "reasoning_content".
 * *out_text is NUL-terminated and the caller free()s it. */
int ct_render(const struct chat_template *t, const json_t *messages, const struct ct_options *opt,
              char **out_text, struct err *e);

/* Which file the template came from ("chat_template.json", ...) or "source". */
const char *ct_origin(const struct chat_template *t);

void ct_free(struct chat_template *t);

#endif
