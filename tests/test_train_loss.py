"""Supervised-logits-only loss equals the standard causal-LM loss (value and gradients)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from labkit.train.collate import PadCollator, SFTDataset
from labkit.train.loss import supervised_logits_loss, supervised_positions
from train_helpers import GEMMA_DIR, make_samples, tiny_model_dir

pytestmark = pytest.mark.skipif(not GEMMA_DIR.exists(), reason=f"Gemma tokenizer not found at {GEMMA_DIR}")


@pytest.fixture(scope="module")
def model_and_batch():
    path = tiny_model_dir()
    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    ds = SFTDataset(make_samples(4), tok, max_len=512)
    batch = PadCollator(tok.pad_token_id)([ds[i] for i in range(4)])  # rows of different lengths -> padding
    return model, batch


def test_positions_are_those_before_supervised_labels(model_and_batch):
    _, batch = model_and_batch
    keep = supervised_positions(batch["labels"])
    assert keep.sum() == (batch["labels"] != -100).sum()
    assert not keep[:, -1].any()


def test_same_loss_and_gradients_as_standard(model_and_batch):
    model, batch = model_and_batch
    model.zero_grad()
    standard = model(**batch).loss
    standard.backward()
    g_std = model.lm_head.weight.grad.clone()
    g_layer = model.model.layers[0].mlp.up_proj.weight.grad.clone()
    model.zero_grad()
    ours = supervised_logits_loss(model, batch)
    ours.backward()
    assert ours.item() == pytest.approx(standard.item(), rel=1e-5)
    assert torch.allclose(model.lm_head.weight.grad, g_std, atol=1e-6)
    assert torch.allclose(model.model.layers[0].mlp.up_proj.weight.grad, g_layer, atol=1e-6)


def test_num_items_in_batch_normalisation(model_and_batch):
    model, batch = model_and_batch
    n = int((batch["labels"] != -100).sum())
    with torch.no_grad():
        mean = supervised_logits_loss(model, batch)
        summed = supervised_logits_loss(model, batch, num_items_in_batch=2 * n)
        std = model(**batch, num_items_in_batch=2 * n).loss
    assert summed.item() == pytest.approx(mean.item() / 2, rel=1e-5)
    assert summed.item() == pytest.approx(std.item(), rel=1e-5)
