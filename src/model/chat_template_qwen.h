/* chat_template_qwen: the official Qwen2.5-VL Jinja chat template as a constant, so a
 * generated model folder carries the same template as the real checkpoints
 * (chat_template.json and tokenizer_config.json). Any thread; the string is static. */
#ifndef VELA_MODEL_CHAT_TEMPLATE_QWEN_H
#define VELA_MODEL_CHAT_TEMPLATE_QWEN_H

/* The template text (NUL-terminated, static storage; never freed). */
const char *chat_template_qwen2_5_vl(void);

#endif
