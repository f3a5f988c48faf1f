"""The score report types (:class:`ScoreRow`, :class:`ScoreNote`, :class:`ScoreReport`), the five abilities, their
weights and :func:`overall` (part of :mod:`labkit.evaluate.scorer`)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from labkit.evaluate import kagentbench as kb
from labkit.evaluate.differences import ScoringOptions

DIMENSIONS: tuple[str, ...] = ("Planning", "Tool-use", "Reflection", "Concluding", "Profile")
WEIGHTS: dict[str, float] = dict(kb.WEIGHTS)
TYPE_DIMENSIONS: dict[str, tuple[str, ...]] = {"plantooluse": ("Planning", "Tool-use"), "reflextion": ("Reflection",),
                                               "conclusion": ("Concluding",), "profile": ("Profile",)}
INFO_NOTES: dict[str, str] = {
    "reused_parse": "an empty ReACT output or an unknown template key was scored with the previous template's parse",
    "duplicate_id": "an id appears twice in a file; its last line is used (first position kept)",
    "type_mismatch": "the prediction line's type differs from the benchmark's; the benchmark's is used",
}


@dataclass
class ScoreRow:
    id: str
    type: str
    template: str
    tag: str            # "seen" / "unseen" template (our benchmark), "" when unknown
    dimension: str
    score: float        # 0..1, the official per-template value in compat mode
    bleu: float | None  # 0..1, None where BLEU does not apply (Tool-use)


@dataclass(frozen=True)
class ScoreNote:
    id: str
    template: str
    code: str    # a key of kagentbench.CRASH_POINTS (scored 0 where the official script stops) or of INFO_NOTES
    detail: str


@dataclass
class ScoreReport:
    rows: list[ScoreRow]
    dimensions: dict[str, float | None]  # 0..100; None ("n/a") when the benchmark has no record of that type
    overall: float | None                # 0..100; None when it cannot be computed
    bleu: dict[str, float]               # 0..100 per text ability that has records
    queries: dict[str, int]              # scored records per ability
    notes: list[ScoreNote] = field(default_factory=list)
    options: ScoringOptions = field(default_factory=ScoringOptions)

    @property
    def complete(self) -> bool:
        return all(self.queries.get(d, 0) > 0 for d in DIMENSIONS)

    @property
    def mode(self) -> str:
        return "kagentbench" if self.options.is_official else ("labkit" if self.options == ScoringOptions() else
                                                               "custom")

    def summary(self) -> dict[str, float | None]:
        """Abilities and Overall in percent, 2 decimals; None = n/a (no record of that type)."""
        r = lambda v: None if v is None else round(v, 2)  # noqa: E731
        return {**{d: r(self.dimensions.get(d)) for d in DIMENSIONS}, "Overall": r(self.overall)}

    def official_line(self) -> str:
        """``plan : X, tooluse : X, reflextion : X, conclusion : X, profile : X, overall : X`` (as the script prints)."""
        return kb.format_line(self.dimensions, self.overall)

    def crash_counts(self) -> Counter[str]:
        """Notes where the official script would have stopped with an error (scored 0 instead), by code."""
        return Counter(n.code for n in self.notes if n.code in kb.CRASH_POINTS)

    def note_counts(self) -> Counter[str]:
        return Counter(n.code for n in self.notes)

    def to_frame(self) -> Any:
        import pandas as pd
        return pd.DataFrame([asdict(r) for r in self.rows])


def overall(dimensions: Mapping[str, float | None]) -> float | None:
    """Weighted sum of the abilities present (weights renormalised when some are missing); None when none is."""
    present = {d: v for d, v in dimensions.items()
               if d in WEIGHTS and v is not None and not (isinstance(v, float) and math.isnan(v))}
    if len(present) == len(WEIGHTS):
        return kb.overall(present)
    total = sum(WEIGHTS[d] for d in present)
    return sum(WEIGHTS[d] * v for d, v in present.items()) / total if total else None
