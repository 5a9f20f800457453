#!/usr/bin/env python3
"""Writes the chat-template reference fixtures that tests/tokenizer/test_chat_template.c and
tests/tokenizer/test_jinja.c compare against, byte for byte.

Rendering goes through transformers itself: render_jinja_template (the function behind
apply_chat_template(tokenize=False)) with the messages normalized as apply_chat_template does,
and, for the small Jinja cases, the very environment transformers compiles templates with
(_compile_jinja_template: ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, its tojson,
raise_exception, strftime_now, namespace).

Usage: tools/chat_template_reference.py --shared ../shared --out tests/fixtures/chat_template
Outputs: cases.json (chat renders: the Qwen2.5-VL template from the shared model folder,
qwen2_5_text.jinja and feature_mix.jinja from the fixture folder) and jinja_cases.json
(interpreter cases). Run by hand;
the outputs are committed so tests never need Python.
"""
import argparse
import json
import os

from transformers.utils.chat_template_utils import (
    _compile_jinja_template,
    _normalize_chat_messages,
    render_jinja_template,
)

USER = {"role": "user", "content": "Hello!"}
IMG_TXT = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this image."}]}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city. Use \"metric\" units; path C:\\temp — ok.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Zürich"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city"],
        },
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "description": "Current time.",
                                              "parameters": {"type": "object", "properties": {}}}}

# (name, template, messages, tools, add_generation_prompt, add_vision_id)
VL = "qwen2_5_vl"
TXT = "qwen2_5_text"
CHAT_CASES = [
    ("vl_text_gen", VL, [USER], None, True, False),
    ("vl_text_nogen", VL, [USER], None, False, False),
    ("vl_image_text", VL, [IMG_TXT], None, True, False),
    ("vl_multiturn_system", VL, [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is in the picture?"}]},
    ], None, True, False),
    ("vl_video", VL, [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Describe this video."}]}],
     None, True, False),
    ("vl_vision_id", VL, [
        {"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Compare."}]},
        {"role": "assistant", "content": "They differ."},
        {"role": "user", "content": [{"type": "video"}, {"type": "image"}, {"type": "video"}, {"type": "text", "text": "And now?"}]},
    ], None, True, True),
    ("vl_vision_id_off", VL, [
        {"role": "user", "content": [{"type": "image"}, {"type": "video"}, {"type": "text", "text": "x"}]},
    ], None, False, False),
    ("vl_image_url", VL, [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "text", "text": "What animal?"}]}], None, True, True),
    ("vl_image_key", VL, [{"role": "user", "content": [
        {"image": "file:///tmp/a.jpg"}, {"video": "file:///tmp/b.mp4"}, {"text": "untyped parts"}]}], None, True, True),
    ("vl_unknown_part", VL, [{"role": "user", "content": [
        {"type": "audio", "audio": "x.wav"}, {"type": "text", "text": "only text shows"}]}], None, True, False),
    ("vl_assistant_list", VL, [
        {"role": "user", "content": "Say hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": " there"}]},
    ], None, False, False),
    ("vl_system_list", VL, [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": "Hi"},
    ], None, True, False),
    ("vl_unicode", VL, [{"role": "user", "content": "Grüße 👋 — 你好\n{{ not_a_var }} {% raw %} <|im_end|>\t"}],
     None, True, False),
    ("vl_empty_content", VL, [{"role": "user", "content": ""}, {"role": "user", "content": []}], None, True, False),
    ("vl_null_key", VL, [{"role": "user", "content": "x", "name": None}], None, True, False),
    ("vl_whitespace", VL, [{"role": "user", "content": "  lead\n\n  trail  \n"}], None, True, False),
    ("txt_plain", TXT, [USER], None, True, False),
    ("txt_system", TXT, [{"role": "system", "content": "Be terse."}, USER], None, True, False),
    ("txt_tools", TXT, [{"role": "user", "content": "Weather in Paris?"}], [WEATHER_TOOL], True, False),
    ("txt_tools_system", TXT, [{"role": "system", "content": "Sys."}, {"role": "user", "content": "Time?"}],
     [WEATHER_TOOL, TIME_TOOL], True, False),
    ("txt_tool_call_openai", TXT, [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"},
    ], [WEATHER_TOOL], True, False),
    ("txt_tool_call_dict_args", TXT, [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
            "name": "get_weather", "arguments": {"city": "Zürich", "days": 3, "ratio": 0.5, "big": 1e20,
                                                 "tiny": 1e-7, "whole": 2.0, "flags": [True, False, None],
                                                 "nested": {"a": [], "b": {}}, "quote": "say \"hi\"\\n"}}}]},
        {"role": "tool", "content": "sunny"},
    ], [WEATHER_TOOL], False, False),
    ("txt_multi_tool_responses", TXT, [
        {"role": "user", "content": "Both please"},
        {"role": "assistant", "content": "Calling two tools.", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
            {"type": "function", "function": {"name": "get_time", "arguments": {}}}]},
        {"role": "tool", "content": "cold"},
        {"role": "tool", "content": "12:00"},
        {"role": "user", "content": "Thanks"},
    ], [WEATHER_TOOL, TIME_TOOL], True, False),
    ("txt_tool_call_no_function_wrapper", TXT, [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"name": "get_time", "arguments": {"tz": "UTC"}}]},
    ], [TIME_TOOL], False, False),
    ("txt_second_system", TXT, [
        {"role": "system", "content": "First."}, {"role": "user", "content": "a"},
        {"role": "system", "content": "Second."}, {"role": "user", "content": "b"},
    ], None, True, False),
    ("txt_tools_nogen", TXT, [{"role": "user", "content": "hi"}], [TIME_TOOL], False, False),
    ("txt_tool_first", TXT, [{"role": "tool", "content": "orphan result"}], None, False, False),
    ("txt_multiturn", TXT, [
        {"role": "user", "content": "1"}, {"role": "assistant", "content": "one"},
        {"role": "user", "content": "2"}, {"role": "assistant", "content": "two"},
        {"role": "user", "content": "ünïcödé 🎉"},
    ], None, True, False),
    ("txt_empty_tools", TXT, [USER], [], True, False),
    ("txt_error_missing_content", TXT, [{"role": "assistant"}], None, False, False),
]

