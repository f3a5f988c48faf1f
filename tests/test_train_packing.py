"""Packing several samples into one row gives the same loss and gradients as one sample per row."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from labkit.train.collate import PadCollator, SFTDataset
from labkit.train.loss import supervised_logits_loss
from labkit.train.packing import ATTN_NAME, PackedCollator, register_segment_attention, segment_bounds
from train_helpers import GEMMA_DIR, make_samples, tiny_model_dir

pytestmark = pytest.mark.skipif(not GEMMA_DIR.exists(), reason=f"Gemma tokenizer not found at {GEMMA_DIR}")


@pytest.fixture(scope="module")
def rows_and_tok():
    path = tiny_model_dir()
    tok = AutoTokenizer.from_pretrained(str(path))
    samples = make_samples(3)
    # one sample longer than the tiny model's sliding window (128): the windowed branch must be exercised too
    samples[1]["messages"][0]["content"] = "请先阅读下面的材料。" * 40 + samples[1]["messages"][0]["content"]
    ds = SFTDataset(samples, tok, max_len=1024)
    assert max(ds.lengths()) > 128 > min(ds.lengths())
    return [ds[i] for i in range(len(ds))], tok


def load(attn: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(str(tiny_model_dir()), dtype=torch.float32, attn_implementation=attn)


def loss_and_grads(model, batches):
    """Token-mean loss over all batches (sum of token losses / supervised tokens) and its gradients."""
    model.zero_grad()
    n = sum(int((b["labels"] != -100).sum()) for b in batches)
    total = sum(supervised_logits_loss(model, b, num_items_in_batch=n) for b in batches)
    total.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    return total.item(), grads


def test_segment_bounds():
    assert segment_bounds(torch.tensor([[0, 1, 2, 0, 1, 0]])) == [(0, 3), (3, 5), (5, 6)]


@pytest.mark.parametrize("attn", ["sdpa", ATTN_NAME])
def test_packed_row_equals_one_sample_per_row(rows_and_tok, attn):
    rows, tok = rows_and_tok
    if attn == ATTN_NAME:
        register_segment_attention()
    ref_model = load("sdpa")
    ref_loss, ref_grads = loss_and_grads(ref_model, [PadCollator(tok.pad_token_id)([r]) for r in rows])
    packed = PackedCollator(tok.pad_token_id)(rows)
    assert packed["input_ids"].shape == (1, sum(len(r["input_ids"]) for r in rows)) and "attention_mask" not in packed
    model = load(attn)
    loss, grads = loss_and_grads(model, [packed])
    assert loss == pytest.approx(ref_loss, abs=1e-4)
    assert set(grads) == set(ref_grads)
    worst = max((grads[k] - ref_grads[k]).abs().max().item() for k in grads)
    assert worst < 1e-4, worst


def test_packing_without_segment_attention_would_cross_samples(rows_and_tok):
    """The check above can fail: plain causal attention over the packed row (no sample boundaries) differs."""
    rows, tok = rows_and_tok
    model = load("sdpa")
    ref, _ = loss_and_grads(model, [PadCollator(tok.pad_token_id)([r]) for r in rows])
    packed = PackedCollator(tok.pad_token_id)(rows)
    crossing = {**packed, "position_ids": torch.arange(packed["input_ids"].shape[1])[None]}  # one long sequence
    loss, _ = loss_and_grads(model, [crossing])
    assert abs(loss - ref) > 1e-3


def test_packed_rows_must_start_unsupervised(rows_and_tok):
    rows, tok = rows_and_tok
    bad = {"input_ids": [5, 6], "labels": [5, 6]}
    with pytest.raises(ValueError, match="unsupervised"):
        PackedCollator(tok.pad_token_id)([rows[0], bad])
