"""Model output text -> one agent step (:class:`ParsedAction`) or a typed :class:`ParseError` - by format *name*.

A thin facade over :mod:`labkit.formats`, where each output format is one object owning its parser, gold renderer,
stop markers and layout hints (the six built-ins: ``react``, ``toolllama``, ``task_json`` (KAgent planning JSON),
``autogpt``, ``modelscope``, ``conclusion``; plus any format a loaded template file declares). Parsing never
raises; it is tolerant where a format allows (JSON in code fences, prose around the JSON, single quotes / trailing
commas / unquoted keys fixed by ``json_repair``) and every such fix is named in ``ParsedAction.repaired``. A step is
kept whenever its tool name can be read: a missing ``task_name``, arguments that are not an object or an unreadable
``Action Input`` give an empty thought / ``{}`` arguments (named in ``repaired``) instead of an error, and one-line
ReAct (``Thought: … Action: … Action Input: …``) is read too. :func:`render_gold` writes the canonical text of a
step in each format, and :func:`detect_format` tells which format a rendered prompt asks for. The scorer reuses the
pieces: :func:`read_json_object`, :func:`clean_tool_name`, :func:`strip_thought_label`, :func:`first_parameter`,
:func:`strip_tail`.
"""

from __future__ import annotations

from typing import Any

from labkit.errors import UnknownNameError
from labkit.formats import (
    BUILTIN_FORMATS,
    ERROR_CODES,
    FINISH_TOOL,
    GIVE_ANSWER,
    GIVE_UP,
    OUTPUT_FORMATS,
    THINK_END,
    THINK_START,
    detect_format,
    get_format,
    known_formats,
)
from labkit.formats.base import strip_tail
from labkit.formats.builtin import strip_thought_label
from labkit.formats.jsontext import clean_tool_name, first_parameter, read_json_object
from labkit.types import ParsedAction, ParseError, ParseResult, ToolCall

# Marker strings the format section of a prompt contains, checked in this order (first hit wins).
FORMAT_MARKERS: tuple[tuple[str, str], ...] = tuple((f.name, m) for f in BUILTIN_FORMATS.values() for m in f.markers)

__all__ = ["parse_output", "render_gold", "detect_format", "ERROR_CODES", "OUTPUT_FORMATS", "FORMAT_MARKERS",
           "THINK_START", "THINK_END", "FINISH_TOOL", "GIVE_ANSWER", "GIVE_UP", "read_json_object", "clean_tool_name",
           "strip_thought_label", "first_parameter", "strip_tail"]


def parse_output(text: Any, output_format: str, tools: Any = None) -> ParseResult:
    """Read one model output in ``output_format``. Never raises; bad input gives a :class:`ParseError`.

    ``tools`` (a ToolRegistry, Tools, or function-spec dicts) lets ReAct map a plain ``Action Input`` string onto
    the tool's first required parameter.
    """
    if not isinstance(text, str):
        return ParseError("not_text", f"expected str, got {type(text).__name__}", raw=repr(text)[:200])
    try:
        fmt = get_format(output_format)
    except (UnknownNameError, TypeError):  # an unknown (or unhashable) format name is a typed error, never a raise
        return ParseError("unknown_format", f"unknown output format {output_format!r}; known: "
                          f"{', '.join(known_formats())}", raw=text)
    return fmt.parse(text, tools)


def render_gold(call_or_answer: ToolCall | str | ParsedAction, output_format: str, thought: str = "", *,
                reasoning: str = "", plan: str = "", criticism: str = "") -> str:
    """Canonical output text for one step: a tool call, a final answer (str) or a ParsedAction (incl. give-up).

    ``task_json`` and ``autogpt`` have no answer form (finish with ``ToolCall("task_complete")`` and a conclusion
    template); ``conclusion`` has no call form. Those combinations, and unknown formats, raise ``ValueError``.
    """
    try:
        fmt = get_format(output_format)
    except (UnknownNameError, TypeError):
        raise ValueError(f"unknown output format {output_format!r}; known: {', '.join(known_formats())}") from None
    return fmt.render(call_or_answer, thought, reasoning=reasoning, plan=plan, criticism=criticism)
