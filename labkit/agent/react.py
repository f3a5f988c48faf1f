"""ReAct: Thought -> Action -> Action Input -> Observation, repeated until a Final Answer."""

from __future__ import annotations

from labkit.agent.loop import ToolsArg, resolve_template, resolve_tools, run_steps
from labkit.agent.trace import Trace
from labkit.llm import ChatModel
from labkit.templates import AgentTemplate


def run_react(model: ChatModel, query: str, *, tools: ToolsArg = None, template: str | AgentTemplate = "react",
              max_steps: int = 5, max_new_tokens: int | None = None, step_budget: int | None = None,
              restarts: int = 1, guided: bool = False) -> Trace:
    """Answer ``query`` with a scratchpad loop; the model's own Final Answer ends it (no conclusion prompt).

    ``tools``: None (every sandbox tool), a list of tool names, Tools, or a ToolRegistry. ``restarts``: how often a
    ToolLLaMA ``give_up_and_restart`` starts over with the failed attempts in the prompt (see ``run_steps``).
    ``guided``: guided decoding where the model supports it (see :class:`~labkit.agent.loop.AgentRun`).
    """
    tmpl = resolve_template(template)
    trace, _ = run_steps(model, query, tmpl, resolve_tools(tools), max_steps=max_steps,
                         max_new_tokens=max_new_tokens, step_budget=step_budget, restarts=restarts, guided=guided)
    return trace
