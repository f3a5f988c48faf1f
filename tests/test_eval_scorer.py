"""The KAgentBench-style scorer: hand-computed cases, the bug fixes, the pinned weights."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from labkit.errors import DataFileError
from labkit.evaluate.benchmark import load_benchmark
from labkit.evaluate.rouge import bleu, rouge_l, tokenize
from labkit.evaluate import kagentbench as kb
from labkit.evaluate.kagentbench import Step
from labkit.evaluate.scorer import (
    WEIGHTS,
    output_format_of,
    overall,
    read_conclusion,
    read_step,
    score_files,
    score_predictions,
)
from labkit.parsing import render_gold
from labkit.types import ToolCall

FIXTURE = Path(__file__).parent / "fixtures" / "kagentbench_sample.jsonl"


def gold_predictions(records: list[dict]) -> list[dict]:
    """Feed each record's first golden item back as every template's output, in that template's format."""
    preds = []
    for r in records:
        g = r["golden_result_list"][0]
        if r["type"] == "profile":
            preds.append({**r, "model_predict": g["golden_result"]})
            continue
        out = {}
        for t in r["prompt_input"]:
            fmt = output_format_of(r, t)
            if r["type"] == "conclusion":
                out[t] = {"autogpt": f'task_complete(response="{g["golden_result"]}")',
                          "toolllama": json.dumps({"return_type": "give_answer", "final_answer": g["golden_result"]},
                                                  ensure_ascii=False)}.get(fmt, g["golden_result"])
            else:
                out[t] = render_gold(ToolCall(g["tool_name"], g["tool_args"]), fmt, g["thought"])
        preds.append({**r, "model_predict": out})
    return preds


def test_tokenize_splits_cjk_and_keeps_numbers() -> None:
    assert tokenize("北京 weather on 2025-03-15, 3.14!") == ["北", "京", "weather", "on", "2025-03-15", ",", "3.14", "!"]
    assert tokenize("   ") == []


def test_rouge_hand_computed() -> None:
    assert rouge_l("北京天气", "北京天气") == 1.0  # exactly: no 1e-8
    assert rouge_l("a b", "a c d") == pytest.approx(0.4)  # LCS 1, P 1/2, R 1/3 -> 2PR/(P+R) = 0.4
    assert rouge_l("北京天气", "北京的天气") == pytest.approx(2 * 1.0 * 0.8 / 1.8)
    assert rouge_l("", "x") == 0.0 and rouge_l("  \n ", "x") == 0.0 and rouge_l("x", " ") == 0.0
    assert rouge_l("Beijing", "beijing") == 0.0  # case-sensitive, as KAgentBench
    assert bleu("北京明天天气", ["北京明天天气"]) == pytest.approx(1.0)
    assert 0.0 < bleu("北京明天天气", ["北京后天天气"]) < 1.0


def labkit_rouge(label: object, predict: object) -> float:
    return rouge_l(predict, label)


def arg_score(gold: dict, pred: dict) -> float:  # labkit's rule for a golden call without arguments
    return kb.arg_score(gold, pred, labkit_rouge, empty_gold_matches=True)


def test_arg_score_counts_matched_keys_once() -> None:  # issue #15 (fixed in the official script too)
    gold = {"location": "北京", "start_date": "2025-03-16"}
    assert arg_score(gold, dict(gold)) == 1.0
    assert arg_score(gold, {"location": "北京"}) == 0.5
    assert arg_score(gold, {"location": "北京", "start_date": "2025-03-16", "extra": 1}) == 1.0
    assert arg_score(gold, {}) == 0.0
    assert arg_score({}, {}) == 1.0 and arg_score({}, {"reason": "done"}) == 1.0
    assert kb.arg_score({}, {"reason": "done"}, labkit_rouge) == 0.0  # the official empty mean


def test_weights_are_pinned() -> None:
    assert WEIGHTS == {"Planning": 0.25, "Tool-use": 0.35, "Reflection": 0.10, "Concluding": 0.20, "Profile": 0.10}
    dims = {"Planning": 10.0, "Tool-use": 20.0, "Reflection": 30.0, "Concluding": 40.0, "Profile": 50.0}
    assert overall(dims) == pytest.approx(25.5)
    # KAgentBench README row (Qwen-7B-MAT) reproduces its Overall 39.85
    qwen_mat = {"Planning": 31.64, "Tool-use": 43.30, "Reflection": 33.34, "Concluding": 44.85, "Profile": 44.78}
    assert overall(qwen_mat) == pytest.approx(39.85, abs=0.005)


def test_golden_fed_back_scores_exactly_100() -> None:
    records = load_benchmark(FIXTURE)
    report = score_predictions(records, gold_predictions(records))
    assert report.summary() == {"Planning": 100.0, "Tool-use": 100.0, "Reflection": 100.0, "Concluding": 100.0,
                                "Profile": 100.0, "Overall": 100.0}
    assert report.complete


