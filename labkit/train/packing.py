"""Packing: many samples in one row, filled to a token budget, with attention that never crosses samples.

Why pack. A padded batch wastes compute on pad tokens; one short sample per step feeds the matrix multiplications
short rows. Packing concatenates samples into one row and restarts the position ids at every sample (as HF's
``DataCollatorWithFlattening`` does); the attention keeps each sample to itself.

Rows filled to a token budget (:func:`pack_units`). Samples arrive as a seeded shuffled stream (agent and general
samples mixed as the data's 5:1 mix says) and go best-fit into a few open rows of ``budget`` tokens; the fullest row
is closed when a sample fits nowhere. So every step sees about the same number of tokens and a mix of sources, and no
step is a run of the shortest samples (what length-grouped sampling did at the end of every megabatch). The loss of a
step is the sum over its supervised tokens divided by their number (HF's ``num_items_in_batch``).

Shared-prefix rows (:func:`shared_prefix_units`). A trajectory's planning steps under one template repeat the same
prompt up to the memory. Such samples go into one *unit*: the longest sample whole (branch 0), then for every other
sample only the part after the prefix it shares with branch 0 (a *branch*). A branch's position ids continue from
its prefix length ``q``, so they jump back in the row; its tokens attend to the first ``q`` tokens of branch 0 and to
themselves, never to other branches. Loss and gradients equal those of the separate samples (the prefix's keys and
values are the same numbers either way): tests/test_train_packing.py.

The attention (:func:`segment_attention`, registered as ``"labkit_segments"``) reads this whole structure from the
position ids alone — a sample starts where the position id is 0, a branch where it does not continue by one — and
runs one masked matrix-multiply attention per sample or unit (scores in fp32, Gemma's sliding window applied by
position). On a CPU that is about twice as fast as PyTorch's CPU flash kernel for Gemma-3's shapes (head_dim 256,
one key/value head), and it works on any device. The masks are built once per row and reused by every layer.

Labels: every sample's first token is its ``<bos>`` (label -100) and a branch never starts on a supervised token, so
no token learns to predict the next sample's or the next branch's first token.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

import torch
import torch.nn.functional as F

from labkit.errors import LabkitError
from labkit.train.collate import IGNORE_INDEX, EncodedRow

ATTN_NAME = "labkit_segments"
MIN_SHARED = 32  # a branch shares at least this many tokens with branch 0, else its sample stays on its own


@dataclass
class Unit:
    """Tokens that must stay together in one row: one sample, or shared-prefix samples (branch 0 + branches)."""

    input_ids: list[int]
    labels: list[int]
    positions: list[int]
    samples: int = 1
    sources: tuple[str, ...] = ("agent",)
    full_tokens: int = 0  # tokens the samples would take unpacked (Σ their lengths)

    def __len__(self) -> int:
        return len(self.input_ids)


class PackedItem(TypedDict):
    """One packed row as a dataset item (:class:`PackedRows`) for :class:`PackedCollator`."""

    units: list[Unit]


def sample_unit(row: EncodedRow, source: str = "agent") -> Unit:
    """One encoded sample (``input_ids``, ``labels``) as a unit of its own."""
    ids, labels = list(row["input_ids"]), list(row["labels"])
    if labels and labels[0] != IGNORE_INDEX:
        raise ValueError("a packed sample must start with an unsupervised token (its <bos>)")
    return Unit(ids, labels, list(range(len(ids))), 1, (source,), len(ids))


def _first_supervised(labels: Sequence[int]) -> int:
    return next((i for i, x in enumerate(labels) if x != IGNORE_INDEX), len(labels))


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def shared_prefix_units(rows: Sequence[EncodedRow], keys: Sequence[Hashable | None], max_tokens: int, *,
                        sources: Sequence[str] | None = None, min_shared: int = MIN_SHARED) -> list[Unit]:
    """Units of the samples ``rows`` (encoded), merging samples with the same key (e.g. query + template) that share
    a prompt prefix of at least ``min_shared`` tokens; a unit never exceeds ``max_tokens``. ``key=None``: alone."""
    sources = list(sources) if sources is not None else ["agent"] * len(rows)
    groups: dict[Hashable, list[int]] = defaultdict(list)
    units: list[Unit] = []
    for i, key in enumerate(keys):
        if key is None:
            units.append(sample_unit(rows[i], sources[i]))
        else:
            groups[key].append(i)
    for members in groups.values():
        todo = sorted(members, key=lambda i: -len(rows[i]["input_ids"]))  # branch 0: the longest (last step)
        while todo:
            head = rows[todo[0]]
            unit = sample_unit(head, sources[todo[0]])
            rest = []
            for i in todo[1:]:
                ids, labels = rows[i]["input_ids"], rows[i]["labels"]
                q = min(_common_prefix(head["input_ids"], ids), _first_supervised(labels) - 1)
                if q < min_shared or len(unit) + len(ids) - q > max_tokens:
                    rest.append(i)
                    continue
                unit.input_ids.extend(ids[q:])
                unit.labels.extend(labels[q:])
                unit.positions.extend(range(q, len(ids)))
                unit.samples += 1
                unit.sources += (sources[i],)
                unit.full_tokens += len(ids)
            units.append(unit)
            todo = rest
    return units


class PackStatsRecord(TypedDict):
    """:meth:`PackStats.to_dict` (``labkit_train_config.json``'s ``packing``)."""

    rows: int
    samples: int
    tokens: int
    full_tokens: int
    tokens_per_sample: float
    samples_per_row: float
    shared_prefix_saving: float  # 1 - tokens / full_tokens
    fill_mean: float
    fill_min: float


@dataclass
class PackStats:
    rows: int = 0
    samples: int = 0
    tokens: int = 0  # tokens the rows hold (shared prefixes counted once)
    full_tokens: int = 0  # tokens the same samples take one per row
    fill: list[float] = field(default_factory=list)  # tokens / budget, per row

    def to_dict(self) -> PackStatsRecord:
        fill = sorted(self.fill)
        return {"rows": self.rows, "samples": self.samples, "tokens": self.tokens, "full_tokens": self.full_tokens,
                "tokens_per_sample": round(self.tokens / max(self.samples, 1), 1),
                "samples_per_row": round(self.samples / max(self.rows, 1), 2),
                "shared_prefix_saving": round(1 - self.tokens / max(self.full_tokens, 1), 4),
                "fill_mean": round(sum(fill) / max(len(fill), 1), 4), "fill_min": round(fill[0], 4) if fill else 0.0}


def pack_units(units: Sequence[Unit], budget: int, *, seed: int = 0, open_rows: int = 8) -> list[list[Unit]]:
    """Rows of at most ``budget`` tokens: the units in a seeded random order, each into the open row it fills best
    (best fit); when it fits in none, the fullest of ``open_rows`` open rows is closed. Returns rows in closing order."""
    if budget < 1:
        raise LabkitError(f"pack_tokens must be >= 1, got {budget}")
    order = list(units)
    random.Random(seed).shuffle(order)
    open_: list[list[Unit]] = []
    used: list[int] = []
    done: list[list[Unit]] = []
    for unit in order:
        if len(unit) > budget:
            raise LabkitError(f"a packed unit of {len(unit)} tokens exceeds pack_tokens={budget}: raise pack_tokens "
                              "to at least max_len")
        best = min((i for i in range(len(open_)) if used[i] + len(unit) <= budget),
                   key=lambda i: budget - used[i], default=None)
        if best is None:
            if len(open_) >= open_rows:
                full = max(range(len(open_)), key=lambda i: used[i])
                done.append(open_.pop(full))
                used.pop(full)
            open_.append([])
            used.append(0)
            best = len(open_) - 1
        open_[best].append(unit)
        used[best] += len(unit)
    for i in sorted(range(len(open_)), key=lambda i: -used[i]):
        done.append(open_[i])
    return done


def pack_stats(rows: Sequence[Sequence[Unit]], budget: int) -> PackStats:
    stats = PackStats()
    for row in rows:
        n = sum(len(u) for u in row)
        stats.rows += 1
        stats.samples += sum(u.samples for u in row)
        stats.tokens += n
        stats.full_tokens += sum(u.full_tokens for u in row)
        stats.fill.append(n / budget)
    return stats


def row_tensors(units: Sequence[Unit]) -> dict[str, torch.Tensor]:
    """One packed row: ``input_ids`` / ``labels`` / ``position_ids`` of shape (1, Σ tokens); no attention mask."""
    ids = [t for u in units for t in u.input_ids]
    labels = [t for u in units for t in u.labels]
    positions = [t for u in units for t in u.positions]
    return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels]),
            "position_ids": torch.tensor([positions])}