# feature_mix.jinja: our own template in the style of recent reasoning/tool templates
# (name, messages, tools, add_generation_prompt, extra template variables)
MIX = "feature_mix"
MIX_MSGS = [
    {"role": "system", "content": [{"type": "text", "text": "  Sys prompt  "}]},
    {"role": "user", "content": "q1"},
    {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nanswer1"},
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "q2"}]},
    {"role": "assistant", "content": "\n\nlet me check", "reasoning_content": "need tool", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
        {"type": "function", "function": {"name": "t", "arguments": "{\"a\": 1}"}}]},
    {"role": "tool", "content": "r1"},
    {"role": "tool", "content": {"temp": 3}},
]
# continue_final_message: (name, template, messages)
CONT_CASES = [
    ("cont_vl_string", VL, [USER, {"role": "assistant", "content": "The answer is"}]),
    ("cont_vl_list", VL, [IMG_TXT, {"role": "assistant", "content": [
        {"type": "text", "text": "It shows"}, {"type": "image"}]}]),
    ("cont_vl_trailing_space", VL, [USER, {"role": "assistant", "content": "Sure:  "}]),
    ("cont_txt", TXT, [USER, {"role": "assistant", "content": "Hel"}]),
    ("cont_error_no_text", VL, [USER, {"role": "assistant", "content": [{"type": "image"}]}]),
]

MIX_CASES = [
    ("mix_full_tools", MIX_MSGS, [WEATHER_TOOL, TIME_TOOL], True, {"enable_thinking": False}),
    ("mix_full_no_tools", MIX_MSGS, None, True, {}),
    ("mix_thinking_on", MIX_MSGS[1:4], None, True, {"enable_thinking": True}),
    ("mix_reasoning_alias", [{"role": "user", "content": "q"},
                             {"role": "assistant", "content": "a", "reasoning": "r via alias"},
                             {"role": "user", "content": "<tool_response>x</tool_response>"}], None, False, {}),
    ("mix_plain", [{"role": "user", "content": "only"}], None, False, {}),
    ("mix_error_role", [{"role": "narrator", "content": "x"}], None, False, {}),
]


def render_chat(template, messages, tools, add_gen, add_vision_id):
    msgs = _normalize_chat_messages(json.loads(json.dumps(messages)))
    out, _ = render_jinja_template(conversations=[msgs], tools=tools, chat_template=template,
                                   add_generation_prompt=add_gen, add_vision_id=add_vision_id)
    return out[0]


