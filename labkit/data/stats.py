"""Dataset statistics and plots: tool distribution, steps per sample, token lengths, rejections, template mix."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypedDict

import pandas as pd

from labkit.chat import render_chat
from labkit.records import LabelledRecord, Sample


class TokenSummary(TypedDict):
    mean: float
    min: int
    p50: int
    p95: int
    max: int
    total: int


class PromptTokens(TypedDict):
    p50: int
    p95: int
    max: int


class FitsMaxLen(TypedDict):
    max_len: int
    longer: int                  # samples that would not fit (prompt + output + 3 special tokens > max_len)


class _SummaryFields(TypedDict):
    prompt_tokens: PromptTokens
    tool_calls: dict[str, int]
    tool_steps_per_trace: dict[int, int]
    samples_per_template: dict[str, int]
    tokens: TokenSummary
    tokens_by_source: dict[str, TokenSummary]


class DataSummary(_SummaryFields, total=False):
    """:func:`summarize`'s counts (part of stats.json); ``fits_max_len`` comes first when a max_len is given."""

    fits_max_len: FitsMaxLen


def token_counter() -> tuple[Callable[[list[str]], list[int]], str]:
    """A batch counter: the student's (Gemma) tokenizer when available locally, else an estimate (chars / 2)."""
    try:
        from labkit.llm import load_tokenizer

        tok = load_tokenizer()
        return (lambda texts: [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]), \
            "gemma-3-270m tokenizer"
    except Exception:  # offline without the converted model: say so in stats.json
        return (lambda texts: [(len(t) + 1) // 2 for t in texts]), "estimate: characters / 2 (tokenizer unavailable)"


def trace_table(records: Sequence[LabelledRecord]) -> pd.DataFrame:
    """One row per labelled trace: template, tools called, number of tool steps, stop reason."""
    rows = []
    for r in records:
        steps = r["trace"]["steps"]
        calls = [s["parsed"]["call"]["name"] for s in steps if s["parsed"].get("ok") and s["parsed"].get("call")]
        rows.append({"job_id": r["job_id"], "template": r["template"], "lang": r.get("lang"),
                     "tool_steps": sum(c != "task_complete" for c in calls), "llm_calls": len(steps),
                     "calls": calls, "stopped": r["trace"]["stopped"]})
    return pd.DataFrame(rows)


def sample_table(samples: Sequence[Sample], count: Callable[[list[str]], list[int]]) -> pd.DataFrame:
    """One row per training sample: source, template, step, prompt / output / total tokens."""
    prompts = [render_chat([m for m in s["messages"] if m["role"] != "assistant"]) for s in samples]
    outputs = ["".join(m["content"] for m in s["messages"] if m["role"] == "assistant") for s in samples]
    p_tok, o_tok = (count(prompts), count(outputs)) if samples else ([], [])
    rows = [{"id": s["id"], "source": s["source"], "template": s["template"] or "(general)", "step": s["step"],
             "prompt_tokens": p, "output_tokens": o, "total_tokens": p + o}
            for s, p, o in zip(samples, p_tok, o_tok)]
    return pd.DataFrame(rows, columns=["id", "source", "template", "step", "prompt_tokens", "output_tokens",
                                       "total_tokens"])


def summarize(traces: pd.DataFrame, samples: pd.DataFrame, max_len: int | None = None) -> DataSummary:
    """Counts for stats.json; ``max_len`` (the mode's training max_len) adds how many samples would not fit."""
    tools = Counter(c for calls in traces["calls"] for c in calls) if len(traces) else Counter()
    tok = samples["total_tokens"] if len(samples) else pd.Series([0])
    prompt = samples["prompt_tokens"] if len(samples) else pd.Series([0])
    summary: DataSummary = {
        "prompt_tokens": {"p50": int(prompt.median()), "p95": int(prompt.quantile(0.95)), "max": int(prompt.max())},
        "tool_calls": dict(tools.most_common()),
        "tool_steps_per_trace": {int(k): int(v) for k, v in traces["tool_steps"].value_counts().sort_index().items()}
        if len(traces) else {},
        "samples_per_template": {k: int(v) for k, v in samples["template"].value_counts().items()} if len(samples) else {},
        "tokens": _token_summary(tok),
        "tokens_by_source": {str(src): _token_summary(df["total_tokens"]) for src, df in samples.groupby("source")}
        if len(samples) else {},
    }
    if max_len is None:
        return summary
    # + 3: the <bos>, <end_of_turn> and newline that training adds around prompt + output
    return {"fits_max_len": {"max_len": max_len, "longer": int((tok + 3 > max_len).sum())}, **summary}


def _token_summary(tok: pd.Series) -> TokenSummary:
    return {"mean": round(float(tok.mean()), 1), "min": int(tok.min()), "p50": int(tok.median()),
            "p95": int(tok.quantile(0.95)), "max": int(tok.max()), "total": int(tok.sum())}


def plot_overview(traces: pd.DataFrame, samples: pd.DataFrame, rejections: pd.DataFrame) -> Any:
    """A 2 x 3 figure: tools, tool steps per trace, token lengths, rejection reasons, template mix, source mix."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 3, figsize=(15, 7.5))
    tools = Counter(c for calls in traces["calls"] for c in calls)
    pd.Series(dict(tools.most_common())).iloc[::-1].plot.barh(ax=ax[0, 0], title="tool calls (accepted traces)")
    traces["tool_steps"].value_counts().sort_index().plot.bar(ax=ax[0, 1], title="tool steps per trace", rot=0)
    samples["total_tokens"].plot.hist(ax=ax[0, 2], bins=30, title="tokens per sample (prompt + output)")
    rejections["samples"].iloc[::-1].plot.barh(ax=ax[1, 0], color="#c0504d", title="rejections by reason")
    samples["template"].value_counts().iloc[::-1].plot.barh(ax=ax[1, 1], title="samples per template")
    samples["source"].value_counts().plot.pie(ax=ax[1, 2], autopct="%1.0f%%", title="agent : general")
    ax[1, 2].set_ylabel("")
    fig.tight_layout()
    return fig
