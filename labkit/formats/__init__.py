"""Output formats as objects (one per format), and the registry that finds them by name or from a prompt.

``get_format(name)`` returns the built-in format of that name or one a loaded template file declared
(:mod:`labkit.formats.declared`); ``detect_format(prompt)`` tells which format a rendered prompt asks for: the
built-ins' markers first (in a fixed order), then the declared format whose markers the prompt holds (the one with
the most markers wins), else ``"conclusion"``. Every module that needs a format's rules - parsing, templates, the
agent loop, the sandbox teacher, data filters, the scorer - asks the format object instead of keeping its own list.
"""

from __future__ import annotations

import threading

from labkit.errors import UnknownNameError
from labkit.formats.base import COMPLETE_TOOL, ERROR_CODES, Fail, OutputFormat
from labkit.formats.builtin import (
    BUILTIN_FORMATS,
    EXEC_START,
    FINISH_TOOL,
    GIVE_ANSWER,
    GIVE_UP,
    THINK_END,
    THINK_START,
)
from labkit.formats.declared import STYLES, DeclaredFormat, FormatSpecError, declare

OUTPUT_FORMATS: tuple[str, ...] = ("react", "toolllama", "task_json", "autogpt", "modelscope", "conclusion")
TOOL_STYLES = ("react", "commands", "apis", "functions")
MEMORY_STYLES = ("kagent", "scratchpad", "modelscope", "results", "own")

_declared: dict[str, DeclaredFormat] = {}
_lock = threading.Lock()


def get_format(name: str | OutputFormat) -> OutputFormat:
    """The format object for a name (built-in or declared by a loaded template); UnknownNameError otherwise."""
    if isinstance(name, OutputFormat):
        return name
    fmt = BUILTIN_FORMATS.get(name) if isinstance(name, str) else None
    if fmt is None and isinstance(name, str):
        fmt = _declared.get(name)
    if fmt is None:
        raise UnknownNameError("output format", str(name), known_formats())
    return fmt


def known_formats() -> list[str]:
    return list(OUTPUT_FORMATS) + sorted(_declared)


def format_families() -> list[str]:
    """Every value ``OutputFormat.family`` can take: ``builtin:<name>`` per built-in, ``declared:<style>`` per style."""
    return [f"builtin:{n}" for n in BUILTIN_FORMATS] + [f"declared:{s}" for s in STYLES]


def register(fmt: DeclaredFormat) -> DeclaredFormat:
    """Make a declared format known by name (idempotent for an identical declaration).

    A different declaration under a name already used, or the same markers as another declared format (a prompt
    could not tell them apart), raises :class:`FormatSpecError`.
    """
    if fmt.name in BUILTIN_FORMATS:
        raise FormatSpecError(f"{fmt.name!r} is a built-in format", "output_format")
    with _lock:
        old = _declared.get(fmt.name)
        if old is not None:
            if old == fmt:
                return old
            raise FormatSpecError(f"format {fmt.name!r} is already declared differently ({old.spec()}); "
                                  "give this declaration another name", "output_format")
        twin = next((d for d in _declared.values() if set(d.markers) == set(fmt.markers)), None)
        if twin is not None:
            raise FormatSpecError(f"same markers {list(fmt.markers)} as the declared format {twin.name!r}: a prompt "
                                  f"could not tell them apart (reuse the name {twin.name!r} or change a label)",
                                  "fields")
        _declared[fmt.name] = fmt
    return fmt


def unregister(name: str) -> None:
    """Forget a declared format (tests, or a notebook re-declaring a format while editing it)."""
    with _lock:
        _declared.pop(name, None)


def detect_format(prompt: str) -> str:
    """Which output format a rendered prompt asks for (see the module docstring)."""
    for fmt in BUILTIN_FORMATS.values():
        if fmt.markers and any(m in prompt for m in fmt.markers):
            return fmt.name
    hits = [d for d in list(_declared.values()) if all(m in prompt for m in d.markers)]
    if hits:
        return max(hits, key=lambda d: (len(set(d.markers)), sum(map(len, set(d.markers))), d.name)).name
    return "conclusion"


__all__ = ["OutputFormat", "DeclaredFormat", "FormatSpecError", "Fail", "get_format", "known_formats", "register",
           "unregister", "declare", "detect_format", "OUTPUT_FORMATS", "TOOL_STYLES", "MEMORY_STYLES", "STYLES",
           "ERROR_CODES", "COMPLETE_TOOL", "THINK_START", "THINK_END", "EXEC_START", "FINISH_TOOL", "GIVE_ANSWER",
           "GIVE_UP", "BUILTIN_FORMATS"]
