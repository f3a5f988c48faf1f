"""Tool and memory layouts: how a prompt lists the offered tools and shows the completed tasks, one function per
style, reached through the format object (:meth:`labkit.formats.OutputFormat.tools_block` /
:meth:`~labkit.formats.OutputFormat.memory_block`; a template may name another style than its format's own).

Tool styles (:data:`labkit.formats.TOOL_STYLES`): ``react`` (``Name: x. Description: y. Parameters: {...}`` lines),
``commands`` (KAgent/AutoGPT numbered JSON specs), ``apis`` (ModelScope's JSON list), ``functions`` (ToolLLaMA's
function list with ``Finish``); the prompt vocabulary they share with the built-in formats
(think/exec markers, ToolLLaMA's ``Finish`` and its return types) is defined here. Memory styles (:data:`labkit.formats.MEMORY_STYLES`): ``kagent`` (a JSON list),
``scratchpad`` (ReAct/ToolLLaMA lines), ``modelscope`` (think blocks), ``results`` (``task: result`` lines) and
``own`` (the output format's own layout, :meth:`labkit.formats.OutputFormat.render_memory`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from labkit.types import CompletedTask

THINK_START, THINK_END = "<|startofthink|>", "<|endofthink|>"
EXEC_START = "<|startofexec|>"
FINISH_TOOL = "Finish"  # ToolLLaMA's finishing pseudo-function
GIVE_ANSWER, GIVE_UP = "give_answer", "give_up_and_restart"

FINISH_DESCRIPTION = "Call at the end. Give the answer, or give up and restart if you cannot go on."

ToolSpec = Mapping[str, Any]  # a KAgent-style spec: name, description, parameters (JSON schema), returns, required


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _compact(value: Any) -> str:
    """JSON without spaces: tool specs are the biggest part of a prompt and training runs on a CPU."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _param_summary(spec: ToolSpec) -> dict[str, str]:
    props = spec["parameters"].get("properties") or {}
    return {k: str((v or {}).get("description") or (v or {}).get("type") or "") for k, v in props.items()}


def _react_tools(specs: Sequence[ToolSpec]) -> str:
    return "\n".join(f"Name: {s['name']}. Description: {s['description']}. "
                     f"Parameters: {dumps(_param_summary(s))}" for s in specs)


def _command_tools(specs: Sequence[ToolSpec]) -> str:
    lines = []
    for i, s in enumerate(specs, 1):
        spec = {"name": s["name"], "description": s["description"], "parameters": _param_summary(s)}
        if s.get("required"):
            spec["required"] = list(s["required"])
        lines.append(f"{i}:{_compact(spec)}")
    return "Commands:\n" + "\n".join(lines)


def _api_tools(specs: Sequence[ToolSpec]) -> str:
    return _compact([{"api_name": s["name"], "description": s["description"],
                    "parameters": _param_summary(s), "required": list(s.get("required") or [])} for s in specs])


def _function_tools(specs: Sequence[ToolSpec]) -> str:
    funcs = [{"name": s["name"], "description": s["description"], "parameters": _param_summary(s)} for s in specs]
    finish = {"name": FINISH_TOOL, "description": FINISH_DESCRIPTION,
              "parameters": {"return_type": f"{GIVE_ANSWER} or {GIVE_UP}",
                             "final_answer": "the answer (with give_answer)"}}
    return "\n".join(_compact(f) for f in [*funcs, finish])


def _kagent_memory(memory: Sequence[CompletedTask]) -> str:
    rows = [dumps({"task_id": i, "task_name": t.task_name, "command": t.call.to_dict(), "result": t.result})
            for i, t in enumerate(memory, 1)]
    return "[\n" + ",\n".join(rows) + "\n]"


def _scratchpad_memory(memory: Sequence[CompletedTask]) -> str:
    return "\n".join(f"Thought: {t.task_name}\nAction: {t.call.name}\nAction Input: {dumps(t.call.args)}\n"
                     f"Observation: {t.result}" for t in memory)


def _modelscope_memory(memory: Sequence[CompletedTask]) -> str:
    return "\n".join(f"{t.task_name}{THINK_START}{dumps({'api_name': t.call.name, 'parameters': t.call.args})}"
                     f"{THINK_END}\n<|startofexec|>{t.result}<|endofexec|>" for t in memory)


def _results_memory(memory: Sequence[CompletedTask]) -> str:
    return "\n".join(f"{i}. {t.task_name}: {t.result}" for i, t in enumerate(memory, 1))


TOOL_LAYOUTS: dict[str, Callable[[Sequence[ToolSpec]], str]] = {
    "react": _react_tools, "commands": _command_tools, "apis": _api_tools, "functions": _function_tools}
MEMORY_LAYOUTS: dict[str, Callable[[Sequence[CompletedTask]], str]] = {
    "kagent": _kagent_memory, "scratchpad": _scratchpad_memory, "modelscope": _modelscope_memory,
    "results": _results_memory}  # "own": the format's render_memory (OutputFormat.memory_block)
