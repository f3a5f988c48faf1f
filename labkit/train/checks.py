"""Before/after checks for a tuned model: the same agent prompts answered by the base and the tuned checkpoint."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from labkit.types import Message


def agent_prompt(query: str, template: str = "react") -> list[Message]:
    """The one-turn chat a planning step sends: the template rendered with the sandbox tools and this goal."""
    from labkit.templates import load_template
    from labkit.tools import default_registry

    return [{"role": "user", "content": load_template(template).render(goal=query, tools=default_registry())}]


def compare_generations(base: str, tuned: str, queries: Sequence[str], *, template: str = "react",
                        max_new_tokens: int = 64) -> pd.DataFrame:
    """Greedy first-step outputs of ``base`` and ``tuned`` (model dirs or labkit.llm names) for each query."""
    from labkit.llm import LocalHFModel

    prompts = [agent_prompt(q, template) for q in queries]
    rows: dict[str, list[str]] = {"query": list(queries)}
    for label, path in (("before (base)", base), ("after (tuned)", tuned)):
        model = LocalHFModel(path)
        rows[label] = [r.text for r in model.chat_batch(prompts, max_new_tokens=max_new_tokens)]
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
