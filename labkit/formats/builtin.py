"""The six built-in output formats (react, toolllama, task_json, autogpt, modelscope, conclusion), one object each."""

from __future__ import annotations

import json
import re
from typing import Any

from labkit.formats.base import OutputFormat, dumps
from labkit import parsing as _p  # TEMPORARY: the parser functions move here after the scorer's parsing fix lands
from labkit.formats.jsontext import _convert

_parse_autogpt, _parse_conclusion, _parse_modelscope, _parse_react, _parse_task_json, _parse_toolllama = (
    _convert(f) for f in (_p._parse_autogpt, _p._parse_conclusion, _p._parse_modelscope, _p._parse_react,
                          _p._parse_task_json, _p._parse_toolllama))
from labkit.types import ParsedAction

THINK_START, THINK_END = "<|startofthink|>", "<|endofthink|>"
EXEC_START = "<|startofexec|>"
FINISH_TOOL = "Finish"  # ToolLLaMA's finishing pseudo-function
GIVE_ANSWER, GIVE_UP = "give_answer", "give_up_and_restart"
_ACTION_INPUT_AT = re.compile(r"^[ \t]*Action[ \t]*Input[ \t]*:[ \t]*", re.IGNORECASE | re.MULTILINE)


def _closed_json(text: str) -> bool:
    """True when the first JSON object in ``text`` is complete."""
    start = text.find("{")
    if start == -1:
        return False
    try:
        json.JSONDecoder().raw_decode(text, start)
        return True
    except (json.JSONDecodeError, RecursionError):
        return False


class _ThoughtAction(OutputFormat):
    """ReAct-style lines: ``Thought:`` / ``Action:`` / ``Action Input:``; the tool writes ``Observation:``."""

    stop_markers = ("Observation:",)
    memory_style = "scratchpad"
    opening = "Thought"

    def is_complete(self, text: str) -> bool:
        if super().is_complete(text):
            return True
        marks = list(_ACTION_INPUT_AT.finditer(text))
        if not marks:
            return False
        rest = text[marks[-1].end():]
        if rest.lstrip().startswith("{"):
            return _closed_json(rest)
        return "\n" in rest.strip(" \t") and bool(rest.split("\n", 1)[0].strip())

    def _render_call(self, name: str, args: dict[str, Any], thought: str, extra: dict[str, str]) -> str:
        return f"Thought: {thought}\nAction: {name}\nAction Input: {dumps(args)}"


class ReactFormat(_ThoughtAction):
    name = "react"
    description = "ReAct: Thought / Action / Action Input, or Thought / Final Answer"
    markers = ("Final Answer:",)
    tool_style = "react"

    def _parse(self, body: str, tools: Any) -> ParsedAction:
        return _parse_react(body, tools)

    def _render_answer(self, answer: str, thought: str) -> str:
        return f"Thought: {thought}\nFinal Answer: {answer}"


class ToolLlamaFormat(_ThoughtAction):
    name = "toolllama"
    description = "ToolLLaMA: Thought / Action / Action Input (JSON); ends with the Finish function"
    markers = (GIVE_UP,)
    tool_style = "functions"
    has_give_up_form = True

    def _parse(self, body: str, tools: Any) -> ParsedAction:
        return _parse_toolllama(body, tools)

    def _render_answer(self, answer: str, thought: str) -> str:
        finish = {"return_type": GIVE_ANSWER, "final_answer": answer}
        return f"Thought: {thought}\nAction: {FINISH_TOOL}\nAction Input: {dumps(finish)}"

    def _render_give_up(self, thought: str) -> str:
        return f"Thought: {thought}\nAction: {FINISH_TOOL}\nAction Input: {dumps({'return_type': GIVE_UP})}"


class _JsonTask(OutputFormat):
    memory_style = "kagent"
    tool_style = "commands"
    finishes_with_call = True
    has_answer_form = False

    def is_complete(self, text: str) -> bool:
        return _closed_json(text)


class TaskJsonFormat(_JsonTask):
    name = "task_json"
    description = "KAgent planning JSON: {task_name, command: {name, args}}; ends with task_complete"
    markers = ('"task_name"',)

    def _parse(self, body: str, tools: Any) -> ParsedAction:
        return _parse_task_json(body, tools)

    def _render_call(self, name: str, args: dict[str, Any], thought: str, extra: dict[str, str]) -> str:
        return dumps({"task_name": thought, "command": {"name": name, "args": args}})


class AutoGptFormat(_JsonTask):
    name = "autogpt"
    description = "AutoGPT JSON: {thoughts: {text, reasoning, plan, criticism}, command}; ends with task_complete"
    markers = ('"criticism"',)

    def _parse(self, body: str, tools: Any) -> ParsedAction:
        return _parse_autogpt(body, tools)

    def _render_call(self, name: str, args: dict[str, Any], thought: str, extra: dict[str, str]) -> str:
        thoughts = {"text": thought, "reasoning": extra.get("reasoning", ""), "plan": extra.get("plan", ""),
                    "criticism": extra.get("criticism", "")}
        return dumps({"thoughts": thoughts, "command": {"name": name, "args": args}})


class ModelScopeFormat(OutputFormat):
    name = "modelscope"
    description = "ModelScope: prose, then <|startofthink|>{api_name, parameters}<|endofthink|>; plain text answers"
    markers = (THINK_START,)
    stop_markers = (EXEC_START,)
    memory_style = "modelscope"
    tool_style = "apis"
    answer_has_thought = False

    def is_complete(self, text: str) -> bool:
        return super().is_complete(text) or THINK_END in text

    def _parse(self, body: str, tools: Any) -> ParsedAction:
        return _parse_modelscope(body, tools)

    def _render_call(self, name: str, args: dict[str, Any], thought: str, extra: dict[str, str]) -> str:
        return f"{thought}{THINK_START}{dumps({'api_name': name, 'parameters': args})}{THINK_END}"

    def _render_answer(self, answer: str, thought: str) -> str:
        return answer


class ConclusionFormat(OutputFormat):
    name = "conclusion"
    description = "Conclusion (KAgent Template-2): the answer as plain text"
    memory_style = "results"
    tool_style = "commands"
    has_call_form = False
    answer_has_thought = False

    def is_complete(self, text: str) -> bool:
        return False  # free text: only the end of turn ends it

    def _parse(self, body: str, tools: Any) -> ParsedAction:
        return _parse_conclusion(body, tools)

    def _render_answer(self, answer: str, thought: str) -> str:
        return answer


# Detection order matters: the first format whose marker a prompt contains wins (conclusion has none: the fallback).
BUILTIN_FORMATS: dict[str, OutputFormat] = {f.name: f for f in (
    ModelScopeFormat(), ToolLlamaFormat(), AutoGptFormat(), TaskJsonFormat(), ReactFormat(), ConclusionFormat())}
