"""A record of one agent run: every step's prompt, raw output, parsed action and tool observation.

The step record itself (:class:`~labkit.records.TraceStep`, with its validator) and the JSON form of a trace
(:class:`~labkit.types.TraceDict`) live at the bottom layer, so the data and evaluation stages read saved traces with
the same types.
"""

from __future__ import annotations

import copy
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.jsonl import append_jsonl, iter_jsonl, require
from labkit.records import TraceStep, parsed_to_dict, trace_steps
from labkit.types import ParseErrorDict, ToolCallDict, TraceDict, TraceStepDict

STOP_REASONS = ("finished", "max_steps", "parse_error", "give_up", "repeated_call")


@dataclass
class Trace:
    query: str
    template: str
    model: str
    steps: list[TraceStep] = field(default_factory=list)
    final_answer: str | None = None
    stopped: str = "max_steps"
    conclusion_template: str | None = None
    restarts: int = 0  # give_up_and_restart attempts that started over (see labkit.agent.loop.run_steps)

    @property
    def error(self) -> ParseErrorDict | None:
        """The parse error that stopped the run (``{"ok": False, "code", "message"}``), if any."""
        errors = [s.parsed for s in self.steps if not s.ok]
        return errors[-1] if errors else None

    @property
    def calls(self) -> list[ToolCallDict]:
        """The calls of the steps that parsed, in order (``{"name", "args"}``)."""
        return [s.parsed["call"] for s in self.steps if s.ok and s.parsed.get("call")]

    def to_dict(self) -> TraceDict:
        """The trace as JSON, keys in field order (as ``dataclasses.asdict`` writes it); copies, never views."""
        return {"query": self.query, "template": self.template, "model": self.model,
                "steps": [_step_dict(s) for s in self.steps], "final_answer": self.final_answer,
                "stopped": self.stopped, "conclusion_template": self.conclusion_template, "restarts": self.restarts}

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, path: str | Path = "<dict>", line: int = 0) -> Trace:
        for name, typ in (("query", str), ("template", str), ("model", str), ("steps", list), ("stopped", str)):
            require(d, name, typ, path=path, line=line)
        steps = trace_steps(d, path=path, line=line)
        return cls(d["query"], d["template"], d["model"], steps, d.get("final_answer"), d["stopped"],
                   d.get("conclusion_template"), int(d.get("restarts", 0)))

    def save_jsonl(self, path: str | Path) -> Path:
        """Append this trace as one JSON line (crash-safe)."""
        append_jsonl(path, [self.to_dict()])
        return Path(path)

    @staticmethod
    def load(path: str | Path) -> list[Trace]:
        """Read every trace saved with :meth:`save_jsonl`; a bad line raises DataFileError naming it."""
        return [Trace.from_dict(rec, path=path, line=n) for n, rec in iter_jsonl(path)]

    def _repr_html_(self) -> str:
        e = html.escape
        rows = []
        for i, s in enumerate(self.steps, start=1):
            color = "#fff" if s.ok else "#ffeef0"
            obs = "" if s.observation is None else e(s.observation)
            label = f"{i} (结论)" if s.kind == "conclusion" else str(i)
            rows.append(
                f"<tr style='background:{color};vertical-align:top'><td>{label}</td>"
                f"<td><details><summary>prompt ({len(s.prompt)} chars)</summary>"
                f"<pre style='white-space:pre-wrap;max-height:30em;overflow:auto'>{e(s.prompt)}</pre></details></td>"
                f"<td><pre style='white-space:pre-wrap'>{e(s.output)}</pre></td>"
                f"<td><code>{e(s.action_text())}</code></td>"
                f"<td><pre style='white-space:pre-wrap'>{obs}</pre></td></tr>")
        answer = "—" if self.final_answer is None else e(self.final_answer)
        return (f"<div><p><b>query</b>: {e(self.query)}<br><b>model</b>: {e(self.model)} · <b>template</b>: "
                f"{e(self.template)} · <b>stopped</b>: {e(self.stopped)}"
                + (f" · <b>restarts</b>: {self.restarts}" if self.restarts else "") + "</p>"
                "<table style='border-collapse:collapse' border='1' cellpadding='4'><tr><th>#</th><th>prompt</th>"
                "<th>output</th><th>parsed action</th><th>observation</th></tr>" + "".join(rows) +
                f"</table><p><b>final answer</b>: {answer}</p></div>")

    def __str__(self) -> str:
        lines = [f"[{self.model} · {self.template}] {self.query}"]
        for i, s in enumerate(self.steps, start=1):
            lines.append(f"  {i}. {s.action_text()}")
            if s.observation is not None:
                lines.append(f"     -> {s.observation[:200]}")
        lines.append(f"  stopped={self.stopped}; final answer: {self.final_answer}")
        return "\n".join(lines)


def _step_dict(step: TraceStep) -> TraceStepDict:
    return {"prompt": step.prompt, "output": step.output, "parsed": copy.deepcopy(step.parsed),
            "observation": step.observation, "kind": step.kind, "tool_ok": step.tool_ok,
            "completion_tokens": step.completion_tokens, "tool_error": step.tool_error}


__all__ = ["Trace", "TraceStep", "parsed_to_dict", "STOP_REASONS"]
