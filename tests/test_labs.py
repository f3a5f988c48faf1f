"""The instructor runner executes notebooks in order, continues after a failure and reports where it failed."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from labkit.cli import main, parse_value
from labkit.errors import UnknownNameError
from labkit.labs import list_notebooks, read_failure, resolve_notebooks


def _write(path: Path, cells: list) -> None:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


@pytest.fixture()
def labs_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "nbs"
    folder.mkdir()
    params = new_code_cell('mode = "course"\nscale = 1')
    params.metadata["tags"] = ["parameters"]
    _write(folder / "01_ok.ipynb", [new_markdown_cell("# ok"), params,
                                    new_code_cell("from pathlib import Path\n"
                                                  "Path('seen.txt').write_text(f'{mode} {scale}')")])
    _write(folder / "02_bad.ipynb", [new_markdown_cell("# bad"), new_code_cell("x = 1"),
                                     new_code_cell("# divide\ny = x / 0\nprint(y)")])
    _write(folder / "03_after.ipynb", [new_code_cell("print('still ran')")])
    (folder / "notes.ipynb").write_text("{}")  # not NN_name: ignored
    return folder


def test_list_and_resolve(labs_dir: Path) -> None:
    assert [p.stem for p in list_notebooks(labs_dir)] == ["01_ok", "02_bad", "03_after"]
    assert [p.stem for p in resolve_notebooks(["03", "01_ok.ipynb", "02_bad"], labs_dir)] == [
        "03_after", "01_ok", "02_bad"]
    with pytest.raises(UnknownNameError, match="01_ok"):
        resolve_notebooks(["99"], labs_dir)


def test_parse_value() -> None:
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("True") is True
    assert parse_value("gemma-3-270m") == "gemma-3-270m" and parse_value("[1, 2]") == [1, 2]


def test_run_reports_pass_and_fail(labs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["labs", "run", "--dir", str(labs_dir), "--out", str(out), "-p", "scale", "7"])
    assert code == 1
    printed = capsys.readouterr().out
    assert "1/3" not in printed and "2/3 passed" in printed
    assert (labs_dir / "seen.txt").read_text() == "smoke 7"  # cwd = notebook folder, parameters injected
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| 01_ok | passed |" in report and "| 02_bad | FAILED |" in report and "| 03_after | passed |" in report
    assert "ZeroDivisionError" in report and "y = x / 0" in report
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "ZeroDivisionError" in page and "<table" in page
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    bad = next(r for r in data["results"] if r["name"] == "02_bad")
    assert bad["failure"]["cell_index"] == 2 and bad["failure"]["ename"] == "ZeroDivisionError"
    assert bad["failure"]["source_head"].startswith("# divide")
    assert read_failure(out / "01_ok.ipynb") is None
    assert all((out / f"{n}.ipynb").exists() for n in ("01_ok", "02_bad", "03_after"))


def test_run_selected_passing(labs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["labs", "run", "--dir", str(labs_dir), "--out", str(tmp_path / "o"), "03"])
    assert code == 0
    assert "1/1 passed" in capsys.readouterr().out
    assert "| 03_after | passed |" in (tmp_path / "o" / "report.md").read_text(encoding="utf-8")


def test_cli_list_and_unknown(labs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["labs", "list", "--dir", str(labs_dir)]) == 0
    assert capsys.readouterr().out.split() == ["01_ok", "02_bad", "03_after"]
    assert main(["labs", "run", "--dir", str(labs_dir), "nope"]) == 2
    assert "unknown notebook 'nope'" in capsys.readouterr().err


# --- exercises in the runner: instructor versions by default, per-exercise results in the report -------------------

from labkit.exercises import exercise, passed as ex_passed, failed as ex_failed  # noqa: E402

CHECKER = '''from labkit.exercises import check, exercise, failed, passed
@exercise("97.1", title="square", note_section="§test")
def _sq(answer, *, x):
    return passed("ok") if answer == x * x else failed("square it")
'''


@exercise("97.1", title="square", note_section="§test")
def _sq(answer, *, x):  # the runner process validates ids against the registry; the kernel registers its own copy
    return ex_passed("ok") if answer == x * x else ex_failed("square it")


@pytest.fixture()
def exercise_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "ex"
    (folder / "solutions").mkdir(parents=True)
    params = new_code_cell('mode = "course"')
    params.metadata["tags"] = ["parameters"]
    _write(folder / "97_ex.ipynb", [params, new_code_cell(CHECKER),
                                    new_code_cell("# >>> 练习 97.1：你的答案\nanswer = ...\n# <<< 练习 97.1\n"
                                                  "check('97.1', answer, x=3)")])
    (folder / "solutions" / "97.py").write_text("# %% solution 97.1\nanswer = 3 * 3  # nine\n", encoding="utf-8")
    return folder


def test_runner_uses_instructor_versions_and_reports_exercises(exercise_dir: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    assert main(["labs", "run", "--dir", str(exercise_dir), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "练习 97.1   passed" in printed
    assert "answer = 3 * 3" in (out / "instructor" / "97_ex.ipynb").read_text(encoding="utf-8")
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| 97_ex | 97.1 | passed | square |" in report and "instructor versions" in report
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert data["results"][0]["exercises"] == [{"id": "97.1", "title": "square", "status": "passed"}]


def test_runner_as_is_reports_unanswered_without_failing(exercise_dir: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    assert main(["labs", "run", "--dir", str(exercise_dir), "--out", str(out), "--as-is", "--no-progress"]) == 0
    assert "练习 97.1   unanswered" in capsys.readouterr().out


def test_runner_fails_a_notebook_whose_solution_does_not_pass(exercise_dir: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (exercise_dir / "solutions" / "97.py").write_text("# %% solution 97.1\nanswer = 3 + 3  # wrong\n",
                                                      encoding="utf-8")
    out = tmp_path / "o"
    assert main(["labs", "run", "--dir", str(exercise_dir), "--out", str(out), "--no-progress"]) == 1
    assert "FAIL  97_ex" in capsys.readouterr().out
    assert "exercise checks did not pass: 97.1 (failed)" in (out / "report.md").read_text(encoding="utf-8")


def test_runner_reports_a_missing_solution(exercise_dir: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (exercise_dir / "solutions" / "97.py").unlink()
    assert main(["labs", "run", "--dir", str(exercise_dir), "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    assert "has no solution" in capsys.readouterr().out


def test_progress_bar_shows_cell_n_of_m(labs_dir: Path, tmp_path: Path) -> None:
    import io

    from labkit.labs import progress_bar, run_labs

    buf = io.StringIO()
    run_labs(["01"], folder=labs_dir, out_dir=tmp_path / "o", progress=lambda name: progress_bar(name, buf))
    text = buf.getvalue()
    assert "01_ok: cell 4/4" in text and "elapsed" in text  # 3 cells + the injected parameters


def test_ensure_dataset_builds_only_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing data folder is built as the course builds it: the Meta-Agent's kept templates (run once when there
    are none), then the data stage given them (Meta-Agent Tuning, notebook 04's last step)."""
    from types import SimpleNamespace

    from labkit.data import pipeline
    from labkit.labs import ensure_dataset
    from labkit.meta import pipeline as meta

    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path / "runs"))
    built: list[tuple[str, Path, list]] = []
    metas: list[str] = []

    def fake_meta(mode: str) -> SimpleNamespace:
        metas.append(mode)
        kept = tmp_path / "runs" / "meta" / mode / "templates"
        kept.mkdir(parents=True, exist_ok=True)
        (kept / "t.yaml").write_text("")
        return SimpleNamespace(templates_dir=kept)

    monkeypatch.setattr(meta, "run_meta_agent", fake_meta)
    monkeypatch.setattr(pipeline, "build_dataset",
                        lambda mode, out_dir, **kw: built.append((mode, out_dir, kw["template_dirs"])))
    folder = tmp_path / "d"
    kept = tmp_path / "runs" / "meta" / "smoke" / "templates"
    assert ensure_dataset("smoke", folder) == folder and built == [("smoke", folder, [kept])] and metas == ["smoke"]
    folder.mkdir()
    (folder / "train.jsonl").write_text("")
    assert ensure_dataset("smoke", folder, needs=["train.jsonl"]) == folder and len(built) == 1
    assert ensure_dataset("smoke", tmp_path / "e") == tmp_path / "e" and metas == ["smoke"]  # kept ones reused
    assert ensure_dataset("course") == tmp_path / "runs" / "data" / "course" and len(built) == 3
    assert metas == ["smoke", "course"]


