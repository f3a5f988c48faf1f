"""parse_output / render_gold / detect_format: round trips for every template, tolerance, typed errors."""

from __future__ import annotations

import json

import pytest

from labkit.parsing import (
    ERROR_CODES,
    OUTPUT_FORMATS,
    clean_tool_name,
    detect_format,
    first_parameter,
    parse_output,
    read_json_object,
    render_gold,
    strip_tail,
    strip_thought_label,
)
from labkit.templates import list_templates, load_template
from labkit.tools import ToolRegistry, default_registry
from labkit.types import ParsedAction, ParseError, ToolCall


def sample_tools() -> ToolRegistry:
    """Four real sandbox tools."""
    return default_registry().subset(["web_search", "get_weather_info", "calculator", "task_complete"])


CALL = ToolCall("get_weather_info", {"location": "北京", "start_date": "2025-03-15", "end_date": "2025-03-15",
                                     "is_current": "yes"})
THOUGHT = "查询北京当前的天气"
ANSWER = "北京现在晴,气温18°C。"


@pytest.mark.parametrize("name", list_templates())
def test_round_trip_for_every_template(name: str) -> None:
    tpl = load_template(name)
    tools = sample_tools()
    fmt = detect_format(tpl.render(goal="北京现在天气怎么样?", tools=tools))
    assert fmt == tpl.output_format
    if tpl.kind == "conclusion":
        parsed = parse_output(render_gold(ANSWER, fmt, ""), fmt, tools)
        assert isinstance(parsed, ParsedAction) and parsed.final_answer == ANSWER and parsed.is_finish
        return
    parsed = parse_output(render_gold(CALL, fmt, THOUGHT), fmt, tools)
    assert isinstance(parsed, ParsedAction), parsed
    assert parsed.call == CALL and parsed.thought == THOUGHT and parsed.repaired == ()
    assert not parsed.is_finish
    if fmt in ("task_json", "autogpt"):  # these finish by calling task_complete, then a conclusion template runs
        done = parse_output(render_gold(ToolCall("task_complete", {"reason": "够了"}), fmt, "完成"), fmt, tools)
        assert done.call == ToolCall("task_complete", {"reason": "够了"}) and done.is_finish
    else:
        done = parse_output(render_gold(ANSWER, fmt, "我知道答案了"), fmt, tools)
        assert done.final_answer == ANSWER and done.is_finish and done.call is None
        assert done.thought == ("" if fmt == "modelscope" else "我知道答案了")


@pytest.mark.parametrize("fmt", ["react", "toolllama", "task_json", "autogpt", "modelscope"])
def test_round_trip_empty_args_and_unicode(fmt: str) -> None:
    call = ToolCall("web_search", {"query": 'say "hi"\n{brace} 引号\''})
    parsed = parse_output(render_gold(call, fmt, "multi\nline thought"), fmt)
    assert parsed.call == call
    empty = parse_output(render_gold(ToolCall("task_complete", {}), fmt, "t"), fmt)
    assert empty.call == ToolCall("task_complete", {}) and empty.is_finish


def test_toolllama_give_up_and_give_answer() -> None:
    text = render_gold(ParsedAction("走不通", give_up=True), "toolllama", "")
    parsed = parse_output(text, "toolllama")
    assert parsed.give_up and parsed.thought == "走不通" and parsed.call is None and parsed.final_answer is None
    raw = 'Thought: done\nAction: Finish\nAction Input: {"return_type": "give_answer", "final_answer": "42"}'
    assert parse_output(raw, "toolllama").final_answer == "42"


def test_react_plain_action_input_maps_to_first_required_parameter() -> None:
    text = "Thought: 我需要查天气\nAction: get_weather_info\nAction Input: 北京\nObservation: 晴"
    with_tools = parse_output(text, "react", sample_tools())
    assert with_tools.call == ToolCall("get_weather_info", {"location": "北京"})
    assert "invented_observation" in with_tools.repaired
    assert parse_output(text, "react").call == ToolCall("get_weather_info", {"input": "北京"})
    quoted = parse_output('Action: web_search\nAction Input: "天气"', "react", sample_tools())
    assert quoted.call == ToolCall("web_search", {"query": "天气"}) and quoted.thought == ""
    openai_funcs = [{"name": "web_search", "parameters": {"type": "object", "properties": {"q": {}}, "required": ["q"]}}]
    assert parse_output("Action: web_search\nAction Input: x", "react", openai_funcs).call.args == {"q": "x"}


def test_react_final_answer_and_note_example() -> None:
    parsed = parse_output("Thought: I now know the final answer\nFinal Answer: 北京的天气是22°C,天气晴朗。", "react")
    assert parsed.final_answer == "北京的天气是22°C,天气晴朗。" and parsed.thought == "I now know the final answer"
    inline = parse_output("I should search.\nAction: web_search Action Input: {\"query\": \"a\"}", "react")
    assert inline.call == ToolCall("web_search", {"query": "a"}) and inline.thought == "I should search."
    listed = parse_output("Action: calculator\nAction Input: [1, 2]", "react", sample_tools())
    assert listed.call == ToolCall("calculator", {"expression": "[1, 2]"})  # not JSON object: plain input


