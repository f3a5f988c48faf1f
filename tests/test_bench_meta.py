"""bench/meta_diversity.py at tiny scale (random tiny model, a few steps), and the interval arithmetic it reports."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from labkit.meta.compare import bootstrap_ci, summarise

ROOT = Path(__file__).resolve().parents[1]


def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_data() -> None:
    mean, lo, hi = bootstrap_ci([0.0, 1.0] * 10, seed=1)
    assert lo <= mean == 0.5 <= hi and 0.2 < lo and hi < 0.8
    _, lo2, hi2 = bootstrap_ci([0.0, 1.0] * 200, seed=1)
    assert hi2 - lo2 < (hi - lo) / 3
    assert bootstrap_ci([0.7] * 5) == (0.7, 0.7, 0.7)


def test_paired_difference_is_reported_per_group() -> None:
    rows = []
    for q in range(30):
        for arm, score in (("single", 0.2 + 0.01 * (q % 3)), ("diverse", 0.7 + 0.01 * (q % 5))):
            for group in ("unseen format", "seen format"):
                rows.append({"arm": arm, "seed": 0, "query_id": f"q{q}", "record": f"q{q}:plan0", "template": "t",
                             "group": group, "score": score if group == "unseen format" else 0.5,
                             "valid_format": True, "tool_name_ok": True})
    table = summarise(pd.DataFrame(rows), n_boot=500).set_index(["arm", "group"])
    diff = table.loc[("diverse - single", "unseen format")]
    assert 45 < diff["ci_low"] <= diff["step_score"] <= diff["ci_high"] < 55
    same = table.loc[("diverse - single", "seen format")]
    assert same["step_score"] == 0 and same["ci_low"] == same["ci_high"] == 0


@pytest.mark.slow
def test_bench_runs_end_to_end_with_the_tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path / "runs"))
    spec = importlib.util.spec_from_file_location("meta_diversity", ROOT / "bench" / "meta_diversity.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    out = tmp_path / "bench"
    assert bench.main(["--mode", "smoke", "--out", str(out), "--set", "max_steps=2", "--set", "save_steps=2",
                       "--n-test-queries", "2", "--templates-per-record", "1", "--max-new-tokens", "8"]) == 0
    printed = capsys.readouterr().out
    assert "diverse - single" in printed and "held-out formats:" in printed
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert res["train"]["single/seed0"]["steps"] == res["train"]["diverse/seed0"]["steps"] == 2
    assert set(res["split"]["unseen_format"]).isdisjoint(res["split"]["train"]) and res["split"]["unseen_format"]
    arms = {(r["arm"], r["group"]) for r in res["table"]}
    assert {("single", "unseen format"), ("diverse", "unseen format"), ("diverse - single", "unseen format")} <= arms
    for r in res["table"]:
        assert r["ci_low"] <= r["step_score"] <= r["ci_high"]
    assert (out / "answers.csv").exists() and (out / "table.txt").exists()
