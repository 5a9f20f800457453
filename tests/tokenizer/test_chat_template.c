/* test_chat_template: chat templates rendered as transformers renders them. The cases in
 * tests/fixtures/chat_template/cases.json (written by tools/chat_template_reference.py through
 * transformers' render_jinja_template) cover the Qwen2.5-VL template (text, images, videos,
 * vision ids, multi-turn, list content), the Qwen2.5 text template with tools and tool calls,
 * and feature_mix.jinja (constructs of recent reasoning/tool templates, extra variables); each
 * must match byte for byte. Also: which file ct_load picks, option handling, and the
 * `vela chat-template` command. */
#include "t.h"
#include "tokenizer/chat_template.h"
#include "util/err.h"
#include "util/file.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

static char *read_text(const char *path) {
    char *buf = NULL;
    size_t n;
    struct err e = {0};
    if (file_read_all(path, 1 << 20, &buf, &n, &e) != 0) return NULL;
    return buf;
}

static int write_text(const char *dir, const char *name, const char *text) {
    char path[8300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct err e = {0};
    return file_write_all(path, text, strlen(text), &e);
}

/* A model folder whose tokenizer_config.json carries the Qwen2.5 text template. */
static const char *text_model_dir(void) {
    static char dir[4096];
    char *src = read_text(t_src("tests/fixtures/chat_template/qwen2_5_text.jinja"));
    const char *tmp = t_tmpdir("ct-text");
    if (!src || !tmp) {
        free(src);
        return NULL;
    }
    snprintf(dir, sizeof dir, "%s", tmp);
    json_t *cfg =
        json_pack("{s:s, s:s, s:n}", "chat_template", src, "eos_token", "<|im_end|>", "bos_token");
    char *text = json_dumps(cfg, 0);
    int rc = write_text(dir, "tokenizer_config.json", text);
    free(text);
    json_decref(cfg);
    free(src);
    return rc == 0 ? dir : NULL;
}

/* The shared Qwen2.5-VL folder, or false (test marked skipped) when the data is missing. */
static bool shared_model_dir(char *buf, size_t cap) {
    const char *p = t_shared("models/qwen2.5-vl-7b/chat_template.json");
    if (!p) return false;
    snprintf(buf, cap, "%s", p);
    char *slash = strrchr(buf, '/');
    if (slash) *slash = '\0';
    return true;
}

static void run_cases(struct chat_template *vl, struct chat_template *txt,
                      struct chat_template *mix) {
    json_error_t je;
    json_t *cases = json_load_file(t_src("tests/fixtures/chat_template/cases.json"), 0, &je);
    T_OK(cases != NULL && json_array_size(cases) >= 41);
    if (!cases) return;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *which = json_string_value(json_object_get(c, "template"));
        struct chat_template *t = strcmp(which, "qwen2_5_vl") == 0     ? vl
                                  : strcmp(which, "qwen2_5_text") == 0 ? txt
                                                                       : mix;
        if (!t) continue;
        struct ct_options opt = {
            .add_generation_prompt = json_is_true(json_object_get(c, "add_generation_prompt")),
            .add_vision_id = json_is_true(json_object_get(c, "add_vision_id")),
            .continue_final_message = json_is_true(json_object_get(c, "continue_final_message")),
            .tools =
                json_is_array(json_object_get(c, "tools")) ? json_object_get(c, "tools") : NULL,
            .extra = json_object_get(c, "extra")};
        struct err e = {0};
        char *out = NULL;
        int rc = ct_render(t, json_object_get(c, "messages"), &opt, &out, &e);
        const json_t *expected = json_object_get(c, "expected");
        if (expected) {
            bool same = rc == 0 && strcmp(out, json_string_value(expected)) == 0;
            if (!same)
                fprintf(stderr, "case %s\n  want: %s\n  got:  %s\n", name,
                        json_string_value(expected), rc == 0 ? out : e.msg);
            T_OK(same);
        } else {
            T_OK(rc != 0 && e.msg[0] != '\0');
        }
        free(out);
    }
    json_decref(cases);
}

