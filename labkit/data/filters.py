"""Automatic quality filters over labelled traces, with one reason code per problem found.

A labelled record (one (query, template) trace from :mod:`labkit.data.label`) is rejected when any check fails:

* ``unparseable`` — a step's output cannot be read in the template's output format, or only after json_repair;
* ``off_format_text`` — chat filler or text outside the format (only readable by a tolerant parser): the student
  would learn to produce it (an extension of the issue's list);
* ``unknown_tool`` — a call names a tool that was not offered for this sample;
* ``args_schema_invalid`` — the arguments break the tool's JSON schema (same check as ToolRegistry.call);
* ``too_many_steps`` — more than ``MAX_STEPS`` tool steps, or no finish within them;
* ``tool_sequence_mismatch`` — the called tools differ from the gold intent (gold_calls), or the teacher gave up;
* ``ungrounded_conclusion`` — numbers or named entities in the final answer that no observation (or the query)
  contains (checked only when tools were called: a no-tool answer comes from the model's own knowledge).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

import pandas as pd

from labkit.formats import OutputFormat
from labkit.records import FilterReason, LabelledRecord, Query, TraceStep, trace_steps
from labkit.templates import AgentTemplate, load_template
from labkit.tools import ToolRegistry
from labkit.types import ParsedAction, ParseError, ParseResult, ToolCall

MAX_STEPS = 5
FINISH_TOOL = "task_complete"
REASONS: dict[str, str] = {
    "unparseable": "输出无法按模板格式解析 / output does not parse in the template's format",
    "off_format_text": "格式之外的多余文字或客套话 / chat filler or text outside the format",
    "unknown_tool": "调用了未提供的工具 / calls a tool that was not offered",
    "args_schema_invalid": "参数不符合工具的 JSON Schema / arguments break the tool schema",
    "too_many_steps": f"超过 {MAX_STEPS} 步仍未完成 / more than {MAX_STEPS} steps or never finished",
    "tool_sequence_mismatch": "工具调用序列与标注意图不一致 / tool sequence differs from the gold intent",
    "ungrounded_conclusion": "结论中的数字或实体在观察结果中找不到 / answer facts not found in observations",
}
NUMBER_RE = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
TITLE_RE = re.compile(r"《([^》]+)》")
FILLER_RE = re.compile(r"希望(这|以上)?(对你|对您)有(所)?帮助|我来分析一下|以上就是我的|I hope this helps|"
                       r"^\s*(Sure|Certainly|Of course)\b[!,.]|[Ll]et me think about this step by step|"
                       r"[Aa]s an AI( language model)?\b", re.M)
CAPITALISED_RE = re.compile(r"\b[A-Z][a-zA-Z]{2,}\b")


@functools.lru_cache(maxsize=256)
def _template(name: str) -> AgentTemplate:
    return load_template(name)


class VerdictRecord(TypedDict):
    """A :class:`Verdict` as JSON (:meth:`Verdict.to_dict`)."""

    job_id: str
    accepted: bool
    reasons: list[FilterReason]
    repaired: list[str]


@dataclass
class Verdict:
    job_id: str
    reasons: list[FilterReason] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)            # tolerant parser fixes seen (flags for review)

    @property
    def accepted(self) -> bool:
        return not self.reasons

    @property
    def codes(self) -> list[str]:
        return list(dict.fromkeys(r["code"] for r in self.reasons))

    @property
    def flagged(self) -> bool:
        """Needs a human look: rejected, or accepted only thanks to a tolerant repair."""
        return bool(self.reasons or self.repaired)

    def to_dict(self) -> VerdictRecord:
        return {"job_id": self.job_id, "accepted": self.accepted, "reasons": self.reasons, "repaired": self.repaired}


def _numbers(text: str) -> set[str]:
    out = set()
    for n in NUMBER_RE.findall(text):
        n = n.replace(",", "")
        if "." in n:
            n = n.rstrip("0").rstrip(".")
        out.add(n)
    return out


def ungrounded_facts(answer: str, sources: Sequence[str]) -> list[str]:
    """Numbers (two or more digits, or decimals), 《titles》 and capitalised Latin names in ``answer`` that no source
    text contains."""
    source = "\n".join(sources)
    known = _numbers(source)
    missing = [n for n in sorted(_numbers(answer)) if n not in known and (len(n) > 1 or "." in n)]
    lowered = source.lower()
    missing += [t for t in TITLE_RE.findall(answer) if t not in source]
    names = [m.group() for m in CAPITALISED_RE.finditer(answer) if not _sentence_start(answer, m.start())]
    missing += [w for w in dict.fromkeys(names) if w.lower() not in lowered]
    return missing


def _format_checks(v: Verdict, i: int, output: str, repaired: Sequence[str], fmt: OutputFormat) -> None:
    """Strict-format checks on a step the tolerant parser could read."""
    if "json_repair" in repaired:
        v.reasons.append(FilterReason(code="unparseable", step=i, detail="parses only after json_repair"))
    other = [r for r in repaired if r != "json_repair"]
    filler = FILLER_RE.search(output)
    if other or filler:
        detail = f"parser repairs {other}" if other else f"filler text {filler.group()!r}"  # type: ignore[union-attr]
        v.reasons.append(FilterReason(code="off_format_text", step=i, detail=detail))
    elif fmt.opening and not output.lstrip().startswith(fmt.opening):
        v.reasons.append(FilterReason(code="off_format_text", step=i, detail=f"text before {fmt.opening!r}"))


def _sentence_start(text: str, pos: int) -> bool:
    before = text[:pos].rstrip()
    return not before or before[-1] in ".!?。！？:：\n\"'“(（"


def _gold_names(query: Query) -> list[str]:
    return [c["name"] for c in query["gold_calls"] if c["name"] != FINISH_TOOL]


def _read_step(step: TraceStep, fmt: OutputFormat, tools: ToolRegistry, registry: ToolRegistry,
               edited: bool) -> tuple[ParseResult, str | None]:
    """The step's parsed action and the tool's error code, as the agent loop recorded them in the trace. Only a
    step a human edited is parsed (and its call validated by the registry) again."""
    if not edited:
        return step.action, step.tool_error
    parsed = fmt.parse(step.output, tools)
    call = parsed.call if isinstance(parsed, ParsedAction) else None
    if call is None or call.name == FINISH_TOOL or call.name not in tools:
        return parsed, None
    return parsed, registry.call(ToolCall(call.name, dict(call.args))).error


def check_record(rec: LabelledRecord, query: Query, registry: ToolRegistry) -> Verdict:
    """Run every filter over one labelled record; ``query`` is its query-bank record (with gold_calls).

    The filters read the trace (parsed actions, tool error codes); they do not re-parse or re-run tools, except for
    steps listed in ``human_edited_steps``."""
    v = Verdict(rec["job_id"])
    trace = rec["trace"]
    offered = set(rec["tools"])
    tools = registry.subset([n for n in rec["tools"] if n in registry])
    edited = set(rec.get("human_edited_steps", []))
    calls: list[str] = []
    observations: list[str] = []
    final_answer = trace.get("final_answer")
    n_tool_steps = 0
    for i, step in enumerate(trace_steps(trace, path=f"<labelled {rec['job_id']}>")):
        name = rec.get("conclusion_template") if step.kind == "conclusion" else rec["template"]
        fmt = _template(name or rec["template"]).format
        parsed, tool_error = _read_step(step, fmt, tools, registry, i in edited)
        if isinstance(parsed, ParseError):
            v.reasons.append(FilterReason(code="unparseable", step=i, detail=f"{parsed.code}: {parsed.message}"))
            continue
        v.repaired += [f"step {i}: {r}" for r in parsed.repaired]
        _format_checks(v, i, step.output, parsed.repaired, fmt)
        if step.kind == "conclusion":
            final_answer = parsed.final_answer if parsed.final_answer is not None else step.output
            continue
        if parsed.give_up:
            v.reasons.append(FilterReason(code="tool_sequence_mismatch", step=i, detail="gave up and restarted"))
            continue
        if parsed.final_answer is not None:
            final_answer = parsed.final_answer
        if parsed.call is None:
            continue
        calls.append(parsed.call.name)
        if parsed.call.name == FINISH_TOOL:
            continue
        n_tool_steps += 1
        if parsed.call.name not in offered or parsed.call.name not in registry:
            v.reasons.append(FilterReason(code="unknown_tool", step=i, detail=parsed.call.name))
            continue
        if tool_error == "invalid_args":
            v.reasons.append(FilterReason(code="args_schema_invalid", step=i, detail=step.observation or ""))
        if step.observation:
            observations.append(step.observation)
    if n_tool_steps > MAX_STEPS or trace.get("stopped") == "max_steps":
        v.reasons.append(FilterReason(code="too_many_steps", step=None,
                                      detail=f"{n_tool_steps} tool steps, stopped={trace.get('stopped')}"))
    called = [c for c in calls if c != FINISH_TOOL]
    gold = _gold_names(query)
    if not any(r["code"] == "unparseable" for r in v.reasons) and called != gold:
        v.reasons.append(FilterReason(code="tool_sequence_mismatch", step=None,
                                      detail=f"called {called}, gold {gold}"))
    if final_answer and observations:  # without tool results the answer comes from the model's own knowledge
        missing = ungrounded_facts(final_answer, [query["query"], *observations])
        if missing:
            v.reasons.append(FilterReason(code="ungrounded_conclusion", step=None,
                                          detail=f"not in observations: {missing}"))
    return v


def filter_records(records: Sequence[LabelledRecord], queries: dict[str, Query],
                   registry: ToolRegistry) -> tuple[list[LabelledRecord], list[LabelledRecord], list[Verdict]]:
    """``(accepted, rejected, verdicts)``; verdicts are in input order."""
    verdicts = [check_record(r, queries[r["query_id"]], registry) for r in records]
    accepted = [r for r, v in zip(records, verdicts) if v.accepted]
    rejected = [r for r, v in zip(records, verdicts) if not v.accepted]
    return accepted, rejected, verdicts


def rejection_table(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """One row per reason code: how many samples it rejected and the share of all samples (a sample can have
    several reasons), plus the primary-reason count (first reason only, which sums to the rejected total)."""
    total = max(1, len(verdicts))
    any_count = Counter(c for v in verdicts for c in v.codes)
    primary = Counter(v.codes[0] for v in verdicts if v.codes)
    rows = [{"reason": code, "samples": any_count[code], "primary": primary[code],
             "share": round(any_count[code] / total, 4), "meaning": REASONS[code]} for code in REASONS]
    return pd.DataFrame(rows).set_index("reason")


def plot_rejections(table: pd.DataFrame, ax: Any = None) -> Any:
    """Horizontal bar chart of rejected samples per reason code."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 3))[1]
    table["samples"].iloc[::-1].plot.barh(ax=ax, color="#c0504d")
    ax.set_xlabel("rejected samples")
    ax.set_title("rejections by reason")
    return ax
