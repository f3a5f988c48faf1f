"""The KAgent / AutoGPT plan loop: Template-1 plans one JSON task at a time, Template-2 concludes.

Template-1 shows the goal, the tools and the *Completed tasks* memory; the model answers with one task
``{"task_name", "command": {"name", "args"}}``. The loop stops at ``task_complete``, after ``max_steps`` or on a
repeated identical call; then Template-2 turns the completed tasks and their results into the final answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from labkit.agent.loop import AgentRun, ToolsArg, decoding_for, resolve_template, resolve_tools, run_many, run_steps
from labkit.agent.trace import Trace, TraceStep, parsed_to_dict
from labkit.llm import ChatModel
from labkit.templates import AgentTemplate
from labkit.tools import ToolRegistry
from labkit.types import ChatResult, CompletedTask

CONCLUDE_AFTER = ("finished", "max_steps", "repeated_call")


def conclusion_prompt(query: str, template: AgentTemplate, registry: ToolRegistry,
                      memory: Sequence[CompletedTask]) -> str:
    """Template-2 rendered over the completed tasks and their results."""
    return template.render(goal=query, tools=registry, memory=memory)


def conclusion_step(template: AgentTemplate, registry: ToolRegistry, prompt: str, result: ChatResult) -> TraceStep:
    parsed = template.format.parse(result.text, tools=registry)
    return TraceStep(prompt=prompt, output=result.text, parsed=parsed_to_dict(parsed), kind="conclusion",
                     completion_tokens=result.completion_tokens)


def run_conclusion(model: ChatModel, query: str, template: AgentTemplate, registry: ToolRegistry,
                   memory: Sequence[CompletedTask], *, max_new_tokens: int | None = None) -> TraceStep:
    """Render the conclusion prompt (Template-2) over the completed tasks and ask the model for the answer."""
    prompt = conclusion_prompt(query, template, registry, memory)
    result = model.chat([{"role": "user", "content": prompt}],
                        **decoding_for(template.output_format, max_new_tokens).kwargs())
    return conclusion_step(template, registry, prompt, result)


def needs_conclusion(trace: Trace, conclusion_template: object) -> bool:
    return conclusion_template is not None and trace.stopped in CONCLUDE_AFTER and trace.final_answer is None


def add_conclusion(trace: Trace, template: AgentTemplate, step: TraceStep) -> Trace:
    trace.conclusion_template = template.name
    trace.steps.append(step)
    if step.ok:
        trace.final_answer = step.parsed.get("final_answer")
    return trace


def run_plan(model: ChatModel, query: str, *, tools: ToolsArg = None,
             template: str | AgentTemplate = "kagent_planning_zh",
             conclusion_template: str | AgentTemplate | None = "kagent_conclusion_zh", max_steps: int = 5,
             max_new_tokens: int | None = None, step_budget: int | None = None, guided: bool = False) -> Trace:
    """Plan, call tools, then conclude. A parse error or give-up ends the run without a conclusion.

    When the planning format has its own final answer (e.g. ReAct used as planner) that answer is kept and the
    conclusion prompt is skipped; ``conclusion_template=None`` also skips it. ``guided``: planning steps use guided
    decoding where the model supports it (:class:`~labkit.agent.loop.AgentRun`); the conclusion is free text.
    """
    tmpl, registry = resolve_template(template), resolve_tools(tools)
    trace, state = run_steps(model, query, tmpl, registry, max_steps=max_steps, max_new_tokens=max_new_tokens,
                             step_budget=step_budget, guided=guided)
    if not needs_conclusion(trace, conclusion_template):
        return trace
    concl = resolve_template(conclusion_template)  # type: ignore[arg-type]
    step = run_conclusion(model, query, concl, registry, state.memory, max_new_tokens=max_new_tokens)
    return add_conclusion(trace, concl, step)


def run_plans(model: ChatModel, items: Sequence[tuple[str, ToolsArg]], *,
              template: str | AgentTemplate = "kagent_planning_zh",
              conclusion_template: str | AgentTemplate | None = "kagent_conclusion_zh", max_steps: int = 5,
              max_new_tokens: int | None = None, batch_size: int = 8, guided: bool = False) -> list[Trace]:
    """:func:`run_plan` for many ``(query, tools)`` at once: every step (and the conclusions) is one batched model
    call over all runs still going, so a local model answers them together. Same traces as one by one.
    ``guided``: as in :func:`run_plan` (one grammar per row: each run's own offered tools)."""
    tmpl = resolve_template(template)
    runs = [AgentRun(model.name, q, tmpl, resolve_tools(t), max_steps=max_steps, max_new_tokens=max_new_tokens,
                     guided=guided) for q, t in items]
    run_many(model, runs, batch_size=batch_size)
    todo = [r for r in runs if needs_conclusion(r.trace, conclusion_template)]
    if todo:
        concl = resolve_template(conclusion_template)  # type: ignore[arg-type]
        dec = decoding_for(concl.output_format, max_new_tokens)
        for i in range(0, len(todo), batch_size):
            chunk = todo[i: i + batch_size]
            prompts = [conclusion_prompt(r.query, concl, r.registry, r.state.memory) for r in chunk]
            results = model.chat_batch([[{"role": "user", "content": p}] for p in prompts], **dec.kwargs())
            for r, prompt, result in zip(chunk, prompts, results):
                add_conclusion(r.trace, concl, conclusion_step(concl, r.registry, prompt, result))
    return [r.trace for r in runs]

