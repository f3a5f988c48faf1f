"""The six built-in output formats (react, toolllama, task_json, autogpt, modelscope, conclusion), one object each."""

from __future__ import annotations

import re
from typing import Any

from labkit.formats.base import Fail, OutputFormat, StepNotes, dumps
from labkit.formats.guide import (LINE, STR_NONEMPTY, Choice, Element, Text, ToolShape, Until, W, json_fields,
                                  json_object, seq, tool_choice)
from labkit.formats.jsontext import (
    first_parameter,
    load_json_object,
    read_tool_args,
    read_tool_name,
    require_field,
    text_value,
)
from labkit.formats.layouts import EXEC_START, FINISH_TOOL, GIVE_ANSWER, GIVE_UP, THINK_END, THINK_START
from labkit.jsonscan import scan_object
from labkit.types import ParsedAction, ToolCall

_ACTION = re.compile(r"^[ \t]*Action[ \t]*:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)
# One-line outputs ("Thought: ... Action: x Action Input: {...}"): markers preceded by a word boundary, used only
# when no marker starts a line (so "my next action: ..." inside a multi-line thought is never taken for one).
_ACTION_INLINE = re.compile(r"\bAction[ \t]*:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)
_FINAL_INLINE = re.compile(r"\bFinal[ \t]*Answer[ \t]*:[ \t]*", re.IGNORECASE)
_OBSERVATION_INLINE = re.compile(r"\bObservation[ \t]*:", re.IGNORECASE)
_ACTION_INPUT = re.compile(r"^[ \t]*Action[ \t]*Input[ \t]*:[ \t]*", re.IGNORECASE | re.MULTILINE)
_FINAL = re.compile(r"^[ \t]*Final[ \t]*Answer[ \t]*:[ \t]*", re.IGNORECASE | re.MULTILINE)
_INLINE_INPUT = re.compile(r"Action[ \t]*Input[ \t]*:", re.IGNORECASE)
_OBSERVATION = re.compile(r"^[ \t]*Observation[ \t]*:", re.IGNORECASE | re.MULTILINE)
_THOUGHT = re.compile(r"^[ \t]*Thought[ \t]*:[ \t]*", re.IGNORECASE | re.MULTILINE)


def _closed_json(text: str) -> bool:
    """True when the first JSON object in ``text`` is complete (the decoding rule ``json_object``)."""
    return scan_object(text).complete


class _ThoughtAction(OutputFormat):
    """ReAct-style lines: ``Thought:`` / ``Action:`` / ``Action Input:``; the tool writes ``Observation:``."""

    stop_markers = ("Observation:",)
    memory_style = "scratchpad"
    opening = "Thought"

    def is_complete(self, text: str) -> bool:
        if super().is_complete(text):
            return True
        marks = list(_ACTION_INPUT.finditer(text))
        if not marks:
            return False
        rest = text[marks[-1].end():]
        if rest.lstrip().startswith("{"):
            return _closed_json(rest)
        return "\n" in rest.strip(" \t") and bool(rest.split("\n", 1)[0].strip())

    def _render_call(self, call: ToolCall, thought: str, extra: StepNotes) -> str:
        return f"Thought: {thought}\nAction: {call.name}\nAction Input: {dumps(call.args)}"

    def _action_input(self, shape: ToolShape) -> tuple[Element, ...]:
        return seq("Action Input:", W, json_object(shape))

    def _call_seq(self, shapes: tuple[ToolShape, ...]) -> tuple[Element, ...] | None:
        """``Thought: <one line>`` then ``Action: <offered tool>`` + ``Action Input: <JSON arguments>`` (or, where
        the format has one, ``Final Answer: <free text>``)."""
        options = [("\nAction:", seq(W, tool_choice(self._tools(shapes), "\n", self._action_input)))]
        if self.name == "react":
            options.append(("\nFinal Answer:", seq(W, Text())))
        return seq("Thought:", W, LINE, Choice(options, roomy=True))

    def _tools(self, shapes: tuple[ToolShape, ...]) -> tuple[ToolShape, ...]:
        return shapes


class ReactFormat(_ThoughtAction):
    name = "react"
    description = "ReAct: Thought / Action / Action Input, or Thought / Final Answer"
    markers = ("Final Answer:",)
    max_new_tokens = 128
    tool_style = "react"

    def _parse(self, body: str, tools: Any) -> ParsedAction:
        return _parse_react(body, tools)

    def _render_answer(self, answer: str, thought: str) -> str:
        return f"Thought: {thought}\nFinal Answer: {answer}"


class ToolLlamaFormat(_ThoughtAction):
    name = "toolllama"
    description = "ToolLLaMA: Thought / Action / Action Input (JSON); ends with the Finish function"
    markers = (GIVE_UP,)
    max_new_tokens = 144
    tool_style = "functions"  # its tool list carries the Finish function
    tool_style_fixed = True
    has_give_up_form = True

    @property
    def finish_rule(self) -> str:
        return "function"  # the Finish function, with give_answer or give_up_and_restart

    def _parse(self, body: str, tools: Any) -> ParsedAction:
        return _parse_toolllama(body, tools)

    def _render_answer(self, answer: str, thought: str) -> str:
        finish = {"return_type": GIVE_ANSWER, "final_answer": answer}
        return f"Thought: {thought}\nAction: {FINISH_TOOL}\nAction Input: {dumps(finish)}"

    def _render_give_up(self, thought: str) -> str:
        return f"Thought: {thought}\nAction: {FINISH_TOOL}\nAction Input: {dumps({'return_type': GIVE_UP})}"

    def _tools(self, shapes: tuple[ToolShape, ...]) -> tuple[ToolShape, ...]:
        return tuple(s for s in shapes if s.name != FINISH_TOOL) + (ToolShape(FINISH_TOOL, ()),)

    def _action_input(self, shape: ToolShape) -> tuple[Element, ...]:
        if shape.name != FINISH_TOOL:
            return super()._action_input(shape)
        answer = seq(W, '"final_answer":', W, STR_NONEMPTY, "}")  # give_answer needs a non-empty answer
        return seq("Action Input:", W, '{"return_type":', W,
                   Choice([(f'"{GIVE_ANSWER}",', answer), (f'"{GIVE_UP}"}}', ())]))


class _JsonTask(OutputFormat):
    until = "json_object"
    memory_style = "kagent"
    tool_style = "commands"
    finishes_with_call = True
    has_answer_form = False

    def is_complete(self, text: str) -> bool:
        return _closed_json(text)

    def _call_seq(self, shapes: tuple[ToolShape, ...]) -> tuple[Element, ...] | None:
        """The whole JSON step in the format's key order: free string thoughts, then ``"command": {"name": <offered
        tool>, "args": <its arguments>}``."""
        command = tool_choice(shapes, '"', lambda s: seq(', "args":', W, json_object(s), "}}"))
        return seq(self._thoughts(), ", ", '"command":', W, '{"name":', W, '"', command)

    def _thoughts(self) -> tuple[Element, ...]:
        raise NotImplementedError


class TaskJsonFormat(_JsonTask):
    name = "task_json"
    description = "KAgent planning JSON: {task_name, command: {name, args}}; ends with task_complete"
    markers = ('"task_name"',)
    max_new_tokens = 160

    def _parse(self, body: str, tools: Any) -> ParsedAction:
        return _parse_task_json(body, tools)

    def _render_call(self, call: ToolCall, thought: str, extra: StepNotes) -> str:
        return dumps({"task_name": thought, "command": {"name": call.name, "args": call.args}})

    def _thoughts(self) -> tuple[Element, ...]:
        return json_fields(["task_name"])


class AutoGptFormat(_JsonTask):
    name = "autogpt"
    description = "AutoGPT JSON: {thoughts: {text, reasoning, plan, criticism}, command}; ends with task_complete"
    markers = ('"criticism"',)
    max_new_tokens = 176

    def _parse(self, body: str, tools: Any) -> ParsedAction:
        return _parse_autogpt(body, tools)

    def _render_call(self, call: ToolCall, thought: str, extra: StepNotes) -> str:
        thoughts = {"text": thought, "reasoning": extra.get("reasoning", ""), "plan": extra.get("plan", ""),
                    "criticism": extra.get("criticism", "")}
        return dumps({"thoughts": thoughts, "command": {"name": call.name, "args": call.args}})

    def _thoughts(self) -> tuple[Element, ...]:
        return seq('{"thoughts":', W, json_fields(["text", "reasoning", "plan", "criticism"]), "}")


class ModelScopeFormat(OutputFormat):
    name = "modelscope"
    description = "ModelScope: prose, then <|startofthink|>{api_name, parameters}<|endofthink|>; plain text answers"
    markers = (THINK_START,)
    stop_markers = (EXEC_START,)
    max_new_tokens = 128
    memory_style = "modelscope"
    tool_style = "apis"
    tool_style_fixed = True  # its calls name an api_name from the apis list
    answer_has_thought = False

    def is_complete(self, text: str) -> bool:
        return super().is_complete(text) or THINK_END in text

    def _parse(self, body: str, tools: Any) -> ParsedAction:
        return _parse_modelscope(body, tools)

    def _render_call(self, call: ToolCall, thought: str, extra: StepNotes) -> str:
        return f"{thought}{THINK_START}{dumps({'api_name': call.name, 'parameters': call.args})}{THINK_END}"

    def _render_answer(self, answer: str, thought: str) -> str:
        return answer

    def _call_seq(self, shapes: tuple[ToolShape, ...]) -> tuple[Element, ...] | None:
        """Free text (an answer, when it ends there) up to <|startofthink|>, then ``{"api_name": <offered tool>,
        "parameters": <its arguments>}<|endofthink|>``."""
        call = seq('{"api_name":', W, '"', tool_choice(
            shapes, '"', lambda s: seq(', "parameters":', W, json_object(s), "}", THINK_END)))
        return (Until([(THINK_START, call)], accept=True),)


class ConclusionFormat(OutputFormat):
    name = "conclusion"
    description = "Conclusion (KAgent Template-2): the answer as plain text"
    memory_style = "results"
    tool_style = "commands"
    max_new_tokens = 128
    has_call_form = False
    answer_has_thought = False

    def is_complete(self, text: str) -> bool:
        return False  # free text: only the end of turn ends it

    def _parse(self, body: str, tools: Any) -> ParsedAction:
        return _parse_conclusion(body, tools)

    def _render_answer(self, answer: str, thought: str) -> str:
        return answer


# ---------------------------------------------------------------- per-format parsers (moved from labkit.parsing)

def _parse_task_json(body: str, tools: Any) -> ParsedAction:
    repairs: list[str] = []
    obj = load_json_object(body, repairs)
    thought = text_value(obj.get("task_name"))  # a missing task name loses the thought, not the tool call
    command = require_field(obj, "command", "the task")
    if not isinstance(command, dict):
        raise Fail("bad_field_type", f"'command' must be an object, got {type(command).__name__}")
    name = read_tool_name(require_field(command, "name", "the command"), "command.name")
    return ParsedAction(thought, ToolCall(name, read_tool_args(command.get("args"), repairs)), repaired=tuple(repairs))


def _parse_autogpt(body: str, tools: Any) -> ParsedAction:
    repairs: list[str] = []
    obj = load_json_object(body, repairs)
    thoughts = obj.get("thoughts")
    thought = text_value(thoughts.get("text")) if isinstance(thoughts, dict) else text_value(thoughts)
    command = require_field(obj, "command", "the reply")
    if not isinstance(command, dict):
        raise Fail("bad_field_type", f"'command' must be an object, got {type(command).__name__}")
    name = read_tool_name(require_field(command, "name", "the command"), "command.name")
    return ParsedAction(thought, ToolCall(name, read_tool_args(command.get("args"), repairs)), repaired=tuple(repairs))


def _parse_modelscope(body: str, tools: Any) -> ParsedAction:
    start = body.find(THINK_START)
    if start == -1:
        return ParsedAction("", final_answer=body)
    repairs: list[str] = []
    thought = body[:start].strip()
    inner = body[start + len(THINK_START):]
    end = inner.find(THINK_END)
    if end == -1:
        repairs.append("unterminated_think")
    else:
        inner = inner[:end]
    obj = load_json_object(inner, repairs, what="think block")
    name = read_tool_name(require_field(obj, "api_name", "the think block"), "api_name")
    return ParsedAction(thought, ToolCall(name, read_tool_args(obj.get("parameters"), repairs)), repaired=tuple(repairs))


def _parse_conclusion(body: str, tools: Any) -> ParsedAction:
    return ParsedAction("", final_answer=body)


def _parse_react(body: str, tools: Any) -> ParsedAction:
    return _parse_thought_action(body, tools, toolllama=False)


def _parse_toolllama(body: str, tools: Any) -> ParsedAction:
    return _parse_thought_action(body, tools, toolllama=True)


def _parse_thought_action(body: str, tools: Any, *, toolllama: bool) -> ParsedAction:
    repairs: list[str] = []
    action, final = _ACTION.search(body), _FINAL.search(body)
    if action is None and final is None:  # a one-line output: markers inside the line
        action, final = _ACTION_INLINE.search(body), _FINAL_INLINE.search(body)
        if action is not None or final is not None:
            repairs.append("inline_markers")
    observation = _OBSERVATION.search(body, action.end() if action else 0)
    if action is not None and (final is None or action.start() < final.start()):
        if observation is not None:
            repairs.append("invented_observation")
        stop = observation.start() if observation is not None else len(body)
        thought = strip_thought_label(body[: action.start()])
        name_line, *same_line_input = _INLINE_INPUT.split(_OBSERVATION_INLINE.split(action.group(1), 1)[0], 1)
        name = read_tool_name(name_line, "Action")
        raw_input = same_line_input[0].strip() if same_line_input else _action_input(body[action.end(): stop])
        if toolllama and name.lower() == FINISH_TOOL.lower():
            return _finish(thought, raw_input, repairs)
        args = _react_args(raw_input, name, tools, repairs, json_only=toolllama)
        return ParsedAction(thought, ToolCall(name, args), repaired=tuple(repairs))
    if final is not None:
        answer = body[final.end():]
        if observation is not None and observation.start() > final.end():
            answer = answer[: observation.start() - final.end()]
        answer = answer.strip()
        if not answer:
            raise Fail("empty", "the Final Answer is empty")
        if toolllama:
            repairs.append("react_final_answer")
        return ParsedAction(strip_thought_label(body[: final.start()]), final_answer=answer, repaired=tuple(repairs))
    raise Fail("no_action", "no 'Action:' line and no 'Final Answer:' found")


def strip_thought_label(prefix: str) -> str:
    """The thought in the text before an action: what follows the last line-initial ``Thought:`` label, stripped."""
    marks = list(_THOUGHT.finditer(prefix))
    return (prefix[marks[-1].end():] if marks else prefix).strip()


def _action_input(segment: str) -> str | None:
    match = _ACTION_INPUT.search(segment)
    return segment[match.end():].strip() if match is not None else None


def _react_args(raw: str | None, name: str, tools: Any, repairs: list[str], *, json_only: bool) -> dict[str, Any]:
    if raw is None or raw == "":
        repairs.append("missing_action_input")
        return {}
    if raw.startswith(("{", "```")):
        try:
            return read_tool_args(load_json_object(raw, repairs, what="Action Input"), repairs)
        except Fail:  # e.g. a lone "{": keep the thought and the tool, without arguments
            repairs.append("unreadable_action_input")
            return {}
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        raw = raw[1:-1]
    if json_only:
        repairs.append("plain_action_input")
    return {first_parameter(name, tools): raw}


def _finish(thought: str, raw: str | None, repairs: list[str]) -> ParsedAction:
    if not raw:
        raise Fail("missing_field", "Finish needs an Action Input with 'return_type'")
    obj = load_json_object(raw, repairs, what="Finish input")
    kind = require_field(obj, "return_type", "the Finish input")
    if kind == GIVE_UP:
        return ParsedAction(thought, give_up=True, repaired=tuple(repairs))
    if kind != GIVE_ANSWER:
        raise Fail("bad_field_type", f"return_type must be {GIVE_ANSWER!r} or {GIVE_UP!r}, got {kind!r}")
    answer = text_value(obj.get("final_answer"))
    if not answer:
        raise Fail("missing_field", "Finish(give_answer) has no 'final_answer'")
    return ParsedAction(thought, final_answer=answer, repaired=tuple(repairs))


# Detection order matters: the first format whose marker a prompt contains wins (conclusion has none: the fallback).
BUILTIN_FORMATS: dict[str, OutputFormat] = {f.name: f for f in (
    ModelScopeFormat(), ToolLlamaFormat(), AutoGptFormat(), TaskJsonFormat(), ReactFormat(), ConclusionFormat())}
