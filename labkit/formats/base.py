"""The output-format object: one per format, owning everything the kit needs to know about how a model writes a step.

An :class:`OutputFormat` holds

* ``parse(text, tools)`` — model text -> :class:`~labkit.types.ParsedAction` or a typed
  :class:`~labkit.types.ParseError` (total: never raises, on any input);
* ``render(step, thought)`` — the canonical (gold) text of a step, so that ``parse(render(x)) == x``;
* ``markers`` — strings a prompt asking for this format contains (how a prompt-reading teacher tells formats apart);
* ``stop_markers`` — where generation must stop so that the *tool* writes the observation, ``until`` — the
  completion rule decoding stops at (``"json_object"``: the first JSON object closed; see
  :func:`labkit.llm.base.until_end`), ``max_new_tokens`` — the token budget, above the longest gold answer in the
  format, and ``is_complete(text)`` — whether a partial generation already holds a whole step;
* ``memory_style`` / ``tool_style`` — how completed tasks and the tool list are laid out in a prompt for it, and
  ``tools_block(specs, style)`` / ``memory_block(tasks, style)`` — those layouts (:mod:`labkit.formats.layouts`;
  ``tool_style_fixed``: a prompt for it lists the tools only its own way);
* ``finishes_with_call`` — the format ends by calling ``task_complete`` (then a conclusion template answers),
  ``finish_rule`` — how a run in it ends (``"call"``, ``"answer"``, or ``"function"``: ToolLLaMA's ``Finish``),
  ``has_call_form`` / ``has_answer_form`` — which kinds of step it can express at all;
* ``call_grammar(tools)`` — its call syntax for guided decoding (:mod:`labkit.formats.guide`), or None.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, TypedDict

from labkit.formats.guide import Element, Grammar, Guard, ToolShape, tool_shapes
from labkit.formats.layouts import MEMORY_LAYOUTS, TOOL_LAYOUTS, dumps
from labkit.types import CompletedTask, ParsedAction, ParseError, ParseResult, ToolCall

COMPLETE_TOOL = "task_complete"  # the call that ends a run in formats that finish with a call
TOOL_STYLES = ("react", "commands", "apis", "functions")  # how a prompt lists the tools (labkit.templates)
MEMORY_STYLES = ("kagent", "scratchpad", "modelscope", "results", "own")  # how it shows completed tasks

ERROR_CODES: dict[str, str] = {
    "not_text": "the output is not a string",
    "empty": "the output (or its answer part) is empty",
    "unknown_format": "the output format name is not one labkit knows",
    "no_json": "no JSON object found where the format needs one",
    "invalid_json": "JSON found but it could not be read, even after repair",
    "not_object": "the JSON is not an object",
    "missing_field": "a field the format requires is missing or empty",
    "bad_field_type": "a field has the wrong type (e.g. a tool name that is not a string)",
    "no_action": "neither a tool call nor a final answer was found",
    "internal_error": "the parser hit an unexpected condition (a bug; the raw text is kept)",
}

TAIL_MARKERS = ("<end_of_turn>", "<eos>", "<start_of_turn>", "</s>")

class Placeholders(TypedDict):
    """Placeholder values for a format's example output (the "skeleton" a prompt shows) in one prompt language."""

    thought: str
    tool: str
    args: dict[str, str]
    answer: str


PLACEHOLDERS: dict[str, Placeholders] = {  # per prompt language
    "zh": {"thought": "这一步要做什么", "tool": "工具名", "args": {"参数名": "参数值"}, "answer": "给用户的最终答案"},
    "en": {"thought": "what this step does", "tool": "tool_name", "args": {"argument": "value"},
           "answer": "the final answer for the user"},
}


class StepNotes(TypedDict):
    """The notes :meth:`OutputFormat.render` passes to a call's renderer besides the thought (AutoGPT's ``thoughts``
    object shows them; the other layouts ignore them)."""

    reasoning: str
    plan: str
    criticism: str


