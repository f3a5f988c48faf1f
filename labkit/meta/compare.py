"""Does template diversity generalise? One template vs the Meta-Agent set, same budget, on held-out formats.

The course note (§4.2.1) claims a model tuned on one prompt template overfits to it and that many diverse templates
teach the underlying skill. :func:`run_comparison` measures it:

1. the Meta-Agent funnel (:func:`labkit.meta.pipeline.run_meta_agent`, offline) gives the kept templates; those
   whose output format belongs to a held-out *family* (default: every declared ``yaml`` and ``xml`` format) are
   test-only, so the test includes output formats no training template used; two hand-written templates with
   built-in formats (``meta_xml_en``, ``meta_roleplay_zh``, the data stage's held-out ones) are test-only as well;
2. two training sets from the same queries with the same teacher, one template per query: **single** = the note's
   Template-1 (``kagent_planning_zh``) only, **diverse** = the remaining kept Meta-Agent templates, rotated;
3. the same training recipe and budget (``configs/<train_mode>.yaml`` plus overrides; same steps, batch, lr) for
   both, for each seed;
4. a benchmark of held-out queries rendered with the test templates (plan/tool-use steps), scored per answer as
   the judge does - (0.25 Planning + 0.35 Tool-use) / 0.6 against gold - plus valid-format and tool-name rates;
5. 95 % intervals: bootstrap over queries (each query's score averaged over its templates and the seeds), and for
   the paired difference diverse - single.

Every stage resumes: the data stage reuses its teacher cache, training continues from its newest checkpoint (a
signal stops the run instead of going on to the next arm), and answers are cached per model.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import pandas as pd

from labkit.data.pipeline import DEFAULT_TEST_TEMPLATES, build_dataset
from labkit.evaluate.benchmark import build_benchmark, select_queries
from labkit.evaluate.runner import generate_predictions
from labkit.formats import get_format
from labkit.jsonl import read_jsonl
from labkit.meta.judge import objective_scores
from labkit.meta.pipeline import run_meta_agent
from labkit.meta.report import format_family
from labkit.modes import EvalSettings, load_settings
from labkit.paths import runs_dir
from labkit.records import BenchmarkRecord
from labkit.templates import AgentTemplate, add_template_dir, load_template
from labkit.types import ParsedAction

SINGLE_TEMPLATE = "kagent_planning_zh"
HELD_OUT_FAMILIES = ("declared:yaml", "declared:xml")
SEEN_FORMAT_TEST = tuple(n for n in DEFAULT_TEST_TEMPLATES if n != "meta_conclusion_brief_en")
GROUPS = ("unseen format", "seen format")


class AnswerRow(TypedDict):
    """One scored answer (:func:`answer_rows`); a row of ``answers.csv``."""

    arm: str                     # "single" | "diverse" | "base"
    seed: int
    query_id: str
    record: str
    template: str
    group: str                   # GROUPS
    score: float                 # (0.25 Planning + 0.35 Tool-use) / 0.6 against gold
    valid_format: bool
    tool_name_ok: bool


# One row of the comparison table (:func:`summarise`, ``results.json``'s ``table``); "diverse - single" rows leave
# the counts and rates None.
SummaryRow = TypedDict("SummaryRow", {
    "arm": str, "group": str, "queries": int, "answers": int | None, "valid_format_%": float | None,
    "tool_name_%": float | None, "step_score": float, "ci_low": float, "ci_high": float,
    "per_seed": dict[int, float],  # seed -> mean step score in %; the keys are strings in results.json
})


class ArmData(TypedDict):
    """An arm's training set (``results.json``'s ``data``)."""

    samples: int
    agent: int
    templates: int               # accepted templates


class ArmTraining(TypedDict):
    """One arm/seed's training run (``results.json``'s ``train``)."""

    steps: int
    seconds: float
    final_loss: float | None


class ComparisonResults(TypedDict):
    """``results.json`` of :func:`run_comparison` (:func:`load_comparison`)."""

    mode: str
    train_mode: str
    seeds: list[int]
    train_overrides: dict[str, Any]   # TrainSettings overrides, as given
    split: dict[str, list[str]]       # train / unseen_format / seen_format -> template names
    data: dict[str, ArmData]          # arm -> its training set
    train: dict[str, ArmTraining]     # "<arm>/seed<seed>" -> its training run
    benchmark_records: int
    table: list[SummaryRow]


@dataclass
class DiversitySplit:
    """The single-vs-diverse comparison's template split (:func:`split_kept`); not the data stage's split
    (:class:`labkit.data.pipeline.TemplateSplit`)."""

    train: list[str]                 # the diverse arm's training templates
    unseen_format: list[str]         # test templates whose output format no training template uses
    seen_format: list[str]           # test templates with a built-in format (new wording, known format)

    @property
    def test(self) -> list[str]:
        return self.unseen_format + self.seen_format

    def group_of(self, template: str) -> str:
        return GROUPS[0] if template in self.unseen_format else GROUPS[1]


def split_kept(kept: Sequence[AgentTemplate], held_out_families: Sequence[str] = HELD_OUT_FAMILIES,
               seen_format_test: Sequence[str] = SEEN_FORMAT_TEST) -> DiversitySplit:
    """Kept templates in a held-out format family are test-only; the rest train the diverse arm."""
    unseen = [t.name for t in kept if format_family(t) in held_out_families]
    train = [t.name for t in kept if t.name not in unseen]
    if not unseen or not train:
        raise ValueError(f"the kept set has {len(unseen)} templates in {list(held_out_families)} and {len(train)} "
                         "others; both must be non-empty (run the Meta-Agent in course mode, or change the families)")
    train_formats = {load_template(n).output_format for n in train} | {load_template(SINGLE_TEMPLATE).output_format}
    assert not train_formats & {load_template(n).output_format for n in unseen}
    return DiversitySplit(train, unseen, list(seen_format_test))


def bootstrap_ci(values: Sequence[float], *, n: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap of the mean."""
    vals = list(values)
    if not vals:
        return float("nan"), float("nan"), float("nan")
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(vals, k=len(vals))) / len(vals) for _ in range(n))
    lo, hi = means[int((1 - level) / 2 * n)], means[min(n - 1, int((1 + level) / 2 * n))]
    return sum(vals) / len(vals), lo, hi