def test_empty_and_whitespace_predictions_score_0_without_crashing() -> None:
    records = load_benchmark(FIXTURE)
    for blank in ("", "   \n"):
        preds = [{**r, "model_predict": blank if r["type"] == "profile" else {t: blank for t in r["prompt_input"]}}
                 for r in records]
        assert set(score_predictions(records, preds).summary().values()) == {0.0}
    # a missing template key scores 0 for that template only: no reuse of the previous template's parse
    preds = gold_predictions(records)
    del preds[0]["model_predict"]["ModelScope"]
    rows = [r for r in score_predictions(records, preds).rows if r.id == records[0]["id"] and r.dimension == "Planning"]
    assert {r.template: r.score for r in rows} == {"ReACT": 1.0, "AutoGPT": 1.0, "ModelScope": 0.0, "KuaiAgent": 1.0}


def test_hand_computed_partial_plan_and_modelscope_thought() -> None:
    records = load_benchmark(FIXTURE)
    preds = gold_predictions(records)
    # Record 1, ModelScope: right tool, thought "搜索刘德华" vs gold "搜索刘德华的妻子是谁" -> P 1, R 5/10
    preds[0]["model_predict"]["ModelScope"] = ('搜索刘德华<|startofthink|>{"api_name": "web_search", '
                                               '"parameters": {"text": "刘德华 妻子"}}<|endofthink|>')
    # ReACT with a plain-string Action Input -> mapped onto web_search's first parameter "text"
    preds[0]["model_predict"]["ReACT"] = "Thought: 搜索刘德华的妻子是谁\nAction: web_search\nAction Input: 刘德华 妻子"
    rows = {(r.template, r.dimension): r.score for r in score_predictions(records, preds).rows
            if r.id == records[0]["id"]}
    assert rows[("ModelScope", "Planning")] == pytest.approx(2 * 0.5 / 1.5)
    assert rows[("ModelScope", "Tool-use")] == 1.0
    assert rows[("ReACT", "Tool-use")] == 1.0


def test_reflection_penalty_zeroes_golden_items_that_repeat_the_last_task() -> None:
    rec = load_benchmark(FIXTURE)[2]
    golden, last = rec["golden_result_list"], rec["memory_last_task"]
    score = lambda step: kb.reflection_metric(golden, step, last, labkit_rouge)  # noqa: E731
    assert score(Step("搜索上海下周天气", "web_search", {"text": "上海 下周 天气"})) == 0.0
    assert score(Step(golden[0]["thought"], "get_weather_info", dict(golden[0]["tool_args"]))) == 1.0
    assert score(Step("完全无关", "get_weather_info", {"location": "上海"})) == pytest.approx(0.7 * 0.25)


def test_conclusion_cleaning() -> None:
    assert read_conclusion('web_search(text="x")', "autogpt") == ""
    assert read_conclusion('task_complete(response="答案")', "autogpt") == "答案"
    assert read_conclusion('{"return_type": "give_answer", "final_answer": "答案"}', "toolllama") == "答案"
    assert read_conclusion("  答案  ", "conclusion") == "答案"
    assert read_step("garbage {", "KuaiAgent") == Step()  # unreadable: thought and tool 'None', no args


def test_same_file_scores_identically_twice(tmp_path: Path) -> None:
    records = load_benchmark(FIXTURE)
    preds = gold_predictions(records)
    preds[1]["model_predict"]["ToolLlama"] = "Thought: 天气\nAction: get_weather_info\nAction Input: {\"location\": \"京\"}"
    path = tmp_path / "pred.jsonl"
    path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in preds), encoding="utf-8")
    a, b = score_files(FIXTURE, path), score_files(FIXTURE, path)
    assert a.summary() == b.summary() and a.bleu == b.bleu
    assert 0 < a.dimensions["Tool-use"] < 100


def test_missing_prediction_and_bad_benchmark_name_file_line_field(tmp_path: Path) -> None:
    records = load_benchmark(FIXTURE)
    with pytest.raises(DataFileError, match="have no prediction"):
        score_predictions(records, gold_predictions(records)[1:])
    bad = tmp_path / "bench.jsonl"
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    rec = json.loads(lines[1])
    rec["type"] = "planning"
    bad.write_text("\n".join([lines[0], json.dumps(rec, ensure_ascii=False)]) + "\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"bench.jsonl:2 \[field 'type'\]"):
        load_benchmark(bad)
    assert overall({}) is None


def test_bad_predictions_file_names_line_and_field(tmp_path: Path) -> None:
    records = load_benchmark(FIXTURE)
    preds = gold_predictions(records)
    preds[2]["model_predict"] = ["not", "a", "dict"]
    path = tmp_path / "pred.jsonl"
    path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in preds), encoding="utf-8")
    with pytest.raises(DataFileError, match=r"pred.jsonl:3 \[field 'model_predict'\]"):
        score_files(FIXTURE, path)