KAGENT_NOTE_OUTPUT = """{
    "task_name": "获取北京现在的天气信息",
    "command":{
        "name":"get_weather_info",
        "args":{"location":"Beijing", "start_date":"2024-09-12", "end_date":"2024-09-12", "is_current":"yes"}
    }
}"""


@pytest.mark.parametrize(("text", "repair"), [
    (KAGENT_NOTE_OUTPUT, None),
    ("```json\n" + KAGENT_NOTE_OUTPUT + "\n```", "code_fence"),
    ("好的,下面是新的任务:\n" + KAGENT_NOTE_OUTPUT + "\n希望有帮助!", "trailing_prose"),
    (KAGENT_NOTE_OUTPUT.replace('"', "'"), "json_repair"),
    (KAGENT_NOTE_OUTPUT.replace('"yes"}', '"yes",}'), "json_repair"),
    (KAGENT_NOTE_OUTPUT.replace('"task_name"', "task_name").replace('"command"', "command"), "json_repair"),
    ("[" + KAGENT_NOTE_OUTPUT + "]", "list_wrapped"),
    (KAGENT_NOTE_OUTPUT + "<end_of_turn>\n<start_of_turn>user\n{garbage", None),
    (KAGENT_NOTE_OUTPUT[:-2], "json_repair"),  # truncated: closing braces lost
])
def test_task_json_tolerance(text: str, repair: str | None) -> None:
    parsed = parse_output(text, "task_json")
    assert isinstance(parsed, ParsedAction), parsed
    assert parsed.thought == "获取北京现在的天气信息"
    assert parsed.call == ToolCall("get_weather_info", {"location": "Beijing", "start_date": "2024-09-12",
                                                        "end_date": "2024-09-12", "is_current": "yes"})
    if repair is None:
        assert parsed.repaired == ()
    else:
        assert repair in parsed.repaired


def test_autogpt_and_modelscope_tolerance() -> None:
    auto = parse_output("Sure!\n```json\n{'thoughts': {'text': 'look it up', 'plan': '- search'}, "
                        "'command': {'name': 'web_search', 'args': {'query': 'x'}}}\n```", "autogpt")
    assert auto.thought == "look it up" and auto.call == ToolCall("web_search", {"query": "x"})
    assert {"code_fence", "json_repair"} <= set(auto.repaired)
    ms = parse_output('先搜索<|startofthink|>```JSON\n{"api_name": "web_search", "parameters": {"query": "x"}}\n```'
                      "<|endofthink|>", "modelscope")
    assert ms.thought == "先搜索" and ms.call == ToolCall("web_search", {"query": "x"}) and "code_fence" in ms.repaired
    cut = parse_output('查<|startofthink|>{"api_name": "web_search", "parameters": {"query": "x"}}', "modelscope")
    assert cut.call.name == "web_search" and "unterminated_think" in cut.repaired


@pytest.mark.parametrize(("text", "fmt", "code"), [
    ("", "react", "empty"),
    ("  <end_of_turn>", "task_json", "empty"),
    ("   \n", "conclusion", "empty"),
    ("I will just chat.", "task_json", "no_json"),
    ('{"task_name": "x"}', "task_json", "missing_field"),
    ('{"task_name": "x", "command": {"args": {}}}', "task_json", "missing_field"),
    ('{"task_name": "x", "command": "web_search"}', "task_json", "bad_field_type"),
    ('{"task_name": "x", "command": {"name": 3}}', "task_json", "bad_field_type"),
    ('"just a string"', "task_json", "no_json"),
    ("[1, 2, 3]", "task_json", "not_object"),
    ('{"task_name": "x", "args": {"q": 1}}', "task_json", "missing_field"),  # no command: no tool to credit
    ("Thought: hmm, let me think", "react", "no_action"),
    ("Thought: t\nFinal Answer:   ", "react", "empty"),
    ("Thought: t\nAction:   \nAction Input: {}", "react", "missing_field"),
    ("Thought: t\nAction: Finish\nAction Input: {\"return_type\": \"maybe\"}", "toolllama", "bad_field_type"),
    ("Thought: t\nAction: Finish", "toolllama", "missing_field"),
    ('<|startofthink|>{"parameters": {}}<|endofthink|>', "modelscope", "missing_field"),
    ('{"thoughts": {"text": "t"}}', "autogpt", "missing_field"),
    ("{" * 5000, "task_json", "invalid_json"),
    ("anything", "xml", "unknown_format"),
])
def test_error_codes(text: str, fmt: str, code: str) -> None:
    result = parse_output(text, fmt)
    assert isinstance(result, ParseError) and not result, result
    assert result.code == code, result
    assert result.code in ERROR_CODES and result.message


def test_not_text_never_raises() -> None:
    for value in (None, 42, b"bytes", {"a": 1}, ["x"]):
        result = parse_output(value, "react")  # type: ignore[arg-type]
        assert isinstance(result, ParseError) and result.code == "not_text"


def test_conclusion_answer_is_stripped_text() -> None:
    parsed = parse_output("\n  北京现在晴。 <end_of_turn>", "conclusion")
    assert parsed.final_answer == "北京现在晴。" and parsed.thought == "" and parsed.is_finish


