"""Kill mid-run -> rerun resumes at the right step; SIGUSR1 -> checkpoint + clean exit (Slurm preemption)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit.paths import REPO_ROOT
from train_helpers import GEMMA_DIR, tiny_model_dir, write_samples

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not GEMMA_DIR.exists(), reason=f"Gemma tokenizer not found at {GEMMA_DIR}")]


def _cmd(tmp: Path, steps: int) -> list[str]:
    data = write_samples(tmp / "train.jsonl", 30)
    return [sys.executable, "-m", "labkit.train", "--model_path", str(tiny_model_dir()), "--data_path", str(data),
            "--output_dir", str(tmp / "out"), "--max_steps", str(steps), "--save_steps", "2", "--max_len", "256",
            "--lr", "1e-3", "--save_total_limit", "3"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TOKENIZERS_PARALLELISM": "false"}


def _log_steps(out: Path) -> list[int]:
    path = out / "train_log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if line.endswith("}")]


def _wait(pred, proc: subprocess.Popen, timeout: float = 240) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        assert proc.poll() is None, f"training exited early with {proc.returncode}"
        time.sleep(0.2)
    raise AssertionError("timed out waiting for training progress")


def _global_step(ckpt: Path) -> int:
    return json.loads((ckpt / "trainer_state.json").read_text())["global_step"]


def test_sigkill_then_rerun_resumes_from_latest_checkpoint(tmp_path: Path):
    out = tmp_path / "out"
    proc = subprocess.Popen(_cmd(tmp_path, 8), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(lambda: (out / "checkpoint-4" / "trainer_state.json").exists(), proc)
    proc.kill()
    proc.wait()
    assert not (out / "model.safetensors").exists()
    done = subprocess.run(_cmd(tmp_path, 8), env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed from" in done.stdout and "checkpoint-" in done.stdout
    resumed_at = int(done.stdout.split("resumed from")[1].split("checkpoint-")[1].split()[0])
    assert resumed_at >= 4
    assert _log_steps(out) == list(range(1, 9))  # no step lost or logged twice
    assert _global_step(out / "checkpoint-8") == 8
    assert (out / "model.safetensors").exists() and (out / "labkit_train_config.json").exists()
    assert "<start_of_turn>" in (out / "chat_template.jinja").read_text() or \
        "<start_of_turn>" in (out / "tokenizer_config.json").read_text()


def test_sigusr1_checkpoints_and_exits_cleanly_then_resumes(tmp_path: Path):
    out = tmp_path / "out"
    proc = subprocess.Popen(_cmd(tmp_path, 40), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    _wait(lambda: len(_log_steps(out)) >= 3, proc)
    proc.send_signal(signal.SIGUSR1)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 75, stdout
    stopped = max(_log_steps(out))
    assert stopped < 40 and _global_step(out / f"checkpoint-{stopped}") == stopped
    assert not (out / "model.safetensors").exists()  # a preempted run does not pretend to be finished
    again = subprocess.run(_cmd(tmp_path, stopped + 2), env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resumed from {out / f'checkpoint-{stopped}'}" in again.stdout
    assert _log_steps(out) == list(range(1, stopped + 3))
