"""Recipe switches of notebook 06's experiment: LoRA (peft) instead of all parameters, a training-time budget, and
the device override."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from labkit.errors import LabkitError
from labkit.train import TrainSettings, train
from train_helpers import GEMMA_DIR, tiny_model_dir, write_samples

pytestmark = pytest.mark.skipif(not GEMMA_DIR.exists(), reason=f"Gemma tokenizer not found at {GEMMA_DIR}")


def config(tmp_path: Path, **kw) -> TrainSettings:
    data = write_samples(tmp_path / "train.jsonl", 12)
    settings = {"max_len": 256, "save_steps": 10, "lr": 1e-2, "batch_size": 4, "warmup_ratio": 0.0,
                "precision": "fp32", "device": "cpu", "max_steps": 3, **kw}
    return TrainSettings(model_path=str(tiny_model_dir()), data_path=str(data), output_dir=str(tmp_path / "out"),
                     **settings)


def test_lora_trains_adapters_only_and_saves_a_merged_plain_checkpoint(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from labkit.llm import LocalHFModel

    before = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir()))
    result = train(config(tmp_path, lora_r=4))
    out = Path(result.output_dir)
    saved = json.loads((out / "labkit_train_config.json").read_text())
    counts = saved["trainable_parameters"]
    assert 0 < counts["trainable"] < counts["total"] / 20  # adapters only
    assert (out / "model.safetensors").exists() and not (out / "adapter_config.json").exists()
    after = AutoModelForCausalLM.from_pretrained(str(out))  # a plain checkpoint: no peft needed to load it
    q0, q1 = before.model.layers[0].self_attn.q_proj.weight, after.model.layers[0].self_attn.q_proj.weight
    assert q0.shape == q1.shape and not torch.equal(q0, q1)  # the trained adapters were merged in
    assert torch.equal(before.get_input_embeddings().weight, after.get_input_embeddings().weight)
    assert not any("lora" in k for k in after.state_dict())
    assert LocalHFModel(str(out), device="cpu").chat([{"role": "user", "content": "hi"}], max_new_tokens=2).model


def test_lora_refuses_weight_snapshots(tmp_path: Path) -> None:
    with pytest.raises(LabkitError, match="curve_points"):
        train(config(tmp_path, lora_r=4, curve_points=2))


def test_time_budget_stops_training_and_still_saves(tmp_path: Path) -> None:
    result = train(config(tmp_path, max_steps=30, max_minutes=0.001))  # 0.06 s: stops after the first step
    assert result.global_step < 5 and not result.preempted
    assert (Path(result.output_dir) / "model.safetensors").exists()


def test_bad_recipe_switches_are_rejected(tmp_path: Path) -> None:
    for bad in ({"device": "tpu"}, {"lora_r": -1}, {"max_minutes": -1}):
        with pytest.raises(LabkitError):
            config(tmp_path, **bad)


def test_device_override(monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.llm import local
    from labkit.train.trainer import _training_args, resolve_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(local, "mps_available", lambda: False)
    assert local.resolve_device("auto") == "cpu" and local.resolve_device(None) == "cpu"
    with pytest.raises(LabkitError, match="CUDA"):
        local.resolve_device("cuda")
    with pytest.raises(LabkitError, match="MPS"):
        local.resolve_device("mps")
    monkeypatch.setattr(local, "mps_available", lambda: True)
    assert local.resolve_device("auto") == "mps" and local.pick_device_and_attention("auto")[0] == "mps"
    assert resolve_precision("auto", "mps") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert local.resolve_device("auto") == "cuda" and local.resolve_device("cpu") == "cpu"
    assert resolve_precision("auto", "cuda") == "bf16"
    monkeypatch.setattr(local, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr("labkit.train.trainer.cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", "cpu") == "fp32"  # a GPU present does not make a CPU run bf16
    cfg = TrainSettings(device="cpu", max_steps=1)
    assert _training_args(cfg, "fp32", "cpu").use_cpu is True
