"""KAgentBench's five abilities and Overall, computed from a benchmark file and a predictions file.

Formulas (as in KAgentBench ``benchmark_eval.py``; ROUGE = :func:`labkit.evaluate.rouge.rouge_l`, EM = exact tool-name
match, golden items whose thought/tool is the string ``'None'`` do not count):

* Planning_t   = max_g EM · ROUGE(thought_g, thought_t)
* Tool-use_t   = max_g EM · ArgScore(args_g, args_t)
* Reflection_t = max_g (1 − P_g) · (0.3 · EM · ROUGE(thought) + 0.7 · EM · ArgScore),
  P_g = 1 when golden item g repeats ``memory_last_task`` (same tool name and args)
* Concluding_t = max_g ROUGE(golden_result_g, cleaned answer_t);  Profile_q = max_g ROUGE(golden_g, answer_q)
* each ability = mean over queries of (mean over that query's templates); reported × 100
* Overall = 0.25·Planning + 0.35·Tool-use + 0.10·Reflection + 0.20·Concluding + 0.10·Profile

Where we differ from the official script (each is a bug fix; see also rouge.py):

1. ArgScore counts each golden key once (issue #15: the old code also appended a 0 after a match, roughly halving it);
   a golden call with no arguments is matched by any predicted arguments (extra keys are never penalised), where the
   official code scores 0 (empty mean) — e.g. ``task_complete`` with a ``reason``.
2. ModelScope outputs get their thought (the text before ``<|startofthink|>``, via ``labkit.parsing``); the official
   parser never sets it, so ModelScope Planning was always ~0.
3. ReAct ``Action Input`` that is a JSON object keeps *all* its arguments; only a plain string is mapped onto the
   tool's first parameter (the official parser always did that, so multi-argument calls lost Tool-use points).
4. Every template output is parsed on its own: an empty, whitespace-only or unparseable output scores 0 instead of
   crashing or silently reusing the previous template's parse.
5. Reflection with no eligible golden item scores 0 instead of raising on ``max([])``.
6. Identical strings score exactly 100 (no 1e-8 in the F-measure).
7. A final answer in a planning format counts as the tool ``task_complete`` with no arguments.

BLEU (nltk, smoothed) is an extra column for the text abilities; it does not enter Overall.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labkit.errors import DataFileError
from labkit.evaluate.rouge import bleu, max_rouge_l, rouge_l
from labkit.jsonl import iter_jsonl
from labkit.records import NONE, RECORD_TYPES, load_benchmark  # noqa: F401  (RECORD_TYPES: part of this API)

DIMENSIONS: tuple[str, ...] = ("Planning", "Tool-use", "Reflection", "Concluding", "Profile")
WEIGHTS: dict[str, float] = {"Planning": 0.25, "Tool-use": 0.35, "Reflection": 0.10, "Concluding": 0.20, "Profile": 0.10}
# KAgentBench's prompt_input keys -> labkit.parsing output formats
KAGENTBENCH_FORMATS: dict[str, str] = {"ReACT": "react", "AutoGPT": "autogpt", "ToolLlama": "toolllama",
                                       "ModelScope": "modelscope", "KuaiAgent": "task_json", "Kuaiagent": "task_json"}


@dataclass(frozen=True)
class StepPrediction:
    """One planning output read as (thought, tool name, tool args); tool_name None when nothing could be read."""

    thought: str = ""
    tool_name: str | None = None
    tool_args: dict[str, Any] = field(default_factory=dict)


def output_format_of(record: Mapping[str, Any], template: str) -> str:
    """The output format a record's template asks for (our ``output_formats`` field, else KAgentBench's key name)."""
    formats = record.get("output_formats") or {}
    if template in formats:
        return str(formats[template])
    if record.get("type") == "conclusion" and template in ("KuaiAgent", "Kuaiagent"):
        return "conclusion"
    if template in KAGENTBENCH_FORMATS:
        return KAGENTBENCH_FORMATS[template]
    if record.get("type") in ("conclusion", "profile"):
        return "conclusion"
    from labkit.parsing import detect_format
    return detect_format(str(record.get("prompt_input", {}).get(template, "")))


def read_step(text: object, output_format: str, funcs: Sequence[Mapping[str, Any]] = ()) -> StepPrediction:
    """Parse one planning output; empty / unparseable text gives an empty :class:`StepPrediction` (scores 0)."""
    from labkit.parsing import parse_output
    from labkit.types import ParsedAction

    s = str(text) if text is not None else ""
    if not s.strip():
        return StepPrediction()
    res = parse_output(s, output_format, list(funcs) or None)
    if not isinstance(res, ParsedAction):
        return StepPrediction()
    if res.call is not None:
        return StepPrediction(res.thought or "", res.call.name, dict(res.call.args or {}))
    if res.final_answer is not None:
        return StepPrediction(res.thought or "", "task_complete", {})
    return StepPrediction(res.thought or "")


_TOOLLLAMA_ANSWER = '"final_answer": "'


def read_conclusion(text: object, output_format: str) -> str:
    """The answer text of a concluding output ('' when the model called a tool instead of answering)."""
    s = "" if text is None else (json.dumps(text, ensure_ascii=False) if isinstance(text, dict) else str(text))
    s = s.strip()
    if not s:
        return ""
    if output_format == "autogpt":  # KAgentBench's cleaning
        if "web_search(" in s:
            return ""
        if 'response="' in s:
            return s.split('response="', 1)[1].removesuffix('")').strip()
    if output_format == "toolllama" and _TOOLLLAMA_ANSWER in s:
        return s.split(_TOOLLLAMA_ANSWER, 1)[1].replace('"', "").replace("}", "").strip()
    if output_format in ("conclusion", "", None):
        return s
    from labkit.parsing import parse_output
    from labkit.types import ParsedAction

    res = parse_output(s, output_format)
    if isinstance(res, ParsedAction):
        if res.final_answer is not None:
            return res.final_answer.strip()
        if res.call is not None and res.call.name == "task_complete":
            args = res.call.args
            return str(args.get("response") or args.get("reason") or "").strip()
        if res.call is not None:
            return ""
    return s


def arg_score(gold: Mapping[str, Any], pred: Mapping[str, Any]) -> float:
    """Mean ROUGE-L over the golden keys (a missing key scores 0); no golden args -> 1; empty prediction -> 0."""
    if not gold:
        return 1.0
    if not pred:
        return 0.0
    return sum(rouge_l(str(pred[k]), str(v)) if k in pred else 0.0 for k, v in gold.items()) / len(gold)


def _eligible(golden: Iterable[Mapping[str, Any]], need_thought: bool) -> list[Mapping[str, Any]]:
    out = []
    for g in golden:
        if str(g.get("tool_name", NONE)) == NONE:
            continue
        if need_thought and str(g.get("thought", NONE)) == NONE:
            continue
        out.append(g)
    return out


def _em(g: Mapping[str, Any], p: StepPrediction) -> float:
    return 1.0 if p.tool_name is not None and p.tool_name == g.get("tool_name") else 0.0


def _args(g: Mapping[str, Any]) -> dict[str, Any]:
    a = g.get("tool_args")
    return a if isinstance(a, dict) else {}


def plan_score(golden: Sequence[Mapping[str, Any]], p: StepPrediction) -> float:
    return max((_em(g, p) * rouge_l(p.thought, g["thought"]) for g in _eligible(golden, True)), default=0.0)


def plan_bleu(golden: Sequence[Mapping[str, Any]], p: StepPrediction) -> float:
    return max((_em(g, p) * bleu(p.thought, [g["thought"]]) for g in _eligible(golden, True)), default=0.0)


def tool_score(golden: Sequence[Mapping[str, Any]], p: StepPrediction) -> float:
    return max((_em(g, p) * arg_score(_args(g), p.tool_args) for g in _eligible(golden, False)), default=0.0)


def repeats_last_task(g: Mapping[str, Any], last_task: Mapping[str, Any] | None) -> bool:
    return bool(last_task) and last_task.get("tool_name") == g.get("tool_name") and \
        (last_task.get("tool_args") or {}) == _args(g)


def reflection_score(golden: Sequence[Mapping[str, Any]], p: StepPrediction,
                     last_task: Mapping[str, Any] | None) -> float:
    best = 0.0
    for g in _eligible(golden, True):
        penalty = 1.0 if repeats_last_task(g, last_task) else 0.0
        em = _em(g, p)
        s = (1 - penalty) * (0.3 * em * rouge_l(p.thought, g["thought"]) + 0.7 * em * arg_score(_args(g), p.tool_args))
        best = max(best, s)
    return best


def golden_texts(record: Mapping[str, Any]) -> list[str]:
    out = []
    for g in record.get("golden_result_list", []):
        text = g.get("golden_result") if isinstance(g, Mapping) else g
        if text is not None and str(text) != NONE:
            out.append(str(text))
    return out


def overall(dimensions: Mapping[str, float]) -> float:
    """Weighted sum of the abilities present (weights renormalised when one is missing, e.g. a subset run)."""
    present = {d: v for d, v in dimensions.items() if d in WEIGHTS and v is not None and not math.isnan(v)}
    total = sum(WEIGHTS[d] for d in present)
    return sum(WEIGHTS[d] * v for d, v in present.items()) / total if total else float("nan")


@dataclass
class ScoreRow:
    id: str
    type: str
    template: str
    tag: str            # "seen" / "unseen" template (our benchmark), "" when unknown
    dimension: str
    score: float        # 0..1
    bleu: float | None  # 0..1, None where BLEU does not apply (Tool-use)


@dataclass
class ScoreReport:
    rows: list[ScoreRow]
    dimensions: dict[str, float]   # 0..100; NaN when the benchmark has no record of that type
    overall: float                 # 0..100
    bleu: dict[str, float]         # 0..100 per text ability
    queries: dict[str, int]        # scored queries per ability

    @property
    def complete(self) -> bool:
        return all(self.queries.get(d, 0) > 0 for d in DIMENSIONS)

    def summary(self) -> dict[str, float]:
        return {**{d: round(self.dimensions[d], 2) for d in DIMENSIONS}, "Overall": round(self.overall, 2)}

    def to_frame(self) -> Any:
        import pandas as pd
        return pd.DataFrame([asdict(r) for r in self.rows])


def _aggregate(rows: list[ScoreRow], attr: str) -> tuple[dict[str, float], dict[str, int]]:
    per_q: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        v = getattr(r, attr)
        if v is not None:
            per_q[r.dimension][r.id].append(v)
    dims, counts = {}, {}
    for d in DIMENSIONS:
        qs = per_q.get(d, {})
        counts[d] = len(qs)
        dims[d] = 100 * sum(sum(v) / len(v) for v in qs.values()) / len(qs) if qs else float("nan")
    return dims, counts


def score_record(record: Mapping[str, Any], predict: Any) -> list[ScoreRow]:
    """Score one benchmark record against its ``model_predict`` (dict template -> text; str for profile)."""
    rid, typ = str(record["id"]), str(record["type"])
    golden = list(record.get("golden_result_list", []))
    tags = record.get("template_tags") or {}
    if typ == "profile":
        text = predict if isinstance(predict, str) else ""
        refs = golden_texts(record)
        ok = bool(text.strip())
        return [ScoreRow(rid, typ, "profile", tags.get("prompt", ""), "Profile",
                         max_rouge_l(text, refs) if ok else 0.0, bleu(text, refs) if ok else 0.0)]
    predict = predict if isinstance(predict, Mapping) else {}
    rows: list[ScoreRow] = []
    for template in record.get("prompt_input", {}):
        out, fmt, tag = predict.get(template, ""), output_format_of(record, template), str(tags.get(template, ""))
        if typ == "conclusion":
            ans, refs = read_conclusion(out, fmt), golden_texts(record)
            s = max_rouge_l(ans, refs) if ans else 0.0
            rows.append(ScoreRow(rid, typ, template, tag, "Concluding", s, bleu(ans, refs) if ans else 0.0))
            continue
        step = read_step(out, fmt, record.get("funcs") or [])
        if typ == "plantooluse":
            rows.append(ScoreRow(rid, typ, template, tag, "Planning", plan_score(golden, step), plan_bleu(golden, step)))
            rows.append(ScoreRow(rid, typ, template, tag, "Tool-use", tool_score(golden, step), None))
        elif typ == "reflextion":
            rows.append(ScoreRow(rid, typ, template, tag, "Reflection",
                                 reflection_score(golden, step, record.get("memory_last_task")),
                                 plan_bleu(golden, step)))
    return rows


def score_predictions(benchmark: Sequence[Mapping[str, Any]], predictions: Sequence[Mapping[str, Any]], *,
                      source: str | Path = "<predictions>") -> ScoreReport:
    """Score predictions (benchmark records + ``model_predict``) joined to the benchmark by ``id``.

    A benchmark id with no prediction raises :class:`DataFileError` (KAgentBench asserts the same counts).
    """
    by_id = {str(p["id"]): p for p in predictions}
    missing = [str(r["id"]) for r in benchmark if str(r["id"]) not in by_id]
    if missing:
        raise DataFileError(source, f"{len(missing)} benchmark ids have no prediction (first: {missing[0]!r})",
                            field="id")
    rows = [row for r in benchmark for row in score_record(r, by_id[str(r["id"])].get("model_predict"))]
    dims, counts = _aggregate(rows, "score")
    bleus, _ = _aggregate(rows, "bleu")
    return ScoreReport(rows, dims, overall(dims), {d: v for d, v in bleus.items() if d != "Tool-use"}, counts)


def load_predictions(path: str | Path) -> list[dict[str, Any]]:
    """Read a KAgentBench-layout predictions file, checking ``id`` and ``model_predict`` per line."""
    out = []
    for line, rec in iter_jsonl(path):
        if not isinstance(rec.get("id"), (str, int)):
            raise DataFileError(path, "missing or non-string id", line=line, field="id")
        pred = rec.get("model_predict")
        want = str if rec.get("type") == "profile" else dict
        if "type" in rec and not isinstance(pred, want):
            raise DataFileError(path, f"expected {want.__name__}, got {type(pred).__name__}", line=line,
                                field="model_predict")
        out.append(rec)
    return out


def score_files(benchmark_path: str | Path, predictions_path: str | Path) -> ScoreReport:
    """Score a predictions JSONL against a benchmark JSONL (ours or the public KAgentBench file)."""
    return score_predictions(load_benchmark(benchmark_path), load_predictions(predictions_path),
                             source=predictions_path)
