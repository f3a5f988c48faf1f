"""Causal-LM loss that projects to the vocabulary only where a label is supervised.

Gemma's 262k-token vocabulary makes ``lm_head`` more than half of the FLOPs. Prompt positions carry label -100 and
never enter the loss, so their logits are wasted work: we pass a boolean ``logits_to_keep`` mask to the model, which
applies ``lm_head`` only at the kept positions. The loss is identical to the standard one (tests/test_train_loss.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from labkit.train.collate import IGNORE_INDEX


def supervised_positions(labels: torch.Tensor) -> torch.Tensor:
    """Boolean (batch, seq) mask of positions whose *next* token is supervised (where logits are needed)."""
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    return keep


def supervised_logits_loss(model: torch.nn.Module, inputs: dict[str, torch.Tensor],
                           num_items_in_batch: torch.Tensor | int | None = None) -> torch.Tensor:
    """Cross-entropy over supervised tokens; sum / ``num_items_in_batch`` when given (as HF does), else the mean."""
    labels = inputs["labels"]
    keep = supervised_positions(labels)
    targets = labels[:, 1:][keep[:, :-1]]
    outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
                    position_ids=inputs.get("position_ids"), logits_to_keep=keep, use_cache=False)
    logits = outputs.logits.float()  # (n_supervised, vocab)
    loss = F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX, reduction="sum")
    if num_items_in_batch is None:
        return loss / targets.numel()
    if isinstance(num_items_in_batch, torch.Tensor):
        num_items_in_batch = num_items_in_batch.to(loss.device)
    return loss / num_items_in_batch
