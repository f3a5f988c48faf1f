"""Compatibility mode: the official KAgentBench script's numbers, its JSON rules, tokenizer and crash points."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from unicodedata import category

import pytest

from labkit.cli import main
from labkit.errors import DataFileError
from labkit.evaluate import kagentbench as kb
from labkit.evaluate.benchmark import load_benchmark
from labkit.evaluate.rouge import NLTK_DATA_DIR, tokenize
from labkit.evaluate.scorer import (
    DIMENSIONS,
    difference_effects,
    load_predictions,
    read_step,
    score_files,
    score_predictions,
)

FIXTURE = Path(__file__).parent / "fixtures" / "kagentbench_compat"

# Printed by the unmodified official benchmark/benchmark_eval.py (KwaiKEG/KwaiAgents, latest commit; nltk 3.10.4,
# rouge-chinese 1.0.3, Python 3.11, NLTK_DATA pointing at labkit/evaluate/nltk_data) on FIXTURE/eval.jsonl +
# FIXTURE/pred.jsonl (34 records from labkit's query bank with noisy outputs). The unrounded values are the script's
# plantooluse_metrics / reflextion_metrics / conclusion_metrics / profile_metrics results; official_items.jsonl holds
# the script's value for every template (its get_*_metric functions called per template). Nothing is hand-edited.
OFFICIAL_LINE = ("plan : 31.98, tooluse : 31.40, reflextion : 28.79, conclusion : 56.18, profile : 66.36, "
                 "overall : 39.74")
OFFICIAL_MEANS = {"Planning": 0.3197870989571946, "Tool-use": 0.31399462898052594, "Reflection": 0.2878908983365436,
                  "Concluding": 0.5618233190701498, "Profile": 0.663639879556172}


def compat(bench: list[dict], preds: list[dict]):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return score_predictions(bench, preds, compat="kagentbench")


def test_compat_prints_the_official_line_and_values() -> None:
    report = score_files(FIXTURE / "eval.jsonl", FIXTURE / "pred.jsonl", compat="kagentbench")
    assert report.official_line() == OFFICIAL_LINE
    assert report.dimensions == {d: OFFICIAL_MEANS[d] * 100 for d in DIMENSIONS}  # unrounded, to the last bit
    mine = {(r.id, r.template, r.dimension): r.score for r in report.rows}
    official = [json.loads(line) for line in (FIXTURE / "official_items.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(official) == len(mine) == 121
    assert all(mine[(o["id"], o["template"], o["dimension"])] == o["score"] for o in official)
    assert report.notes == [] and report.mode == "kagentbench"
    own = score_files(FIXTURE / "eval.jsonl", FIXTURE / "pred.jsonl")  # labkit's own mode reads more of it
    assert own.mode == "labkit" and own.overall > report.overall + 10


def test_cli_score_prints_the_official_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", str(FIXTURE / "eval.jsonl"), str(FIXTURE / "pred.jsonl"), "--compat", "kagentbench"]) == 0
    assert capsys.readouterr().out.strip() == OFFICIAL_LINE
    assert main(["score", str(FIXTURE / "eval.jsonl"), str(FIXTURE / "pred.jsonl"),
                 "--switch", "tolerant_json=off", "--switch", "exact_rouge=off"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("plan : ") and line != OFFICIAL_LINE
    assert main(["score", str(FIXTURE / "eval.jsonl"), str(FIXTURE / "pred.jsonl"), "--switch", "nope=on"]) == 2
    assert "unknown scoring switch 'nope'" in capsys.readouterr().err


def test_kagentbench_tokenizer_is_nltk_word_tokenize_on_the_shipped_model() -> None:
    import nltk

    texts = ["I don't know. It's \"fine\", see https://a.b/c?d=1 e.g. 北京天气 3.14 U.S.", "Mr. Smith went to "
             "Washington. He said hi.", "查询2025-03-15北京的天气（晴）。然后 let's go!", "a 'quoted' word... end?"]
    saved = list(nltk.data.path)
    nltk.data.path[:] = [str(NLTK_DATA_DIR)]  # only the shipped model, nothing downloaded
    try:
        for text in texts:
            words = nltk.word_tokenize(text)
            expected = [c for w in words for c in (list(w) if any(category(ch) == "Lo" for ch in w) else [w])]
            assert tokenize(text, "kagentbench") == expected, text
    finally:
        nltk.data.path[:] = saved
    assert tokenize("Mr. Smith went. He left.", "kagentbench") == ["Mr.", "Smith", "went", ".", "He", "left", "."]


@pytest.mark.parametrize(("text", "expected"), [
    ('{"a": 1}', {"a": 1}),
    ('Sure: {"a": 1}', None),                       # compact JSON with prose around it: no '}\n}' to cut at
    ('Sure:\n{"a": {\n"b": 1\n}\n}\nbye', {"a": {"b": 1}}),  # the span up to the last '}\n}'
    ('{"a": {"b": 1', {"a": {"b": 1}}),             # truncated: '\n}' appended per missing brace
    ("{a: 1}", {"a": 1}),                           # bare key quoted
    ('{"url": "http://x", a: 1}', None),            # quoting also hits 'http:' inside the string: gives up
    ('{"p": "C:\\q"}', {"p": "C:q"}),               # invalid escape: the backslash is dropped
    ('{"a": 1}}}', None),                           # surplus '}': every trailing '}' is stripped at once
    ("```json\n{\"a\": 1}\n```", None),             # code fence
    ('[{"a": 1}]', None),                           # not an object
    (None, None),
])
def test_official_json_rules(text: object, expected: dict | None) -> None:
    assert kb.read_json(text) == expected


def test_official_field_rules() -> None:
    assert read_step("Thought: x\nAction: web_search\nAction Input: q", "ReACT",
                     [{"name": "web_search", "parameters": {"properties": {"query": {}}}}],
                     options=kb_official()) == kb.Step("Thought: x", "web_search", {"query": "q"}, "q")
    llama = kb.parse_toolllama("no label\nAction: web_search\nAction Input: {\"q\": 1}")
    assert llama.thought == [] and llama.tool_name == "web_search" and llama.tool_args == {"q": 1}
    assert kb.parse_modelscope('想<|startofthink|>{"api_name": "x", "parameters": {}}<|endofthink|>').thought == "None"
    assert kb.parse_kuaiagent('{"task_name": "", "command": {"name": "", "args": []}}') == kb.Step("", "None", {})
    assert kb.clean_conclusion("AutoGPT", 'x response="答") y response="z")') == "答 y "
    assert kb.clean_conclusion("ToolLlama", '{"final_answer": "a"} "final_answer": "b"}') == "a "
    with pytest.raises(kb.OfficialCrash, match="command is str"):
        kb.parse_kuaiagent('{"task_name": "x", "command": "the name"}')


def kb_official():
    from labkit.evaluate.differences import ScoringOptions
    return ScoringOptions.official()


def record(rid: str, typ: str, predict: object, golden: list | None = None, **extra: object) -> dict:
    golden = golden if golden is not None else ([{"golden_result": "答案"}] if typ in ("conclusion", "profile") else
                                                [{"thought": "查", "tool_name": "web_search", "tool_args": {}}])
    return {"id": rid, "type": typ, "golden_result_list": golden, "funcs": [], "model_predict": predict, **extra}


def test_where_the_official_script_crashes_compat_scores_0_and_says_so() -> None:
    recs = [record("ws", "plantooluse", {"AutoGPT": '{"thoughts": {"text": "  "}, "command": {"name": "web_search"}}'}),
            record("first", "plantooluse", {"ReACT": "", "KuaiAgent": '{"task_name": "查", "command": {"name": '
                                                                   '"web_search"}}'}),
            record("none", "reflextion", {"KuaiAgent": "{}"}, [{"thought": "None", "tool_name": "None",
                                                               "tool_args": "None"}], memory_last_task={}),
            record("last", "reflextion", {"KuaiAgent": '{"task_name": "查", "command": {"name": "web_search"}}'},
                   memory_last_task={}),
            record("conc", "conclusion", {"KuaiAgent": " \n", "AutoGPT": None}),
            record("prof", "profile", "hi", []), record("cmd", "plantooluse", {"KuaiAgent": '{"command": 3}'})]
    with pytest.warns(UserWarning, match="would stop with an error were scored 0"):
        report = score_predictions(recs, recs, compat="kagentbench")
    rows = {(r.id, r.template, r.dimension): r.score for r in report.rows}
    assert rows[("ws", "AutoGPT", "Planning")] == 0.0 and rows[("ws", "AutoGPT", "Tool-use")] == 1.0
    assert rows[("first", "ReACT", "Planning")] == 0.0 and rows[("first", "KuaiAgent", "Planning")] > 0.99
    assert rows[("none", "KuaiAgent", "Reflection")] == 0.0 and rows[("last", "KuaiAgent", "Reflection")] == 0.0
    assert rows[("conc", "KuaiAgent", "Concluding")] == 0.0 and rows[("prof", "profile", "Profile")] == 0.0
    assert set(report.crash_counts()) == {"empty_tokens", "no_previous_parse", "no_golden", "bad_last_task",
                                          "bad_output_type", "parser_error"}
    assert {n.id for n in report.notes} >= {"ws", "first", "none", "last", "conc", "prof", "cmd"}
    assert all(not math.isnan(v) for v in report.dimensions.values() if v is not None)


def test_missing_abilities_are_na_never_nan_and_an_empty_benchmark_is_an_error() -> None:
    recs = [record("p", "profile", "答案")]
    own, official = score_predictions(recs, recs), compat(recs, recs)
    assert own.summary() == {"Planning": None, "Tool-use": None, "Reflection": None, "Concluding": None,
                             "Profile": 100.0, "Overall": 100.0}  # labkit: weights renormalised over what exists
    assert official.overall is None and official.dimensions["Profile"] == kb.best_answer_score(
        "答案", ["答案"], lambda a, b: 2.0 * ((1.0 * 1.0) / (1.0 + 1.0 + 1e-8))) * 100
    assert official.official_line() == ("plan : n/a, tooluse : n/a, reflextion : n/a, conclusion : n/a, "
                                        "profile : 100.00, overall : n/a")
    assert official.note_counts()["missing_dimension"] == 4
    with pytest.raises(DataFileError, match="the benchmark has no records"):
        score_predictions([], [])


def test_prediction_ids_missing_from_the_benchmark_are_an_error(tmp_path: Path) -> None:
    bench = load_benchmark(FIXTURE / "eval.jsonl")
    preds = load_predictions(FIXTURE / "pred.jsonl")
    extra = {**preds[3], "id": "not-in-the-benchmark"}
    path = tmp_path / "pred.jsonl"
    path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in [*preds, extra]), encoding="utf-8")
    for mode in (None, "kagentbench"):
        with pytest.raises(DataFileError, match=r"pred.jsonl:35 \[field 'id'\]: 1 prediction ids are not in the "
                                                r"benchmark \(first: 'not-in-the-benchmark'\)"):
            score_files(FIXTURE / "eval.jsonl", path, compat=mode)
    with pytest.raises(DataFileError, match="have no prediction"):
        score_predictions(bench, preds[1:])


def test_loader_is_as_lenient_as_the_official_script(tmp_path: Path) -> None:
    lines = [{"id": 1, "type": "plantooluse", "golden_result_list": [{"thought": "查", "tool_name": "web_search",
                                                                      "tool_args": {}}]},  # no query/prompt_input
             {"id": "2", "type": "reflextion", "query": "q", "prompt_input": {}, "memory_last_task": "not an object",
              "golden_result_list": [{"thought": "查", "tool_name": "web_search", "tool_args": {}}]},
             {"id": "3", "type": "profile", "golden_result_list": [{"golden_result": "{'a': 1}"}]}]
    bench = tmp_path / "eval.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    preds = [{**lines[0], "model_predict": {"KuaiAgent": '{"task_name": "查", "command": {"name": "web_search"}}'}},
             {**lines[1], "model_predict": {"KuaiAgent": '{"task_name": "查", "command": {"name": "web_search"}}'}},
             {**lines[2], "model_predict": {"a": 1}}]  # a dict profile prediction: scored as str()
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps(r) + "\n" for r in preds), encoding="utf-8")
    for mode in (None, "kagentbench"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = score_files(bench, pred, compat=mode)
        scores = {(r.id, r.dimension): r.score for r in report.rows}
        assert scores[("1", "Tool-use")] == 1.0 and scores[("3", "Profile")] > 0.99
        assert scores[("2", "Reflection")] == 0.0  # memory_last_task unusable: noted, scored 0
        assert report.note_counts()["bad_last_task"] == 1


def test_official_layout_export_splits_templates_that_share_a_parser() -> None:
    rec = {"id": "x", "type": "plantooluse", "golden_result_list": [], "prompt_input": {"a": "", "b": "", "c": ""},
           "output_formats": {"a": "task_json", "b": "task_json", "c": "react"}}
    ev, pr = kb.to_official_layout([rec], [{**rec, "model_predict": {"a": "1", "b": "2", "c": "3"}}])
    assert [p["id"] for p in pr] == ["x", "x#2"] and [e["id"] for e in ev] == ["x", "x#2"]
    assert pr[0]["model_predict"] == {"KuaiAgent": "1", "ReACT": "3"} and pr[1]["model_predict"] == {"KuaiAgent": "2"}
    assert "output_formats" not in ev[0]
    assert all(set(p) <= set(kb.Prediction.__annotations__) for p in pr)
    # the field readers take any mapping (a parsed output is checked, not trusted)
    from types import MappingProxyType

    step = kb.modelscope_fields(MappingProxyType({"api_name": "f", "parameters": {"x": 1}}))
    assert (step.tool_name, step.tool_args) == ("f", {"x": 1})
    step = kb.kuaiagent_fields(MappingProxyType({"task_name": "t", "command": {"name": "g", "args": []}}))
    assert (step.thought, step.tool_name, step.tool_args) == ("t", "g", {})  # args that are not an object: none


def test_difference_effects_add_up_to_the_gap() -> None:
    bench, preds = load_benchmark(FIXTURE / "eval.jsonl"), load_predictions(FIXTURE / "pred.jsonl")
    table = difference_effects(bench, preds, switches=["tolerant_json", "exact_rouge"])
    own = score_files(FIXTURE / "eval.jsonl", FIXTURE / "pred.jsonl").summary()["Overall"]
    assert table.loc["(all: labkit − official)", "Overall"] == round(own - 39.74, 2)
    assert table.loc["tolerant_json", "Overall"] > 1 and abs(table.loc["exact_rouge", "Overall"]) < 0.01
