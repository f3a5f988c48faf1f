"""Notebook 02's checkers: the right answer passes, typical wrong answers get the hint that names the mistake."""

from __future__ import annotations

import json
from typing import Any

import pytest

from labkit.agent import run_plan
from labkit.course import load_solutions
from labkit.data import load_queries
from labkit.exercises import check
from labkit.llm import get_model
from labkit.paths import REPO_ROOT
from labkit.tools import default_registry

SOL = load_solutions(REPO_ROOT / "notebooks" / "solutions" / "02.py")
QUERY = "我有800英镑，换成欧元后花了510欧元，还剩多少欧元？"
TOOLS = default_registry().subset(["web_search", "wiki_search", "currency_convert", "calculator"])


@pytest.fixture(scope="module")
def scope() -> dict[str, Any]:
    trace = run_plan(get_model("sandbox"), QUERY, tools=TOOLS)
    return {"trace_teacher": trace, "json": json, "ex_query": next(q for q in load_queries() if q["query"] == QUERY)}


def _run(exercise_id: str, scope: dict[str, Any], name: str) -> Any:
    env = dict(scope)
    exec(SOL[exercise_id], env)
    return env[name]


def task(name: str, tool: str, **args: Any) -> str:
    return json.dumps({"task_name": name, "command": {"name": tool, "args": args}}, ensure_ascii=False)


def test_02_1_solution_passes(scope: dict[str, Any]) -> None:
    res = check("02.1", _run("02.1", scope, "my_task"), query=scope["ex_query"], tools=TOOLS)
    assert res.passed, res.message
    assert check("02.1", task("算剩余", "calculator", expression="955.84-510"), query=scope["ex_query"],
                 tools=TOOLS).passed


@pytest.mark.parametrize("answer, hint", [
    ({"task_name": "x"}, "json.dumps"),
    ("先算一下", "解析失败"),
    ("{'task_name': '算', 'command': {'name': 'calculator', 'args': {'expression': '955.84 - 510'}}}", "双引号"),
    ("好的：" + task("算", "calculator", expression="955.84 - 510"), "容错修复"),
    (task("", "calculator", expression="955.84 - 510"), "task_name 缺失或为空"),
    (json.dumps({"command": {"name": "calculator", "args": {}}}), "task_name 缺失或为空"),
    (task("完成", "task_complete"), "还不能 task_complete"),
    (task("换算", "currency_convert", amount=800, from_currency="GBP", to_currency="EUR"), "不能重复调用"),
    (task("算", "python", code="955.84-510"), "没有叫 'python'"),
    (task("搜", "web_search", query="955.84-510"), "不是这一步需要的工具"),
    (task("算", "calculator", expr="955.84 - 510"), "工具拒绝了这次调用"),
    (task("算", "calculator", expression="800 - 510"), "用了 800"),
    (task("算", "calculator", expression="955.84 + 510"), "减去花掉的 510"),
    (task("算", "calculator", expression="445.84"), "做这道计算"),  # issue 21: the pre-computed answer
    (task("算", "calculator", expression="445.84 + 0"), "做这道计算"),
])
def test_02_1_wrong_answers_get_the_specific_hint(scope: dict[str, Any], answer: Any, hint: str) -> None:
    res = check("02.1", answer, query=scope["ex_query"], tools=TOOLS)
    assert res.status == "failed" and hint in res.message, res.message


def test_02_2_solution_passes(scope: dict[str, Any]) -> None:
    res = check("02.2", _run("02.2", scope, "should_stop"))
    assert res.passed, res.message


def _json_compare(call, done, max_steps):  # compares JSON strings: key order matters (wrong)
    if call["name"] == "task_complete":
        return "finished"
    if json.dumps(call) in [json.dumps(d) for d in done]:
        return "repeated_call"
    return "max_steps" if len(done) >= max_steps else None


def _names_only(call, done, max_steps):  # a repeated *tool* counts as a repeat (wrong)
    if call["name"] == "task_complete":
        return "finished"
    if call["name"] in [d["name"] for d in done]:
        return "repeated_call"
    return "max_steps" if len(done) >= max_steps else None


def _off_by_one(call, done, max_steps):
    if call["name"] == "task_complete":
        return "finished"
    if call in done:
        return "repeated_call"
    return "max_steps" if len(done) >= max_steps - 1 else None


def _steps_first(call, done, max_steps):
    if len(done) >= max_steps:
        return "max_steps"
    if call["name"] == "task_complete":
        return "finished"
    return "repeated_call" if call in done else None


def _hard_coded(call, done, max_steps):
    if call["name"] == "task_complete":
        return "finished"
    if call in done:
        return "repeated_call"
    return "max_steps" if len(done) >= 5 else None


def _raises(call, done, max_steps):
    return done[-1]["name"]  # IndexError on the first case


@pytest.mark.parametrize("fn, hint", [
    (_json_compare, "比较 dict"),
    (_names_only, "名字相同但参数不同不算重复"),
    (_off_by_one, "差一错误"),
    (_steps_first, "先判断完成"),
    (_hard_coded, "不要写死 5"),
    (_raises, "IndexError"),
    ("should_stop", "函数"),
])
def test_02_2_wrong_functions_get_the_specific_hint(fn: Any, hint: str) -> None:
    res = check("02.2", fn)
    assert res.status == "failed" and hint in res.message, res.message
