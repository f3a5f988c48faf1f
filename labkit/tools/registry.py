"""Tool and ToolRegistry: KAgentSys-style specs, OpenAI schemas, and a `call` that never raises.

What goes back into a prompt is bounded: an observation longer than :data:`MAX_OBSERVATION_CHARS` is cut with a
marked truncation, and a value echoed in an error message (a tool name, a bad argument) is cut at
:data:`MAX_ECHO_CHARS`. Arguments must be finite: ``NaN``/``inf`` are rejected, never turned into the text "nan".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from labkit.errors import UnknownNameError
from labkit.types import Observation, ToolCall

MAX_OBSERVATION_CHARS = 2000  # the sandbox's longest real observation is ~430 characters
MAX_ECHO_CHARS = 200


def clip(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters, with a marker saying how much was dropped."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated {len(text) - limit} characters]"


def echo(value: Any) -> str:
    """``repr(value)`` for an error message, clipped to :data:`MAX_ECHO_CHARS`."""
    return clip(repr(value), MAX_ECHO_CHARS)


def _non_finite(value: Any, path: str) -> str | None:
    """The path of the first NaN/inf number inside ``value`` (args are JSON: dicts, lists, scalars)."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = _non_finite(v, f"{path}.{k}" if isinstance(value, dict) else f"{path}[{k}]")
        if found:
            return found
    return None


@dataclass
class Tool:
    """One callable tool. ``parameters`` is a JSON schema of type object; ``fn`` takes the args as keywords."""

    name: str
    description: str
    parameters: dict[str, Any]
    returns: str
    fn: Callable[..., str]
    required: list[str] = field(default_factory=list)

    def spec(self) -> dict[str, Any]:
        """KAgentSys-style description, as the note's Template-1 lists tools."""
        props = {
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

    def openai_schema(self) -> dict[str, Any]:
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

    def specs(self) -> list[dict[str, Any]]:
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
        bad = _non_finite(call.args, "args")
        if bad:
            text = f"Error: {name}: argument {bad.removeprefix('args.')!r} must be a finite number, got NaN/inf"
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
