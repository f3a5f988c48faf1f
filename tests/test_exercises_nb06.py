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


def test_06_1_solution_and_wrong_functions() -> None:
    assert check("06.1", _run("06.1", "overall")).passed
    abilities = ("Planning", "Tool-use", "Reflection", "Concluding", "Profile")
    cases = [
        (lambda row: sum(row[a] for a in abilities) / 5, "简单平均"),
        (lambda row: 100 * _run("06.1", "overall")(row), "单位不对"),
        (lambda row: 0.35 * row["Planning"] + 0.25 * row["Tool-use"] + 0.1 * row["Reflection"]
         + 0.2 * row["Concluding"] + 0.1 * row["Profile"], "弄反了"),
        (lambda row: 0.25 * row["Planning"] + 0.35 * row["Tool-use"], "加权和"),
        (lambda row: str(row["Planning"]), "应返回一个数"),
        (lambda row: row["Overall"], "KeyError"),
    ]
    for fn, hint in cases:
        res = check("06.1", fn)
        assert res.status == "failed" and hint in res.message, (hint, res.message)


def test_06_2_solution_matches_labkit_and_wrong_answers() -> None:
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
    row = lambda g: {"general_heldout": {"loss": g}, "agent_heldout": {"loss": 1.0}}  # noqa: E731
    return {"results": {"base (no training)": row(base), "agent only": row(agent),
                        "agent : general = 5 : 1": row(mixed)}}


@pytest.mark.parametrize("numbers", [(2.0, 2.6, 2.1), (2.0, 1.9, 2.2)])
def test_06_3_solution_reads_whatever_was_measured(numbers: tuple[float, float, float]) -> None:
    results = _results(*numbers)
    assert check("06.2", _run("06.2", "my_reading", mix_results=results), results=results).passed


def test_06_3_wrong_readings() -> None:
    results = _results(2.0, 2.6, 2.1)
    for wrong, hint in [
        ("agent only", "dict"),
        ({"forgets_more": "agent only", "general_loss_change_agent_only": -0.6}, "符号反了"),
        ({"forgets_more": "agent only", "general_loss_change_agent_only": 0.5}, "general_heldout"),
        ({"forgets_more": "mix", "general_loss_change_agent_only": 0.6}, "loss 越高"),
        ({"forgets_more": "both", "general_loss_change_agent_only": 0.6}, "只能是"),
    ]:
        res = check("06.2", wrong, results=results)
        assert res.status == "failed" and hint in res.message, (hint, res.message)


def test_the_committed_measurement_is_complete() -> None:
    data = json.loads((REPO_ROOT / "bench" / "results" / "mix_forgetting.json").read_text(encoding="utf-8"))
    assert {"command", "measured", "results", "mix"} <= set(data)
    assert set(data["results"]) == {"base (no training)", "agent only", "agent : general = 5 : 1"}
    for row in data["results"].values():
        assert row["general_heldout"]["tokens"] > 0 and row["agent_heldout"]["tokens"] > 0