# ---------------------------------------------------------------- hostile predictions (issue 20, finding 5)

HOSTILE_OUTPUTS = [
    '{"task_name": "t", "command": {"name": "web_search", "args": {"text": ' + "9" * 5000 + "}}}",
    "Thought: t\nAction: web_search\nAction Input: {\"text\": " + "9" * 5000 + "}",
    '{"task_name": "t", "command": {"name": "web_search", "args": {"text": ' + "[" * 600 + "]" * 600 + "}}}",
    '{"task_name": "t", "command": {"name": "web_search", "args": {"text": "' + "中文" * 50_000 + '"}}}',
    "Thought: \x00\ud800\nAction: web_search\nAction Input: {\"text\": \"\\ud800\\u0000\"}",
]


@pytest.mark.parametrize("mode", [None, "kagentbench"])
def test_hostile_predictions_score_zero_and_the_cli_exits_0(tmp_path: Path, mode: str | None,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from labkit.cli import main
    from labkit.jsonl import dumps_line

    records = load_benchmark(FIXTURE)
    for i, text in enumerate(HOSTILE_OUTPUTS):
        preds = [{**r, "model_predict": text if r["type"] == "profile" else {t: text for t in r["prompt_input"]}}
                 for r in records]
        path = tmp_path / f"pred{i}.jsonl"
        path.write_text("".join(dumps_line(p) + "\n" for p in preds), encoding="utf-8")
        report = score_files(FIXTURE, path, compat=mode)  # an exception here fails the test
        assert report.summary()["Planning"] == 0.0
        assert main(["score", str(FIXTURE), str(path), *(["--compat", mode] if mode else [])]) == 0
        assert capsys.readouterr().out.startswith("plan : 0.00, tooluse : 0.00")


def test_texts_too_long_to_compare_score_zero_with_a_note() -> None:
    """rouge-chinese's ROUGE-L slows down with length (a 100,000-character prediction: minutes); past
    MAX_TEXT_CHARS a text is not compared and the scorer says so."""
    from labkit.evaluate.rouge import MAX_TEXT_CHARS

    long = "北京" * (MAX_TEXT_CHARS // 2 + 1)
    assert rouge_l(long, "北京天气") == 0.0 and bleu(long, ["北京天气"]) == 0.0
    assert rouge_l("北京天气", "北京天气") == 1.0
    records = load_benchmark(FIXTURE)
    preds = gold_predictions(records)
    preds[0]["model_predict"] = {t: '{"task_name": "' + long + '"}' for t in preds[0]["model_predict"]}
    assert score_predictions(records, preds).note_counts()["too_long"] > 0


class Unbounded(BaseException):
    """An alarm that no ``except Exception`` catches."""


def test_the_official_escape_repair_is_bounded() -> None:
    """The official chain drops one invalid escape per json.loads: 200,000 of them would take hours."""
    from labkit.evaluate.kagentbench import MAX_ESCAPE_DROPS, read_json

    assert read_json('{"task_name": "a\\qb"}') == {"task_name": "aqb"}  # the script's repair, kept
    hostile = '{"task_name": "' + "\\q" * 200_000 + '"}'
    def alarm(*_: Any) -> None:
        raise Unbounded("the repair ran for 30 s")  # not an Exception: read_json's catch-all must not swallow it

    with_alarm = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        assert read_json(hostile) is None  # gives up after MAX_ESCAPE_DROPS deletions: the default parse
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, with_alarm)
    assert read_json('{"task_name": "' + "\\q" * MAX_ESCAPE_DROPS + '"}') == {"task_name": "q" * MAX_ESCAPE_DROPS}


@pytest.mark.parametrize("parser, fmt, text", [
    ("AutoGPT", "autogpt", 'task_complete(response="北京今天晴")'),
    ("AutoGPT", "autogpt", 'web_search(query="x") response="y")'),
    ("ToolLlama", "toolllama", 'Action: Finish\nAction Input: {"return_type": "give_answer", "final_answer": "晴"}'),
    ("ToolLlama", "toolllama", "\n"),
])
def test_read_conclusion_is_the_official_cleaning_where_one_marker_is_given(parser: str, fmt: str, text: str) -> None:
    """labkit's reader and kagentbench.clean_conclusion share the AutoGPT / ToolLlama rules (one definition in
    kagentbench): with at most one marker they give the same answer, up to labkit's trimming."""
    assert read_conclusion(text, fmt) == kb.clean_conclusion(parser, text).strip()
