"""Student/instructor builds: markers, solutions and checkers match one to one; no student copy holds a solution."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from labkit.cli import main
from labkit.course import (build_course, exercise_ids, find_regions, instructor_version, load_solutions,
                           solution_leaks, validate)
from labkit.errors import DataFileError, LabkitError
from labkit.exercises import list_exercises

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))
TAUGHT = [p for p in NOTEBOOKS if p.stem[:2] in {"01", "02", "03", "05", "06"}]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_student_copy_has_no_solution_and_matches_solutions_and_checkers(notebook: Path) -> None:
    ids, solutions, problems = validate(notebook)
    assert not problems, problems
    registered = [e.id for e in list_exercises(notebook.stem[:2])]
    assert sorted(ids) == sorted(registered), "every registered checker has its exercise cell in the notebook"


@pytest.mark.parametrize("notebook", TAUGHT, ids=[p.stem for p in TAUGHT])
def test_each_notebook_has_two_exercises(notebook: Path) -> None:
    assert len(exercise_ids(notebook)) >= 2


def test_build_writes_both_versions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["course", "build", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for path in NOTEBOOKS:
        student = nbformat.read(str(tmp_path / "student" / path.name), as_version=4)
        teacher = nbformat.read(str(tmp_path / "instructor" / path.name), as_version=4)
        solutions = load_solutions(NB_DIR / "solutions" / f"{path.stem[:2]}.py")
        assert not solution_leaks(student, solutions)
        assert {ex for ex, _ in solution_leaks(teacher, solutions)} == set(solutions)
        assert path.stem in printed


# --- the mechanism on small synthetic notebooks ------------------------------------------------------------------

def _nb(*sources: str) -> nbformat.NotebookNode:
    return new_notebook(cells=[new_code_cell(s) for s in sources])


def test_regions_and_instructor_version() -> None:
    nb = _nb("x = 1", "# >>> 练习 07.1：写答案\nanswer = ...\n# <<< 练习 07.1\ncheck('07.1', answer)")
    assert [(r.exercise_id, r.cell, r.start, r.end) for r in find_regions(nb)] == [("07.1", 1, 0, 2)]
    out = instructor_version(nb, {"07.1": "answer = compute_it(x)\nanswer += 1"})
    assert out.cells[1].source.splitlines() == ["# >>> 练习 07.1（参考答案）", "answer = compute_it(x)",
                                                "answer += 1", "# <<< 练习 07.1", "check('07.1', answer)"]
    assert nb.cells[1].source.count("...") == 1  # the student notebook is not modified


@pytest.mark.parametrize("source, message", [
    ("# >>> 练习 07.1\nanswer = ...", "never closed"),
    ("answer = ...\n# <<< 练习 07.1", "without its opening"),
    ("# >>> 练习 07.1\n# >>> 练习 07.2\n# <<< 练习 07.2\n# <<< 练习 07.1", "opens inside"),
])
def test_bad_markers_are_named(source: str, message: str) -> None:
    with pytest.raises(DataFileError, match=message):
        find_regions(_nb(source), "x.ipynb")


def test_solutions_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "07.py"
    path.write_text("# header comment\nprint('stray')\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"07.py:2.*before the first"):
        load_solutions(path)
    path.write_text("# %% solution 07.1\na = 1\n# %% solution 07.1\na = 2\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"07.py:3.*twice"):
        load_solutions(path)
    path.write_text("# %% solution 08.1\na = 1\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="belongs in solutions/08.py"):
        load_solutions(path)


def test_a_leaked_solution_fails_the_build(tmp_path: Path) -> None:
    folder = tmp_path / "nbs"
    (folder / "solutions").mkdir(parents=True)
    leaked = "answer = sorted(items, key=len)"
    nbformat.write(_nb(f"# >>> 练习 01.1\n{leaked}\n# <<< 练习 01.1\ncheck('01.1', answer)"),
                   str(folder / "01_x.ipynb"))
    (folder / "solutions" / "01.py").write_text(f"# %% solution 01.1\n{leaked}\n", encoding="utf-8")
    with pytest.raises(LabkitError, match="contains solution 01.1"):
        build_course(tmp_path / "out", folder=folder)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_ipynb_matches_its_jupytext_source(notebook: Path) -> None:
    import jupytext

    source = notebook.with_suffix(".py")
    if not source.exists():
        pytest.skip("no paired .py")
    py = [(c.cell_type, c.source) for c in jupytext.read(str(source)).cells]
    nb = [(c.cell_type, c.source) for c in nbformat.read(str(notebook), as_version=4).cells]
    assert py == nb, f"regenerate: jupytext --update --to ipynb {source.relative_to(NB_DIR.parent)}"


def test_the_exercises_doc_quotes_real_cells() -> None:
    """Issue 21: docs/EXERCISES.md showed `check("03.2", my_sample, ...)`, which is exercise 03.1."""
    import re

    doc = (NB_DIR.parent / "docs" / "EXERCISES.md").read_text(encoding="utf-8")
    sources = {p.name[:2]: p.read_text(encoding="utf-8") for p in NB_DIR.glob("[0-9][0-9]_*.py")}
    solutions = {p.stem: p.read_text(encoding="utf-8") for p in (NB_DIR / "solutions").glob("[0-9][0-9].py")}
    calls = re.findall(r'check\("(\d\d)\.\d+", [^\n]*?\)', doc)
    assert calls
    for line in re.findall(r'(check\("\d\d\.\d+", [^\n]*?\))', doc):
        assert line in sources[line[7:9]], line
    for head in re.findall(r"^# ### (练习 \d\d\.\d+：[^\n]*)$", doc, re.M):
        assert f"# ### {head}" in sources[head[3:5]], head
    for sid, body in re.findall(r"^# %% solution (\d\d\.\d+)\n((?:(?!```)[^\n]+\n)+)", doc, re.M):
        assert f"# %% solution {sid}\n{body}" in solutions[sid[:2]], sid
