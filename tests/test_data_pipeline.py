"""build_dataset end to end (smoke mode, small self-contained bank): every artefact, held-out templates recorded,
no leakage, the 5:1 mix, and a re-run that makes no teacher calls."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from labkit.data.export import read_training_set
from labkit.jsonl import read_jsonl

from test_data_label import data_dir  # noqa: F401  (fixture)


@pytest.mark.slow  # two full builds: about a minute on a loaded 2-core CPU
def test_build_dataset_smoke(data_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    from labkit.data.pipeline import build_dataset

    out = tmp_path / "smoke"
    res = build_dataset("smoke", out, teacher="sandbox:noise=0.3", test_fraction=0.3, workers=2, progress=False)
    for name in ("train.jsonl", "test_queries.jsonl", "general_test.jsonl", "stats.json", "leakage_report.json",
                 "rejections.csv", "train_kagentinstruct.jsonl", "hf_dataset", "labelling/labelled.jsonl"):
        assert (out / name).exists(), name
    stats = json.loads((out / "stats.json").read_text())
    assert "meta_xml_en" in stats["test_templates"] and "meta_xml_en" not in stats["train_templates"]
    assert stats["labelling"]["usage"]["calls"] > 0

    train = read_training_set(out / "train.jsonl")
    agent = [s for s in train if s["source"] == "agent"]
    general = [s for s in train if s["source"] == "general"]
    assert len(agent) == stats["samples"]["agent"] > 0 and len(general) == round(len(agent) / 5)
    assert {s["template"] for s in agent} <= set(stats["train_templates"])
    test_ids = {q["id"] for q in read_jsonl(out / "test_queries.jsonl")}
    assert test_ids and not test_ids & {s["query_id"] for s in agent}
    leak = json.loads((out / "leakage_report.json").read_text())
    assert leak["exact_overlaps"] == 0 and leak["near_overlaps"] == 0 and leak["ok"]
    assert leak["general"]["exact_overlaps"] == 0 and leak["general"]["near_overlaps"] == 0
    assert not {g["id"] for g in read_jsonl(out / "general_test.jsonl")} & {s["query_id"] for s in general}

    with (out / "rejections.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    rejected = stats["filters"]["rejected"]
    assert rejected > 0 and len({r["job_id"] for r in rows}) == rejected
    assert sum(res.rejections["primary"]) == rejected
    assert stats["filters"]["emulator_noise"]["of_which_rejected"] > 0

    again = build_dataset("smoke", out, teacher="sandbox:noise=0.3", test_fraction=0.3, workers=2, progress=False)
    assert again.stats["labelling"]["usage"]["calls"] == 0
    assert read_training_set(out / "train.jsonl") == train
