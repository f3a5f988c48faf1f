"""The one interface every model speaks: chat messages in, a :class:`ChatResult` out."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from labkit.types import ChatResult, Message


@runtime_checkable
class ChatModel(Protocol):
    """A chat model. ``chat_batch`` defaults to a loop over ``chat``; models that can batch override it.

    ``stop``: strings the answer ends before; ``until``: a completion rule (:data:`UNTIL_RULES`, e.g.
    ``"json_object"``) after which the answer is complete — local models stop generating there, API backends cut.
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
