"""Reading model outputs the way the scorer does (one half of :mod:`labkit.evaluate.scorer`): which output format
a benchmark template asks for, which parser reads it under the scoring options, one planning step read as the
official script or labkit reads it (:func:`read_step`) and a concluding answer
(:func:`read_conclusion`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from labkit.evaluate import kagentbench as kb
from labkit.evaluate.differences import ScoringOptions
from labkit.evaluate.kagentbench import NONE, Step
from labkit.parsing import clean_tool_name, first_parameter, read_json_object, strip_thought_label
from labkit.types import ParseError

# KAgentBench's prompt_input keys -> labkit.parsing output formats
KAGENTBENCH_FORMATS: dict[str, str] = {"ReACT": "react", "AutoGPT": "autogpt", "ToolLlama": "toolllama",
                                       "ModelScope": "modelscope", "KuaiAgent": "task_json", "Kuaiagent": "task_json"}
repeats_last_task = kb.repeats_last_task


def output_format_of(record: Mapping[str, Any], template: str) -> str:
    """The output format a record's template asks for (our ``output_formats`` field, else KAgentBench's key name)."""
    formats = record.get("output_formats") or {}
    if template in formats:
        return str(formats[template])
    if record.get("type") == "conclusion" and template in ("KuaiAgent", "Kuaiagent"):
        return "conclusion"
    if template in KAGENTBENCH_FORMATS:
        return KAGENTBENCH_FORMATS[template]
    if record.get("type") in ("conclusion", "profile"):
        return "conclusion"
    from labkit.parsing import detect_format
    prompts = record.get("prompt_input")
    return detect_format(str(prompts.get(template, "")) if isinstance(prompts, Mapping) else "")


def parser_for(record: Mapping[str, Any], template: str, options: ScoringOptions) -> str | None:
    """Which official parser reads this template: its own name, else our ``output_formats``; None = unknown key."""
    if template in kb.PARSER_KEYS:
        return template
    fmt = (record.get("output_formats") or {}).get(template)
    if fmt in kb.FORMAT_PARSERS:
        return kb.FORMAT_PARSERS[fmt]
    if isinstance(fmt, str) and _declared(fmt):
        return fmt  # a format declared in a template file: no official parser; read by its own format object
    if options.no_parse_reuse:
        return kb.FORMAT_PARSERS.get(output_format_of(record, template), "conclusion")
    return None


def _declared(fmt: str) -> bool:
    from labkit.errors import UnknownNameError
    from labkit.formats import get_format

    try:
        return get_format(fmt).declared
    except UnknownNameError:
        return False


# ---------------------------------------------------------------- reading one planning output

_LENIENT_MARKERS = [(re.compile(r"\baction[ \t]*input[ \t]*:", re.IGNORECASE), "Action Input:"),
                    (re.compile(r"\baction[ \t]*:", re.IGNORECASE), "Action:"),
                    (re.compile(r"\bfinal[ \t]*answer[ \t]*:", re.IGNORECASE), "Final Answer:"),
                    (re.compile(r"\bthought[ \t]*:", re.IGNORECASE), "Thought:"),
                    (re.compile(r"\bobservation[ \t]*:", re.IGNORECASE), "Observation:")]
_REACT_MARK = re.compile(r"Action:|Final Answer:")
_FINAL_ANSWER = re.compile(r"Final Answer:")
_THINK_START, _THINK_END = "<|startofthink|>", "<|endofthink|>"
_JSON_START = ("{", "```")


def _normalise_markers(text: str) -> str:
    for pattern, marker in _LENIENT_MARKERS:
        text = pattern.sub(marker, text)
    return text


def _unquote(raw: str) -> str:
    return raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'" else raw


def _json_object(text: Any, o: ScoringOptions) -> dict[str, Any] | None:
    obj = kb.read_json(text)
    if obj is None and o.tolerant_json and isinstance(text, str):
        found = read_json_object(text)
        obj = found if isinstance(found, dict) else None
    return obj


def _clean_name(step: Step, o: ScoringOptions) -> Step:
    if o.tool_name_cleanup and isinstance(step.tool_name, str) and step.tool_name != NONE:
        step.tool_name = clean_tool_name(step.tool_name) or NONE
    return step


def _has_final_answer(text: str) -> bool:
    mark = _FINAL_ANSWER.search(text)
    return mark is not None and bool(text[mark.end():].strip())


def _finishes(step: Step) -> Step:
    step.tool_name, step.tool_args = "task_complete", {}
    return step


def _react(text: Any, funcs: Sequence[Any], o: ScoringOptions) -> Step:
    step = kb.parse_react(text, funcs)
    if o.react_thought:
        mark = _REACT_MARK.search(text)
        step.thought = strip_thought_label(text[: mark.start()] if mark else text)
    official_name = step.tool_name
    _clean_name(step, o)
    raw = step.action_input
    if official_name != NONE and raw is not None:
        obj = _json_object(raw, o) if o.react_json_input and raw.startswith(_JSON_START) else None
        if obj is not None:
            step.tool_args = obj
        elif o.react_plain_input:
            step.tool_args = {first_parameter(step.tool_name, funcs): _unquote(raw)}
        elif step.tool_name != official_name:  # cleaned name: look its parameter up again, the official way
            key = kb.first_property(step.tool_name, funcs)
            step.tool_args = {key: raw} if key != NONE else {}
    if o.final_answer_task_complete and step.tool_name == NONE and _has_final_answer(text):
        _finishes(step)
    return step


def _toolllama(text: Any, funcs: Sequence[Any], o: ScoringOptions) -> Step:
    step = _clean_name(kb.parse_toolllama(text), o)
    if not isinstance(text, str):
        return step
    if o.toolllama_thought and isinstance(step.thought, list):
        mark = text.find("Action:")
        step.thought = strip_thought_label(text[:mark] if mark != -1 else text)
    raw = step.action_input
    if raw and step.tool_args == {}:
        if raw.startswith(_JSON_START):
            step.tool_args = (_json_object(raw, o) if o.tolerant_json else None) or {}
        elif o.toolllama_plain_input:
            step.tool_args = {first_parameter(step.tool_name, funcs): _unquote(raw)}
    if o.final_answer_task_complete:
        name = step.tool_name
        if isinstance(name, str) and name.lower() == "finish" and step.tool_args.get("return_type") == "give_answer":
            _finishes(step)
        elif name == NONE and _has_final_answer(text):
            _finishes(step)
    return step


def _modelscope(text: Any, o: ScoringOptions) -> Step:
    inner = kb.think_block(text)
    start = text.find(_THINK_START)
    if inner is None and o.modelscope_unterminated and start != -1 and _THINK_END not in text[start:]:
        inner = text[start + len(_THINK_START):].strip()
    step = Step() if inner is None else kb.modelscope_fields(_json_object(inner, o))
    if o.modelscope_thought and start != -1:
        step.thought = text[:start].strip()
    _clean_name(step, o)
    if o.final_answer_task_complete and start == -1 and text.strip():
        _finishes(step)
    return step


def read_step(text: Any, parser: str, funcs: Sequence[Any] = (), options: ScoringOptions | None = None) -> Step:
    """One planning output -> :class:`Step` (official parse + the labkit rules switched on).

    ``parser`` is an official key (``ReACT``, ``AutoGPT``, ``ToolLlama``, ``ModelScope``, ``KuaiAgent``) or
    ``conclusion``. Raises :class:`OfficialCrash` where the official parser itself raises.
    """
    o = options if options is not None else ScoringOptions.labkit()
    if parser in ("ReACT", "ToolLlama") and o.lenient_markers and isinstance(text, str):
        text = _normalise_markers(text)
    if parser == "ReACT":
        return _react(text, funcs, o)
    if parser == "ToolLlama":
        return _toolllama(text, funcs, o)
    if parser == "ModelScope":
        return _modelscope(text, o)
    if parser in ("AutoGPT", "KuaiAgent"):
        fields_of = kb.autogpt_fields if parser == "AutoGPT" else kb.kuaiagent_fields
        return _clean_name(fields_of(_json_object(text, o)), o)
    if parser != "conclusion" and _declared(parser):
        return _declared_step(text, parser, funcs, o)
    step = Step(thought="")  # a planning template whose prompt asks for a plain answer
    if o.final_answer_task_complete and isinstance(text, str) and text.strip():
        _finishes(step)
    return step


def _declared_step(text: Any, fmt: str, funcs: Sequence[Any], o: ScoringOptions) -> Step:
    """A declared format's output, read by its format object (the official script has no parser for it)."""
    from labkit.formats import get_format

    res = get_format(fmt).parse(text, list(funcs) or None)
    if isinstance(res, ParseError):
        return Step()
    if res.call is not None:
        return _clean_name(Step(res.thought, res.call.name, dict(res.call.args)), o)
    step = Step(thought=res.thought)
    return _finishes(step) if res.final_answer is not None and o.final_answer_task_complete else step


