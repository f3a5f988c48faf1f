"""Every course notebook's instructor version (solutions filled in) executes end to end with papermill in smoke
mode (offline, CPU), and every exercise check in it passes."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from labkit import course

@pytest.fixture(scope="module")
def shared_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_course_notebooks_exist() -> None:
    names = [p.stem for p in NOTEBOOKS]
    assert len(names) >= 5, names


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_clean(notebook: Path) -> None:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any(c.get("outputs") for c in code), "commit notebooks without outputs"
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert "mode" in "".join(tagged[0]["source"]), "the parameters cell sets `mode`"
    long_cells = [i for i, c in enumerate(code) if len("".join(c["source"]).splitlines()) > 30]
    assert not long_cells, f"code cells over 30 lines (put logic in labkit): {long_cells}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(notebook: Path, tmp_path: Path, shared_runs: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # The labs share one runs/ folder, in course order, as a student's would (03 writes data that 05 trains on).
    monkeypatch.setenv("LABKIT_RUNS", str(shared_runs))
    ids, solutions, problems = course.validate(notebook)
    assert not problems, problems
    source = tmp_path / "instructor" / notebook.name
    source.parent.mkdir()
    nbformat.write(course.instructor_version(nbformat.read(str(notebook), as_version=4), solutions, notebook),
                   str(source))
    out = tmp_path / notebook.name
    pm.execute_notebook(
        str(source),
        str(out),
        parameters={"mode": "smoke"},
        cwd=str(notebook.parent),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=900,
    )
    executed = json.loads(out.read_text(encoding="utf-8"))
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    results = course.exercise_results(out)
    assert {ex: results.get(ex, {}).get("status", "no result") for ex in ids} == {ex: "passed" for ex in ids}
