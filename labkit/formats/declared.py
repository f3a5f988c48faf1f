"""Output formats declared as data in a template file (no code): one of five styles with named fields.

A template's ``format:`` mapping declares a format no built-in has::

    output_format: xml_why_tool_input          # the format's name
    format:
      style: xml                               # json | yaml | xml | kv | prefixed
      fields: {thought: why, tool: tool, args: input, answer: answer, observation: result}
      finish: answer                           # answer: ends with the answer field; call: ends with task_complete

How each style writes one tool step (``answer`` steps put the answer field where the tool fields are):

=========  ================================================================================================
json       ``{"why": "...", "tool": "web_search", "input": {"query": "..."}}`` (one JSON object)
yaml       ``why: ...`` / ``tool: web_search`` / ``input:`` followed by indented ``key: <JSON value>`` lines
xml        ``<why>...</why>`` ``<tool>web_search</tool>`` ``<input>{"query": "..."}</input>``
kv         ``why=...`` / ``tool=web_search`` / ``input={"query": "..."}`` (one ``key=value`` per line)
prefixed   ``Why: ...`` / ``Tool: web_search`` / ``Input: {"query": "..."}`` (ReAct-style line prefixes)
=========  ================================================================================================

Completed tasks are shown back in the format's own layout (each step as the model wrote it, followed by its
``observation`` field), and generation stops at that field, so the tool - not the model - writes the observation.
Parsing is total and tolerant like the built-ins: fences, prose around the step, a missing closing tag, an invented
observation are read and named in ``ParsedAction.repaired``.
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict, get_args

from labkit.errors import LabkitError
from labkit.formats.base import MEMORY_STYLES, TOOL_STYLES, Fail, OutputFormat, StepNotes, dumps
from labkit.formats.guide import (LINE, LINE_NONEMPTY, STR_NONEMPTY, Choice, Element, ToolShape, Until, W,
                                  json_fields, json_object, seq, tool_choice, yaml_block)
from labkit.formats.jsontext import (
    first_parameter,
    load_json_object,
    load_json_value,
    read_tool_args,
    read_tool_name,
    text_value,
)
from labkit.jsonscan import scan_object
from labkit.types import CompletedTask, ParsedAction, ToolCall

Role = Literal["thought", "tool", "args", "answer", "observation"]


class _FormatSpecFields(TypedDict):
    style: str                   # one of STYLES
    fields: dict[Role, str]      # role -> the label the format writes for it


class FormatSpec(_FormatSpecFields, total=False):
    """A template file's ``format:`` mapping (see the module docstring); :func:`declare` validates one,
    :meth:`DeclaredFormat.spec` writes one (``finish`` always, the others only where they differ from the default).
    """

    finish: str                  # one of FINISHES (default "answer")
    tool_style: str              # one of TOOL_STYLES (default: the style's own, DEFAULT_TOOL_STYLE)
    memory_style: str            # one of MEMORY_STYLES (default "own")
    markers: list[str]           # detection markers (default: the labels as the style writes them)
    description: str


class StepFields(TypedDict, total=False):
    """One step's fields as the parser found them in the text, by role, before they are checked: text in the xml
    and line styles, any JSON value in the json style. The observation field is never kept."""

    thought: object
    tool: object
    args: object
    answer: object


STYLES = ("json", "yaml", "xml", "kv", "prefixed")
ROLES: tuple[Role, ...] = get_args(Role)
FINISHES = ("answer", "call")
SPEC_KEYS: tuple[str, ...] = tuple(FormatSpec.__annotations__)  # style, fields, finish, tool_style, ...
DEFAULT_OBSERVATION = {"json": "observation", "yaml": "observation", "xml": "observation", "kv": "observation",
                       "prefixed": "Observation"}
DEFAULT_TOOL_STYLE = {"json": "commands", "yaml": "react", "xml": "commands", "kv": "react", "prefixed": "react"}
DECLARED_MAX_NEW_TOKENS = 192  # above the longest gold step of the query bank in any style (tests/test_formats.py)
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{2,60}$")
MIN_MARKER_CHARS = 3  # an explicit marker shorter than this ("e") is in almost every prompt
MAX_MARKERS, MAX_MARKER_CHARS = 8, 100
_XML_LABEL = re.compile(r"^[A-Za-z_\u4e00-\u9fff][\w\-.\u4e00-\u9fff]*$")
_FORBIDDEN = {"json": '"\\', "yaml": ":：\"'", "xml": "<>/ ", "kv": "=", "prefixed": ":："}
_SEP = {"yaml": "[:：]", "kv": "=", "prefixed": "[:：]"}


class FormatSpecError(LabkitError):
    """A format declaration is malformed; ``field`` names the offending key (e.g. ``fields.tool``)."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


