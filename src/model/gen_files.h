/* gen_files: the JSON side files of a generated model folder (tokenizer, tokenizer and
 * generation configs, preprocessor config, chat template). Internal to the generator:
 * gen_model_write() in generator.c is the only caller. Main thread. */
#ifndef VELA_MODEL_GEN_FILES_H
#define VELA_MODEL_GEN_FILES_H

#include "model/config.h"
#include "model/presets.h"
#include "util/err.h"

#include <jansson.h>
#include <stddef.h>

/* The tokenizer that goes into the folder. */
struct gen_tok {
    json_t *root; /* parsed tokenizer.json; owned */
    char *text;   /* the exact bytes written as tokenizer.json; owned */
    size_t len;
    struct preset_specials sp; /* ids found in root */
};

/* tokenizer_dir NULL: trains the tiny tokenizer; otherwise reads DIR/tokenizer.json (kept
 * byte for byte). Either way finds the special ids. gen_tok_deinit frees (also on failure). */
int gen_tok_load(struct gen_tok *t, const char *tokenizer_dir, struct err *e);
void gen_tok_deinit(struct gen_tok *t);

/* Finds the special token ids and the id count of a parsed tokenizer.json. */
int gen_tok_specials(const json_t *root, struct preset_specials *sp, struct err *e);

/* Writes every file but config.json and the weights: tokenizer.json, tokenizer_config.json,
 * generation_config.json and, for vision models, preprocessor_config.json and
 * chat_template.json. */
int gen_write_side_files(const char *dir, const struct preset *p, const struct model_config *c,
                         const struct gen_tok *t, struct err *e);

/* Dumps root as indented JSON (plus a final newline) to dir/name, atomically. */
int gen_write_json(const char *dir, const char *name, const json_t *root, struct err *e);

#endif
