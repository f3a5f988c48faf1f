"""Packing: several samples in one row, with attention that never crosses from one sample into another.

A padded batch wastes compute on pad tokens; one sample per row (batch size 1) wastes nothing but feeds the matrix
multiplications short rows. Packing concatenates the samples of a batch into a single row and restarts the position
ids at every sample (as HF's ``DataCollatorWithFlattening`` does). The model must then keep each sample's attention
inside that sample:

* on a GPU with ``flash_attention_2``, transformers turns the restarting position ids into ``cu_seqlens`` and runs the
  variable-length kernel;
* on a CPU, transformers' own SDPA path builds one dense block-diagonal mask over the whole row, so attention costs
  (Σ Lᵢ)² instead of Σ Lᵢ² — slower than not packing. :func:`segment_sdpa` instead runs PyTorch SDPA once per sample
  (causal, plus Gemma's sliding window where a sample is longer than it), so attention costs what it would unpacked
  while the projections and MLP see one long row. It is registered as the attention implementation
  ``"labkit_segments"``; without packed position ids it falls back to transformers' SDPA.

Labels: a sample's first token is its ``<bos>`` (label -100), so the last token of one sample never learns to predict
the next sample (the loss equals the unpacked loss: tests/test_train_packing.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from labkit.train.collate import IGNORE_INDEX

ATTN_NAME = "labkit_segments"


@dataclass
class PackedCollator:
    """Concatenate a batch's rows into one row: ``input_ids``/``labels``/``position_ids`` of shape (1, Σ Lᵢ).

    No ``attention_mask`` is returned: with none given, transformers reads sample boundaries from the position ids.
    Each row's labels are taken as they are; the first label of every row must be unsupervised (its ``<bos>``).
    """

    pad_token_id: int  # unused (no padding), kept so both collators are built alike

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for r in rows:
            if r["labels"] and r["labels"][0] != IGNORE_INDEX:
                raise ValueError("a packed sample must start with an unsupervised token (its <bos>)")
            ids.extend(r["input_ids"])
            labels.extend(r["labels"])
            positions.extend(range(len(r["input_ids"])))
        return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels]),
                "position_ids": torch.tensor([positions])}


def segment_bounds(position_ids: torch.Tensor) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of the samples in one packed row (a sample starts where the position id is 0)."""
    pos = position_ids.reshape(-1)
    starts = (pos == 0).nonzero().flatten().tolist()
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    ends = [*starts[1:], pos.numel()]
    return list(zip(starts, ends))


def _window_mask(n: int, window: int, device: torch.device) -> torch.Tensor:
    """Causal mask that also hides keys ``window`` or more positions back (True = may attend)."""
    q = torch.arange(n, device=device)[:, None]
    k = torch.arange(n, device=device)[None, :]
    return (k <= q) & (k > q - window)


def segment_sdpa(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                 attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                 sliding_window: int | None = None, position_ids: torch.Tensor | None = None,
                 **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Attention per packed sample (see module doc). Shapes as transformers' attention functions:
    query (b, heads, L, d), key/value (b, kv_heads, L, d) -> output (b, L, heads, d)."""
    packed = position_ids is not None and query.shape[0] == 1 and query.shape[2] == key.shape[2] \
        and bool((position_ids.reshape(-1)[1:] == 0).any())
    if not packed:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      sliding_window=sliding_window, **kwargs)
    gqa = query.shape[1] != key.shape[1]
    outs = []
    for start, end in segment_bounds(position_ids):
        q, k, v = query[:, :, start:end], key[:, :, start:end], value[:, :, start:end]
        n = end - start
        if sliding_window and n > sliding_window:
            mask = _window_mask(n, sliding_window, query.device)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, scale=scaling,
                                               enable_gqa=gqa)
        else:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout, scale=scaling,
                                               enable_gqa=gqa)
        outs.append(o)
    return torch.cat(outs, dim=2).transpose(1, 2).contiguous(), None


def register_segment_attention() -> str:
    """Register :func:`segment_sdpa` (and SDPA's mask builder) under ``"labkit_segments"``; returns the name."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(ATTN_NAME, segment_sdpa)
    AttentionMaskInterface.register(ATTN_NAME, sdpa_mask)
    return ATTN_NAME
