"""Turn chat training samples into token ids + labels (loss only on supervised turns), and pad them into batches.

A sample longer than ``max_len`` is dropped and counted, never cut: cutting an agent prompt removes its instructions
or its tool list (left truncation) or its goal and memory (right truncation), and the model would learn to answer a
prompt it cannot read. The data stage keeps prompts short enough (tool subsets) and reports their token lengths.
Padding is here; packing several samples into one row is :mod:`labkit.train.packing`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import torch
from torch.utils.data import Dataset

from labkit.chat import render_turns
from labkit.errors import DataFileError
from labkit.jsonl import iter_jsonl
from labkit.records import Sample, SampleMessage, validate_sample
from labkit.types import Message

IGNORE_INDEX = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]


class EncodedRow(TypedDict):
    """One encoded sample as a dataset item (:class:`SFTDataset`): what the collators and packing read."""

    input_ids: list[int]
    labels: list[int]            # IGNORE_INDEX on unsupervised tokens


class TrainSample(TypedDict):
    """What training keeps of a sample (:func:`load_samples`)."""

    id: str
    messages: list[SampleMessage]
    source: str                  # "agent" | "general" (default "agent")
    prefix_key: tuple[str, str] | None  # :func:`prefix_key`


@dataclass
class EncodeStats:
    kept: int = 0
    dropped_too_long: int = 0  # longer than max_len (prompt + response): dropped whole, never cut
    dropped_ids: list[str] = field(default_factory=list)
    longest: int = 0  # tokens of the longest sample seen (kept or dropped)


def encode_messages(messages: Sequence[Message], tokenizer: Any, max_len: int | None = None) -> Encoded | None:
    """Tokenise one conversation piece by piece; label = token id on supervised pieces, -100 elsewhere.

    ``None`` when the whole conversation is longer than ``max_len`` (it is never cut; see the module doc).
    """
    ids: list[int] = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    labels: list[int] = [IGNORE_INDEX] * len(ids)
    for _role, text, supervised in render_turns(messages):
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids.extend(piece)
        labels.extend(piece if supervised else [IGNORE_INDEX] * len(piece))
    if max_len is not None and len(ids) > max_len:
        return None
    return Encoded(ids, labels)


def load_samples(path: str | Path, *, max_samples: int = -1) -> list[TrainSample]:
    """Read training samples (docs/ARCHITECTURE.md format), validating the fields training needs."""
    samples: list[TrainSample] = []
    for line, rec in iter_jsonl(path):
        sample = validate_sample(rec, path, line, contract=False)
        samples.append({"id": str(sample.get("id", f"line{line}")), "messages": sample["messages"],
                        "source": str(sample.get("source") or "agent"), "prefix_key": prefix_key(sample)})
        if 0 < max_samples <= len(samples):
            break
    if not samples:
        raise DataFileError(path, "no training samples")
    return samples


def prefix_key(record: Sample) -> tuple[str, str] | None:
    """Samples that may share a prompt prefix (one trajectory's steps under one template): (query_id, template) of
    an agent sample, None for anything else (labkit.train.packing.shared_prefix_units)."""
    if record.get("source", "agent") != "agent" or not record.get("query_id") or not record.get("template"):
        return None
    return str(record["query_id"]), str(record["template"])


class SFTDataset(Dataset):
    """Pre-tokenised samples; ``self.stats`` counts the ones dropped for being longer than ``max_len``.
    ``sources`` / ``prefix_keys`` run parallel to the rows (for packing by token budget and shared prefixes)."""

    def __init__(self, samples: Iterable[TrainSample], tokenizer: Any, max_len: int):
        self.rows: list[EncodedRow] = []
        self.sources: list[str] = []
        self.prefix_keys: list[tuple[str, str] | None] = []
        self.stats = EncodeStats()
        for s in samples:
            enc = encode_messages(s["messages"], tokenizer)
            n = len(enc.input_ids) if enc else 0
            self.stats.longest = max(self.stats.longest, n)
            if n > max_len:
                self.stats.dropped_too_long += 1
                self.stats.dropped_ids.append(s.get("id", "?"))
                continue
            self.stats.kept += 1
            self.rows.append({"input_ids": enc.input_ids, "labels": enc.labels})
            self.sources.append(str(s.get("source") or "agent"))
            self.prefix_keys.append(s.get("prefix_key"))
        if not self.rows:
            raise ValueError(f"every sample is longer than max_len={max_len} tokens (the longest has "
                             f"{self.stats.longest}); raise max_len or shorten the prompts")
        if self.stats.dropped_too_long:
            warnings.warn(f"{self.stats.dropped_too_long} of {len(self) + self.stats.dropped_too_long} samples are "
                          f"longer than max_len={max_len} tokens (longest {self.stats.longest}) and were dropped, not "
                          f"cut; e.g. {self.stats.dropped_ids[:3]}", stacklevel=2)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> EncodedRow:
        return self.rows[i]

    def lengths(self) -> list[int]:
        return [len(r["input_ids"]) for r in self.rows]

    def supervised_tokens(self) -> int:
        return sum(sum(1 for x in r["labels"] if x != IGNORE_INDEX) for r in self.rows)


@dataclass
class PadCollator:
    """Right-pad a batch to its longest row; padded positions get attention 0 and label -100."""

    pad_token_id: int

    def __call__(self, rows: list[EncodedRow]) -> dict[str, torch.Tensor]:
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
