"""bench/record.py: every benchmark's raw figures land whole in runs/bench/<name>.json, with date and machine."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import record  # noqa: E402


def test_save_writes_under_labkit_runs_and_replaces_the_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path))
    path = record.save("bench_x", {"rows": [{"tok_s": 7.9}], "date": "2026-12-02 10:00"})
    assert path == tmp_path / "bench" / "bench_x.json"
    first = json.loads(path.read_text(encoding="utf-8"))
    assert first["bench"] == "bench_x" and first["rows"] == [{"tok_s": 7.9}]
    assert first["date"] == "2026-12-02 10:00"          # a figure the bench gives wins over the default
    assert "CPUs, python" in first["machine"]
    record.save("bench_x", {"rows": []})
    second = json.loads(path.read_text(encoding="utf-8"))
    assert second["rows"] == [] and second["date"] != "2026-12-02 10:00"
    assert sorted(p.name for p in path.parent.iterdir()) == ["bench_x.json"]   # no temp file left behind
