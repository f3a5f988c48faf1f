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


def test_heldout_loss_is_the_mean_supervised_cross_entropy(tmp_path) -> None:
    import math

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from labkit.train.checks import heldout_loss
    from labkit.train.collate import encode_messages
    from labkit.train.tiny import resolve_model_path

    path = resolve_model_path("tiny")
    tok = AutoTokenizer.from_pretrained(path)
    samples = [{"messages": [{"role": "user", "content": f"问题 {i}", "loss": False},
                             {"role": "assistant", "content": "答案" * (i + 1), "loss": True}]} for i in range(3)]
    got = heldout_loss(path, samples, tokenizer=tok)
    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()
    total = tokens = 0
    with torch.no_grad():
        for s in samples:  # the plain HF loss, token-weighted over samples
            enc = encode_messages(s["messages"], tok)
            n = sum(lab != -100 for lab in enc.labels[1:])
            total += float(model(input_ids=torch.tensor([enc.input_ids]), labels=torch.tensor([enc.labels])).loss) * n
            tokens += n
    assert got["tokens"] == tokens and abs(got["loss"] - total / tokens) < 1e-3
    assert abs(got["perplexity"] - math.exp(got["loss"])) < 0.05 * got["perplexity"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_chunked_cross_entropy_equals_the_standard_one(dtype):
    """Value and gradient of the chunked fp32-math cross-entropy equal F.cross_entropy on the fp32 upcast (the way
    the loss was computed before), for row counts that do and do not fill the last chunk."""
    import torch.nn.functional as F

    from labkit.train.loss import CHUNK_ROWS, ChunkedCrossEntropy

    torch.manual_seed(0)
    for n in (1, CHUNK_ROWS, 3 * CHUNK_ROWS + 5):
        logits = (torch.randn(n, 5000) * 4).to(dtype).requires_grad_(True)
        targets = torch.randint(0, 5000, (n,))
        ours = ChunkedCrossEntropy.apply(logits, targets)
        (ours * 0.5).backward()
        g_ours = logits.grad.clone()
        logits.grad = None
        ref = F.cross_entropy(logits.float(), targets, reduction="sum")
        (ref * 0.5).backward()
        assert ours.dtype == torch.float32 and ours.item() == pytest.approx(ref.item(), rel=1e-6)
        assert g_ours.dtype == dtype
        tol = 1e-7 if dtype == torch.float32 else 4e-3
        assert torch.allclose(g_ours.float(), logits.grad.float(), atol=tol), (g_ours.float() - logits.grad.float()).abs().max()
