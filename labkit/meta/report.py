"""Views of a Meta-Agent run: the funnel plot, diversity of a template set, templates side by side."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from itertools import combinations
from typing import Any, TypedDict

from labkit.templates import AgentTemplate


class FunnelStep(TypedDict):
    """One step of the Meta-Agent funnel (``labkit.meta.pipeline.run_meta_agent``, ``funnel.json``)."""

    step: str
    count: int
    unit: str            # "queries" | "clusters" | "templates" | "instances"


class Diversity(TypedDict):
    """How diverse a template set is (:func:`diversity`)."""

    templates: int
    output_formats: int
    format_families: int
    languages: int
    distinct_headings: int
    mean_pairwise_similarity: float

# Lines that read as a section heading: "## x", "【x】", "[x]", "<x>", "一、x", "1. x", "=== X ===", short "x:".
_HEADING = re.compile(r"^\s*(#{1,4}\s*\S.*|【[^】]{1,20}】|\[[^\]]{1,30}\]|<[a-z]{2,20}>|[一二三四五六七八九十]、\S{1,12}|"
                      r"\d{1,2}\.\s+[A-Z][\w ]{1,28}|=== .{1,30} ===|[^\s{}\"<>][^{}\"<>:：]{0,22}[:：])\s*$")


def plot_funnel(funnel: Sequence[FunnelStep], ax: Any = None) -> Any:
    """Horizontal bars, one per funnel step, coloured by unit (templates / instances)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 3.6))[1]
    steps = [f for f in funnel if f["unit"] in ("templates", "instances")]
    colours = {"templates": "#4f81bd", "instances": "#9bbb59"}
    ys = range(len(steps))[::-1]
    ax.barh(list(ys), [f["count"] for f in steps], color=[colours[f["unit"]] for f in steps])
    for y, f in zip(ys, steps):
        ax.text(f["count"], y, f" {f['count']}", va="center", fontsize=8)
    ax.set_yticks(list(ys), [f"{f['step']} ({f['unit']})" for f in steps], fontsize=8)
    ax.set_title("Meta-Agent funnel")
    return ax


def section_headings(template: AgentTemplate) -> list[str]:
    """The heading lines of a template's text (normalised: spaces squeezed, Jinja left out)."""
    out = []
    for line in template.text.splitlines():
        if "{{" not in line and "{%" not in line and _HEADING.match(line):
            out.append(" ".join(line.split()))
    return out


def mean_pairwise_similarity(templates: Sequence[AgentTemplate]) -> float:
    """Mean cosine similarity of the templates' texts (TF-IDF over character 2-4-grams); 1 = identical."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if len(templates) < 2:
        return float("nan")
    matrix = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit_transform([t.text for t in templates])
    sims = (matrix @ matrix.T).toarray()
    pairs = list(combinations(range(len(templates)), 2))
    return float(sum(sims[i, j] for i, j in pairs) / len(pairs))


def format_family(template: AgentTemplate) -> str:
    """'builtin:<name>' or 'declared:<style>' - how many *kinds* of output a set covers (``OutputFormat.family``)."""
    return template.format.family


def diversity(templates: Sequence[AgentTemplate]) -> Diversity:
    """Distinct output formats, format families, languages, heading wordings; mean pairwise text similarity."""
    headings = [h for t in templates for h in section_headings(t)]
    return {"templates": len(templates), "output_formats": len({t.output_format for t in templates}),
            "format_families": len({format_family(t) for t in templates}),
            "languages": len({t.lang for t in templates}), "distinct_headings": len(set(headings)),
            "mean_pairwise_similarity": round(mean_pairwise_similarity(templates), 3)}


def side_by_side(templates: Sequence[AgentTemplate], *, height_em: int = 26) -> Any:
    """The templates' raw texts in scrollable columns (name, format and language on top)."""
    from IPython.display import HTML

    cols = "".join(
        f"<div style='flex:1;min-width:16em'><b>{html.escape(t.name)}</b><br><small>{html.escape(t.output_format)} "
        f"· {t.lang}</small><pre style='white-space:pre-wrap;font-size:11px;height:{height_em}em;overflow:auto;"
        f"border:1px solid #ccc;padding:4px'>{html.escape(t.text)}</pre></div>" for t in templates)
    return HTML(f"<div style='display:flex;gap:8px'>{cols}</div>")


def format_table(formats: Sequence[Any]) -> Any:
    """One row per output format object: what each one owns (markers, stop markers, layout, how it finishes)."""
    import pandas as pd

    rows = [{"format": f.name, "declared": getattr(f, "style", "") or "built-in", "markers": " ".join(f.markers),
             "stop_markers": " ".join(f.stop_markers), "finishes_with_call": f.finishes_with_call,
             "answer_form": f.has_answer_form, "memory_style": f.memory_style, "tool_style": f.tool_style}
            for f in formats]
    return pd.DataFrame(rows).set_index("format")


def candidate_table(candidates: Sequence[Any]) -> Any:
    """What the writer chose for each candidate (offline traits; LLM-written candidates show what is known)."""
    import pandas as pd

    keys = ("lang", "domain", "header_style", "output_format", "style", "tool_style", "memory_style", "flaw")
    return pd.DataFrame([{"name": c.name, "cluster": c.cluster, **{k: c.traits.get(k) for k in keys}}
                         for c in candidates]).set_index("name")


def threshold_sweep(instances: Any, verdicts: Any, epsilons: Sequence[float], thresholds: Sequence[float]) -> Any:
    """How many templates / instances survive for other (epsilon, threshold) choices, from the judged instances
    (no model is asked again). Rows: epsilon; columns: threshold -> "templates / kept instances"."""
    import pandas as pd

    passed = set(verdicts[verdicts["round_trip_ok"]].index)
    df = instances[instances["template"].isin(passed)]
    means = df.groupby("template")["s2"].mean()
    table = {}
    for eps in epsilons:
        kept_inst = df[(df["s2"] - df["s1"]) > eps]
        table[eps] = {}
        for tau in thresholds:
            names = set(means[means > tau].index)
            table[eps][tau] = f"{len(names)} / {int(kept_inst['template'].isin(names).sum())}"
    out = pd.DataFrame(table).T
    out.index.name, out.columns.name = "epsilon", "threshold"
    return out
