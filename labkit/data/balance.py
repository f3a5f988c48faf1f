"""Step-position balance: what the student sees after a tool call.

Every agent sample is one step of a trajectory (``step`` = how many LLM calls came before it). After one tool call
the course data holds more finishes (``task_complete`` or a final answer: the single-call queries) than tool calls
(the multi-call queries going on), so a student that learns "after one call, finish" is right more often than not
and calls ``task_complete`` while a tool is still needed. :func:`balance_steps` oversamples the continuation steps
(a tool call at step index >= 1) until, at every step index, tool calls : finishes reaches the ``step_balance``
ratio of the mode's ``data`` section (or each continuation sample has ``max_copies`` copies). The copies are
chosen with a seeded shuffle, every continuation sample of a step is copied once before any is copied twice, and
each copy gets its own id (``<id>#bal<k>``). :func:`step_action_table` is the step index x action table that
stats.json stores before and after.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import TypedDict

import pandas as pd

from labkit.formats import OutputFormat
from labkit.records import Sample, TraceStep
from labkit.types import ParsedAction

FINISH_TOOL = "task_complete"
ACTIONS = ("call", "finish", "conclusion", "other")
MAX_COPIES = 3  # at most this many copies of one continuation sample (the original included)

StepActions = dict[str, dict[str, int]]  # the step x action table as stats.json stores it: {"<step>": {action: n}}


class StepBalance(TypedDict):
    """What :func:`balance_steps` did at one step index."""

    call: int                    # continuation (tool call) samples at this step
    finish: int
    wanted: int                  # copies needed for the ratio
    added: int
    capped: bool                 # max_copies stopped it short


class BalanceInfo(TypedDict):
    """:func:`balance_steps`' report (stats.json ``step_balance``, and ``step_actions`` = before / after)."""

    ratio: float | None
    seed: int
    max_copies: int
    added: int
    by_step: dict[str, StepBalance]
    before: StepActions
    after: StepActions


def step_action(step: TraceStep, fmt: OutputFormat | None = None) -> str:
    """What one trace step does: ``call`` (a tool other than task_complete), ``finish`` (task_complete or a final
    answer), ``conclusion`` (the Template-2 step) or ``other`` (unparseable, give up). ``fmt``: read the output
    again in that format (a step a human edited: the trace's parse is the teacher's output)."""
    if step.kind == "conclusion":
        return "conclusion"
    parsed = fmt.parse(step.output) if fmt is not None else step.action
    if not isinstance(parsed, ParsedAction) or parsed.give_up:
        return "other"
    if parsed.call is not None:
        return "finish" if parsed.call.name == FINISH_TOOL else "call"
    return "finish" if parsed.final_answer is not None else "other"


def step_action_table(samples: Sequence[Sample]) -> pd.DataFrame:
    """Agent samples per step index (rows) and action (columns ``call, finish, conclusion, other``)."""
    counts = Counter((int(s["step"]), s.get("action", "other")) for s in samples if s.get("source") == "agent")
    steps = sorted({st for st, _ in counts})
    table = pd.DataFrame([[counts.get((st, a), 0) for a in ACTIONS] for st in steps], index=steps, columns=ACTIONS)
    table.index.name = "step"
    return table


def table_dict(table: pd.DataFrame) -> StepActions:
    """The table as stats.json stores it: ``{"<step>": {action: count}}``."""
    return {str(st): {a: int(v) for a, v in row.items()} for st, row in table.iterrows()}


def balance_steps(samples: Sequence[Sample], ratio: float | None, *, seed: int = 0,
                  max_copies: int = MAX_COPIES) -> tuple[list[Sample], BalanceInfo]:
    """``(samples + copies, info)``; see the module docstring. ``ratio`` None: the samples unchanged (lever off).

    ``info`` (:class:`BalanceInfo`): ``ratio``, ``seed``, ``max_copies``, ``added``, per step index a
    :class:`StepBalance`, and the step x action table ``before`` and ``after``."""
    out = list(samples)
    before = step_action_table(out)
    by_step: dict[str, StepBalance] = {}
    if ratio is None:
        return out, _balance_info(ratio, seed, max_copies, by_step, table_dict(before), None)
    if ratio <= 0 or max_copies < 1:
        raise ValueError(f"step_balance needs ratio > 0 and max_copies >= 1, got {ratio}, {max_copies}")
    for step in [st for st in before.index if st >= 1]:
        calls = sorted((s for s in samples if s.get("source") == "agent" and s["step"] == step
                        and s.get("action") == "call"), key=lambda s: s["id"])
        finishes = int(before.loc[step, "finish"])
        wanted = max(0, round(ratio * finishes) - len(calls))
        n = min(wanted, len(calls) * (max_copies - 1))
        random.Random(f"{seed}:step-balance:{step}").shuffle(calls)
        for j in range(n):
            src, copy = calls[j % len(calls)], j // len(calls) + 1
            out.append({**src, "id": f"{src['id']}#bal{copy}", "meta": {**src.get("meta", {}), "balance_copy": copy}})
        by_step[str(step)] = {"call": len(calls), "finish": finishes, "wanted": wanted, "added": n, "capped": n < wanted}
    return out, _balance_info(ratio, seed, max_copies, by_step, table_dict(before), table_dict(step_action_table(out)))


def _balance_info(ratio: float | None, seed: int, max_copies: int, by_step: dict[str, StepBalance],
                  before: StepActions, after: StepActions | None) -> BalanceInfo:
    """The report in stats.json's key order; ``after`` None: unchanged (the ``before`` table itself)."""
    return {"ratio": ratio, "seed": seed, "max_copies": max_copies, "added": sum(b["added"] for b in by_step.values()),
            "by_step": by_step, "before": before, "after": before if after is None else after}
