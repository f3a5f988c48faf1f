"""Mix general SFT data into the agent data (Agent : General = 5 : 1 by default) against catastrophic forgetting."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TypedDict

from labkit.records import GeneralItem, Sample, SampleMessage


MAX_GENERAL_TURNS = 16   # exchanges per general conversation (data.general_turns); a bound, not a target


class MixInfo(TypedDict):
    """What :func:`mix` did (stats.json ``samples.mix``)."""

    agent: int
    general: int                 # general samples (conversations)
    general_wanted: int
    ratio: float
    actual_ratio: float | None   # None when no general sample was mixed in
    turns: int                   # exchanges per general sample
    general_items: int           # general records used, repeats included (general x turns)
    general_unique: int
    general_repeats: int


def general_sample(record: GeneralItem | Sequence[GeneralItem], repeat: int = 0) -> Sample:
    """General instruction records ``{id, instruction, output, lang}`` as one training sample: one record is one
    exchange, several are one conversation of that many exchanges (every answer supervised, its id the first
    record's with ``+N`` for the others)."""
    records = [record] if isinstance(record, Mapping) else list(record)
    if not records:
        raise ValueError("general_sample: no general record given")
    suffix = (f"+{len(records) - 1}" if len(records) > 1 else "") + (f"-rep{repeat}" if repeat else "")
    messages: list[SampleMessage] = []
    for r in records:
        messages += [{"role": "user", "content": r["instruction"], "loss": False},
                     {"role": "assistant", "content": r["output"], "loss": True}]
    return {"id": f"general-{records[0]['id']}{suffix}", "source": "general", "query_id": records[0]["id"],
            "template": None, "step": 0, "messages": messages}


def mix(agent: Sequence[Sample], general: Sequence[GeneralItem], *, ratio: float = 5.0,
        seed: int = 0, allow_repeats: bool = True, turns: int = 1) -> tuple[list[Sample], MixInfo]:
    """Return agent samples plus ``round(len(agent) / ratio)`` general samples (records of general.jsonl), shuffled.

    ``turns``: exchanges per general sample. 1 is the note's single instruction-answer pair; more makes each general
    sample a conversation of that many records taken in turn from the shuffled pool, so the ratio by samples stays
    and the ratio by tokens falls (the general records are 9-121 tokens, the agent steps ~500). When the pool is
    smaller than the records wanted, it is repeated (a conversation holding a repeated record gets a new sample id,
    ``-repK``) if ``allow_repeats``, else all of it is used once and ``actual_ratio`` shows the difference.
    """
    if ratio <= 0:
        raise ValueError(f"ratio (agent : general) must be > 0, got {ratio}")
    if not 1 <= turns <= MAX_GENERAL_TURNS:
        raise ValueError(f"turns (exchanges per general sample) must be 1 to {MAX_GENERAL_TURNS}, got {turns}")
    wanted = round(len(agent) / ratio)
    rng = random.Random(seed)
    pool = list(general)
    rng.shuffle(pool)
    n = wanted if allow_repeats and pool else min(wanted, len(pool) // turns)
    chosen = [general_sample([pool[(i * turns + j) % len(pool)] for j in range(turns)], (i * turns) // len(pool))
              for i in range(n)]
    mixed = list(agent) + chosen
    rng.shuffle(mixed)
    items = len(chosen) * turns
    info: MixInfo = {"agent": len(agent), "general": len(chosen), "general_wanted": wanted, "ratio": ratio,
                     "actual_ratio": round(len(agent) / len(chosen), 3) if chosen else None, "turns": turns,
                     "general_items": items, "general_unique": min(items, len(pool)),
                     "general_repeats": max(0, items - len(pool))}
    return mixed, info
