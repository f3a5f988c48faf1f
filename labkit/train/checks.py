"""Before/after checks for a tuned model: the same agent prompts answered by the base and the tuned checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from labkit.types import Message


DISTRACTORS = ("web_search", "calculator")


def agent_prompt(query: str, template: str = "react", tool_names: Sequence[str] | None = None) -> list[Message]:
    """The one-turn chat a planning step sends: the template rendered with sandbox tools and this goal.

    ``tool_names`` picks the offered tools (as the data stage does: gold tools + distractors); None offers all.
    """
    from labkit.templates import load_template
    from labkit.tools import default_registry

    tools = default_registry()
    if tool_names is not None:
        tools = tools.subset(list(dict.fromkeys([*tool_names, *DISTRACTORS, "task_complete"])))
    return [{"role": "user", "content": load_template(template).render(goal=query, tools=tools)}]


def heldout_queries(test_queries_path: str | Path, n: int = 2) -> list[dict]:
    """The first ``n`` held-out queries that need tools, alternating languages (zh, en, ...).

    Returns [] when there is no held-out split at that path (e.g. a cluster job trained on the user's own data).
    """
    from labkit.jsonl import read_jsonl

    if not Path(test_queries_path).exists():
        return []
    records = [r for r in read_jsonl(test_queries_path) if r.get("gold_calls")]
    by_lang = {lang: [r for r in records if r.get("lang") == lang] for lang in ("zh", "en")}
    picked: list[dict] = []
    for i in range(n):
        pool = by_lang["zh" if i % 2 == 0 else "en"] or records
        picked.append(pool[i // 2 % len(pool)])
    return picked


def compare_generations(base: str, tuned: str, queries: Sequence[str | dict], *, template: str = "react",
                        max_new_tokens: int | None = None, device: str | None = None) -> pd.DataFrame:
    """Greedy first-step outputs of ``base`` and ``tuned`` (model dirs or labkit.llm names) for each query, decoded
    as the template's output format asks (its stop strings, completion rule and token budget, which is above the
    longest gold answer; ``max_new_tokens`` overrides the budget, e.g. for a smoke run).

    A query is a string (all tools offered) or a query-bank record (its gold tools + distractors offered).
    """
    from labkit.agent import decoding_for
    from labkit.llm import LocalHFModel
    from labkit.templates import load_template

    dec = decoding_for(load_template(template).output_format, max_new_tokens or None)

    texts = [q if isinstance(q, str) else q["query"] for q in queries]
    prompts = [agent_prompt(q, template) if isinstance(q, str)
               else agent_prompt(q["query"], template, [c["name"] for c in q["gold_calls"]]) for q in queries]
    rows: dict[str, list[str]] = {"query": texts}
    for label, path in (("before (base)", base), ("after (tuned)", tuned)):
        model = LocalHFModel(path, device=device)
        rows[label] = [r.text for r in model.chat_batch(prompts, **dec.kwargs())]
        del model
    return pd.DataFrame(rows)


def plot_loss(losses: Sequence[tuple[int, float]], title: str = "training loss") -> object:
    """Loss per step (matplotlib figure)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    if losses:
        steps, values = zip(*losses)
        ax.plot(steps, values, marker=".")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (supervised tokens)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def heldout_loss(model_path: str | Path, samples: Sequence[dict], *, tokenizer: object = None) -> dict[str, float]:
    """Mean cross-entropy per supervised token (and its perplexity) of a model on samples it was not trained on —
    e.g. held-out general samples, to see forgetting. Samples are in the training format (``messages`` with loss)."""
    import math

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from labkit.train.collate import IGNORE_INDEX, encode_messages
    from labkit.train.loss import supervised_logits_loss
    from labkit.train.tiny import resolve_model_path

    path = resolve_model_path(str(model_path))
    tok = tokenizer or AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for s in samples:
            enc = encode_messages(s["messages"], tok)
            n = sum(lab != IGNORE_INDEX for lab in enc.labels[1:])  # labels shift by one inside the model
            if not n:
                continue
            mean = supervised_logits_loss(model, {"input_ids": torch.tensor([enc.input_ids]),
                                                  "labels": torch.tensor([enc.labels])})  # lm_head where supervised
            total += float(mean) * n
            tokens += n
    nll = total / tokens if tokens else float("nan")
    return {"samples": len(samples), "tokens": tokens, "loss": round(nll, 4),
            "perplexity": round(math.exp(nll), 2) if tokens else float("nan")}
