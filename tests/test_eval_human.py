"""Human annotation: labels saved at once, resume, usable rate, Cohen's kappa, bad files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from labkit.errors import DataFileError
from labkit.evaluate.human import (
    AnnotationItem,
    AnnotationSummary,
    Annotator,
    Label,
    agreement,
    cohen_kappa,
    item_from_trace,
    load_labels,
    usable_rate,
)

ITEMS = [{"id": f"q{i}", "query": f"问题{i}", "trajectory": "", "answer": f"回答{i}"} for i in range(4)]


def test_kappa_hand_computed() -> None:
    # 10 items: p_o = 0.7; rater A yes 5 / no 5, rater B yes 6 / no 4 -> p_e = 0.5*0.6 + 0.5*0.4 = 0.5 -> kappa 0.4
    a = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    b = [1, 1, 1, 1, 0, 1, 1, 0, 0, 0]
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == 1.0
    assert math.isnan(cohen_kappa([1, 1], [1, 1]))
    with pytest.raises(ValueError):
        cohen_kappa([1], [1, 2])


def test_annotator_saves_each_label_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    ann = Annotator(ITEMS, path, annotator="A", interactive=False)
    assert ann.widget() is None
    ann.label("q0", 5)
    ann.label("q1", 3)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2  # written at once
    again = Annotator(ITEMS, path, annotator="A", interactive=False)  # a new session resumes
    assert [it["id"] for it in again.pending()] == ["q2", "q3"]
    again.label("q1", 4)  # a relabel replaces the old label
    s = again.summary()
    assert list(s) == list(AnnotationSummary.__annotations__)
    assert s["labelled"] == 2 and s["usable_rate"] == 1.0 and s["score_counts"] == {4: 1, 5: 1}
    assert usable_rate([Label("x", 0), Label("y", 4), Label("z", 3), Label("w", 5)]) == 0.5


def test_widget_click_labels_next_item(tmp_path: Path) -> None:
    ann = Annotator(ITEMS, tmp_path / "l.jsonl")
    box = ann.widget()
    buttons = box.children[1].children
    buttons[[b.description for b in buttons].index("4")].click()
    assert load_labels(tmp_path / "l.jsonl")["q0"].score == 4
    assert "q1" in box.children[0].value


def _click(box, name: str) -> None:
    rows = [box.children[1], box.children[3]]
    button = next(b for row in rows for b in row.children if b.description == name or b.description.startswith(name))
    button.click()


def test_widget_confirms_goes_back_undoes_redoes_and_closes(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    Annotator(ITEMS, path, interactive=False).label("q0", 2)   # an earlier session
    ann = Annotator(ITEMS, path, annotator="A")
    box = ann.widget()
    assert "q1" in box.children[0].value and "进度 1/4" in box.children[0].value  # resumes at the first pending
    _click(box, "5")
    assert "已保存" in ann._saved.value and "q1" in ann._saved.value and "5" in ann._saved.value
    _click(box, "↶")                                              # undo a first label: q1 is pending again
    assert "q1" not in load_labels(path) and "已撤销" in ann._saved.value
    assert [it["id"] for it in Annotator(ITEMS, path, interactive=False).pending()] == ["q1", "q2", "q3"]
    _click(box, "↷")                                              # redo
    assert load_labels(path)["q1"].score == 5
    _click(box, "◀")
    _click(box, "◀")
    assert "q0" in box.children[0].value and "已标注：<b>2</b>" in box.children[0].value
    _click(box, "4")                                              # relabel q0, then undo restores the old 2
    assert load_labels(path)["q0"].score == 4
    _click(box, "↶")
    assert load_labels(path)["q0"].score == 2
    for score in ("3", "0"):                                      # label the rest: the UI closes
        ann._pos = next(i for i, it in enumerate(ITEMS) if it in ann.pending())
        _click(box, score)
    assert "全部完成" in box.children[0].value
    assert all(b.disabled for b in box.children[1].children) and box.children[2].disabled
    before = path.read_text(encoding="utf-8")
    _click(box, "5")                                              # a click on a closed UI writes nothing
    assert path.read_text(encoding="utf-8") == before
    assert not box.children[3].children[2].disabled               # undo still reopens it
    _click(box, "↶")
    assert not all(b.disabled for b in box.children[1].children)


def test_agreement_of_two_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    Annotator(ITEMS, a, interactive=False).label("q0", 5)
    for i, s in enumerate([5, 1, 4, 2]):
        Annotator(ITEMS, b, interactive=False).label(f"q{i}", s)
    for i, s in enumerate([1, 5, 2], start=1):
        Annotator(ITEMS, a, interactive=False).label(f"q{i}", s)
    res = agreement(a, b)  # A 5,1,5,2 vs B 5,1,4,2: p_o 3/4, p_e (2*1 + 1*1 + 1*1)/16 = 1/4 -> kappa 2/3
    assert res["items"] == 4 and res["agreement"] == 0.75
    assert res["kappa"] == pytest.approx(2 / 3)
    assert agreement(a, b, usable_only=True)["agreement"] == 1.0


def test_bad_label_file_names_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"item_id": "q0", "score": 5}) + "\n" + json.dumps({"item_id": "q1", "score": 7}) + "\n",
                    encoding="utf-8")
    with pytest.raises(DataFileError, match=r"bad.jsonl:2 \[field 'score'\]"):
        load_labels(path)
    path.write_text(json.dumps({"score": 5}) + "\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"bad.jsonl:1 \[field 'item_id'\]"):
        load_labels(path)


def test_item_from_trace() -> None:
    trace = {"query": "北京天气？", "final_answer": "晴", "steps": [{"output": "查天气", "observation": "晴，12°C"}]}
    item = item_from_trace(trace, "t1")
    assert list(item) == list(AnnotationItem.__annotations__)
    assert item["answer"] == "晴" and "晴，12°C" in item["trajectory"] and item["id"] == "t1"
