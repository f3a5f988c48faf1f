"""Human review of flagged samples: an ipywidgets reviewer and the decisions file it writes.

Each decision (accept / edit / reject) is appended to a decisions JSONL the moment it is made, so closing the
notebook loses nothing. :func:`apply_decisions` merges the latest decision per sample back into the data; a
non-interactive run (papermill, ``interactive=False``) only applies the saved decisions.
"""

from __future__ import annotations

import copy
import datetime as dt
import html
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from labkit.data.filters import Verdict
from labkit.errors import DataFileError
from labkit.jsonl import require
from labkit.records import Decision, FilterReason, LabelledRecord
from labkit.store import KeyedStore

DECISIONS = ("accept", "edit", "reject")


def _check_decision(rec: Mapping[str, object], path: Path, line: int) -> Decision:
    require(rec, "job_id", str, path=path, line=line)
    decision = require(rec, "decision", str, path=path, line=line)
    if decision not in DECISIONS:
        raise DataFileError(path, f"must be one of {DECISIONS}", line=line, field="decision")
    if decision == "edit":
        require(rec, "step", int, path=path, line=line)
        require(rec, "output", str, path=path, line=line)
    return rec  # type: ignore[return-value]


def decisions_store(path: str | Path) -> KeyedStore:
    """The decisions file as a :class:`~labkit.store.KeyedStore`: job id -> latest decision (validated)."""
    return KeyedStore(path, "job_id", validate=_check_decision)


def record_decision(path: str | Path, job_id: str, decision: str, *, step: int | None = None,
                    output: str | None = None, reviewer: str = "", note: str = "") -> Decision:
    """Append one decision now (fsynced). ``edit`` needs the ``step`` index and its corrected ``output``."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
    if decision == "edit" and (step is None or output is None):
        raise ValueError("an edit needs step= and output=")
    rec = Decision(job_id=job_id, decision=decision, step=step, output=output, reviewer=reviewer, note=note,
                   time=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    decisions_store(path).put(rec)
    return rec


def load_decisions(path: str | Path) -> dict[str, Decision]:
    """The latest decision per job id; a malformed line raises DataFileError naming file, line and field."""
    return dict(decisions_store(path).items())


def apply_edit(rec: LabelledRecord, step: int, output: str) -> LabelledRecord:
    """A copy of the labelled record with step ``step``'s output replaced and marked human-edited."""
    steps = rec["trace"]["steps"]
    if not 0 <= step < len(steps):
        raise ValueError(f"{rec['job_id']}: edit names step {step}, the trace has {len(steps)} steps")
    new = copy.deepcopy(rec)
    new["trace"]["steps"][step]["output"] = output
    new["human_edited_steps"] = sorted({*rec.get("human_edited_steps", []), step})
    return new


