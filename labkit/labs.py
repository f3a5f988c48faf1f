"""Instructor runner: execute the course notebooks in order with papermill and write a pass/fail report.

By default each notebook's *instructor* version is run (the student copy in ``notebooks/`` with every exercise's
solution filled in, see :mod:`labkit.course`); every exercise check must pass. ``as_is=True`` runs the committed
copies unchanged (unanswered exercises are reported, not failed). Each notebook runs in its own folder as working
directory (``notebooks/``) with the parameters ``mode`` plus any extra ones; a failure is recorded (failing cell, its
first source lines, the error) and the next notebook still runs. The run folder holds the executed notebooks, the
instructor sources (``instructor/``), ``report.md``, ``report.html`` and ``report.json``.
"""

from __future__ import annotations

import html
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypedDict

import nbformat
import papermill as pm
from papermill.engines import NBClientEngine, papermill_engines

from labkit import course
from labkit.course import ExerciseRow
from labkit.errors import LabkitError, UnknownNameError
from labkit.paths import notebooks_dir, runs_dir
from labkit.progress import PROGRESS_ENV, read_status, status_text
from labkit.records import BenchmarkRecord

if TYPE_CHECKING:
    from labkit.evaluate.score_report import ScoreReport
    from labkit.train import TrainSettings

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
INJECTED_TAGS = {"injected-parameters", "papermill-error-cell-tag"}
SOURCE_HEAD_LINES = 5
ENGINE = "labkit-ticking"  # papermill engine name of TickingEngine


def ensure_dataset(mode: str, data_dir: str | Path | None = None, *,
                   needs: Sequence[str] = ("train.jsonl", "test_queries.jsonl", "stats.json")) -> Path:
    """The data stage's folder for ``mode`` (default ``runs/data/<mode>``), built as the course builds it when one
    of ``needs`` is missing there, so that every lab also runs on its own (in course order notebooks 03 and 04 have
    built it already): the Meta-Agent's kept templates (``runs/meta/<mode>/templates``, :func:`labkit.meta.pipeline.
    run_meta_agent` when there are none yet), then :func:`labkit.meta.pipeline.tuning_data` (the data stage given
    them). Stages never build each other's inputs; the labs do."""
    folder = Path(data_dir) if data_dir else runs_dir() / "data" / mode
    if not all((folder / name).exists() for name in needs):
        from labkit.meta.pipeline import run_meta_agent, tuning_data

        kept = runs_dir() / "meta" / mode / "templates"
        if not any(kept.glob("*.yaml")):
            kept = run_meta_agent(mode).templates_dir  # type: ignore[arg-type]
        tuning_data(mode, kept, folder)
    return folder


class RecipeFacts(TypedDict):
    """What one recipe's training cost (:func:`recipe_run`; a row of :func:`labkit.evaluate.report.recipe_table`)."""

    trainable: int                   # parameters the recipe updates
    steps: int
    minutes: float                   # summed step times
    s_per_step: float


def recipe_run(config: TrainSettings, records: Sequence[BenchmarkRecord], eval_dir: str | Path, *,
               device: str | None = None, max_new_tokens: int | None = None) -> tuple[ScoreReport, RecipeFacts]:
    """One arm of notebook 06's recipe experiment: train ``config`` (skipped when its output folder already holds a
    trained model) and evaluate the result on ``records``. Returns the score report and the training facts read
    from the run's own files."""
    import json as _json

    from labkit.evaluate import evaluate_model
    from labkit.jsonl import read_jsonl
    from labkit.llm import get_model
    from labkit.train import train

    out = Path(config.output_dir)
    if not (out / "model.safetensors").exists():
        train(config).raise_if_preempted()
    saved = _json.loads((out / "labkit_train_config.json").read_text(encoding="utf-8"))
    log = read_jsonl(out / "train_log.jsonl", tolerate_torn_tail=True)
    seconds = sum(float(r["s_per_step"]) for r in log)
    report, _ = evaluate_model(get_model(str(out), device=device), records, eval_dir, overwrite=True,
                               max_new_tokens=max_new_tokens)
    return report, {"trainable": saved["trainable_parameters"]["trainable"], "steps": len(log),
                    "minutes": round(seconds / 60, 2), "s_per_step": round(seconds / max(len(log), 1), 2)}


def list_notebooks(folder: str | Path | None = None) -> list[Path]:
    """The course notebooks ``NN_name.ipynb`` in ``folder`` (default: the repo's ``notebooks/``), in course order."""
    folder = Path(folder) if folder is not None else notebooks_dir()
    if not folder.is_dir():
        raise LabkitError(f"notebook folder {folder}: {'not a folder' if folder.exists() else 'no such folder'}")
    return sorted(p for p in folder.glob(NOTEBOOK_GLOB) if p.is_file())