static void test_reference_cases(void) {
    struct err e = {0};
    struct chat_template *vl = NULL, *txt = NULL;
    char vl_dir[4096];
    if (shared_model_dir(vl_dir, sizeof vl_dir)) {
        int rc = ct_load(&vl, vl_dir, &e);
        T_RC(rc, &e);
        if (rc == 0) T_STREQ(ct_origin(vl), "chat_template.json");
    }
    const char *dir = text_model_dir();
    T_OK(dir != NULL);
    if (dir) {
        int rc = ct_load(&txt, dir, &e);
        T_RC(rc, &e);
        if (rc == 0) T_STREQ(ct_origin(txt), "tokenizer_config.json");
    }
    struct chat_template *mix = NULL;
    char *mix_src = read_text(t_src("tests/fixtures/chat_template/feature_mix.jinja"));
    T_OK(mix_src != NULL);
    if (mix_src) {
        int rc = ct_from_source(&mix, mix_src, strlen(mix_src), &e);
        T_RC(rc, &e);
        free(mix_src);
    }
    run_cases(vl, txt, mix);
    ct_free(vl);
    ct_free(txt);
    ct_free(mix);
}

/* transformers' order: processor_config.json's template, chat_template.json,
 * chat_template.jinja, tokenizer_config.json. */
static void test_load_precedence(void) {
    const char *tmp = t_tmpdir("ct-prec");
    T_OK(tmp != NULL);
    if (!tmp) return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tmp);
    struct err e = {0};
    struct chat_template *t = NULL;
    T_FAILS(ct_load(&t, dir, &e), VELA_ENOTFOUND, &e);
    const char *names[] = {"tokenizer_config.json", "chat_template.jinja", "chat_template.json",
                           "processor_config.json"};
    const char *bodies[] = {"{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, "
                            "{\"name\": \"default\", \"template\": \"tok{{ eos_token }}\"}], "
                            "\"eos_token\": {\"content\": \"</s>\"}}",
                            "jinja{{ eos_token }}\n", "{\"chat_template\": \"json\"}",
                            "{\"chat_template\": \"proc\"}"};
    const char *want[] = {"tok</s>", "jinja</s>", "json", "proc"};
    json_t *msgs = json_loads("[{\"role\": \"user\", \"content\": \"x\"}]", 0, NULL);
    for (int k = 0; k < 4; k++) {
        T_EQ(write_text(dir, names[k], bodies[k]), 0);
        int rc = ct_load(&t, dir, &e);
        T_RC(rc, &e);
        if (rc) continue;
        T_STREQ(ct_origin(t), names[k]);
        char *out = NULL;
        rc = ct_render(t, msgs, NULL, &out, &e);
        T_RC(rc, &e);
        if (rc == 0) T_STREQ(out, want[k]);
        free(out);
        ct_free(t);
    }
    T_EQ(write_text(dir, "processor_config.json", "{\"chat_template\": \"{% if %}\"}"), 0);
    T_FAILS(ct_load(&t, dir, &e), VELA_EFORMAT, &e);
    T_OK(strstr(e.msg, "processor_config.json") != NULL && strstr(e.msg, "line 1") != NULL);
    json_decref(msgs);
}

static void test_options_and_errors(void) {
    const char *src = "{{ messages|length }}|{{ tools is none }}|{{ documents is none }}|"
                      "{{ add_generation_prompt }}|{{ messages[0]|tojson }}|{{ lang }}";
    struct chat_template *t = NULL;
    struct err e = {0};
    int rc = ct_from_source(&t, src, strlen(src), &e);
    T_RC(rc, &e);
    if (rc) return;
    json_t *msgs =
        json_loads("[{\"role\": \"assistant\", \"content\": null, \"reasoning\": \"r\"}]", 0, NULL);
    json_t *extra = json_pack("{s:s}", "lang", "fr");
    struct ct_options opt = {.add_generation_prompt = true, .extra = extra};
    char *out = NULL;
    rc = ct_render(t, msgs, &opt, &out, &e);
    T_RC(rc, &e);
    /* null keys dropped; reasoning aliased as transformers' _alias_reasoning_fields does */
    if (rc == 0)
        T_STREQ(out,
                "1|True|True|True|{\"thinking\": \"r\", \"role\": \"assistant\", \"reasoning\": "
                "\"r\", \"reasoning_content\": \"r\"}|fr");
    free(out);
    json_t *empty = json_array();
    T_FAILS(ct_render(t, empty, &opt, &out, &e), VELA_EINVAL, &e);
    json_t *bad = json_loads("[1]", 0, NULL);
    T_FAILS(ct_render(t, bad, &opt, &out, &e), VELA_EINVAL, &e);
    json_t *obj = json_object();
    T_FAILS(ct_render(t, obj, &opt, &out, &e), VELA_EINVAL, &e);
    opt.tools = obj;
    T_FAILS(ct_render(t, msgs, &opt, &out, &e), VELA_EINVAL, &e);
    json_decref(obj);
    json_decref(bad);
    json_decref(empty);
    json_decref(extra);
    json_decref(msgs);
    ct_free(t);
}

