"""Human evaluation with the course note's rubric: an ipywidgets annotator, the usable rate and Cohen's kappa.

Rubric (note §3.4 人工评估): 5 完全正确; 4 小有出入，核心信息准确，补充信息错误 ≤ 10%; 3 核心信息准确，补充信息 10%–60% 错误;
2 核心信息不正确或超过 60% 内容错误; 1 核心信息重大不准确; 0 一票否决（违规/有害、答非所问、编造）. Scores ≥ 4 are *usable*.

Every label is appended to a JSONL file at once (flush + fsync), so closing the notebook loses nothing and the
annotator resumes at the first unlabelled item. A later label for the same item replaces the earlier one.
Cohen's kappa is implemented here (scikit-learn is not a dependency): κ = (p_o − p_e) / (1 − p_e).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypedDict

from labkit.errors import DataFileError
from labkit.jsonl import require
from labkit.store import KeyedStore

RUBRIC: dict[int, str] = {
    5: "完全正确",
    4: "小有出入：核心信息准确，补充信息中的错误不超过 10%",
    3: "核心信息准确，但 10%–60% 的补充信息不正确",
    2: "核心信息不正确，或超过 60% 的内容有错误",
    1: "核心信息存在重大不准确性，大部分或全部内容不正确",
    0: "一票否决：违规/有害、答非所问或编造",
}
USABLE_MIN = 4


@dataclass
class Label:
    item_id: str
    score: int          # 0..5
    annotator: str = ""
    note: str = ""
    time: float = 0.0


class AnnotationItem(TypedDict):
    """One item to label (:func:`item_from_trace` builds one from an agent trace)."""

    id: str
    query: str
    trajectory: str              # the steps as text, one "[i] output" line each (+ "→ observation")
    answer: str


class AnnotationSummary(TypedDict):
    """:meth:`Annotator.summary`: items, how many are labelled, the usable rate and how often each score was given."""

    items: int
    labelled: int
    usable_rate: float           # NaN when nothing is labelled
    score_counts: dict[int, int]


def _check_label(rec: Mapping[str, object], path: Path, line: int) -> None:
    """A labels-file line is a :class:`Label` (``asdict``) or a retraction (``retracted: true``, see
    :func:`retract_label`); anything else raises :class:`DataFileError` naming the line and field."""
    require(rec, "item_id", str, path=path, line=line)
    if rec.get("retracted") is True:  # an undone label (see retract_label): the item has no label any more
        return
    score = require(rec, "score", int, path=path, line=line)
    if isinstance(score, bool) or score not in RUBRIC:
        raise DataFileError(path, f"score must be an integer 0..5, got {score!r}", line=line, field="score")


def labels_store(path: str | Path) -> KeyedStore:
    """A labels file as a :class:`~labkit.store.KeyedStore`: item id -> latest label (validated)."""
    return KeyedStore(path, "item_id", validate=_check_label)


def load_labels(path: str | Path) -> dict[str, Label]:
    """Labels by item id (the last one per item wins); a bad line raises :class:`DataFileError` naming line + field."""
    return {item: Label(item, rec["score"], str(rec.get("annotator", "")), str(rec.get("note", "")),
                        float(rec.get("time", 0.0)))
            for item, rec in labels_store(path).items() if rec.get("retracted") is not True}


def save_label(path: str | Path, label: Label) -> None:
    if label.score not in RUBRIC:
        raise ValueError(f"score must be one of {sorted(RUBRIC)}, got {label.score!r}")
    labels_store(path).put(asdict(label))


def retract_label(path: str | Path, item_id: str, annotator: str = "") -> None:
    """Record that ``item_id`` has no label any more (undoing its first label); the file stays append-only."""
    labels_store(path).put({"item_id": str(item_id), "retracted": True, "annotator": annotator, "time": time.time()})


def usable_rate(labels: Mapping[str, Label] | Sequence[Label]) -> float:
    """Share of labelled items scoring ≥ 4 (NaN when nothing is labelled)."""
    values = list(labels.values()) if isinstance(labels, Mapping) else list(labels)
    return sum(lab.score >= USABLE_MIN for lab in values) / len(values) if values else float("nan")


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Cohen's κ of two raters over the same items; NaN when undefined (both raters used one same category)."""
    if len(a) != len(b):
        raise ValueError(f"raters labelled different numbers of items ({len(a)} vs {len(b)})")
    n = len(a)
    if n == 0:
        return float("nan")
    p_o = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    p_e = sum(ca[k] * cb[k] for k in ca) / (n * n)
    return float("nan") if p_e == 1 else (p_o - p_e) / (1 - p_e)


