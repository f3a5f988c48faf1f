"""Agent templates: every built-in loads, renders in its family's style, asks for its format; bad files fail clearly."""

from __future__ import annotations

import json
import textwrap
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