static void test_cli(void) {
    const char *bin = getenv("VELA_BIN");
    char model_dir[4096];
    if (!bin || !*bin) {
        T_SKIP("VELA_BIN not set");
        return;
    }
    if (!shared_model_dir(model_dir, sizeof model_dir)) return;
    const char *tmp = t_tmpdir("ct-cli");
    T_OK(tmp != NULL);
    if (!tmp) return;
    char dir[4096], cmd[16384];
    snprintf(dir, sizeof dir, "%s", tmp);
    T_EQ(write_text(dir, "msgs.json",
                    "[{\"role\":\"user\",\"content\":[{\"type\":\"image\"},{\"type\":\"text\","
                    "\"text\":\"Describe this image.\"}]}]"),
         0);
    snprintf(cmd, sizeof cmd,
             "'%s' chat-template --model '%s' --add-generation-prompt "
             "--add-vision-id '%s/msgs.json' > '%s/out.txt'",
             bin, model_dir, dir, dir);
    T_EQ(system(cmd), 0);
    char path[8300];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    char *out = read_text(path);
    T_OK(out != NULL);
    if (out)
        T_STREQ(out,
                "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                "Picture 1: <|vision_start|><|image_pad|><|vision_end|>Describe this image."
                "<|im_end|>\n<|im_start|>assistant\n");
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' chat-template --model '%s' '%s/missing.json' 2>/dev/null", bin,
             model_dir, dir);
    T_OK(system(cmd) != 0);
}

/* One compiled template rendered from several threads at once (the server's prep workers). */
struct thread_job {
    const struct chat_template *t;
    const json_t *msgs;
    const char *want;
    int n_bad;
};

static void *render_many(void *arg) {
    struct thread_job *j = arg;
    struct ct_options opt = {.add_generation_prompt = true, .add_vision_id = true};
    for (int i = 0; i < 200; i++) {
        struct err e = {0};
        char *out = NULL;
        if (ct_render(j->t, j->msgs, &opt, &out, &e) != 0 || strcmp(out, j->want) != 0) j->n_bad++;
        free(out);
    }
    return NULL;
}

static void test_threads(void) {
    const char *src = "{% set ns = namespace(k=0) %}{% for m in messages %}{% for p in m.content %}"
                      "{% if p.type == 'image' %}{% set ns.k = ns.k + 1 %}[img {{ ns.k }}]"
                      "{% else %}{{ p.text | upper }}{% endif %}{% endfor %}{% endfor %}";
    struct chat_template *t = NULL;
    struct err e = {0};
    int rc = ct_from_source(&t, src, strlen(src), &e);
    T_RC(rc, &e);
    if (rc) return;
    json_t *msgs = json_loads("[{\"role\":\"user\",\"content\":[{\"type\":\"image\"},"
                              "{\"type\":\"text\",\"text\":\"ab\"},{\"type\":\"image\"}]}]",
                              0, NULL);
    struct thread_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct thread_job){.t = t, .msgs = msgs, .want = "[img 1]AB[img 2]"};
        T_EQ(pthread_create(&th[i], NULL, render_many, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        T_EQ(jobs[i].n_bad, 0);
    }
    json_decref(msgs);
    ct_free(t);
}

int main(void) {
    T_RUN(test_reference_cases);
    T_RUN(test_load_precedence);
    T_RUN(test_options_and_errors);
    T_RUN(test_threads);
    T_RUN(test_cli);
    return t_done();
}
