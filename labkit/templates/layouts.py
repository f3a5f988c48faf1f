"""Tool and memory layouts: how a prompt shows the offered tools (``tools_block``) and the completed tasks
(``memory_block``) in each template family's style, each value bounded (:func:`prompt_task`).

Tool styles (:data:`labkit.formats.TOOL_STYLES`): ``react`` (``Name: x. Description: y. Parameters: {...}`` lines),
``commands`` (KAgent/AutoGPT numbered JSON specs), ``apis`` (ModelScope's JSON list), ``functions`` (ToolLLaMA's
function list with ``Finish``). Memory styles (:data:`labkit.formats.MEMORY_STYLES`): ``kagent`` (a JSON list),
``scratchpad`` (ReAct/ToolLLaMA lines), ``modelscope`` (think blocks), ``results`` (``task: result`` lines) and
``own`` (the output format's own layout, :meth:`labkit.formats.OutputFormat.render_memory`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from labkit.bounds import MAX_PROMPT_VALUE_CHARS, clip, clip_value, show, text_size
from labkit.formats import (
    COMPLETE_TOOL,
    FINISH_TOOL,
    GIVE_ANSWER,
    GIVE_UP,
    MEMORY_STYLES,
    THINK_END,
    THINK_START,
    TOOL_STYLES,
    OutputFormat,
)
from labkit.types import CompletedTask, ToolCall

_COMPLETE_SPEC = {"name": COMPLETE_TOOL, "description": "Call when the gathered information answers the goal.",
                  "parameters": {"type": "object", "properties": {}}, "returns": "", "required": []}
_FINISH_FUNCTION = {
    "name": FINISH_TOOL,
    "description": "Call at the end. Give the answer, or give up and restart if you cannot go on.",
    "parameters": {"type": "object", "properties": {
        "return_type": {"type": "string", "enum": [GIVE_ANSWER, GIVE_UP]},
        "final_answer": {"type": "string", "description": "the final answer (for give_answer)"}},
        "required": ["return_type"]},
}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _compact(value: Any) -> str:
    """JSON without spaces: tool specs are the biggest part of a prompt and training runs on a CPU."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


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


def _param_summary(spec: dict[str, Any]) -> dict[str, str]:
    props = spec["parameters"].get("properties") or {}
    return {k: str((v or {}).get("description") or (v or {}).get("type") or "") for k, v in props.items()}


def format_tools(specs: Sequence[dict[str, Any]], style: str) -> str:
    """The tools section in one family's style (see module docstring)."""
    if style == "react":
        return "\n".join(f"Name: {s['name']}. Description: {s['description']}. "
                         f"Parameters: {_dumps(_param_summary(s))}" for s in specs)
    if style == "commands":
        lines = []
        for i, s in enumerate(specs, 1):
            spec = {"name": s["name"], "description": s["description"], "parameters": _param_summary(s)}
            if s.get("required"):
                spec["required"] = list(s["required"])
            lines.append(f"{i}:{_compact(spec)}")
        return "Commands:\n" + "\n".join(lines)
    if style == "apis":
        return _compact([{"api_name": s["name"], "description": s["description"],
                        "parameters": _param_summary(s), "required": list(s.get("required") or [])}
                       for s in specs])
    if style == "functions":
        funcs = [{"name": s["name"], "description": s["description"], "parameters": _param_summary(s)}
                 for s in specs]
        finish = {"name": FINISH_TOOL, "description": _FINISH_FUNCTION["description"],
                  "parameters": {"return_type": f"{GIVE_ANSWER} or {GIVE_UP}",
                                 "final_answer": "the answer (with give_answer)"}}
        return "\n".join(_compact(f) for f in [*funcs, finish])
    raise ValueError(f"unknown tool style {style!r}; known: {', '.join(TOOL_STYLES)}")


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


def format_memory(memory: Sequence[CompletedTask], style: str, fmt: OutputFormat | None = None) -> str:
    """Completed tasks in one family's style ('' when there are none); ``own``: the output format's own layout.
    Each task is shown within bounds (:func:`prompt_task`)."""
    if not memory:
        return ""
    memory = [prompt_task(t) for t in memory]
    if style == "own":
        if fmt is None:
            raise ValueError("memory style 'own' needs the output format")
        return fmt.render_memory(memory)
    if style == "kagent":
        rows = [_dumps({"task_id": i, "task_name": t.task_name, "command": t.call.to_dict(), "result": t.result})
                for i, t in enumerate(memory, 1)]
        return "[\n" + ",\n".join(rows) + "\n]"
    if style == "scratchpad":
        return "\n".join(f"Thought: {t.task_name}\nAction: {t.call.name}\nAction Input: {_dumps(t.call.args)}\n"
                         f"Observation: {t.result}" for t in memory)
    if style == "modelscope":
        return "\n".join(f"{t.task_name}{THINK_START}{_dumps({'api_name': t.call.name, 'parameters': t.call.args})}"
                         f"{THINK_END}\n<|startofexec|>{t.result}<|endofexec|>" for t in memory)
    if style == "results":
        return "\n".join(f"{i}. {t.task_name}: {t.result}" for i, t in enumerate(memory, 1))
    raise ValueError(f"unknown memory style {style!r}; known: {', '.join(MEMORY_STYLES)}")


def format_history(history: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"User: {q}\nAssistant: {a}" for q, a in history)
