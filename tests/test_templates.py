"""Agent templates: every built-in loads, renders in its family's style, asks for its format; bad files fail clearly."""

from __future__ import annotations

import contextlib
import json
import resource
import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit.errors import DataFileError, UnknownNameError
from labkit.parsing import detect_format
from labkit.templates import (DEFAULT_NOW, SECTIONS, AgentTemplate, check_sections, list_templates, load_template,
                              load_templates, required_sections)
from labkit.tools import ToolRegistry, default_registry
from labkit.types import CompletedTask, ToolCall

FOUR = ["web_search", "get_weather_info", "calculator", "task_complete"]


def sample_tools() -> ToolRegistry:
    """Four real sandbox tools."""
    return default_registry().subset(FOUR)


MEMORY = [CompletedTask("查询北京当前天气", ToolCall("get_weather_info", {"location": "Beijing", "is_current": "yes"}),
                        "Beijing now: Clear, 18.1°C")]
BUILTINS = list_templates()


def test_builtin_set_is_complete() -> None:
    required = {"react", "modelscope", "autogpt", "toolllama", "kagent_planning_zh", "kagent_conclusion_zh",
                "kagent_planning_en", "kagent_conclusion_en"}
    assert required <= set(BUILTINS)
    meta = [t for t in load_templates() if t.family == "meta"]
    planning = [t for t in meta if t.kind == "planning"]
    assert len(planning) >= 5
    assert sum(t.output_format == "task_json" for t in planning) >= 3
    assert {t.output_format for t in planning} - {"task_json"} <= {"react", "toolllama"}
    assert any(t.output_format in ("react", "toolllama") for t in planning)
    assert sum(t.kind == "conclusion" for t in meta) >= 2
    assert {t.lang for t in meta} == {"zh", "en"}


@pytest.mark.parametrize("name", BUILTINS)
def test_render_fills_every_slot_and_asks_for_its_format(name: str) -> None:
    tpl = load_template(name)
    assert isinstance(tpl, AgentTemplate) and tpl.path.name == f"{name}.yaml" and tpl.source and tpl.description
    prompt = tpl.render(goal="北京现在天气怎么样?", tools=sample_tools(), memory=MEMORY, history=[("你好", "你好!")],
                        knowledge="北京是中国首都")
    assert "北京现在天气怎么样?" in prompt
    assert "Beijing now: Clear, 18.1°C" in prompt  # memory reaches the prompt
    if tpl.kind == "planning":
        assert all(n in prompt for n in FOUR)
    assert "{{" not in prompt and "{%" not in prompt
    assert detect_format(prompt) == tpl.output_format


def test_family_tool_styles() -> None:
    tools = sample_tools()
    react = load_template("react").render(goal="g", tools=tools)
    assert "Name: web_search. Description: " in react and "Parameters: {" in react
    assert "should be one of [web_search, get_weather_info, calculator, task_complete]" in react
    kagent = load_template("kagent_planning_zh").render(goal="g", tools=tools)
    first = kagent.split("Commands:\n1:", 1)[1].splitlines()[0]
    assert json.loads(first)["name"] == "web_search"
    assert kagent.rstrip().endswith("一个新Task:")
    modelscope = load_template("modelscope").render(goal="g", tools=tools)
    apis_line = next(line for line in modelscope.splitlines() if line.startswith("[{"))
    assert [a["api_name"] for a in json.loads(apis_line)] == FOUR
    toolllama = load_template("toolllama").render(goal="g", tools=tools)
    funcs = [json.loads(line) for line in toolllama.splitlines() if line.startswith('{"name"')]
    assert [f["name"] for f in funcs] == FOUR + ["Finish"]
    assert "give_up_and_restart" in funcs[-1]["parameters"]["return_type"]


def test_task_complete_is_offered_even_if_the_registry_lacks_it() -> None:
    tools = [t for t in sample_tools() if t.name != "task_complete"]
    assert "task_complete" in load_template("kagent_planning_en").render(goal="g", tools=tools).split("GOAL")[0]
    assert "task_complete" not in load_template("react").render(goal="g", tools=tools)


