"""Notebook 03's checkers: the right answer passes, typical wrong answers get the hint that names the mistake."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from labkit.agent import Trace
from labkit.course import load_solutions
from labkit.data import check_record, mode_jobs, record_decision, split_query_bank
from labkit.data.label import label_jobs, load_labelled
from labkit.exercises import check
from labkit.exercises.nb03 import missed_by_filters
from labkit.paths import REPO_ROOT
from labkit.tools import default_registry

SOL = load_solutions(REPO_ROOT / "notebooks" / "solutions" / "03.py")


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The notebook's smoke walk up to the filters (teacher noise seed 4, as the notebook uses in smoke mode)."""
    out = tmp_path_factory.mktemp("walk")
    registry = default_registry()
    sel = split_query_bank("smoke")
    jobs, _ = mode_jobs("smoke", sel.train)
    label_jobs(jobs, "sandbox:noise=0.15,seed=4", out / "labelling", workers=2, progress=False, registry=registry)
    records = sorted(load_labelled(out / "labelling"), key=lambda r: r["job_id"])
    by_id = {q["id"]: q for q in sel.train}
    verdicts = [check_record(r, by_id[r["query_id"]], registry) for r in records]
    example = next(r for r in records if len(r["trace"]["steps"]) >= 3)
    return {"records": records, "verdicts": verdicts, "by_id": by_id, "example": example, "Trace": Trace,
            "record_decision": record_decision, "out": out}


def _run(exercise_id: str, scope: dict[str, Any], name: str, **extra: Any) -> Any:
    env = {**scope, **extra}
    exec(SOL[exercise_id], env)
    return env[name]


# --- 03.1 -----------------------------------------------------------------------------------------------------

def _sample(user: str, assistant: str, user_loss: Any = False, assistant_loss: Any = True) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": user, "loss": user_loss},
                         {"role": "assistant", "content": assistant, "loss": assistant_loss}]}


def test_03_1_solution_passes(walk: dict[str, Any]) -> None:
    res = check("03.1", _run("03.1", walk, "my_sample"), record=walk["example"], step=1)
    assert res.passed, res.message


def test_03_1_wrong_samples_get_the_specific_hint(walk: dict[str, Any]) -> None:
    ex = walk["example"]
    steps = ex["trace"]["steps"]
    p1, o1 = steps[1]["prompt"], steps[1]["output"]
    cases = [
        ("the prompt", "dict"),
        ({"messages": _sample(p1, o1)["messages"] * 2}, "一条样本只有 2 条消息"),
        ({"messages": [{"role": "system", "content": p1}, {"role": "assistant", "content": o1}]}, "role 依次是"),
        (_sample(ex["query"], o1), "完整 agent prompt"),
        (_sample(steps[0]["prompt"], o1), "这是第 0 步的 prompt"),
        (_sample(p1, steps[0]["output"]), "这是第 0 步的输出"),
        (_sample(p1, o1, user_loss=True), "prompt 不参与 loss"),
        (_sample(p1, o1, assistant_loss=None), "loss\": True"),
    ]
    for answer, hint in cases:
        res = check("03.1", answer, record=ex, step=1)
        assert res.status == "failed" and hint in res.message, (hint, res.message)
    k = next(i for i, s in enumerate(steps) if s.get("observation"))
    res = check("03.1", _sample(steps[k]["prompt"], steps[k]["output"] + "\nObservation: " + steps[k]["observation"]),
                record=ex, step=k)
    assert "混进了 Observation" in res.message, res.message


# --- 03.2 -----------------------------------------------------------------------------------------------------

def test_03_2_the_smoke_walk_has_a_miss_and_the_solution_finds_and_rejects_it(walk: dict[str, Any],
                                                                             tmp_path: Path) -> None:
    misses = missed_by_filters(walk["records"], walk["verdicts"], walk["by_id"])
    assert misses, "the notebook's smoke teacher seed must leave at least one wrong-argument trace past the filters"
    decisions = tmp_path / "decisions.jsonl"
    ctx = {"records": walk["records"], "verdicts": walk["verdicts"], "queries": walk["by_id"], "decisions": decisions}
    found = _run("03.2", walk, "my_suspects", decisions=decisions)
    assert sorted(found) == sorted(misses)
    assert check("03.2", found, **ctx).passed


