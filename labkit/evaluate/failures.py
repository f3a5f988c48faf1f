"""Why a model scores what it scores: every planning answer sorted into one kind, and answers side by side.

Each template output of a planning record (``plantooluse``; ``reflextion`` on request) is read exactly as the scorer
reads it (:func:`labkit.evaluate.scorer.planning_steps`) and sorted into the first kind that fits:

* ``right_tool`` — the tool of a golden step (arguments may still be off: Tool-use scores them);
* ``finished_early`` — ``task_complete`` (or a final answer) while the golden step still needs a tool;
* ``wrong_offered_tool`` — another tool the prompt offered;
* ``tool_not_offered`` — a tool name the prompt did not offer (a sandbox tool left out, or an invented one);
* ``unparsed`` — no tool can be read from the output (format broken, empty, cut off).

Offered tools are the record's ``funcs`` (every template of a record offers the same gold tools + distractors;
``task_complete`` is the finishing action of every format).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from labkit.evaluate.kagentbench import NONE
from labkit.evaluate.scorer import planning_steps

FINISH = "task_complete"
KINDS: dict[str, str] = {  # code -> 简体中文 label (the notebooks' charts and tables)
    "right_tool": "选对了工具",
    "finished_early": "还需要工具时就 task_complete",
    "wrong_offered_tool": "选了另一个提供的工具",
    "tool_not_offered": "调用了没有提供的工具",
    "unparsed": "读不出工具（格式坏了）",
}


def _offered(record: Mapping[str, Any]) -> set[str]:
    names = {str(f.get("name")) for f in record.get("funcs") or () if isinstance(f, Mapping)}
    return names | {FINISH}


def classify(tool: Any, gold_tools: Sequence[str], offered: set[str]) -> str:
    """The kind of one answer (see the module docstring) from the tool name the scorer read."""
    name = "" if tool in (None, NONE) else str(tool).strip()
    if not name:
        return "unparsed"
    if name in gold_tools:
        return "right_tool"
    if name == FINISH:
        return "finished_early"
    return "wrong_offered_tool" if name in offered else "tool_not_offered"


def planning_answers(benchmark: Sequence[Mapping[str, Any]], predictions: Sequence[Mapping[str, Any]], *,
                     types: Sequence[str] = ("plantooluse",), options: Any = None) -> pd.DataFrame:
    """One row per planning answer: ``id, query, step, template, tag, gold, tool, kind, label`` (see module doc)."""
    by_id = {str(p["id"]): p for p in predictions}
    rows = []
    for rec in benchmark:
        if rec.get("type") not in types or str(rec["id"]) not in by_id:
            continue
        gold = [str(g.get("tool_name")) for g in rec.get("golden_result_list") or () if g.get("tool_name") != NONE]
        offered, tags = _offered(rec), rec.get("template_tags") or {}
        for template, step in planning_steps(rec, by_id[str(rec["id"])].get("model_predict")):
            kind = classify(step.tool_name, gold, offered)
            rows.append({"id": rec["id"], "query": rec.get("query", ""), "step": rec.get("step", 0),
                         "template": template, "tag": tags.get(template, ""), "gold": ", ".join(gold),
                         "tool": "" if step.tool_name in (None, NONE) else str(step.tool_name), "kind": kind,
                         "label": KINDS[kind]})
    return pd.DataFrame(rows, columns=["id", "query", "step", "template", "tag", "gold", "tool", "kind", "label"])


def failure_counts(answers: pd.DataFrame, by: str | None = "tag") -> pd.DataFrame:
    """Answers per kind (rows, in :data:`KINDS` order, Chinese labels), one column per value of ``by`` plus
    ``all``; the last row ``合计`` is the number of answers."""
    index = list(KINDS.values())
    table = pd.DataFrame(index=index)
    if by is not None and by in answers and len(answers):
        for value, group in answers.groupby(by):
            table[str(value) or "?"] = group["label"].value_counts().reindex(index, fill_value=0)
    table["all"] = answers["label"].value_counts().reindex(index, fill_value=0) if len(answers) else 0
    table = table.fillna(0).astype(int)
    table.loc["合计"] = table.sum()
    return table


def plot_failure_kinds(counts: pd.DataFrame, path: str | Path | None = None, *, title: str = "") -> Any:
    """Horizontal bars: share of answers per kind (percent of the column's 合计), one bar per column."""
    import matplotlib.pyplot as plt

    from labkit.plotting import use_cjk_font

    use_cjk_font(warn=False)
    body = counts.drop(index="合计", errors="ignore")
    totals = counts.loc["合计"] if "合计" in counts.index else body.sum()
    fig, ax = plt.subplots(figsize=(8, 3.4))
    cols = list(body.columns)
    height = 0.8 / max(1, len(cols))
    for j, col in enumerate(cols):
        share = 100 * body[col] / max(int(totals[col]), 1)
        ys = [i + j * height for i in range(len(body))]
        bars = ax.barh(ys, share, height, label=f"{col}（{int(totals[col])} 条）")
        for bar, n in zip(bars, body[col]):
            ax.text(bar.get_width() + 0.5, bar.get_y() + bar.get_height() / 2, str(int(n)), va="center",
                    fontsize=8)
    ax.set_yticks([i + height * (len(cols) - 1) / 2 for i in range(len(body))], list(body.index))
    ax.invert_yaxis()
    ax.set_xlabel("占全部规划回答的百分比（%）")
    ax.set_xlim(0, 100)
    if title:
        ax.set_title(title, fontsize=11)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig


def _short(text: Any, limit: int) -> str:
    text = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def answers_side_by_side(benchmark: Sequence[Mapping[str, Any]],
                         predictions: Mapping[str, Sequence[Mapping[str, Any]]], *, n_queries: int = 3,
                         types: Sequence[str] = ("plantooluse",), max_chars: int = 220) -> pd.DataFrame:
    """The answers of several models (``{label: predictions}``) to the same prompts of the first ``n_queries``
    held-out queries, next to the golden step, each with its kind: what training changed, answer by answer."""
    answers = {label: planning_answers(benchmark, preds, types=types) for label, preds in predictions.items()}
    texts = {label: {str(p["id"]): p.get("model_predict") for p in preds} for label, preds in predictions.items()}
    keep: list[str] = []
    rows = []
    for rec in benchmark:
        if rec.get("type") not in types:
            continue
        query = str(rec["id"]).split(":", 1)[0]
        if query not in keep:
            if len(keep) >= n_queries:
                continue
            keep.append(query)
        golden = (rec.get("golden_result_list") or [{}])[0]
        for template in rec.get("prompt_input") or {}:
            row = {"query": _short(rec.get("query", ""), 60), "step": rec.get("step", 0), "template": template,
                   "tag": (rec.get("template_tags") or {}).get(template, ""),
                   "golden": _short(f"{golden.get('tool_name')} {json.dumps(golden.get('tool_args') or {}, ensure_ascii=False)}", max_chars)}
            for label in predictions:
                out = (texts[label].get(str(rec["id"])) or {})
                got = answers[label]
                hit = got[(got["id"] == rec["id"]) & (got["template"] == template)]
                row[label] = _short(out.get(template, "") if isinstance(out, Mapping) else out, max_chars)
                row[f"{label}：判定"] = hit["label"].iloc[0] if len(hit) else ""
            rows.append(row)
    return pd.DataFrame(rows)
