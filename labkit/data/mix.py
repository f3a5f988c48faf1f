"""Mix general SFT data into the agent data (Agent : General = 5 : 1 by default) against catastrophic forgetting."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any


def general_sample(record: dict[str, Any]) -> dict[str, Any]:
    """A general instruction record ``{id, instruction, output, lang}`` in the training sample format."""
    return {"id": f"general-{record['id']}", "source": "general", "query_id": record["id"], "template": None,
            "step": 0, "messages": [{"role": "user", "content": record["instruction"], "loss": False},
                                    {"role": "assistant", "content": record["output"], "loss": True}]}


def mix(agent: Sequence[dict[str, Any]], general: Sequence[dict[str, Any]], *, ratio: float = 5.0,
        seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Return agent samples plus ``len(agent) / ratio`` general samples (records of general.jsonl), shuffled.

    When there are fewer general records than wanted, all are used and ``actual_ratio`` says so.
    """
    if ratio <= 0:
        raise ValueError(f"ratio (agent : general) must be > 0, got {ratio}")
    wanted = round(len(agent) / ratio)
    rng = random.Random(seed)
    pool = list(general)
    rng.shuffle(pool)
    chosen = [general_sample(r) for r in pool[:wanted]]
    mixed = list(agent) + chosen
    rng.shuffle(mixed)
    info = {"agent": len(agent), "general": len(chosen), "general_wanted": wanted, "ratio": ratio,
            "actual_ratio": round(len(agent) / len(chosen), 3) if chosen else None}
    return mixed, info
