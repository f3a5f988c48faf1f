"""Instructor runner: execute the course notebooks in order with papermill and write a pass/fail report.

Each notebook runs in its own folder as working directory (``notebooks/``) with the parameters ``mode`` plus any
extra ones; a failure is recorded (failing cell, its first source lines, the error) and the next notebook still runs.
The run folder holds the executed notebooks, ``report.md`` and ``report.html``.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm

from labkit.errors import LabkitError, UnknownNameError
from labkit.paths import REPO_ROOT, runs_dir

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
INJECTED_TAGS = {"injected-parameters", "papermill-error-cell-tag"}
SOURCE_HEAD_LINES = 5


def ensure_dataset(mode: str, data_dir: str | Path | None = None, *,
                   needs: Sequence[str] = ("train.jsonl", "test_queries.jsonl", "stats.json")) -> Path:
    """The data stage's folder for ``mode`` (default ``runs/data/<mode>``), built with
    :func:`labkit.data.build_dataset` when one of ``needs`` is missing there, so that every lab also runs on its own
    (in course order notebook 03 has built it already). Stages never build each other's inputs; the labs do."""
    folder = Path(data_dir) if data_dir else runs_dir() / "data" / mode
    if not all((folder / name).exists() for name in needs):
        from labkit.data.pipeline import build_dataset

        build_dataset(mode, out_dir=folder, progress=False)  # type: ignore[arg-type]
    return folder


def notebooks_dir() -> Path:
    return REPO_ROOT / "notebooks"


def list_notebooks(folder: str | Path | None = None) -> list[Path]:
    """The course notebooks ``NN_name.ipynb`` in ``folder`` (default: the repo's ``notebooks/``), in course order."""
    folder = Path(folder) if folder is not None else notebooks_dir()
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

    @property
    def failed(self) -> list[NotebookResult]:
        return [r for r in self.results if not r.passed]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [f"{'PASS' if r.passed else 'FAIL'}  {r.name:<28} {r.duration_s:8.1f}s" + (
            f"  cell {_cell(r.failure)}: {r.failure.ename}: {_one_line(r.failure.evalue)}" if r.failure else "")
            for r in self.results]
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


def run_notebook(source: Path, output: Path, *, parameters: dict[str, Any], kernel: str = "python3",
                 timeout_s: float | None = None) -> NotebookResult:
    """Execute one notebook (cwd = its folder); never raises for a failing notebook."""
    start = time.perf_counter()
    error: BaseException | None = None
    try:
        pm.execute_notebook(str(source), str(output), parameters=parameters, kernel_name=kernel,
                            language="python", cwd=str(source.parent), progress_bar=False, log_output=False,
                            execution_timeout=timeout_s)
    except Exception as exc:  # papermill errors, kernel death, timeouts, unreadable notebooks
        error = exc
    duration = time.perf_counter() - start
    failure = read_failure(output) if output.exists() else None
    if error is not None and failure is None:
        failure = CellFailure(getattr(error, "cell_index", None), getattr(error, "exec_count", None),
                              "\n".join(str(getattr(error, "source", "")).splitlines()[:SOURCE_HEAD_LINES]),
                              getattr(error, "ename", type(error).__name__),
                              getattr(error, "evalue", str(error)))
    return NotebookResult(source.stem, source, output, failure is None, duration, failure)


def run_labs(notebooks: Iterable[str | Path] | None = None, *, mode: str = "smoke",
             out_dir: str | Path | None = None, parameters: dict[str, Any] | None = None,
             folder: str | Path | None = None, kernel: str = "python3", timeout_s: float | None = None,
             on_result: Callable[[NotebookResult], None] | None = None) -> LabsReport:
    """Run notebooks in course order into ``out_dir`` (default ``runs/labs/<timestamp>/``) and write the reports."""
    paths = (resolve_notebooks([str(n) for n in notebooks], folder) if notebooks is not None
             else list_notebooks(folder))
    if not paths:
        raise LabkitError(f"no notebooks matching {NOTEBOOK_GLOB} in {Path(folder or notebooks_dir())}")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(out_dir) if out_dir is not None else runs_dir() / "labs" / stamp
    out.mkdir(parents=True, exist_ok=True)
    params = {"mode": mode, **(parameters or {})}
    report = LabsReport(out, mode, params, started=datetime.now().isoformat(timespec="seconds"))
    for path in paths:
        result = run_notebook(path, out / path.name, parameters=params, kernel=kernel, timeout_s=timeout_s)
        report.results.append(result)
        write_reports(report)  # after each notebook, so an interrupted run still leaves a report
        if on_result is not None:
            on_result(result)
    return report


def render_markdown(report: LabsReport) -> str:
    lines = [f"# labkit labs report ({report.started})", "",
             f"- mode: `{report.mode}`", f"- parameters: `{json.dumps(report.parameters, ensure_ascii=False)}`",
             f"- result: **{len(report.results) - len(report.failed)}/{len(report.results)} passed**", "",
             "| notebook | result | duration (s) | failing cell | error |", "|---|---|---|---|---|"]
    for r in report.results:
        f = r.failure
        cell = "" if f is None else _cell(f)
        err = "" if f is None else f"`{f.ename}`: " + _one_line(f.evalue).replace("|", "\\|")
        lines.append(f"| {r.name} | {'passed' if r.passed else 'FAILED'} | {r.duration_s:.1f} | {cell} | {err} |")
    for r in report.failed:
        f = r.failure
        assert f is not None
        lines += ["", f"## {r.name}: failed", "",
                  f"cell {_cell(f)} — `{f.ename}`: {f.evalue}", "",
                  "```python", f.source_head, "```", "", f"executed notebook: `{r.output}`"]
    return "\n".join(lines) + "\n"


def render_html(report: LabsReport) -> str:
    e = html.escape
    rows = []
    for r in report.results:
        f = r.failure
        detail = "" if f is None else (f"<b>{e(f.ename)}</b>: {e(f.evalue)}"
                                       f"<pre>{e(f.source_head)}</pre>")
        color = "#e6ffed" if r.passed else "#ffeef0"
        rows.append(f"<tr style='background:{color}'><td>{e(r.name)}</td>"
                    f"<td>{'passed' if r.passed else 'FAILED'}</td><td>{r.duration_s:.1f}</td>"
                    f"<td>{'' if f is None else e(_cell(f))}</td><td>{detail}</td></tr>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>labkit labs report</title></head><body>"
            f"<h1>labkit labs report ({e(report.started)})</h1>"
            f"<p>mode: <code>{e(report.mode)}</code>; parameters: "
            f"<code>{e(json.dumps(report.parameters, ensure_ascii=False))}</code>; "
            f"<b>{len(report.results) - len(report.failed)}/{len(report.results)} passed</b></p>"
            "<table border='1' cellpadding='4' style='border-collapse:collapse'>"
            "<tr><th>notebook</th><th>result</th><th>duration (s)</th><th>failing cell</th><th>error</th></tr>"
            + "".join(rows) + "</table></body></html>\n")


def write_reports(report: LabsReport) -> tuple[Path, Path]:
    md, page = report.out_dir / "report.md", report.out_dir / "report.html"
    md.write_text(render_markdown(report), encoding="utf-8")
    page.write_text(render_html(report), encoding="utf-8")
    (report.out_dir / "report.json").write_text(
        json.dumps({"mode": report.mode, "parameters": report.parameters, "started": report.started,
                    "results": [r.to_dict() for r in report.results]}, ensure_ascii=False, indent=2),
        encoding="utf-8")
    return md, page
