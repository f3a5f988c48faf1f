"""The small value types every labkit module speaks: tool calls, finished tasks, model replies, parse results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypedDict, Union


class Message(TypedDict, total=False):
    role: Literal["system", "user", "assistant"]
    content: str
    loss: bool  # training only: whether this turn is supervised (default: assistant turns)


@dataclass(frozen=True)
class ToolCall:
    name: str
    args: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "args": dict(self.args)}


@dataclass
class Observation:
    """What a tool returned. ``ok`` is False for a rejected call (unknown tool, bad args); ``text`` then says why."""

    text: str
    ok: bool = True
    error: str | None = None


@dataclass
class CompletedTask:
    """One finished planning step, as the Memory section of a template shows it."""

    task_name: str
    call: ToolCall
    result: str

    def to_dict(self) -> dict[str, Any]:
        return {"task_name": self.task_name, "command": self.call.to_dict(), "result": self.result}


@dataclass
class ChatResult:
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    meta: dict[str, Any] = field(default_factory=dict)  # backend extras, e.g. the emulator's applied noise


@dataclass
class ParsedAction:
    """A model output understood as one agent step.

    Exactly one of ``call`` / ``final_answer`` is set, or ``give_up`` is True (ToolLLaMA's give_up_and_restart).
    ``thought`` is the reasoning / task description ('' when the format has none). ``repaired`` notes tolerant fixes
    (e.g. "json_repair", "code_fence", "trailing_prose").
    """

    thought: str
    call: ToolCall | None = None
    final_answer: str | None = None
    give_up: bool = False
    repaired: tuple[str, ...] = ()

    @property
    def is_finish(self) -> bool:
        return self.final_answer is not None or (self.call is not None and self.call.name == "task_complete")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ParseError:
    """Why an output could not be read. ``code`` is a stable machine name (see labkit.parsing.ERROR_CODES)."""

    code: str
    message: str
    raw: str = ""

    def __bool__(self) -> bool:  # so `if result:` reads "parsed OK"
        return False

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


ParseResult = Union[ParsedAction, ParseError]
