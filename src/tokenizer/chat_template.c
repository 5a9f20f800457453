/* chat_template: finds a model's template file, builds the variables transformers passes to
 * the template (messages normalized, tools, documents, add_generation_prompt, special tokens,
 * extra kwargs) and renders through the Jinja interpreter.
 *
 * Invariants: a struct chat_template owns its compiled template and a JSON object of default
 * variables (special tokens); neither changes after ct_load/ct_from_source returns. */
#include "tokenizer/chat_template.h"

#include "tokenizer/jinja.h"
#include "util/file.h"
#include "util/limits.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct chat_template {
    struct jinja_tpl *tpl;
    json_t *defaults; /* special tokens from tokenizer_config.json */
    char origin[64];
    bool reads_content; /* the source mentions "content" (continue_final_message needs it) */
};

void ct_free(struct chat_template *t) {
    if (!t) return;
    jinja_free(t->tpl);
    json_decref(t->defaults);
    free(t);
}

const char *ct_origin(const struct chat_template *t) {
    return t->origin;
}

static int ct_new(struct chat_template **out, const char *src, size_t len, const char *origin,
                  struct err *e) {
    struct chat_template *t = calloc(1, sizeof *t);
    if (!t) return err_set(e, VELA_ENOMEM, "chat template: out of memory");
    snprintf(t->origin, sizeof t->origin, "%s", origin);
    for (size_t i = 0; i + 7 <= len && !t->reads_content; i++)
        t->reads_content = memcmp(src + i, "content", 7) == 0;
    t->defaults = json_object();
    int rc = t->defaults ? jinja_compile(src, len, &t->tpl, e)
                         : err_set(e, VELA_ENOMEM, "out of memory");
    if (rc) {
        ct_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int ct_from_source(struct chat_template **out, const char *source, size_t len, struct err *e) {
    return ct_new(out, source, len, "source", e);
}

static int load_json(const char *dir, const char *name, json_t **out, struct err *e) {
    char path[PATH_MAX];
    int rc = path_join(path, sizeof path, dir, name, e);
    if (rc) return rc;
    *out = NULL;
    if (!file_exists(path)) return 0;
    char *buf;
    size_t n;
    rc = file_read_all(path, VELA_TPL_MAX_CONFIG_BYTES, &buf, &n, e);
    if (rc) return rc;
    json_error_t je;
    *out = json_loadb(buf, n, 0, &je);
    free(buf);
    if (!*out || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return err_set(e, VELA_EFORMAT, "%s: line %d: %s", path, je.line,
                       *je.text ? je.text : "not a JSON object");
    }
    return 0;
}

/* tokenizer_config.json's chat_template: a string, or [{name, template}, ...] ("default"). */
static const char *pick_template(const json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (!json_is_array(v)) return NULL;
    size_t i;
    json_t *it;
    json_array_foreach(v, i, it) {
        const char *name = json_string_value(json_object_get(it, "name"));
        if (name && strcmp(name, "default") == 0)
            return json_string_value(json_object_get(it, "template"));
    }
    return NULL;
}

/* Special tokens as transformers' special_tokens_map exposes them: strings, or AddedToken
 * objects written as {"content": ...}; null ones are left out. */
static void add_special_tokens(json_t *defaults, const json_t *tok_cfg) {
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    for (size_t k = 0; tok_cfg && k < sizeof keys / sizeof keys[0]; k++) {
        const json_t *v = json_object_get(tok_cfg, keys[k]);
        if (json_is_object(v)) v = json_object_get(v, "content");
        if (json_is_string(v))
            json_object_set_new(defaults, keys[k], json_string(json_string_value(v)));
    }
}

int ct_load(struct chat_template **out, const char *model_dir, struct err *e) {
    json_t *proc = NULL, *ctj = NULL, *tokc = NULL;
    char *raw = NULL;
    size_t raw_n = 0;
    int rc = load_json(model_dir, "processor_config.json", &proc, e);
    if (rc == 0) rc = load_json(model_dir, "chat_template.json", &ctj, e);
    if (rc == 0) rc = load_json(model_dir, "tokenizer_config.json", &tokc, e);
    char path[PATH_MAX];
    if (rc == 0) rc = path_join(path, sizeof path, model_dir, "chat_template.jinja", e);
    if (rc == 0 && file_exists(path))
        rc = file_read_all(path, VELA_TPL_MAX_SOURCE_BYTES, &raw, &raw_n, e);
    if (rc == 0) {
        const char *src = NULL, *origin = NULL;
        size_t n = 0;
        if (proc && json_is_string(json_object_get(proc, "chat_template"))) {
            src = json_string_value(json_object_get(proc, "chat_template"));
            n = json_string_length(json_object_get(proc, "chat_template"));
            origin = "processor_config.json";
        } else if (ctj) {
            const json_t *v = json_object_get(ctj, "chat_template");
            if (!json_is_string(v)) {
                rc =
                    err_set(e, VELA_EFORMAT,
                            "%s/chat_template.json: \"chat_template\" must be a string", model_dir);
            } else {
                src = json_string_value(v);
                n = json_string_length(v);
                origin = "chat_template.json";
            }
        } else if (raw) {
            src = raw;
            n = raw_n;
            origin = "chat_template.jinja";
        } else if (tokc && (src = pick_template(json_object_get(tokc, "chat_template")))) {
            n = strlen(src);
            origin = "tokenizer_config.json";
        }
        if (rc == 0 && !src)
            rc = err_set(e, VELA_ENOTFOUND, "%s: no chat template found", model_dir);
        if (rc == 0) {
            rc = ct_new(out, src, n, origin, e);
            if (rc)
                err_wrap(e, "%s/%s", model_dir, origin);
            else
                add_special_tokens((*out)->defaults, tokc);
        }
    }
    free(raw);
    json_decref(proc);
    json_decref(ctj);
    json_decref(tokc);
    return rc;
}

/* transformers' _normalize_chat_messages and _alias_reasoning_fields: null-valued keys go,
 * and reasoning is exposed under both names templates read. */
static int normalize_message(const json_t *m, json_t **out, struct err *e) {
    if (!json_is_object(m)) return err_set(e, VELA_EINVAL, "chat messages must be JSON objects");
    json_t *n = json_object();
    if (!n) return err_set(e, VELA_ENOMEM, "out of memory");
    static const char *const reasoning_keys[] = {"reasoning_content", "thinking", "reasoning"};
    json_t *reasoning = NULL;
    for (size_t k = 0; k < 3 && !reasoning; k++) {
        json_t *v = json_object_get(m, reasoning_keys[k]);
        if (v && !json_is_null(v)) reasoning = v;
    }
    int rc = 0;
    if (reasoning) rc = json_object_set(n, "thinking", reasoning);
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach((json_t *)m, key, klen, v) {
        if (rc == 0 && !json_is_null(v)) rc = json_object_setn(n, key, klen, v);
    }
    if (rc == 0 && reasoning) rc = json_object_set(n, "reasoning_content", reasoning);
    if (rc) {
        json_decref(n);
        return err_set(e, VELA_ENOMEM, "out of memory");
    }
    *out = n;
    return 0;
}

/* transformers marks the text to continue with this tag, renders, and cuts the prompt at the
 * tag (render_jinja_template, continue_final_message). */
#define CT_CONTINUE_TAG "CONTINUE_FINAL_MESSAGE_TAG "

static bool py_space(unsigned char ch) {
    return ch == ' ' || (ch >= '\t' && ch <= '\r') || (ch >= 0x1c && ch <= 0x1f);
}

/* Python's str.strip() over ASCII whitespace: the bounds of s without its ends. */
static void strip_bounds(const char *s, size_t n, size_t *b, size_t *end) {
    *b = 0;
    *end = n;
    while (*b < *end && py_space((unsigned char)s[*b])) (*b)++;
    while (*end > *b && py_space((unsigned char)s[*end - 1])) (*end)--;
}

static const char *find_last(const char *h, size_t hn, const char *nd, size_t nn) {
    for (size_t i = hn >= nn ? hn - nn + 1 : 0; i > 0; i--)
        if (memcmp(h + i - 1, nd, nn) == 0) return h + i - 1;
    return NULL;
}

/* Appends the tag to the final message's content (a string, or the last part with "text"),
 * on a copy; *final gets the text being continued (a new reference). */
static int mark_final(json_t *msg, json_t **final, struct err *e) {
    json_t *content = json_object_get(msg, "content");
    if (json_is_string(content)) {
        *final = json_incref(content);
        json_t *tagged = json_sprintf("%s%s", json_string_value(content), CT_CONTINUE_TAG);
        if (!tagged || json_object_set_new(msg, "content", tagged))
            return err_set(e, VELA_ENOMEM, "out of memory");
        return 0;
    }
    if (!json_is_array(content))
        return err_set(e, VELA_EINVAL,
                       "continue_final_message is set but the final message has no content");
    json_t *copy = json_deep_copy(content);
    if (!copy || json_object_set_new(msg, "content", copy))
        return err_set(e, VELA_ENOMEM, "out of memory");
    for (size_t k = json_array_size(copy); k > 0; k--) {
        json_t *part = json_array_get(copy, k - 1), *text = json_object_get(part, "text");
        if (!json_is_string(text)) continue;
        *final = json_incref(text);
        json_t *tagged = json_sprintf("%s%s", json_string_value(text), CT_CONTINUE_TAG);
        if (!tagged || json_object_set_new(part, "text", tagged))
            return err_set(e, VELA_ENOMEM, "out of memory");
        return 0;
    }
    return err_set(e, VELA_EINVAL,
                   "continue_final_message is set but the final message has "
                   "no text to continue");
}

/* Cuts the rendered prompt right before the tag (and the trailing whitespace the template may
 * have trimmed), as transformers does; *len is updated. */
static int cut_at_tag(char *text, size_t *len, const json_t *final, struct err *e) {
    size_t fb, fe;
    const char *f = json_string_value(final);
    strip_bounds(f, json_string_length(final), &fb, &fe);
    static const char tag[] = CT_CONTINUE_TAG;
    size_t tag_n = sizeof tag - 1, tag_stripped = tag_n - 1;
    const char *at = find_last(text, *len, tag, tag_stripped);
    if (!at || (fe > fb && !find_last(text, *len, f + fb, fe - fb)))
        return err_set(e, VELA_EINVAL,
                       "continue_final_message is set but the final message does not appear in the "
                       "rendered chat");
    size_t cut = (size_t)(at - text);
    if (!(*len - cut >= tag_n && memcmp(at, tag, tag_n) == 0))
        while (cut > 0 && py_space((unsigned char)text[cut - 1])) cut--;
    text[cut] = '\0';
    *len = cut;
    return 0;
}

int ct_render(const struct chat_template *t, const json_t *messages, const struct ct_options *opt,
              char **out_text, struct err *e) {
    if (!json_is_array(messages)) return err_set(e, VELA_EINVAL, "messages must be a JSON array");
    if (json_array_size(messages) == 0)
        return err_set(e, VELA_EINVAL, "cannot apply a chat template to an empty conversation");
    if (opt && opt->tools && !json_is_array(opt->tools))
        return err_set(e, VELA_EINVAL, "tools must be a JSON array");
    if (opt && opt->extra && !json_is_object(opt->extra))
        return err_set(e, VELA_EINVAL, "extra template variables must be a JSON object");
    bool cont = opt && opt->continue_final_message;
    if (cont && opt->add_generation_prompt)
        return err_set(e, VELA_EINVAL,
                       "continue_final_message and add_generation_prompt are not compatible");
    if (cont && !t->reads_content)
        return err_set(e, VELA_EINVAL,
                       "continue_final_message is set but the chat template "
                       "does not read \"content\"");
    json_t *final = NULL;
    json_t *vars = json_deep_copy(t->defaults), *msgs = json_array();
    int rc = (vars && msgs) ? 0 : err_set(e, VELA_ENOMEM, "out of memory");
    if (rc == 0 && opt && opt->extra)
        rc = json_object_update(vars, (json_t *)opt->extra)
                 ? err_set(e, VELA_ENOMEM, "out of memory")
                 : 0;
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        json_t *nm = NULL;
        if (rc == 0) rc = normalize_message(m, &nm, e);
        if (rc == 0 && json_array_append_new(msgs, nm))
            rc = err_set(e, VELA_ENOMEM, "out of memory");
    }
    if (rc == 0 && cont)
        rc = mark_final(json_array_get(msgs, json_array_size(msgs) - 1), &final, e);
    if (rc == 0) {
        bool ok = json_object_set(vars, "messages", msgs) == 0 &&
                  json_object_set_new(vars, "tools",
                                      opt && opt->tools ? json_incref((json_t *)opt->tools)
                                                        : json_null()) == 0 &&
                  (json_object_get(vars, "documents") ||
                   json_object_set_new(vars, "documents", json_null()) == 0) &&
                  json_object_set_new(vars, "add_generation_prompt",
                                      json_boolean(opt && opt->add_generation_prompt)) == 0 &&
                  json_object_set_new(vars, "add_vision_id",
                                      json_boolean(opt && opt->add_vision_id)) == 0;
        if (!ok) rc = err_set(e, VELA_ENOMEM, "out of memory");
    }
    size_t len = 0;
    if (rc == 0) rc = jinja_render(t->tpl, vars, out_text, &len, e);
    if (rc == 0 && cont) {
        rc = cut_at_tag(*out_text, &len, final, e);
        if (rc) {
            free(*out_text);
            *out_text = NULL;
        }
    }
    json_decref(final);
    json_decref(msgs);
    json_decref(vars);
    return rc;
}
