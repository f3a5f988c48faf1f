"""A shortened bench/faulty_teacher.py: labelling through a faulty OpenAI-compatible teacher (429 + Retry-After, 500,
timeouts, truncated / non-JSON / empty replies, lone surrogates), SIGKILLed mid-run and resumed: 0 lost, 0
duplicated, 0 counted done without a record, and the same labels as a fault-free run (surrogate replies aside)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from test_data_label import data_dir  # noqa: F401  (fixture)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))


@pytest.mark.server  # starts two local teacher servers and four labelling processes (~20 s)
def test_faulty_teacher_sigkill_and_resume_lose_nothing(data_dir: Path) -> None:  # noqa: F811
    import faulty_teacher

    result = faulty_teacher.run(40, 0.35, workers=8, seed=1, latency=0.002, hang=0.6)
    faults = {k: v for k, v in result["server"].items() if k not in ("chat", "ok", "key_sha256_12")}
    assert sum(faults.values()) >= 10 and sum(v > 0 for v in faults.values()) >= 5, faults
    assert 0 < result["killed_after_jobs"] < 40
    assert result["lost"] == result["duplicated"] == result["counted_done_without_record"] == 0, result
    assert result["differing"] == result["differing_explained_by_surrogates"], result
    assert result["identical_to_fault_free"] + result["differing"] == 40
    assert result["teacher_retries"] > 0 and result["skipped_per_round"][0] == result["killed_after_jobs"]
