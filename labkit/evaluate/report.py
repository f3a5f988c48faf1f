"""Tables and plots of evaluation results: the note's score table, bar + radar charts, seen/unseen template
breakdown, the three template groups (seen, unseen, held-out output formats) with intervals, and a general-ability
check (ROUGE-L on held-out general SFT samples) to show forgetting."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from labkit.evaluate.benchmark import TEMPLATE_GROUPS
from labkit.evaluate.rouge import bleu, rouge_l
from labkit.evaluate.runner import GenerationStats, cached_generate
from labkit.evaluate.scorer import DIMENSIONS, ScoreReport
from labkit.plotting import use_cjk_font

COLUMNS = [*DIMENSIONS, "Overall"]


def score_table(reports: Mapping[str, ScoreReport]) -> pd.DataFrame:
    """One row per model: Planning / Tool-use / Reflection / Concluding / Profile / Overall (percent, 2 decimals)."""
    return pd.DataFrame({name: r.summary() for name, r in reports.items()}).T[COLUMNS]


def bleu_table(reports: Mapping[str, ScoreReport]) -> pd.DataFrame:
    """BLEU (percent) of the text abilities — an extra view, not part of Overall."""
    return pd.DataFrame({name: {k: round(v, 2) for k, v in r.bleu.items()} for name, r in reports.items()}).T


def template_breakdown(reports: Mapping[str, ScoreReport]) -> pd.DataFrame:
    """Mean score (percent) per model, ability, template and seen/unseen tag, over that template's prompts."""
    frames = []
    for name, r in reports.items():
        df = r.to_frame()
        if not df.empty:
            frames.append(df.assign(model=name))
    if not frames:
        return pd.DataFrame(columns=["model", "dimension", "tag", "template", "score", "n"])
    df = pd.concat(frames)
    out = df.groupby(["model", "dimension", "tag", "template"], as_index=False).agg(score=("score", "mean"),
                                                                                  n=("score", "size"))
    out["score"] = (100 * out["score"]).round(2)
    return out


def seen_unseen(reports: Mapping[str, ScoreReport]) -> pd.DataFrame:
    """Per model and ability: mean score (percent) on templates seen in training vs unseen (generalisation)."""
    frames = [r.to_frame().assign(model=name) for name, r in reports.items() if r.rows]
    df = pd.concat(frames) if frames else pd.DataFrame(columns=["tag"])
    df = df[df["tag"].isin(["seen", "unseen"])]
    if df.empty:
        return pd.DataFrame()
    return (100 * df.pivot_table(index=["model", "tag"], columns="dimension", values="score", aggfunc="mean")).round(2)


def plot_bars(table: pd.DataFrame, path: str | Path | None = None) -> plt.Figure:
    """Grouped bars: one group per ability (and Overall), one bar per model."""
    use_cjk_font(warn=False)
    fig, ax = plt.subplots(figsize=(9, 4.2))
    cols = [c for c in COLUMNS if c in table.columns]
    width = 0.8 / max(1, len(table))
    for i, (name, row) in enumerate(table.iterrows()):
        xs = [j + i * width for j in range(len(cols))]
        ax.bar(xs, [0 if pd.isna(row[c]) else row[c] for c in cols], width, label=str(name))
    ax.set_xticks([j + width * (len(table) - 1) / 2 for j in range(len(cols))], cols)
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 100)
    # below the axes, so no bar (a 100 % bar reaches the top) is hidden behind it
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(3, max(1, len(table))), frameon=False)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig


def plot_radar(table: pd.DataFrame, path: str | Path | None = None) -> plt.Figure:
    """Radar chart of the five abilities, one polygon per model."""
    dims = [d for d in DIMENSIONS if d in table.columns]
    angles = [2 * math.pi * k / len(dims) for k in range(len(dims))]
    use_cjk_font(warn=False)
    fig = plt.figure(figsize=(5.2, 6.0))
    ax = fig.add_subplot(polar=True)
    for name, row in table.iterrows():
        vals = [0 if pd.isna(row[d]) else row[d] for d in dims]
        ax.plot(angles + angles[:1], vals + vals[:1], label=str(name))
        ax.fill(angles + angles[:1], vals + vals[:1], alpha=0.15)
    ax.set_xticks(angles, dims)
    ax.set_ylim(0, 100)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=1, frameon=False)  # under the chart: no label hidden
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig


