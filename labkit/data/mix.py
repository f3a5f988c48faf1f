"""Mix general SFT data into the agent data (Agent : General = 5 : 1 by default) against catastrophic forgetting."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypedDict

from labkit.records import GeneralItem, Sample


class MixInfo(TypedDict):
    """What :func:`mix` did (stats.json ``samples.mix``)."""

    agent: int
    general: int
    general_wanted: int
    ratio: float
    actual_ratio: float | None   # None when no general sample was mixed in
    general_unique: int
    general_repeats: int


def general_sample(record: GeneralItem, repeat: int = 0) -> Sample:
    """A general instruction record ``{id, instruction, output, lang}`` in the training sample format."""
    suffix = f"-rep{repeat}" if repeat else ""
    return {"id": f"general-{record['id']}{suffix}", "source": "general", "query_id": record["id"], "template": None,
            "step": 0, "messages": [{"role": "user", "content": record["instruction"], "loss": False},
                                    {"role": "assistant", "content": record["output"], "loss": True}]}


def mix(agent: Sequence[Sample], general: Sequence[GeneralItem], *, ratio: float = 5.0,
        seed: int = 0, allow_repeats: bool = True) -> tuple[list[Sample], MixInfo]:
    """Return agent samples plus ``round(len(agent) / ratio)`` general samples (records of general.jsonl), shuffled.

    When the general pool is smaller than that, it is repeated (each copy is a new sample id, ``-repK``) if
    ``allow_repeats``, else all of it is used once and ``actual_ratio`` shows the difference.
    """
    if ratio <= 0:
        raise ValueError(f"ratio (agent : general) must be > 0, got {ratio}")
    wanted = round(len(agent) / ratio)
    rng = random.Random(seed)
    pool = list(general)
    rng.shuffle(pool)
    n = wanted if allow_repeats and pool else min(wanted, len(pool))
    chosen = [general_sample(pool[i % len(pool)], i // len(pool)) for i in range(n)]
    mixed = list(agent) + chosen
    rng.shuffle(mixed)
    info: MixInfo = {"agent": len(agent), "general": len(chosen), "general_wanted": wanted, "ratio": ratio,
                     "actual_ratio": round(len(agent) / len(chosen), 3) if chosen else None,
                     "general_unique": min(len(chosen), len(pool)), "general_repeats": max(0, len(chosen) - len(pool))}
    return mixed, info
