"""The step loop shared by every agent style: render prompt -> model -> parse -> call tool -> remember.

The loop is driven by the template's output format object (:mod:`labkit.formats`: its parser, stop strings,
completion rule and token budget), so one engine serves ReAct-style scratchpads, KAgent-style planning and formats
declared in a template file: all are rendered from the ``memory`` of completed tasks in the template's own layout.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from labkit.agent.trace import Trace, TraceStep, parsed_to_dict
from labkit.bounds import MAX_PROMPT_VALUE_CHARS, clip
from labkit.formats import BUILTIN_FORMATS, get_format
from labkit.formats.guide import Grammar
from labkit.llm import ChatModel, supports_guides
from labkit.templates import AgentTemplate, load_template, prompt_task
from labkit.tools import Tool, ToolRegistry, default_registry
from labkit.types import ChatResult, CompletedTask, ParseError, ToolCall

# Views of the built-in format objects (each format owns its rules; see labkit.formats): where a model must stop so
# that the *tool* supplies the observation, the completion rule (JSON formats end when their first object closes:
# labkit.llm.base.until_end), and the new-token budget (above the longest gold answer of the query bank in that
# format, so a correct answer is never cut).
STOP_MARKERS: dict[str, list[str]] = {n: list(f.stop_markers) for n, f in BUILTIN_FORMATS.items() if f.stop_markers}
UNTIL: dict[str, str] = {n: f.until for n, f in BUILTIN_FORMATS.items() if f.until}
MAX_NEW_TOKENS: dict[str, int] = {n: f.max_new_tokens for n, f in BUILTIN_FORMATS.items()}


@dataclass(frozen=True)
class Decoding:
    """How to ask a model for one answer in an output format: stop strings, completion rule, token budget."""

    stop: tuple[str, ...] | None
    until: str | None
    max_new_tokens: int

    def kwargs(self) -> dict[str, object]:
        return {"stop": list(self.stop) if self.stop else None, "until": self.until,
                "max_new_tokens": self.max_new_tokens}


def decoding_for(output_format: str, max_new_tokens: int | None = None) -> Decoding:
    """The format's stop strings, completion rule and budget (``max_new_tokens`` overrides the budget)."""
    fmt = get_format(output_format)
    return Decoding(tuple(fmt.stop_markers) or None, fmt.until, max_new_tokens or fmt.max_new_tokens)

ToolsArg = ToolRegistry | Sequence[Tool] | Sequence[str] | None


def resolve_tools(tools: ToolsArg) -> ToolRegistry:
    """None -> every sandbox tool; a list of names -> that subset; Tools or a registry as given."""
    if tools is None:
        return default_registry()
    if isinstance(tools, ToolRegistry):
        return tools
    items = list(tools)
    if all(isinstance(t, str) for t in items):
        return default_registry().subset(items)  # type: ignore[arg-type]
    return ToolRegistry(items)  # type: ignore[arg-type]


def resolve_template(template: str | AgentTemplate) -> AgentTemplate:
    return template if isinstance(template, AgentTemplate) else load_template(template)


@dataclass
class LoopState:
    """What the agent has done so far. ``memory`` (completed tasks) is what every family shows back to the model:
    KAgent's *Completed tasks* JSON, ReAct/ToolLLaMA's Thought/Action/Observation scratchpad, ModelScope's exec
    blocks. ``history`` is the earlier *conversation* (user, assistant) turns, unchanged by the loop."""

    memory: list[CompletedTask] = field(default_factory=list)
    history: list[tuple[str, str]] = field(default_factory=list)


def failed_attempt_note(attempt: int, thought: str, memory: Sequence[CompletedTask]) -> str:
    """What a restarted prompt is told about an attempt that gave up (ToolLLaMA's give_up_and_restart); every part
    bounded like the memory a prompt shows (:func:`labkit.templates.prompt_task`)."""
    thought = clip(thought, MAX_PROMPT_VALUE_CHARS)
    lines = [f"Attempt {attempt} gave up" + (f" ({thought})" if thought else "") + ". Its calls and results:"]
    shown = [prompt_task(t) for t in memory]
    lines += [f"- {t.call.name}({json.dumps(t.call.args, ensure_ascii=False)}) -> {clip(t.result, 300)}" for t in shown]
    if not memory:
        lines.append("- (no tool calls)")
    return "\n".join(lines)


