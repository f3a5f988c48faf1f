"""The same training code runs under DeepSpeed ZeRO-3 (one CPU process) and gives the same losses."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.paths import REPO_ROOT
from labkit.train import TrainSettings, train
from train_helpers import GEMMA_DIR, tiny_model_dir, write_samples

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not GEMMA_DIR.exists(), reason=f"Gemma tokenizer not found at {GEMMA_DIR}")]


def test_zero3_matches_plain_trainer(tmp_path: Path):
    data = write_samples(tmp_path / "train.jsonl", 12)
    common = dict(model_path=str(tiny_model_dir()), data_path=str(data), max_len=256, max_steps=3, save_steps=3,
                  lr=1e-3, batch_size=2, warmup_ratio=0.0)
    plain = train(TrainSettings(output_dir=str(tmp_path / "plain"), **common))
    ds = train(TrainSettings(output_dir=str(tmp_path / "ds"), deepspeed=str(REPO_ROOT / "slurm" / "ds_zero3.json"),
                         **common))
    assert [s for s, _ in ds.losses] == [1, 2, 3]
    assert [v for _, v in ds.losses] == pytest.approx([v for _, v in plain.losses], rel=1e-4)
    assert (tmp_path / "ds" / "checkpoint-3" / "global_step3").is_dir()  # a DeepSpeed (sharded) checkpoint
    assert (tmp_path / "ds" / "model.safetensors").exists()  # gathered 16-bit weights for evaluation
