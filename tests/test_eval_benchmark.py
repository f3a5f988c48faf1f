"""Building the KAgentBench-layout benchmark from held-out queries, and the sandbox teacher scoring on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.errors import DataFileError
from labkit.evaluate.benchmark import (
    BenchmarkStats,
    TypeCounts,
    benchmark_stats,
    build_benchmark,
    format_benchmark,
    load_benchmark,
    read_split,
    read_template_groups,
)
from labkit.evaluate.scorer import repeats_last_task

QUERIES = [
    {"id": "t1", "query": "北京明天（2025-03-16）天气怎么样？", "lang": "zh", "cluster": "weather",
     "gold_calls": [{"name": "get_weather_info", "args": {"location": "北京", "start_date": "2025-03-16",
                                                          "end_date": "2025-03-16", "is_current": "no"}},
                    {"name": "task_complete", "args": {}}],
     "thoughts": ["查询北京2025-03-16的天气", "任务完成"], "reference_answer": "北京 2025-03-16 阴，-1~6°C。"},
    {"id": "t2", "query": "What is 3*7+1, and then that times 2?", "lang": "en", "cluster": "math",
     "gold_calls": [{"name": "calculator", "args": {"expression": "3*7+1"}},
                    {"name": "calculator", "args": {"expression": "22*2"}}],
     "thoughts": ["compute 3*7+1", "multiply 22 by 2"], "reference_answer": "3*7+1 = 22, and 22*2 = 44."},
]
SEEN = ["kagent_planning_zh", "react", "kagent_conclusion_zh"]
UNSEEN = ["meta_xml_en", "meta_conclusion_brief_en"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], Path]:
    out = tmp_path_factory.mktemp("bench") / "benchmark.jsonl"
    return build_benchmark(QUERIES, seen=SEEN, unseen=UNSEEN, out_path=out), out


def test_layout_types_and_tags(bench: tuple[list[dict], Path]) -> None:
    records, path = bench
    assert load_benchmark(path) == records  # round-trips through the checking loader
    stats = benchmark_stats(records)
    assert list(stats) == list(BenchmarkStats.__annotations__)
    assert all(list(v) == list(TypeCounts.__annotations__) for v in stats["by_type"].values())
    # t1: plan0, reflection, conclusion, profile; t2: plan0, plan1, reflection, conclusion, profile
    assert {t: v["records"] for t, v in stats["by_type"].items()} == {"plantooluse": 3, "reflextion": 2,
                                                                      "conclusion": 2, "profile": 2}
    assert stats["total_instances"] == 2 * 7 + 2 and stats["template_tags"] == {"seen": 7, "unseen": 9}
    for r in records:
        assert set(r["template_tags"]) == set(r["prompt_input"]) == set(r["output_formats"])
        if r["type"] != "profile":
            assert sorted(r["template_tags"].values()) == ["seen", "unseen"]
    plan1 = next(r for r in records if r["id"] == "t2:plan1")
    assert plan1["golden_result_list"] == [{"thought": "multiply 22 by 2", "tool_name": "calculator",
                                            "tool_args": {"expression": "22*2"}}]
    assert "3*7+1 = 22" in plan1["memory"]  # the real tool result is in memory
    assert all("3*7+1 = 22" in p for p in plan1["prompt_input"].values())


def test_reflection_memory_holds_the_failed_call(bench: tuple[list[dict], Path]) -> None:
    refl = next(r for r in bench[0] if r["id"].startswith("t1:refl"))
    assert refl["memory_last_task"] == {"tool_name": "get_weather_info", "tool_args": {}}
    assert "missing required argument" in refl["memory"]
    assert not repeats_last_task(refl["golden_result_list"][0], refl["memory_last_task"])


def test_sandbox_teacher_scores_high_on_planning(bench: tuple[list[dict], Path], tmp_path: Path) -> None:
    from labkit.evaluate.runner import evaluate_model
    from labkit.llm import SandboxTeacher

    teacher = SandboxTeacher(gold=QUERIES, bank=None)
    report, stats = evaluate_model(teacher, bench[0], tmp_path)
    assert report.dimensions["Tool-use"] == 100.0 and report.dimensions["Reflection"] == 100.0
    assert report.dimensions["Concluding"] > 90
    assert stats.generated == sum(len(r["prompt_input"]) for r in bench[0])


def test_read_split_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "test_queries.jsonl").write_text(json.dumps(QUERIES[0], ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="stats.json"):
        read_split(tmp_path)
    (tmp_path / "stats.json").write_text(json.dumps({"train_templates": "react"}), encoding="utf-8")
    with pytest.raises(DataFileError, match=r"\[field 'train_templates'\]"):
        read_split(tmp_path)
    (tmp_path / "stats.json").write_text(json.dumps({"train_templates": SEEN, "test_templates": UNSEEN}))
    queries, seen, unseen = read_split(tmp_path)
    assert queries[0]["id"] == "t1" and seen == SEEN and unseen == UNSEEN


def test_format_benchmark_same_situations_own_tag(bench: tuple[list[dict], Path], tmp_path: Path) -> None:
    formats = ["toolllama", "modelscope"]  # stand-ins for held-out-format templates
    records = format_benchmark(QUERIES, formats, out_path=tmp_path / "formats.jsonl")
    main = {r["id"]: r for r in bench[0] if r["type"] in ("plantooluse", "reflextion")}
    assert [r["id"] for r in records] == list(main)  # the same situations as the main benchmark
    for r in records:
        assert set(r["template_tags"].values()) == {"held-out format"} and set(r["prompt_input"]) <= set(formats)
        assert r["memory"] == main[r["id"]]["memory"] and r["golden_result_list"] == main[r["id"]]["golden_result_list"]
    assert load_benchmark(tmp_path / "formats.jsonl") == records
    assert benchmark_stats(records)["template_tags"] == {"held-out format": len(records)}


def test_template_groups_load_the_build_s_template_folders(tmp_path: Path) -> None:
    from labkit.paths import REPO_ROOT
    from labkit.templates import load_template

    folder = tmp_path / "kept"
    folder.mkdir()
    text = (REPO_ROOT / "data" / "templates" / "react.yaml").read_text(encoding="utf-8")
    (folder / "groups_probe.yaml").write_text(text.replace("name: react", "name: groups_probe"), encoding="utf-8")
    groups = {"seen": SEEN, "meta": [], "unseen": UNSEEN, "held-out format": ["groups_probe"]}
    (tmp_path / "test_queries.jsonl").write_text(json.dumps(QUERIES[0], ensure_ascii=False) + "\n", encoding="utf-8")
    stats = {"train_templates": SEEN, "test_templates": UNSEEN + ["groups_probe"], "template_groups": groups,
             "template_dirs": [str(folder)]}
    (tmp_path / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    assert read_template_groups(tmp_path) == groups
    assert load_template("groups_probe").path.parent == folder  # the build's folder is on the search path now
    assert read_split(tmp_path)[1:] == (SEEN, UNSEEN)  # held-out formats are a group of their own
    (tmp_path / "stats.json").write_text(json.dumps({**stats, "template_dirs": [str(tmp_path / "gone")]}))
    with pytest.raises(DataFileError, match=r"\[field 'template_dirs'\]"):
        read_template_groups(tmp_path)


def test_select_queries_round_robin_over_clusters() -> None:
    from labkit.evaluate.benchmark import select_queries

    qs = [{"id": f"w{i}", "cluster": "weather", "lang": "zh", "gold_calls": [{"name": "x"}]} for i in range(5)]
    qs += [{"id": "m0", "cluster": "math", "lang": "en", "gold_calls": [{"name": "x"}]},
           {"id": "n0", "cluster": "none", "lang": "en", "gold_calls": []}]
    assert [q["id"] for q in select_queries(qs, 3)] == ["m0", "w0", "w1"]
    assert len(select_queries(qs, 100)) == 6  # the no-tool query is left out
