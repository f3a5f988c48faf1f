"""Packing several samples into one row (and shared-prefix rows) gives the same loss and gradients as one sample per
row; rows filled to a token budget stay within their bounds."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from labkit.train.collate import PadCollator, SFTDataset
from labkit.train.loss import supervised_logits_loss
from labkit.train.packing import (ATTN_NAME, PackedCollator, Unit, pack_stats, pack_units,
                                  register_segment_attention, row_tensors, segment_bounds, segment_mask,
                                  shared_prefix_units)
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


# --- shared-prefix rows ------------------------------------------------------------------------------------------

def trajectory_samples(steps: int = 3) -> list[dict]:
    """One query's planning steps under one template: the same prompt up to the memory, longer every step. The
    prompt is longer than the tiny model's sliding window (128), so windowed layers see the prefix boundary too."""
    header = "请先阅读下面的工具说明，然后一步一步完成任务。" * 12
    out = []
    for k in range(steps):
        memory = "".join(f"第{j + 1}步：调用 calculator，结果是 {j * 7}。" for j in range(k))
        out.append({"id": f"t{k}", "source": "agent", "query_id": "q1", "template": "react", "step": k,
                    "messages": [{"role": "user", "content": f"{header}\n记忆：{memory}\n请给出下一步。"},
                                 {"role": "assistant", "content": f"Action: calculator {k}", "loss": True}]})
    return out


@pytest.fixture(scope="module")
def prefix_rows(rows_and_tok):
    rows, tok = rows_and_tok
    ds = SFTDataset(trajectory_samples(3), tok, max_len=2048)
    traj = [ds[i] for i in range(len(ds))]
    return traj, rows, tok


def test_segment_mask_of_a_prefix_and_two_branches():
    # branch 0: positions 0..4 (prefix 0..2 + its own suffix 3..4); branch 1 continues at 3; branch 2 at 2
    mask = segment_mask(torch.tensor([0, 1, 2, 3, 4, 3, 4, 2]))
    expected = torch.tensor([
        [1, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0, 1, 0, 0],  # branch 1 sees the prefix (positions < 3) and itself, not branch 0's suffix
        [1, 1, 1, 0, 0, 1, 1, 0],
        [1, 1, 0, 0, 0, 0, 0, 1],  # branch 2 sees positions < 2 only
    ], dtype=torch.bool)
    assert torch.equal(mask, expected)
    windowed = segment_mask(torch.tensor([0, 1, 2, 3, 4, 3, 4, 2]), window=2)
    assert windowed[4].tolist() == [0, 0, 0, 1, 1, 0, 0, 0] and windowed[6].tolist() == [0, 0, 0, 0, 0, 1, 1, 0]


def test_shared_prefix_units_share_and_respect_labels(prefix_rows):
    traj, _, _ = prefix_rows
    units = shared_prefix_units(traj, ["k"] * 3, max_tokens=4096)
    assert len(units) == 1 and units[0].samples == 3
    unit = units[0]
    assert len(unit) < unit.full_tokens == sum(len(r["input_ids"]) for r in traj)
    longest = max(traj, key=lambda r: len(r["input_ids"]))
    assert unit.input_ids[:len(longest["input_ids"])] == longest["input_ids"]  # branch 0 = the longest, whole
    pos = unit.positions
    starts = [i for i in range(1, len(pos)) if pos[i] != pos[i - 1] + 1]
    assert len(starts) == 2 and all(unit.labels[i] == -100 for i in starts)  # a branch never starts supervised
    # no key, a budget too small, or another key: the samples stay on their own
    assert [u.samples for u in shared_prefix_units(traj, [None] * 3, max_tokens=4096)] == [1, 1, 1]
    assert [u.samples for u in shared_prefix_units(traj, ["k"] * 3, max_tokens=len(longest["input_ids"]))] == [1, 1, 1]
    assert sorted(u.samples for u in shared_prefix_units(traj, ["a", "b", "b"], max_tokens=4096)) == [1, 2]


