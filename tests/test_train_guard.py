"""The training resume guard: another model's checkpoint is refused before anything in the folder is rewritten,
also when that model has exactly the same shape (told apart by a fingerprint of the base model's weights)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from labkit.errors import LabkitError
from labkit.train.guard import BASE_RECORD, check_output_dir, fingerprint

CONFIG = {"model_type": "gemma3_text", "vocab_size": 64, "hidden_size": 8, "num_hidden_layers": 2,
          "intermediate_size": 16, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4}


def model(path: Path, seed: int, *, size: int = 3 << 20, **config: object) -> Path:
    """A checkpoint folder: config.json and a weights file of ``size`` bytes (seeded content)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({**CONFIG, **config}))
    (path / "model.safetensors").write_bytes(random.Random(seed).randbytes(size))
    return path


def checkpoint(out: Path, src: Path, step: int = 4) -> Path:
    ckpt = out / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text((src / "config.json").read_text())
    return ckpt


def test_a_same_shape_checkpoint_of_another_model_is_refused(tmp_path: Path) -> None:
    a, b = model(tmp_path / "a", 1), model(tmp_path / "b", 2)
    assert fingerprint(a) != fingerprint(b) and (a / "config.json").read_text() == (b / "config.json").read_text()
    out = tmp_path / "out"
    check_output_dir(out, a, resume=True)  # a fresh run records its base model
    assert json.loads((out / BASE_RECORD).read_text())["fingerprint"] == fingerprint(a)
    checkpoint(out, a)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(LabkitError, match=r"checkpoint-4 holds a checkpoint trained from another model .*same "
                                          r"shape; use a new output_dir, or set resume=False"):
        check_output_dir(out, b, resume=True)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # nothing rewritten
    check_output_dir(out, a, resume=True)  # the same model resumes
    check_output_dir(out, b, resume=False)  # starting over is allowed and makes the folder b's
    assert json.loads((out / BASE_RECORD).read_text())["fingerprint"] == fingerprint(b)


def test_the_fingerprint_sees_a_change_anywhere_in_a_large_file(tmp_path: Path) -> None:
    a = model(tmp_path / "a", 1, size=12 << 20)
    before = fingerprint(a)
    data = bytearray((a / "model.safetensors").read_bytes())
    data[len(data) * 2 // 3: len(data) * 2 // 3 + 200_000] = bytes(200_000)  # a trained tensor of ~200 KB
    (a / "model.safetensors").write_bytes(bytes(data))
    assert fingerprint(a) != before


def test_another_architecture_and_old_folders_are_still_checked_by_shape(tmp_path: Path) -> None:
    a, wide = model(tmp_path / "a", 1), model(tmp_path / "wide", 1, hidden_size=16)
    out = tmp_path / "out"
    checkpoint(out, a)  # a folder from before records existed: no labkit_base_model.json
    with pytest.raises(LabkitError, match=r"another model than .*hidden_size: 8 there vs 16"):
        check_output_dir(out, wide, resume=True)
    check_output_dir(out, a, resume=True)
    (out / BASE_RECORD).write_text("{broken")
    with pytest.raises(LabkitError, match=r"labkit_base_model.json is unreadable"):
        check_output_dir(out, a, resume=True)
