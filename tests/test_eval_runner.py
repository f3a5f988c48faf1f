"""Runner: batched generation through an on-disk cache; resume after a kill makes 0 new calls; agent success."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from labkit.evaluate.benchmark import load_benchmark
from labkit.evaluate.kagentbench import Prediction
from labkit.evaluate.runner import (
    AgentRow,
    agent_row,
    answer_matches,
    args_match,
    check_trace,
    evaluate_model,
    generate_predictions,
)
from labkit.llm.cached import RequestCache
from labkit.types import ChatResult, Message

FIXTURE = Path(__file__).parent / "fixtures" / "kagentbench_sample.jsonl"


@dataclass
class CountingModel:
    """A fake ChatModel that answers every prompt with a fixed ReAct step and counts what it was asked."""

    name: str = "counting"
    calls: int = 0
    batches: list[int] = field(default_factory=list)

    def chat(self, messages: list[Message], **kw: Any) -> ChatResult:
        return self.chat_batch([messages], **kw)[0]

    def chat_batch(self, batch: list[list[Message]], **kw: Any) -> list[ChatResult]:
        self.calls += len(batch)
        self.batches.append(len(batch))
        return [ChatResult("Thought: 搜索刘德华的妻子是谁\nAction: web_search\nAction Input: 刘德华 妻子", self.name,
                           completion_tokens=12) for _ in batch]


def test_cache_makes_rerun_free_and_survives_a_torn_line(tmp_path: Path) -> None:
    bench = load_benchmark(FIXTURE)
    n_prompts = sum(len(r["prompt_input"]) for r in bench)
    model = CountingModel()
    cache = tmp_path / "cache.jsonl"
    preds, stats = generate_predictions(model, bench, cache, batch_size=3)
    assert model.calls == n_prompts == stats.generated and max(model.batches) <= 3
    assert preds[0]["model_predict"]["ReACT"].startswith("Thought:") and isinstance(preds[4]["model_predict"], str)
    again = CountingModel()
    _, stats2 = generate_predictions(again, bench, cache)
    assert again.calls == 0 and stats2.cached == n_prompts
    # a kill in the middle of a write leaves a torn last line: that one prompt is redone, nothing else
    text = cache.read_text(encoding="utf-8")
    cache.write_text(text[: text.rstrip("\n").rfind("\n") + 1] + '{"key": "abc", "te', encoding="utf-8")
    third = CountingModel()
    generate_predictions(third, bench, cache)
    assert third.calls == 1
    assert len(RequestCache(cache)) == n_prompts


def test_evaluate_model_writes_predictions_and_scores(tmp_path: Path) -> None:
    bench = load_benchmark(FIXTURE)
    report, _ = evaluate_model(CountingModel(), bench, tmp_path / "eval")
    assert (tmp_path / "eval" / "predictions.jsonl").exists() and (tmp_path / "eval" / "scores.json").exists()
    lines = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text("utf-8").splitlines()]
    assert all(list(p)[-2:] == ["model_predict", "model_id"] and set(p) <= set(Prediction.__annotations__)
               for p in lines)  # a Prediction: the benchmark record, its outputs, who answered
    # ReACT on record 1 is exactly right (thought + tool + args): Planning of that record = mean over 4 templates
    rows = [r for r in report.rows if r.id == bench[0]["id"] and r.dimension == "Planning"]
    assert {r.template: r.score for r in rows}["ReACT"] == 1.0
    assert report.dimensions["Tool-use"] > 0 and report.dimensions["Concluding"] < 100


@dataclass
class FakeTrace:
    calls: list[dict[str, Any]]
    final_answer: str | None
    stopped: str = "finished"
    steps: list[Any] = field(default_factory=list)


def test_success_definition() -> None:
    gold = {"id": "q1", "gold_calls": [{"name": "get_weather_info", "args": {"location": "北京", "start_date": "2025-03-16"}},
                                       {"name": "task_complete", "args": {}}],
            "reference_answer": "北京 2025-03-16 晴，最高 12°C，最低 3°C。"}
    good = FakeTrace([{"name": "get_weather_info", "args": {"location": "北京市", "start_date": "2025-03-16"}}],
                     "明天（2025-03-16）北京晴，3 到 12°C。")
    assert check_trace(good, gold).success
    wrong_day = FakeTrace([{"name": "get_weather_info", "args": {"location": "北京", "start_date": "2025-03-17"}}],
                          good.final_answer)
    assert check_trace(wrong_day, gold).missing_calls == ["get_weather_info"]
    assert not check_trace(FakeTrace(good.calls, "北京晴。"), gold).answer_ok
    assert not answer_matches("", "x") and answer_matches("Paris is the capital", "the capital is Paris")
    assert args_match({}, {"x": 1}) and not args_match({"a": "1"}, {})


def test_agent_success_with_the_sandbox_teacher(tmp_path: Path) -> None:
    from labkit.agent import Trace
    from labkit.evaluate.runner import agent_success
    from labkit.llm import SandboxTeacher

    gold = [{"id": "t1", "query": "北京明天（2025-03-16）天气怎么样？", "lang": "zh",
             "gold_calls": [{"name": "get_weather_info", "args": {"location": "北京", "start_date": "2025-03-16",
                                                                  "end_date": "2025-03-16", "is_current": "no"}}],
             "thoughts": ["查询北京2025-03-16的天气"], "reference_answer": "北京 2025-03-16 阴，-1~6°C。"}]
    rate, outcomes = agent_success(SandboxTeacher(gold=gold, bank=None), gold, traces_path=tmp_path / "t.jsonl")
    assert rate == 1.0 and outcomes[0].calls_ok and outcomes[0].answer_ok
    assert list(agent_row(rate, outcomes)) == list(AgentRow.__annotations__)
    assert Trace.load(tmp_path / "t.jsonl")[0].final_answer == gold[0]["reference_answer"]
    # a teacher that knows nothing answers "cannot answer": no tool calls, no success
    rate, outcomes = agent_success(SandboxTeacher(bank=None), gold)
    assert rate == 0.0 and outcomes[0].missing_calls == ["get_weather_info"]


def test_another_model_cannot_overwrite_an_eval_folder(tmp_path: Path) -> None:
    from labkit.errors import LabkitError

    bench, out = load_benchmark(FIXTURE), tmp_path / "eval"
    evaluate_model(CountingModel(name="model-a"), bench, out)
    before = {p: (out / p).read_bytes() for p in ("predictions.jsonl", "scores.json")}
    with pytest.raises(LabkitError, match=r"holds the results of model 'model-a'.*one out_dir per model"):
        evaluate_model(CountingModel(name="model-b"), bench, out)
    assert {p: (out / p).read_bytes() for p in before} == before
    evaluate_model(CountingModel(name="model-a"), bench, out)  # the same model may re-run into its own folder
    evaluate_model(CountingModel(name="model-b"), bench, out, overwrite=True)
    assert json.loads((out / "scores.json").read_text())["model"] == "model-b"


def test_learning_curve_reads_base_and_final_answers_from_the_full_evaluation(tmp_path: Path, monkeypatch) -> None:
    from labkit.evaluate.report import learning_curve

    bench = load_benchmark(FIXTURE)
    tuned = tmp_path / "tuned"
    tuned.mkdir()
    (tuned / "config.json").write_text("{}", encoding="utf-8")
    (tuned / "train_log.jsonl").write_text('{"step": 1, "s_per_step": 60}\n{"step": 2, "s_per_step": 60}\n',
                                           encoding="utf-8")
    loaded: list[CountingModel] = []

    def local_model(spec: Any, **kw: Any) -> CountingModel:  # stands in for LocalHFModel(path): same name, same cache identity
        loaded.append(CountingModel(name=str(spec)))
        return loaded[-1]

    monkeypatch.setattr("labkit.llm.LocalHFModel", local_model)
    evaluate_model(CountingModel(name="base-x"), bench, tmp_path / "eval" / "base")
    evaluate_model(CountingModel(name=str(tuned)), bench, tmp_path / "eval" / "tuned")
    caches = {"base-x": tmp_path / "eval" / "base" / "cache.jsonl", str(tuned): tmp_path / "eval" / "tuned" / "cache.jsonl"}
    curve = learning_curve(tuned, bench, tmp_path / "eval", base="base-x", n_queries=2, caches=caches)
    assert list(curve["point"]) == ["base", "final (step 2)"] and list(curve["train minutes"]) == [0.0, 2.0]
    assert list(curve["generated"]) == [0, 0] and sum(m.calls for m in loaded) == 0
    fresh = learning_curve(tuned, bench, tmp_path / "eval_fresh", base="base-x", n_queries=2)  # no caches given
    assert all(fresh["generated"] > 0) and list(fresh["Overall"]) == list(curve["Overall"])


@dataclass
class SilentStudent(CountingModel):
    """A local student that sometimes answers nothing (an immediate end of turn)."""

    def chat_batch(self, batch: list[list[Message]], **kw: Any) -> list[ChatResult]:
        self.calls += len(batch)
        return [ChatResult("" if "ReACT" in str(m) or len(str(m)) % 2 else "Thought: x", self.name) for m in batch]


def test_empty_answers_are_scored_as_given_and_generated_again_next_time(tmp_path: Path) -> None:
    bench, cache = load_benchmark(FIXTURE), tmp_path / "cache.jsonl"
    n_prompts = sum(len(r["prompt_input"]) for r in bench)
    first = SilentStudent()
    preds, stats = generate_predictions(first, bench, cache)
    texts = [t for p in preds for t in (p["model_predict"].values() if isinstance(p["model_predict"], dict)
                                        else [p["model_predict"]])]
    empty = sum(not t for t in texts)
    assert len(texts) == n_prompts and 0 < empty < n_prompts and len(RequestCache(cache)) == n_prompts - empty
    again = SilentStudent()
    generate_predictions(again, bench, cache)
    assert again.calls == empty  # only the empty answers are asked again


@pytest.mark.parametrize("scores", ["missing", "unreadable", "not an object"])
def test_the_owner_of_an_eval_folder_is_read_from_its_predictions(tmp_path: Path, scores: str) -> None:
    from labkit.errors import LabkitError

    bench, out = load_benchmark(FIXTURE), tmp_path / "eval"
    evaluate_model(CountingModel(name="model-a"), bench, out)
    if scores == "missing":
        (out / "scores.json").unlink()
    else:
        (out / "scores.json").write_text("{not json" if scores == "unreadable" else "[1, 2]")
    before = (out / "predictions.jsonl").read_bytes()
    with pytest.raises(LabkitError, match=r"holds the results of model 'model-a'.*its predictions.jsonl"):
        evaluate_model(CountingModel(name="model-b"), bench, out)
    assert (out / "predictions.jsonl").read_bytes() == before
    evaluate_model(CountingModel(name="model-a"), bench, out)  # its own folder: fine


def test_predictions_that_name_no_model_are_not_overwritten_without_a_scores_file(tmp_path: Path) -> None:
    from labkit.errors import LabkitError
    from labkit.jsonl import read_jsonl, write_jsonl

    bench, out = load_benchmark(FIXTURE), tmp_path / "eval"
    evaluate_model(CountingModel(name="model-a"), bench, out)
    legacy = [{k: v for k, v in r.items() if k != "model_id"} for r in read_jsonl(out / "predictions.jsonl")]
    write_jsonl(out / "predictions.jsonl", legacy)  # as an older labkit (or another tool) wrote them
    evaluate_model(CountingModel(name="model-a"), bench, out)  # scores.json names the owner: its own folder
    write_jsonl(out / "predictions.jsonl", legacy)
    (out / "scores.json").unlink()
    before = (out / "predictions.jsonl").read_bytes()
    for name in ("model-a", "model-b"):
        with pytest.raises(LabkitError, match=r"do not name their model.*overwrite=True"):
            evaluate_model(CountingModel(name=name), bench, out)
    assert (out / "predictions.jsonl").read_bytes() == before
    evaluate_model(CountingModel(name="model-b"), bench, out, overwrite=True)
