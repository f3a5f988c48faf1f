"""Write and read the training set (ARCHITECTURE.md "Training sample format") as JSONL and as datasets.Dataset."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import datasets

from labkit.errors import LabkitError
from labkit.jsonl import iter_jsonl, write_jsonl
from labkit.records import ROLES, SAMPLE_FIELDS, Sample, validate_sample

__all__ = ["ROLES", "SAMPLE_FIELDS", "check_sample", "normalize_sample", "read_training_set", "to_hf_dataset",
           "write_training_set"]


def normalize_sample(sample: Sample) -> Sample:
    """Every message gets an explicit ``loss`` (default: True for assistant turns only)."""
    out = dict(sample)
    out["messages"] = [{**m, "loss": bool(m.get("loss", m["role"] == "assistant"))} for m in sample["messages"]]
    return out


def check_sample(sample: Mapping[str, object], *, path: str | Path = "<samples>", line: int | None = None) -> None:
    """Raise DataFileError naming the field when ``sample`` is not a valid training sample."""
    validate_sample(sample, path, line)


def write_training_set(samples: Iterable[Sample], path: str | Path) -> int:
    """Validate and atomically write samples as JSONL; returns the count. No samples: :class:`LabkitError`, and a
    training set already at ``path`` stays as it was (an empty train.jsonl is never written)."""
    rows = []
    for i, s in enumerate(samples):
        check_sample(s, path=path, line=i + 1)
        rows.append(normalize_sample(s))
    if not rows:
        raise LabkitError(f"no training samples to write to {path}; nothing was written")
    return write_jsonl(path, rows)


def read_training_set(path: str | Path) -> list[Sample]:
    rows = []
    for line, rec in iter_jsonl(path):
        rows.append(normalize_sample(validate_sample(rec, path, line)))
    return rows


def to_hf_dataset(samples: Sequence[Sample]) -> datasets.Dataset:
    """The contract fields only, with uniform message dicts (role, content, loss) so Arrow gets one schema."""
    rows = []
    for s in samples:
        s = normalize_sample(s)
        rows.append({"id": s["id"], "source": s["source"], "query_id": str(s["query_id"]),
                     "template": s["template"] or "", "step": int(s["step"]),
                     "messages": [{"role": m["role"], "content": m["content"], "loss": m["loss"]}
                                  for m in s["messages"]]})
    return datasets.Dataset.from_list(rows)
