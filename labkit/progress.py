"""Progress of a long step (generation, training): items done / total, elapsed time and an ETA, shown where the
step runs and reported to the instructor runner.

``Progress(total, what)`` is called as ``progress(done)`` or ``progress(done, total)`` (the ``progress=`` callback
of :func:`labkit.evaluate.runner.cached_generate`) and ``close()``d at the end:

Nothing is shown for a step that ends within ``delay_s`` (2 s). After that:

* in a Jupyter kernel it keeps **one line** of the cell's output up to date (an IPython display handle, at most once
  a second): ``生成 gemma-3-270m：120/312，已用 03:05，预计还需 04:40``;
* outside a kernel (scripts, tests) it prints that line to stderr at most every ``print_every_s`` seconds;
* when the environment variable ``LABKIT_PROGRESS_FILE`` names a file (``labkit labs run`` sets it for the kernels it
  starts), the same state is written there as JSON (atomic replace), so the runner's line can show what the cell
  is doing (:func:`read_status`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TypedDict

PROGRESS_ENV = "LABKIT_PROGRESS_FILE"


class ProgressStatus(TypedDict):
    """A step's state as :class:`Progress` writes it to the status file (JSON) and :func:`read_status` reads it."""

    what: str
    done: int
    total: int
    elapsed_s: float
    eta_s: float | None              # None before the first item
    finished: bool                   # closed
    pid: int
    time: float                      # time.time() of the write


def clock(seconds: float) -> str:
    """``mm:ss`` (``h:mm:ss`` from an hour on), like tqdm's elapsed field."""
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Progress:
    """Items done out of ``total`` for one long step named ``what`` (see the module docstring)."""

    def __init__(self, total: int, what: str, *, unit: str = "", min_interval_s: float = 1.0,
                 print_every_s: float = 30.0, delay_s: float = 2.0, status_file: str | Path | None = None,
                 done_before: int = 0):
        self.total, self.what, self.unit = int(total), what, unit
        self.done = self.done_before = int(done_before)  # items done by an earlier run (resumed): not in the rate
        self.start = time.perf_counter()
        self.min_interval_s, self.print_every_s, self.delay_s = min_interval_s, print_every_s, delay_s
        path = status_file if status_file is not None else os.environ.get(PROGRESS_ENV)
        self.status_file = Path(path) if path else None
        self.kernel = _in_kernel()
        self._handle: Any = None
        self._shown = float("-inf")
        self.closed = False
        self._show(force=True)

    # --- state -------------------------------------------------------------------------------------------------
    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.start

    @property
    def eta_s(self) -> float | None:
        """Seconds still needed at the mean rate so far; None before the first item."""
        if self.done <= self.done_before:
            return None
        return self.elapsed_s / (self.done - self.done_before) * max(self.total - self.done, 0)

    def line(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        text = f"{self.what}：{self.done}/{self.total}{unit}，已用 {clock(self.elapsed_s)}"
        if self.done >= self.total:
            return text + "，完成"
        eta = self.eta_s
        return text + ("，预计还需 " + clock(eta) if eta is not None else "，正在估算剩余时间")

    def status(self) -> ProgressStatus:
        return {"what": self.what, "done": self.done, "total": self.total, "elapsed_s": round(self.elapsed_s, 1),
                "eta_s": None if self.eta_s is None else round(self.eta_s, 1), "finished": self.closed,
                "pid": os.getpid(), "time": time.time()}

    # --- updates -----------------------------------------------------------------------------------------------
    def __call__(self, done: int, total: int | None = None) -> None:
        self.update(done, total)

    def update(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = int(total)
        self.done = int(done)
        self._show(force=self.done >= self.total)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._show(force=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _show(self, *, force: bool = False) -> None:
        now = time.perf_counter()
        if self._shown == float("-inf") and now - self.start < self.delay_s:
            return  # a step shorter than delay_s shows nothing
        interval = self.min_interval_s if self.kernel else self.print_every_s
        if not force and now - self._shown < interval:
            return
        self._shown = now
        self._write_status()
        if self.kernel:
            from IPython.display import display

            if self._handle is None:
                self._handle = display({"text/plain": self.line()}, raw=True, display_id=True)
            else:
                self._handle.update({"text/plain": self.line()}, raw=True)
        elif not force or (self.closed and self.elapsed_s >= self.print_every_s):
            print(self.line(), file=sys.stderr, flush=True)  # throttled; short steps stay silent

    def _write_status(self) -> None:
        if self.status_file is None:
            return
        try:
            self.status_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.status_file.with_name(f".{self.status_file.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.status(), ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, self.status_file)
        except OSError:
            pass  # progress is a courtesy: a read-only or vanished folder must not stop the work


def read_status(path: str | Path) -> ProgressStatus | None:
    """The last state a :class:`Progress` wrote to ``path``; None when there is none, it is unreadable or it lacks a
    key of :class:`ProgressStatus`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and ProgressStatus.__required_keys__ <= data.keys() else None


def status_text(status: ProgressStatus | None) -> str:
    """A running step's state in one short line for the runner (``base 120/312 ETA 04:40``); '' when finished."""
    if not status or status["finished"] or status["done"] >= status["total"]:
        return ""
    eta = status["eta_s"]
    return f"{status['what']} {status['done']}/{status['total']}" + (f" ETA {clock(eta)}" if eta is not None else "")
