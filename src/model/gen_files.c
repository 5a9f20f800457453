/* gen_files: writes the JSON side files of a generated model folder (see gen_files.h).
 *
 * The files copy the structure and values of the official Qwen2.5-VL repository files
 * (model spec §7, §8); only the token ids come from the tokenizer actually written, so a
 * folder with the tiny tokenizer is self-consistent. Invariants:
 *  1. Every JSON file is produced by jansson with insertion order kept and a fixed real
 *     precision, so the bytes depend only on the inputs.
 *  2. tokenizer.json from --tokenizer is copied verbatim, never re-serialized.
 * Main thread. */
#include "model/gen_files.h"

#include "model/chat_template_qwen.h"
#include "model/tiny_tokenizer.h"
#include "util/file.h"
#include "util/limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OOM(e, what) err_set((e), VELA_ENOMEM, "%s: out of memory", (what))

int gen_write_json(const char *dir, const char *name, const json_t *root, struct err *e) {
    char path[4096];
    int rc = path_join(path, sizeof path, dir, name, e);
    if (rc != 0) return rc;
    /* 10 significant digits print 0.48145466 and 1e-06 as written in the real files. */
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    if (!s) return OOM(e, path);
    size_t n = strlen(s);
    char *buf = realloc(s, n + 2);
    if (!buf) {
        free(s);
        return OOM(e, path);
    }
    buf[n] = '\n';
    rc = file_write_all(path, buf, n + 1, e);
    free(buf);
    return rc;
}

/* ---- tokenizer ---- */

static void specials_clear(struct preset_specials *sp) {
    sp->n_ids = 0;
    sp->endoftext = sp->im_start = sp->im_end = -1;
    sp->vision_start = sp->vision_end = sp->vision_pad = sp->image_pad = sp->video_pad = -1;
}

static void specials_match(struct preset_specials *sp, const char *s, int32_t id) {
    static const struct {
        const char *content;
        size_t offset;
    } names[] = {
        {"<|endoftext|>", offsetof(struct preset_specials, endoftext)},
        {"<|im_start|>", offsetof(struct preset_specials, im_start)},
        {"<|im_end|>", offsetof(struct preset_specials, im_end)},
        {"<|vision_start|>", offsetof(struct preset_specials, vision_start)},
        {"<|vision_end|>", offsetof(struct preset_specials, vision_end)},
        {"<|vision_pad|>", offsetof(struct preset_specials, vision_pad)},
        {"<|image_pad|>", offsetof(struct preset_specials, image_pad)},
        {"<|video_pad|>", offsetof(struct preset_specials, video_pad)},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].content) == 0) memcpy((char *)sp + names[i].offset, &id, sizeof id);
}

/* Reads an id value, bounded so the config's vocab math cannot overflow. */
static int tok_id(const json_t *v, const char *what, int32_t *out, struct err *e) {
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) >= VELA_CFG_MAX_VOCAB)
        return err_set(e, VELA_EFORMAT, "tokenizer.json: %s: id missing or outside [0, %d)", what,
                       VELA_CFG_MAX_VOCAB);
    *out = (int32_t)json_integer_value(v);
    return 0;
}

int gen_tok_specials(const json_t *root, struct preset_specials *sp, struct err *e) {
    specials_clear(sp);
    const json_t *model = json_object_get(root, "model");
    const json_t *vocab = json_object_get(model, "vocab");
    const json_t *added = json_object_get(root, "added_tokens");
    if (!json_is_object(vocab) || !json_is_array(added))
        return err_set(e, VELA_EFORMAT, "tokenizer.json: no model.vocab object or added_tokens");
    int32_t max_id = -1, id;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)vocab, key, v) {
        if (tok_id(v, key, &id, e) != 0) return e->code;
        if (id > max_id) max_id = id;
    }
    size_t i;
    json_array_foreach(added, i, v) {
        const char *content = json_string_value(json_object_get(v, "content"));
        if (!content)
            return err_set(e, VELA_EFORMAT, "tokenizer.json: added_tokens[%zu]: no content", i);
        if (tok_id(json_object_get(v, "id"), content, &id, e) != 0) return e->code;
        if (id > max_id) max_id = id;
        specials_match(sp, content, id);
    }
    sp->n_ids = max_id + 1;
    return 0;
}

int gen_tok_load(struct gen_tok *t, const char *tokenizer_dir, struct err *e) {
    memset(t, 0, sizeof *t);
    int rc;
    if (tokenizer_dir) {
        char path[4096];
        rc = path_join(path, sizeof path, tokenizer_dir, "tokenizer.json", e);
        if (rc == 0) rc = file_read_all(path, VELA_TOKENIZER_MAX_BYTES, &t->text, &t->len, e);
        if (rc != 0) return rc;
        json_error_t je;
        t->root = json_loadb(t->text, t->len, 0, &je);
        if (!json_is_object(t->root))
            return err_set(e, VELA_EFORMAT, "%s: line %d: %s", path, je.line,
                           t->root ? "not a JSON object" : je.text);
    } else {
        rc = tt_build_json(&t->root, e);
        if (rc != 0) return rc;
        t->text = json_dumps(t->root, JSON_INDENT(2));
        if (!t->text) return OOM(e, "tokenizer.json");
        t->len = strlen(t->text);
    }
    return gen_tok_specials(t->root, &t->sp, e);
}

