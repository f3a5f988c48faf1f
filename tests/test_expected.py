"""'What you should see': the measured course-run figures in every notebook come from one JSON and stay in sync."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from labkit import expected
from labkit.errors import DataFileError

NB = Path(__file__).resolve().parents[1] / "notebooks"


def test_blocks_and_images_match_the_measured_json() -> None:
    assert expected.stale() == [], "run: python -m labkit.expected"


def test_every_notebook_shows_what_you_should_see() -> None:
    data = expected.load()
    dates = {data["measured"], data["smoke"]["measured"], data["04"]["diversity"]["measured"],
             data["ceiling"]["measured"]}
    for path in sorted(NB.glob("[0-9][0-9]_*.py")):
        text = path.read_text(encoding="utf-8")
        blocks = list(expected.BLOCK.finditer(text))
        assert blocks, f"{path.name} has no expected block"
        for block in blocks:
            assert any(date in block["body"] for date in dates), \
                f"{path.name}: the figures of block {block['key']} are not labelled with their date"
        for image in re.findall(r"\]\((expected/[^)]+\.png)\)", text):
            assert (NB / image).exists(), image


def test_smoke_timings_keep_their_own_date_and_machine() -> None:
    data = json.loads(json.dumps(expected.load()))
    data["measured"], data["machine"] = "2027-01-15", "another CPU"
    for key in ("01", "05"):
        block = expected.render_block(key, data)
        assert data["smoke"]["measured"] in block and data["smoke"]["machine"] in block, block
    assert "2027-01-15" not in expected.render_block("01", data)


def test_a_new_measurement_makes_the_notebooks_stale_until_regenerated(tmp_path: Path) -> None:
    notebooks, out = tmp_path / "nbs", tmp_path / "expected"
    notebooks.mkdir()
    for name in ("03_data_construction.py", "06_evaluation.py"):
        shutil.copy(NB / name, notebooks / name)
    shutil.copytree(NB / "expected", out)
    data = json.loads(json.dumps(expected.load()))
    assert expected.stale(data, notebooks=notebooks, out=out) == []
    data["measured"] = "2027-01-15"
    data["06"]["failure_kinds"]["right_tool"] = 70
    data["06"]["failure_kinds"]["finished_early"] = 12
    problems = expected.stale(data, notebooks=notebooks, out=out)
    assert any("06_evaluation.py" in p for p in problems) and any("06_failure_kinds.png" in p for p in problems)
    expected.generate(data, notebooks=notebooks, out=out, sync=False)
    assert expected.stale(data, notebooks=notebooks, out=out) == []
    text = (notebooks / "06_evaluation.py").read_text(encoding="utf-8")
    assert "选对工具 70 个" in text and "2027-01-15" in text and "2026-12-02" not in text


def test_measured_figures_need_their_date_machine_and_command(tmp_path: Path) -> None:
    data = expected.load()
    del data["machine"]
    bad = tmp_path / "course_run.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataFileError, match="machine"):
        expected.load(bad)


def test_a_missing_figure_is_named_when_the_json_is_loaded(tmp_path: Path) -> None:
    bad = tmp_path / "course_run.json"
    for change, field in ((lambda d: d["06"]["failure_kinds"].pop("right_tool"), r"06\.failure_kinds\.right_tool"),
                          (lambda d: d.update(ceiling=[]), "ceiling"),
                          (lambda d: d["06"]["failure_kinds"].update(unparsed=0), r"06\.failure_kinds.*add up")):
        data = json.loads(expected.SOURCE.read_text(encoding="utf-8"))
        change(data)
        bad.write_text(json.dumps(data), encoding="utf-8")
        with pytest.raises(DataFileError, match=field):
            expected.load(bad)
