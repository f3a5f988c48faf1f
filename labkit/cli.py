"""The ``labkit`` command line: ``labkit labs list|run`` (the instructor runner), ``labkit course build|list``
(student and instructor notebooks, the exercises) and ``labkit score BENCH PREDS [--compat kagentbench]
[--switch NAME=on|off ...]`` (KAgentBench scores).

Errors are one line on stderr and exit code 2, never a traceback: bad arguments (argparse; ``--dir`` must be an
existing folder, ``--out`` must not be an existing file), bad files (:class:`~labkit.errors.DataFileError` from the
readers, naming file and line), a file-system error, or anything else a command raises (``LABKIT_TRACEBACK=1``
shows the traceback instead).
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError


def parse_value(text: str) -> Any:
    """Read a ``-p`` value as a Python literal (``3``, ``0.5``, ``True``, ``[1, 2]``) or else keep it a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def existing_folder(text: str) -> Path:
    """An argparse type: a folder that exists (``--dir``)."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {'not a folder' if path.exists() else 'no such folder'}")
    return path


def output_folder(text: str) -> Path:
    """An argparse type: a folder to write into, existing or not, but not an existing file (``--out``)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file, not a folder")
    return path


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): ``labkit ...: error: <what> (see <prog> -h)``, exit 2."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} -h)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="labkit", description="Agent-Tuning lab kit.")
    sub = parser.add_subparsers(dest="command", required=True)
    labs = sub.add_parser("labs", help="run or list the course notebooks").add_subparsers(dest="action",
                                                                                      required=True)
    ls = labs.add_parser("list", help="list the course notebooks in order")
    ls.add_argument("--dir", type=existing_folder, default=None,
                    help="notebook folder (default: the repo's notebooks/)")
    run = labs.add_parser("run", help="execute notebooks with papermill and write report.md / report.html")
    run.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                     help="01, 01_react, 01_react.ipynb or a path (default: all, in order)")
    run.add_argument("--mode", choices=["smoke", "course"], default="smoke")
    run.add_argument("--out", type=output_folder, default=None,
                     help="output folder (default: runs/labs/<timestamp>/)")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                     help="extra notebook parameter (repeatable)")
    run.add_argument("--dir", type=existing_folder, default=None,
                     help="notebook folder (default: the repo's notebooks/)")
    run.add_argument("--kernel", default="python3")
    run.add_argument("--timeout", type=float, default=None, help="per-cell timeout in seconds")
    run.add_argument("--as-is", action="store_true",
                     help="run the notebooks as committed (student copies) instead of their instructor versions")
    run.add_argument("--no-progress", action="store_true", help="no 'cell n/m, elapsed' line while a notebook runs")
    crs = sub.add_parser("course", help="student / instructor notebooks and their exercises").add_subparsers(
        dest="action", required=True)
    build = crs.add_parser("build", help="write DIR/student/*.ipynb (no solutions) and DIR/instructor/*.ipynb")
    build.add_argument("--out", type=output_folder, default=None, help="output folder (default: runs/course/)")
    build.add_argument("--dir", type=existing_folder, default=None,
                       help="notebook folder (default: the repo's notebooks/)")
    crs.add_parser("list", help="list every registered exercise with its note section")
    score = sub.add_parser("score", help="score a KAgentBench-layout predictions file; prints the official line "
                                         "'plan : X, tooluse : X, reflextion : X, conclusion : X, profile : X, "
                                         "overall : X'")
    score.add_argument("benchmark", help="benchmark JSONL (labkit's or the public benchmark_eval.jsonl)")
    score.add_argument("predictions", help="predictions JSONL (benchmark records + model_predict)")
    score.add_argument("--compat", choices=["kagentbench"], default=None,
                       help="reproduce the official benchmark_eval.py numbers exactly (default: labkit's own mode)")
    score.add_argument("--switch", action="append", default=[], metavar="NAME=on|off",
                       help="turn one difference from the official script on or off (repeatable; names: "
                            "labkit.evaluate.differences.DIFFERENCES)")
    score.set_defaults(action="score")
    return parser