def resolve_notebooks(names: Sequence[str], folder: str | Path | None = None) -> list[Path]:
    """Map user names (``01``, ``01_react``, ``01_react.ipynb`` or a path) to notebook files, keeping their order."""
    available = list_notebooks(folder)
    found: list[Path] = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.is_file():
            found.append(path.resolve())
            continue
        stem = path.stem if path.suffix == ".ipynb" else name
        matches = [p for p in available if p.stem == stem or p.stem.split("_", 1)[0] == stem]
        if len(matches) != 1:
            raise UnknownNameError("notebook", name, [p.stem for p in available])
        found.append(matches[0])
    return found


@dataclass
class CellFailure:
    """Where and why a notebook stopped."""

    cell_index: int | None  # index among the source notebook's cells (papermill's injected cells not counted)
    execution_count: int | None
    source_head: str
    ename: str
    evalue: str


@dataclass
class NotebookResult:
    name: str
    source: Path
    output: Path
    passed: bool
    duration_s: float
    failure: CellFailure | None = None
    exercises: list[ExerciseRow] = field(default_factory=list)  # in notebook order

    @property
    def exercises_ok(self) -> bool:
        return all(e["status"] == "passed" for e in self.exercises)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["source"], d["output"] = str(self.source), str(self.output)
        return d


@dataclass
class LabsReport:
    out_dir: Path
    mode: str
    parameters: dict[str, Any]
    results: list[NotebookResult] = field(default_factory=list)
    started: str = ""
    as_is: bool = False

    @property
    def failed(self) -> list[NotebookResult]:
        return [r for r in self.results if not r.passed]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = []
        for r in self.results:
            lines.append(f"{'PASS' if r.passed else 'FAIL'}  {r.name:<28} {r.duration_s:8.1f}s" + (
                f"  cell {_cell(r.failure)}: {r.failure.ename}: {_one_line(r.failure.evalue)}" if r.failure else ""))
            lines += [f"      练习 {e['id']:<6} {e['status']:<11} {e['title']}" for e in r.exercises]
        total = sum(r.duration_s for r in self.results)
        lines.append(f"{len(self.results) - len(self.failed)}/{len(self.results)} passed in {total:.1f}s; "
                     f"report: {self.out_dir / 'report.md'}")
        return "\n".join(lines)


def _cell(f: CellFailure) -> str:
    if f.cell_index is None:
        return "-"
    return f"{f.cell_index} (In [{f.execution_count}])" if f.execution_count is not None else str(f.cell_index)


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_failure(executed: str | Path) -> CellFailure | None:
    """Find the first cell with an error output in an executed notebook; None when every cell ran cleanly."""
    nb = nbformat.read(str(executed), as_version=4)
    source_index = 0
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & INJECTED_TAGS:
            continue
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "error":
                head = "\n".join(cell.source.splitlines()[:SOURCE_HEAD_LINES])
                return CellFailure(source_index, cell.get("execution_count"), head,
                                   out.get("ename", ""), out.get("evalue", ""))
        source_index += 1
    return None


class BarOptions(TypedDict):
    """The tqdm keyword arguments of papermill's cell bar (``progress_bar=`` of ``papermill.execute_notebook``)."""

    desc: str
    bar_format: str
    file: IO[str] | None             # None: stderr
    mininterval: float
    leave: bool


def progress_bar(name: str, file: IO[str] | None = None) -> BarOptions:
    """papermill's per-cell tqdm bar as ``<name>: cell n/m, mm:ss elapsed`` (``progress=`` of :func:`run_labs`); the
    clock is redrawn every second inside a long cell, and a running cell's own progress (items done / total, ETA:
    :class:`labkit.progress.Progress`) is appended, e.g. ``, 生成（base） 120/312 ETA 04:40``."""
    return {"desc": name, "bar_format": "{desc}: cell {n_fmt}/{total_fmt}, {elapsed} elapsed{postfix}",
            "file": file, "mininterval": 1.0, "leave": True}


TICK_S = 1.0


class TickingEngine(NBClientEngine):
    """papermill's nbclient engine plus a thread that redraws the cell bar every :data:`TICK_S` seconds (tqdm
    only redraws when a cell ends, so a 12-minute cell froze the clock) with the kernel's progress status
    (``status_file``: the kernel writes it through ``LABKIT_PROGRESS_FILE``)."""

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, status_file: str | None = None,
                                 **kwargs: Any) -> Any:
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(TICK_S):
                bar = nb_man.pbar
                if bar is None:
                    continue
                text = status_text(read_status(status_file)) if status_file else ""
                bar.set_postfix_str(text, refresh=False)
                bar.refresh()

        thread = threading.Thread(target=tick, name="labkit-progress", daemon=True)
        thread.start()
        try:
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)
        finally:
            stop.set()
            thread.join()