def test_memory_styles() -> None:
    tools = sample_tools()
    kagent = load_template("kagent_planning_en").render(goal="g", tools=tools, memory=MEMORY)
    block = kagent.split("Completed tasks: ", 1)[1].split("\nConversation history", 1)[0]
    tasks = json.loads(block)
    assert tasks[0]["task_id"] == 1 and tasks[0]["result"] == MEMORY[0].result
    assert tasks[0]["command"] == {"name": "get_weather_info", "args": {"location": "Beijing", "is_current": "yes"}}
    react = load_template("react").render(goal="g", tools=tools, memory=MEMORY)
    assert react.rstrip().endswith("Observation: Beijing now: Clear, 18.1°C")
    assert "Thought: 查询北京当前天气\nAction: get_weather_info\nAction Input: {" in react
    ms = load_template("modelscope").render(goal="g", tools=tools, memory=MEMORY)
    assert '查询北京当前天气<|startofthink|>{"api_name": "get_weather_info"' in ms and "<|startofexec|>" in ms


def test_now_and_max_steps() -> None:
    tpl = load_template("kagent_planning_zh")
    assert f"Current Time: {DEFAULT_NOW}" in tpl.render(goal="g", tools=sample_tools())
    other = tpl.render(goal="g", tools=sample_tools(), now="2030-01-02 03:04:05", max_steps=3)
    assert "Current Time: 2030-01-02 03:04:05" in other and "最多只能进行3步思考,规划3个任务" in other


def test_openai_function_dicts_work_as_tools() -> None:
    funcs = [{"type": "function", "function": {"name": "lookup", "description": "d", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}]
    assert "Name: lookup. Description: d." in load_template("react").render(goal="g", tools=funcs)


@pytest.mark.parametrize("name", BUILTINS)
def test_declared_sections_match_the_section_check(name: str) -> None:
    tpl = load_template(name)
    assert sorted(check_sections(tpl)) == sorted(set(required_sections(tpl)) - set(tpl.sections))


VALID = {
    "name": "mine", "family": "meta", "kind": "planning", "output_format": "task_json", "lang": "en",
    "sections": list(SECTIONS), "description": "d", "source": "s",
    "template": "You are a planner. Rules: use only the tools.\n{{ tools_block }}\nGoal: {{ goal }}\n"
                "Done: {{ memory_block }}\nReply JSON: {\"task_name\": \"..\", \"command\": {\"name\": \"..\"}}\n",
}


def write(tmp_path: Path, data: dict[str, Any] | str, name: str = "mine.yaml") -> Path:
    import yaml

    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_user_template_loads_from_a_path(tmp_path: Path) -> None:
    tpl = load_template(write(tmp_path, VALID))
    assert check_sections(tpl) == []
    assert "Goal: g" in tpl.render(goal="g", tools=sample_tools())


def test_check_sections_catches_missing_memory(tmp_path: Path) -> None:
    data = dict(VALID, template=VALID["template"].replace("Done: {{ memory_block }}\n", ""),
                sections=[s for s in SECTIONS if s != "memory"])
    assert check_sections(load_template(write(tmp_path, data))) == ["memory"]


def test_check_sections_catches_missing_tools_even_with_memory(tmp_path: Path) -> None:
    """The memory's completed call must not pass for a tool list (it names a tool too)."""
    data = dict(VALID, template=VALID["template"].replace("{{ tools_block }}\n", ""))
    assert check_sections(load_template(write(tmp_path, data))) == ["tools"]


@pytest.mark.parametrize("field_name", ["name", "family", "output_format", "sections", "template", "source"])
def test_missing_field_names_file_and_field(tmp_path: Path, field_name: str) -> None:
    data = {k: v for k, v in VALID.items() if k != field_name}
    path = write(tmp_path, data)
    with pytest.raises(DataFileError) as err:
        load_template(path)
    assert err.value.field == field_name and str(path) in str(err.value) and "missing field" in str(err.value)


@pytest.mark.parametrize(("field_name", "value"), [("output_format", "xml"), ("family", "langchain"),
                                                    ("lang", "fr"), ("sections", ["profile", "toolz"])])
def test_unknown_values_name_the_field(tmp_path: Path, field_name: str, value: Any) -> None:
    path = write(tmp_path, dict(VALID, **{field_name: value}))
    with pytest.raises(DataFileError) as err:
        load_template(path)
    assert err.value.field == field_name and str(path) in str(err.value)


def test_jinja_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    text = textwrap.dedent("""\
        name: broken
        family: meta
        kind: planning
        output_format: task_json
        lang: en
        sections: [goal]
        description: d
        source: s
        template: |
          Goal: {{ goal }}
          {% if goal %}unclosed block
        """)
    path = write(tmp_path, text, "broken.yaml")
    with pytest.raises(DataFileError) as err:
        load_template(path)
    assert err.value.field == "template" and "broken.yaml" in str(err.value) and "Jinja2 syntax error" in str(err.value)
    assert err.value.line is not None and err.value.line >= 10


def test_undefined_variable_typo_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, dict(VALID, template=VALID["template"] + "{{ gaol }}"))
    with pytest.raises(DataFileError) as err:
        load_template(path)
    assert "gaol" in str(err.value) and str(path) in str(err.value) and err.value.field == "template"


