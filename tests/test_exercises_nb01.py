"""Notebook 01's checkers: the right answer passes, typical wrong answers get the hint that names the mistake."""

from __future__ import annotations

import pytest

from labkit.course import load_solutions
from labkit.data import load_queries
from labkit.exercises import check
from labkit.paths import REPO_ROOT
from labkit.tools import default_registry

SOL = load_solutions(REPO_ROOT / "notebooks" / "solutions" / "01.py")
RIGHT = ["实时", "幻觉", "多步", "实时", "多步", "幻觉"]


def _solution(exercise_id: str, name: str) -> object:
    scope: dict[str, object] = {}
    exec(SOL[exercise_id], scope)
    return scope[name]


def test_01_1_right_answers_pass_in_any_spelling() -> None:
    assert check("01.1", _solution("01.1", "my_labels")).passed
    assert check("01.1", ["realtime", "knowledge", "complex", "实时性", "multi-step", "hallucination"]).passed
    assert check("01.1", {i: lab for i, lab in enumerate(RIGHT)}).passed


@pytest.mark.parametrize("answer, hint", [
    ("实时", "列表"),
    (RIGHT[:5], "一共 6 个问题"),
    (RIGHT[:5] + ["搜索"], "看不懂"),
    (["幻觉"] + RIGHT[1:], "天气每小时都在变"),                       # weather labelled as hallucination
    (RIGHT[:1] + ["实时"] + RIGHT[2:], "这个事实不会变"),              # a fixed fact labelled as real-time
    (RIGHT[:4] + ["实时", "幻觉"], "查自己的日历"),                    # the meeting is a multi-step task
])
def test_01_1_wrong_answers_get_the_specific_hint(answer: object, hint: str) -> None:
    res = check("01.1", answer)
    assert res.status == "failed" and hint in res.message, res.message


@pytest.fixture(scope="module")
def ctx() -> dict[str, object]:
    query = next(q for q in load_queries() if q["id"] == "wiki_weather-zh-006")
    return {"query": query,
            "tools": default_registry().subset(["web_search", "wiki_search", "get_weather_info", "calculator"])}


ARGS = '{"location": "Beijing", "start_date": "2025-03-15", "end_date": "2025-03-15", "is_current": "yes"}'


def test_01_2_right_answers_pass(ctx: dict[str, object]) -> None:
    assert check("01.2", _solution("01.2", "my_step"), **ctx).passed
    res = check("01.2", f"Thought: 查北京天气\nAction: get_weather_info\nAction Input: {ARGS}", **ctx)
    assert res.passed, res.message  # the English city name works too


@pytest.mark.parametrize("answer, hint", [
    (42, "字符串"),
    (f"Thought: t\nAction: get_weather_info\nAction Input: {ARGS}\nObservation: 晴", "不要自己写 Observation"),
    ("Thought: I now know the final answer\nFinal Answer: 北京下雨", "还不能给 Final Answer"),
    ("我觉得应该查一下天气", "解析失败"),
    (f"Thought: t\nAction: get_weather\nAction Input: {ARGS}", "没有叫 'get_weather' 的工具"),
    ('Thought: t\nAction: web_search\nAction Input: {"query": "北京天气"}', "不是这一步要用的工具"),
    ("Thought: t\nAction: get_weather_info\nAction Input: 北京", "API 参数只能有一个"),
    ('Thought: t\nAction: get_weather_info\nAction Input: {"location": "北京"}', "工具拒绝了这次调用"),
    (f"Thought: t\nAction: get_weather_info\nAction Input: {ARGS.replace('Beijing', 'Shanghai')}", "字节跳动的总部"),
    (f"Thought: t\nAction: get_weather_info\nAction Input: {ARGS.replace('2025-03-15', '2025-03-16', 1)}",
     "2025-03-15"),
    (f"Thought: t\nAction: get_weather_info\nAction Input: {ARGS.replace('yes', 'no')}", "实时天气"),
])
def test_01_2_wrong_answers_get_the_specific_hint(ctx: dict[str, object], answer: object, hint: str) -> None:
    res = check("01.2", answer, **ctx)
    assert res.status == "failed" and hint in res.message, res.message
