"""Model output text -> one agent step (:class:`ParsedAction`) or a typed :class:`ParseError`.

One parser per output format: ``react``, ``toolllama``, ``task_json`` (KAgent planning JSON), ``autogpt``,
``modelscope`` and ``conclusion``. Parsing never raises; it is tolerant where a format allows (JSON in code
fences, prose around the JSON, single quotes / trailing commas / unquoted keys fixed by ``json_repair``) and every
such fix is named in ``ParsedAction.repaired``. A step is kept whenever its tool name can be read: a missing
``task_name``, arguments that are not an object or an unreadable ``Action Input`` give an empty thought / ``{}``
arguments (named in ``repaired``) instead of an error, and one-line ReAct (``Thought: … Action: … Action Input: …``)
is read too. :func:`render_gold` writes the canonical text of a step in each format, and :func:`detect_format` tells
which format a rendered prompt asks for. The scorer reuses the pieces: :func:`read_json_object`,
:func:`clean_tool_name`, :func:`strip_thought_label`, :func:`first_parameter`, :func:`strip_tail`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import json_repair

from labkit.types import ParsedAction, ParseError, ParseResult, ToolCall

OUTPUT_FORMATS: tuple[str, ...] = ("react", "toolllama", "task_json", "autogpt", "modelscope", "conclusion")

ERROR_CODES: dict[str, str] = {
    "not_text": "the output is not a string",
    "empty": "the output (or its answer part) is empty",
    "unknown_format": "the output format name is not one labkit knows",
    "no_json": "no JSON object found where the format needs one",
    "invalid_json": "JSON found but it could not be read, even after repair",
    "not_object": "the JSON is not an object",
    "missing_field": "a field the format requires is missing or empty",
    "bad_field_type": "a field has the wrong type (e.g. a tool name that is not a string)",
    "no_action": "neither a tool call nor a final answer was found",
    "internal_error": "the parser hit an unexpected condition (a bug; the raw text is kept)",
}

THINK_START, THINK_END = "<|startofthink|>", "<|endofthink|>"
FINISH_TOOL = "Finish"  # ToolLLaMA's finishing pseudo-function
GIVE_ANSWER, GIVE_UP = "give_answer", "give_up_and_restart"

# Marker strings the format section of a prompt contains, checked in this order (first hit wins).
FORMAT_MARKERS: tuple[tuple[str, str], ...] = (
    ("modelscope", THINK_START),
    ("toolllama", GIVE_UP),
    ("autogpt", '"criticism"'),
    ("task_json", '"task_name"'),
    ("react", "Final Answer:"),
)

MAX_REPAIR_CHARS = 4_000  # longer broken JSON is reported as invalid instead of handed to json_repair
MAX_REPAIR_DEPTH = 16  # json_repair is very slow on deeply nested garbage; agent JSON nests 3-4 levels
_TAIL_MARKERS = ("<end_of_turn>", "<eos>", "<start_of_turn>", "</s>")
_FENCE = re.compile(r"```[ \t]*(?:json|JSON|Json)?[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
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


class _Fail(Exception):
    """Internal: carries a ParseError out of nested helpers."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def parse_output(text: Any, output_format: str, tools: Any = None) -> ParseResult:
    """Read one model output in ``output_format``. Never raises; bad input gives a :class:`ParseError`.

    ``tools`` (a ToolRegistry, Tools, or function-spec dicts) lets ReAct map a plain ``Action Input`` string onto
    the tool's first required parameter.
    """
    if not isinstance(text, str):
        return ParseError("not_text", f"expected str, got {type(text).__name__}", raw=repr(text)[:200])
    parser = _PARSERS.get(output_format) if isinstance(output_format, str) else None
    if parser is None:
        return ParseError("unknown_format", f"unknown output format {output_format!r}; known: "
                          f"{', '.join(OUTPUT_FORMATS)}", raw=text)
    body = strip_tail(text).strip()
    if not body:
        return ParseError("empty", "the output is empty", raw=text)
    try:
        return parser(body, tools)
    except _Fail as fail:
        return ParseError(fail.code, fail.message, raw=text)
    except Exception as exc:  # noqa: BLE001 - the contract is "never raises"; the test suite keeps this unused
        return ParseError("internal_error", f"{type(exc).__name__}: {exc}", raw=text)


