"""Output formats as objects (one per format), and the registry that finds them by name or from a prompt.

``get_format(name)`` returns the built-in format of that name or one a loaded template file declared
(:mod:`labkit.formats.declared`); ``detect_format(prompt)`` tells which format a rendered prompt asks for: the
built-ins' markers first (in a fixed order), then the declared format whose markers the prompt holds (the one with
the most markers wins), else ``"conclusion"``. Every module that needs a format's rules - parsing, templates, the
agent loop, the sandbox teacher, data filters, the scorer - asks the format object instead of keeping its own list.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from labkit.errors import UnknownNameError
from labkit.formats.base import COMPLETE_TOOL, ERROR_CODES, MEMORY_STYLES, TOOL_STYLES, Fail, OutputFormat
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

KnownPrompt = tuple[str, str, OutputFormat]  # (label for messages, prompt text, the format it asks for)

OUTPUT_FORMATS: tuple[str, ...] = ("react", "toolllama", "task_json", "autogpt", "modelscope", "conclusion")

_declared: dict[str, DeclaredFormat] = {}
_witnesses: dict[str, str] = {}  # declared format -> the prompt that registered it (its template, rendered)
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


def register(fmt: DeclaredFormat, *, prompts: Iterable[KnownPrompt] = (), witness: str | None = None
             ) -> DeclaredFormat:
    """Make a declared format known by name (idempotent for an identical declaration); all or nothing.

    Refused with :class:`FormatSpecError` (nothing registered): a different declaration under a name already used;
    the same markers as another declared format (a prompt could not tell them apart); markers that would change
    which format is detected for a prompt already known to ask for another one (:func:`captured_prompts`: the
    ``prompts`` given - the template loader passes every template file it can find -, the prompts that registered
    the other declared formats, and their example outputs). ``witness``: the prompt that asks for ``fmt`` (its
    template, rendered), checked against later declarations in turn.
    """
    if fmt.name in BUILTIN_FORMATS:
        raise FormatSpecError(f"{fmt.name!r} is a built-in format", "output_format")
    prompts = list(prompts)
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
        captured = captured_prompts(fmt, prompts)
        if captured:
            label, was, now = captured[0]
            raise FormatSpecError(f"markers {_clip_list(fmt.markers)} would capture other prompts: {label} asks for "
                                  f"{was!r} but would be detected as {now!r}"
                                  + (f" (and {len(captured) - 1} more)" if len(captured) > 1 else "")
                                  + "; choose markers those prompts do not contain",
                                  "markers" if fmt.explicit_markers else "fields")
        _declared[fmt.name] = fmt
        if witness is not None:
            _witnesses[fmt.name] = witness
    return fmt


def captured_prompts(fmt: DeclaredFormat, prompts: Iterable[KnownPrompt] = ()) -> list[tuple[str, str, str]]:
    """``(label, format before, format after)`` for every known prompt whose detected format would change if
    ``fmt`` were declared too: the ``prompts`` given (``(label, text, the format it asks for)``), the prompts that
    registered the declared formats, and the declared formats' example outputs (:meth:`OutputFormat.skeleton`)."""
    known: list[KnownPrompt] = list(prompts)
    for name, other in list(_declared.items()):
        if name == fmt.name:
            continue
        if name in _witnesses:
            known.append((f"the prompt that declared {name!r}", _witnesses[name], other))
        known += [(f"the example output of {name!r} ({lang})", other.skeleton(lang), other) for lang in ("en", "zh")]
    out = []
    for label, text, own in known:
        if own.name == fmt.name:
            continue
        extra = [own] if isinstance(own, DeclaredFormat) else []
        before = detect_format(text, extra=extra)
        after = detect_format(text, extra=[*extra, fmt])
        if after != before:
            out.append((label, before, after))
    return out


def _clip_list(items: Iterable[str], limit: int = 200) -> str:
    text = repr(list(items))
    return text if len(text) <= limit else text[:limit] + "…]"


def unregister(name: str) -> None:
    """Forget a declared format (tests, or a notebook re-declaring a format while editing it)."""
    with _lock:
        _declared.pop(name, None)
        _witnesses.pop(name, None)


def detect_format(prompt: str, *, extra: Iterable[DeclaredFormat] = ()) -> str:
    """Which output format a rendered prompt asks for (see the module docstring); ``extra``: declared formats to
    consider as if they were registered (a template being checked before its format is registered)."""
    for fmt in BUILTIN_FORMATS.values():
        if fmt.markers and any(m in prompt for m in fmt.markers):
            return fmt.name
    pool = {**_declared, **{d.name: d for d in extra}}
    hits = [d for d in pool.values() if all(m in prompt for m in d.markers)]
    if hits:
        return max(hits, key=lambda d: (len(set(d.markers)), sum(map(len, set(d.markers))), d.name)).name
    return "conclusion"


__all__ = ["OutputFormat", "DeclaredFormat", "FormatSpecError", "Fail", "get_format", "known_formats", "register",
           "unregister", "captured_prompts", "declare", "detect_format", "OUTPUT_FORMATS", "TOOL_STYLES",
           "MEMORY_STYLES", "STYLES", "format_families",
           "ERROR_CODES", "COMPLETE_TOOL", "THINK_START", "THINK_END", "EXEC_START", "FINISH_TOOL", "GIVE_ANSWER",
           "GIVE_UP", "BUILTIN_FORMATS"]