def answer_rows(benchmark: Sequence[BenchmarkRecord], outputs: Sequence[Mapping[str, str]], split: DiversitySplit,
                arm: str, seed: int) -> list[AnswerRow]:
    """One row per (record, template) answer: step score, valid format, tool-name match, group. ``outputs[i]``:
    template -> answer for ``benchmark[i]`` (a prediction's ``model_predict``)."""
    rows: list[AnswerRow] = []
    for rec, outs in zip(benchmark, outputs):
        scores = objective_scores(rec, outs)
        gold = {g["tool_name"] for g in rec["golden_result_list"]}
        for template, text in outs.items():
            parsed = get_format(rec["output_formats"][template]).parse(text, rec.get("funcs"))
            ok = isinstance(parsed, ParsedAction)
            name = parsed.call.name if ok and parsed.call else None
            rows.append({"arm": arm, "seed": seed, "query_id": rec["id"].split(":")[0], "record": rec["id"],
                         "template": template, "group": split.group_of(template), "score": scores[template],
                         "valid_format": ok, "tool_name_ok": name in gold})
    return rows


def summarise(rows: pd.DataFrame, *, n_boot: int = 2000) -> pd.DataFrame:
    """Per arm and group: mean step score with a 95 % bootstrap interval over queries, rates, and per-seed means;
    plus the paired difference diverse - single per group."""
    out: list[SummaryRow] = []
    for (arm, group), df in rows.groupby(["arm", "group"], sort=False):
        per_q = df.groupby("query_id")["score"].mean()
        mean, lo, hi = bootstrap_ci(per_q.tolist(), n=n_boot)
        out.append({"arm": arm, "group": group, "queries": len(per_q), "answers": len(df),
                    "valid_format_%": 100 * df["valid_format"].mean(), "tool_name_%": 100 * df["tool_name_ok"].mean(),
                    "step_score": 100 * mean, "ci_low": 100 * lo, "ci_high": 100 * hi,
                    "per_seed": {int(s): round(100 * v, 1) for s, v in df.groupby("seed")["score"].mean().items()}})
    arms = set(rows["arm"])
    if {"single", "diverse"} <= arms:
        for group in GROUPS:
            df = rows[rows["group"] == group]
            per = df.groupby(["arm", "query_id"])["score"].mean().unstack(0).dropna()
            if per.empty:
                continue
            mean, lo, hi = bootstrap_ci((per["diverse"] - per["single"]).tolist(), n=n_boot)
            out.append({"arm": "diverse - single", "group": group, "queries": len(per), "answers": None,
                        "valid_format_%": None, "tool_name_%": None, "step_score": 100 * mean, "ci_low": 100 * lo,
                        "ci_high": 100 * hi, "per_seed": {}})
    return pd.DataFrame(out)