def strip_tail(text: str) -> str:
    """Cut the text at the first end-of-turn / end-of-sequence marker the model emitted."""
    cut = len(text)
    for marker in _TAIL_MARKERS:
        pos = text.find(marker)
        if pos != -1:
            cut = min(cut, pos)
    return text[:cut]


# ---------------------------------------------------------------- JSON helpers

def read_json_object(text: str) -> dict[str, Any] | ParseError:
    """The JSON object in ``text``, read as tolerantly as :func:`parse_output` reads one (code fences, prose around
    it, ``json_repair`` for single quotes / trailing commas / truncation, a list holding an object)."""
    if not isinstance(text, str):
        return ParseError("not_text", f"expected str, got {type(text).__name__}", raw=repr(text)[:200])
    try:
        return _load_json_object(text, [])
    except _Fail as fail:
        return ParseError(fail.code, fail.message, raw=text)


def _load_json_object(text: str, repairs: list[str], *, what: str = "output") -> dict[str, Any]:
    """Find and read the JSON object in ``text``, tolerating fences, surrounding prose and common syntax slips."""
    fenced = _FENCE.search(text)
    if fenced is not None:
        text = fenced.group(1)
        repairs.append("code_fence")
    brace, bracket = text.find("{"), text.find("[")
    if brace == -1 and bracket == -1:
        raise _Fail("no_json", f"no JSON object in the {what}")
    start = brace
    if bracket != -1 and (brace == -1 or bracket < brace):
        try:  # a list of tasks ("json列表") is accepted when it really is JSON
            json.JSONDecoder().raw_decode(text, bracket)
            start = bracket
        except (json.JSONDecodeError, RecursionError):
            start = bracket if brace == -1 else brace
    if text[:start].strip():
        repairs.append("leading_prose")
    try:
        value, end = json.JSONDecoder().raw_decode(text, start)
        if text[end:].strip():
            repairs.append("trailing_prose")
    except (json.JSONDecodeError, RecursionError):
        value = _repair(text[start:], repairs, what)
    return _as_object(value, repairs, what)


def _repair(candidate: str, repairs: list[str], what: str) -> Any:
    last = max(candidate.rfind("}"), candidate.rfind("]"))
    if last != -1 and candidate[last + 1:].strip():
        candidate = candidate[: last + 1]
        repairs.append("trailing_prose")
    if len(candidate) > MAX_REPAIR_CHARS:
        raise _Fail("invalid_json", f"the {what} holds {len(candidate)} chars of broken JSON (too long to repair)")
    if _nesting_depth(candidate) > MAX_REPAIR_DEPTH:
        raise _Fail("invalid_json", f"the broken JSON in the {what} nests deeper than {MAX_REPAIR_DEPTH} levels")
    try:
        value = json_repair.loads(candidate)
    except (Exception, RecursionError) as exc:  # json_repair may fail on pathological input
        raise _Fail("invalid_json", f"the JSON in the {what} could not be repaired ({type(exc).__name__})")
    if value in ("", None, [], {}):
        raise _Fail("invalid_json", f"the JSON in the {what} could not be read")
    repairs.append("json_repair")
    return value


