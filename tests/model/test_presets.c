/* Tests for model/presets: every preset yields a valid config for its tokenizer, the real
 * shapes have the parameter counts of model spec §1.4 and the published Qwen2.5 sizes,
 * vocab sizing and special-id rules, and the embedded chat template equals the official
 * one. */
#include "t.h"
#include "model/chat_template_qwen.h"
#include "model/config.h"
#include "model/params.h"
#include "model/presets.h"
#include "util/file.h"
#include "util/json.h"

#include <stdint.h>

/* The real Qwen tokenizer's ids (spec §8). */
static struct preset_specials real_specials(void) {
    struct preset_specials sp = {.n_ids = 151665,
                                 .endoftext = 151643,
                                 .im_start = 151644,
                                 .im_end = 151645,
                                 .vision_start = 151652,
                                 .vision_end = 151653,
                                 .vision_pad = 151654,
                                 .image_pad = 151655,
                                 .video_pad = 151656};
    return sp;
}

/* Ids shaped like the tiny tokenizer's: 631 vocab ids, then the 22 added tokens. */
static struct preset_specials small_specials(void) {
    struct preset_specials sp = {.n_ids = 653,
                                 .endoftext = 631,
                                 .im_start = 632,
                                 .im_end = 633,
                                 .vision_start = 640,
                                 .vision_end = 641,
                                 .vision_pad = 642,
                                 .image_pad = 643,
                                 .video_pad = 644};
    return sp;
}

static void test_table(void) {
    T_OK(preset_count() >= 8);
    for (int32_t i = 0; i < preset_count(); i++) {
        const struct preset *p = preset_at(i);
        T_OK(p != NULL && preset_find(p->name) == p);
        T_OK(strstr(preset_names(), p->name) != NULL);
        T_OK(p->description && p->description[0]);
    }
    T_OK(preset_at(-1) == NULL);
    T_OK(preset_at(preset_count()) == NULL);
    T_OK(preset_find("nope") == NULL);
    T_OK(preset_find(NULL) == NULL);
    T_OK(preset_find("Tiny") == NULL); /* exact names only */
}

static void test_all_validate(void) {
    for (int32_t i = 0; i < preset_count(); i++) {
        const struct preset *p = preset_at(i);
        struct preset_specials sp =
            p->vocab == PRESET_VOCAB_FIXED ? real_specials() : small_specials();
        struct model_config c;
        struct err e = {0};
        int rc = preset_config(p, &sp, &c, &e);
        T_RC(rc, &e);
        if (rc != 0) continue;
        rc = cfg_validate(&c, &e);
        T_RC(rc, &e);
        T_EQ(c.head_dim * c.num_attention_heads, c.hidden_size);
        T_EQ(c.num_attention_heads % c.num_key_value_heads, 0);
        T_EQ(c.bos_token_id, sp.endoftext);
        T_EQ(c.n_eos_token_ids, 1);
        T_EQ(c.eos_token_ids[0], sp.im_end);
        T_OK(c.vocab_size >= sp.n_ids && c.vocab_size % 64 == 0);
        if (c.has_vision) {
            T_EQ(c.mrope_section[0] + c.mrope_section[1] + c.mrope_section[2], c.head_dim / 2);
            T_EQ(c.vision.out_hidden_size, c.hidden_size);
            T_EQ(c.image_token_id, sp.image_pad);
            T_EQ(c.video_token_id, sp.video_pad);
            T_EQ(c.vision_start_token_id, sp.vision_start);
            T_EQ(c.vision_end_token_id, sp.vision_end);
            T_EQ(c.vision_token_id, sp.vision_pad);
            T_OK(c.vision.n_fullatt >= 1 && c.vision.n_fullatt < c.vision.depth);
            T_OK(c.vision.window_size > 0);
            T_EQ(c.vision.hidden_size % c.vision.num_heads, 0);
            T_EQ((c.vision.hidden_size / c.vision.num_heads) % 4, 0); /* 2-D rotary halves */
            T_OK(p->max_pixels >= 3136);
        } else {
            T_OK(!c.has_mrope);
            T_EQ(c.image_token_id, -1);
        }
    }
}

static int64_t total_params(const char *name, struct preset_specials sp) {
    struct model_config c;
    struct err e = {0};
    if (preset_config(preset_find(name), &sp, &c, &e) != 0) return -1;
    struct param_counts pc;
    params_count(&c, &pc);
    return pc.total;
}