def test_03_2_wrong_answers_get_the_specific_hint(walk: dict[str, Any], tmp_path: Path) -> None:
    records, verdicts, by_id = walk["records"], walk["verdicts"], walk["by_id"]
    misses = missed_by_filters(records, verdicts, by_id)
    rejected = next(r["job_id"] for r, v in zip(records, verdicts) if not v.accepted)
    clean = next(r["job_id"] for r, v in zip(records, verdicts) if v.accepted and r["job_id"] not in misses)
    decisions = tmp_path / "decisions.jsonl"
    ctx = {"records": records, "verdicts": verdicts, "queries": by_id, "decisions": decisions}
    for answer, hint in [(42, "列表"), (["nope::react"], "不认识"), ([rejected], "已经被过滤规则拒绝"),
                         ([clean], "完全一致"), ([], "还漏了"), (misses, "找对了")]:
        res = check("03.2", answer, **ctx)
        assert res.status == "failed" and hint in res.message, (hint, res.message)
    step = 0
    record_decision(decisions, misses[0], "edit", step=step, output="x")
    assert "只改这一步的输出不够" in check("03.2", misses, **ctx).message
    for job in misses:
        record_decision(decisions, job, "reject")
    assert check("03.2", misses, **ctx).passed


def test_03_2_missed_by_filters_compares_arguments_not_just_names(walk: dict[str, Any]) -> None:
    records, verdicts, by_id = walk["records"], walk["verdicts"], walk["by_id"]
    clean = next(i for i, (r, v) in enumerate(zip(records, verdicts))
                 if v.accepted and r["job_id"] not in missed_by_filters(records, verdicts, by_id))
    fake = copy.deepcopy(records[clean])
    first = next(s for s in fake["trace"]["steps"] if s["parsed"].get("call"))
    key = next(iter(first["parsed"]["call"]["args"]))
    first["parsed"]["call"]["args"][key] = "something else"
    assert fake["job_id"] in missed_by_filters([fake], [verdicts[clean]], by_id)


# --- 03.3 -----------------------------------------------------------------------------------------------------

def test_03_3_solution_and_wrong_answers() -> None:
    n = 88
    for pool in (10, 40):  # fewer general items than wanted (repeats) and enough of them
        scope = {"agent": list(range(n)), "gen_train": list(range(pool))}
        assert check("03.3", _run("03.3", scope, "my_mix"), n_agent=n, n_pool=pool).passed
    ok = {"ratio": 5, "n_general": 18, "n_repeats": 8}
    for answer, hint in [
        ("5:1", "dict"),
        ({**ok, "ratio": 0.2, "without_general": "B"}, "写反了"),
        ({**ok, "ratio": 1, "without_general": "B"}, "经验配比"),
        ({**ok, "n_general": 440, "without_general": "B"}, "五分之一"),
        ({**ok, "n_general": 17, "without_general": "B"}, "四舍五入"),
        ({**ok, "n_repeats": 0, "without_general": "B"}, "重复使用"),  # issue 21: the repetition is stated
        ({**ok, "n_repeats": 18, "without_general": "B"}, "不对"),
        ({**ok, "without_general": "Z"}, "只能是"),
    ]:
        res = check("03.3", answer, n_agent=n, n_pool=10)
        assert res.status == "failed" and hint in res.message, (hint, res.message)
    res = check("03.3", {**ok, "n_repeats": 3, "without_general": "B"}, n_agent=n, n_pool=40)
    assert res.status == "failed" and "不需要重复" in res.message


def test_03_3_the_prediction_is_not_graded_against_a_truth_the_data_contradicts() -> None:
    """Issue 21: 03.3 required 'B (catastrophic forgetting)', which the measured runs did not show."""
    for pred in "ABC":
        res = check("03.3", {"ratio": 5, "n_general": 18, "n_repeats": 8, "without_general": pred}, n_agent=88,
                    n_pool=10)
        assert res.passed and "06" in res.message, res.message