def test_the_runner_clock_ticks_inside_a_long_cell_and_shows_its_progress(tmp_path: Path) -> None:
    """A 12-minute cell used to freeze the line at `cell 4/44, 00:05 elapsed`: the bar is redrawn every second, with
    the running cell's own items done / total (labkit.progress.Progress through LABKIT_PROGRESS_FILE)."""
    import io
    import re

    from labkit.labs import progress_bar, run_labs

    folder = tmp_path / "nbs"
    folder.mkdir()
    _write(folder / "01_long.ipynb", [new_code_cell(
        "import time\nfrom labkit.progress import Progress\n"
        "p = Progress(4, 'demo', delay_s=0, min_interval_s=0)\n"
        "for i in range(4):\n    time.sleep(1.2)\n    p.update(i + 1) if i < 3 else None\n"
        "time.sleep(1.2)\np.close()")])
    buf = io.StringIO()
    report = run_labs(["01"], folder=folder, out_dir=tmp_path / "out", as_is=True,
                      progress=lambda name: progress_bar(name, buf))
    assert report.ok, report.summary()
    lines = [x for x in re.split(r"[\r\n]", buf.getvalue()) if x.startswith("01_long")]
    clocks = {re.search(r"(\d\d:\d\d) elapsed", x).group(1) for x in lines if "cell 1/1" not in x}
    assert len(clocks) >= 3, lines  # the clock moved while the one cell ran
    assert any("demo 2/4 ETA" in x for x in lines), lines
    assert not list((tmp_path / "out").glob(".*progress.json"))  # the status file is cleaned up
