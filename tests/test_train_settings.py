"""The course's speed settings: frozen embeddings, packing, bf16 on CPUs that have it — and what a run saves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from labkit.chat import END_OF_TURN
from labkit.train import TrainSettings, train
from labkit.train.trainer import cpu_has_native_bf16, resolve_precision
from train_helpers import GEMMA_DIR, tiny_model_dir, write_samples

pytestmark = pytest.mark.skipif(not GEMMA_DIR.exists(), reason=f"Gemma tokenizer not found at {GEMMA_DIR}")


def run(tmp_path: Path, **kw) -> tuple[object, dict]:
    data = write_samples(tmp_path / "train.jsonl", 12)
    cfg = TrainSettings(model_path=str(tiny_model_dir()), data_path=str(data), output_dir=str(tmp_path / "out"),
                    max_len=256, max_steps=3, save_steps=10, lr=1e-3, batch_size=4, warmup_ratio=0.0, **kw)
    result = train(cfg)
    return result, json.loads((tmp_path / "out" / "labkit_train_config.json").read_text())


def test_frozen_embeddings_stay_put_and_everything_else_trains(tmp_path: Path):
    from transformers import AutoModelForCausalLM

    before = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir()))
    result, saved = run(tmp_path, freeze_embeddings=True, precision="fp32")
    after = AutoModelForCausalLM.from_pretrained(result.output_dir)
    emb = before.get_input_embeddings().weight
    assert torch.equal(emb, after.get_input_embeddings().weight)
    assert not torch.equal(before.model.layers[0].mlp.up_proj.weight, after.model.layers[0].mlp.up_proj.weight)
    counts = saved["trainable_parameters"]
    assert counts["trainable"] == counts["total"] - emb.numel()


def test_packed_training_saves_a_plain_checkpoint_that_stops_at_end_of_turn(tmp_path: Path):
    result, saved = run(tmp_path, packing=True, precision="fp32")
    assert saved["attn_implementation"] == "labkit_segments" and result.global_step == 3
    assert result.supervised_tokens_per_s > 0
    config = json.loads((Path(result.output_dir) / "config.json").read_text())
    assert "labkit_segments" not in json.dumps(config)  # loading elsewhere must not need labkit's attention
    gen = json.loads((Path(result.output_dir) / "generation_config.json").read_text())
    from labkit.llm.local import load_tokenizer

    eos = gen["eos_token_id"] if isinstance(gen["eos_token_id"], list) else [gen["eos_token_id"]]
    assert load_tokenizer().convert_tokens_to_ids(END_OF_TURN) in eos
    log = [json.loads(x) for x in (Path(result.output_dir) / "train_log.jsonl").read_text().splitlines()]
    assert all(r["supervised_tokens_per_s"] > 0 for r in log)


def test_auto_precision_follows_the_hardware(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("labkit.train.trainer.cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto") == "bf16"
    monkeypatch.setattr("labkit.train.trainer.cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto") == "fp32" and resolve_precision("bf16") == "bf16"


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16 (AVX512-BF16 / AMX)")
def test_bf16_autocast_training_runs_on_this_cpu(tmp_path: Path):
    result, saved = run(tmp_path, precision="auto", freeze_embeddings=True)
    assert saved["precision_resolved"] == "bf16" and all(l == l for _, l in result.losses)  # no NaN


def test_curve_snapshots_are_loadable_checkpoints(tmp_path: Path):
    from labkit.jsonl import read_jsonl
    from labkit.llm import LocalHFModel

    data = write_samples(tmp_path / "train.jsonl", 12)
    cfg = TrainSettings(model_path=str(tiny_model_dir()), data_path=str(data), output_dir=str(tmp_path / "out"),
                    max_len=256, max_steps=6, save_steps=100, batch_size=2, curve_points=2, precision="fp32")
    train(cfg)
    index = read_jsonl(tmp_path / "out" / "curve" / "index.jsonl")
    assert [r["step"] for r in index] == [2, 4] and 0 < index[0]["train_minutes"] < index[1]["train_minutes"]
    snap_dir = tmp_path / "out" / "curve" / "step-2"
    from transformers import AutoModelForCausalLM

    unique = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(str(tiny_model_dir())).parameters())
    assert (snap_dir / "model.safetensors").stat().st_size < 1.1 * 2 * unique  # bf16, the tied LM head saved once
    snap = LocalHFModel(str(snap_dir))
    assert snap.chat([{"role": "user", "content": "hi"}], max_new_tokens=2).completion_tokens <= 2


def test_token_budget_rows_with_shared_prefixes_train_and_log_samples(tmp_path: Path):
    """pack_tokens + share_prefix through train(): rows near the budget, every sample seen once per epoch, the
    packing statistics saved with the run, samples counted per step."""
    from labkit.jsonl import write_jsonl
    from train_helpers import make_samples

    samples = make_samples(12)
    for s in samples[:6]:  # one trajectory: six steps of one query under one template, sharing a long prompt
        s["query_id"], s["template"] = "q-shared", "react"
        s["messages"][0]["content"] = "共同的工具说明与任务描述。" * 20 + f"\n记忆：第{s['id']}步"
    data = tmp_path / "train.jsonl"
    write_jsonl(data, samples)
    cfg = TrainSettings(model_path=str(tiny_model_dir()), data_path=str(data), output_dir=str(tmp_path / "out"),
                    max_len=512, epochs=1.0, save_steps=100, lr=1e-3, batch_size=1, warmup_ratio=0.0,
                    packing=True, pack_tokens=512, share_prefix=True, precision="fp32")
    result = train(cfg)
    saved = json.loads((tmp_path / "out" / "labkit_train_config.json").read_text())
    packing = saved["packing"]
    assert packing["samples"] == 12 and packing["shared_prefix_saving"] > 0.3
    assert result.global_step == packing["rows"]  # one epoch = one pass over the rows
    log = [json.loads(x) for x in (tmp_path / "out" / "train_log.jsonl").read_text().splitlines()]
    assert sum(r["samples"] for r in log) == 12 and all(r["tokens"] <= 512 for r in log)


@pytest.mark.parametrize("settings, message", [
    ({"pack_tokens": 2048}, "needs packing"),
    ({"packing": True, "pack_tokens": 1024, "max_len": 1536}, "must be >= max_len"),
    ({"packing": True, "pack_tokens": 2048, "max_len": 1536, "batch_size": 4}, "batch_size"),
    ({"share_prefix": True}, "needs pack_tokens"),
])
def test_packing_settings_that_cannot_work_are_refused(settings: dict, message: str):
    from labkit.errors import LabkitError

    with pytest.raises(LabkitError, match=message):
        TrainSettings(**settings)