void gen_tok_deinit(struct gen_tok *t) {
    if (!t) return;
    json_decref(t->root);
    free(t->text);
    memset(t, 0, sizeof *t);
}

/* ---- the side files ---- */

/* tokenizer_config.json as the Qwen2.5-VL repository has it, with the added tokens of the
 * tokenizer written. The chat template is the VL one (the real file carries a text-only
 * tool-calling template that only transformers' tokenizer path uses, spec §7.1). */
static json_t *tokenizer_config(const struct gen_tok *t) {
    json_t *dec = json_object(), *extra = json_array();
    const json_t *added = json_object_get(t->root, "added_tokens"), *v;
    size_t i;
    bool ok = dec && extra;
    json_array_foreach(added, i, v) {
        if (!ok) break;
        char key[32];
        const char *content = json_string_value(json_object_get(v, "content"));
        snprintf(key, sizeof key, "%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(v, "id")));
        bool special = json_is_true(json_object_get(v, "special"));
        ok = json_object_set_new(
                 dec, key,
                 json_pack("{s:s, s:b, s:b, s:b, s:b, s:b}", "content", content, "lstrip",
                           json_is_true(json_object_get(v, "lstrip")), "normalized",
                           json_is_true(json_object_get(v, "normalized")), "rstrip",
                           json_is_true(json_object_get(v, "rstrip")), "single_word",
                           json_is_true(json_object_get(v, "single_word")), "special", special)) ==
             0;
        if (ok && special && strcmp(content, "<|endoftext|>") != 0)
            ok = json_array_append_new(extra, json_string(content)) == 0;
    }
    if (!ok) {
        json_decref(dec);
        json_decref(extra);
        return NULL;
    }
    return json_pack("{s:b, s:o, s:o, s:n, s:s, s:b, s:s, s:s, s:I, s:s, s:b, s:s, s:n}",
                     "add_prefix_space", 0, "added_tokens_decoder", dec,
                     "additional_special_tokens", extra, "bos_token", "chat_template",
                     chat_template_qwen2_5_vl(), "clean_up_tokenization_spaces", 0, "eos_token",
                     "<|im_end|>", "errors", "replace", "model_max_length", (json_int_t)131072,
                     "pad_token", "<|endoftext|>", "split_special_tokens", 0, "tokenizer_class",
                     "Qwen2Tokenizer", "unk_token");
}

/* generation_config.json: the Qwen2.5-VL Instruct sampling defaults (spec §7.2, earlier
 * revision), ids from the tokenizer. */
static json_t *generation_config(const struct preset_specials *sp) {
    return json_pack("{s:I, s:I, s:b, s:[I,I], s:f, s:f, s:f, s:I}", "bos_token_id",
                     (json_int_t)sp->endoftext, "pad_token_id", (json_int_t)sp->endoftext,
                     "do_sample", 1, "eos_token_id", (json_int_t)sp->im_end,
                     (json_int_t)sp->endoftext, "repetition_penalty", 1.05, "temperature", 0.1,
                     "top_p", 0.001, "top_k", (json_int_t)1);
}

/* preprocessor_config.json of Qwen2.5-VL; max_pixels is the preset's (smaller on the test
 * presets so image tests stay fast). */
static json_t *preprocessor_config(const struct preset *p, const struct model_config *c) {
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:[f,f,f], s:[f,f,f], s:s, s:s}", "min_pixels", (json_int_t)3136,
        "max_pixels", (json_int_t)p->max_pixels, "patch_size", (json_int_t)c->vision.patch_size,
        "temporal_patch_size", (json_int_t)c->vision.temporal_patch_size, "merge_size",
        (json_int_t)c->vision.spatial_merge_size, "image_mean", 0.48145466, 0.4578275, 0.40821073,
        "image_std", 0.26862954, 0.26130258, 0.27577711, "image_processor_type",
        "Qwen2VLImageProcessor", "processor_class", "Qwen2_5_VLProcessor");
}

static int write_owned(const char *dir, const char *name, json_t *root, struct err *e) {
    if (!root) return OOM(e, name);
    int rc = gen_write_json(dir, name, root, e);
    json_decref(root);
    return rc;
}

int gen_write_side_files(const char *dir, const struct preset *p, const struct model_config *c,
                         const struct gen_tok *t, struct err *e) {
    char path[4096];
    int rc = path_join(path, sizeof path, dir, "tokenizer.json", e);
    if (rc == 0) rc = file_write_all(path, t->text, t->len, e);
    if (rc == 0) rc = write_owned(dir, "tokenizer_config.json", tokenizer_config(t), e);
    if (rc == 0) rc = write_owned(dir, "generation_config.json", generation_config(&t->sp), e);
    if (rc == 0 && c->has_vision)
        rc = write_owned(dir, "preprocessor_config.json", preprocessor_config(p, c), e);
    if (rc == 0 && c->has_vision)
        rc = write_owned(dir, "chat_template.json",
                         json_pack("{s:s}", "chat_template", chat_template_qwen2_5_vl()), e);
    if (rc == 0 && !c->has_vision) { /* a text model over an earlier VL folder: no leftovers */
        static const char *const vl_only[] = {"preprocessor_config.json", "chat_template.json"};
        for (size_t i = 0; rc == 0 && i < 2; i++) {
            rc = path_join(path, sizeof path, dir, vl_only[i], e);
            if (rc == 0) unlink(path);
        }
    }
    return rc;
}
