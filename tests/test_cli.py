"""The command line's error boundary: bad input is one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.cli import main

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "tests" / "fixtures" / "kagentbench_compat" / "eval.jsonl"
PREDS = REPO / "tests" / "fixtures" / "kagentbench_compat" / "pred.jsonl"


def one_error_line(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse
        code = exc.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert code == 2, (args, code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    good = json.loads(PREDS.read_text(encoding="utf-8").splitlines()[0])  # a valid prediction first
    files = {"deep": "[" * 200_000 + "]" * 200_000, "digits": '{"id": "a", "model_predict": ' + "7" * 5000 + "}",
             "deep_value": json.dumps(good)[:-1] + ', "x": ' + "[" * 200_000
             + "]" * 200_000 + "}"}
    out = {}
    for name, text in files.items():
        out[name] = tmp_path / f"{name}.jsonl"
        out[name].write_text(json.dumps(good) + "\n" + text + "\n", encoding="utf-8")
    out["folder"] = tmp_path / "a_folder.jsonl"
    out["folder"].mkdir()
    out["file"] = tmp_path / "a_file"
    out["file"].write_text("x")
    return out


def test_bad_files_given_to_score_are_one_line_errors(capsys: pytest.CaptureFixture[str],
                                                      bad_files: dict[str, Path]) -> None:
    preds = str(bad_files["deep"])
    assert "a_folder.jsonl: is a folder, not a file" in one_error_line(capsys, "score", str(bad_files["folder"]),
                                                                       str(PREDS))
    assert "a_folder.jsonl: is a folder" in one_error_line(capsys, "score", str(BENCH), str(bad_files["folder"]))
    assert "deep.jsonl:2: JSON nested too deeply" in one_error_line(capsys, "score", str(BENCH), preds)
    assert "deep_value.jsonl:2: JSON nested too deeply" in one_error_line(capsys, "score", str(BENCH),
                                                                        str(bad_files["deep_value"]))
    line = one_error_line(capsys, "score", str(BENCH), str(bad_files["digits"]))
    assert "digits.jsonl:2: unreadable JSON value" in line and "4300 digits" in line
    assert "nope.jsonl: file not found" in one_error_line(capsys, "score", str(BENCH), "nope.jsonl")


def test_bad_folders_are_one_line_errors(capsys: pytest.CaptureFixture[str], bad_files: dict[str, Path],
                                         tmp_path: Path) -> None:
    missing = str(tmp_path / "nonexistent")
    assert "no such folder" in one_error_line(capsys, "labs", "list", "--dir", missing)  # exited 0 before
    assert "no such folder" in one_error_line(capsys, "labs", "run", "--dir", missing)
    assert "no such folder" in one_error_line(capsys, "course", "build", "--dir", missing)
    assert "not a folder" in one_error_line(capsys, "labs", "list", "--dir", str(bad_files["file"]))
    for cmd in (["labs", "run", "01"], ["course", "build"]):
        line = one_error_line(capsys, *cmd, "--out", str(bad_files["file"]))
        assert "a_file: is a file, not a folder" in line
    assert bad_files["file"].read_text() == "x"
    from labkit.labs import list_notebooks
    from labkit.errors import LabkitError

    with pytest.raises(LabkitError, match="no such folder"):
        list_notebooks(missing)


def test_an_unexpected_error_is_one_line_too(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    def boom(*a: object, **kw: object) -> None:
        raise ValueError("something odd\nover two lines")

    monkeypatch.setattr("labkit.evaluate.scorer.score_files", boom)
    line = one_error_line(capsys, "score", str(BENCH), str(PREDS))
    assert "ValueError: something odd over two lines" in line and "LABKIT_TRACEBACK=1" in line
    monkeypatch.setattr("labkit.course.build_course", lambda *a, **kw: open(tmp_path / "no" / "such", "w"))
    assert "no/such: No such file or directory" in one_error_line(capsys, "course", "build")


def test_the_installed_entry_point_exits_2_with_one_line(bad_files: dict[str, Path]) -> None:
    done = subprocess.run([sys.executable, "-m", "labkit.cli", "labs", "list", "--dir", str(bad_files["file"])],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
