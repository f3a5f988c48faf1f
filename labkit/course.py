"""Student and instructor notebooks from one source (see ``docs/EXERCISES.md``).

``notebooks/NN_name.ipynb`` is the student version: each exercise's answer region, fenced by ``# >>> 练习 NN.k`` and
``# <<< 练习 NN.k``, holds a placeholder. ``notebooks/solutions/NN.py`` holds the solutions, in sections headed
``# %% solution NN.k``. :func:`build_course` writes both versions; :func:`exercise_results` reads the checks' results
out of an executed notebook (the ``application/vnd.labkit.check+json`` part of each displayed CheckResult).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import nbformat

from labkit.errors import DataFileError, LabkitError
from labkit.exercises import MIME, CheckRecord, list_exercises
from labkit.paths import notebooks_dir, runs_dir

OPEN_RE = re.compile(r"^# >>> 练习 (\d\d\.\d+)(?!\d)")
CLOSE_RE = re.compile(r"^# <<< 练习 (\d\d\.\d+)\s*$")
SOLUTION_RE = re.compile(r"^# %% solution (\S+)\s*$")
SOLUTION_HEADER = "# >>> 练习 {id}（参考答案）"
LEAK_MIN_CHARS = 12  # a solution line this long (stripped) found in a student copy counts as a leak


def notebook_number(path: str | Path) -> str:
    return Path(path).stem.split("_", 1)[0]


def solutions_path(notebook: str | Path) -> Path:
    """``notebooks/solutions/NN.py`` next to notebook ``NN_name.ipynb``."""
    notebook = Path(notebook)
    return notebook.parent / "solutions" / f"{notebook_number(notebook)}.py"


def load_solutions(path: str | Path) -> dict[str, str]:
    """Solution code by exercise id from one solutions file; a bad file raises DataFileError naming the line."""
    path = Path(path)
    if not path.exists():
        return {}
    out: dict[str, list[str]] = {}
    current: str | None = None
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = SOLUTION_RE.match(line)
        if m:
            current = m.group(1)
            if not re.fullmatch(r"\d\d\.\d+", current):
                raise DataFileError(path, f"solution id must look like '03.2', got {current!r}", line=n)
            if current in out:
                raise DataFileError(path, f"solution {current} appears twice", line=n)
            if current.split(".")[0] != path.stem:
                raise DataFileError(path, f"solution {current} belongs in solutions/{current[:2]}.py", line=n)
            out[current] = []
        elif current is None:
            if line.strip() and not line.lstrip().startswith("#"):
                raise DataFileError(path, "code before the first '# %% solution NN.k' header", line=n)
        else:
            out[current].append(line)
    return {k: "\n".join(v).strip("\n") for k, v in out.items()}


@dataclass
class Region:
    exercise_id: str
    cell: int   # index in nb.cells
    start: int  # line index of the opening marker
    end: int    # line index of the closing marker


def find_regions(nb: Any, path: str | Path = "<notebook>") -> list[Region]:
    """Every exercise answer region, in order; unpaired or nested markers raise DataFileError."""
    regions: list[Region] = []
    for ci, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        open_at: tuple[str, int] | None = None
        for li, line in enumerate(lines):
            mo, mc = OPEN_RE.match(line), CLOSE_RE.match(line)
            if mo:
                if open_at is not None:
                    raise DataFileError(path, f"cell {ci}: marker for {mo.group(1)} opens inside {open_at[0]}")
                open_at = (mo.group(1), li)
            elif mc:
                if open_at is None or open_at[0] != mc.group(1):
                    raise DataFileError(path, f"cell {ci}: closing marker for {mc.group(1)} without its opening one")
                regions.append(Region(open_at[0], ci, open_at[1], li))
                open_at = None
        if open_at is not None:
            raise DataFileError(path, f"cell {ci}: exercise {open_at[0]} is never closed ('# <<< 练习 {open_at[0]}')")
    ids = [r.exercise_id for r in regions]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise DataFileError(path, f"exercise ids used twice: {dup}")
    return regions


def exercise_ids(notebook: str | Path) -> list[str]:
    nb = nbformat.read(str(notebook), as_version=4)
    return [r.exercise_id for r in find_regions(nb, notebook)]


def _significant(line: str) -> str:
    s = line.strip()
    return "" if not s or s.startswith("#") or len(s) < LEAK_MIN_CHARS else s


def solution_leaks(nb: Any, solutions: dict[str, str]) -> list[tuple[str, str]]:
    """``(exercise id, line)`` for each solution line that also appears in a code cell of ``nb``."""
    code_lines = {s for c in nb.cells if c.cell_type == "code" for s in map(str.strip, c.source.splitlines())}
    return [(ex, _significant(line)) for ex, body in solutions.items() for line in body.splitlines()
            if _significant(line) and _significant(line) in code_lines]


def instructor_version(nb: Any, solutions: dict[str, str], path: str | Path = "<notebook>") -> Any:
    """A copy of the student notebook with each placeholder replaced by its solution."""
    out = copy.deepcopy(nb)
    for region in reversed(find_regions(nb, path)):
        cell = out.cells[region.cell]
        lines = cell.source.splitlines()
        body = solutions[region.exercise_id].splitlines()
        lines[region.start: region.end] = [SOLUTION_HEADER.format(id=region.exercise_id), *body]
        cell.source = "\n".join(lines)
    return out


@dataclass
class NotebookExercises:
    name: str
    student: Path
    instructor: Path
    exercises: list[str] = field(default_factory=list)


def validate(notebook: str | Path, nb: Any | None = None) -> tuple[list[str], dict[str, str], list[str]]:
    """``(ids, solutions, problems)`` for one student notebook: every marker has a solution and a checker, every
    solution a marker, and no solution line is in the student copy."""
    notebook = Path(notebook)
    nb = nb if nb is not None else nbformat.read(str(notebook), as_version=4)
    problems: list[str] = []
    try:
        ids = [r.exercise_id for r in find_regions(nb, notebook)]
    except DataFileError as exc:
        return [], {}, [str(exc)]
    sol_path = solutions_path(notebook)
    try:
        solutions = load_solutions(sol_path)
    except DataFileError as exc:
        return ids, {}, [str(exc)]
    registered = {e.id for e in list_exercises(notebook_number(notebook))}
    for ex in ids:
        if ex.split(".")[0] != notebook_number(notebook):
            problems.append(f"{notebook.name}: exercise {ex} is not numbered for this notebook")
        if ex not in solutions:
            problems.append(f"{notebook.name}: exercise {ex} has no solution in {sol_path}")
        if ex not in registered:
            problems.append(f"{notebook.name}: exercise {ex} has no checker (labkit/exercises/nb{ex[:2]}.py)")
    for ex in solutions:
        if ex not in ids:
            problems.append(f"{sol_path}: solution {ex} has no '# >>> 练习 {ex}' region in {notebook.name}")
    for ex, line in solution_leaks(nb, solutions):
        problems.append(f"{notebook.name}: the student copy contains solution {ex}'s line {line!r}")
    return ids, solutions, problems


def build_course(out_dir: str | Path | None = None, notebooks: Iterable[str | Path] | None = None, *,
                 folder: str | Path | None = None) -> list[NotebookExercises]:
    """Write ``out/student/`` and ``out/instructor/`` (default ``runs/course/``); raise LabkitError on any problem."""
    folder = Path(folder) if folder is not None else notebooks_dir()
    paths = [Path(p) for p in notebooks] if notebooks is not None else sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    out = Path(out_dir) if out_dir is not None else runs_dir() / "course"
    built, problems = [], []
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)
        ids, solutions, found = validate(path, nb)
        problems += found
        if found:
            continue
        student, instructor = out / "student" / path.name, out / "instructor" / path.name
        for target, version in ((student, nb), (instructor, instructor_version(nb, solutions, path))):
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(version, str(target))
        built.append(NotebookExercises(path.stem, student, instructor, ids))
    if problems:
        raise LabkitError("course build failed:\n  " + "\n  ".join(problems))
    return built


class ExerciseRow(TypedDict):
    """One exercise of a run's report (``labkit.labs``: ``report.json``'s ``exercises``)."""

    id: str
    title: str
    status: str                      # passed | failed | unanswered | no result (its check never displayed)


def exercise_results(executed: str | Path | Any) -> dict[str, CheckRecord]:
    """The last displayed CheckResult per exercise id in an executed notebook (its :class:`~labkit.exercises.
    CheckRecord`)."""
    nb = executed if hasattr(executed, "cells") else nbformat.read(str(executed), as_version=4)
    results: dict[str, CheckRecord] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = out.get("data", {}).get(MIME)
            if isinstance(data, dict) and "id" in data:
                results[data["id"]] = data
    return results


def exercise_table(ids: Sequence[str], results: dict[str, CheckRecord]) -> list[ExerciseRow]:
    """One row per expected exercise: id, title, status (``no result`` when its check never displayed)."""
    titles = {e.id: e.title for e in list_exercises()}
    return [{"id": ex, "title": results.get(ex, {}).get("title") or titles.get(ex, ""),
             "status": results.get(ex, {}).get("status", "no result")} for ex in ids]