def general_ability(model: Any, samples: Sequence[Mapping[str, Any]], cache_path: str | Path, *,
                    max_new_tokens: int = 160, batch_size: int = 8) -> tuple[dict[str, float], GenerationStats]:
    """ROUGE-L / BLEU (percent) of the model's answers to held-out general samples (``instruction`` -> ``output``)."""
    from labkit.agent import Decoding

    prompts = [(str(s["instruction"]), Decoding(None, None, max_new_tokens)) for s in samples]
    texts, stats = cached_generate(model, prompts, cache_path, batch_size=batch_size)
    refs = [str(s["output"]) for s in samples]
    n = len(samples)
    return ({"samples": n,
             "ROUGE-L": round(100 * sum(rouge_l(t, r) for t, r in zip(texts, refs)) / n, 2) if n else float("nan"),
             "BLEU": round(100 * sum(bleu(t, [r]) for t, r in zip(texts, refs)) / n, 2) if n else float("nan")},
            stats)


def query_of(record_id: str) -> str:
    """The held-out query a benchmark record belongs to (our ids are ``<query id>:<situation>``)."""
    return str(record_id).split(":", 1)[0]


def score_intervals(report: ScoreReport, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0,
                    tag: str | None = None, unit: Any = query_of,
                    dims: Sequence[str] = DIMENSIONS) -> pd.DataFrame:
    """Percentile-bootstrap intervals for every ability and Overall (percent).

    The resampling unit is the held-out *query* (``unit``: record id -> unit; each query contributes several
    records — plan steps, reflection, conclusion, profile — that are not independent), so the interval says how
    much the score would move on another draw of queries like these. ``tag`` keeps only "seen" or "unseen"
    templates; Profile records have a single persona prompt (no seen/unseen pair), so they are kept in both views
    and Overall stays comparable. Returns a frame indexed by ability with ``score``, ``low``, ``high``,
    ``records`` and ``units``. ``dims``: the abilities to report; Overall is then their weighted mean (weights
    renormalised over the ones present).
    """
    import numpy as np

    from labkit.evaluate.scorer import WEIGHTS

    rows = [r for r in report.rows if (tag is None or r.tag == tag or r.dimension == "Profile")
            and r.dimension in dims]
    per: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        per.setdefault(r.dimension, {}).setdefault(r.id, []).append(r.score)
    units = sorted({unit(r.id) for r in rows})
    index = {u: i for i, u in enumerate(units)}
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(units), [1 / len(units)] * len(units), size=n_boot) if units else np.zeros((0, 0))
    boot: dict[str, np.ndarray] = {}
    out: dict[str, dict[str, float | int | None]] = {}
    for dim in dims:
        recs = per.get(dim, {})
        if not recs:
            out[dim] = {"score": None, "low": None, "high": None, "records": 0, "units": 0}
            continue
        scores = np.array([sum(v) / len(v) for v in recs.values()])
        owner = np.array([index[unit(rid)] for rid in recs])
        w = weights[:, owner]  # (n_boot, n_records): how often each record's query was drawn
        total = w.sum(axis=1)
        boot[dim] = np.where(total > 0, (w * scores).sum(axis=1) / np.maximum(total, 1), np.nan)
        out[dim] = {"score": 100 * scores.mean(), "records": len(recs), "units": len(set(owner.tolist()))}
    present = [d for d in dims if d in boot]
    if present:
        wsum = sum(WEIGHTS[d] for d in present)
        boot["Overall"] = sum(WEIGHTS[d] * boot[d] for d in present) / wsum
        point = sum(WEIGHTS[d] * out[d]["score"] for d in present) / wsum  # type: ignore[operator]
        out["Overall"] = {"score": point, "records": len({r.id for r in rows}), "units": len(units)}
    else:
        out["Overall"] = {"score": None, "low": None, "high": None, "records": 0, "units": 0}
    alpha = (1 - level) / 2
    for name, values in boot.items():
        lo, hi = np.nanquantile(100 * values, [alpha, 1 - alpha])
        out[name].update(low=float(lo), high=float(hi))
    frame = pd.DataFrame(out).T[["score", "low", "high", "records", "units"]]
    for c in ("score", "low", "high"):
        frame[c] = pd.to_numeric(frame[c]).round(2)
    return frame


def _interval_cells(frame: pd.DataFrame) -> dict[str, str]:
    return {k: ("n/a" if pd.isna(v.score) else f"{v.score:.1f} [{v.low:.1f}, {v.high:.1f}]")
            for k, v in frame.iterrows()}


