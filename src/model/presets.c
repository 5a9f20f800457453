/* presets: the table of model shapes behind `vela make-model --preset` (see presets.h).
 *
 * Invariants:
 *  1. Every entry passes cfg_validate() once preset_config() has filled in the vocab and
 *     special ids (tests/model/test_presets.c checks each one).
 *  2. Real shapes copy the official config.json values (model spec §1.2; 72B uses the BF16
 *     intermediate size 29568, Qwen2.5 text models their published configs); the special
 *     ids written here are the real Qwen ones and are replaced by the tokenizer's own.
 *  3. Small shapes keep the Qwen2.5-VL structure (GQA, q/k/v biases, M-RoPE with sections
 *     summing to head_dim/2, window attention plus at least one full-attention ViT block)
 *     so every code path of the real model runs on them.
 * Any thread: the table is const. */
#include "model/presets.h"

#include "util/limits.h"

#include <string.h>

/* The vision tower every real Qwen2.5-VL size shares; only Fv and the output width vary. */
#define QWEN_VL_VISION(fv, out)                                                                    \
    {                                                                                              \
        .depth = 32, .hidden_size = 1280, .intermediate_size = (fv), .num_heads = 16,              \
        .in_chans = 3, .patch_size = 14, .spatial_merge_size = 2, .temporal_patch_size = 2,        \
        .tokens_per_second = 2, .window_size = 112, .out_hidden_size = (out),                      \
        .fullatt_block_indexes = {7, 15, 23, 31}, .n_fullatt = 4, .hidden_act = "silu",            \
    }

/* Fields common to every Qwen2.5-VL entry. The ids are the real tokenizer's (spec §1.2). */
#define QWEN_VL_COMMON                                                                             \
    .arch = ARCH_QWEN2_5_VL, .architecture = "Qwen2_5_VLForConditionalGeneration",                 \
    .model_type = "qwen2_5_vl", .torch_dtype = "bfloat16", .rope_theta = 1000000.0,                \
    .rms_norm_eps = 1e-6, .has_mrope = true, .bos_token_id = 151643, .eos_token_ids = {151645},    \
    .n_eos_token_ids = 1, .pad_token_id = -1, .image_token_id = 151655, .video_token_id = 151656,  \
    .vision_start_token_id = 151652, .vision_end_token_id = 151653, .vision_token_id = 151654,     \
    .has_vision = true

/* Qwen2ForCausalLM (text only, 1-D RoPE). Real configs carry no pad or vision ids. */
#define QWEN2_TEXT_COMMON                                                                          \
    .arch = ARCH_QWEN2, .architecture = "Qwen2ForCausalLM", .model_type = "qwen2",                 \
    .torch_dtype = "bfloat16", .rope_theta = 1000000.0, .rms_norm_eps = 1e-6,                      \
    .max_position_embeddings = 32768, .has_mrope = false, .bos_token_id = 151643,                  \
    .eos_token_ids = {151645}, .n_eos_token_ids = 1, .pad_token_id = -1, .image_token_id = -1,     \
    .video_token_id = -1, .vision_start_token_id = -1, .vision_end_token_id = -1,                  \
    .vision_token_id = -1, .has_vision = false

/* The real processor's max_pixels (28*28*16384). */
#define QWEN_MAX_PIXELS 12845056