def test_text_must_ask_for_its_declared_format(tmp_path: Path) -> None:
    path = write(tmp_path, dict(VALID, output_format="react"))
    with pytest.raises(DataFileError, match="asks for format 'task_json'"):
        load_template(path)


def test_invalid_yaml_and_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(DataFileError) as err:
        load_template(write(tmp_path, "name: [unclosed\n", "bad.yaml"))
    assert "bad.yaml" in str(err.value) and "invalid YAML" in str(err.value)
    with pytest.raises(DataFileError, match="expected a YAML mapping"):
        load_template(write(tmp_path, "- a\n- b\n", "list.yaml"))
    with pytest.raises(UnknownNameError, match="kagent_planning_zh"):
        load_template("no_such_template")


GEMMA = Path.home() / ".cache" / "labkit" / "gemma-3-270m"


@pytest.mark.skipif(not (GEMMA / "tokenizer.json").exists(), reason="Gemma tokenizer not cached")
def test_prompts_stay_compact_for_cpu_training() -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(GEMMA)
    tools = sample_tools()
    sizes = {t.name: len(tok(t.render(goal="北京现在天气怎么样?", tools=tools))["input_ids"]) for t in load_templates()}
    # The note's Template-1 keeps the note's full profile and all nine constraints (about 130 tokens more).
    assert sizes.pop("kagent_planning_zh") <= 600, sizes
    assert max(sizes.values()) <= 460, sizes


def test_template_1_keeps_the_notes_nine_constraints() -> None:
    text = load_template("kagent_planning_zh").render(goal="g", tools=sample_tools())
    constraints = text.split("Constraints:", 1)[1].split("Commands:", 1)[0]
    numbered = [line for line in constraints.splitlines() if line[:2].rstrip(".").isdigit()]
    assert [line.split(".", 1)[0] for line in numbered] == [str(i) for i in range(1, 10)]
    for phrase in ("~4000字的短期记忆", "鉴别真伪", "不能重复调用", "自我批评", "最多只能进行5步思考", "应继续规划"):
        assert phrase in constraints


