"""Human review: decisions are appended at once, merged back (accept / edit / reject), and the widget writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.errors import DataFileError

from test_data_label import CONCLUSIONS, data_dir  # noqa: F401  (fixture)


@pytest.fixture()
def labelled(data_dir: Path, tmp_path: Path) -> tuple[list[dict], dict, object]:  # noqa: F811
    from labkit.data.label import label_jobs, load_labelled, plan_jobs
    from labkit.data.queries import load_queries
    from labkit.tools import default_registry

    queries = load_queries()
    jobs = plan_jobs(queries, ["kagent_planning_zh", "react", "toolllama"], conclusion_templates=CONCLUSIONS)
    label_jobs(jobs, "sandbox:noise=0.5", tmp_path / "l", workers=2, progress=False)
    return sorted(load_labelled(tmp_path / "l"), key=lambda r: r["job_id"]), {q["id"]: q for q in queries}, \
        default_registry()


def test_decisions_merge_back(labelled: tuple, tmp_path: Path) -> None:
    from labkit.data.filters import check_record
    from labkit.data.review import apply_decisions, load_decisions, record_decision

    records, queries, reg = labelled
    check = lambda r: check_record(r, queries[r["query_id"]], reg)  # noqa: E731
    verdicts = [check(r) for r in records]
    bad = [(r, v) for r, v in zip(records, verdicts) if not v.accepted]
    good = [(r, v) for r, v in zip(records, verdicts) if v.accepted]
    assert len(bad) >= 3 and good
    fixable = next((r, v) for r, v in bad if v.reasons[0]["code"] in ("off_format_text", "unparseable")
                   and v.reasons[0]["step"] is not None and len(v.reasons) == 1)
    step = fixable[1].reasons[0]["step"]
    from labkit.llm import get_model

    other_bad = next(r for r, _ in bad if r is not fixable[0])
    fixed_output = get_model("sandbox").chat([{"role": "user", "content": fixable[0]["trace"]["steps"][step]["prompt"]}]).text

    path = tmp_path / "decisions.jsonl"
    record_decision(path, other_bad["job_id"], "accept")
    record_decision(path, fixable[0]["job_id"], "edit", step=step, output=fixed_output, reviewer="t")
    record_decision(path, good[0][0]["job_id"], "reject", note="wrong tone")
    assert len(path.read_text().splitlines()) == 3  # each decision is on disk at once
    decisions = load_decisions(path)
    new_r, new_v, summary = apply_decisions(records, verdicts, decisions, check)
    assert summary == {"accept": 1, "edit": 1, "reject": 1, "edit_still_rejected": 0}
    after = {r["job_id"]: (r, v) for r, v in zip(new_r, new_v)}
    assert after[fixable[0]["job_id"]][1].accepted
    assert after[fixable[0]["job_id"]][0]["human_edited_steps"] == [step]
    assert after[good[0][0]["job_id"]][1].codes == ["human_rejected"]
    assert after[other_bad["job_id"]][0]["human_accepted"] and after[other_bad["job_id"]][1].accepted
    assert sum(v.accepted for v in new_v) == sum(v.accepted for v in verdicts) + 1  # +accept +edit -reject


def test_bad_decisions_file_names_line_and_field(tmp_path: Path) -> None:
    from labkit.data.review import load_decisions, record_decision

    path = tmp_path / "d.jsonl"
    record_decision(path, "a::react", "accept")
    with path.open("a") as fh:
        fh.write(json.dumps({"job_id": "b::react", "decision": "maybe"}) + "\n")
    with pytest.raises(DataFileError, match=r"d.jsonl:2 \[field 'decision'\]"):
        load_decisions(path)
    with pytest.raises(ValueError, match="an edit needs step"):
        record_decision(path, "a::react", "edit")


def test_reviewer_widget_writes_each_decision(labelled: tuple, tmp_path: Path) -> None:
    from labkit.data.filters import check_record
    from labkit.data.review import Reviewer, load_decisions

    records, queries, reg = labelled
    items = [(r, v) for r in records if (v := check_record(r, queries[r["query_id"]], reg)).flagged][:3]
    path = tmp_path / "decisions.jsonl"
    ui = Reviewer(items, path, reviewer="tester")
    assert items[0][0]["job_id"] in ui.header.value and ui.output.value
    ui.output.value = "Thought: fixed by hand\nFinal Answer: 42"
    ui.edit()
    assert "已保存" in ui.saved.value and "edit" in ui.saved.value
    ui.reject()
    ui.accept()
    assert "all reviewed" in ui.status.value
    saved = load_decisions(path)
    assert [saved[r["job_id"]]["decision"] for r, _ in items] == ["edit", "reject", "accept"]
    assert saved[items[0][0]["job_id"]]["output"] == "Thought: fixed by hand\nFinal Answer: 42"


def test_reviewer_resumes_marks_decided_items_and_checks_edits(labelled: tuple, tmp_path: Path) -> None:
    from labkit.data.filters import check_record
    from labkit.data.review import Reviewer, record_decision

    records, queries, reg = labelled
    recheck = lambda r: check_record(r, queries[r["query_id"]], reg)  # noqa: E731
    items = [(r, v) for r in records if (v := recheck(r)).flagged][:4]
    path = tmp_path / "decisions.jsonl"
    record_decision(path, items[0][0]["job_id"], "reject", reviewer="earlier")
    record_decision(path, items[1][0]["job_id"], "accept", reviewer="earlier")
    ui = Reviewer(items, path, reviewer="tester", recheck=recheck)
    assert ui.pos == 2 and items[2][0]["job_id"] in ui.header.value      # resumes at the first undecided item
    assert "2/4 已决定 · 待审 2" in ui.status.value and ui.pending() == [r["job_id"] for r, _ in items[2:]]
    ui.prev()
    assert "已决定：<b>accept</b>" in ui.header.value and "earlier" in ui.header.value
    ui.next_pending()
    assert ui.pos == 2
    # an edit is checked against the filters at once: a broken output fails, the teacher's clean one passes
    ui.output.value = "Sure! " + ui.output.value + " I hope this helps"
    assert "❌" in ui.verdict.value
    rec, v = items[2]
    step = ui.step.value
    from labkit.llm import get_model

    clean = get_model("sandbox").chat([{"role": "user", "content": rec["trace"]["steps"][step]["prompt"]}]).text
    ui.output.value = clean
    verdict = ui.check_edit()
    assert verdict is not None and ("✅" in ui.verdict.value) == verdict.accepted
    ui.edit()
    assert "已保存" in ui.saved.value and ui.pos == 3 and "1 已决定" not in ui.status.value
    assert "3/4 已决定 · 待审 1" in ui.status.value
