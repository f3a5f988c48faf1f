"""Notebook 06's checkers: the right answer passes, typical wrong answers get the hint that names the mistake."""

from __future__ import annotations

import json
from typing import Any

import pytest

from labkit.course import load_solutions
from labkit.evaluate.human import cohen_kappa
from labkit.exercises import check
from labkit.exercises.nb06 import NOTE_TABLE, SCORES_A, SCORES_B, note_rows
from labkit.paths import REPO_ROOT

SOL = load_solutions(REPO_ROOT / "notebooks" / "solutions" / "06.py")


def _run(exercise_id: str, name: str, **scope: Any) -> Any:
    exec(SOL[exercise_id], scope)
    return scope[name]


def test_the_note_table_is_the_weighted_sum() -> None:
    for row in note_rows():
        weighted = (0.25 * row["Planning"] + 0.35 * row["Tool-use"] + 0.10 * row["Reflection"]
                    + 0.20 * row["Concluding"] + 0.10 * row["Profile"])
        assert abs(weighted - NOTE_TABLE[row["model"]][5]) < 0.006


def solve() -> Any:
    import numpy as np

    return _run("06.1", "solve_weights", np=np)


def test_06_1_solution_solves_both_tables() -> None:
    res = check("06.1", solve())
    assert res.passed, res.message


def test_06_1_transcribed_weights_fail() -> None:
    """Issue 21: the weights were printed two cells earlier, so the exercise was transcription."""
    note = {"Planning": 0.25, "Tool-use": 0.35, "Reflection": 0.10, "Concluding": 0.20, "Profile": 0.10}
    res = check("06.1", lambda rows: dict(note))
    assert res.status == "failed" and "写死" in res.message, res.message


def test_06_1_wrong_functions_get_the_specific_hint() -> None:
    right = solve()
    abilities = ("Planning", "Tool-use", "Reflection", "Concluding", "Profile")
    cases = [
        (lambda rows: [0.2] * 5, "应返回 dict"),
        (lambda rows: {"Planning": 1.0}, "缺了"),
        (lambda rows: {a: 100 * w for a, w in right(rows).items()}, "百分数"),
        (lambda rows: {a: 0.2 for a in abilities}, "偏了"),  # the simple mean
        (lambda rows: right(rows[:2]) if len(rows) > 6 else right(rows), "之和"),  # too few equations
        (lambda rows: {a: 1.0 for a in abilities}, "之和"),
        (lambda rows: rows[0]["nope"], "KeyError"),
    ]
    for fn, hint in cases:
        res = check("06.1", fn)
        assert res.status == "failed" and hint in res.message, (hint, res.message)


def test_06_3_solution_matches_labkit_and_wrong_answers() -> None:
    answer = _run("06.3", "my_human", SCORES_A=SCORES_A, SCORES_B=SCORES_B)
    ua, ub = [s >= 4 for s in SCORES_A], [s >= 4 for s in SCORES_B]
    assert abs(answer["kappa_usable"] - cohen_kappa(ua, ub)) < 1e-9
    assert check("06.3", answer).passed
    rate, kappa = answer["usable_rate_a"], answer["kappa_usable"]
    p_o = sum(x == y for x, y in zip(ua, ub)) / len(ua)
    for wrong, hint in [
        (0.5, "dict"),
        ({"usable_rate_a": 100 * rate, "kappa_usable": kappa}, "比例"),
        ({"usable_rate_a": sum(s >= 3 for s in SCORES_A) / 12, "kappa_usable": kappa}, "3 分不算可用"),
        ({"usable_rate_a": sum(s == 5 for s in SCORES_A) / 12, "kappa_usable": kappa}, "4 分也算可用"),
        ({"usable_rate_a": rate, "kappa_usable": p_o}, "原始一致率"),
        ({"usable_rate_a": rate, "kappa_usable": cohen_kappa(list(SCORES_A), list(SCORES_B))}, "0–5 分原始分数"),
        ({"usable_rate_a": rate, "kappa_usable": 0.9}, "p_e"),
    ]:
        res = check("06.3", wrong)
        assert res.status == "failed" and hint in res.message, (hint, res.message)


def _results(base: float, agent: float, mixed: float) -> dict[str, Any]:
    row = lambda g, a: {"general_heldout": {"loss": g}, "agent_heldout": {"loss": a}}  # noqa: E731
    return {"results": {"base (no training)": row(base, 2.4), "agent only": row(agent, 0.2),
                        "agent : general = 5 : 1": row(mixed, 0.6)}}


@pytest.mark.parametrize("numbers", [(2.0, 2.6, 2.1), (2.0, 1.9, 2.2), (3.862, 3.211, 2.462)])
def test_06_2_solution_reads_whatever_was_measured(numbers: tuple[float, float, float]) -> None:
    results = _results(*numbers)
    res = check("06.2", _run("06.2", "my_reading", mix_results=results), results=results)
    assert res.passed, res.message


def test_06_2_the_old_story_fails_on_the_measured_numbers() -> None:
    """Issue 21: 06 said the agent-only run forgot; the recorded bench shows both runs lowered the general loss."""
    data = json.loads((REPO_ROOT / "bench" / "results" / "mix_forgetting.json").read_text(encoding="utf-8"))
    rows = data["results"]
    base = rows["base (no training)"]["general_heldout"]["loss"]
    change = {"agent only": rows["agent only"]["general_heldout"]["loss"] - base,
              "mix": rows["agent : general = 5 : 1"]["general_heldout"]["loss"] - base}
    cost = rows["agent : general = 5 : 1"]["agent_heldout"]["loss"] - rows["agent only"]["agent_heldout"]["loss"]
    res = check("06.2", {"general_change": change, "forgetting": True, "agent_cost_of_mix": cost}, results=data)
    assert res.status == "failed" and "不是这份数据测到的" in res.message, res.message
    assert check("06.2", {"general_change": change, "forgetting": False, "agent_cost_of_mix": cost},
                 results=data).passed


def test_06_2_wrong_readings() -> None:
    results = _results(2.0, 2.6, 2.1)
    change = {"agent only": 0.6, "mix": 0.1}
    for wrong, hint in [
        ("agent only", "dict"),
        ({"general_change": {"agent only": 0.6}, "forgetting": True, "agent_cost_of_mix": 0.4}, "两个键"),
        ({"general_change": {"agent only": -0.6, "mix": -0.1}, "forgetting": True, "agent_cost_of_mix": 0.4},
         "符号反了"),
        ({"general_change": {"agent only": 0.5, "mix": 0.1}, "forgetting": True, "agent_cost_of_mix": 0.4},
         "general_heldout"),
        ({"general_change": change, "forgetting": False, "agent_cost_of_mix": 0.4}, "测到了遗忘"),
        ({"general_change": change, "forgetting": "yes", "agent_cost_of_mix": 0.4}, "True 或 False"),
        ({"general_change": change, "forgetting": True, "agent_cost_of_mix": -0.4}, "agent_cost_of_mix ="),
    ]:
        res = check("06.2", wrong, results=results)
        assert res.status == "failed" and hint in res.message, (hint, res.message)


def test_the_committed_measurement_is_complete() -> None:
    data = json.loads((REPO_ROOT / "bench" / "results" / "mix_forgetting.json").read_text(encoding="utf-8"))
    assert {"command", "measured", "results", "mix"} <= set(data)
    assert set(data["results"]) == {"base (no training)", "agent only", "agent : general = 5 : 1"}
    for row in data["results"].values():
        assert row["general_heldout"]["tokens"] > 0 and row["agent_heldout"]["tokens"] > 0