class DeclaredFormat(OutputFormat):
    """A format built from a declaration (see the module docstring)."""

    declared = True

    def __init__(self, name: str, style: str, fields: Mapping[Role, str], finish: str = "answer", *,
                 tool_style: str = "", memory_style: str = "own", markers: Sequence[str] = (),
                 description: str = ""):
        self.name, self.style, self.finish_by = name, style, finish
        self.labels: dict[Role, str] = {r: fields[r] for r in ROLES if r in fields}
        self.labels.setdefault("observation", DEFAULT_OBSERVATION[style])
        self.finishes_with_call = finish == "call"
        self.has_answer_form = finish == "answer"
        self.tool_style = tool_style or DEFAULT_TOOL_STYLE[style]
        self.memory_style = memory_style
        self.description = description or f"declared {style} format ({', '.join(self.labels.values())})"
        self.explicit_markers = tuple(markers)
        shown = ("thought", "tool", "args") + (("answer",) if self.has_answer_form else ())
        self.markers = tuple(markers) or tuple(self._syntax(self.labels[r]) for r in shown)
        self.until = "json_object" if style == "json" else None
        self.max_new_tokens = DECLARED_MAX_NEW_TOKENS
        self.stop_markers = (self._syntax(self.labels["observation"]),)
        self.opening = None
        if style in _SEP:
            by_len = sorted({lab for lab in self.labels.values()}, key=len, reverse=True)
            indent = "" if style == "yaml" else r"[ \t]*"  # yaml: indented lines belong to the args block
            self._line_re = re.compile(r"^" + indent + r"(" + "|".join(re.escape(x) for x in by_len) + r")[ \t]*" +
                                       _SEP[style] + r"[ \t]?", re.IGNORECASE | re.MULTILINE)
            self._role_of: dict[str, Role] = {lab.casefold(): role for role, lab in reversed(list(self.labels.items()))}

    # -- identity -----------------------------------------------------------------------------------------------
    def spec(self) -> FormatSpec:
        """The declaration as it is written in a template file's ``format:`` mapping."""
        out: FormatSpec = {"style": self.style, "fields": dict(self.labels), "finish": self.finish_by}
        if self.tool_style != DEFAULT_TOOL_STYLE[self.style]:
            out["tool_style"] = self.tool_style
        if self.memory_style != "own":
            out["memory_style"] = self.memory_style
        if self.explicit_markers:
            out["markers"] = list(self.explicit_markers)
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DeclaredFormat) and (self.name, self.spec()) == (other.name, other.spec())

    def __hash__(self) -> int:
        return hash((self.name, json.dumps(self.spec(), sort_keys=True)))

    def _syntax(self, label: str) -> str:
        """How a field's label appears in text of this style (also what a prompt shows)."""
        return {"json": f'"{label}"', "xml": f"<{label}>", "kv": f"{label}=", "yaml": f"{label}:",
                "prefixed": f"{label}:"}[self.style]

    # -- rendering ----------------------------------------------------------------------------------------------
    def _fields_text(self, pairs: list[tuple[Role, Any]]) -> str:
        lab = self.labels
        if self.style == "json":
            return dumps({lab[role]: value for role, value in pairs})
        lines = []
        for role, value in pairs:
            if self.style == "xml":
                lines.append(f"<{lab[role]}>{dumps(value) if role == 'args' else value}</{lab[role]}>")
            elif self.style == "yaml" and role == "args":
                lines.append(f"{lab[role]}:" + ("".join(f"\n  {_yaml_key(k)}: {dumps(v)}" for k, v in value.items())
                                                if value else " {}"))
            else:
                sep = "=" if self.style == "kv" else ": "
                lines.append(f"{lab[role]}{sep}{dumps(value) if role == 'args' else value}")
        return "\n".join(lines)

    def _render_call(self, call: ToolCall, thought: str, extra: StepNotes) -> str:
        return self._fields_text([("thought", thought), ("tool", call.name), ("args", call.args)])

    def _render_answer(self, answer: str, thought: str) -> str:
        return self._fields_text([("thought", thought), ("answer", answer)])

    def observation_text(self, result: str) -> str:
        return self._fields_text([("observation", result)])

    def render_memory(self, tasks: Sequence[CompletedTask]) -> str:
        sep = "\n" if self.style == "json" else "\n\n"
        return sep.join(self.render(t.call, t.task_name) + "\n" + self.observation_text(t.result) for t in tasks)

    # -- parsing ------------------------------------------------------------------------------------------------
    def _parse(self, body: str, tools: Any) -> ParsedAction:
        repairs: list[str] = []
        if self.style == "json":
            values = self._json_values(body, repairs)
        elif self.style == "xml":
            values = self._xml_values(body, repairs)
        else:
            values = self._line_values(body, repairs)
        return self._action(values, tools, repairs)

    def _json_values(self, body: str, repairs: list[str]) -> StepFields:
        obj = load_json_object(body, repairs)
        values: StepFields = {}
        for role, lab in self.labels.items():
            if lab in obj and role != "observation":
                values[role] = obj[lab]
        return values

    def _xml_values(self, body: str, repairs: list[str]) -> StepFields:
        found: list[tuple[int, int, Role, str]] = []  # (start, end, role, text)
        for role, lab in self.labels.items():
            open_tag, close_tag = f"<{lab}>", f"</{lab}>"
            start = body.find(open_tag)
            if start == -1:
                continue
            inner_start = start + len(open_tag)
            end = body.find(close_tag, inner_start)
            if end == -1:
                nxt = [body.find(f"<{o}>", inner_start) for r, o in self.labels.items() if r != role]
                stop = min([n for n in nxt if n != -1], default=len(body))
                found.append((start, stop, role, body[inner_start:stop]))
                repairs.append("unterminated_tag")
            else:
                found.append((start, end + len(close_tag), role, body[inner_start:end]))
        found.sort()
        if found and body[: found[0][0]].strip():
            repairs.append("leading_prose")
        values: StepFields = {}
        for start, end, role, text in found:
            if role == "observation":
                if values:
                    repairs.append("invented_observation")
                    break
                continue
            values.setdefault(role, text.strip())
        kept = [f for f in found if f[2] in values]
        if kept and body[max(e for _, e, _, _ in kept):].strip() and "invented_observation" not in repairs:
            repairs.append("trailing_prose")
        return values

    def _line_values(self, body: str, repairs: list[str]) -> StepFields:
        matches = list(self._line_re.finditer(body))
        if matches and body[: matches[0].start()].strip():
            repairs.append("leading_prose")
        values: StepFields = {}
        for i, m in enumerate(matches):
            role = self._role_of[m.group(1).casefold()]
            end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
            if role == "observation" or role in values:
                if values:
                    repairs.append("invented_observation" if role == "observation" else "extra_step")
                    break
                continue
            text = body[m.end(): end]
            values[role] = text.rstrip() if role == "args" and self.style == "yaml" else text.strip()
        return values

    def _action(self, values: StepFields, tools: Any, repairs: list[str]) -> ParsedAction:
        thought = text_value(values.get("thought"))
        tool = values.get("tool")
        answer = values.get("answer") if self.has_answer_form else None
        if tool not in (None, ""):
            name = read_tool_name(tool, f"the {self.labels['tool']!r} field")
            args = self._args(values.get("args"), name, tools, repairs)
            return ParsedAction(thought, ToolCall(name, args), repaired=tuple(repairs))
        if answer not in (None, ""):
            return ParsedAction(thought, final_answer=text_value(answer), repaired=tuple(repairs))
        if not self.has_answer_form:
            raise Fail("missing_field", f"no {self.labels['tool']!r} field with a tool name")
        raise Fail("no_action", f"neither a {self.labels['tool']!r} nor an {self.labels['answer']!r} field was found")

    def _args(self, raw: Any, name: str, tools: Any, repairs: list[str]) -> dict[str, Any]:
        """The arguments field; like the built-ins, arguments that cannot be read become ``{}`` (named in
        ``repaired``) so the thought and the tool still count."""
        what = f"the {self.labels['args']!r} field"
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            repairs.append("missing_args")
            return {}
        if not isinstance(raw, str):  # json style: already a value
            return read_tool_args(raw, repairs)
        text = raw.strip()
        if text.startswith(("{", "```")):
            try:
                return read_tool_args(load_json_object(text, repairs, what=what), repairs)
            except Fail:
                repairs.append("unreadable_args")
                return {}
        if self.style == "yaml":
            block = _yaml_block(raw)
            if block is None:
                repairs.append("unreadable_args")
                return {}
            return block
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
            text = text[1:-1]
        repairs.append("plain_args")
        return {first_parameter(name, tools): text}

    # -- guided decoding ----------------------------------------------------------------------------------------
    def _call_seq(self, shapes: tuple[ToolShape, ...]) -> tuple[Element, ...] | None:
        """The declared layout (as :meth:`render` writes it): the thought field (a JSON string, one line, or the
        text up to its closing tag), then the tool field with an offered tool and the args field with that tool's
        arguments (a JSON object; yaml: indented ``key: value`` lines) - or, where the format has one, the answer
        field (a JSON string, the text up to its closing tag, or one line). Free text never writes what the parser
        would read as another field: an XML thought or answer holds no field's opening tag, and a line-style answer
        is one line (a later line could start with a field label, which the parser reads case-insensitively)."""
        lab, style = self.labels, self.style
        if style == "json":
            key = lambda role: json.dumps(lab[role], ensure_ascii=False) + ":"  # noqa: E731
            tool = seq(W, '"', tool_choice(shapes, '"', lambda s: seq(", " + key("args"), W, json_object(s), "}")))
            options = [(key("tool"), tool)]
            if self.has_answer_form:
                options.append((key("answer"), seq(W, STR_NONEMPTY, "}")))
            return seq(json_fields([lab["thought"]]), ", ", Choice(options, roomy=True))
        if style == "xml":
            tags = [f"<{label}>" for role, label in lab.items() if role != "observation"]
            args = lambda s: seq(f"\n<{lab['args']}>", json_object(s), f"</{lab['args']}>")  # noqa: E731
            options = [(f"<{lab['tool']}>", (tool_choice(shapes, f"</{lab['tool']}>", args),))]
            if self.has_answer_form:
                options.append((f"<{lab['answer']}>", (Until([(f"</{lab['answer']}>", ())], nonempty=True,
                                                             forbid=tags),)))
            thought = Until([(f"</{lab['thought']}>", seq("\n", Choice(options, roomy=True)))], forbid=tags)
            return seq(f"<{lab['thought']}>", thought)
        sep = {"kv": "=", "yaml": ":", "prefixed": ":"}[style]
        gap: tuple[Element, ...] = () if style == "kv" else (W,)
        if style == "yaml":
            args = lambda s: seq(f"{lab['args']}:", yaml_block(s, _yaml_key))  # noqa: E731
        else:
            args = lambda s: seq(f"{lab['args']}{sep}", *gap, json_object(s))  # noqa: E731
        options = [(f"\n{lab['tool']}{sep}", seq(*gap, tool_choice(shapes, "\n", args)))]
        if self.has_answer_form:
            options.append((f"\n{lab['answer']}{sep}", seq(*gap, LINE_NONEMPTY)))
        return seq(f"{lab['thought']}{sep}", *gap, LINE, Choice(options, roomy=True))

    # -- generation helpers -------------------------------------------------------------------------------------
    def is_complete(self, text: str) -> bool:
        if super().is_complete(text):
            return True
        body = text.strip()
        if self.style == "json":
            return scan_object(body).complete
        if self.style == "xml":
            last = [self.labels["args"]] + ([self.labels["answer"]] if self.has_answer_form else [])
            return any(f"</{lab}>" in text for lab in last)
        if self.style in ("kv", "prefixed"):
            args = [m for m in self._line_re.finditer(text) if self._role_of[m.group(1).casefold()] == "args"]
            if args and "\n" in text[args[0].end():]:
                line = text[args[0].end():].split("\n", 1)[0].strip()
                try:
                    return isinstance(load_json_value(line), dict)
                except Fail:
                    return False
        return False


