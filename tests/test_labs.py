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


def test_ensure_dataset_builds_only_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.data import pipeline
    from labkit.labs import ensure_dataset

    built: list[tuple[str, Path]] = []
    monkeypatch.setattr(pipeline, "build_dataset", lambda mode, out_dir, **kw: built.append((mode, out_dir)))
    folder = tmp_path / "d"
    assert ensure_dataset("smoke", folder) == folder and built == [("smoke", folder)]
    folder.mkdir()
    (folder / "train.jsonl").write_text("")
    assert ensure_dataset("smoke", folder, needs=["train.jsonl"]) == folder and len(built) == 1
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path / "runs"))
    assert ensure_dataset("course") == tmp_path / "runs" / "data" / "course" and len(built) == 2
