"""Failure kinds of planning answers (notebook 06 §为什么变好、还差在哪): each answer sorted as the scorer reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from labkit.evaluate.failures import (
    KINDS,
    answers_side_by_side,
    classify,
    failure_counts,
    planning_answers,
    plot_failure_kinds,
)

FUNCS = [{"name": n, "description": "", "parameters": {}} for n in ("get_weather_info", "calculator", "web_search",
                                                                     "task_complete")]


def record(rid: str) -> dict:
    return {"id": rid, "query": "北京现在天气怎么样？", "type": "plantooluse", "step": 0,
            "golden_result_list": [{"thought": "查询北京天气", "tool_name": "get_weather_info",
                                    "tool_args": {"location": "Beijing"}}],
            "funcs": FUNCS, "prompt_input": {"kagent_planning_zh": "p1", "react": "p2"},
            "memory": "", "memory_type": "", "memory_last_task": {},
            "template_tags": {"kagent_planning_zh": "seen", "react": "unseen"},
            "output_formats": {"kagent_planning_zh": "task_json", "react": "react"}}


def task(name: str, fence: bool = False) -> str:
    text = json.dumps({"task_name": "查询", "command": {"name": name, "args": {"location": "Beijing"}}},
                      ensure_ascii=False)
    return f"```json\n{text}\n```" if fence else text


def test_every_kind_as_the_scorer_reads_it() -> None:
    bench = [record("q1:plan0"), record("q2:plan0"), record("q3:plan0")]
    preds = [
        {**bench[0], "model_predict": {"kagent_planning_zh": task("get_weather_info", fence=True),
                                       "react": "Thought: 够了\nFinal Answer: 北京晴"}},
        {**bench[1], "model_predict": {"kagent_planning_zh": task("calculator"),
                                       "react": "Thought: 查\nAction: train_timetable\nAction Input: {}"}},
        {**bench[2], "model_predict": {"kagent_planning_zh": "我不知道", "react": ""}},
    ]
    answers = planning_answers(bench, preds)
    kinds = dict(zip(zip(answers["id"], answers["template"]), answers["kind"]))
    assert kinds == {("q1:plan0", "kagent_planning_zh"): "right_tool",  # fenced JSON: read as the scorer reads it
                     ("q1:plan0", "react"): "finished_early",  # a final answer is task_complete in labkit's mode
                     ("q2:plan0", "kagent_planning_zh"): "wrong_offered_tool",
                     ("q2:plan0", "react"): "tool_not_offered",
                     ("q3:plan0", "kagent_planning_zh"): "unparsed", ("q3:plan0", "react"): "unparsed"}
    counts = failure_counts(answers)
    assert list(counts.index) == [*KINDS.values(), "合计"]
    assert counts.loc["合计", "all"] == 6 and counts.loc["合计", "seen"] == 3
    assert counts.loc[KINDS["unparsed"], "all"] == 2 and counts.loc[KINDS["right_tool"], "seen"] == 1


def test_classify_rules() -> None:
    offered = {"a", "b", "task_complete"}
    assert classify("a", ["a"], offered) == "right_tool"
    assert classify("task_complete", ["task_complete"], offered) == "right_tool"  # finishing is right at the end
    assert classify("task_complete", ["a"], offered) == "finished_early"
    assert classify("b", ["a"], offered) == "wrong_offered_tool"
    assert classify("zzz", ["a"], offered) == "tool_not_offered"
    assert classify("None", ["a"], offered) == classify(None, ["a"], offered) == "unparsed"


def test_side_by_side_and_chart(tmp_path: Path) -> None:
    bench = [record("q1:plan0"), record("q2:plan0")]
    base = [{**r, "model_predict": {"kagent_planning_zh": "hello", "react": "hello"}} for r in bench]
    tuned = [{**r, "model_predict": {"kagent_planning_zh": task("get_weather_info"), "react": "x"}} for r in bench]
    table = answers_side_by_side(bench, {"base": base, "tuned": tuned}, n_queries=1)
    assert len(table) == 2 and set(table["template"]) == {"kagent_planning_zh", "react"}
    row = table[table["template"] == "kagent_planning_zh"].iloc[0]
    assert row["base：判定"] == KINDS["unparsed"] and row["tuned：判定"] == KINDS["right_tool"]
    assert "get_weather_info" in row["golden"] and "get_weather_info" in row["tuned"]
    counts = failure_counts(planning_answers(bench, tuned))
    plot_failure_kinds(counts, tmp_path / "kinds.png")
    assert (tmp_path / "kinds.png").stat().st_size > 1000
    measured = pd.DataFrame({"all": [63, 27, 15, 6, 1]}, index=list(KINDS.values()))
    plot_failure_kinds(measured, tmp_path / "measured.png")  # counts without a 合计 row are drawn too