def test_render_gold_rejects_forms_a_format_lacks() -> None:
    with pytest.raises(ValueError, match="no final-answer form"):
        render_gold("answer", "task_json", "t")
    with pytest.raises(ValueError, match="no tool-call form"):
        render_gold(CALL, "conclusion", "t")
    with pytest.raises(ValueError, match="unknown output format"):
        render_gold(CALL, "xml", "t")
    with pytest.raises(ValueError, match="give-up"):
        render_gold(ParsedAction("t", give_up=True), "react")


def test_autogpt_gold_has_all_thought_fields() -> None:
    obj = json.loads(render_gold(CALL, "autogpt", "t", reasoning="r", plan="p", criticism="c"))
    assert obj["thoughts"] == {"text": "t", "reasoning": "r", "plan": "p", "criticism": "c"}


def test_detect_format_on_chat_wrapped_prompts_and_fallback() -> None:
    from labkit.chat import render_chat

    for name in ("react", "toolllama", "modelscope", "autogpt", "kagent_planning_en", "kagent_conclusion_zh"):
        tpl = load_template(name)
        prompt = render_chat([{"role": "user", "content": tpl.render(goal="g", tools=sample_tools())}])
        assert detect_format(prompt) == tpl.output_format
    assert detect_format("hello") == "conclusion"
    assert set(OUTPUT_FORMATS) == {"react", "toolllama", "task_json", "autogpt", "modelscope", "conclusion"}


# ---------------------------------------------------------------- steps the official KAgentBench script scores
# (issue 11): each of these used to be a ParseError, throwing away a correct thought and tool.

def test_one_line_react_is_read() -> None:
    text = 'Thought: 我需要查天气。 Action: get_weather_info Action Input: {"location": "北京"} Observation: 晴'
    parsed = parse_output(text, "react", sample_tools())
    assert parsed.thought == "我需要查天气。" and parsed.call == ToolCall("get_weather_info", {"location": "北京"})
    assert "inline_markers" in parsed.repaired
    plain = parse_output("Thought: search it Action: web_search Action Input: 北京 天气 Observation: ...", "react",
                         sample_tools())
    assert plain.call == ToolCall("web_search", {"query": "北京 天气"}) and plain.thought == "search it"
    final = parse_output("Thought: I know it. Final Answer: 42", "react")
    assert final.final_answer == "42" and final.thought == "I know it."
    # a multi-line output keeps using the line-initial markers: "action:" inside the thought is not the action
    multi = parse_output("Thought: my next action: search\nAction: web_search\nAction Input: x", "react",
                         sample_tools())
    assert multi.call == ToolCall("web_search", {"query": "x"}) and multi.thought == "my next action: search"
    assert "inline_markers" not in multi.repaired


def test_task_json_without_task_name_keeps_the_call() -> None:
    parsed = parse_output('{"command": {"name": "web_search", "args": {"query": "x"}}}', "task_json")
    assert parsed.call == ToolCall("web_search", {"query": "x"}) and parsed.thought == ""


@pytest.mark.parametrize(("text", "fmt", "thought", "name"), [
    ('{"task_name": "查天气", "command": {"name": "web_search", "args": "北京"}}', "task_json", "查天气", "web_search"),
    ('{"thoughts": {"text": "查"}, "command": {"name": "web_search", "args": ["北京"]}}', "autogpt", "查", "web_search"),
    ('先查<|startofthink|>{"api_name": "web_search", "parameters": "q"}<|endofthink|>', "modelscope", "先查",
     "web_search"),
    ("Thought: 查一下\nAction: web_search\nAction Input: {", "react", "查一下", "web_search"),
    ("Thought: 查一下\nAction: web_search\nAction Input: ```json\n[1, 2]\n```", "react", "查一下", "web_search"),
    ("Thought: 查一下\nAction: web_search\nAction Input: {", "toolllama", "查一下", "web_search"),
])
def test_args_that_are_not_an_object_keep_thought_and_tool(text: str, fmt: str, thought: str, name: str) -> None:
    parsed = parse_output(text, fmt)
    assert isinstance(parsed, ParsedAction), parsed
    assert parsed.thought == thought and parsed.call == ToolCall(name, {})
    assert {"args_not_object", "unreadable_action_input"} & set(parsed.repaired)


def test_public_helpers() -> None:
    assert read_json_object('Sure: ```json\n{"a": 1,}\n```') == {"a": 1}
    assert isinstance(read_json_object("no json"), ParseError) and read_json_object("no json").code == "no_json"
    assert clean_tool_name(" `web_search` ") == "web_search" and clean_tool_name(' ["x"] ') == "x"
    assert clean_tool_name("  ") == ""
    assert strip_thought_label("Thought: a\nThought: b ") == "b" and strip_thought_label(" plain ") == "plain"
    assert first_parameter("get_weather_info", sample_tools()) == "location"
    assert first_parameter("nope", sample_tools()) == "input"
    assert strip_tail("answer<end_of_turn>\n<start_of_turn>user") == "answer"