def _labs_list(args: argparse.Namespace) -> int:
    from labkit.labs import list_notebooks

    for path in list_notebooks(args.dir):
        print(path.stem)
    return 0


def _labs_run(args: argparse.Namespace) -> int:
    from labkit.labs import NotebookResult, progress_bar, run_labs

    def done(r: NotebookResult) -> None:
        print(f"{'PASS' if r.passed else 'FAIL'}  {r.name}  ({r.duration_s:.1f}s)", flush=True)
        for e in r.exercises:
            print(f"      练习 {e['id']:<6} {e['status']:<11} {e['title']}", flush=True)

    params = {key: parse_value(value) for key, value in args.parameter}
    report = run_labs(args.notebooks or None, mode=args.mode, out_dir=args.out, parameters=params,
                      folder=args.dir, kernel=args.kernel, timeout_s=args.timeout, on_result=done,
                      as_is=args.as_is,
                      progress=False if args.no_progress else (lambda name: progress_bar(name, sys.stderr)))
    print()
    print(report.summary())
    return 0 if report.ok else 1


def _course_build(args: argparse.Namespace) -> int:
    from labkit.course import build_course

    built = build_course(args.out, folder=args.dir)
    for nb in built:
        print(f"{nb.name}: {len(nb.exercises)} exercises ({', '.join(nb.exercises) or '-'})")
    if built:
        print(f"student copies: {built[0].student.parent}\ninstructor copies: {built[0].instructor.parent}")
    return 0


def _course_list(args: argparse.Namespace) -> int:
    from labkit.exercises import list_exercises

    for ex in list_exercises():
        print(f"{ex.id:<6} {ex.title}  [{ex.note_section}]")
    return 0


def _score(args: argparse.Namespace) -> int:
    import warnings

    from labkit.evaluate.differences import ScoringOptions
    from labkit.evaluate.kagentbench import CRASH_POINTS
    from labkit.evaluate.scorer import score_files

    options = ScoringOptions.official() if args.compat else ScoringOptions.labkit()
    switches = {}
    for item in args.switch:
        name, _, value = item.partition("=")
        if value not in ("on", "off"):
            print(f"labkit: error: --switch expects NAME=on or NAME=off, got {item!r}", file=sys.stderr)
            return 2
        switches[name] = value == "on"
    options = options.with_(**switches)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # summarised below instead
        report = score_files(args.benchmark, args.predictions, options=options)
    print(report.official_line())
    crashes = report.crash_counts()
    if crashes:
        print(f"note: {sum(crashes.values())} places where the official script would stop with an error were "
              f"scored 0: " + ", ".join(f"{code} {n} ({CRASH_POINTS[code][0]})" for code, n in crashes.items()),
              file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {("labs", "list"): _labs_list, ("labs", "run"): _labs_run, ("course", "build"): _course_build,
                ("course", "list"): _course_list, ("score", "score"): _score}
    try:
        return handlers[(args.command, args.action)](args)
    except Exception as exc:  # the error boundary: one line, exit 2 (LABKIT_TRACEBACK=1: the traceback)
        if os.environ.get("LABKIT_TRACEBACK"):
            raise
        print(f"labkit: error: {error_line(exc)}", file=sys.stderr)
        return 2


def error_line(exc: BaseException) -> str:
    """One line for the user: a labkit error as it is, a file-system error with its path, anything else typed."""
    if isinstance(exc, LabkitError):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    elif isinstance(exc, RecursionError):
        text = "input nested too deeply to process"
    else:
        text = f"{type(exc).__name__}: {exc} (unexpected; LABKIT_TRACEBACK=1 shows where)"
    text = " ".join(text.split())
    return text if len(text) <= 2000 else text[:2000] + " …"


if __name__ == "__main__":
    sys.exit(main())