def _yaml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_\u4e00-\u9fff][\w\-\u4e00-\u9fff]*", key) else dumps(key)


def _yaml_block(raw: str) -> dict[str, Any] | None:
    """Indented ``key: <JSON value>`` lines (a bare word value is read as text); None when a line is not one."""
    out: dict[str, Any] = {}
    for line in raw.splitlines():
        if not line.strip():
            continue
        item = line.strip().removeprefix("- ")
        if item.startswith('"'):
            try:
                key, end = json.JSONDecoder().raw_decode(item)  # a JSON string: no number, no nesting
            except ValueError:
                return None
            rest = item[end:].lstrip()
        else:
            key, colon, rest = item.partition(":")
            rest = colon + rest
        if not rest.startswith(":"):
            return None
        value = rest[1:].strip()
        try:
            out[str(key).strip()] = load_json_value(value) if value else ""
        except Fail:
            out[str(key).strip()] = value.strip("\"'")
    return out


# ---------------------------------------------------------------- declarations

def declare(name: str, spec: Mapping[str, Any], *, builtin_names: Sequence[str] = ()) -> DeclaredFormat:
    """Validate a ``format:`` declaration and build the format; problems raise :class:`FormatSpecError`.

    Only the structure is checked here (known style, one text label per role, labels the style can write). Whether
    the labels make a format that reads back what it writes is :meth:`OutputFormat.round_trip_problems` - the
    Meta-Agent section check drops templates whose format fails it.
    """
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise FormatSpecError(f"a declared format's name must match {NAME_RE.pattern}, got {_show(name)}",
                              "output_format")
    if name in builtin_names:
        raise FormatSpecError(f"{_show(name)} is a built-in format; a declaration needs a new name", "output_format")
    if not isinstance(spec, Mapping):
        raise FormatSpecError(f"expected a mapping, got {type(spec).__name__}")
    unknown = [k for k in spec if k not in SPEC_KEYS]
    if unknown:
        raise FormatSpecError(f"unknown key; allowed: {', '.join(SPEC_KEYS)}", str(unknown[0]))
    style = spec.get("style")
    if style not in STYLES:
        raise FormatSpecError(f"unknown style {_show(style)}; allowed: {', '.join(STYLES)}", "style")
    finish = spec.get("finish", "answer")
    if finish not in FINISHES:
        raise FormatSpecError(f"unknown finish {_show(finish)}; allowed: {', '.join(FINISHES)}", "finish")
    fields = spec.get("fields")
    if not isinstance(fields, Mapping):
        raise FormatSpecError("expected a mapping of role -> label", "fields")
    for key in fields:
        if key not in ROLES:
            raise FormatSpecError(f"unknown role; allowed: {', '.join(ROLES)}", f"fields.{key}")
    needed = ["thought", "tool", "args"] + (["answer"] if finish == "answer" else [])
    for role in needed:
        if role not in fields:
            raise FormatSpecError(f"missing (finish={finish!r} needs {', '.join(needed)})", f"fields.{role}")
    if finish == "call" and "answer" in fields:
        raise FormatSpecError("a format that finishes with a call has no answer field", "fields.answer")
    for role, label in fields.items():
        _check_label(style, role, label)
    markers = spec.get("markers", [])
    if not isinstance(markers, list) or not all(isinstance(m, str) and m.strip() for m in markers):
        raise FormatSpecError("expected a list of non-empty strings", "markers")
    if len(markers) > MAX_MARKERS or any(not MIN_MARKER_CHARS <= len(m.strip()) <= MAX_MARKER_CHARS for m in markers):
        raise FormatSpecError(f"expected at most {MAX_MARKERS} markers of {MIN_MARKER_CHARS} to {MAX_MARKER_CHARS} "
                              f"characters (a shorter one is in almost every prompt), got {_show(markers)}", "markers")
    for key in ("tool_style", "memory_style", "description"):
        if not isinstance(spec.get(key, ""), str):
            raise FormatSpecError("expected text", key)
    for key, allowed in (("tool_style", TOOL_STYLES), ("memory_style", MEMORY_STYLES)):
        if spec.get(key, "") not in ("", *allowed):
            raise FormatSpecError(f"unknown value {_show(spec[key])}; allowed: {', '.join(allowed)}", key)
    return DeclaredFormat(name, style, dict(fields), finish, tool_style=spec.get("tool_style", ""),
                          memory_style=spec.get("memory_style", "") or "own", markers=markers,
                          description=spec.get("description", ""))


def _show(value: Any, limit: int = 200) -> str:
    """``repr(value)`` clipped for an error message (a declaration is untrusted: it may hold anything)."""
    text = reprlib.repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _check_label(style: str, role: str, label: Any) -> None:
    where = f"fields.{role}"
    if not isinstance(label, str) or not label.strip() or label != label.strip():
        raise FormatSpecError(f"a label must be non-empty text without surrounding spaces, got {_show(label)}", where)
    if "\n" in label or any(ch in label for ch in _FORBIDDEN[style]):
        raise FormatSpecError(f"{style} labels cannot contain any of {_FORBIDDEN[style]!r} or a newline, "
                              f"got {_show(label)}", where)
    if style == "xml" and not _XML_LABEL.match(label):
        raise FormatSpecError(f"not a usable XML tag name: {_show(label)}", where)