class Fail(Exception):
    """Raised inside parsers; :meth:`OutputFormat.parse` turns it into a :class:`ParseError`."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def strip_tail(text: str) -> str:
    """Cut the text at the first end-of-turn / end-of-sequence marker the model emitted."""
    cut = len(text)
    for marker in TAIL_MARKERS:
        pos = text.find(marker)
        if pos != -1:
            cut = min(cut, pos)
    return text[:cut]


class OutputFormat:
    """Base class; subclasses implement :meth:`_parse`, and the ``_render_*`` forms they have."""

    name: str = ""
    description: str = ""
    markers: tuple[str, ...] = ()
    stop_markers: tuple[str, ...] = ()
    until: str | None = None  # completion rule name (labkit.llm.base.UNTIL_RULES), e.g. "json_object"
    max_new_tokens: int = 160  # new-token budget for one answer
    memory_style: str = "kagent"
    tool_style: str = "commands"
    tool_style_fixed: bool = False  # its calls read the tools as its own layout lists them (no other tool style)
    finishes_with_call: bool = False
    has_call_form: bool = True
    has_answer_form: bool = True
    has_give_up_form: bool = False
    answer_has_thought: bool = True  # the answer form carries the thought (ModelScope's and conclusions' do not)
    opening: str | None = None  # text a clean output starts with (None: no fixed opening)
    declared: bool = False      # True for formats declared in a template file

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    @property
    def family(self) -> str:
        """The kind of output: ``builtin:<name>`` for a built-in format, ``declared:<style>`` (json, yaml, xml, kv,
        prefixed) for a declared one, so two declared formats with other field names are still one family."""
        return f"declared:{getattr(self, 'style', '?')}" if self.declared else f"builtin:{self.name}"

    # -- parsing ------------------------------------------------------------------------------------------------
    def parse(self, text: Any, tools: Any = None) -> ParseResult:
        """Read one model output. Never raises; bad input gives a :class:`ParseError` with a code from ERROR_CODES.

        ``tools`` (a ToolRegistry, Tools, or function-spec dicts) lets a plain-string argument be mapped onto the
        tool's first required parameter.
        """
        if not isinstance(text, str):
            return ParseError("not_text", f"expected str, got {type(text).__name__}", raw=repr(text)[:200])
        body = strip_tail(text).strip()
        if not body:
            return ParseError("empty", "the output is empty", raw=text)
        try:
            return self._parse(body, tools)
        except Fail as fail:
            return ParseError(fail.code, fail.message, raw=text)
        except Exception as exc:  # noqa: BLE001 - the contract is "never raises"; the fuzz test keeps this unused
            return ParseError("internal_error", f"{type(exc).__name__}: {exc}", raw=text)

    def _parse(self, body: str, tools: Any) -> ParsedAction:
        raise NotImplementedError

    # -- rendering ----------------------------------------------------------------------------------------------
    def render(self, call_or_answer: ToolCall | str | ParsedAction, thought: str = "", *, reasoning: str = "",
               plan: str = "", criticism: str = "") -> str:
        """Canonical text for one step: a tool call, a final answer (str) or a ParsedAction (incl. give-up).

        A form the format does not have (an answer in a format that finishes with a call, a call in a conclusion
        format, a give-up outside ToolLLaMA) raises ``ValueError``.
        """
        give_up = False
        if isinstance(call_or_answer, ParsedAction):
            thought = thought or call_or_answer.thought
            give_up = call_or_answer.give_up
            call_or_answer = call_or_answer.call or call_or_answer.final_answer or ""
        if give_up:
            if not self.has_give_up_form:
                raise ValueError(f"format {self.name!r} has no give-up form (only toolllama)")
            return self._render_give_up(thought)
        if isinstance(call_or_answer, ToolCall):
            if not self.has_call_form:
                raise ValueError(f"format {self.name!r} has no tool-call form; pass the answer text")
            call = ToolCall(call_or_answer.name, dict(call_or_answer.args))  # the renderers see a plain dict
            return self._render_call(call, thought, {"reasoning": reasoning, "plan": plan, "criticism": criticism})
        if not isinstance(call_or_answer, str):
            raise TypeError(f"expected ToolCall, str or ParsedAction, got {type(call_or_answer).__name__}")
        if not self.has_answer_form:
            raise ValueError(f"format {self.name!r} has no final-answer form; emit ToolCall({COMPLETE_TOOL!r}) and "
                             "use a conclusion template")
        return self._render_answer(call_or_answer, thought)

    def _render_call(self, call: ToolCall, thought: str, extra: StepNotes) -> str:
        """The text of one tool call (``extra``: the notes only AutoGPT's layout shows)."""
        raise NotImplementedError

    def _render_answer(self, answer: str, thought: str) -> str:
        raise NotImplementedError

    def _render_give_up(self, thought: str) -> str:
        raise NotImplementedError

    def finish(self, answer: str, thought: str = "") -> str:
        """The text that ends a run in this format: the answer itself, or a ``task_complete`` call carrying it."""
        if self.finishes_with_call:
            return self.render(ToolCall(COMPLETE_TOOL, {"reason": answer}), thought)
        return self.render(answer, thought)

    def skeleton(self, lang: str = "en") -> str:
        """An example output with placeholder values, as a prompt's format section shows it (call form first)."""
        ph = PLACEHOLDERS.get(lang, PLACEHOLDERS["en"])
        forms = []
        if self.has_call_form:
            forms.append(self.render(ToolCall(ph["tool"], ph["args"]), ph["thought"]))
        if self.has_answer_form:
            forms.append(self.render(ph["answer"], ph["thought"]))
        return "\n\n".join(forms)

    # -- generation helpers -------------------------------------------------------------------------------------
    def is_complete(self, text: str) -> bool:
        """True when ``text`` (a partial generation) already holds one whole step in a form that cannot continue
        (a closed JSON object, a closed think block, a closing tag, ...), so generation may stop. False means
        "not known to be finished": keep generating until a stop marker or end of turn."""
        return any(m in text for m in self.stop_markers)

    @property
    def finish_rule(self) -> str:
        """How a run in this format ends: ``"call"`` (``task_complete``, then a conclusion template answers),
        ``"answer"`` (an in-format final answer) or ``"function"`` (a ``Finish`` function call: ToolLLaMA)."""
        return "call" if self.finishes_with_call else "answer"

    def tools_block(self, specs: Sequence[Mapping[str, Any]], style: str | None = None) -> str:
        """The offered tools (KAgent-style spec dicts) laid out in ``style`` (default: the format's own)."""
        style = style or self.tool_style
        if style not in TOOL_LAYOUTS:
            raise ValueError(f"unknown tool style {style!r}; known: {', '.join(TOOL_STYLES)}")
        return TOOL_LAYOUTS[style](specs)

    def memory_block(self, tasks: Sequence[CompletedTask], style: str | None = None) -> str:
        """Completed tasks laid out in ``style`` (default: the format's own; ``"own"``: :meth:`render_memory`),
        '' when there are none."""
        style = style or self.memory_style
        if not tasks:
            return ""
        if style == "own":
            return self.render_memory(tasks)
        if style not in MEMORY_LAYOUTS:
            raise ValueError(f"unknown memory style {style!r}; known: {', '.join(MEMORY_STYLES)}")
        return MEMORY_LAYOUTS[style](tasks)

    def render_memory(self, tasks: Sequence[CompletedTask]) -> str:
        """Completed tasks in the format's own layout (used when ``memory_style == "own"``)."""
        raise ValueError(f"format {self.name!r} has no own memory layout; use memory_style "
                         "kagent / scratchpad / modelscope / results")

    # -- guided decoding ----------------------------------------------------------------------------------------
    def call_grammar(self, tools: Any) -> Grammar | None:
        """What guided decoding lets a model write in this format when ``tools`` are offered (a ToolRegistry, Tools
        or function-spec dicts): the format's layout, one of the offered tool names, argument keys from that tool's
        schema (required ones included, each once) and JSON string / number values; thoughts and answers stay free
        text, except that no part of the output may hold an end-of-turn marker or one of the format's stop strings
        (the parser or the loop would cut the step there). None when the format has no call syntax to guide (a
        conclusion format) or no tool is offered.
        Memoised: the same format and tools give the same grammar object."""
        shapes = tool_shapes(tools)
        if not shapes or not self.has_call_form:
            return None
        return _grammar(self, shapes)

    def _call_seq(self, shapes: tuple[ToolShape, ...]) -> tuple[Element, ...] | None:
        """The format's grammar as a sequence of elements (formats that can be guided override this)."""
        return None

    # -- checks -------------------------------------------------------------------------------------------------
    def round_trip_problems(self, steps: Iterable[ToolCall | str] | None = None) -> list[str]:
        """Steps whose gold text does not parse back to the same step (empty list: the format round-trips).

        Checked by default: a call with quotes, braces, newlines and Chinese in its arguments under a two-line
        thought, a call without arguments, and (where the format has one) a final answer / the finishing call.
        """
        problems = []
        for step, thought in _round_trip_cases(self) if steps is None else [(s, "t") for s in steps]:
            try:
                text = self.render(step, thought)
            except (ValueError, TypeError) as exc:
                problems.append(f"cannot render {step!r}: {exc}")
                continue
            parsed = self.parse(text)
            if isinstance(parsed, ParseError):
                problems.append(f"{_short(step)}: gold text does not parse ({parsed.code}: {parsed.message})")
                continue
            got = parsed.call if isinstance(step, ToolCall) else parsed.final_answer
            if got != step or parsed.thought != thought or parsed.repaired:
                problems.append(f"{_short(step)}: parses back as call={parsed.call!r}, answer={parsed.final_answer!r},"
                                f" thought={parsed.thought!r}, repairs={list(parsed.repaired)}")
        return problems


@lru_cache(maxsize=256)
def _grammar(fmt: OutputFormat, shapes: tuple[ToolShape, ...]) -> Grammar | None:
    sequence = fmt._call_seq(shapes)
    if sequence is None:
        return None  # free text never holds an end-of-turn marker (every parser cuts there) or a stop string
    return Grammar(fmt.name, tuple(s.name for s in shapes), sequence, Guard(TAIL_MARKERS + fmt.stop_markers))


def _short(step: Any) -> str:
    return f"call {step.name}" if isinstance(step, ToolCall) else "answer"


def _round_trip_cases(fmt: OutputFormat) -> list[tuple[ToolCall | str, str]]:
    cases: list[tuple[ToolCall | str, str]] = []
    if fmt.has_call_form:
        cases += [(ToolCall("get_weather_info", {"location": "北京", "start_date": "2025-03-15",
                                                 "is_current": "yes"}), "查询北京的天气\nthen answer"),
                  (ToolCall("web_search", {"query": 'say "hi" {brace} 引号\'\nnext line'}), "search the web"),
                  (ToolCall("calculator", {}), "no arguments")]
        if fmt.finishes_with_call:
            cases.append((ToolCall(COMPLETE_TOOL, {"reason": "信息已足够"}), "任务完成"))
    if fmt.has_answer_form:
        thought = "I know the answer" if fmt.answer_has_thought else ""
        cases.append(("北京现在晴，气温 18°C。\nSecond line of the answer.", thought))
    return cases
