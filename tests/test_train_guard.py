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


def test_the_fingerprint_sees_any_changed_byte_and_samples_only_huge_checkpoints(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import labkit.train.guard as guard

    a = model(tmp_path / "a", 1, size=12 << 20)
    weights, before = a / "model.safetensors", fingerprint(a)
    data = bytearray(weights.read_bytes())
    data[len(data) * 2 // 3] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    assert fingerprint(a) != before
    monkeypatch.setattr(guard, "FULL_HASH_LIMIT", 1 << 20)  # as if it were a 7B checkpoint: sampled
    monkeypatch.setattr(guard, "SAMPLES", 64)
    sampled = fingerprint(a)
    data[len(data) // 3: len(data) // 3 + 200_000] = bytes(200_000)  # a trained tensor of ~200 KB
    weights.write_bytes(bytes(data))
    assert fingerprint(a) != sampled


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


def test_the_trainer_refuses_before_loading_anything_with_exit_code_2(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The real entry point (python -m labkit.train's main): the guard runs first in training and its refusal is
    exit code 2 with one line, not a traceback (2 = bad configuration or data: Slurm does not requeue it)."""
    from labkit.train.__main__ import main
    from train_helpers import write_samples

    a, b = model(tmp_path / "a", 1), model(tmp_path / "b", 2)
    out = tmp_path / "out"
    check_output_dir(out, a, resume=False)
    checkpoint(out, a)
    record = (out / BASE_RECORD).read_bytes()
    data = write_samples(tmp_path / "train.jsonl", 4)
    code = main(["--model_path", str(b), "--data_path", str(data), "--output_dir", str(out), "--max_steps", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "trained from another model" in err and len(err.strip().splitlines()) == 1
    assert (out / BASE_RECORD).read_bytes() == record and sorted(p.name for p in out.iterdir()) == [
        "checkpoint-4", BASE_RECORD]
