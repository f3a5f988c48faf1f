"""Tool and ToolRegistry: KAgentSys-style specs, OpenAI schemas, and a `call` that never raises.

What goes back into a prompt is bounded: an observation longer than :data:`MAX_OBSERVATION_CHARS` is cut with a
marked truncation, and a value echoed in an error message (a tool name, a bad argument) is cut at
:data:`MAX_ECHO_CHARS`. Arguments are untrusted model output: numbers must be finite (``NaN``/``inf`` are rejected,
never turned into the text "nan") and integers at most :data:`~labkit.bounds.MAX_INT_DIGITS` digits long; arguments
nest at most :data:`MAX_ARG_DEPTH` levels and take at most :data:`MAX_ARG_CHARS` characters. All of it is checked
without recursion before the schema is, so a 100k-deep, 5 MB or 5,000-digit argument is a failed call
(``invalid_args``), not a ``RecursionError``, a ``ValueError`` or a 5 MB tool input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import jsonschema

from labkit.bounds import MAX_ECHO_CHARS, MAX_INT_DIGITS, clip, deeper_than, int_digits, show, text_size
from labkit.errors import UnknownNameError
from labkit.types import Observation, ToolCall

MAX_OBSERVATION_CHARS = 2000  # the sandbox's longest real observation is ~430 characters
MAX_ARG_DEPTH = 8  # tool arguments are flat (a query, a date); a little nesting is still read
MAX_ARG_CHARS = 10_000  # the query bank's longest arguments are under 200 characters

__all__ = ["Tool", "ToolRegistry", "ToolInputError", "ToolSpec", "OpenAITool", "clip", "echo", "MAX_OBSERVATION_CHARS",
           "MAX_ECHO_CHARS", "MAX_ARG_DEPTH", "MAX_ARG_CHARS"]


def echo(value: Any) -> str:
    """``repr(value)`` for an error message, clipped to :data:`MAX_ECHO_CHARS`."""
    return show(value, MAX_ECHO_CHARS)


def _bad_number(value: Any, path: str) -> tuple[str, str] | None:
    """The path of the first number inside ``value`` a tool cannot take, and why: NaN/inf, or an integer of more than
    :data:`~labkit.bounds.MAX_INT_DIGITS` digits (args are JSON: dicts, lists, scalars); iterative."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return where, "must be a finite number, got NaN/inf"
        if isinstance(item, int) and int_digits(item) > MAX_INT_DIGITS:
            return where, f"is an integer of about {int_digits(item)} digits (at most {MAX_INT_DIGITS})"
        if isinstance(item, dict):
            stack.extend((v, f"{where}.{k}") for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend((v, f"{where}[{i}]") for i, v in reversed(list(enumerate(item))))
    return None


class ParamSpec(TypedDict):
    type: str
    description: str


class ParamsSpec(TypedDict):
    type: Literal["object"]
    properties: dict[str, ParamSpec]


class ReturnsSpec(TypedDict):
    description: str
    type: str


class ToolSpec(TypedDict):
    """A tool as KAgentSys's Template-1 lists it (:meth:`Tool.spec`): each argument's type and description only."""

    name: str
    description: str
    parameters: ParamsSpec
    returns: ReturnsSpec
    required: list[str]


class OpenAIFunction(TypedDict):
    name: str
    description: str
    parameters: dict[str, Any]  # the tool's JSON schema (free-form), with "required"


class OpenAITool(TypedDict):
    """A tool in OpenAI's ``tools=[...]`` layout (:meth:`Tool.openai_schema`)."""

    type: Literal["function"]
    function: OpenAIFunction


@dataclass
class Tool:
    """One callable tool. ``parameters`` is a JSON schema of type object; ``fn`` takes the args as keywords."""

    name: str
    description: str
    parameters: dict[str, Any]
    returns: str
    fn: Callable[..., str]
    required: list[str] = field(default_factory=list)

    def spec(self) -> ToolSpec:
        """KAgentSys-style description, as the note's Template-1 lists tools."""
        props: dict[str, ParamSpec] = {
            arg: {"type": p.get("type", "string"), "description": p.get("description", "")}
            for arg, p in self.parameters.get("properties", {}).items()
        }
        return {
            "name": self.name,
            "description": self.description,
            "parameters": {"type": "object", "properties": props},
            "returns": {"description": self.returns, "type": "string"},
            "required": list(self.required),
        }

    def openai_schema(self) -> OpenAITool:
        params = dict(self.parameters)
        params["required"] = list(self.required)
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": params}}


def _coerce(args: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Accept the obvious: numbers written as strings, numbers for string fields, 'yes'/'no' for booleans."""
    out = dict(args)
    for name, prop in schema.get("properties", {}).items():
        if name not in out:
            continue
        value, want = out[name], prop.get("type")
        if want in ("number", "integer") and isinstance(value, str):
            text = value.strip().replace(",", "")
            try:
                num = float(text)
            except ValueError:
                continue
            if not math.isfinite(num):  # "NaN", "inf", "1e999": left as text, so the schema rejects them
                continue
            if num.is_integer():
                out[name] = int(num)
            elif want == "number":
                out[name] = num
        elif want == "string" and isinstance(value, bool):
            out[name] = "yes" if value else "no"
        elif want == "string" and isinstance(value, (int, float)):
            out[name] = str(value)
    return out


def _describe_error(tool: Tool, err: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in err.absolute_path)
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return f"Error: {tool.name}: missing required argument {missing!r}; required: {', '.join(tool.required)}"
    if err.validator == "additionalProperties":
        known = ", ".join(tool.parameters.get("properties", {})) or "(none)"
        return f"Error: {tool.name}: {err.message}; known arguments: {known}"
    if err.validator == "type":
        return (f"Error: {tool.name}: argument {path!r} must be of type {err.validator_value}, "
                f"got {type(err.instance).__name__} {echo(err.instance)}")
    if err.validator == "enum":
        return f"Error: {tool.name}: argument {path!r} must be one of {err.validator_value}, got {echo(err.instance)}"
    return f"Error: {tool.name}: argument {path or '(args)'!r}: {clip(err.message, MAX_ECHO_CHARS)}"


class ToolRegistry:
    """An ordered set of tools by name."""

    def __init__(self, tools: Iterable[Tool]):
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"duplicate tool name {tool.name!r}")
            self._tools[tool.name] = tool

    def get(self, name: str) -> Tool:
        if name not in self._tools:
            raise UnknownNameError("tool", name, self.names())
        return self._tools[name]

    def names(self) -> list[str]:
        return list(self._tools)

    def subset(self, names: Iterable[str]) -> ToolRegistry:
        return ToolRegistry(self.get(n) for n in names)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def specs(self) -> list[ToolSpec]:
        return [t.spec() for t in self]

    def call(self, call: ToolCall) -> Observation:
        """Run one call. Never raises: every failure becomes ``Observation(ok=False, text="Error: ...")``; the text
        is at most :data:`MAX_OBSERVATION_CHARS` (plus the truncation marker)."""
        obs = self._call(call)
        obs.text = clip(obs.text, MAX_OBSERVATION_CHARS)
        return obs

    def _call(self, call: ToolCall) -> Observation:
        name = call.name
        if not isinstance(name, str):
            text = f"Error: a tool name must be a string, got {type(name).__name__} {echo(name)}"
            return Observation(text=text, ok=False, error="unknown_tool")
        if name not in self._tools:
            text = f"Error: unknown tool {echo(name)}; available tools: {', '.join(self.names())}"
            return Observation(text=text, ok=False, error="unknown_tool")
        tool = self._tools[name]
        if not isinstance(call.args, dict):
            text = f"Error: {name}: arguments must be a JSON object, got {type(call.args).__name__}"
            return Observation(text=text, ok=False, error="invalid_args")
        if deeper_than(call.args, MAX_ARG_DEPTH):
            text = f"Error: {name}: arguments nest deeper than {MAX_ARG_DEPTH} levels"
            return Observation(text=text, ok=False, error="invalid_args")
        size = text_size(call.args, MAX_ARG_CHARS)
        if size > MAX_ARG_CHARS:
            text = f"Error: {name}: arguments take more than {MAX_ARG_CHARS} characters"
            return Observation(text=text, ok=False, error="invalid_args")
        bad = _bad_number(call.args, "args")
        if bad:
            text = f"Error: {name}: argument {bad[0].removeprefix('args.')!r} {bad[1]}"
            return Observation(text=text, ok=False, error="invalid_args")
        args = _coerce(call.args, tool.parameters)
        schema = {**tool.parameters, "required": list(tool.required)}
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(args), key=lambda e: e.path)
        if errors:
            return Observation(text=_describe_error(tool, errors[0]), ok=False, error="invalid_args")
        try:
            text = tool.fn(**args)
        except ToolInputError as exc:
            return Observation(text=f"Error: {name}: {exc}", ok=False, error="tool_error")
        except Exception as exc:  # a tool bug must not kill an agent run
            return Observation(text=f"Error: {name} failed: {type(exc).__name__}: {exc}", ok=False,
                               error="tool_exception")
        return Observation(text=str(text), ok=True)


class ToolInputError(ValueError):
    """Raised by a tool function for arguments that are well-typed but wrong (unknown city, bad date...)."""