@dataclass
class PackedCollator:
    """Collate for packed training. Items are either encoded samples (``input_ids``/``labels``: the samples of one
    batch become one row) or rows made by :func:`pack_units` (``{"units": [...]}``, one per step)."""

    pad_token_id: int  # unused (no padding), kept so both collators are built alike

    def __call__(self, items: Sequence[PackedItem] | Sequence[EncodedRow]) -> dict[str, torch.Tensor]:
        units = [u for it in items for u in (it["units"] if "units" in it else [sample_unit(it)])]
        return row_tensors(units)


def segment_bounds(position_ids: torch.Tensor) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of the samples/units in one packed row (one starts where the position id is 0)."""
    pos = position_ids.reshape(-1)
    starts = (pos == 0).nonzero().flatten().tolist()
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    ends = [*starts[1:], pos.numel()]
    return list(zip(starts, ends))


def segment_mask(positions: torch.Tensor, window: int | None = None) -> torch.Tensor:
    """(n, n) boolean mask of one unit (True = may attend), from its position ids: causal inside each branch; a
    branch starting at position q also sees branch 0's tokens at positions < q; keys ``window`` or more positions
    back are hidden (Gemma's sliding window)."""
    p = positions.reshape(-1)
    n = p.numel()
    start = torch.ones(n, dtype=torch.bool, device=p.device)
    start[1:] = p[1:] != p[:-1] + 1
    branch = torch.cumsum(start.long(), 0) - 1
    branch_start = p[start][branch]  # for every token: the position its branch starts at
    idx = torch.arange(n, device=p.device)
    mask = (idx[None, :] <= idx[:, None]) & ((branch[:, None] == branch[None, :])
                                            | ((branch[None, :] == 0) & (p[None, :] < branch_start[:, None])))
    if window:
        mask &= (p[:, None] - p[None, :]) < window
    return mask


class _MaskCache:
    """The additive masks of the last row seen (every layer of one forward/backward reuses them)."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.value: list[tuple[int, int, torch.Tensor]] = []

    def get(self, position_ids: torch.Tensor, window: int | None) -> list[tuple[int, int, torch.Tensor]]:
        pos = position_ids.reshape(-1)
        key = (hash(pos.cpu().numpy().tobytes()), pos.numel(), window, str(pos.device))
        if key != self.key:
            value = []
            for a, b in segment_bounds(pos):
                mask = segment_mask(pos[a:b], window)
                bias = torch.zeros(mask.shape, dtype=torch.float32, device=pos.device)
                value.append((a, b, bias.masked_fill_(~mask, float("-inf"))))
            self.key, self.value = key, value
        return self.value


_MASKS: dict[int | None, _MaskCache] = defaultdict(_MaskCache)


def segment_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                      sliding_window: int | None = None, softcap: float | None = None,
                      position_ids: torch.Tensor | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Attention of one packed row (see module doc), a transformers attention function: query (1, heads, L, d),
    key/value (1, kv_heads, L, d) -> (1, L, heads, d). Anything but one packed row (a padded batch, a KV cache) is
    refused: training with packing only ever sends packed rows."""
    if query.shape[0] != 1 or query.shape[2] != key.shape[2]:
        raise LabkitError("labkit_segments attention takes one packed row without a KV cache; save the model with "
                          "prepare_for_inference (plain SDPA) before generating with it")
    if position_ids is None:
        position_ids = torch.arange(query.shape[2], device=query.device)
    heads, d = query.shape[1], query.shape[3]
    kv_heads = key.shape[1]
    rep = heads // kv_heads
    scale = scaling if scaling is not None else d ** -0.5
    outs = []
    for a, b, bias in _MASKS[sliding_window].get(position_ids, sliding_window):
        n = b - a
        q = query[0, :, a:b].reshape(kv_heads, rep * n, d)  # the heads sharing a key/value head, stacked
        scores = torch.matmul(q, key[0, :, a:b].transpose(-1, -2)).float().view(kv_heads, rep, n, n) * scale
        if softcap:
            scores = torch.tanh(scores / softcap) * softcap
        probs = torch.softmax(scores + bias, dim=-1).to(value.dtype)
        if dropout and module.training:
            probs = F.dropout(probs, p=dropout)
        outs.append(torch.matmul(probs.view(kv_heads, rep * n, n), value[0, :, a:b]).view(heads, n, d))
    return torch.cat(outs, dim=1).transpose(0, 1).unsqueeze(0).contiguous(), None


def register_segment_attention() -> str:
    """Register :func:`segment_attention` as ``"labkit_segments"`` and return the name. No mask function is
    registered, so transformers builds no dense (L × L) mask per forward: the attention reads the position ids."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTN_NAME, segment_attention)
    return ATTN_NAME


class PackedRows(torch.utils.data.Dataset):
    """The rows a packed training run steps through, epoch after epoch: each epoch packs the same units in another
    seeded order (``seed + epoch``). ``rows_wanted`` (max_steps × rows per step) or ``epochs`` (may be fractional)
    says how many rows to hold. Items are ``{"units": [...]}`` for :class:`PackedCollator`."""

    def __init__(self, units: Sequence[Unit], budget: int, *, epochs: float = 1.0, rows_wanted: int | None = None,
                 seed: int = 0):
        self.rows: list[list[Unit]] = []
        self.epoch_stats: list[PackStats] = []
        epoch = 0
        while True:
            rows = pack_units(units, budget, seed=seed + epoch)
            self.epoch_stats.append(pack_stats(rows, budget))
            if rows_wanted is None:
                rows_wanted = max(1, round(epochs * len(rows)))
            self.rows.extend(rows)
            epoch += 1
            if len(self.rows) >= rows_wanted:
                break
        del self.rows[rows_wanted:]
        self.budget = budget

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> PackedItem:
        return {"units": self.rows[i]}

    def rows_per_epoch(self) -> int:
        return self.epoch_stats[0].rows


def packed_rows(rows: Sequence[EncodedRow], sources: Sequence[str], prefix_keys: Sequence[Hashable | None], *,
                budget: int, share_prefix: bool, epochs: float = 1.0, rows_wanted: int | None = None,
                seed: int = 0) -> PackedRows:
    """Encoded samples -> the rows of a packed run (shared-prefix units first when ``share_prefix``)."""
    keys = list(prefix_keys) if share_prefix else [None] * len(rows)
    units = shared_prefix_units(rows, keys, budget, sources=sources)
    return PackedRows(units, budget, epochs=epochs, rows_wanted=rows_wanted, seed=seed)
