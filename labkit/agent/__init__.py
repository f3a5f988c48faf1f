"""Agent loops over the sandbox tools: ReAct-style scratchpads and the KAgent plan loop with a conclusion."""

from __future__ import annotations

from labkit.agent.loop import (MAX_NEW_TOKENS, STOP_MARKERS, Decoding, ToolsArg, decoding_for, resolve_template,
                               resolve_tools, run_steps)
from labkit.agent.plan import run_conclusion, run_plan, run_plans
from labkit.agent.react import run_react
from labkit.agent.trace import STOP_REASONS, Trace, TraceStep, parsed_to_dict
from labkit.llm import ChatModel
from labkit.templates import AgentTemplate


def run_agent(model: ChatModel, query: str, *, template: str | AgentTemplate = "kagent_planning_zh",
              tools: ToolsArg = None, max_steps: int = 5, max_new_tokens: int | None = None, step_budget: int | None = None,
              conclusion_template: str | AgentTemplate | None = None, guided: bool = False) -> Trace:
    """Run the loop that fits the template: JSON planning formats -> :func:`run_plan`, others -> :func:`run_react`.

    ``conclusion_template`` None picks ``kagent_conclusion_<lang>`` for the planning template's language.
    ``guided``: guided decoding of the steps where the model supports it (see :class:`labkit.agent.loop.AgentRun`).
    """
    tmpl = resolve_template(template)
    if tmpl.format.finishes_with_call:  # a task_complete call ends it: Template-2 concludes
        if conclusion_template is None:
            conclusion_template = f"kagent_conclusion_{tmpl.lang}"
        return run_plan(model, query, tools=tools, template=tmpl, conclusion_template=conclusion_template,
                        max_steps=max_steps, max_new_tokens=max_new_tokens, step_budget=step_budget, guided=guided)
    return run_react(model, query, tools=tools, template=tmpl, max_steps=max_steps, max_new_tokens=max_new_tokens,
                     step_budget=step_budget, guided=guided)


__all__ = ["Trace", "TraceStep", "STOP_REASONS", "STOP_MARKERS", "MAX_NEW_TOKENS", "Decoding", "decoding_for", "parsed_to_dict", "run_react", "run_plan",
           "run_agent", "run_conclusion", "run_plans", "run_steps", "resolve_tools", "resolve_template"]
