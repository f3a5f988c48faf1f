"""SandboxReader - an EMULATOR of a weaker model whose mistakes depend on how clear the prompt is.

The Meta-Agent judge runs the *same* model on a candidate template and on the benchmark templates and compares the
scores. With :class:`~labkit.llm.sandbox.SandboxTeacher` every prompt would score 100 (it answers from gold
whatever the prompt says, and its optional noise is random, the same for a good and a bad template), so an offline
judge needs a model whose answers depend on the template. This emulator knows the gold answer like the teacher but
makes the mistakes a real mid-size model makes more often on a worse prompt:

=================  ================================================================================================
prompt property    effect (probabilities per prompt; seeded by sha256(seed, prompt), so reproducible)
=================  ================================================================================================
no worked example  ``P_FALLBACK``: it answers in the format it knows best (ReAct, or task_json for ReAct prompts),
of the format      which does not parse in the format asked for. An example = some lines of the prompt that parse
                   in the asked format (placeholders are fine; a JSON repair or an unclosed tag is not).
no rule limiting   ``P_WRONG_TOOL``: it calls a plausible tool that was not the right one.
it to the listed
tools
long prompt        ``P_SLIP_PER_1K`` per 1000 characters over ``LONG_PROMPT`` (capped at ``P_SLIP_MAX``): it
                   drops or garbles an argument (lost in the middle).
any prompt         ``P_BASE_SLIP``.
=================  ================================================================================================

These rules are assumptions, written down so a student can argue with them - the Meta-Agent *mechanism* (ε rule,
threshold, funnel) is what the offline run teaches. With an API key the notebook judges a real model instead.
``ChatResult.meta`` names the prompt features and the mistakes made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from labkit.llm.sandbox import NAME as TEACHER_NAME
from labkit.llm.sandbox import SandboxTeacher, TeacherPlan
from labkit.types import ParsedAction

NAME = "sandbox-reader (emulator of a prompt-sensitive model)"
P_FALLBACK = 0.35
P_WRONG_TOOL = 0.15
P_BASE_SLIP = 0.02
P_SLIP_PER_1K = 0.05
P_SLIP_MAX = 0.40
LONG_PROMPT = 2500
TOOL_RULE = re.compile(r"only (use|call|pick|the)|exclusively use|listed|one of \[|from the list|只能|列表中|列出的|"
                       r"不要编造工具|只使用", re.IGNORECASE)
_STRUCTURAL_REPAIRS = {"json_repair", "unterminated_tag", "unterminated_think"}
_MAX_EXAMPLE_LINES = 8


def has_worked_example(prompt: str, output_format: str) -> bool:
    """Whether some run of up to 8 lines of the prompt reads as a tool call in ``output_format``.

    Runs start at lines holding the way a step of that format begins (its example's text before the thought, e.g.
    ``Thought:`` or ``{"task_name": "``), so only a few candidates are parsed.
    """
    from labkit.formats import get_format
    from labkit.formats.base import PLACEHOLDERS

    fmt = get_format(output_format)
    if not fmt.has_call_form:
        return True
    start = fmt.skeleton("en").split(PLACEHOLDERS["en"]["thought"], 1)[0].strip() or (fmt.markers or ("",))[0]
    lines = prompt.splitlines()
    for i, line in enumerate(lines):
        if start not in line:
            continue
        for w in range(1, _MAX_EXAMPLE_LINES + 1):
            parsed = fmt.parse("\n".join(lines[i: i + w])[line.index(start):])
            if isinstance(parsed, ParsedAction) and parsed.call is not None and \
                    not _STRUCTURAL_REPAIRS & set(parsed.repaired):
                return True
            if i + w >= len(lines):
                break
    return False


@dataclass(frozen=True)
class PromptFeatures:
    """The prompt properties the emulator's mistakes depend on (see the module docstring)."""

    example: bool                # a worked example of the asked format (has_worked_example)
    tool_rule: bool              # a rule limiting it to the listed tools (TOOL_RULE)
    chars: int


def prompt_features(prompt: str, output_format: str) -> PromptFeatures:
    return PromptFeatures(example=has_worked_example(prompt, output_format), tool_rule=bool(TOOL_RULE.search(prompt)),
                          chars=len(prompt))


class SandboxReader(SandboxTeacher):
    """An EMULATOR of a prompt-sensitive model (see the module docstring); gold knowledge from the query bank."""

    name = NAME

    def __init__(self, seed: int = 0, **kw: Any):
        super().__init__(noise=0.0, seed=seed, **kw)

    def __repr__(self) -> str:
        return f"SandboxReader(EMULATOR of a prompt-sensitive model; seed={self.seed}, {len(self.queries)} gold queries)"

    def _noisy(self, prompt: str, plan: TeacherPlan) -> tuple[str, str | None]:
        text, mistakes = self.answer(prompt, plan)
        return text, "+".join(mistakes) or None

    def answer(self, prompt: str, plan: TeacherPlan) -> tuple[str, list[str]]:
        """The reply and the mistakes made (empty list: the clean gold step)."""
        call = plan.call
        if call is None:  # finishing and concluding steps are written cleanly
            return self.render(plan), []
        feats = prompt_features(prompt, plan.format)
        rng = self._rng(prompt)
        mistakes: list[str] = []
        if not feats.example and rng.random() < P_FALLBACK:
            fallback = "task_json" if plan.format == "react" else "react"
            mistakes.append("format_fallback")
            plan = replace(plan, format=fallback)
        if not feats.tool_rule and rng.random() < P_WRONG_TOOL:
            others = sorted(n for n in self.tool_names() if n not in (call.name, "task_complete"))
            call = replace(call, name=rng.choice(others))
            mistakes.append("wrong_tool")
        p_slip = P_BASE_SLIP + min(P_SLIP_MAX, P_SLIP_PER_1K * max(0, feats.chars - LONG_PROMPT) / 1000)
        if call.args and rng.random() < p_slip:
            key = rng.choice(sorted(call.args))
            if rng.random() < 0.5:
                call = replace(call, args={k: v for k, v in call.args.items() if k != key})
                mistakes.append("missing_arg")
            else:
                call = replace(call, args={**call.args, key: self._wrong_value(call.name, key, call.args[key], rng)})
                mistakes.append("wrong_arg")
        return self.render(replace(plan, call=call)), mistakes


assert NAME != TEACHER_NAME
