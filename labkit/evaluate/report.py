"""Tables and plots of evaluation results: the note's score table, bar + radar charts, seen/unseen template
breakdown, and a general-ability check (ROUGE-L on held-out general SFT samples) to show forgetting."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from labkit.evaluate.rouge import bleu, rouge_l
from labkit.evaluate.runner import GenerationStats, cached_generate
from labkit.evaluate.scorer import DIMENSIONS, ScoreReport

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
    fig, ax = plt.subplots(figsize=(9, 3.8))
    cols = [c for c in COLUMNS if c in table.columns]
    width = 0.8 / max(1, len(table))
    for i, (name, row) in enumerate(table.iterrows()):
        xs = [j + i * width for j in range(len(cols))]
        ax.bar(xs, [0 if pd.isna(row[c]) else row[c] for c in cols], width, label=str(name))
    ax.set_xticks([j + width * (len(table) - 1) / 2 for j in range(len(cols))], cols)
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 100)
    ax.legend()
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig


def plot_radar(table: pd.DataFrame, path: str | Path | None = None) -> plt.Figure:
    """Radar chart of the five abilities, one polygon per model."""
    dims = [d for d in DIMENSIONS if d in table.columns]
    angles = [2 * math.pi * k / len(dims) for k in range(len(dims))]
    fig = plt.figure(figsize=(4.8, 4.8))
    ax = fig.add_subplot(polar=True)
    for name, row in table.iterrows():
        vals = [0 if pd.isna(row[d]) else row[d] for d in dims]
        ax.plot(angles + angles[:1], vals + vals[:1], label=str(name))
        ax.fill(angles + angles[:1], vals + vals[:1], alpha=0.15)
    ax.set_xticks(angles, dims)
    ax.set_ylim(0, 100)
    ax.legend(loc="upper right", bbox_to_anchor=(1.3, 1.1))
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
