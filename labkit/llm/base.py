"""The one interface every model speaks: chat messages in, a :class:`ChatResult` out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from labkit.types import ChatResult, Message


@runtime_checkable
class ChatModel(Protocol):
    """A chat model. ``chat_batch`` defaults to a loop over ``chat``; models that can batch override it.

    ``stop``: strings the answer ends before; ``until``: a completion rule (:data:`UNTIL_RULES`, e.g.
    ``"json_object"``) after which the answer is complete — local models stop generating there, API backends cut.

    Guided decoding is optional: a model that sets ``guided_decoding = True`` (:class:`~labkit.llm.LocalHFModel`)
    also accepts ``guide=`` (chat) / ``guides=`` (chat_batch, one per conversation): call grammars
    (:meth:`labkit.formats.OutputFormat.call_grammar`) its answers are held to. Callers ask
    :func:`supports_guides` first and leave the keywords out for every other model (API clients, the emulators,
    the cache wrapper), which then decode freely: the option is ignored, never an error.
    """

    name: str

    def chat(
        self,
        messages: list[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        until: str | None = None,
    ) -> ChatResult: ...

    def chat_batch(self, batch: list[list[Message]], **kw: Any) -> list[ChatResult]:
        return [self.chat(messages, **kw) for messages in batch]


UNTIL_RULES = ("json_object",)

_DEADLINE: ContextVar[tuple[float, str] | None] = ContextVar("labkit_call_deadline", default=None)


@contextmanager
def call_deadline(seconds: float | None, what: str = "call deadline") -> Iterator[None]:
    """Every model call made inside the block (in this thread or context) must end within ``seconds`` from now.

    A caller's time limit reaching the transport: :class:`~labkit.llm.OpenAIChat` cuts its in-flight attempt and its
    retries at the earlier of its own ``deadline`` and this one (labelling's ``job_deadline_s`` uses it). Nested
    blocks keep the earliest deadline; ``what`` names it in the error. ``None``: no limit added.
    """
    if seconds is None:
        yield
        return
    mine = (time.monotonic() + seconds, what)
    outer = _DEADLINE.get()
    token = _DEADLINE.set(mine if outer is None or mine[0] < outer[0] else outer)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def deadline_left() -> tuple[float, str] | None:
    """``(seconds left, its name)`` of the innermost :func:`call_deadline`, or None outside one."""
    current = _DEADLINE.get()
    return None if current is None else (current[0] - time.monotonic(), current[1])


def supports_guides(model: Any) -> bool:
    """True for models that take ``guide=`` / ``guides=`` (guided decoding; see :class:`ChatModel`)."""
    return getattr(model, "guided_decoding", False) is True


def until_end(text: str, until: str | None) -> int | None:
    """Where an answer is complete under a completion rule (None: not yet / no rule).

    ``"json_object"``: just after the first complete top-level JSON object, or just before a key that repeats inside
    one object (an under-trained model's loop; the parser's repair closes the object on the first values). Local models stop *generating* there (:mod:`labkit.llm.local`); API backends,
    which cannot, cut their finished text there, so every backend returns the same answer for the same text.
    """
    if until is None:
        return None
    if until != "json_object":
        raise ValueError(f"unknown completion rule {until!r}; known: {UNTIL_RULES}")
    from labkit.jsonscan import scan_object

    scan = scan_object(text)
    if scan.end is not None:
        return scan.end
    return scan.repeated_at


def cut_until(text: str, until: str | None) -> str:
    end = until_end(text, until)
    return text if end is None else text[:end]


def cut_at_stop(text: str, stop: list[str] | None) -> str:
    """Cut ``text`` before the first occurrence of any stop string."""
    for s in stop or ():
        if s and s in text:
            text = text[: text.index(s)]
    return text


def model_id(model: Any) -> str:
    """A cache and provenance identity for a model: what makes two models answer differently.

    A model's own ``identity`` (API clients: model id @ host), else a local checkpoint's path + newest weight mtime +
    inference dtype, else its name plus the settings that change its answers (the emulator's noise and seed).
    """
    identity = getattr(model, "identity", None)
    if isinstance(identity, str):
        return identity
    path = getattr(model, "path", None)
    if path is not None:
        weights = sorted(Path(path).glob("*.safetensors"))
        stamp = max((w.stat().st_mtime_ns for w in weights), default=0)
        dtype = str(getattr(model, "dtype", "")).replace("torch.", "")  # bf16 and fp32 answers differ
        return f"{model.name}@{Path(path).resolve()}#{stamp}:{dtype}"
    extra = [f"{k}={getattr(model, k)}" for k in ("noise", "seed", "model") if hasattr(model, k)]
    return ";".join([str(model.name), *extra])
