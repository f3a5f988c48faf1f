"""Real single-node Slurm: the smoke sbatch runs notebook 05 to completion; USR1 -> checkpoint -> requeue -> resume.

Needs a running Slurm (``bash slurm/ci/setup_slurm.sh``). Skipped when ``sinfo`` is absent, unless
LABKIT_REQUIRE_SLURM=1 (CI), where a missing Slurm is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from labkit.paths import REPO_ROOT
from train_helpers import GEMMA_DIR, write_samples

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

if shutil.which("sinfo") is None and os.environ.get("LABKIT_REQUIRE_SLURM") != "1":
    pytest.skip("Slurm is not installed here (no `sinfo`); run `bash slurm/ci/setup_slurm.sh` as root",
                allow_module_level=True)
if not GEMMA_DIR.exists():
    pytest.skip(f"Gemma tokenizer not found at {GEMMA_DIR}", allow_module_level=True)


def _submit(*params: str) -> str:
    (REPO_ROOT / "runs" / "slurm").mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["sbatch", "--parsable", "slurm/train_smoke.sbatch", *params], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().split(";")[0]


def _job(job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def _wait(pred, what: str, timeout: float = 600) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


def _wait_done(job_id: str, timeout: float = 900) -> dict[str, str]:
    final = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY")
    _wait(lambda: _job(job_id).get("JobState") in final, f"job {job_id} to end", timeout)
    return _job(job_id)


def _log_rows(out: Path) -> list[dict]:
    path = out / "train_log.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")] if path.exists() else []


def _debug(job_id: str) -> str:
    job_dir = REPO_ROOT / "runs" / "slurm" / job_id
    parts = [p.read_text()[-3000:] for p in sorted(job_dir.glob("*.log"))]
    return "\n".join(parts)


def test_smoke_job_completes_with_notebook_and_checkpoint(tmp_path: Path):
    data, out = write_samples(tmp_path / "train.jsonl", 30), tmp_path / "out"
    job_id = _submit("-p", "data_path", str(data), "-p", "output_dir", str(out), "-p", "max_new_tokens", "8")
    job = _wait_done(job_id)
    assert job["JobState"] == "COMPLETED", _debug(job_id)
    job_dir = REPO_ROOT / "runs" / "slurm" / job_id
    notebook = json.loads((job_dir / "05_training.restart0.ipynb").read_text())
    assert not any(o.get("output_type") == "error" for c in notebook["cells"] for o in c.get("outputs", []))
    assert (out / "checkpoint-8" / "trainer_state.json").exists() and (out / "model.safetensors").exists()
    assert [r["step"] for r in _log_rows(out)] == list(range(1, 9))
    assert "finished with rc=0" in (job_dir / "job.log").read_text()


def test_usr1_checkpoints_requeues_and_resumes(tmp_path: Path):
    data, out = write_samples(tmp_path / "train.jsonl", 30), tmp_path / "out"
    steps = 30
    job_id = _submit("-p", "data_path", str(data), "-p", "output_dir", str(out), "-p", "max_steps", str(steps),
                     "-p", "save_steps", "50", "-p", "max_new_tokens", "4")
    _wait(lambda: len(_log_rows(out)) >= 3, "3 logged training steps", timeout=600)
    subprocess.run(["scancel", "--signal=USR1", "--batch", job_id], check=True)
    # Slurm holds a requeued job back for a while (BeginTime); make it eligible now to keep the test short.
    _wait(lambda: _job(job_id).get("Restarts") == "1" and _job(job_id).get("JobState") in ("PENDING", "RUNNING",
          "COMPLETED"), "the requeue", timeout=600)
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], capture_output=True)
    job = _wait_done(job_id, timeout=1200)
    job_dir = REPO_ROOT / "runs" / "slurm" / job_id
    assert job["JobState"] == "COMPLETED", _debug(job_id)
    assert int(job["Restarts"]) == 1
    log = (job_dir / "job.log").read_text()
    assert "got SIGUSR1" in log and "requeueing" in log and "SLURM_RESTART_COUNT=1" in log
    rows = _log_rows(out)
    first_run = [r["step"] for r in rows if r["restart"] == 0]
    second_run = [r["step"] for r in rows if r["restart"] == 1]
    stopped = max(first_run)
    assert 3 <= stopped < steps  # the checkpoint was taken on the signal, not at a save_steps boundary
    assert second_run[0] == stopped + 1 and second_run[-1] == steps  # resumed, not restarted from 0
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    resumed = json.loads((job_dir / "05_training.restart1.ipynb").read_text())
    text = "".join("".join(o.get("text", "")) for c in resumed["cells"] for o in c.get("outputs", []))
    assert f"{out / f'checkpoint-{stopped}'}" in text  # notebook 05 prints the checkpoint it resumed from