static const struct preset PRESETS[] = {
    /* tiny: a few MB, for unit and integration tests. head_dim 32 with mrope [4,6,6]
     * (sum 16 = head_dim/2); ViT head_dim 16; window 112 px = 4x4 merged tokens, so images
     * of more than 112x112 px use real window partitions, and blocks 1 and 3 attend fully.
     * Untied lm_head, like 7B/32B/72B. max_pixels 28*28*256: at most 256 image tokens, so
     * image tests stay fast. */
    {"tiny",
     "2 layers, hidden 128, ViT depth 4 (0.8M params, 1.6 MB; for tests)",
     PRESET_VOCAB_FROM_TOKENIZER,
     28 * 28 * 256,
     {QWEN_VL_COMMON, .hidden_size = 128, .intermediate_size = 256, .num_hidden_layers = 2,
      .num_attention_heads = 4, .num_key_value_heads = 2, .head_dim = 32,
      .max_position_embeddings = 32768, .tie_word_embeddings = false, .mrope_section = {4, 6, 6},
      .vision = {.depth = 4,
                 .hidden_size = 64,
                 .intermediate_size = 128,
                 .num_heads = 4,
                 .in_chans = 3,
                 .patch_size = 14,
                 .spatial_merge_size = 2,
                 .temporal_patch_size = 2,
                 .tokens_per_second = 2,
                 .window_size = 112,
                 .out_hidden_size = 128,
                 .fullatt_block_indexes = {1, 3},
                 .n_fullatt = 2,
                 .hidden_act = "silu"}}},
    /* demo: ~110M parameters with the tiny tokenizer (~225M with the real one, tied
     * embeddings like the 3B): a few tokens per second or better on 2 CPU cores. head_dim 128
     * and mrope [16,24,24] as on the real sizes, so the real kernels' shapes are exercised.
     * max_pixels 28*28*512: at most 512 image tokens keeps an image prefill interactive. */
    {"demo",
     "12 layers, hidden 768, ViT depth 8 (~110M params; CPU demo)",
     PRESET_VOCAB_FROM_TOKENIZER,
     28 * 28 * 512,
     {QWEN_VL_COMMON, .hidden_size = 768, .intermediate_size = 3072, .num_hidden_layers = 12,
      .num_attention_heads = 6, .num_key_value_heads = 2, .head_dim = 128,
      .max_position_embeddings = 32768, .tie_word_embeddings = true, .mrope_section = {16, 24, 24},
      .vision = {.depth = 8,
                 .hidden_size = 256,
                 .intermediate_size = 1024,
                 .num_heads = 4,
                 .in_chans = 3,
                 .patch_size = 14,
                 .spatial_merge_size = 2,
                 .temporal_patch_size = 2,
                 .tokens_per_second = 2,
                 .window_size = 112,
                 .out_hidden_size = 768,
                 .fullatt_block_indexes = {3, 7},
                 .n_fullatt = 2,
                 .hidden_act = "silu"}}},
    {"3b",
     "Qwen2.5-VL-3B-Instruct shapes (3.75B params, tied)",
     PRESET_VOCAB_FIXED,
     QWEN_MAX_PIXELS,
     {QWEN_VL_COMMON, .vocab_size = 151936, .hidden_size = 2048, .intermediate_size = 11008,
      .num_hidden_layers = 36, .num_attention_heads = 16, .num_key_value_heads = 2, .head_dim = 128,
      .max_position_embeddings = 128000, .tie_word_embeddings = true, .mrope_section = {16, 24, 24},
      .vision = QWEN_VL_VISION(3420, 2048)}},
    {"7b",
     "Qwen2.5-VL-7B-Instruct shapes (8.29B params)",
     PRESET_VOCAB_FIXED,
     QWEN_MAX_PIXELS,
     {QWEN_VL_COMMON, .vocab_size = 152064, .hidden_size = 3584, .intermediate_size = 18944,
      .num_hidden_layers = 28, .num_attention_heads = 28, .num_key_value_heads = 4, .head_dim = 128,
      .max_position_embeddings = 128000, .tie_word_embeddings = false,
      .mrope_section = {16, 24, 24}, .vision = QWEN_VL_VISION(3420, 3584)}},
    {"32b",
     "Qwen2.5-VL-32B-Instruct shapes (33.5B params)",
     PRESET_VOCAB_FIXED,
     QWEN_MAX_PIXELS,
     {QWEN_VL_COMMON, .vocab_size = 152064, .hidden_size = 5120, .intermediate_size = 27648,
      .num_hidden_layers = 64, .num_attention_heads = 40, .num_key_value_heads = 8, .head_dim = 128,
      .max_position_embeddings = 128000, .tie_word_embeddings = false,
      .mrope_section = {16, 24, 24}, .vision = QWEN_VL_VISION(3456, 5120)}},
    {"72b",
     "Qwen2.5-VL-72B-Instruct shapes (73.4B params)",
     PRESET_VOCAB_FIXED,
     QWEN_MAX_PIXELS,
     {QWEN_VL_COMMON, .vocab_size = 152064, .hidden_size = 8192, .intermediate_size = 29568,
      .num_hidden_layers = 80, .num_attention_heads = 64, .num_key_value_heads = 8, .head_dim = 128,
      .max_position_embeddings = 128000, .tie_word_embeddings = false,
      .mrope_section = {16, 24, 24}, .vision = QWEN_VL_VISION(3456, 8192)}},
    {"qwen2.5-0.5b",
     "Qwen2.5-0.5B-Instruct shapes (text only, 494M params, tied)",
     PRESET_VOCAB_FIXED,
     0,
     {QWEN2_TEXT_COMMON, .vocab_size = 151936, .hidden_size = 896, .intermediate_size = 4864,
      .num_hidden_layers = 24, .num_attention_heads = 14, .num_key_value_heads = 2, .head_dim = 64,
      .tie_word_embeddings = true}},
    {"qwen2.5-1.5b",
     "Qwen2.5-1.5B-Instruct shapes (text only, 1.54B params, tied)",
     PRESET_VOCAB_FIXED,
     0,
     {QWEN2_TEXT_COMMON, .vocab_size = 151936, .hidden_size = 1536, .intermediate_size = 8960,
      .num_hidden_layers = 28, .num_attention_heads = 12, .num_key_value_heads = 2, .head_dim = 128,
      .tie_word_embeddings = true}},
};