static void test_real_counts(void) {
    struct preset_specials sp = real_specials();
    T_EQ(total_params("3b", sp), 3754622976LL); /* spec §1.4 */
    T_EQ(total_params("7b", sp), 8292166656LL);
    T_EQ(total_params("32b", sp), 33452718336LL);
    T_EQ(total_params("72b", sp), 73410777344LL);
    T_EQ(total_params("qwen2.5-0.5b", sp), 494032768LL); /* published sizes */
    T_EQ(total_params("qwen2.5-1.5b", sp), 1543714304LL);
    /* Small presets stay small: tiny a few MB, demo in the 100-300M range. */
    int64_t tiny = total_params("tiny", small_specials());
    int64_t demo = total_params("demo", small_specials());
    T_OK(tiny > 100000 && tiny < 3000000);
    T_OK(demo > 100000000 && demo < 300000000);
    T_OK(total_params("demo", sp) < 300000000); /* with the real vocabulary too */

    struct model_config c;
    struct err e = {0};
    T_RC(preset_config(preset_find("7b"), &sp, &c, &e), &e);
    T_EQ(c.vocab_size, 152064); /* fixed, not rounded from the tokenizer */
    T_EQ(c.vision.intermediate_size, 3420);
    T_RC(preset_config(preset_find("72b"), &sp, &c, &e), &e);
    T_EQ(c.intermediate_size, 29568);
    T_EQ(c.vision.fullatt_block_indexes[3], 31);
    T_RC(preset_config(preset_find("3b"), &sp, &c, &e), &e);
    T_OK(c.tie_word_embeddings);
    T_EQ(c.vocab_size, 151936);
}

static void test_vocab_rules(void) {
    struct model_config c;
    struct err e = {0};
    struct preset_specials sp = small_specials();
    T_RC(preset_config(preset_find("tiny"), &sp, &c, &e), &e);
    T_EQ(c.vocab_size, 704); /* 653 rounded up to 64 */
    sp.n_ids = 640;
    T_RC(preset_config(preset_find("tiny"), &sp, &c, &e), &e);
    T_EQ(c.vocab_size, 640); /* already a multiple */
    sp = real_specials();
    T_RC(preset_config(preset_find("tiny"), &sp, &c, &e), &e);
    T_EQ(c.vocab_size, 151680); /* the real tokenizer on a small shape */
    T_EQ(c.image_token_id, 151655);

    /* A fixed vocab too small for the tokenizer, missing tokens, absurd counts. */
    sp = real_specials();
    sp.n_ids = 152065;
    T_FAILS(preset_config(preset_find("7b"), &sp, &c, &e), VELA_EINVAL, &e);
    sp = real_specials();
    sp.image_pad = -1;
    T_FAILS(preset_config(preset_find("tiny"), &sp, &c, &e), VELA_EINVAL, &e);
    T_RC(preset_config(preset_find("qwen2.5-0.5b"), &sp, &c, &e), &e); /* text only: fine */
    sp = real_specials();
    sp.im_end = -1;
    T_FAILS(preset_config(preset_find("qwen2.5-0.5b"), &sp, &c, &e), VELA_EINVAL, &e);
    sp = small_specials();
    sp.n_ids = 0;
    T_FAILS(preset_config(preset_find("tiny"), &sp, &c, &e), VELA_EINVAL, &e);
}

static void test_chat_template(void) {
    const char *t = chat_template_qwen2_5_vl();
    T_OK(strstr(t, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n") != NULL);
    T_OK(strstr(t, "<|vision_start|><|image_pad|><|vision_end|>") != NULL);
    const char *path = t_shared("models/qwen2.5-vl-7b/chat_template.json");
    if (!path) return;
    json_t *root = NULL;
    struct err e = {0};
    int rc = ju_load_file(path, 1 << 20, &root, &e);
    T_RC(rc, &e);
    if (rc != 0) return;
    const char *want = json_string_value(json_object_get(root, "chat_template"));
    T_OK(want != NULL && strcmp(want, t) == 0); /* byte for byte */
    T_EQ(strlen(t), 1017);
    json_decref(root);
}

int main(void) {
    T_RUN(test_table);
    T_RUN(test_all_validate);
    T_RUN(test_real_counts);
    T_RUN(test_vocab_rules);
    T_RUN(test_chat_template);
    return t_done();
}