# (template source, variables); expected output or error comes from jinja2 itself
J = [
    ("plain text", {}),
    ("a {# comment #}b", {}),
    ("{{ 'x' }}{{ \"y\" }}{{ 'a\\nb\\t\\u00e9\\x41\\\\' }}", {}),
    ("{{ 1 }} {{ -2 }} {{ 1.5 }} {{ 1e3 }} {{ 10 // 3 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 2 ** 10 }}", {}),
    ("{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e15 }} {{ 1e-5 }} {{ 0.0001 }} {{ 3.0 }} {{ -0.5 }} {{ 123456789.125 }}", {}),
    ("{{ true }} {{ True }} {{ false }} {{ none }} {{ None }}", {}),
    ("{{ [1, 'a', none, true, 1.5, {'k': ['v']}] }}", {}),
    ("{{ {'a': 1, 'b': \"it's\"} }} {{ ('x', 2) }} {{ () }}", {}),
    ("{{ 'a' ~ 1 ~ none ~ u }}", {}),
    ("{{ 'a' + 'b' }} {{ [1] + [2, 3] }} {{ 'ab' * 3 }} {{ 2 * [0] }}", {}),
    ("{{ 'a' + 1 }}", {}),
    ("{{ u + 1 }}", {}),
    ("{{ u }}|{{ u is defined }}|{{ u is undefined }}", {}),
    ("{{ u.x }}", {}),
    ("{{ d.missing }}|{{ d.missing is defined }}|{{ d['missing'] is undefined }}", {"d": {"a": 1}}),
    ("{{ d.missing.deeper }}", {"d": {}}),
    ("{{ l[0] }} {{ l[-1] }} {{ l[5] }}|{{ l[1:] }} {{ l[:-1] }} {{ l[::-1] }} {{ l[::2] }} {{ l[-2:] }}", {"l": [1, 2, 3, 4]}),
    ("{{ s[0] }} {{ s[-1] }} {{ s[1:3] }} {{ s[::-1] }} {{ s|length }}", {"s": "héllo🎉"}),
    ("{% if a %}A{% elif b %}B{% else %}C{% endif %}", {"a": 0, "b": ""}),
    ("{% if a %}A{% elif b %}B{% else %}C{% endif %}", {"a": 0, "b": "x"}),
    ("{% for x in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }},{% endfor %}", {"l": ["a", "b", "c"]}),
    ("{% for x in l %}{{ x }}{% else %}empty{% endfor %}", {"l": []}),
    ("{% for x in u %}{{ x }}{% else %}none{% endfor %}", {}),
    ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {"d": {"b": 1, "a": [2]}}),
    ("{% for k, v in d|items %}{{ k }}={{ v }};{% endfor %}", {"d": {"z": 1, "y": 2}}),
    ("{% for k in d %}{{ k }}{% endfor %}|{% for c in 'abc' %}{{ c }}-{% endfor %}", {"d": {"p": 1, "q": 2}}),
    ("{% for x in l if x > 1 %}{{ x }}{{ loop.length }}{% endfor %}", {"l": [1, 2, 3]}),
    ("{% for x in l %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", {"l": [1, 2, 3, 4, 5]}),
    ("{% for x in l %}{{ loop.previtem }}>{{ x }}<{{ loop.nextitem }} {% endfor %}", {"l": [1, 2, 3]}),
    ("{% set x = 'o' %}{% for i in [1,2] %}[{{ x }}]{% set x = i %}({{ x }}){% endfor %}{{ x }}", {}),
    ("{% set ns = namespace(n=0, s='') %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }}", {}),
    ("{% set a, b = 1, 2 %}{{ a }}{{ b }}", {}),
    ("{% set x %}block {{ 1 + 1 }}{% endset %}[{{ x }}]", {}),
    ("{% set x | upper %}shout{% endset %}{{ x }}", {}),
    ("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }} {{ greet('Al', punct='?') }} {{ greet(name='Cy') }}", {}),
    ("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}", {}),
    ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", {}),
    ("{% filter upper %}hello {{ 'x' }}{% endfilter %}", {}),
    ("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a }}", {}),
    ("{% raw %}{{ not rendered }} {% if %}{% endraw %}", {}),
    ("{{ x if x else 'no' }} {{ 'y' if false }}|", {"x": 0}),
    ("{{ 1 and 2 }} {{ 0 and 2 }} {{ 0 or 'b' }} {{ not 0 }} {{ not 1 }}", {}),
    ("{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 'a' < 'b' }} {{ 1 == 1.0 }} {{ 1 != 2 }} {{ [1,2] == [1,2] }} {{ 2 >= 2 }}", {}),
    ("{{ 'a' in 'cat' }} {{ 1 in [1, 2] }} {{ 'k' in d }} {{ 'z' not in d }} {{ 3 not in [1] }}", {"d": {"k": 1}}),
    ("{{ 1 in 'abc' }}", {}),
    ("{{ 'a' < 1 }}", {}),
    ("{{ x is defined }} {{ y is undefined }} {{ n is none }} {{ s is string }} {{ d is mapping }} {{ l is iterable }} {{ 1 is number }} {{ l is sequence }} {{ t is boolean }} {{ t is true }} {{ t is false }} {{ s is not string }}",
     {"x": 1, "n": None, "s": "s", "d": {}, "l": [], "t": True}),
    ("{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 'a' is eq 'a' }} {{ 2 is equalto 3 }} {{ 1 is integer }} {{ 1.0 is float }} {{ 'ab' is lower }} {{ 2 is gt 1 }} {{ 'x' is in 'xyz' }}", {}),
    ("{{ d|tojson }}", {"d": {"s": "é\"\\\n\t\u0001/", "i": 1, "f": 1.0, "g": 2.5e-8, "b": True, "n": None, "l": [1, [2, {}]], "e": {}}}),
    ("{{ d|tojson(indent=2) }}", {"d": {"a": [1, 2, {"b": None}], "c": {}, "d": []}}),
    ("{{ d|tojson(indent=4, sort_keys=true) }}", {"d": {"z": 1, "a": {"y": 2, "b": 3}}}),
    ("{{ d|tojson(separators=(',', ':')) }}", {"d": {"a": [1, 2], "b": "x"}}),
    ("{{ u|tojson }}", {}),
    ("{{ '  pad  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ s|length }}|{{ l|length }}|{{ d|length }}|{{ u|length }}|{{ l|count }}", {"s": "äbc", "l": [1, 2], "d": {"a": 1}}),
    ("{{ 'hElLo wOrld'|upper }} {{ 'ÄB'|lower }} {{ 'hello world'|capitalize }} {{ 'hello big-world (x)'|title }}", {}),
    ("{{ u|default('dflt') }} {{ ''|default('e') }} {{ ''|default('e', true) }} {{ 0|d('z', boolean=true) }} {{ none|default('n') }}", {}),
    ("{{ l|join(', ') }} {{ l|join }} {{ users|join(', ', attribute='name') }}", {"l": [1, "a", None], "users": [{"name": "x"}, {"name": "y"}]}),
    ("{{ 'a-b-c'|replace('-', '+') }} {{ 'aaa'|replace('a', 'b', 2) }}", {}),
    ("{{ 1|string }}{{ none|string }}{{ [1]|string }}", {}),
    ("{{ l|first }} {{ l|last }} {{ 'abc'|first }} {{ []|first }}|{{ 'ab'|list }} {{ d|list }}", {"l": [3, 4, 5], "d": {"k": 1, "j": 2}}),
    ("{{ '42'|int }} {{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ '2.5'|float }} {{ 3|float }} {{ true|int }}", {}),
    ("{{ -3|abs }} {{ 2.567|round(2) }} {{ 2.5|round }} {{ 2.1|round(0, 'ceil') }}", {}),
    ("{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|join('|') }} {{ msgs|rejectattr('role', 'eq', 'user')|list|length }}",
     {"msgs": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]}),
    ("{{ [1, 0, 2, none]|select|list }} {{ [1, 2, 3, 4]|reject('odd')|list }} {{ ['a', 'b']|map('upper')|join }}", {}),
    ("{{ [3, 1, 2]|sort }} {{ [3, 1, 2]|sort(reverse=true) }} {{ [1, 2, 1]|unique|list }} {{ [1, 2]|reverse|list }} {{ 'abc'|reverse }} {{ (1,) }} {{ (1, 2) == [1, 2] }} {{ [1, 2.5]|sum }} {{ [4, 2, 9]|min }} {{ [4, 2, 9]|max }}", {}),
    ("{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'one two  three'|wordcount }}", {}),
    ("{{ '<a href=\"x\">&\\'</a>'|e }}", {}),
    ("{{ d|dictsort }}", {"d": {"b": 1, "a": 2}}),
    ("{{ s.startswith('ab') }} {{ s.endswith('yz') }} {{ s.startswith(('x', 'a')) }} {{ s.upper() }} {{ ' x '.strip() }}|{{ 'xxhi'.lstrip('x') }} {{ 'hi  '.rstrip() }}|",
     {"s": "abcxyz"}),
    ("{{ 'a,b,,c'.split(',') }} {{ '  a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a-b'.replace('-', '_') }} {{ 'Hello'.lower() }} {{ 'ab'.find('b') }} {{ 'aXbXc'.count('X') }} {{ '-'.join(['x', 'y']) }}", {}),
    ("{{ '{} and {}'.format(1, 'b') }} {{ 'hello world'.title() }} {{ 'abc'.capitalize() }} {{ 'l1\\nl2\\n'.splitlines() }}", {}),
    ("{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 5) }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.items()|list }}", {"d": {"a": 1, "b": 2}}),
    ("{{ d.items is defined }} {{ d.items()|list }}", {"d": {"items": 3}}),
    ("{{ d['items'] }} {{ d.content }} {{ d['content'] }}", {"d": {"items": 3, "content": "c"}}),
    ("{{ raise_exception('bad input: ' ~ x) }}", {"x": 7}),
    ("{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ range(5, 0, -2)|list }}", {}),
    ("{{ dict(a=1, b='x') }} {{ namespace(a=1).a }}", {}),
    ("{{ x.__class__ }}|{{ ''.__len__ }}", {"x": "s"}),
    ("line1\n  {% if true %}\n  inside\n  {% endif %}\nline3", {}),
    ("  {%- if true -%}  \n  x  \n  {%- endif -%}  \n  y", {}),
    ("a  {{- ' b ' -}}  c", {}),
    ("{% for i in [1, 2] %}\n  {{ i }}\n{% endfor %}\nend\n", {}),
    ("  {%+ if true %}keep{% endif %}\n  {# c #}\n  x", {}),
    ("{% if true +%}\nno-trim{% endif %}", {}),
    ("x {# multi\nline -#}   y\n{#- c #}z", {}),
    ("a\r\nb\rc\n", {}),
    ("trailing\n\n", {}),
    ("{{ 'a' }}  {% if true %}b{% endif %}", {}),
    ("{% if x %}\n  {% for i in l %}\n    - {{ i }}\n  {% endfor %}\n{% endif %}\n", {"x": 1, "l": [1, 2]}),
    ("{{ {'a': {'b': 1}} }}", {}),
    ("{{ 'adjacent' ' strings' }}", {}),
    ("{{ foo(1) }}", {}),
    ("{{ 'abc'() }}", {}),
    ("{{ x.y.z }}", {"x": {"y": None}}),
    ("{{ 10 / 0 }}", {}),
    ("{{ [1, 2, 3][1:2] }} {{ 'abc'[5:] }}|", {}),
    ("{{ loop }}", {}),
    ("{{ -x }} {{ +x }} {{ -1.5 }} {{ not x is none }}", {"x": 3}),
    ("{{ x|upper|replace('A', 'b')|length }}", {"x": "aaa"}),
    ("{{ (1 + 2) * 3 }} {{ 1 + 2 * 3 }} {{ 2 ** 3 ** 2 }} {{ 7 - 2 - 1 }} {{ 'x' ~ (1 + 2) }} {{ 1 + 2 ~ 'x' }}", {}),
    ("{{ 'x' ~ 1 + 2 }}", {}),
    ("{{ 9223372036854775806 + 1 }} {{ -9223372036854775807 - 1 }}", {}),
    ("{% for a, b in [[1, 2], [3, 4]] %}{{ a }}{{ b }}{% endfor %}", {}),
    ("{% for a, b in [[1, 2, 3]] %}{{ a }}{% endfor %}", {}),
    ("{% set l = [1, 2] %}{% set l2 = l + [3] %}{{ l }}{{ l2 }}", {}),
    ("{{ [] is iterable }} {{ u is iterable }} {{ 'x' is sequence }} {{ none is mapping }}", {}),
    ("{% if messages[0]['role'] == 'system' %}S{% endif %}{{ messages|length }}", {"messages": [{"role": "system"}]}),
    ("{{ messages[0]['role'] }}", {"messages": []}),
    ("{% if true %}unclosed", {}),
    ("{% endif %}", {}),
    ("{% for x in %}{% endfor %}", {}),
    ("{{ x | nosuchfilter }}", {}),
    ("{{ x is nosuchtest }}", {}),
    ("{% include 'other.j2' %}", {}),
    ("{{ 'unterminated }}", {}),
    ("{{ 1 + }}", {}),
    ("{# never closed", {}),
    ("{{ x ] }}", {}),
    ("{% break %}", {}),
    ("{% set ns = namespace() %}{% set ns._x = 1 %}", {}),
    ("{% set s = 'x' %}{% set s.a = 1 %}", {}),
    ("{{ '%s' }} {{ '{{' }} {{ '}}' }}", {}),
    ("{{ x.items()|list }} {{ x|items|list }}", {"x": {}}),
    ("{{ 5|length }}", {}),
    ("{{ 1.5|int }} {{ -1.5|int }} {{ '  12 '|int }} {{ '0x1A'|int }} {{ '1e3'|int }} {{ '-7'|int }}", {}),
    ("{{ [1, [2, [3]]] }} {{ {'k': {'n': none, 't': true}} }} {{ ['a\\'b', \"c\\\"d\", 'e\\nf'] }}", {}),
    ("{{ 'é'|upper }}{{ 'ß'|length }}{{ 'ÉCOLE'|lower }}", {}),
    ("{{ 3 // 0.5 }} {{ 7 % 2.5 }} {{ 2 ** -1 }} {{ -2 ** 2 }} {{ 1 / 3 }}", {}),
]


