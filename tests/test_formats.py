"""Output formats as objects: built-ins own their rules; formats declared in a template file work like built-ins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit.errors import DataFileError
from labkit.formats import (
    BUILTIN_FORMATS,
    MEMORY_STYLES,
    OUTPUT_FORMATS,
    TOOL_STYLES,
    DeclaredFormat,
    FormatSpecError,
    declare,
    detect_format,
    get_format,
    known_formats,
    register,
    unregister,
)
from labkit.formats.base import PLACEHOLDERS, Placeholders
from labkit.formats.declared import SPEC_KEYS, STYLES, FormatSpec
from labkit.parsing import parse_output, render_gold
from labkit.templates import SECTIONS, check_sections, list_templates, load_template
from labkit.tools import default_registry
from labkit.types import CompletedTask, ParsedAction, ParseError, ToolCall

CALL = ToolCall("get_weather_info", {"location": "北京", "start_date": "2025-03-15", "is_current": "yes"})
LABELS = {"json": ("why", "tool", "input", "answer", "result"), "yaml": ("reason", "action", "params", "final", "got"),
          "xml": ("思考", "工具", "参数", "答案", "结果"), "kv": ("plan", "call", "with", "reply", "obs"),
          "prefixed": ("Reasoning", "Tool", "Tool Input", "Answer", "Result")}


def spec(style: str, finish: str = "answer") -> FormatSpec:
    thought, tool, args, answer, obs = LABELS[style]
    fields = {"thought": thought, "tool": tool, "args": args, "observation": obs}
    if finish == "answer":
        fields["answer"] = answer
    return {"style": style, "fields": fields, "finish": finish}


def fmt_for(style: str, finish: str = "answer") -> DeclaredFormat:
    return declare(f"t_{style}_{finish}", spec(style, finish))


CASES = [(s, f) for s in STYLES for f in ("answer", "call")]


def test_a_declared_format_writes_its_spec_as_the_FormatSpec_type_says_and_reads_it_back() -> None:
    full = declare("spec_typed", {**spec("kv", "call"), "tool_style": "commands", "memory_style": "results",
                                  "markers": ["call=", "with="]})
    written = full.spec()
    assert FormatSpec.__required_keys__ <= set(written) and list(written) == [k for k in SPEC_KEYS if k in written]
    assert SPEC_KEYS == ("style", "fields", "finish", "tool_style", "memory_style", "markers", "description")
    assert declare("spec_typed", written) == full  # what spec() writes, declare() reads back to the same format
    assert list(fmt_for("xml").spec()) == ["style", "fields", "finish"]  # the defaults are not written


def test_placeholders_and_renderers_take_the_typed_records() -> None:
    assert all(list(ph) == list(Placeholders.__annotations__) for ph in PLACEHOLDERS.values())
    from types import MappingProxyType

    frozen = ToolCall(CALL.name, MappingProxyType(dict(CALL.args)))  # a read-only mapping: renderers get a dict
    for name in ("react", "task_json", "autogpt", "modelscope", "toolllama"):
        assert get_format(name).render(frozen, "t") == get_format(name).render(CALL, "t")
    assert fmt_for("json").render(frozen, "t") == fmt_for("json").render(CALL, "t")


# ---------------------------------------------------------------- built-ins as objects

def test_builtins_keep_their_rules() -> None:
    assert tuple(BUILTIN_FORMATS) == ("modelscope", "toolllama", "autogpt", "task_json", "react", "conclusion")
    assert set(OUTPUT_FORMATS) == set(BUILTIN_FORMATS)
    assert {n for n, f in BUILTIN_FORMATS.items() if f.finishes_with_call} == {"task_json", "autogpt"}
    assert get_format("react").stop_markers == ("Observation:",) == get_format("toolllama").stop_markers
    assert get_format("modelscope").stop_markers == ("<|startofexec|>",)
    assert get_format("conclusion").has_call_form is False and get_format("toolllama").has_give_up_form
    for fmt in BUILTIN_FORMATS.values():
        assert fmt.round_trip_problems() == [], fmt.name


@pytest.mark.parametrize(("name", "partial", "whole"), [
    ("task_json", '{"task_name": "t", "command": {"name": "web_search", "args": {"q', '{"task_name": "t", "command": {}}'),
    ("react", 'Thought: t\nAction: web_search\nAction Input: {"query": "x', 'Thought: t\nAction: x\nAction Input: {}'),
    ("modelscope", 'go<|startofthink|>{"api_name": "x"', 'go<|startofthink|>{"api_name": "x"}<|endofthink|>'),
])
def test_is_complete_tells_a_whole_step_from_a_partial_one(name: str, partial: str, whole: str) -> None:
    fmt = get_format(name)
    assert not fmt.is_complete(partial) and fmt.is_complete(whole)
    assert not get_format("conclusion").is_complete("any answer")


# ---------------------------------------------------------------- declared formats

@pytest.mark.parametrize(("style", "finish"), CASES)
def test_declared_formats_round_trip(style: str, finish: str) -> None:
    fmt = fmt_for(style, finish)
    assert fmt.round_trip_problems() == []
    assert fmt.finishes_with_call == (finish == "call") and fmt.has_answer_form == (finish == "answer")
    parsed = fmt.parse(fmt.render(CALL, "查询天气\n第二行"))
    assert parsed.call == CALL and parsed.thought == "查询天气\n第二行" and parsed.repaired == ()
    if finish == "call":
        with pytest.raises(ValueError):
            fmt.render("an answer")
        assert fmt.finish("done").startswith(fmt.render(ToolCall("task_complete", {"reason": "done"}))[:5])
    else:
        assert fmt.parse(fmt.finish("北京晴。", "够了")).final_answer == "北京晴。"


@pytest.mark.parametrize("style", STYLES)
def test_declared_parsers_are_tolerant_and_name_their_repairs(style: str) -> None:
    fmt = fmt_for(style)
    gold = fmt.render(CALL, "t")
    chatty = fmt.parse("Sure, here is my step:\n" + gold)
    assert chatty.call == CALL and {"leading_prose", "code_fence"} & set(chatty.repaired)
    invented = fmt.parse(gold + "\n" + fmt.observation_text("晴"))
    assert invented.call == CALL and ("invented_observation" in invented.repaired or style == "json")
    assert isinstance(fmt.parse("no step here at all"), ParseError)
    assert isinstance(fmt.parse(""), ParseError) and fmt.parse(None).code == "not_text"


def test_plain_and_broken_arguments_keep_the_tool() -> None:
    kv = fmt_for("kv")
    plain = kv.parse("plan=t\ncall=web_search\nwith=hello world", default_registry())
    assert plain.call == ToolCall("web_search", {"query": "hello world"}) and "plain_args" in plain.repaired
    broken = kv.parse('plan=t\ncall=web_search\nwith={"query": "a"')
    assert broken.call == ToolCall("web_search", {"query": "a"}) and "json_repair" in broken.repaired
    yml = fmt_for("yaml")
    block = yml.parse('reason: t\naction: calculator\nparams:\n  expression: "1+1"\n  digits: 2\n')
    assert block.call == ToolCall("calculator", {"expression": "1+1", "digits": 2})


def test_own_memory_layout_and_stop_marker() -> None:
    fmt = fmt_for("xml")
    memory = fmt.render_memory([CompletedTask("查天气", CALL, "北京晴")])
    assert "<结果>北京晴</结果>" in memory and fmt.stop_markers == ("<结果>",)
    assert fmt.is_complete(fmt.render(CALL, "t")) and not fmt.is_complete("<思考>t</思考><工具>x</工具><参数>{")


@pytest.mark.parametrize(("bad", "field"), [
    ({"style": "toml", "fields": {}}, "style"),
    ({"style": "kv", "fields": {"thought": "a", "tool": "b"}}, "fields.args"),
    ({"style": "kv", "fields": {"thought": "a", "tool": "b", "args": "c"}}, "fields.answer"),
    ({"style": "kv", "fields": {"thought": "a", "tool": "b=x", "args": "c", "answer": "d"}}, "fields.tool"),
    ({"style": "xml", "fields": {"thought": "a b", "tool": "b", "args": "c", "answer": "d"}}, "fields.thought"),
    ({"style": "kv", "fields": {"thought": "a", "tool": "b", "args": "c", "answer": "d"}, "finish": "later"},
     "finish"),
    ({"style": "kv", "fields": {"thought": "a", "tool": "b", "args": "c", "answer": "d"}, "colour": 1}, "colour"),
])
def test_bad_declarations_name_the_field(bad: dict[str, Any], field: str) -> None:
    with pytest.raises(FormatSpecError) as err:
        declare("bad_decl", bad)
    assert err.value.field == field


def test_registry_refuses_conflicts_and_detects_declared_prompts() -> None:
    a = register(declare("reg_test_a", spec("kv")))
    try:
        assert register(declare("reg_test_a", spec("kv"))) is a  # identical: idempotent
        with pytest.raises(FormatSpecError, match="already declared"):
            register(declare("reg_test_a", spec("yaml")))
        with pytest.raises(FormatSpecError, match="same markers"):
            register(declare("reg_test_b", spec("kv")))
        assert detect_format("Reply as:\n" + a.skeleton("en")) == "reg_test_a"
        assert detect_format("Thought: x\nFinal Answer: y\n" + a.skeleton("en")) == "react"  # built-ins first
        assert parse_output(a.render(CALL, "t"), "reg_test_a") == ParsedAction("t", CALL)
    finally:
        unregister("reg_test_a")
    assert parse_output("plan=t", "reg_test_a").code == "unknown_format"
    with pytest.raises(ValueError, match="unknown output format"):
        render_gold(CALL, "reg_test_a")


# ---------------------------------------------------------------- a template file that brings its own format

TEMPLATE = {
    "name": "declared_kv_en", "family": "meta", "kind": "planning", "output_format": "kv_step_tool_with",
    "format": {"style": "kv", "fields": {"thought": "step", "tool": "tool", "args": "with", "answer": "reply",
                                         "observation": "seen"}, "finish": "answer"},
    "lang": "en", "sections": list(SECTIONS), "description": "a kv-line format no built-in uses", "source": "test",
    "template": "You are a planner. Rules: only use the tools listed, one step per reply, at most {{ max_steps }}.\n"
                "Tools:\n{{ tools_block }}\nGoal: {{ goal }}\nDone so far:\n{{ memory_block or 'nothing' }}\n"
                "Reply with one step:\nstep=what this step does\ntool=tool_name\nwith={\"arg\": \"value\"}\n"
                "or, to answer:\nstep=why you can answer\nreply=the answer\n",
}


def write_template(folder: Path, data: dict[str, Any]) -> Path:
    path = folder / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_template_declares_a_format_and_renders_its_memory(tmp_path: Path) -> None:
    tpl = load_template(write_template(tmp_path, TEMPLATE))
    assert tpl.format.declared and tpl.output_format == "kv_step_tool_with" and check_sections(tpl) == []
    assert tpl.memory_style == "own" and tpl.tool_style == "react"
    prompt = tpl.render(goal="g", tools=default_registry().subset(["web_search"]),
                        memory=[CompletedTask("look it up", ToolCall("web_search", {"query": "q"}), "found it")])
    assert 'step=look it up\ntool=web_search\nwith={"query": "q"}\nseen=found it' in prompt
    assert detect_format(prompt) == "kv_step_tool_with"


@pytest.mark.parametrize(("change", "field"), [
    ({"format": {"style": "kv", "fields": {"thought": "s", "tool": "t"}}}, "format.fields.args"),
    ({"output_format": "react"}, "output_format"),  # a built-in name cannot be re-declared
    ({"output_format": "Bad Name"}, "output_format"),
    ({"format": None, "output_format": "kv_not_declared_here"}, "output_format"),
    ({"format": {**TEMPLATE["format"], "tool_style": "fancy"}}, "format.tool_style"),  # issue 20: was a ValueError
    ({"format": {**TEMPLATE["format"], "memory_style": "diary"}}, "format.memory_style"),
    ({"format": {**TEMPLATE["format"], "markers": ["e"]}}, "format.markers"),  # in almost every prompt
])
def test_bad_format_declarations_in_a_file_name_file_and_field(tmp_path: Path, change: dict[str, Any],
                                                               field: str) -> None:
    data = {**TEMPLATE, "name": "broken_decl", **change}
    data = {k: v for k, v in data.items() if v is not None}
    path = write_template(tmp_path, data)
    with pytest.raises(DataFileError) as err:
        load_template(path)
    assert err.value.field == field and str(path) in str(err.value)


def test_template_dirs_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_template(tmp_path, {**TEMPLATE, "name": "extra_dir_template"})
    assert "extra_dir_template" not in list_templates()
    monkeypatch.setenv("LABKIT_TEMPLATE_DIRS", str(tmp_path))
    assert "extra_dir_template" in list_templates()
    assert load_template("extra_dir_template").output_format == "kv_step_tool_with"


def test_a_declared_format_works_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """render -> sandbox teacher answers in the declared format -> parse -> filters -> training sample -> score."""
    from labkit.data.filters import check_record
    from labkit.data.label import label_jobs, load_labelled, plan_jobs
    from labkit.data.samples import step_samples
    from labkit.data.queries import load_queries
    from labkit.evaluate.benchmark import build_benchmark, golden_predictions
    from labkit.evaluate.runner import generate_predictions
    from labkit.evaluate.scorer import score_predictions
    from labkit.llm import SandboxTeacher

    (tmp_path / "tpl").mkdir()
    write_template(tmp_path / "tpl", TEMPLATE)
    monkeypatch.setenv("LABKIT_TEMPLATE_DIRS", str(tmp_path / "tpl"))
    queries = [q for q in load_queries() if q["lang"] == "en" and len(q["gold_calls"]) >= 2][:3]
    jobs = plan_jobs(queries, ["declared_kv_en"], registry=default_registry())
    assert all(j.conclusion_template is None for j in jobs)  # it answers in its own format: no Template-2
    report = label_jobs(jobs, SandboxTeacher(), tmp_path / "lab", workers=1, progress=False)
    assert report.failed == 0
    records = load_labelled(tmp_path / "lab")
    fmt = get_format("kv_step_tool_with")
    by_id = {q["id"]: q for q in queries}
    for rec in records:
        steps = rec["trace"]["steps"]
        assert rec["trace"]["stopped"] == "finished" and len(steps) == len(by_id[rec["query_id"]]["gold_calls"]) + 1
        assert steps[0]["output"].startswith("step=") and "\ntool=" in steps[0]["output"]
        assert [s["parsed"]["call"]["name"] for s in steps[:-1]] == [c["name"] for c in by_id[rec["query_id"]]["gold_calls"]]
        assert fmt.parse(steps[-1]["output"]).final_answer == rec["trace"]["final_answer"]
        assert check_record(rec, by_id[rec["query_id"]], default_registry()).accepted
        sample = step_samples(rec)[1]
        assert sample["template"] == "declared_kv_en" and "seen=" in sample["messages"][0]["content"]
        assert fmt.parse(sample["messages"][1]["content"]).call is not None
    bench = build_benchmark(queries, seen=["declared_kv_en"], unseen=["react"], types=("plantooluse",))
    assert all(r["output_formats"]["declared_kv_en"] == "kv_step_tool_with" for r in bench)
    gold = score_predictions(bench, golden_predictions(bench))
    assert gold.dimensions["Planning"] == 100 and gold.dimensions["Tool-use"] == 100
    preds, _ = generate_predictions(SandboxTeacher(), bench, tmp_path / "cache.jsonl")
    teacher = score_predictions(bench, preds).to_frame()
    assert (teacher[teacher["template"] == "declared_kv_en"]["score"] == 1.0).all()


def test_decoding_rules_come_from_the_format_object() -> None:
    from labkit.agent import MAX_NEW_TOKENS, STOP_MARKERS, decoding_for

    for name, fmt in BUILTIN_FORMATS.items():
        dec = decoding_for(name)
        assert dec.max_new_tokens == fmt.max_new_tokens == MAX_NEW_TOKENS[name] and dec.until == fmt.until
        assert list(dec.stop or ()) == list(fmt.stop_markers) == STOP_MARKERS.get(name, [])
    fmt = register(declare("dec_json_test", spec("json")))
    try:
        dec = decoding_for("dec_json_test")
        assert dec.until == "json_object" and dec.stop == ('"result"',) and dec.max_new_tokens == fmt.max_new_tokens
        assert decoding_for("dec_json_test", 7).max_new_tokens == 7
    finally:
        unregister("dec_json_test")


# ---------------------------------------------------------------- registration is all or nothing (issue 20, finding 1)

def conclusion_prompts() -> dict[str, str]:
    from labkit.templates import sentinel_render as _sentinel_render

    return {n: detect_format(_sentinel_render(load_template(n))) for n in list_templates()}


def test_a_rejected_template_leaves_the_format_registry_as_it_was(tmp_path: Path) -> None:
    before, detected = known_formats(), conclusion_prompts()
    path = write_template(tmp_path, {**TEMPLATE, "name": "late_fail", "output_format": "kv_late_fail",
                                     "sections": ["profile", "no such section"]})
    with pytest.raises(DataFileError) as err:
        load_template(path)
    assert err.value.field == "sections"
    assert known_formats() == before and conclusion_prompts() == detected  # nothing registered


@pytest.mark.parametrize(("change", "field"), [
    ({"markers": ["Goal:"]}, "format.markers"),  # explicit markers a conclusion template contains
    # labels whose prefixed markers (Goal: / Knowledge: / Current Time: / Conversation history:) are all in
    # kagent_conclusion_en: the derived markers capture it just the same
    ({"style": "prefixed", "fields": {"thought": "Goal", "tool": "Knowledge", "args": "Conversation history",
                                      "answer": "Current Time", "observation": "Seen"}}, "format.fields"),
])
def test_markers_that_capture_other_templates_are_refused(tmp_path: Path, change: dict[str, Any],
                                                          field: str) -> None:
    fmt = {"style": "kv", "fields": {"thought": "think", "tool": "use", "args": "args", "answer": "answer",
                                     "observation": "seen"}, **change}
    text = ("You are a planner. Rules: only use the tools listed.\nTools:\n{{ tools_block }}\nGoal: {{ goal }}\n"
            "Done:\n{{ memory_block or 'nothing' }}\nKnowledge: y\nConversation history: z\nCurrent Time: now\n"
            "Reply with one step:\nthink=why\nuse=tool_name\nargs={\"arg\": \"value\"}\nor answer=the answer\n")
    path = write_template(tmp_path, {**TEMPLATE, "name": "greedy", "output_format": "kv_greedy", "format": fmt,
                                     "template": text})
    before, detected = known_formats(), conclusion_prompts()
    with pytest.raises(DataFileError) as err:
        load_template(path)
    assert err.value.field == field and str(path) in str(err.value) and "kagent_conclusion_en" in str(err.value)
    assert known_formats() == before and conclusion_prompts() == detected
    assert all(load_template(n) for n in list_templates())  # every template still loads


def test_a_format_may_not_capture_the_prompt_of_a_format_declared_before(tmp_path: Path) -> None:
    first = load_template(write_template(tmp_path, TEMPLATE))  # kv: step= tool= with= reply=, its prompt has "Goal:"
    try:
        fmt = {**TEMPLATE["format"], "markers": ["step=", "tool=", "with=", "reply=", "Goal:"]}
        path = write_template(tmp_path, {**TEMPLATE, "name": "greedier", "output_format": "kv_greedier",
                                         "format": fmt})
        with pytest.raises(DataFileError, match="declared 'kv_step_tool_with'") as err:
            load_template(path)
        assert err.value.field == "format.markers" and "kv_greedier" not in known_formats()
        assert detect_format(first.render(goal="g", tools=default_registry())) == "kv_step_tool_with"
    finally:
        unregister(first.output_format)


def test_every_style_a_template_may_name_has_its_layout_on_the_format() -> None:
    """The layouts are the format's (labkit.formats.layouts): every TOOL_STYLES / MEMORY_STYLES name a template or
    a declaration may use is reached through OutputFormat.tools_block / memory_block, and an unknown one is refused."""
    from labkit.formats.layouts import MEMORY_LAYOUTS, TOOL_LAYOUTS

    assert set(TOOL_LAYOUTS) == set(TOOL_STYLES)
    assert set(MEMORY_LAYOUTS) | {"own"} == set(MEMORY_STYLES)
    fmt = get_format("react")
    specs = [{"name": "get_weather", "description": "weather", "required": ["city"],
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    memory = [CompletedTask("look", ToolCall("get_weather", {"city": "北京"}), "sunny")]
    assert fmt.tools_block(specs) == fmt.tools_block(specs, "react") != fmt.tools_block(specs, "commands")
    assert fmt.memory_block(memory) == fmt.memory_block(memory, "scratchpad") and fmt.memory_block([]) == ""
    with pytest.raises(ValueError, match="unknown tool style"):
        fmt.tools_block(specs, "nope")
    with pytest.raises(ValueError, match="unknown memory style"):
        fmt.memory_block(memory, "nope")


def test_finish_rule_names_a_rule_the_meta_generator_writes() -> None:
    """meta/generate.py writes the finish rule of the format's ``finish_rule`` (no branch on the format's name)."""
    from labkit.meta.generate import pools

    rules = {name: get_format(name).finish_rule for name in OUTPUT_FORMATS}
    assert rules["toolllama"] == "function" and rules["task_json"] == "call" and rules["react"] == "answer"
    assert set(rules.values()) <= set(pools()["finish_rules"])
    assert {n for n in OUTPUT_FORMATS if get_format(n).tool_style_fixed} == {"toolllama", "modelscope"}
