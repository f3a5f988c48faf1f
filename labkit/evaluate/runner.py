"""Generate benchmark predictions with any ChatModel (batched, cached, resumable) and run end-to-end agent checks.

Each template prompt is sent as one single-turn user message, as KAgentBench's inference scripts do. Answers go
through the same cached chat model as teacher labelling (:class:`~labkit.llm.cached.CachedChatModel`: keyed by model
identity, prompt and generation parameters, appended and fsynced at once): a re-run, or a run resumed after a kill,
asks the model only for what is not cached yet (0 new calls when everything is).

End-to-end success (the model drives the agent loop in the sandbox on a held-out query) is strict:

* every gold tool (except ``task_complete``) was called with matching key arguments — each gold argument value is
  equal after normalisation (case, spaces) or has ROUGE-L ≥ 0.5 with the gold value (free-text search queries), and
* the final answer contains every number of the reference answer (if it has none: ROUGE-L ≥ 0.5 with it).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from labkit.errors import LabkitError
from labkit.evaluate.kagentbench import Prediction
from labkit.evaluate.rouge import rouge_l
from labkit.evaluate.scorer import ScoreReport, output_format_of, score_predictions
from labkit.jsonl import append_jsonl, iter_jsonl, read_json, write_jsonl
from labkit.llm.base import model_id
from labkit.llm.cached import CachedChatModel, RequestCache
from labkit.progress import Progress
from labkit.records import BenchmarkRecord, Query

ARG_MATCH = 0.5
ANSWER_MATCH = 0.5
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass
class GenerationStats:
    prompts: int = 0
    cached: int = 0
    generated: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds else 0.0


def cached_generate(model: Any, prompts: Sequence[tuple[str, Any]], cache_path: str | Path, *, batch_size: int = 8,
                    mid: str | None = None, progress: Callable[[int, int], None] | None = None
                    ) -> tuple[list[str], GenerationStats]:
    """Answers for ``(prompt, decoding)`` pairs (:class:`labkit.agent.Decoding`: budget, stop strings, completion
    rule), each sent as one user turn, through the one cached chat model (:class:`~labkit.llm.cached.CachedChatModel`):
    only uncached ones hit the model, ``batch_size`` at a time. A batch holds one decoding setting. ``progress``:
    a callback ``(done, total)``; None shows a :class:`labkit.progress.Progress` line (items done / total, ETA)."""
    cached = CachedChatModel(model, RequestCache(cache_path), mid=mid)
    chats = [[{"role": "user", "content": p}] for p, _ in prompts]
    keys = [cached.key(c, **d.kwargs()) for c, (_, d) in zip(chats, prompts)]
    answers: dict[str, str] = {k: str(hit["text"]) for k in keys if (hit := cached.cache.get(k)) is not None}
    todo = sorted({k: (c, d) for k, c, (_, d) in zip(keys, chats, prompts) if k not in answers}.items(),
                  key=lambda kv: (repr(kv[1][1]), len(kv[1][0][0]["content"])))  # one setting per batch, similar lengths
    stats = GenerationStats(prompts=len(prompts), cached=sum(k in answers for k in keys))
    start = time.perf_counter()
    shown = None
    if progress is None and todo:  # a long generation reports items done / total and an ETA (labkit.progress)
        shown = progress = Progress(len(todo), f"生成（{Path(str(getattr(model, 'name', model))).name}）",
                                    unit="个 prompt")
    for i in range(0, len(todo), batch_size):
        chunk = todo[i: i + batch_size]
        for dec in sorted({d for _, (_, d) in chunk}, key=repr):
            asked = [(k, c) for k, (c, d) in chunk if d == dec]
            results = cached.chat_batch([c for _, c in asked], **dec.kwargs())
            answers.update((k, res.text) for (k, _), res in zip(asked, results))  # an empty answer is not cached
            stats.generated += len(results)
            stats.completion_tokens += sum(res.completion_tokens for res in results)
        if progress:
            progress(min(i + batch_size, len(todo)), len(todo))
    stats.seconds = time.perf_counter() - start
    if shown is not None:
        shown.close()
    return [answers[k] for k in keys], stats


def generate_predictions(model: Any, benchmark: Sequence[BenchmarkRecord], cache_path: str | Path, *,
                         batch_size: int = 8, mid: str | None = None, max_new_tokens: int | None = None,
                         progress: Callable[[int, int], None] | None = None
                         ) -> tuple[list[Prediction], GenerationStats]:
    """Answer every prompt (cache first), return KAgentBench-layout predictions (record + ``model_predict``).

    Each template's prompt is decoded as its output format asks (:func:`labkit.agent.decoding_for`: stop strings,
    JSON completion, the format's token budget); ``max_new_tokens`` overrides every budget, e.g. for a smoke run.
    """
    from labkit.agent import decoding_for

    jobs = [(p, decoding_for(output_format_of(r, t), max_new_tokens))
            for r in benchmark for t, p in r["prompt_input"].items()]
    texts, stats = cached_generate(model, jobs, cache_path, batch_size=batch_size, mid=mid, progress=progress)
    it = iter(texts)
    predictions: list[Prediction] = []
    for r in benchmark:
        outs = {t: next(it) for t in r["prompt_input"]}
        predict: dict[str, str] | str = next(iter(outs.values()), "") if r["type"] == "profile" else outs
        predictions.append({**r, "model_predict": predict})
    return predictions, stats


def _recorded_owners(out_dir: Path) -> list[tuple[str, str, str | None]]:
    """Who the results in ``out_dir`` belong to, by each file that says: ``(file, field, value)``.

    ``scores.json`` records ``model_id`` (older ones only ``model``, the name); ``predictions.jsonl`` carries the
    ``model_id`` in every record. ``value`` None: the file is there but does not say (unreadable, or written
    elsewhere)."""
    owners: list[tuple[str, str, str | None]] = []
    scores, preds = out_dir / "scores.json", out_dir / "predictions.jsonl"
    if scores.is_file():
        try:
            saved = read_json(scores)
        except LabkitError:
            saved = None
        field = next((f for f in ("model_id", "model") if isinstance(saved, dict) and saved.get(f)), None)
        if field is not None:
            owners.append(("scores.json", field, str(saved[field])))  # type: ignore[index]
    if preds.exists():
        try:
            ids = {rec.get("model_id") for _, rec in iter_jsonl(preds)}
        except LabkitError:
            ids = set()
        one = ids.pop() if len(ids) == 1 else None
        owners.append(("predictions.jsonl", "model_id", one if isinstance(one, str) and one else None))
    return owners


def check_eval_dir(out_dir: str | Path, model: Any, *, overwrite: bool = False) -> None:
    """Refuse to overwrite another model's ``predictions.jsonl`` / ``scores.json`` in ``out_dir``.

    The owner is read from the results themselves: the ``model_id`` every prediction carries and the one in
    ``scores.json``, so a missing or unreadable ``scores.json`` does not hide it. Models are told apart by
    :func:`labkit.llm.model_id` without the weights' timestamp, so the same checkpoint folder re-trained counts as
    the same model (an older ``scores.json`` with only a name: by model name). Predictions that do not name their
    model (written elsewhere or by an older labkit) belong to the model ``scores.json`` names; without a readable
    one they are refused too: only ``overwrite=True`` replaces them."""
    out = Path(out_dir)
    if overwrite:
        return
    owners = _recorded_owners(out)
    for source, field, theirs in owners:
        if theirs is None and len(owners) > 1:
            continue  # predictions of an older labkit, which named no model: scores.json tells whose they are
        if theirs is None:
            raise LabkitError(f"{out / source} holds predictions that do not name their model (written elsewhere, "
                              "by an older labkit, or unreadable) and no scores.json tells whose they are: "
                              f"evaluating {model_id(model)!r} there would overwrite them. Use another out_dir, or "
                              "overwrite=True.")
        mine = model_id(model) if field == "model_id" else str(model.name)
        if theirs.split("#")[0] != mine.split("#")[0]:
            raise LabkitError(f"{out_dir} holds the results of model {theirs!r} (its {source}); evaluating {mine!r} "
                              "there would overwrite its predictions.jsonl and scores.json. Use one out_dir per "
                              "model, or overwrite=True.")


def evaluate_model(model: Any, benchmark: Sequence[BenchmarkRecord], out_dir: str | Path, *,
                   batch_size: int = 8, cache_path: str | Path | None = None,
                   max_new_tokens: int | None = None, overwrite: bool = False) -> tuple[ScoreReport, GenerationStats]:
    """Generate (cached) + score; writes ``predictions.jsonl`` and ``scores.json`` into ``out_dir`` (refusing a
    folder that holds another model's results, see :func:`check_eval_dir`)."""
    import json

    out_dir = Path(out_dir)
    check_eval_dir(out_dir, model, overwrite=overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_path = cache_path or out_dir / "cache.jsonl"
    predictions, stats = generate_predictions(model, benchmark, cache_path, batch_size=batch_size,
                                              max_new_tokens=max_new_tokens)
    mid = model_id(model)
    write_jsonl(out_dir / "predictions.jsonl", ({**p, "model_id": mid} for p in predictions))  # names its owner
    report = score_predictions(benchmark, predictions, source=out_dir / "predictions.jsonl")
    (out_dir / "scores.json").write_text(json.dumps({"model": model.name, "model_id": mid,
                                                     **report.summary(), "bleu": report.bleu,
                                                     "queries": report.queries, "generation": asdict(stats)},
                                                    ensure_ascii=False, indent=2), encoding="utf-8")
    return report, stats


# ---------------------------------------------------------------- end-to-end agent success
def _norm(value: Any) -> str:
    return " ".join(str(value).lower().split())


def args_match(gold: Mapping[str, Any], pred: Mapping[str, Any]) -> bool:
    return all(k in pred and (_norm(pred[k]) == _norm(v) or rouge_l(_norm(pred[k]), _norm(v)) >= ARG_MATCH)
               for k, v in gold.items())


def _numbers(text: str) -> set[str]:
    return {n.rstrip("0").rstrip(".") if "." in n else n for n in _NUMBER.findall(text.replace(",", ""))}


def answer_matches(answer: str | None, reference: str) -> bool:
    if not answer or not answer.strip():
        return False
    ref_nums = _numbers(reference)
    if ref_nums:
        return ref_nums <= _numbers(answer)
    return rouge_l(answer, reference) >= ANSWER_MATCH


@dataclass
class AgentOutcome:
    query_id: str
    calls_ok: bool
    answer_ok: bool
    stopped: str
    steps: int
    missing_calls: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.calls_ok and self.answer_ok


def check_trace(trace: Any, gold: Query) -> AgentOutcome:
    """Compare one agent Trace with a gold query (``gold_calls``, ``reference_answer``)."""
    calls = list(trace.calls)
    missing = [g["name"] for g in gold["gold_calls"] if g["name"] != "task_complete" and not any(
        c["name"] == g["name"] and args_match(g.get("args") or {}, c.get("args") or {}) for c in calls)]
    return AgentOutcome(str(gold["id"]), not missing, answer_matches(trace.final_answer, gold["reference_answer"]),
                        trace.stopped, len(trace.steps), missing)


def agent_success(model: Any, queries: Sequence[Query], *, template: str | None = None,
                  max_steps: int = 5, max_new_tokens: int | None = None, batch_size: int = 8,
                  traces_path: str | Path | None = None, guided: bool = False) -> tuple[float, list[AgentOutcome]]:
    """Run the plan loop (Template-1 planning, sandbox tools, Template-2 conclusion) on each query; returns
    (success rate, outcomes). Each query is offered its gold tools + distractors (the training rule,
    :func:`labkit.evaluate.benchmark.offered`); ``template`` None uses ``kagent_planning_<query language>``. Runs of
    one template advance together, one batched model call per step (:func:`labkit.agent.run_plans`). Traces are
    appended to ``traces_path`` if given. ``guided``: planning steps under guided decoding (only offered tool names,
    schema argument keys; :mod:`labkit.llm.guided`) where the model supports it - API models and the emulators
    ignore it; conclusions and the KAgentBench generation (:func:`evaluate_model`) are always free."""
    from labkit.agent import resolve_template, run_plans
    from labkit.evaluate.benchmark import offered
    from labkit.tools import default_registry

    registry = default_registry()
    names = [template or f"kagent_planning_{q.get('lang', 'zh')}" for q in queries]
    traces: dict[int, Any] = {}
    for name in dict.fromkeys(names):
        tmpl = resolve_template(name)
        idx = [i for i, n in enumerate(names) if n == name]
        items = [(queries[i]["query"], offered(queries[i], registry, tmpl.format)) for i in idx]
        runs = run_plans(model, items, template=tmpl, conclusion_template=f"kagent_conclusion_{tmpl.lang}",
                         max_steps=max_steps, max_new_tokens=max_new_tokens, batch_size=batch_size, guided=guided)
        traces.update(zip(idx, runs))
    outcomes = []
    for i, q in enumerate(queries):
        if traces_path is not None:
            append_jsonl(traces_path, [{"query_id": q["id"], **traces[i].to_dict()}])
        outcomes.append(check_trace(traces[i], q))
    rate = sum(o.success for o in outcomes) / len(outcomes) if outcomes else float("nan")
    return rate, outcomes


# One row of the end-to-end table (column names with spaces: the functional TypedDict form).
AgentRow = TypedDict("AgentRow", {"queries": int, "success rate": float, "finished": int, "tools ok": int,
                                  "answer ok": int})


def agent_row(rate: float, outcomes: Sequence[AgentOutcome]) -> AgentRow:
    """One row of the end-to-end table (notebook 06, bench/guided_decoding.py): queries, success rate, runs that
    ended with an answer (``finished``), runs with the right calls (``tools ok``) and with the right answer."""
    return {"queries": len(outcomes), "success rate": round(rate, 3),
            "finished": sum(o.stopped == "finished" for o in outcomes), "tools ok": sum(o.calls_ok for o in outcomes),
            "answer ok": sum(o.answer_ok for o in outcomes)}