def read_conclusion(text: object, output_format: str) -> str:
    """labkit's answer extraction (switch ``answer_extraction``): the answer text of a concluding output ('' when
    the model called a tool instead of answering). AutoGPT's and ToolLlama's cleaning are the official rules
    (:func:`labkit.evaluate.kagentbench.clean_conclusion`'s markers and :func:`~labkit.evaluate.kagentbench.
    unquote_toolllama`), read at the first marker only and trimmed; other formats are read by their parser."""
    import json

    s = "" if text is None else (json.dumps(text, ensure_ascii=False) if isinstance(text, dict) else str(text))
    s = s.strip()
    if not s:
        return ""
    if output_format == "autogpt":  # KAgentBench's cleaning
        if kb.AUTOGPT_SEARCH in s:
            return ""
        if kb.AUTOGPT_RESPONSE in s:
            return s.split(kb.AUTOGPT_RESPONSE, 1)[1].removesuffix('")').strip()
    if output_format == "toolllama" and kb.TOOLLLAMA_ANSWER in s:
        return kb.unquote_toolllama(s.split(kb.TOOLLLAMA_ANSWER, 1)[1]).strip()
    if output_format in ("conclusion", "", None):
        return s
    from labkit.parsing import parse_output
    from labkit.types import ParsedAction

    res = parse_output(s, output_format)
    if isinstance(res, ParsedAction):
        if res.final_answer is not None:
            return res.final_answer.strip()
        if res.call is not None and res.call.name == "task_complete":
            args = res.call.args
            return str(args.get("response") or args.get("reason") or "").strip()
        if res.call is not None:
            return ""
    return s
