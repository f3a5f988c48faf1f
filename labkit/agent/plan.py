"""The KAgent / AutoGPT plan loop: Template-1 plans one JSON task at a time, Template-2 concludes.

Template-1 shows the goal, the tools and the *Completed tasks* memory; the model answers with one task
``{"task_name", "command": {"name", "args"}}``. The loop stops at ``task_complete``, after ``max_steps`` or on a
repeated identical call; then Template-2 turns the completed tasks and their results into the final answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from labkit.agent.loop import ToolsArg, resolve_template, resolve_tools, run_steps
from labkit.agent.trace import Trace, TraceStep, parsed_to_dict
from labkit.llm import ChatModel
from labkit.formats import get_format
from labkit.templates import AgentTemplate
from labkit.tools import ToolRegistry
from labkit.types import CompletedTask

CONCLUDE_AFTER = ("finished", "max_steps", "repeated_call")


def run_conclusion(model: ChatModel, query: str, template: AgentTemplate, registry: ToolRegistry,
                   memory: Sequence[CompletedTask], *, max_new_tokens: int = 256) -> TraceStep:
    """Render the conclusion prompt (Template-2) over the completed tasks and ask the model for the answer."""
    prompt = template.render(goal=query, tools=registry, memory=memory)
    result = model.chat([{"role": "user", "content": prompt}], max_new_tokens=max_new_tokens)
    parsed = template.format.parse(result.text, tools=registry)
    return TraceStep(prompt=prompt, output=result.text, parsed=parsed_to_dict(parsed), kind="conclusion",
                     completion_tokens=result.completion_tokens)


def run_plan(model: ChatModel, query: str, *, tools: ToolsArg = None,
             template: str | AgentTemplate = "kagent_planning_zh",
             conclusion_template: str | AgentTemplate | None = "kagent_conclusion_zh", max_steps: int = 5,
             max_new_tokens: int = 256, step_budget: int | None = None) -> Trace:
    """Plan, call tools, then conclude. A parse error or give-up ends the run without a conclusion.

    When the planning format has its own final answer (e.g. ReAct used as planner) that answer is kept and the
    conclusion prompt is skipped; ``conclusion_template=None`` also skips it.
    """
    tmpl, registry = resolve_template(template), resolve_tools(tools)
    trace, state = run_steps(model, query, tmpl, registry, max_steps=max_steps, max_new_tokens=max_new_tokens,
                             step_budget=step_budget)
    if conclusion_template is None or trace.stopped not in CONCLUDE_AFTER or trace.final_answer is not None:
        return trace
    concl = resolve_template(conclusion_template)
    trace.conclusion_template = concl.name
    step = run_conclusion(model, query, concl, registry, state.memory, max_new_tokens=max_new_tokens)
    trace.steps.append(step)
    if step.ok:
        trace.final_answer = step.parsed.get("final_answer")
    return trace


def is_planning_format(output_format: str) -> bool:
    """Formats that finish with a ``task_complete`` call (no in-format final answer) need Template-2 to conclude."""
    return get_format(output_format).finishes_with_call