#define N_PRESETS ((int32_t)(sizeof PRESETS / sizeof PRESETS[0]))

int32_t preset_count(void) {
    return N_PRESETS;
}

const struct preset *preset_at(int32_t i) {
    return (i >= 0 && i < N_PRESETS) ? &PRESETS[i] : NULL;
}

const struct preset *preset_find(const char *name) {
    if (!name) return NULL;
    for (int32_t i = 0; i < N_PRESETS; i++)
        if (strcmp(PRESETS[i].name, name) == 0) return &PRESETS[i];
    return NULL;
}

const char *preset_names(void) {
    return "tiny, demo, 3b, 7b, 32b, 72b, qwen2.5-0.5b, qwen2.5-1.5b";
}

/* Rows of the embedding for a tokenizer of n ids: the next multiple of 64, as the real
 * checkpoints pad their vocab (GEMM-friendly row counts). */
static int32_t round_up_64(int32_t n) {
    return (n + 63) / 64 * 64;
}

int preset_config(const struct preset *p, const struct preset_specials *sp,
                  struct model_config *out, struct err *e) {
    struct model_config c = p->cfg;
    if (sp->n_ids <= 0 || sp->n_ids > VELA_CFG_MAX_VOCAB - 64)
        return err_set(e, VELA_EINVAL, "preset %s: tokenizer has %d ids", p->name, sp->n_ids);
    if (sp->endoftext < 0 || sp->im_end < 0 || sp->im_start < 0)
        return err_set(e, VELA_EINVAL,
                       "preset %s: tokenizer lacks <|endoftext|>, <|im_start|> or <|im_end|>",
                       p->name);
    if (p->vocab == PRESET_VOCAB_FIXED) {
        if (sp->n_ids > c.vocab_size)
            return err_set(e, VELA_EINVAL,
                           "preset %s: tokenizer has %d ids, more than the model's vocab %d",
                           p->name, sp->n_ids, c.vocab_size);
    } else {
        c.vocab_size = round_up_64(sp->n_ids);
    }
    c.bos_token_id = sp->endoftext;
    c.eos_token_ids[0] = sp->im_end;
    c.n_eos_token_ids = 1;
    if (c.has_vision) {
        if (sp->vision_start < 0 || sp->vision_end < 0 || sp->vision_pad < 0 || sp->image_pad < 0 ||
            sp->video_pad < 0)
            return err_set(e, VELA_EINVAL, "preset %s: tokenizer lacks the vision tokens", p->name);
        c.vision_start_token_id = sp->vision_start;
        c.vision_end_token_id = sp->vision_end;
        c.vision_token_id = sp->vision_pad;
        c.image_token_id = sp->image_pad;
        c.video_token_id = sp->video_pad;
    }
    *out = c;
    return 0;
}