def test_shared_prefix_row_equals_separate_samples(prefix_rows):
    traj, rows, tok = prefix_rows
    register_segment_attention()
    samples = traj + rows
    ref_loss, ref_grads = loss_and_grads(load("sdpa"), [PadCollator(tok.pad_token_id)([r]) for r in samples])
    units = shared_prefix_units(samples, ["k"] * len(traj) + [None] * len(rows), max_tokens=4096)
    row = row_tensors(units)
    assert row["input_ids"].shape[1] < sum(len(r["input_ids"]) for r in samples)
    loss, grads = loss_and_grads(load(ATTN_NAME), [row])
    assert loss == pytest.approx(ref_loss, abs=1e-4)
    worst = max((grads[k] - ref_grads[k]).abs().max().item() for k in grads)
    assert worst < 1e-4, worst


def test_shared_prefix_equality_can_fail(prefix_rows):
    """The check above can fail: branches whose positions restart at 0 (no prefix to attend to) give another loss."""
    traj, _, tok = prefix_rows
    register_segment_attention()
    ref_loss, _ = loss_and_grads(load("sdpa"), [PadCollator(tok.pad_token_id)([r]) for r in traj])
    row = row_tensors(shared_prefix_units(traj, ["k"] * 3, max_tokens=4096))
    pos = row["position_ids"][0].tolist()
    restarted = {**row, "position_ids": torch.tensor([_restart_branches(pos)])}
    loss, _ = loss_and_grads(load(ATTN_NAME), [restarted])
    assert abs(loss - ref_loss) > 1e-3


def _restart_branches(pos: list[int]) -> list[int]:
    out, offset = [], 0
    for i, p in enumerate(pos):
        if i and p != pos[i - 1] + 1:
            offset = p  # this branch restarts at 0
        out.append(p - offset)
    return out


# --- rows filled to a token budget -------------------------------------------------------------------------------

def fake_units(n_agent: int, n_general: int, seed: int = 0) -> list[Unit]:
    import random

    rng = random.Random(seed)
    units = []
    for i in range(n_agent):
        n = rng.randint(129, 1300)
        units.append(Unit([1] * n, [-100] * n, list(range(n)), 1, ("agent",), n))
    for i in range(n_general):
        n = rng.randint(9, 121)
        units.append(Unit([2] * n, [-100] * n, list(range(n)), 1, ("general",), n))
    return units


def test_rows_filled_to_a_budget_keep_every_sample_once_and_mix_sources():
    units = fake_units(500, 100)
    budget = 2048
    rows = pack_units(units, budget, seed=3)
    assert sorted(id(u) for r in rows for u in r) == sorted(id(u) for u in units)  # every unit exactly once
    sizes = [sum(len(u) for u in r) for r in rows]
    assert max(sizes) <= budget
    # every row but the last few (the open rows flushed at the end) is at least 80 % full; mean fill > 95 %
    assert min(sizes[:-8]) >= 0.8 * budget and sum(sizes) / (len(rows) * budget) > 0.95
    # no row made of general samples only, and no run of short rows: the length-grouped tails are gone
    assert not any(all(u.sources == ("general",) for u in r) for r in rows)
    # another seed, another order
    assert [len(r) for r in pack_units(units, budget, seed=4)] != [len(r) for r in rows]
    stats = pack_stats(rows, budget).to_dict()
    assert stats["samples"] == 600 and stats["rows"] == len(rows)


def test_packed_rows_hold_the_wanted_epochs():
    from labkit.train.packing import PackedRows

    units = fake_units(60, 12)
    ds = PackedRows(units, 2048, epochs=2.5)
    assert len(ds) == round(2.5 * ds.rows_per_epoch()) and len(ds.epoch_stats) == 3
    assert len(PackedRows(units, 2048, rows_wanted=7)) == 7
    first = [id(u) for u in ds[0]["units"]]
    assert first != [id(u) for u in ds[ds.rows_per_epoch()]["units"]]  # epoch 2 is packed in another order


def test_a_unit_longer_than_the_budget_is_refused():
    from labkit.errors import LabkitError

    with pytest.raises(LabkitError, match="pack_tokens"):
        pack_units(fake_units(3, 0) + [Unit([1] * 3000, [-100] * 3000, list(range(3000)))], 2048)