def agreement(path_a: str | Path, path_b: str | Path, *, usable_only: bool = False) -> dict[str, float]:
    """κ and raw agreement of two annotators' files over the items both labelled (scores, or usable yes/no)."""
    la, lb = load_labels(path_a), load_labels(path_b)
    common = sorted(set(la) & set(lb))
    conv = (lambda s: s >= USABLE_MIN) if usable_only else (lambda s: s)
    a, b = [conv(la[i].score) for i in common], [conv(lb[i].score) for i in common]
    same = sum(x == y for x, y in zip(a, b))
    return {"items": len(common), "agreement": same / len(common) if common else float("nan"),
            "kappa": cohen_kappa(a, b)}


def item_from_trace(trace: Mapping[str, Any], item_id: str) -> AnnotationItem:
    """An annotation item from ``Trace.to_dict()``: query, the steps as text, final answer."""
    lines = []
    for i, step in enumerate(trace.get("steps", []), start=1):
        lines.append(f"[{i}] {str(step.get('output', '')).strip()}")
        if step.get("observation"):
            lines.append(f"    → {str(step['observation']).strip()[:400]}")
    return {"id": item_id, "query": trace.get("query", ""), "trajectory": "\n".join(lines),
            "answer": trace.get("final_answer") or ""}


class Annotator:
    """Shows one item at a time (query, trajectory, answer) with rubric buttons 0..5; each click is saved at once.

    ``interactive=False`` (papermill, CI) builds no widgets and only reads the saved labels.
    """

    def __init__(self, items: Sequence[AnnotationItem], path: str | Path, *, annotator: str = "",
                 interactive: bool = True):
        self.items, self.path, self.annotator, self.interactive = list(items), Path(path), annotator, interactive
        self.labels = load_labels(self.path)
        self._box: Any = None

    def pending(self) -> list[AnnotationItem]:
        return [it for it in self.items if str(it["id"]) not in self.labels]

    def label(self, item_id: str, score: int, note: str = "") -> Label:
        lab = Label(str(item_id), int(score), self.annotator, note, time.time())
        save_label(self.path, lab)
        self.labels[lab.item_id] = lab
        return lab

    def summary(self) -> AnnotationSummary:
        ids = {str(it["id"]) for it in self.items}
        mine = [lab for i, lab in self.labels.items() if i in ids]
        return {"items": len(self.items), "labelled": len(mine), "usable_rate": usable_rate(mine),
                "score_counts": dict(sorted(Counter(lab.score for lab in mine).items()))}

    def widget(self) -> Any:
        """The ipywidgets UI (None when ``interactive=False``): rubric buttons 0..5, back / next, undo / redo, a
        confirmation line for every save; when every item is labelled the buttons are disabled (undo reopens)."""
        if not self.interactive:
            return None
        import ipywidgets as w

        self._undo: list[tuple[str, Label | None, Label]] = []
        self._redo: list[tuple[str, Label | None, Label]] = []
        todo = self.pending()
        self._pos = self.items.index(todo[0]) if todo else max(0, len(self.items) - 1)
        self._view = w.HTML()
        self._note = w.Text(placeholder="备注（可选）")
        self._saved = w.HTML()
        self._score_buttons = [w.Button(description=f"{s}", tooltip=RUBRIC[s], layout=w.Layout(width="48px"))
                               for s in RUBRIC]
        for b in self._score_buttons:
            b.on_click(lambda btn: self._on_click(int(btn.description)))
        self._nav = {}
        for key, label, fn in (("prev", "◀ 上一条", self.back), ("next", "下一条 ▶", self.forward),
                               ("undo", "↶ 撤销 undo", self.undo), ("redo", "↷ 重做 redo", self.redo)):
            b = w.Button(description=label, layout=w.Layout(width="auto"))
            b.on_click(lambda _, fn=fn: fn())
            self._nav[key] = b
        legend = w.HTML("<br>".join(f"<b>{s}</b>: {t}" for s, t in RUBRIC.items()))
        self._box = w.VBox([self._view, w.HBox(self._score_buttons), self._note, w.HBox(list(self._nav.values())),
                            self._saved, legend])
        self._refresh()
        return self._box

    # -- widget actions (also callable directly) -------------------------------------------------------------
    def _current_id(self) -> str | None:
        return str(self.items[self._pos]["id"]) if self.items else None

    def _on_click(self, score: int) -> None:
        item = self._current_id()
        if item is None or self._closed():  # closed: the buttons are disabled; a programmatic click changes nothing
            return
        before = self.labels.get(item)
        lab = self.label(item, score, self._note.value)
        self._undo.append((item, before, lab))
        self._redo.clear()
        self._note.value = ""
        self._saved.value = (f"<span style='color:#1a7f37'>✔ 已保存 <code>{_esc(item)}</code> = <b>{score}</b> 分"
                             f"（{'可用' if score >= USABLE_MIN else '不可用'}）→ {_esc(self.path.name)}</span>")
        todo = self.pending()
        if todo:
            after = [it for it in self.items[self._pos + 1:] if it in todo] or todo
            self._pos = self.items.index(after[0])
        self._refresh()

    def back(self) -> None:
        self._pos = max(0, self._pos - 1)
        self._refresh()

    def forward(self) -> None:
        self._pos = min(len(self.items) - 1, self._pos + 1)
        self._refresh()

    def undo(self) -> None:
        """Take back the last label of this session (restoring the item's earlier label, if it had one)."""
        if not self._undo:
            return
        item, before, after = self._undo.pop()
        self._restore(item, before)
        self._redo.append((item, before, after))
        self._pos = next(i for i, it in enumerate(self.items) if str(it["id"]) == item)
        self._saved.value = f"<span style='color:#bf8700'>↶ 已撤销 <code>{_esc(item)}</code> 的 {after.score} 分</span>"
        self._refresh()

    def redo(self) -> None:
        if not self._redo:
            return
        item, before, after = self._redo.pop()
        lab = self.label(item, after.score, after.note)
        self._undo.append((item, before, lab))
        self._saved.value = f"<span style='color:#1a7f37'>↷ 已重做 <code>{_esc(item)}</code> = <b>{lab.score}</b> 分</span>"
        self._refresh()

    def _restore(self, item: str, label: Label | None) -> None:
        if label is None:
            retract_label(self.path, item, self.annotator)
            self.labels.pop(item, None)
        else:
            save_label(self.path, label)
            self.labels[item] = label

    def _closed(self) -> bool:
        return bool(self.items) and not self.pending()

    def _refresh(self) -> None:
        done = len(self.items) - len(self.pending())
        closed = self._closed()
        for b in self._score_buttons:
            b.disabled = closed
        self._note.disabled = closed
        self._nav["prev"].disabled = closed or self._pos == 0
        self._nav["next"].disabled = closed or self._pos >= len(self.items) - 1
        self._nav["undo"].disabled = not self._undo
        self._nav["redo"].disabled = closed or not self._redo
        if closed:
            self._view.value = (f"<b>全部完成</b>（{done} 条），可用率 {self.summary()['usable_rate']:.1%}。"
                                "标注界面已关闭；要改最后一个标签可以点“撤销”。")
            return
        if not self.items:
            self._view.value = "<i>没有要标注的条目</i>"
            return
        it = self.items[self._pos]
        lab = self.labels.get(str(it["id"]))
        mark = ("<span style='color:#bf8700'>未标注</span>" if lab is None else
                f"<span style='color:#1a7f37'>已标注：<b>{lab.score}</b> 分（再点一个分数可以修改）</span>")
        self._view.value = (f"<p>进度 {done}/{len(self.items)} · 第 {self._pos + 1} 条 · <code>{_esc(it['id'])}</code>"
                            f" · {mark}</p>"
                            f"<p><b>问题：</b>{_esc(it.get('query', ''))}</p>"
                            f"<pre style='white-space:pre-wrap'>{_esc(it.get('trajectory', ''))}</pre>"
                            f"<p><b>回答：</b>{_esc(it.get('answer', ''))}</p>")


def _esc(value: object) -> str:
    import html

    return html.escape(str(value))