def render_j(src, variables):
    try:
        return {"expected": _compile_jinja_template(src).render(**variables)}
    except Exception as exc:  # noqa: BLE001 - any jinja failure is an expected error
        return {"error": f"{type(exc).__name__}: {exc}"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--out", default="tests/fixtures/chat_template")
    args = ap.parse_args()
    with open(os.path.join(args.shared, "models/qwen2.5-vl-7b/chat_template.json"), encoding="utf-8") as f:
        vl = json.load(f)["chat_template"]
    with open(os.path.join(args.out, "qwen2_5_text.jinja"), encoding="utf-8") as f:
        txt = f.read()
    cases = []
    for name, which, msgs, tools, gen, vid in CHAT_CASES:
        case = {"name": name, "template": which, "messages": msgs, "tools": tools,
                "add_generation_prompt": gen, "add_vision_id": vid}
        try:
            case["expected"] = render_chat(vl if which == VL else txt, msgs, tools, gen, vid)
        except Exception as exc:  # noqa: BLE001
            case["error"] = f"{type(exc).__name__}: {exc}"
        cases.append(case)
    for name, which, msgs in CONT_CASES:
        case = {"name": name, "template": which, "messages": msgs, "tools": None,
                "add_generation_prompt": False, "add_vision_id": False,
                "continue_final_message": True}
        try:
            norm = _normalize_chat_messages(json.loads(json.dumps(msgs)))
            out, _ = render_jinja_template(conversations=[norm], chat_template=vl if which == VL else txt,
                                           continue_final_message=True, add_vision_id=False)
            case["expected"] = out[0]
        except Exception as exc:  # noqa: BLE001
            case["error"] = f"{type(exc).__name__}: {exc}"
        cases.append(case)
    with open(os.path.join(args.out, "feature_mix.jinja"), encoding="utf-8") as f:
        mix = f.read()
    for name, msgs, tools, gen, extra in MIX_CASES:
        case = {"name": name, "template": MIX, "messages": msgs, "tools": tools,
                "add_generation_prompt": gen, "add_vision_id": False, "extra": extra}
        try:
            norm = _normalize_chat_messages(json.loads(json.dumps(msgs)))
            out, _ = render_jinja_template(conversations=[norm], tools=tools, chat_template=mix,
                                           add_generation_prompt=gen, add_vision_id=False, **extra)
            case["expected"] = out[0]
        except Exception as exc:  # noqa: BLE001
            case["error"] = f"{type(exc).__name__}: {exc}"
        cases.append(case)
    with open(os.path.join(args.out, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
        f.write("\n")
    jcases = [{"template": src, "vars": v, **render_j(src, v)} for src, v in J]
    with open(os.path.join(args.out, "jinja_cases.json"), "w", encoding="utf-8") as f:
        json.dump(jcases, f, ensure_ascii=False, indent=1)
        f.write("\n")
    n_err = sum("error" in c for c in jcases)
    print(f"{len(cases)} chat cases, {len(jcases)} jinja cases ({n_err} expected errors)")


if __name__ == "__main__":
    main()
