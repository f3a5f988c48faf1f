"""Every course notebook's instructor version (solutions filled in) executes end to end with papermill in smoke
mode (offline, CPU), every exercise check in it passes, and no file a lab writes holds the API key.

The labs run once per session, in course order, sharing one runs/ folder as a student's would (03 writes data that
05 trains on), with a planted API key in the environment and a local OpenAI-compatible fake teacher
(bench/fake_teacher.py on 127.0.0.1) as the API server, so the notebooks' API branches run too. The key scan then
reads every file the labs produced: the runs folder, the instructor versions and executed notebooks, and anything
new in notebooks/ and in the labkit cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from labkit import course

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PLANTED = f"sk-planted-{secrets.token_hex(16)}"


class LabRuns:
    """Executes each notebook at most once per session (smoke mode) and remembers where its output went."""

    def __init__(self, root: Path, api_url: str):
        self.runs, self.executed, self.api_url = root / "runs", root / "executed", api_url
        self.instructor = root / "instructor"
        self.executed.mkdir(parents=True)
        self.instructor.mkdir(parents=True)
        self.started = time.time()
        self.outputs: dict[str, Path] = {}

    def execute(self, notebook: Path) -> Path:
        if notebook.name not in self.outputs:
            env = {"LABKIT_RUNS": str(self.runs), "OPENAI_API_KEY": PLANTED, "OPENAI_BASE_URL": self.api_url,
                   "LABKIT_API_MODEL": "sandbox-teacher"}
            out = self.executed / notebook.name
            _, solutions, _ = course.validate(notebook)  # problems are reported by test_notebook_runs_in_smoke_mode
            source = self.instructor / notebook.name  # the solutions filled in
            nbformat.write(course.instructor_version(nbformat.read(str(notebook), as_version=4), solutions,
                                                     notebook), str(source))
            with pytest.MonkeyPatch.context() as mp:  # the kernel inherits this process's environment
                for k, v in env.items():
                    mp.setenv(k, v)
                try:
                    pm.execute_notebook(str(source), str(out), parameters={"mode": "smoke"},
                                        cwd=str(notebook.parent), kernel_name="python3", progress_bar=False,
                                        execution_timeout=900, start_timeout=300)
                finally:
                    self.outputs[notebook.name] = out
        return self.outputs[notebook.name]


@pytest.fixture(scope="session")
def labs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRuns]:
    sys.path.insert(0, str(REPO / "bench"))
    import fake_teacher

    proc, url = fake_teacher.start()
    try:
        runs = LabRuns(tmp_path_factory.mktemp("labs"), url)
        yield runs
        runs.server_stats = fake_teacher.stats(url)  # type: ignore[attr-defined]
    finally:
        fake_teacher.stop(proc)


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
def test_notebook_runs_in_smoke_mode(notebook: Path, labs: LabRuns) -> None:
    ids, _, problems = course.validate(notebook)
    assert not problems, problems
    out = labs.execute(notebook)
    executed = json.loads(out.read_text(encoding="utf-8"))
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    results = course.exercise_results(out)
    assert {ex: results.get(ex, {}).get("status", "no result") for ex in ids} == {ex: "passed" for ex in ids}


def _produced_files(labs: LabRuns) -> Iterator[Path]:
    from labkit.paths import cache_dir

    yield from (p for p in labs.runs.rglob("*") if p.is_file())
    yield from (p for p in labs.executed.rglob("*") if p.is_file())
    yield from (p for p in labs.instructor.rglob("*") if p.is_file())
    for folder in (REPO / "notebooks", cache_dir()):
        yield from (p for p in folder.rglob("*") if p.is_file() and p.stat().st_mtime >= labs.started
                    and p.stat().st_size < 64 * 2**20)


def test_no_lab_output_holds_the_api_key(labs: LabRuns) -> None:
    for notebook in NOTEBOOKS:  # usually already run by the tests above
        try:
            labs.execute(notebook)
        except Exception:  # noqa: BLE001  reported by test_notebook_runs_in_smoke_mode; its files are scanned anyway
            pass
    secret = PLANTED.removeprefix("sk-planted-").encode()
    files = list(_produced_files(labs))
    leaks = [str(p) for p in files if secret in p.read_bytes()]
    assert len(files) > 50 and not leaks, leaks
    import fake_teacher

    seen = fake_teacher.stats(labs.api_url)["key_sha256_12"]
    assert hashlib.sha256(PLANTED.encode()).hexdigest()[:12] in seen, "the API branch of the labs did not run"
    assert os.environ.get("OPENAI_API_KEY") != PLANTED
