/* chat_template_qwen: the Qwen2.5-VL chat template (model data, see chat_template_qwen.h).
 * Invariant: QWEN_VL_TEMPLATE is byte for byte the "chat_template" string of the official
 * chat_template.json (identical for 3B, 7B, 32B and 72B); the literal is split only at
 * template tag boundaries and after each newline, so it reads like the Jinja source. */
#include "model/chat_template_qwen.h"

static const char QWEN_VL_TEMPLATE[] =
    "{% set image_count = namespace(value=0) %}"
    "{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}"
    "{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% endif %}";

const char *chat_template_qwen2_5_vl(void) {
    return QWEN_VL_TEMPLATE;
}
