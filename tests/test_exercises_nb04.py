"""Notebook 04's checkers: the reference solutions pass, typical wrong answers get the hint that names the mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from labkit.course import load_solutions
from labkit.data.queries import load_queries
from labkit.exercises import check
from labkit.meta.cluster import cluster_queries
from labkit.meta.generate import flaw_examples
from labkit.meta.judge import keep_instance
from labkit.paths import REPO_ROOT

SOL = load_solutions(REPO_ROOT / "notebooks" / "solutions" / "04.py")
KINDS = ["format_in_words", "missing_section", None, "colliding_labels"]  # as in the notebook


@pytest.fixture(scope="module")
def quiz(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("quiz")
    cluster = cluster_queries(load_queries(), 6, seed=0).clusters[0]
    out = {}
    for name, cand in zip(["quiz_a", "quiz_b", "quiz_c", "quiz_d"], flaw_examples(cluster, KINDS, seed=0)):
        out[name] = folder / f"{name}.yaml"
        out[name].write_text(cand.text, encoding="utf-8")
    return out


def instances() -> pd.DataFrame:
    rows = []
    # exact binary fractions, so "equal to the threshold" really is equal
    for t, scores in {"a": [1.0, 1.0, 0.5], "b": [0.75, 0.75, 0.75], "c": [1.0, 0.0, 0.0], "d": [0.875] * 3}.items():
        for i, s2 in enumerate(scores):
            rows.append({"template": t, "s1": 0.9, "s2": s2, "delta": s2 - 0.9, "kept": keep_instance(s2, 0.9, -0.05)})
    return pd.DataFrame(rows)


def run(exercise_id: str, name: str, **scope: Any) -> Any:
    exec(SOL[exercise_id], scope)
    return scope[name]


def test_04_1_solution_passes_and_hints_name_the_check(quiz: dict[str, Path]) -> None:
    assert check("04.1", run("04.1", "my_dropped"), quiz=quiz).passed
    words = check("04.1", {"quiz_a", "quiz_b", "quiz_d"}, quiz=quiz)
    assert not words.passed and "quiz_a 会通过" in words.message and "成对裁判" in words.message
    missed = check("04.1", {"quiz_b"}, quiz=quiz)
    assert not missed.passed and "quiz_d 会被删" in missed.message and "同一个标签" in missed.message
    missing = check("04.1", {"quiz_d"}, quiz=quiz)
    assert "quiz_b 会被删" in missing.message and "memory_block" in missing.message
    assert "集合" in check("04.1", "quiz_b", quiz=quiz).message
    assert "没有这些候选" in check("04.1", {"quiz_z"}, quiz=quiz).message
    assert check("04.1", ..., quiz=quiz).status == "unanswered"


def test_04_2_solution_passes_and_typical_mistakes_are_named() -> None:
    inst = instances()
    assert check("04.2", run("04.2", "keep"), instances=inst, epsilon=-0.05).passed
    assert "用了 >=" in check("04.2", lambda s2, s1, eps: s2 - s1 >= eps).message
    assert "方向" in check("04.2", lambda s2, s1, eps: s1 - s2 > eps).message
    no_eps = check("04.2", lambda s2, s1, eps: s2 - s1 > 0)
    assert not no_eps.passed and "ε" in no_eps.message
    boom = check("04.2", lambda s2, s1, eps: 1 / 0)
    assert not boom.passed and "ZeroDivisionError" in boom.message


def test_04_3_solution_passes_and_typical_mistakes_are_named() -> None:
    inst = instances()
    sol = run("04.3", "my_kept", inst=inst, threshold=0.75)
    assert sol == {"a", "d"} and check("04.3", sol, instances=inst, threshold=0.75).passed
    assert "所有" in check("04.3", {"a", "c", "d"}, instances=inst, threshold=0.75).message  # mean of kept only
    assert "严格大于" in check("04.3", {"a", "b", "d"}, instances=inst, threshold=0.75).message  # >=
    assert "方向反了" in check("04.3", {"b", "c"}, instances=inst, threshold=0.75).message


@pytest.fixture(scope="module")
def candidate_ctx(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from labkit.meta.pipeline import meta_settings
    from labkit.templates import load_templates

    settings = meta_settings("smoke")
    cluster = cluster_queries(load_queries(), settings.n_clusters, seed=0).clusters[0]
    return {"cluster": cluster, "out_dir": tmp_path_factory.mktemp("mine"), "n_queries": settings.judge_queries,
            "others": {t.name: t.text for t in load_templates()}}


def test_04_4_solution_passes_both_filters(candidate_ctx: dict[str, Any]) -> None:
    scope: dict[str, Any] = {}
    exec(SOL["04.4"], scope)
    res = check("04.4", scope["my_template"], **candidate_ctx)
    assert res.passed, res.message


def _variant(scope_text: str, old: str, new: str) -> str:
    assert old in scope_text
    return scope_text.replace(old, new)


def test_04_4_named_wrong_answers_fail(candidate_ctx: dict[str, Any]) -> None:
    scope: dict[str, Any] = {}
    exec(SOL["04.4"], scope)
    good: str = scope["my_template"]
    react = (REPO_ROOT / "data" / "templates" / "react.yaml").read_text(encoding="utf-8")
    cases = [
        (react, "已经被占用"),  # a builtin template handed in as is
        (react.replace("name: react", "name: my_react"), "相似度"),  # a builtin renamed: not a new template
        (_variant(good, "  {{ memory_block }}\n", ""), "缺了 memory"),  # a part missing
        ("name: [", "YAML 写坏了"),
        (42, "YAML 字符串"),
    ]
    for answer, hint in cases:
        res = check("04.4", answer, **candidate_ctx)
        assert not res.passed and hint in res.message, (hint, res.message)
    # the judge step: a format described in words only (no worked example) and no listed-tools rule -> the
    # prompt-sensitive reader answers in another format or picks a wrong tool more often
    vague = _variant(_variant(good, "output_format: react", "output_format: task_json"),
                     "  2. 只能使用下面列出的工具，不要编造工具；参数写成 JSON 对象；\n", "")
    vague = vague.split("  【回复格式】")[0].replace("做事的规矩", "注意")
    vague += '  【回复格式】输出一个 JSON 对象，键是 "task_name"（这一步做什么）和 command（含 name 与 args）。\n'
    many = {**candidate_ctx, "n_queries": 12}  # the reader errs at random: judge enough situations to see it
    res = check("04.4", vague.replace("name: my_agent_template", "name: my_vague"), **many)
    assert not res.passed and "成对裁判" in res.message, res.message
    assert check("04.4", good.replace("name: my_agent_template", "name: my_good"), **many).passed