def apply_decisions(records: Sequence[LabelledRecord], verdicts: Sequence[Verdict], decisions: dict[str, Decision],
                    recheck: Callable[[LabelledRecord], Verdict]) -> tuple[list[LabelledRecord], list[Verdict],
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
            v = Verdict(v.job_id, [FilterReason(code="human_rejected", step=None, detail=d.get("note", ""))],
                        v.repaired)
        else:
            rec = apply_edit(rec, d["step"], d["output"])
            v = recheck(rec)
            summary["edit_still_rejected"] += not v.accepted
        out_r.append(rec)
        out_v.append(v)
    return out_r, out_v, summary


class Reviewer:
    """Step through flagged samples: see prompt, output and reasons; accept, edit (Textarea) or reject.

    It resumes where the last session stopped: decisions already in ``decisions_path`` are loaded, decided items are
    marked with their decision (and not counted as pending), and it opens at the first undecided item. Every save
    is confirmed on screen. An edited output is re-checked against the filters at once (``recheck``: record ->
    Verdict; default: the course filters over the query bank) and the verdict is shown before and after saving.
    """

    def __init__(self, items: Sequence[tuple[LabelledRecord, Verdict]], decisions_path: str | Path,
                 reviewer: str = "", recheck: Callable[[LabelledRecord], Verdict] | None = None):
        import ipywidgets as w

        self.items, self.path, self.reviewer = list(items), Path(decisions_path), reviewer
        self.recheck = recheck or _default_recheck()
        self.decided: dict[str, Decision] = load_decisions(self.path)
        self.pos = next((i for i, (r, _) in enumerate(self.items) if r["job_id"] not in self.decided), 0)
        self.header = w.HTML()
        self.status = w.HTML()
        self.saved = w.HTML()
        self.verdict = w.HTML()
        self.prompt = w.Textarea(disabled=True, layout=w.Layout(width="100%", height="180px"))
        self.output = w.Textarea(layout=w.Layout(width="100%", height="120px"), continuous_update=False)
        self.output.observe(lambda _: self.check_edit(), names="value")
        self.step = w.Dropdown(description="step")
        self.step.observe(lambda _: self._show_step(), names="value")
        self.buttons: dict[str, w.Button] = {}
        rows = []
        for group in ((("接受 accept", "success", self.accept), ("保存修改 edit", "info", self.edit),
                       ("拒绝 reject", "danger", self.reject), ("检查修改 check", "", self.check_edit)),
                      (("◀ 上一条 prev", "", self.prev), ("下一条 next ▶", "", self.next),
                       ("下一条待审 next pending", "warning", self.next_pending))):
            row = []
            for label, style, fn in group:
                b = w.Button(description=label, button_style=style, layout=w.Layout(width="auto"))
                b.on_click(lambda _, fn=fn: fn())
                self.buttons[label.split()[0]] = b
                row.append(b)
            rows.append(w.HBox(row))
        self.widget = w.VBox([self.status, self.header, self.step, w.Label("prompt"), self.prompt,
                              w.Label("output（可以直接修改；修改后会立即用过滤规则检查）"), self.output, self.verdict,
                              *rows, self.saved])
        self._show()

    # -- state ---------------------------------------------------------------------------------------------
    def pending(self) -> list[str]:
        return [r["job_id"] for r, _ in self.items if r["job_id"] not in self.decided]

    def _current(self) -> tuple[LabelledRecord, Verdict] | None:
        return self.items[self.pos] if 0 <= self.pos < len(self.items) else None

    # -- display -------------------------------------------------------------------------------------------
    def _show(self) -> None:
        n, todo = len(self.items), len(self.pending())
        self.status.value = (f"<b>{n - todo}/{n} 已决定 · 待审 {todo}</b>" + (
            " — <b>全部已审完 / all reviewed</b>，决定保存在 " + html.escape(str(self.path)) if not todo else ""))
        cur = self._current()
        if cur is None:
            self.header.value = "<i>没有需要审核的样本</i>"
            return
        rec, v = cur
        reasons = "".join(f"<li><code>{html.escape(r['code'])}</code> (step {r['step']}): "
                          f"{html.escape(str(r['detail']))}</li>" for r in v.reasons) or "<li>repaired only</li>"
        d = self.decided.get(rec["job_id"])
        mark = ("<span style='color:#bf8700'>待审 / pending</span>" if d is None else
                f"<span style='color:#1a7f37'>已决定：<b>{html.escape(d['decision'])}</b>"
                f"（{html.escape(str(d.get('reviewer', '')))} · {html.escape(str(d.get('time', '')))}）"
                "——再点一个按钮可以改变决定</span>")
        self.header.value = (f"<b>{self.pos + 1}/{len(self.items)}</b> · <code>{html.escape(rec['job_id'])}</code>"
                             f" · {mark}<br>query: {html.escape(rec['query'])}<ul>{reasons}</ul>")
        steps = rec["trace"]["steps"]
        first_bad = next((r["step"] for r in v.reasons if r["step"] is not None), len(steps) - 1)
        self.step.options = list(range(len(steps)))
        if d is not None and d["decision"] == "edit" and d.get("step") is not None:
            first_bad = d["step"]
        self.step.value = first_bad
        self._show_step()

    def _show_step(self) -> None:
        cur = self._current()
        if cur is None or self.step.value is None:
            return
        rec = cur[0]
        s = rec["trace"]["steps"][self.step.value]
        d = self.decided.get(rec["job_id"])
        edited = d is not None and d["decision"] == "edit" and d.get("step") == self.step.value
        self.verdict.value = ""
        self.prompt.value = s["prompt"]
        self.output.value = d["output"] if edited else s["output"]  # an edit shown again is re-checked at once

    def check_edit(self) -> Verdict | None:
        """Run the filters on the current item with the Textarea's output in place of the step's; show the verdict."""
        cur = self._current()
        if cur is None or self.step.value is None:
            return None
        rec = cur[0]
        if self.output.value == rec["trace"]["steps"][self.step.value]["output"]:
            self.verdict.value = ""
            return None
        v = self.recheck(apply_edit(rec, int(self.step.value), self.output.value))
        self.verdict.value = ("<div style='color:#1a7f37'>✅ 修改后通过全部过滤规则</div>" if v.accepted else
                              "<div style='color:#cf222e'>❌ 修改后仍不通过过滤：" + "；".join(
                                  f"<code>{html.escape(r['code'])}</code> {html.escape(str(r['detail']))}"
                                  for r in v.reasons) + "</div>")
        return v

    # -- actions -------------------------------------------------------------------------------------------
    def _decide(self, decision: str, **kw: Any) -> None:
        cur = self._current()
        if cur is None:
            return
        job_id = cur[0]["job_id"]
        self.decided[job_id] = record_decision(self.path, job_id, decision, reviewer=self.reviewer, **kw)
        self.saved.value = (f"<span style='color:#1a7f37'>✔ 已保存 <code>{html.escape(job_id)}</code> → "
                            f"<b>{decision}</b>（{html.escape(self.path.name)}）</span>")
        self.next_pending()

    def accept(self) -> None:
        self._decide("accept")

    def reject(self) -> None:
        self._decide("reject")

    def edit(self) -> None:
        v = self.check_edit()
        verdict = self.verdict.value
        self._decide("edit", step=int(self.step.value), output=self.output.value)
        if v is not None:
            self.saved.value += "<br>" + verdict

    def prev(self) -> None:
        self.pos = max(0, self.pos - 1)
        self._show()

    def next(self) -> None:
        self.pos = min(len(self.items) - 1, self.pos + 1)
        self._show()

    def next_pending(self) -> None:
        """The next undecided item after the current one (wrapping around); stays put when none is left."""
        n = len(self.items)
        order = [(self.pos + k) % n for k in range(1, n + 1)] if n else []
        self.pos = next((i for i in order if self.items[i][0]["job_id"] not in self.decided), self.pos)
        self._show()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _default_recheck() -> Callable[[LabelledRecord], Verdict]:
    from labkit.data.filters import check_record
    from labkit.data.queries import load_queries
    from labkit.tools import default_registry

    registry = default_registry()
    queries = {q["id"]: q for q in load_queries(tool_names=registry.names())}
    return lambda rec: check_record(rec, queries[rec["query_id"]], registry)
