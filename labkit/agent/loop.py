"""The step loop shared by every agent style: render prompt -> model -> parse -> call tool -> remember.

The loop is driven by the template's output format object (:mod:`labkit.formats`: its parser and its stop markers),
so one engine serves ReAct-style scratchpads, KAgent-style planning and formats declared in a template file: all are
rendered from the ``memory`` of completed tasks in the template's own layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from labkit.agent.trace import Trace, TraceStep, parsed_to_dict
from labkit.llm import ChatModel
from labkit.templates import AgentTemplate, load_template
from labkit.tools import Tool, ToolRegistry, default_registry
from labkit.types import CompletedTask, ParseError, ToolCall

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


def run_steps(model: ChatModel, query: str, template: AgentTemplate, registry: ToolRegistry, *,
              max_steps: int, max_new_tokens: int, history: Sequence[tuple[str, str]] = (),
              step_budget: int | None = None, stop_on_repeat: bool = True) -> tuple[Trace, LoopState]:
    """Run up to ``max_steps`` tool steps; the trace's ``stopped`` says why the loop ended.

    ``step_budget`` runs fewer steps than the prompt announces (``max_steps`` stays in the prompt), e.g. to keep a
    slow model's demo short; ending on it counts as ``max_steps``.
    """
    trace = Trace(query=query, template=template.name, model=model.name)
    state = LoopState(history=list(history))
    seen: list[ToolCall] = []
    for _ in range(max_steps if step_budget is None else min(step_budget, max_steps)):
        prompt = template.render(goal=query, tools=registry, memory=state.memory, history=state.history,
                                 max_steps=max_steps)
        # stop where the *tool* supplies the observation, not the model's imagination
        result = model.chat([{"role": "user", "content": prompt}], max_new_tokens=max_new_tokens,
                            stop=list(template.format.stop_markers) or None)
        parsed = template.format.parse(result.text, tools=registry)
        step = TraceStep(prompt=prompt, output=result.text, parsed=parsed_to_dict(parsed),
                         completion_tokens=result.completion_tokens)
        trace.steps.append(step)
        if isinstance(parsed, ParseError):
            trace.stopped = "parse_error"
            return trace, state
        if parsed.give_up:
            trace.stopped = "give_up"
            return trace, state
        if parsed.is_finish:
            trace.final_answer = parsed.final_answer
            trace.stopped = "finished"
            return trace, state
        call = parsed.call
        assert call is not None  # a ParsedAction that is not a finish and not give_up carries a call
        if stop_on_repeat and call in seen:
            trace.stopped = "repeated_call"
            return trace, state
        seen.append(call)
        obs = registry.call(call)
        step.observation, step.tool_ok = obs.text, obs.ok
        state.memory.append(CompletedTask(task_name=parsed.thought, call=call, result=obs.text))
    trace.stopped = "max_steps"
    return trace, state