def interval_table(reports: Mapping[str, ScoreReport], **kw: Any) -> pd.DataFrame:
    """One row per model, ``score [low, high]`` per ability and Overall (see :func:`score_intervals`)."""
    rows = {name: _interval_cells(score_intervals(r, **kw)) for name, r in reports.items()}
    return pd.DataFrame(rows).T[COLUMNS] if rows else pd.DataFrame(columns=COLUMNS)


STEP_DIMENSIONS = ("Planning", "Tool-use", "Reflection")  # the abilities every template group is scored on


def group_table(*report_sets: Mapping[str, ScoreReport], groups: Sequence[str] = TEMPLATE_GROUPS,
                dims: Sequence[str] = STEP_DIMENSIONS, **kw: Any) -> pd.DataFrame:
    """Seen templates, unseen templates and held-out output formats side by side: one row per (model, group),
    ``score [low, high]`` per ability in ``dims`` and their weighted Overall (``Overall (P/T/R)``), with query
    bootstrap intervals (:func:`score_intervals`), plus the number of scored records. ``report_sets``: reports by
    model name, e.g. the main benchmark's and :func:`labkit.evaluate.benchmark.format_benchmark`'s; a model's rows
    are pooled over the sets. Concluding and Profile are left out: held-out formats are planning formats, and the
    persona prompt is the same in every group. A group with no template is left out."""
    import dataclasses

    pooled: dict[str, ScoreReport] = {}
    for reports in report_sets:
        for name, r in reports.items():
            pooled[name] = dataclasses.replace(r, rows=pooled[name].rows + r.rows) if name in pooled else r
    rows = []
    for name, r in pooled.items():
        for group in groups:
            frame = score_intervals(r, tag=group, dims=dims, **kw)
            if not int(frame.loc["Overall", "records"]):
                continue
            cells = _interval_cells(frame)
            rows.append({"model": name, "group": group, **{d: cells[d] for d in dims},
                         "Overall (P/T/R)": cells["Overall"], "records": int(frame.loc["Overall", "records"])})
    return pd.DataFrame(rows).set_index(["model", "group"]) if rows else pd.DataFrame()


def mix_effect_table(results: Mapping[str, Any]) -> pd.DataFrame:
    """The two-run mixing comparison written by ``bench/mix_forgetting.py``: per model, the held-out loss on general
    and agent samples and its change from the base model (positive = worse)."""
    rows = results["results"]
    base = rows["base (no training)"]
    out = {}
    for label, row in rows.items():
        g, a = row["general_heldout"]["loss"], row["agent_heldout"]["loss"]
        out[label] = {"train samples": row.get("train_samples", 0), "steps": row.get("steps", 0),
                      "general_heldout": g, "Δ general vs base": round(g - base["general_heldout"]["loss"], 4),
                      "agent_heldout": a, "Δ agent vs base": round(a - base["agent_heldout"]["loss"], 4)}
    return pd.DataFrame(out).T


def learning_curve(tuned_dir: str | Path, benchmark: Sequence[Mapping[str, Any]], out_dir: str | Path, *,
                   base: str | None = None, n_queries: int = 8, max_new_tokens: int | None = None,
                   batch_size: int = 8, caches: Mapping[str, str | Path] | None = None,
                   device: str | None = None) -> pd.DataFrame:
    """Overall (and every ability) against training minutes: the base model at 0, each weight snapshot that training
    saved in ``tuned_dir/curve/`` (``TrainSettings.curve_points``), and the final model, all scored on the records of
    the first ``n_queries`` held-out queries (cached and resumable like every evaluation).

    ``caches`` maps a model (``base`` or ``str(tuned_dir)``) to the request cache of its full-benchmark evaluation:
    those points read the answers already generated there instead of generating them again (the ``generated``
    column counts the prompts that did hit a model). ``device``: as :func:`labkit.llm.local.resolve_device`."""
    import json as _json

    from labkit.evaluate.runner import evaluate_model
    from labkit.jsonl import read_jsonl
    from labkit.llm import LocalHFModel

    tuned_dir, out_dir = Path(tuned_dir), Path(out_dir)
    keep = list(dict.fromkeys(query_of(r["id"]) for r in benchmark))[:n_queries]
    subset = [r for r in benchmark if query_of(r["id"]) in keep]
    points: list[tuple[float, str, str | Path]] = [(0.0, "base", base)] if base else []
    index = tuned_dir / "curve" / "index.jsonl"
    for row in read_jsonl(index) if index.exists() else []:
        points.append((float(row["train_minutes"]), f"step {row['step']}", tuned_dir / "curve" / row["path"]))
    log = tuned_dir / "train_log.jsonl"
    if (tuned_dir / "config.json").exists() and log.exists():
        rows = [_json.loads(x) for x in log.read_text(encoding="utf-8").splitlines() if x.strip()]
        points.append((sum(float(r["s_per_step"]) for r in rows) / 60, f"final (step {rows[-1]['step']})", tuned_dir))
    table = []
    kw = {"max_new_tokens": max_new_tokens} if max_new_tokens else {}
    for minutes, label, spec in points:
        model = LocalHFModel(spec, device=device) if spec is not None else None
        if model is None:
            continue
        name = label.replace(" ", "_").replace("(", "").replace(")", "")
        cache = (caches or {}).get(str(spec))
        report, stats = evaluate_model(model, subset, out_dir / f"curve_{name}", batch_size=batch_size,
                                       cache_path=cache, **kw)
        table.append({"train minutes": round(minutes, 2), "point": label, **report.summary(),
                      "generated": stats.generated})
        del model
    return pd.DataFrame(table)


