"""The small value types every labkit module speaks: tool calls, finished tasks, model replies, parse results, and
the JSON form of a saved agent trace (:class:`TraceDict`: what ``labkit.agent.Trace.to_dict()`` writes and every stage
reads back)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypedDict, Union


class Message(TypedDict, total=False):
    role: Literal["system", "user", "assistant"]
    content: str
    loss: bool  # training only: whether this turn is supervised (default: assistant turns)


class ToolCallDict(TypedDict):
    """A tool call as JSON (:meth:`ToolCall.to_dict`): a saved step's ``call``, a memory's ``command``."""

    name: str
    args: dict[str, Any]  # the tool's argument values: free-form JSON, checked by the tool's schema


@dataclass(frozen=True)
class ToolCall:
    name: str
    args: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> ToolCallDict:
        return {"name": self.name, "args": dict(self.args)}


@dataclass
class Observation:
    """What a tool returned. ``ok`` is False for a rejected call (unknown tool, bad args); ``text`` then says why."""

    text: str
    ok: bool = True
    error: str | None = None


class CompletedTaskDict(TypedDict):
    """:meth:`CompletedTask.to_dict`: one task of a memory as JSON."""

    task_name: str
    command: ToolCallDict
    result: str


@dataclass
class CompletedTask:
    """One finished planning step, as the Memory section of a template shows it."""

    task_name: str
    call: ToolCall
    result: str

    def to_dict(self) -> CompletedTaskDict:
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


# ---------------------------------------------------------------- a saved trace (JSON)
class ParsedStepDict(TypedDict):
    """A step's parsed output that reads as an action (``labkit.records.parsed_to_dict`` of a :class:`ParsedAction`)."""

    ok: Literal[True]
    thought: str
    call: ToolCallDict | None
    final_answer: str | None
    give_up: bool
    repaired: list[str]


class ParseErrorDict(TypedDict):
    """A step's output that could not be read (``labkit.records.parsed_to_dict`` of a :class:`ParseError`)."""

    ok: Literal[False]
    code: str
    message: str


ParsedDict = Union[ParsedStepDict, ParseErrorDict]


class TraceStepDict(TypedDict):
    """One saved step: ``dataclasses.asdict`` of a :class:`labkit.records.TraceStep` (read back with
    ``TraceStep.from_dict``)."""

    prompt: str
    output: str
    parsed: ParsedDict
    observation: str | None
    kind: str                  # "step" | "conclusion"
    tool_ok: bool | None
    completion_tokens: int
    tool_error: str | None


class TraceDict(TypedDict):
    """One agent run as JSON: ``labkit.agent.Trace.to_dict()``, a line of a traces file, a labelled record's
    ``trace`` (read back with ``Trace.from_dict`` / ``labkit.records.trace_steps``)."""

    query: str
    template: str
    model: str
    steps: list[TraceStepDict]
    final_answer: str | None
    stopped: str               # labkit.agent.trace.STOP_REASONS
    conclusion_template: str | None
    restarts: int
