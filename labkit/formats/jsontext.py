"""Reading JSON out of model text, as every format's parser does (moved from ``labkit.parsing``).

Tolerant where models slip: JSON in code fences, prose around it, single quotes / trailing commas / unquoted keys /
truncation fixed by ``json_repair``, a list holding the object. Every fix is appended to ``repairs`` so the caller
can name it in ``ParsedAction.repaired``; what cannot be read raises :class:`~labkit.formats.base.Fail`.

Bounded where models are hostile: a value nesting deeper than :data:`~labkit.bounds.MAX_JSON_DEPTH` levels or
holding an integer of more than :data:`~labkit.bounds.MAX_INT_DIGITS` digits is not read (``invalid_json``), so no
caller meets a ``RecursionError`` or Python's int-string ``ValueError`` further on (:func:`load_json_value` is the
one entry point for JSON in model text).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import json_repair

from labkit.bounds import MAX_INT_DIGITS, MAX_JSON_DEPTH, deeper_than, int_digits
from labkit.formats.base import Fail
from labkit.types import ParseError

MAX_REPAIR_CHARS = 4_000  # longer broken JSON is reported as invalid instead of handed to json_repair
MAX_REPAIR_DEPTH = 16  # json_repair is very slow on deeply nested garbage; agent JSON nests 3-4 levels
_FENCE = re.compile(r"```[ \t]*(?:json|JSON|Json)?[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)


def read_json_object(text: str) -> dict[str, Any] | ParseError:
    """The JSON object in ``text``, read as tolerantly as :func:`parse_output` reads one (code fences, prose around
    it, ``json_repair`` for single quotes / trailing commas / truncation, a list holding an object)."""
    if not isinstance(text, str):
        return ParseError("not_text", f"expected str, got {type(text).__name__}", raw=repr(text)[:200])
    try:
        return load_json_object(text, [])
    except Fail as fail:
        return ParseError(fail.code, fail.message, raw=text)


def load_json_object(text: str, repairs: list[str], *, what: str = "output") -> dict[str, Any]:
    """Find and read the JSON object in ``text``, tolerating fences, surrounding prose and common syntax slips."""
    fenced = _FENCE.search(text)
    if fenced is not None:
        text = fenced.group(1)
        repairs.append("code_fence")
    brace, bracket = text.find("{"), text.find("[")
    if brace == -1 and bracket == -1:
        raise Fail("no_json", f"no JSON object in the {what}")
    start = brace
    if bracket != -1 and (brace == -1 or bracket < brace):
        try:  # a list of tasks ("json列表") is accepted when it really is JSON
            _raw_decode(text, bracket, what)
            start = bracket
        except (json.JSONDecodeError, Fail):
            start = bracket if brace == -1 else brace
    if text[:start].strip():
        repairs.append("leading_prose")
    try:
        value, end = _raw_decode(text, start, what)
        if text[end:].strip():
            repairs.append("trailing_prose")
    except json.JSONDecodeError:
        value = _repair(text[start:], repairs, what)
    return _as_object(_bounded(value, what), repairs, what)


def load_json_value(text: str, *, what: str = "output") -> Any:
    """One whole JSON value (no repair), bounded like every value read here; ``Fail`` when it cannot be read."""
    try:
        value, end = _raw_decode(text, 0, what)
    except json.JSONDecodeError as exc:
        raise Fail("invalid_json", f"the {what} is not JSON ({exc.msg})") from None
    if text[end:].strip():
        raise Fail("invalid_json", f"the {what} has text after its JSON value")
    return _bounded(value, what)


def _raw_decode(text: str, start: int, what: str) -> tuple[Any, int]:
    """``json`` at ``start``; a number past Python's int-string limit or nesting past the recursion limit raises
    ``Fail`` (not a decode error: repairing cannot help), broken JSON ``json.JSONDecodeError``."""
    try:
        return json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError:
        raise
    except ValueError:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise Fail("invalid_json", f"the JSON in the {what} holds a number too long to read") from None
    except RecursionError:
        raise Fail("invalid_json", f"the JSON in the {what} nests deeper than {MAX_JSON_DEPTH} levels") from None


def _bounded(value: Any, what: str) -> Any:
    if deeper_than(value, MAX_JSON_DEPTH):
        raise Fail("invalid_json", f"the JSON in the {what} nests deeper than {MAX_JSON_DEPTH} levels")
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool) and int_digits(item) > MAX_INT_DIGITS:
            raise Fail("invalid_json", f"the JSON in the {what} holds an integer of about {int_digits(item)} digits "
                       f"(at most {MAX_INT_DIGITS})")
    return value


def _repair(candidate: str, repairs: list[str], what: str) -> Any:
    last = max(candidate.rfind("}"), candidate.rfind("]"))
    if last != -1 and candidate[last + 1:].strip():
        candidate = candidate[: last + 1]
        repairs.append("trailing_prose")
    if len(candidate) > MAX_REPAIR_CHARS:  # also keeps json_repair's own number parsing below the int limit
        raise Fail("invalid_json", f"the {what} holds {len(candidate)} chars of broken JSON (too long to repair)")
    if _nesting_depth(candidate) > MAX_REPAIR_DEPTH:
        raise Fail("invalid_json", f"the broken JSON in the {what} nests deeper than {MAX_REPAIR_DEPTH} levels")
    try:
        value = json_repair.loads(candidate)
    except (Exception, RecursionError) as exc:  # json_repair may fail on pathological input
        raise Fail("invalid_json", f"the JSON in the {what} could not be repaired ({type(exc).__name__})")
    if value in ("", None, [], {}):
        raise Fail("invalid_json", f"the JSON in the {what} could not be read")
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
            raise Fail("not_object", f"the JSON in the {what} is a list without an object")
        repairs.append("list_wrapped")
        value = objects[0]
    if not isinstance(value, dict):
        raise Fail("not_object", f"the JSON in the {what} is a {type(value).__name__}, not an object")
    return value


def require_field(obj: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in obj or obj[key] in (None, ""):
        raise Fail("missing_field", f"{what} has no {key!r}")
    return obj[key]


def clean_tool_name(name: str) -> str:
    """A tool name without the spaces, backticks, quotes and brackets models wrap around it ('' when nothing is left)."""
    return name.strip().strip("`'\"[]").strip()


def read_tool_name(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise Fail("bad_field_type", f"{what} must be a string, got {type(value).__name__}")
    name = clean_tool_name(value)
    if not name:
        raise Fail("missing_field", f"{what} is empty")
    return name


def read_tool_args(value: Any, repairs: list[str]) -> dict[str, Any]:
    """Tool arguments; arguments that are not an object are dropped (``{}``) so the thought and tool still count."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        repairs.append("args_not_object")
        return {}
    return dict(value)


def text_value(value: Any) -> str:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


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
