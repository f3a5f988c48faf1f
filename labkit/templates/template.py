"""The template type: :class:`AgentTemplate` (one template file's metadata and text, rendered into a full agent
prompt) and the vocabulary of template files (families, kinds, languages, the six sections, the file's keys)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.formats import COMPLETE_TOOL, OutputFormat, get_format
from labkit.templates.layouts import _COMPLETE_SPEC, format_history, prompt_task, tool_specs
from labkit.templates.sandbox import compile_text, render_text
from labkit.types import CompletedTask

FAMILIES = ("react", "modelscope", "autogpt", "toolllama", "kagent", "meta")
KINDS = ("planning", "conclusion")
LANGS = ("zh", "en")
SECTIONS = ("profile", "instruction", "tools", "goal", "memory", "format")
REQUIRED_KEYS = ("name", "family", "kind", "output_format", "lang", "sections", "description", "source", "template")
OPTIONAL_KEYS = ("tool_style", "memory_style", "format")
DEFAULT_NOW = "2025-03-15 10:00:00"  # the sandbox world's fixed "now" (labkit.tools.world.TODAY, 10:00)


@dataclass
class AgentTemplate:
    """One template file, loaded and checked (:func:`labkit.templates.load_template`). ``format`` is its output
    format object: callers ask the template, not the format registry by name."""

    name: str
    family: str
    kind: str
    output_format: str
    lang: str
    sections: list[str]
    description: str
    source: str
    path: Path
    text: str = field(repr=False, default="")
    tool_style: str = ""
    memory_style: str = ""
    format_spec: dict[str, Any] | None = None  # the ``format:`` declaration, for a format no built-in has
    fmt: OutputFormat | None = field(default=None, repr=False, compare=False)  # the format object, when known

    def __post_init__(self) -> None:
        self.tool_style = self.tool_style or self.format.tool_style
        self.memory_style = self.memory_style or self.format.memory_style
        self._compiled = compile_text(self.path, self.text)

    def render(self, *, goal: str, tools: Any, memory: Sequence[CompletedTask] = (),
               history: Sequence[tuple[str, str]] = (), knowledge: str = "", now: str | None = None,
               max_steps: int = 5) -> str:
        """The full prompt. ``tools``: a ToolRegistry, a sequence of Tools, or function-spec dicts."""
        specs = tool_specs(tools)
        if self.format.finishes_with_call and COMPLETE_TOOL not in {s["name"] for s in specs}:
            specs.append(dict(_COMPLETE_SPEC))
        context = {
            "goal": goal, "knowledge": knowledge, "now": now or DEFAULT_NOW, "max_steps": max_steps,
            "tools_block": self.format.tools_block(specs, self.tool_style), "tool_specs": specs,
            "tool_names": ", ".join(s["name"] for s in specs),
            "memory_block": self.format.memory_block([prompt_task(t) for t in memory], self.memory_style),
            "history_block": format_history(list(history)),
        }
        text = render_text(self.path, self._compiled, context)
        return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"

    @property
    def format(self) -> OutputFormat:
        """The output format object (built-in, or the one this template declares)."""
        return self.fmt if self.fmt is not None else get_format(self.output_format)