# ---------------------------------------------------------------- untrusted template files cannot run code
PAYLOADS = [
    "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{{ joiner.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{{ namespace.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{{ lipsum.__globals__['os'].popen('touch MARKER').read() }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ goal.__class__.__base__.__subclasses__() }}",
    "{{ '{0.__class__.__mro__}'.format(goal) }}",
    "{{ tool_specs.append(1) }}{{ tool_specs.clear() }}",
    "{{ 'a' * 100000000 }}",
    "{{ 10 ** 100000000 }}",
    "{% for i in range(10 ** 9) %}{% endfor %}",
    "{{ 1 / 0 }}",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_template_payloads_raise_instead_of_running(tmp_path: Path, payload: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "MARKER"
    path = write(tmp_path, dict(VALID, template=VALID["template"] + payload.replace("MARKER", str(marker))))
    with pytest.raises(DataFileError) as err:
        load_template(path)
    assert str(path) in str(err.value) and err.value.field == "template"
    assert not marker.exists(), "the template ran a shell command"


def test_template_in_gbk_names_the_file(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "gbk.yaml"
    path.write_bytes(yaml.safe_dump(dict(VALID, description="中文说明"), allow_unicode=True).encode("gbk"))
    with pytest.raises(DataFileError, match="gbk.yaml.*GBK"):
        load_template(path)
    path.write_bytes(yaml.safe_dump(dict(VALID, description="中文说明"), allow_unicode=True).encode("utf-16"))
    assert load_template(path).description == "中文说明"


# ---------------------------------------------------------------- limits: time, memory, output (issue 20, finding 3)

class Unbounded(BaseException):
    """An alarm that no ``except Exception`` in the code under test catches."""


@contextlib.contextmanager
def bounded_process(seconds: float = 10, extra_bytes: int = 1_500_000_000) -> Iterator[None]:
    """While a hostile template loads: an address-space cap and an alarm, so a protection that fails makes the
    test fail (MemoryError / Unbounded) instead of freezing the machine."""
    def alarm(signum: int, frame: Any) -> None:
        raise Unbounded(f"took more than {seconds} s")

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    used = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + extra_bytes, hard))
    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


HOSTILE_TEMPLATES = {
    "self-calling macro": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "macro calling itself in a loop": "{% macro f() %}{% for i in range(3) %}{{ f() }}{% endfor %}{% endmacro %}{{ f() }}",
    "a 200,000-character string in a loop": "{% for i in range(100000) %}{{ 'a' * 200000 }}{% endfor %}",
    "the same, captured in a set block": "{% set x %}{% for i in range(100000) %}{{ ('a' * 150000) ~ i }}"
                                         "{% endfor %}{% endset %}{{ x|length }}",
    "center(2*10**9)": "{{ 'x'.center(2 * 10 ** 9) }}",
    "ljust(2*10**9)": "{{ 'x'.ljust(2 * 10 ** 9) }}",
    "center filter": "{{ 'x'|center(2000000000) }}",
    "str.format width": "{{ '{:>2000000000}'.format('x') }}",
    "str.format nested width": "{{ '{:>{w}}'.format('x', w=2 * 10 ** 9) }}",
    "str.format fields": "{% set s = 'a' * 150000 %}{{ ('{0}' * 50000).format(s) }}",
    "% width": "{{ '%2000000000s' % 'x' }}",
    "format filter width": "{{ '%2000000000s'|format('x') }}",
    "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "join with a long separator": "{{ range(100000)|join('a' * 200000) }}",
    "replace growth": "{{ ('a' * 100000).replace('', 'bbbbbbbbbb') }}",
    "indent growth": "{{ ('\\n' * 100000)|indent(100000, true, true) }}",
    "printing shared references": "{% set l = ['a' * 1000] * 200000 %}{{ l }}",
    "doubling with ~": "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% else %}{{ s|length }}{% endif %}"
                       "{% endmacro %}{{ d('a', 40) }}",
    "power tower": "{{ (((2 ** 64) ** 64) ** 64) ** 64 }}",
    "to_bytes": "{{ (1).to_bytes(2000000000, 'big') }}",
    "deeply nested expression": "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
}


@pytest.mark.parametrize("payload", list(HOSTILE_TEMPLATES.values()), ids=list(HOSTILE_TEMPLATES))
def test_hostile_templates_fail_within_time_and_memory(tmp_path: Path, payload: str) -> None:
    path = write(tmp_path, dict(VALID, template=VALID["template"] + payload))
    with bounded_process(), pytest.raises(DataFileError) as err:  # time and memory: bench/fuzz_hostile.py
        load_template(path)
    assert err.value.field == "template" and str(path) in str(err.value) and len(str(err.value)) < 1000


def test_ordinary_template_features_still_render(tmp_path: Path) -> None:
    """Loops, macros, filters, formatting and string methods within the limits keep working."""
    extra = ("{% macro item(s) %}- {{ s.name|upper }}: {{ '{:>3}'.format(loop_i) if false else s.description|"
             "truncate(20) }}{% endmacro %}{% for s in tool_specs %}{{ item(s) }}\n{% endfor %}"
             "{{ tool_names.split(', ')|sort|join(' | ') }} {{ '%-5s|' % 'ab' }} {{ 'x'.center(7, '*') }} "
             "{{ (range(3)|list) ~ '' }} {{ tool_specs|length * 2 }} {{ '=' * 20 }} {{ 2 ** 10 }}")
    tpl = load_template(write(tmp_path, dict(VALID, template=VALID["template"] + extra)))
    text = tpl.render(goal="g", tools=sample_tools())
    assert "- WEB_SEARCH:" in text and "ab   |" in text and "***x***" in text and "[0, 1, 2]" in text
    assert "=" * 20 in text and "1024" in text and "calculator | get_weather_info" in text


def test_render_limits_grow_with_the_inputs(tmp_path: Path) -> None:
    """A long goal is the caller's, not the template's: printing it twice stays within the limits."""
    tpl = load_template(write(tmp_path, dict(VALID, template=VALID["template"] + "{{ goal }}{{ goal|upper }}")))
    assert len(tpl.render(goal="g" * 300_000, tools=sample_tools())) > 600_000


def alias_bomb(levels: int = 9) -> str:
    """A YAML flow list of about 1.6 KB whose last item expands to 9**levels strings (a billion laughs)."""
    names = [chr(97 + i) for i in range(levels)]
    items = ["&a [" + ", ".join(["x"] * 9) + "]"]
    items += [f"&{n} [" + ", ".join([f"*{p}"] * 9) + "]" for p, n in zip(names, names[1:])]
    return "[" + ", ".join(items) + "]"


@pytest.mark.parametrize("where", ["sections", "family", "format"])
def test_yaml_alias_bombs_are_refused_with_a_short_message(tmp_path: Path, where: str) -> None:
    import yaml

    data = {k: v for k, v in VALID.items() if k != where}
    if where == "format":  # the bomb as a label of a declared format
        data["output_format"] = "kv_bomb"
        tail = "format: {style: kv, fields: {thought: " + alias_bomb() + ", tool: t, args: a, answer: r}}\n"
    else:
        tail = f"{where}: {alias_bomb()}\n"
    path = write(tmp_path, yaml.safe_dump(data, allow_unicode=True) + tail)
    with bounded_process(), pytest.raises(DataFileError) as err:
        load_template(path)
    assert "alias" in str(err.value) and len(str(err.value)) < 500


def test_deep_or_huge_yaml_is_refused(tmp_path: Path) -> None:
    deep, huge = tmp_path / "deep.yaml", tmp_path / "huge.yaml"
    deep.write_text("name: " + "[" * 20_000 + "]" * 20_000 + "\n", encoding="utf-8")
    huge.write_text("name: " + "a" * 3_000_000 + "\n", encoding="utf-8")
    for path, says in ((deep, "nested deeper"), (huge, "larger than")):
        with bounded_process(), pytest.raises(DataFileError, match=says) as err:
            load_template(path)
        assert len(str(err.value)) < 500


def test_a_huge_yaml_integer_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    """A 5,000-digit integer in a template file (issue 20's fuzz bench): a DataFileError, not the int-string
    ValueError PyYAML's int() raises past Python's 4,300-digit limit."""
    import yaml

    path = write(tmp_path, yaml.safe_dump(VALID, allow_unicode=True).replace("lang: en", "lang: " + "9" * 5000))
    with pytest.raises(DataFileError, match="an integer of 5000 characters") as err:
        load_template(path)
    assert err.value.line is not None and str(path) in str(err.value) and len(str(err.value)) < 500


def test_memory_shown_in_a_prompt_is_capped() -> None:
    """A 5 MB argument or thought from a model is clipped before it goes back into the next prompt."""
    huge = CompletedTask("t" * 5_000_000, ToolCall("web_search", {"query": "q" * 5_000_000, "deep": [[[[1]]]]}),
                         "r" * 5_000_000)
    for name in ("kagent_planning_zh", "react", "modelscope", "kagent_conclusion_en"):
        prompt = load_template(name).render(goal="g", tools=sample_tools(), memory=[huge] * 3)
        assert len(prompt) < 30_000 and "…[truncated" in prompt, name
    normal = load_template("react").render(goal="g", tools=sample_tools(), memory=MEMORY)
    assert json.dumps(MEMORY[0].call.args, ensure_ascii=False) in normal  # ordinary tasks are shown unchanged