@dataclass
class Comparison:
    out_dir: Path
    split: DiversitySplit
    table: pd.DataFrame
    rows: pd.DataFrame
    train: dict[str, ArmTraining] = field(default_factory=dict)  # "<arm>/seed<seed>" -> its training run
    data: dict[str, ArmData] = field(default_factory=dict)       # arm -> its training set

    def to_text(self) -> str:
        cols = ["arm", "group", "queries", "valid_format_%", "tool_name_%", "step_score", "ci_low", "ci_high"]
        return self.table[cols].to_string(index=False, float_format=lambda v: f"{v:.1f}")


def run_comparison(mode: str = "smoke", *, train_mode: str | None = None, seeds: Sequence[int] = (0,),
                   out_dir: str | Path | None = None, train_overrides: dict[str, Any] | None = None,
                   n_test_queries: int | None = None, templates_per_record: int = 2,
                   max_new_tokens: int | None = None, meta_mode: str | None = None, with_base: bool = False,
                   batch_size: int = 8, progress: bool = False) -> Comparison:
    """Build both training sets (data ``mode``), train each arm per seed (``train_mode``, default = ``mode``), score
    on the held-out templates; everything lands in ``out_dir`` (default ``runs/bench/meta_diversity/<mode>``)."""
    from labkit.llm import get_model
    from labkit.train import TrainSettings, train

    train_mode = train_mode or mode
    out = Path(out_dir) if out_dir else runs_dir() / "bench" / "meta_diversity" / mode
    out.mkdir(parents=True, exist_ok=True)
    meta = run_meta_agent(meta_mode or ("smoke" if mode == "smoke" else "course"), out / "meta")
    add_template_dir(meta.templates_dir)
    split = split_kept(meta.kept)
    arms = {"single": [SINGLE_TEMPLATE], "diverse": split.train}
    data: dict[str, ArmData] = {}
    for arm, names in arms.items():
        built = build_dataset(mode, out / "data" / arm, templates=names, test_templates=split.test + [
            "meta_conclusion_brief_en"], templates_per_query=1, progress=progress,
            overrides={"held_out_formats": list(HELD_OUT_FAMILIES), "step_balance": None})  # this split's own rule
        data[arm] = {"samples": built.stats["samples"]["total"], "agent": built.stats["samples"]["agent"],
                     "templates": built.stats["samples"]["accepted_templates"]}
    test_q = read_jsonl(out / "data" / "single" / "test_queries.jsonl")
    ev = load_settings(EvalSettings, mode, "eval", n_queries=n_test_queries, max_new_tokens=max_new_tokens)
    queries = select_queries(test_q, ev.n_queries)
    bench = build_benchmark(queries, seen=[], unseen=split.test, types=("plantooluse",),
                            templates_per_record=(0, templates_per_record))
    rows: list[AnswerRow] = []
    trained: dict[str, ArmTraining] = {}
    models: list[tuple[str, int, Any]] = []
    for arm in arms:
        for seed in seeds:
            cfg = TrainSettings.for_mode(train_mode, data_path=str(out / "data" / arm / "train.jsonl"),
                                     output_dir=str(out / "train" / f"{arm}-seed{seed}"),
                                     **{**(train_overrides or {}), "seed": seed})
            result = train(cfg)
            result.raise_if_preempted()  # stopped by a signal: stop here; a re-run resumes from the checkpoint
            trained[f"{arm}/seed{seed}"] = {"steps": result.global_step, "seconds": round(result.seconds, 1),
                                            "final_loss": result.losses[-1][1] if result.losses else None}
            models.append((arm, seed, cfg.output_dir))
    if with_base:
        models.append(("base", 0, TrainSettings.for_mode(train_mode).model_path))
    for arm, seed, path in models:
        model = get_model(str(path))
        preds, _ = generate_predictions(model, bench, out / "eval" / f"{arm}-seed{seed}.cache.jsonl",
                                        batch_size=batch_size, max_new_tokens=ev.max_new_tokens)
        rows += answer_rows(bench, [p["model_predict"] for p in preds], split, arm, seed)
        del model
    frame = pd.DataFrame(rows)
    table = summarise(frame)
    comp = Comparison(out, split, table, frame, trained, data)
    frame.to_csv(out / "answers.csv", index=False)
    results: ComparisonResults = {
        "mode": mode, "train_mode": train_mode, "seeds": list(seeds), "train_overrides": train_overrides or {},
        "split": {"train": split.train, "unseen_format": split.unseen_format, "seen_format": split.seen_format},
        "data": data, "train": trained, "benchmark_records": len(bench),
        "table": json.loads(table.to_json(orient="records"))}
    (out / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    (out / "table.txt").write_text(comp.to_text() + "\n", encoding="utf-8")
    return comp


def load_comparison(out_dir: str | Path) -> ComparisonResults | None:
    """``results.json`` of an earlier :func:`run_comparison` (None when there is none)."""
    path = Path(out_dir) / "results.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