papermill_engines.register(ENGINE, TickingEngine)


def instructor_source(source: Path, target: Path) -> tuple[list[str], list[str]]:
    """Write the instructor version of ``source`` to ``target``; returns ``(exercise ids, problems)``."""
    nb = nbformat.read(str(source), as_version=4)
    ids, solutions, problems = course.validate(source, nb)
    if not problems:
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(course.instructor_version(nb, solutions, source), str(target))
    return ids, problems


def run_notebook(source: Path, output: Path, *, parameters: dict[str, Any], kernel: str = "python3",
                 timeout_s: float | None = None, cwd: Path | None = None, name: str | None = None,
                 progress: bool | BarOptions = False, exercise_ids: list[str] | None = None,
                 require_exercises: bool = False) -> NotebookResult:
    """Execute one notebook (cwd = its folder unless given); never raises for a failing notebook.

    ``exercise_ids``: the exercises the notebook holds; their displayed check results go into the result, and with
    ``require_exercises`` the notebook fails unless every one of them passed."""
    start = time.perf_counter()
    error: BaseException | None = None
    status = output.with_name(f".{output.stem}.progress.json")  # the kernel's Progress lines, read by the bar
    status.unlink(missing_ok=True)
    saved = os.environ.get(PROGRESS_ENV)
    os.environ[PROGRESS_ENV] = str(status)  # the kernel papermill starts inherits it
    try:
        pm.execute_notebook(str(source), str(output), parameters=parameters, kernel_name=kernel,
                            language="python", cwd=str(cwd or source.parent), progress_bar=progress,
                            log_output=False, execution_timeout=timeout_s, engine_name=ENGINE,
                            status_file=str(status) if progress else None)
    except Exception as exc:  # papermill errors, kernel death, timeouts, unreadable notebooks
        error = exc
    finally:
        if saved is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = saved
        status.unlink(missing_ok=True)
    duration = time.perf_counter() - start
    failure = read_failure(output) if output.exists() else None
    if error is not None and failure is None:
        failure = CellFailure(getattr(error, "cell_index", None), getattr(error, "exec_count", None),
                              "\n".join(str(getattr(error, "source", "")).splitlines()[:SOURCE_HEAD_LINES]),
                              getattr(error, "ename", type(error).__name__),
                              getattr(error, "evalue", str(error)))
    results = course.exercise_results(output) if output.exists() else {}
    ids = exercise_ids if exercise_ids is not None else list(results)
    exercises = course.exercise_table(ids, results)
    ok = failure is None and (not require_exercises or all(e["status"] == "passed" for e in exercises))
    return NotebookResult(name or source.stem, source, output, ok, duration, failure, exercises)


def run_labs(notebooks: Iterable[str | Path] | None = None, *, mode: str = "smoke",
             out_dir: str | Path | None = None, parameters: dict[str, Any] | None = None,
             folder: str | Path | None = None, kernel: str = "python3", timeout_s: float | None = None,
             on_result: Callable[[NotebookResult], None] | None = None, as_is: bool = False,
             progress: bool | Callable[[str], BarOptions] = False) -> LabsReport:
    """Run notebooks in course order into ``out_dir`` (default ``runs/labs/<timestamp>/``) and write the reports.

    Instructor versions by default (every exercise check must pass); ``as_is=True`` runs the given files unchanged.
    ``progress``: True for papermill's cell bar, or a function ``name -> BarOptions`` (see :func:`progress_bar`)."""
    paths = (resolve_notebooks([str(n) for n in notebooks], folder) if notebooks is not None
             else list_notebooks(folder))
    if not paths:
        raise LabkitError(f"no notebooks matching {NOTEBOOK_GLOB} in {Path(folder or notebooks_dir())}")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(out_dir) if out_dir is not None else runs_dir() / "labs" / stamp
    out.mkdir(parents=True, exist_ok=True)
    params = {"mode": mode, **(parameters or {})}
    report = LabsReport(out, mode, params, started=datetime.now().isoformat(timespec="seconds"))
    report.as_is = as_is
    for path in paths:
        bar = progress(path.stem) if callable(progress) else progress
        if as_is:
            result = run_notebook(path, out / path.name, parameters=params, kernel=kernel, timeout_s=timeout_s,
                                  progress=bar, exercise_ids=_ids_or_none(path))
        else:
            ids, problems = instructor_source(path, out / "instructor" / path.name)
            if problems:
                result = NotebookResult(path.stem, path, out / path.name, False, 0.0, CellFailure(
                    None, None, "", "CourseBuildError", "; ".join(problems)))
            else:
                result = run_notebook(out / "instructor" / path.name, out / path.name, parameters=params,
                                      kernel=kernel, timeout_s=timeout_s, cwd=path.parent, name=path.stem,
                                      progress=bar, exercise_ids=ids, require_exercises=True)
        report.results.append(result)
        write_reports(report)  # after each notebook, so an interrupted run still leaves a report
        if on_result is not None:
            on_result(result)
    return report


