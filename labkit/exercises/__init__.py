"""Checked exercises: ``check("03.2", answer, **context)`` looks up the registered checker and returns a
:class:`CheckResult` (简体中文 message, a hint on a wrong answer) that renders as a coloured box in Jupyter.

Checkers live in one module per notebook (``labkit/exercises/nbNN.py``), registered with :func:`exercise`; the modules
are imported on the first lookup. The contract (cells, markers, solutions, student/instructor builds) is
``docs/EXERCISES.md``.
"""

from __future__ import annotations

import html
import importlib
import json
import pkgutil
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypedDict

from labkit.errors import LabkitError, UnknownNameError

MIME: Final = "application/vnd.labkit.check+json"
ID_RE = re.compile(r"^\d\d\.\d+$")
STATUSES = ("passed", "failed", "unanswered")
UNANSWERED_MESSAGE = "尚未作答：把标记 `# >>> 练习 {id}` 与 `# <<< 练习 {id}` 之间的 `...` 换成你的答案，再运行本单元。"


class CheckRecord(TypedDict):
    """A check's result as a notebook output carries it (the :data:`MIME` part; read back by
    :func:`labkit.course.exercise_results`)."""

    id: str
    status: str                      # passed | failed | unanswered
    passed: bool
    title: str


MimeBundle = TypedDict("MimeBundle", {"text/plain": str, "text/html": str, "application/vnd.labkit.check+json":
                                      CheckRecord})


@dataclass
class CheckResult:
    """The outcome of one check: ``status`` is passed / failed / unanswered; ``message`` is the feedback."""

    exercise_id: str
    title: str
    note_section: str
    status: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> CheckRecord:
        return {"id": self.exercise_id, "status": self.status, "passed": self.passed, "title": self.title}

    def __repr__(self) -> str:
        mark = {"passed": "通过", "failed": "未通过", "unanswered": "尚未作答"}[self.status]
        return f"[练习 {self.exercise_id} {mark}] {self.title}（{self.note_section}）\n{self.message}"

    def _repr_html_(self) -> str:
        icon, color, border = {"passed": ("✅ 通过", "#e6ffed", "#2ea043"),
                               "failed": ("❌ 未通过", "#ffeef0", "#cf222e"),
                               "unanswered": ("✏️ 尚未作答", "#fff8c5", "#bf8700")}[self.status]
        e = html.escape
        body = "<br>".join(e(line) for line in self.message.splitlines())
        return (f"<div style='background:{color};border-left:5px solid {border};padding:6px 10px;margin:4px 0'>"
                f"<b>练习 {e(self.exercise_id)} · {icon}</b> — {e(self.title)}"
                f"<div style='color:#57606a;font-size:90%'>{e(self.note_section)}</div>"
                f"<div style='margin-top:4px'>{body}</div></div>")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> MimeBundle:
        return {"text/plain": repr(self), "text/html": self._repr_html_(), MIME: self.to_dict()}


@dataclass(frozen=True)
class Feedback:
    """What a checker returns (through :func:`passed` / :func:`failed`); :func:`check` adds id, title, section."""

    ok: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def passed(message: str, **details: Any) -> Feedback:
    return Feedback(True, message, details)


def failed(hint: str, **details: Any) -> Feedback:
    return Feedback(False, hint, details)


class StudentError(LabkitError):
    """The student's own code raised while a checker ran it (see :func:`run_student`)."""


def run_student(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the student's function; an exception inside it becomes a failed check, not a labkit traceback."""
    if not callable(fn):
        raise StudentError(f"答案应是一个函数（def ...），而你给的是 {type(fn).__name__}。")
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # the student's bug, reported as feedback
        shown = ", ".join([*(repr(a)[:60] for a in args), *(f"{k}={v!r}"[:60] for k, v in kwargs.items())])
        last = traceback.extract_tb(exc.__traceback__)[-1]
        raise StudentError(f"你的函数在调用 {getattr(fn, '__name__', 'fn')}({shown}) 时抛出了 "
                           f"{type(exc).__name__}: {exc}（第 {last.lineno} 行）。") from exc


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    note_section: str
    fn: Callable[..., Feedback]

    @property
    def notebook(self) -> str:
        return self.id.split(".", 1)[0]


_REGISTRY: dict[str, Exercise] = {}
_LOADED = False


def exercise(exercise_id: str, *, title: str, note_section: str) -> Callable[[Callable[..., Feedback]],
                                                                            Callable[..., Feedback]]:
    """Register a checker ``fn(answer, **context) -> Feedback`` under ``exercise_id`` (``NN.k``)."""
    if not ID_RE.match(exercise_id):
        raise ValueError(f"exercise id must look like '03.2' (notebook number . index), got {exercise_id!r}")
    if not title or not note_section:
        raise ValueError(f"exercise {exercise_id}: title and note_section are required")

    def register(fn: Callable[..., Feedback]) -> Callable[..., Feedback]:
        old = _REGISTRY.get(exercise_id)
        if old is not None and (old.fn.__module__, old.fn.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(f"exercise {exercise_id} is registered twice ({old.fn.__module__}, {fn.__module__})")
        _REGISTRY[exercise_id] = Exercise(exercise_id, title, note_section, fn)
        return fn

    return register


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    for info in pkgutil.iter_modules(__path__):
        if re.fullmatch(r"nb\d\d", info.name):
            importlib.import_module(f"{__name__}.{info.name}")
    _LOADED = True


def list_exercises(notebook: str | None = None) -> list[Exercise]:
    """Registered exercises in id order (``notebook="03"`` for one notebook's)."""
    _load_all()
    items = sorted(_REGISTRY.values(), key=lambda e: (e.notebook, int(e.id.split(".")[1])))
    return [e for e in items if notebook is None or e.notebook == notebook]


def get_exercise(exercise_id: str) -> Exercise:
    _load_all()
    if exercise_id not in _REGISTRY:
        raise UnknownNameError("exercise", exercise_id, list(_REGISTRY))
    return _REGISTRY[exercise_id]


def is_placeholder(answer: Any) -> bool:
    return answer is ... or answer is None


def check(exercise_id: str, answer: Any, **context: Any) -> CheckResult:
    """Check ``answer`` for ``exercise_id``; the placeholder (``...`` or None) gives ``status="unanswered"``."""
    ex = get_exercise(exercise_id)
    if is_placeholder(answer):
        return CheckResult(ex.id, ex.title, ex.note_section, "unanswered", UNANSWERED_MESSAGE.format(id=ex.id))
    try:
        fb = ex.fn(answer, **context)
    except StudentError as exc:
        fb = failed(str(exc))
    if not isinstance(fb, Feedback):
        raise TypeError(f"checker of {ex.id} returned {type(fb).__name__}; it must return passed(...) or failed(...)")
    return CheckResult(ex.id, ex.title, ex.note_section, "passed" if fb.ok else "failed", fb.message,
                       json.loads(json.dumps(fb.details, ensure_ascii=False, default=str)))


__all__ = ["MIME", "CheckRecord", "CheckResult", "Exercise", "Feedback", "StudentError", "check", "exercise", "failed",
           "get_exercise", "is_placeholder", "list_exercises", "passed", "run_student"]