class AgentRun:
    """One query's step loop, advanced one model answer at a time: :meth:`prompt` -> model -> :meth:`advance`.

    :func:`run_steps` drives one run; :func:`run_many` drives many in lock-step, so a local model answers all their
    prompts in one batch per step. Both use this class, so a batched run takes exactly the steps a single one does.

    ``restarts``: how often a *give up and restart* (ToolLLaMA's Finish with ``give_up_and_restart``) starts over —
    with an empty memory, a fresh step budget and the failed attempts' calls and results in the prompt's
    ``knowledge`` (the note: 重来的 prompt 会把历史失败的记录加进去). After the last one, giving up stops the run.

    ``guided``: ask the model for guided decoding (strict function calling) - the template's format gives its call
    grammar for this run's tools (``grammar``; None for formats without one, e.g. a conclusion format), and models
    that support it (:func:`labkit.llm.supports_guides`) write only offered tool names and schema argument keys.
    """

    def __init__(self, model_name: str, query: str, template: AgentTemplate, registry: ToolRegistry, *,
                 max_steps: int, max_new_tokens: int | None = None, history: Sequence[tuple[str, str]] = (),
                 step_budget: int | None = None, stop_on_repeat: bool = True, restarts: int = 1,
                 guided: bool = False):
        self.query, self.template, self.registry, self.max_steps = query, template, registry, max_steps
        self.decoding = decoding_for(template.output_format, max_new_tokens)
        self.grammar: Grammar | None = template.format.call_grammar(registry) if guided else None
        self.trace = Trace(query=query, template=template.name, model=model_name)
        self.state = LoopState(history=list(history))
        self.budget = max_steps if step_budget is None else min(step_budget, max_steps)
        self.stop_on_repeat = stop_on_repeat
        self.seen: list[ToolCall] = []
        self.restarts, self.failures, self.attempt_start = restarts, [], 0  # failures: notes for the prompt
        self.done = self.budget <= 0
        if self.done:
            self.trace.stopped = "max_steps"

    def prompt(self) -> str:
        return self.template.render(goal=self.query, tools=self.registry, memory=self.state.memory,
                                    history=self.state.history, max_steps=self.max_steps,
                                    knowledge="\n\n".join(self.failures))

    def advance(self, prompt: str, result: ChatResult) -> None:
        """Read one answer: parse, call the tool, remember; sets ``done`` and ``trace.stopped`` when the loop ends."""
        trace, state = self.trace, self.state
        parsed = self.template.format.parse(result.text, tools=self.registry)
        step = TraceStep(prompt=prompt, output=result.text, parsed=parsed_to_dict(parsed),
                         completion_tokens=result.completion_tokens)
        trace.steps.append(step)
        stopped = None
        if isinstance(parsed, ParseError):
            stopped = "parse_error"
        elif parsed.give_up and len(self.failures) < self.restarts:  # start over, told what failed
            self.failures.append(failed_attempt_note(len(self.failures) + 1, parsed.thought, state.memory))
            state.memory, self.seen, self.attempt_start = [], [], len(trace.steps)
            trace.restarts += 1
        elif parsed.give_up:
            stopped = "give_up"
        elif parsed.is_finish:
            trace.final_answer, stopped = parsed.final_answer, "finished"
        else:
            call = parsed.call
            assert call is not None  # a ParsedAction that is not a finish and not give_up carries a call
            if self.stop_on_repeat and call in self.seen:
                stopped = "repeated_call"
            else:
                self.seen.append(call)
                obs = self.registry.call(call)
                step.observation, step.tool_ok, step.tool_error = obs.text, obs.ok, obs.error
                state.memory.append(CompletedTask(task_name=parsed.thought, call=call, result=obs.text))
                if len(trace.steps) - self.attempt_start >= self.budget:
                    stopped = "max_steps"
        if stopped is not None:
            trace.stopped, self.done = stopped, True


def guide_kwargs(model: ChatModel, runs: Sequence[AgentRun], *, batch: bool) -> dict[str, object]:
    """``guide=`` / ``guides=`` for the runs' call grammars when the model supports guided decoding, else nothing
    (the model decodes freely: API clients and the emulators ignore the option)."""
    grammars = [r.grammar for r in runs]
    if not any(g is not None for g in grammars) or not supports_guides(model):
        return {}
    return {"guides": grammars} if batch else {"guide": grammars[0]}


def run_steps(model: ChatModel, query: str, template: AgentTemplate, registry: ToolRegistry, *,
              max_steps: int, max_new_tokens: int | None = None, history: Sequence[tuple[str, str]] = (),
              step_budget: int | None = None, stop_on_repeat: bool = True,
              restarts: int = 1, guided: bool = False) -> tuple[Trace, LoopState]:
    """Run up to ``max_steps`` tool steps; the trace's ``stopped`` says why the loop ended.

    ``step_budget`` runs fewer steps than the prompt announces (``max_steps`` stays in the prompt), e.g. to keep a
    slow model's demo short; ending on it counts as ``max_steps``. ``restarts``, ``guided``: see :class:`AgentRun`.
    """
    run = AgentRun(model.name, query, template, registry, max_steps=max_steps, max_new_tokens=max_new_tokens,
                   history=history, step_budget=step_budget, stop_on_repeat=stop_on_repeat, restarts=restarts,
                   guided=guided)
    while not run.done:
        prompt = run.prompt()
        run.advance(prompt, model.chat([{"role": "user", "content": prompt}], **run.decoding.kwargs(),
                                       **guide_kwargs(model, [run], batch=False)))
    return run.trace, run.state


def run_many(model: ChatModel, runs: Sequence[AgentRun], *, batch_size: int = 8) -> None:
    """Advance every run to its end, sending the prompts of up to ``batch_size`` active runs per model call (runs
    finished / total are shown as a :class:`labkit.progress.Progress` line)."""
    from labkit.progress import Progress

    progress = Progress(len(runs), f"Agent 循环（{model.name}）", unit="条 query")
    while True:
        active = [r for r in runs if not r.done]
        progress.update(len(runs) - len(active))
        if not active:
            progress.close()
            return
        for i in range(0, len(active), batch_size):
            chunk = active[i: i + batch_size]
            for dec in dict.fromkeys(r.decoding for r in chunk):  # one decoding setting per call
                group = [r for r in chunk if r.decoding == dec]
                prompts = [r.prompt() for r in group]
                results = model.chat_batch([[{"role": "user", "content": p}] for p in prompts], **dec.kwargs(),
                                           **guide_kwargs(model, group, batch=True))
                for run, prompt, result in zip(group, prompts, results):
                    run.advance(prompt, result)
