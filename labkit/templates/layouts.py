"""What a template puts into its prompt besides its text: the offered tools as spec dicts (``tool_specs``), the
completed tasks bounded for a prompt (``prompt_task``) and the chat history. The layouts themselves (the tool list
and memory in each style) belong to the output format: :meth:`labkit.formats.OutputFormat.tools_block` /
:meth:`~labkit.formats.OutputFormat.memory_block` (:mod:`labkit.formats.layouts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from labkit.bounds import MAX_PROMPT_VALUE_CHARS, clip, clip_value, show, text_size
from labkit.formats import COMPLETE_TOOL
from labkit.types import CompletedTask, ToolCall

_COMPLETE_SPEC = {"name": COMPLETE_TOOL, "description": "Call when the gathered information answers the goal.",
                  "parameters": {"type": "object", "properties": {}}, "returns": "", "required": []}


def tool_specs(tools: Any) -> list[dict[str, Any]]:
    """KAgent-style spec dicts (name, description, parameters, returns, required) from Tools or spec dicts."""
    specs = []
    for tool in tools:
        if hasattr(tool, "spec"):
            spec = dict(tool.spec())
        elif isinstance(tool, dict):
            spec = dict(tool.get("function", tool)) if tool.get("type") == "function" else dict(tool)
        else:
            raise TypeError(f"expected a Tool or a function-spec dict, got {type(tool).__name__}")
        params = spec.get("parameters") or {"type": "object", "properties": {}}
        spec["parameters"] = params
        spec.setdefault("required", list(params.get("required", [])))
        spec.setdefault("description", "")
        specs.append(spec)
    return specs


def prompt_task(task: CompletedTask, limit: int = MAX_PROMPT_VALUE_CHARS) -> CompletedTask:
    """A completed task as a prompt shows it: thought, tool name, arguments and result each within about ``limit``
    characters (long strings cut with a marker, deep or long arguments elided: :func:`labkit.bounds.clip_value`).
    Ordinary tasks come back unchanged."""
    call, args = task.call, task.call.args
    if text_size(args, limit) > limit:
        args = clip_value(args, limit)
    name = clip(call.name, limit) if isinstance(call.name, str) else show(call.name)
    if args is call.args and name == call.name and len(task.task_name) <= limit and len(task.result) <= limit:
        return task
    return CompletedTask(clip(task.task_name, limit), ToolCall(name, args), clip(task.result, limit))


def format_history(history: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"User: {q}\nAssistant: {a}" for q, a in history)
