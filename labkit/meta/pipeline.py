"""``run_meta_agent``: the whole Meta-Agent funnel in one call, with a count at every step.

query bank -> clusters -> one Meta-Agent prompt per cluster -> candidate templates -> section check (loads, six
parts, format round-trips) -> pairwise judge on sampled queries (s2 - s1 > epsilon per instance) -> template
threshold on the mean -> kept templates saved as ordinary template files.

Everything is written under ``out_dir`` (default ``runs/meta/<mode>``): ``candidates/*.yaml`` (every generated
file, as written), ``templates/*.yaml`` (the kept ones: :func:`labkit.templates.add_template_dir` or
``LABKIT_TEMPLATE_DIRS`` makes them loadable by name, e.g. for notebook 03), ``candidates.jsonl`` (traits and
verdicts), ``instances.jsonl``, ``benchmark_scores.jsonl``, ``clusters.json`` and ``funnel.json``. Model calls are
cached there too, so a re-run (or a run resumed after a kill) repeats none.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypedDict

import pandas as pd

from labkit.llm.cached import CachedChatModel, RequestCache
from labkit.data.queries import load_queries
from labkit.evaluate.benchmark import build_benchmark
from labkit.evaluate.runner import generate_predictions
from labkit.formats import unregister
from labkit.jsonl import write_jsonl
from labkit.llm import get_model
from labkit.meta.cluster import Clustering, cluster_queries
from labkit.meta.generate import Candidate, LLMMetaAgent, OfflineMetaAgent, generate_candidates
from labkit.meta.judge import (
    BENCHMARK_TEMPLATES,
    DEFAULT_EPSILON,
    DEFAULT_THRESHOLD,
    BenchmarkScore,
    Instance,
    LLMJudge,
    SectionVerdict,
    judge_records,
    section_check,
    template_verdicts,
)
from labkit.meta.report import FunnelStep
from labkit.modes import MetaSettings, load_settings, mode_path, read_yaml
from labkit.paths import runs_dir
from labkit.records import Query
from labkit.templates import AgentTemplate

Mode = Literal["smoke", "course"]
SETTINGS = tuple(f.name for f in fields(MetaSettings))  # the ``meta`` section of configs/<mode>.yaml
OFFLINE_JUDGED_MODEL = "sandbox-reader"


def api_available() -> bool:
    return bool(os.environ.get("OPENAI_API_KEY"))


class MetaRunSettings(TypedDict):
    """What a funnel run used (``funnel.json``'s ``settings``, :attr:`MetaResult.settings`)."""

    mode: str
    n_clusters: int              # the MetaSettings (configs/<mode>.yaml ``meta``, or the arguments)
    per_cluster: int
    judge_queries: int
    writer: str                  # the Meta-Agent's name
    judged_model: str
    judge: str                   # the LLM judge's name, or "objective scorer against gold"
    epsilon: float
    threshold: float
    benchmarks: list[str]
    seed: int
    seconds: float


@dataclass
class MetaResult:
    out_dir: Path
    clustering: Clustering
    candidates: list[Candidate]
    verdicts: pd.DataFrame          # one row per candidate: section check + judge + kept
    instances: pd.DataFrame         # one row per (candidate, situation)
    benchmark_scores: pd.DataFrame  # the benchmark templates' own scores per situation
    funnel: list[FunnelStep]
    kept: list[AgentTemplate]
    settings: MetaRunSettings

    @property
    def templates_dir(self) -> Path:
        return self.out_dir / "templates"

    def plot_funnel(self, ax: Any = None) -> Any:
        from labkit.meta.report import plot_funnel

        return plot_funnel(self.funnel, ax=ax)


def meta_settings(mode: str | Path, **overrides: int | None) -> MetaSettings:
    """The mode's ``meta`` section (configs/<mode>.yaml) as :class:`~labkit.modes.MetaSettings`, with the
    overrides that are not None; a missing or unknown key or a value that is not a positive integer raises
    :class:`~labkit.errors.DataFileError` naming the file, line and field."""
    from labkit.errors import DataFileError

    cfg = load_settings(MetaSettings, mode, "meta", **overrides)
    for key in SETTINGS:
        if getattr(cfg, key) < 1:
            line = None if overrides.get(key) is not None else read_yaml(mode_path(mode))[1].get(("meta", key))
            raise DataFileError(mode_path(mode), f"expected a positive integer, got {getattr(cfg, key)!r}", line=line,
                                field=f"meta.{key}")
    return cfg


def _writer(writer: str | Any, seed: int, cache_dir: Path) -> Any:
    if not isinstance(writer, str):
        return writer
    if writer == "offline":
        return OfflineMetaAgent(seed)
    return LLMMetaAgent(CachedChatModel(get_model(writer), RequestCache(cache_dir / "writer_cache.jsonl")))


def _judge_queries(cluster: Any, n: int, seed: int) -> list[Query]:
    """Tool-using members of the cluster that were not shown to the Meta-Agent (its representatives)."""
    shown = {q["id"] for q in cluster.representatives}
    pool = sorted((q for q in cluster.queries if q["id"] not in shown and q.get("gold_calls")), key=lambda q: q["id"])
    if len(pool) < n:  # a tiny cluster: reuse representatives rather than judge on nothing
        pool += sorted((q for q in cluster.representatives if q.get("gold_calls")), key=lambda q: q["id"])
    return random.Random(f"{seed}:{cluster.id}").sample(pool, min(n, len(pool)))


def judge_cluster(cluster: Any, paths: Sequence[str | Path], model: Any, *, n_queries: int,
                  cache_path: str | Path, epsilon: float = DEFAULT_EPSILON, judge: LLMJudge | None = None,
                  benchmarks: Sequence[str] = BENCHMARK_TEMPLATES, seed: int = 0,
                  batch_size: int = 8) -> tuple[list[Instance], list[BenchmarkScore]]:
    """The pairwise judge for one cluster: its judge queries rendered with the benchmark templates and with the
    candidate files ``paths``, the same ``model`` answering every prompt (each decoded as its format asks; cached in
    ``cache_path``); returns the candidates' instances and the benchmark templates' own scores."""
    records = build_benchmark(_judge_queries(cluster, n_queries, seed), seen=list(benchmarks),
                              unseen=[str(p) for p in paths], types=("plantooluse",),
                              templates_per_record=(len(benchmarks), len(paths)), seed=seed)
    preds, _ = generate_predictions(model, records, cache_path, batch_size=batch_size)
    return judge_records(records, [p["model_predict"] for p in preds], benchmarks=benchmarks, cluster=cluster.id,
                         epsilon=epsilon, judge=judge)


@dataclass
class CandidateVerdict:
    """One template file through both filters (:func:`judge_candidate`)."""

    section: SectionVerdict
    instances: list[Instance]
    mean_s2: float | None   # None: the section check dropped it, nothing was judged
    mean_s1: float | None
    kept: bool


def judge_candidate(path: str | Path, cluster: Any, *, judged_model: str | Any = OFFLINE_JUDGED_MODEL,
                    n_queries: int = 4, epsilon: float = DEFAULT_EPSILON, threshold: float = DEFAULT_THRESHOLD,
                    seed: int = 0, cache_path: str | Path | None = None) -> CandidateVerdict:
    """One candidate template file (written by anyone: a student acting as the Meta-Agent) through the same two
    filters as the funnel: the section check, then the pairwise judge on ``cluster``'s judge queries and the
    template threshold."""
    verdict, template = section_check(path)
    if not verdict.passed or template is None:
        return CandidateVerdict(verdict, [], None, None, False)
    model = get_model(judged_model) if isinstance(judged_model, str) else judged_model
    cache = Path(cache_path) if cache_path else Path(path).with_suffix(".answers.jsonl")
    instances, _ = judge_cluster(cluster, [path], model, n_queries=n_queries, cache_path=cache, epsilon=epsilon,
                                 seed=seed)
    mine = [i for i in instances if i.template == template.name]
    tv = template_verdicts(mine, threshold).get(template.name)
    if tv is None:
        return CandidateVerdict(verdict, mine, 0.0, None, False)
    return CandidateVerdict(verdict, mine, tv["mean_s2"], tv["mean_s1"], bool(tv["kept"]))


def run_meta_agent(mode: Mode = "smoke", out_dir: str | Path | None = None, *, writer: str | Any = "offline",
                   judged_model: str | Any = OFFLINE_JUDGED_MODEL, judge: str | None = None,
                   epsilon: float = DEFAULT_EPSILON, threshold: float = DEFAULT_THRESHOLD,
                   benchmarks: Sequence[str] = BENCHMARK_TEMPLATES, n_clusters: int | None = None,
                   per_cluster: int | None = None, judge_queries: int | None = None, seed: int = 0,
                   queries_path: str | Path | None = None, batch_size: int = 8) -> MetaResult:
    """Run the funnel (see the module docstring); sizes come from the mode's ``meta`` section unless given.

    ``writer``: "offline" (seeded generator), "openai"/"openai:<model>" or any object with ``write(cluster, i)``.
    ``judged_model``: the model whose answers are compared - a spec for :func:`labkit.llm.get_model` or a ChatModel
    (offline default: the prompt-sensitive emulator ``sandbox-reader``). ``judge``: None = objective scorer against
    gold, or a model spec for an LLM judge (e.g. "openai").
    """
    cfg = meta_settings(mode, n_clusters=n_clusters, per_cluster=per_cluster, judge_queries=judge_queries)
    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir else runs_dir() / "meta" / mode
    cand_dir, kept_dir = out / "candidates", out / "templates"
    for d in (cand_dir, kept_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)

    queries = load_queries(queries_path)
    clustering = cluster_queries(queries, cfg.n_clusters, seed=seed)
    author = _writer(writer, seed, out)
    candidates = generate_candidates(clustering.clusters, author, cfg.per_cluster)

    # section check
    checks: dict[str, SectionVerdict] = {}
    survivors: dict[int, list[tuple[Path, AgentTemplate]]] = {}
    for c in candidates:
        path = cand_dir / f"{c.name}.yaml"
        path.write_text(c.text, encoding="utf-8")
        verdict, template = section_check(path)
        checks[c.name] = verdict
        if verdict.passed and template is not None:
            survivors.setdefault(c.cluster, []).append((path, template))

    # pairwise judge, one benchmark per cluster: every situation rendered with the benchmarks and its candidates
    model = get_model(judged_model) if isinstance(judged_model, str) else judged_model
    llm_judge = None if judge in (None, "", "objective") else LLMJudge(
        CachedChatModel(get_model(judge), RequestCache(out / "judge_cache.jsonl")))
    instances: list[Instance] = []
    bench_rows: list[BenchmarkScore] = []
    for cluster in clustering.clusters:
        group = survivors.get(cluster.id, [])
        if not group:
            continue
        got, bench = judge_cluster(cluster, [p for p, _ in group], model, n_queries=cfg.judge_queries,
                                   cache_path=out / "answers_cache.jsonl", epsilon=epsilon, judge=llm_judge,
                                   benchmarks=benchmarks, seed=seed, batch_size=batch_size)
        instances += got
        bench_rows += [{**b, "cluster": cluster.id} for b in bench]
    tv = template_verdicts(instances, threshold)

    # verdict table, kept templates, funnel
    rows = []
    for c in candidates:
        chk, judged = checks[c.name], tv.get(c.name)
        kept = bool(chk.passed and judged and judged["kept"])
        rows.append({"name": c.name, "cluster": c.cluster, "output_format": c.traits.get("output_format", ""),
                     "flaw": c.traits.get("flaw"), "loaded": chk.loaded, "sections_ok": chk.loaded and not chk.missing,
                     "round_trip_ok": chk.passed, "section_reason": chk.reason,
                     **({k: judged[k] for k in ("instances", "kept_instances", "mean_s1", "mean_s2", "mean_delta")}
                        if judged else {}), "kept": kept})
        if kept:
            shutil.copy(cand_dir / f"{c.name}.yaml", kept_dir / f"{c.name}.yaml")
    verdicts = pd.DataFrame(rows).set_index("name")
    kept_names = [n for n in verdicts.index if verdicts.loc[n, "kept"]]
    kept_templates = [t for g in survivors.values() for _, t in g if t.name in kept_names]
    _forget_dropped_formats({t.output_format for t in kept_templates},
                            [c.traits.get("output_format", "") for c in candidates])
    inst_df = pd.DataFrame([i.to_dict() for i in instances])
    kept_inst = int(inst_df[inst_df["template"].isin(kept_names)]["kept"].sum()) if len(inst_df) else 0
    funnel: list[FunnelStep] = [
        {"step": "queries", "count": len(queries), "unit": "queries"},
        {"step": "clusters", "count": len(clustering.clusters), "unit": "clusters"},
        {"step": "generated", "count": len(candidates), "unit": "templates"},
        {"step": "loadable", "count": int(verdicts["loaded"].sum()), "unit": "templates"},
        {"step": "all six sections", "count": int(verdicts["sections_ok"].sum()), "unit": "templates"},
        {"step": "format round-trips", "count": int(verdicts["round_trip_ok"].sum()), "unit": "templates"},
        {"step": "judged instances", "count": len(instances), "unit": "instances"},
        {"step": "instances s2-s1>eps", "count": int(sum(i.kept for i in instances)), "unit": "instances"},
        {"step": "template mean > threshold", "count": len(kept_names), "unit": "templates"},
        {"step": "kept instances (kept templates)", "count": kept_inst, "unit": "instances"},
    ]
    settings: MetaRunSettings = {
        "mode": mode, "n_clusters": cfg.n_clusters, "per_cluster": cfg.per_cluster, "judge_queries": cfg.judge_queries,
        "writer": getattr(author, "name", str(writer)), "judged_model": model.name,
        "judge": llm_judge.name if llm_judge else "objective scorer against gold", "epsilon": epsilon,
        "threshold": threshold, "benchmarks": list(benchmarks), "seed": seed,
        "seconds": round(time.perf_counter() - t0, 2)}
    _write(out, clustering, candidates, verdicts, instances, bench_rows, funnel, settings)
    return MetaResult(out, clustering, candidates, verdicts, inst_df, pd.DataFrame(bench_rows), funnel,
                      kept_templates, settings)


def tuning_data(mode: str, templates_dir: str | Path, data_dir: str | Path | None = None, *,
                teacher: str | None = None, progress: bool = False) -> Any:
    """Meta-Agent Tuning (note §4.2): the data stage again, now given the kept templates in ``templates_dir``
    (``labkit.data.build_dataset(..., template_dirs=[templates_dir])``); the mode's ``data`` section says how many
    template slots they get (``meta_templates``) and which output-format families stay test-only
    (``held_out_formats``). Teacher, seed and mix ratio are those of the build already in ``data_dir`` (default
    ``runs/data/<mode>``, its stats.json), so the hand-written jobs it labelled are reused, not labelled again;
    with no earlier build the data stage's defaults apply. Returns the :class:`labkit.data.pipeline.BuildResult`."""
    from labkit.data.pipeline import build_dataset
    from labkit.errors import DataFileError
    from labkit.jsonl import read_text

    folder = Path(data_dir) if data_dir else runs_dir() / "data" / mode
    kw: dict[str, Any] = {}
    stats_path = folder / "stats.json"
    if stats_path.exists():
        try:
            earlier = json.loads(read_text(stats_path))
        except json.JSONDecodeError as exc:
            raise DataFileError(stats_path, f"invalid JSON ({exc.msg})", line=exc.lineno) from None
        kw = {"teacher": earlier.get("teacher"), "seed": earlier.get("seed"),
              "agent_general_ratio": (earlier.get("samples") or {}).get("mix", {}).get("ratio")}
    if teacher is not None:
        kw["teacher"] = teacher
    return build_dataset(mode, folder, template_dirs=[templates_dir], progress=progress,
                         **{k: v for k, v in kw.items() if v is not None})


def _forget_dropped_formats(keep: set[str], candidate_formats: Sequence[str]) -> None:
    """Declared formats that only dropped candidates used leave the registry (they would still steer detection)."""
    from labkit.formats import BUILTIN_FORMATS

    for name in set(candidate_formats) - keep - set(BUILTIN_FORMATS):
        unregister(name)


def _write(out: Path, clustering: Clustering, candidates: Sequence[Candidate], verdicts: pd.DataFrame,
           instances: Sequence[Instance], bench_rows: Sequence[BenchmarkScore], funnel: list[FunnelStep],
           settings: MetaRunSettings) -> None:
    records = verdicts.reset_index().to_dict("records")
    by_name = {c.name: c for c in candidates}
    write_jsonl(out / "candidates.jsonl", [{**_plain(r), "traits": by_name[r["name"]].traits} for r in records])
    write_jsonl(out / "instances.jsonl", [i.to_dict() for i in instances])
    write_jsonl(out / "benchmark_scores.jsonl", list(bench_rows))
    (out / "clusters.json").write_text(json.dumps([c.to_dict() for c in clustering.clusters], ensure_ascii=False,
                                                  indent=1), encoding="utf-8")
    (out / "funnel.json").write_text(json.dumps({"funnel": funnel, "settings": settings,
                                                 "formats": dict(Counter(verdicts[verdicts["kept"]]["output_format"]))},
                                                ensure_ascii=False, indent=1), encoding="utf-8")


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and v != v else v.item() if hasattr(v, "item") else v)
            for k, v in row.items()}
