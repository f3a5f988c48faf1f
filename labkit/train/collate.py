"""Turn chat training samples into token ids + labels (loss only on supervised turns), and pad them into batches.

Each sample stays its own row (no packing), so attention never crosses two samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from labkit.chat import render_turns
from labkit.errors import DataFileError
from labkit.jsonl import iter_jsonl
from labkit.records import validate_sample
from labkit.types import Message

IGNORE_INDEX = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: bool = False  # prompt tokens were cut from the left


@dataclass
class EncodeStats:
    kept: int = 0
    truncated: int = 0
    dropped_too_long: int = 0  # response alone longer than max_len
    dropped_ids: list[str] = field(default_factory=list)


def encode_messages(messages: Sequence[Message], tokenizer: Any, max_len: int) -> Encoded | None:
    """Tokenise one conversation piece by piece; label = token id on supervised pieces, -100 elsewhere.

    Too long -> drop prompt tokens from the left (after ``<bos>``); ``None`` when the supervised part alone does not fit.
    """
    ids: list[int] = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    labels: list[int] = [IGNORE_INDEX] * len(ids)
    for _role, text, supervised in render_turns(messages):
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids.extend(piece)
        labels.extend(piece if supervised else [IGNORE_INDEX] * len(piece))
    if len(ids) <= max_len:
        return Encoded(ids, labels)
    head = 1 if tokenizer.bos_token_id is not None else 0
    first_supervised = next((i for i, lab in enumerate(labels) if lab != IGNORE_INDEX), len(labels))
    keep_tail = max_len - head
    if len(ids) - first_supervised > keep_tail:
        return None
    return Encoded(ids[:head] + ids[-keep_tail:], labels[:head] + labels[-keep_tail:], truncated=True)


def load_samples(path: str | Path, *, max_samples: int = -1) -> list[dict[str, Any]]:
    """Read training samples (docs/ARCHITECTURE.md format), validating the fields training needs."""
    samples: list[dict[str, Any]] = []
    for line, rec in iter_jsonl(path):
        messages = validate_sample(rec, path, line, contract=False)["messages"]
        samples.append({"id": str(rec.get("id", f"line{line}")), "messages": messages})
        if 0 < max_samples <= len(samples):
            break
    if not samples:
        raise DataFileError(path, "no training samples")
    return samples


class SFTDataset(Dataset):
    """Pre-tokenised samples; ``self.stats`` counts truncated and dropped ones."""

    def __init__(self, samples: Iterable[dict[str, Any]], tokenizer: Any, max_len: int):
        self.rows: list[dict[str, list[int]]] = []
        self.stats = EncodeStats()
        for s in samples:
            enc = encode_messages(s["messages"], tokenizer, max_len)
            if enc is None:
                self.stats.dropped_too_long += 1
                self.stats.dropped_ids.append(s.get("id", "?"))
                continue
            self.stats.kept += 1
            self.stats.truncated += enc.truncated
            self.rows.append({"input_ids": enc.input_ids, "labels": enc.labels})
        if not self.rows:
            raise ValueError(f"every sample was longer than max_len={max_len} in its response alone")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.rows[i]

    def lengths(self) -> list[int]:
        return [len(r["input_ids"]) for r in self.rows]

    def supervised_tokens(self) -> int:
        return sum(sum(1 for x in r["labels"] if x != IGNORE_INDEX) for r in self.rows)


@dataclass
class PadCollator:
    """Right-pad a batch to its longest row; padded positions get attention 0 and label -100."""

    pad_token_id: int

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            labels[i, :n] = torch.tensor(r["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}