def plot_curve(curve: pd.DataFrame, path: str | Path | None = None, *, x: str = "train minutes",
               xlabel: str = "training minutes (2-core CPU)", columns: Sequence[str] | None = None) -> plt.Figure:
    """Scores against training progress: by default Overall and the five abilities against training minutes
    (notebook 06's learning curve); ``x`` / ``columns`` for other curves (the ceiling: scores against samples seen)."""
    use_cjk_font(warn=False)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for col in columns if columns is not None else [c for c in [*DIMENSIONS, "Overall"] if c in curve.columns]:
        ax.plot(curve[x], curve[col], marker="o", lw=2.5 if col == "Overall" else 1, label=col)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 100)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig


def recipe_table(arms: Mapping[str, tuple[ScoreReport, Mapping[str, Any]]]) -> pd.DataFrame:
    """One row per recipe of an experiment: its training facts (``train``: trainable parameters, steps, minutes)
    and its scores on the same held-out subset with 95 % intervals (:func:`score_intervals`, over queries)."""
    rows = {}
    for label, (report, info) in arms.items():
        f = score_intervals(report)
        row = {"trainable params": info.get("trainable"), "steps": info.get("steps"),
               "train minutes": info.get("minutes"), "s / step": info.get("s_per_step")}
        for dim in ("Planning", "Tool-use", "Overall"):
            r = f.loc[dim]
            row[dim] = None if pd.isna(r.score) else r.score
            row[f"{dim} 95%"] = "n/a" if pd.isna(r.score) else f"[{r.low:.1f}, {r.high:.1f}]"
        rows[label] = row
    return pd.DataFrame(rows).T


def recipe_verdict(table: pd.DataFrame, metric: str = "Overall") -> str:
    """One honest sentence about two recipes: which scored higher on ``metric`` and whether the 95 % intervals
    overlap (then this run shows no difference)."""
    if len(table) != 2:
        return "需要正好两种配方才能比较。"
    (a, ra), (b, rb) = table.iterrows()
    if ra[metric] is None or rb[metric] is None or pd.isna(ra[metric]) or pd.isna(rb[metric]):
        return f"{metric} 没有分数（评估子集里没有对应的记录）。"

    def bounds(row: Any) -> tuple[float, float]:
        lo, hi = str(row[f"{metric} 95%"]).strip("[]").split(",")
        return float(lo), float(hi)

    (la, ha), (lb, hb) = bounds(ra), bounds(rb)
    hi_label, lo_label = (a, b) if ra[metric] >= rb[metric] else (b, a)
    gap = abs(float(ra[metric]) - float(rb[metric]))
    same = f"同样的训练时间里 {a} 走了 {ra['steps']} 步、{b} 走了 {rb['steps']} 步。"
    if la <= hb and lb <= ha:
        return (f"{hi_label} 的 {metric} 高 {gap:.1f} 分，但两者的 95% 区间重叠：这次实验**没有测出差别**。{same}"
                "要下结论，需要更多 query、更长的训练或多个种子。")
    return f"{hi_label} 的 {metric} 比 {lo_label} 高 {gap:.1f} 分，95% 区间不重叠：这次实验测出了差别。{same}"
