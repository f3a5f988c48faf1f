"""Human review of flagged samples: an ipywidgets reviewer and the decisions file it writes.

Each decision (accept / edit / reject) is appended to a decisions JSONL the moment it is made, so closing the
notebook loses nothing. :func:`apply_decisions` merges the latest decision per sample back into the data; a
non-interactive run (papermill, ``interactive=False``) only applies the saved decisions.
"""

from __future__ import annotations

import copy
import datetime as dt
import html
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from labkit.data.filters import Verdict
from labkit.errors import DataFileError
from labkit.jsonl import require
from labkit.store import KeyedStore

DECISIONS = ("accept", "edit", "reject")


def _check_decision(rec: dict[str, Any], path: Path, line: int) -> dict[str, Any]:
    require(rec, "job_id", str, path=path, line=line)
    decision = require(rec, "decision", str, path=path, line=line)
    if decision not in DECISIONS:
        raise DataFileError(path, f"must be one of {DECISIONS}", line=line, field="decision")
    if decision == "edit":
        require(rec, "step", int, path=path, line=line)
        require(rec, "output", str, path=path, line=line)
    return rec


def decisions_store(path: str | Path) -> KeyedStore:
    """The decisions file as a :class:`~labkit.store.KeyedStore`: job id -> latest decision (validated)."""
    return KeyedStore(path, "job_id", validate=_check_decision)


def record_decision(path: str | Path, job_id: str, decision: str, *, step: int | None = None,
                    output: str | None = None, reviewer: str = "", note: str = "") -> dict[str, Any]:
    """Append one decision now (fsynced). ``edit`` needs the ``step`` index and its corrected ``output``."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
    if decision == "edit" and (step is None or output is None):
        raise ValueError("an edit needs step= and output=")
    rec = {"job_id": job_id, "decision": decision, "step": step, "output": output, "reviewer": reviewer,
           "note": note, "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    decisions_store(path).put(rec)
    return rec


def load_decisions(path: str | Path) -> dict[str, dict[str, Any]]:
    """The latest decision per job id; a malformed line raises DataFileError naming file, line and field."""
    return dict(decisions_store(path).items())


def apply_edit(rec: dict[str, Any], step: int, output: str) -> dict[str, Any]:
    """A copy of the labelled record with step ``step``'s output replaced and marked human-edited."""
    steps = rec["trace"]["steps"]
    if not 0 <= step < len(steps):
        raise ValueError(f"{rec['job_id']}: edit names step {step}, the trace has {len(steps)} steps")
    new = copy.deepcopy(rec)
    new["trace"]["steps"][step]["output"] = output
    new["human_edited_steps"] = sorted({*rec.get("human_edited_steps", []), step})
    return new


def apply_decisions(records: Sequence[dict[str, Any]], verdicts: Sequence[Verdict],
                    decisions: dict[str, dict[str, Any]],
                    recheck: Callable[[dict[str, Any]], Verdict]) -> tuple[list[dict[str, Any]], list[Verdict],
                                                                              dict[str, int]]:
    """Merge decisions: accept overrides the filters, reject removes, edit re-runs the filters on the edit."""
    out_r, out_v = [], []
    summary = {"accept": 0, "edit": 0, "reject": 0, "edit_still_rejected": 0}
    for rec, v in zip(records, verdicts):
        d = decisions.get(rec["job_id"])
        if d is None:
            out_r.append(rec)
            out_v.append(v)
            continue
        summary[d["decision"]] += 1
        if d["decision"] == "accept":
            rec, v = {**rec, "human_accepted": True}, Verdict(v.job_id, [], v.repaired)
        elif d["decision"] == "reject":
            v = Verdict(v.job_id, [{"code": "human_rejected", "step": None, "detail": d.get("note", "")}], v.repaired)
        else:
            rec = apply_edit(rec, d["step"], d["output"])
            v = recheck(rec)
            summary["edit_still_rejected"] += not v.accepted
        out_r.append(rec)
        out_v.append(v)
    return out_r, out_v, summary


class Reviewer:
    """Step through flagged samples: see prompt, output and reasons; accept, edit (Textarea) or reject."""

    def __init__(self, items: Sequence[tuple[dict[str, Any], Verdict]], decisions_path: str | Path,
                 reviewer: str = ""):
        import ipywidgets as w

        self.items, self.path, self.reviewer, self.pos = list(items), Path(decisions_path), reviewer, 0
        self.header = w.HTML()
        self.prompt = w.Textarea(disabled=True, layout=w.Layout(width="100%", height="180px"))
        self.output = w.Textarea(layout=w.Layout(width="100%", height="120px"))
        self.step = w.Dropdown(description="step")
        self.step.observe(lambda _: self._show_step(), names="value")
        buttons = []
        for label, style, fn in (("接受 accept", "success", self.accept), ("保存修改 edit", "info", self.edit),
                                 ("拒绝 reject", "danger", self.reject), ("跳过 skip", "", self.next)):
            b = w.Button(description=label, button_style=style)
            b.on_click(lambda _, fn=fn: fn())
            buttons.append(b)
        self.widget = w.VBox([self.header, self.step, w.Label("prompt"), self.prompt, w.Label("output"),
                              self.output, w.HBox(buttons)])
        self._show()

    def _current(self) -> tuple[dict[str, Any], Verdict] | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def _show(self) -> None:
        cur = self._current()
        if cur is None:
            self.header.value = f"<b>全部 {len(self.items)} 条已审完 / all reviewed</b> — decisions: {self.path}"
            return
        rec, v = cur
        reasons = "".join(f"<li><code>{html.escape(r['code'])}</code> (step {r['step']}): "
                          f"{html.escape(str(r['detail']))}</li>" for r in v.reasons) or "<li>repaired only</li>"
        self.header.value = (f"<b>{self.pos + 1}/{len(self.items)}</b> · <code>{html.escape(rec['job_id'])}</code>"
                             f"<br>query: {html.escape(rec['query'])}<ul>{reasons}</ul>")
        steps = rec["trace"]["steps"]
        first_bad = next((r["step"] for r in v.reasons if r["step"] is not None), len(steps) - 1)
        self.step.options = list(range(len(steps)))
        self.step.value = first_bad
        self._show_step()

    def _show_step(self) -> None:
        cur = self._current()
        if cur is None or self.step.value is None:
            return
        s = cur[0]["trace"]["steps"][self.step.value]
        self.prompt.value, self.output.value = s["prompt"], s["output"]

    def _decide(self, decision: str, **kw: Any) -> None:
        cur = self._current()
        if cur is not None:
            record_decision(self.path, cur[0]["job_id"], decision, reviewer=self.reviewer, **kw)
            self.next()

    def accept(self) -> None:
        self._decide("accept")

    def reject(self) -> None:
        self._decide("reject")

    def edit(self) -> None:
        self._decide("edit", step=int(self.step.value), output=self.output.value)

    def next(self) -> None:
        self.pos += 1
        self._show()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