def _nesting_depth(text: str) -> int:
    """Deepest bracket nesting outside double-quoted strings."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            escaped, in_string = (not escaped and ch == "\\"), in_string and (escaped or ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "}]":
            depth = max(depth - 1, 0)
    return deepest


def _as_object(value: Any, repairs: list[str], what: str) -> dict[str, Any]:
    if isinstance(value, list):
        objects = [v for v in value if isinstance(v, dict)]
        if not objects:
            raise _Fail("not_object", f"the JSON in the {what} is a list without an object")
        repairs.append("list_wrapped")
        value = objects[0]
    if not isinstance(value, dict):
        raise _Fail("not_object", f"the JSON in the {what} is a {type(value).__name__}, not an object")
    return value


def _field(obj: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in obj or obj[key] in (None, ""):
        raise _Fail("missing_field", f"{what} has no {key!r}")
    return obj[key]


def clean_tool_name(name: str) -> str:
    """A tool name without the spaces, backticks, quotes and brackets models wrap around it ('' when nothing is left)."""
    return name.strip().strip("`'\"[]").strip()


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _Fail("bad_field_type", f"{what} must be a string, got {type(value).__name__}")
    name = clean_tool_name(value)
    if not name:
        raise _Fail("missing_field", f"{what} is empty")
    return name


def _args(value: Any, repairs: list[str]) -> dict[str, Any]:
    """Tool arguments; arguments that are not an object are dropped (``{}``) so the thought and tool still count."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        repairs.append("args_not_object")
        return {}
    return dict(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------- per-format parsers

def _parse_task_json(body: str, tools: Any) -> ParsedAction:
    repairs: list[str] = []
    obj = _load_json_object(body, repairs)
    thought = _text(obj.get("task_name"))  # a missing task name loses the thought, not the tool call
    command = _field(obj, "command", "the task")
    if not isinstance(command, dict):
        raise _Fail("bad_field_type", f"'command' must be an object, got {type(command).__name__}")
    name = _name(_field(command, "name", "the command"), "command.name")
    return ParsedAction(thought, ToolCall(name, _args(command.get("args"), repairs)), repaired=tuple(repairs))


def _parse_autogpt(body: str, tools: Any) -> ParsedAction:
    repairs: list[str] = []
    obj = _load_json_object(body, repairs)
    thoughts = obj.get("thoughts")
    thought = _text(thoughts.get("text")) if isinstance(thoughts, dict) else _text(thoughts)
    command = _field(obj, "command", "the reply")
    if not isinstance(command, dict):
        raise _Fail("bad_field_type", f"'command' must be an object, got {type(command).__name__}")
    name = _name(_field(command, "name", "the command"), "command.name")
    return ParsedAction(thought, ToolCall(name, _args(command.get("args"), repairs)), repaired=tuple(repairs))


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
    obj = _load_json_object(inner, repairs, what="think block")
    name = _name(_field(obj, "api_name", "the think block"), "api_name")
    return ParsedAction(thought, ToolCall(name, _args(obj.get("parameters"), repairs)), repaired=tuple(repairs))


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
        name = _name(name_line, "Action")
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
            raise _Fail("empty", "the Final Answer is empty")
        if toolllama:
            repairs.append("react_final_answer")
        return ParsedAction(strip_thought_label(body[: final.start()]), final_answer=answer, repaired=tuple(repairs))
    raise _Fail("no_action", "no 'Action:' line and no 'Final Answer:' found")


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
            return _args(_load_json_object(raw, repairs, what="Action Input"), repairs)
        except _Fail:  # e.g. a lone "{": keep the thought and the tool, without arguments
            repairs.append("unreadable_action_input")
            return {}
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        raw = raw[1:-1]
    if json_only:
        repairs.append("plain_action_input")
    return {first_parameter(name, tools): raw}


def _finish(thought: str, raw: str | None, repairs: list[str]) -> ParsedAction:
    if not raw:
        raise _Fail("missing_field", "Finish needs an Action Input with 'return_type'")
    obj = _load_json_object(raw, repairs, what="Finish input")
    kind = _field(obj, "return_type", "the Finish input")
    if kind == GIVE_UP:
        return ParsedAction(thought, give_up=True, repaired=tuple(repairs))
    if kind != GIVE_ANSWER:
        raise _Fail("bad_field_type", f"return_type must be {GIVE_ANSWER!r} or {GIVE_UP!r}, got {kind!r}")
    answer = _text(obj.get("final_answer"))
    if not answer:
        raise _Fail("missing_field", "Finish(give_answer) has no 'final_answer'")
    return ParsedAction(thought, final_answer=answer, repaired=tuple(repairs))


def first_parameter(tool_name: str, tools: Any) -> str:
    """The parameter a single plain ReAct input belongs to: first required, else first declared, else 'input'."""
    for spec in _iter_specs(tools):
        if spec.get("name") == tool_name:
            required = spec.get("required") or []
            properties = (spec.get("parameters") or {}).get("properties") or {}
            if required:
                return str(required[0])
            if properties:
                return str(next(iter(properties)))
    return "input"


def _iter_specs(tools: Any) -> Iterable[dict[str, Any]]:
    if tools is None or isinstance(tools, (str, bytes)):
        return
    try:
        items = list(tools)
    except TypeError:
        return
    for tool in items:
        if isinstance(tool, dict):
            spec = tool.get("function", tool) if tool.get("type") == "function" else tool
            if isinstance(spec, dict):
                yield spec
        elif hasattr(tool, "name"):
            yield {"name": tool.name, "parameters": getattr(tool, "parameters", {}) or {},
                   "required": list(getattr(tool, "required", []) or [])}


_PARSERS: dict[str, Callable[[str, Any], ParsedAction]] = {
    "react": _parse_react,
    "toolllama": _parse_toolllama,
    "task_json": _parse_task_json,
    "autogpt": _parse_autogpt,
    "modelscope": _parse_modelscope,
    "conclusion": _parse_conclusion,
}


# ---------------------------------------------------------------- gold outputs and format detection

def render_gold(call_or_answer: ToolCall | str | ParsedAction, output_format: str, thought: str = "", *,
                reasoning: str = "", plan: str = "", criticism: str = "") -> str:
    """Canonical output text for one step: a tool call, a final answer (str) or a ParsedAction (incl. give-up).

    ``task_json`` and ``autogpt`` have no answer form (finish with ``ToolCall("task_complete")`` and a conclusion
    template); ``conclusion`` has no call form. Those combinations raise ``ValueError``.
    """
    if output_format not in _PARSERS:
        raise ValueError(f"unknown output format {output_format!r}; known: {', '.join(OUTPUT_FORMATS)}")
    give_up = False
    if isinstance(call_or_answer, ParsedAction):
        thought = thought or call_or_answer.thought
        give_up = call_or_answer.give_up
        call_or_answer = call_or_answer.call or call_or_answer.final_answer or ""
    dumps = lambda v: json.dumps(v, ensure_ascii=False)  # noqa: E731
    if give_up:
        if output_format != "toolllama":
            raise ValueError(f"format {output_format!r} has no give-up form (only toolllama)")
        return f"Thought: {thought}\nAction: {FINISH_TOOL}\nAction Input: {dumps({'return_type': GIVE_UP})}"
    if isinstance(call_or_answer, ToolCall):
        name, args = call_or_answer.name, dict(call_or_answer.args)
        if output_format in ("react", "toolllama"):
            return f"Thought: {thought}\nAction: {name}\nAction Input: {dumps(args)}"
        if output_format == "task_json":
            return dumps({"task_name": thought, "command": {"name": name, "args": args}})
        if output_format == "autogpt":
            thoughts = {"text": thought, "reasoning": reasoning, "plan": plan, "criticism": criticism}
            return dumps({"thoughts": thoughts, "command": {"name": name, "args": args}})
        if output_format == "modelscope":
            return f"{thought}{THINK_START}{dumps({'api_name': name, 'parameters': args})}{THINK_END}"
        raise ValueError("format 'conclusion' has no tool-call form; pass the answer text")
    if not isinstance(call_or_answer, str):
        raise TypeError(f"expected ToolCall, str or ParsedAction, got {type(call_or_answer).__name__}")
    answer = call_or_answer
    if output_format == "react":
        return f"Thought: {thought}\nFinal Answer: {answer}"
    if output_format == "toolllama":
        finish = {"return_type": GIVE_ANSWER, "final_answer": answer}
        return f"Thought: {thought}\nAction: {FINISH_TOOL}\nAction Input: {dumps(finish)}"
    if output_format in ("modelscope", "conclusion"):
        return answer
    raise ValueError(f"format {output_format!r} has no final-answer form; emit ToolCall('task_complete') and "
                     "use a conclusion template")


def detect_format(prompt: str) -> str:
    """Which output format a rendered prompt asks for, from its format section's markers ('conclusion' if none)."""
    for output_format, marker in FORMAT_MARKERS:
        if marker in prompt:
            return output_format
    return "conclusion"