def _ids_or_none(path: Path) -> list[str] | None:
    try:
        return course.exercise_ids(path)
    except (LabkitError, OSError, ValueError):
        return None


def render_markdown(report: LabsReport) -> str:
    lines = [f"# labkit labs report ({report.started})", "",
             f"- mode: `{report.mode}`", f"- parameters: `{json.dumps(report.parameters, ensure_ascii=False)}`",
             f"- notebooks: {'as committed (student copies)' if report.as_is else 'instructor versions'}",
             f"- result: **{len(report.results) - len(report.failed)}/{len(report.results)} passed**", "",
             "| notebook | result | duration (s) | exercises | failing cell | error |", "|---|---|---|---|---|---|"]
    for r in report.results:
        f = r.failure
        cell = "" if f is None else _cell(f)
        err = "" if f is None else f"`{f.ename}`: " + _one_line(f.evalue).replace("|", "\\|")
        ex = ", ".join(f"{e['id']} {e['status']}" for e in r.exercises) or "-"
        lines.append(f"| {r.name} | {'passed' if r.passed else 'FAILED'} | {r.duration_s:.1f} | {ex} | {cell} "
                     f"| {err} |")
    lines += ["", "## Exercises", "", "| notebook | exercise | check | title |", "|---|---|---|---|"]
    lines += [f"| {r.name} | {e['id']} | {e['status']} | {e['title']} |" for r in report.results for e in r.exercises]
    for r in report.failed:
        f = r.failure
        lines += ["", f"## {r.name}: failed", ""]
        if f is None:
            bad = [f"{e['id']} ({e['status']})" for e in r.exercises if e["status"] != "passed"]
            lines += [f"every cell ran, but these exercise checks did not pass: {', '.join(bad)}", ""]
        else:
            lines += [f"cell {_cell(f)} — `{f.ename}`: {f.evalue}", "", "```python", f.source_head, "```", ""]
        lines.append(f"executed notebook: `{r.output}`")
    return "\n".join(lines) + "\n"


def render_html(report: LabsReport) -> str:
    e = html.escape
    rows = []
    for r in report.results:
        f = r.failure
        detail = "" if f is None else (f"<b>{e(f.ename)}</b>: {e(f.evalue)}"
                                       f"<pre>{e(f.source_head)}</pre>")
        color = "#e6ffed" if r.passed else "#ffeef0"
        ex = "<br>".join(f"{e(x['id'])} {e(x['status'])} — {e(x['title'])}" for x in r.exercises) or "-"
        rows.append(f"<tr style='background:{color}'><td>{e(r.name)}</td>"
                    f"<td>{'passed' if r.passed else 'FAILED'}</td><td>{r.duration_s:.1f}</td><td>{ex}</td>"
                    f"<td>{'' if f is None else e(_cell(f))}</td><td>{detail}</td></tr>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>labkit labs report</title></head><body>"
            f"<h1>labkit labs report ({e(report.started)})</h1>"
            f"<p>mode: <code>{e(report.mode)}</code>; parameters: "
            f"<code>{e(json.dumps(report.parameters, ensure_ascii=False))}</code>; "
            f"<b>{len(report.results) - len(report.failed)}/{len(report.results)} passed</b></p>"
            "<table border='1' cellpadding='4' style='border-collapse:collapse'>"
            "<tr><th>notebook</th><th>result</th><th>duration (s)</th><th>exercises</th><th>failing cell</th>"
            "<th>error</th></tr>"
            + "".join(rows) + "</table></body></html>\n")


def write_reports(report: LabsReport) -> tuple[Path, Path]:
    md, page = report.out_dir / "report.md", report.out_dir / "report.html"
    md.write_text(render_markdown(report), encoding="utf-8")
    page.write_text(render_html(report), encoding="utf-8")
    (report.out_dir / "report.json").write_text(
        json.dumps({"mode": report.mode, "parameters": report.parameters, "started": report.started,
                    "as_is": report.as_is,
                    "results": [r.to_dict() for r in report.results]}, ensure_ascii=False, indent=2),
        encoding="utf-8")
    return md, page
