"""The sandbox tools: a registry of offline, deterministic tools over data/world (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

from labkit.tools import calc, calendar, convert, search, travel, weather, wiki
from labkit.tools.registry import Tool, ToolInputError, ToolRegistry
from labkit.tools.world import TODAY


def task_complete(reason: str = "") -> str:
    return f"Task complete. {reason}".strip()


TASK_COMPLETE = Tool(
    name="task_complete",
    description="Call when you have enough information to answer; no more tools needed.",
    parameters={"type": "object", "additionalProperties": False, "properties": {
        "reason": {"type": "string", "description": "Why the task is complete"}}},
    returns="Confirmation; then write the final answer.",
    fn=task_complete,
    required=[],
)


def all_tools() -> list[Tool]:
    return [*search.TOOLS, *wiki.TOOLS, *weather.TOOLS, *calendar.TOOLS, *calc.TOOLS, *convert.TOOLS,
            *travel.TOOLS, TASK_COMPLETE]


def default_registry() -> ToolRegistry:
    """All sandbox tools over data/world, in a stable order."""
    return ToolRegistry(all_tools())


__all__ = ["TODAY", "Tool", "ToolInputError", "ToolRegistry", "all_tools", "default_registry", "task_complete"]
