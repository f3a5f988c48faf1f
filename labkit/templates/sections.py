"""The section check (the Meta-Agent's first filter): which of the six sections (profile, instruction, tools, goal,
memory, format) a template's text contains, found by rendering it with sentinel values."""

from __future__ import annotations

import re

from labkit.formats import detect_format
from labkit.templates.template import SECTIONS, AgentTemplate
from labkit.types import CompletedTask, ToolCall

_SENTINEL_GOAL = "ZQGOALSENTINEL"
_SENTINEL_TOOL = "zq_sentinel_tool"
_SENTINEL_DONE_TOOL = "zq_done_tool"  # the memory's completed call names another tool, so it cannot pass as a tool list
_SENTINEL_RESULT = "ZQRESULTSENTINEL"
_PROFILE_CUES = re.compile(r"you are|you.re|act as|\brole\b|as an? [a-z]+ (agent|assistant|planner)|你是|作为|扮演|"
                           r"角色|身份", re.IGNORECASE)
_ANSWER_CUES = re.compile(r"answer|conclusion|reply|respond|回答|答案|结论|回复", re.IGNORECASE)
_INSTRUCTION_CUES = re.compile(r"constraint|rule|\bnotes?:|instruction|guideline|must|never|do not|don't|only use|"
                               r"规则|约束|指令|注意|要求|必须|不要|不能|只能|务必", re.IGNORECASE)


def sentinel_render(template: AgentTemplate) -> str:
    """The template rendered with sentinel values (goal, tool, completed task): what the section check and the
    format detection of a template file read."""
    tool = {"name": _SENTINEL_TOOL, "description": "sentinel", "required": ["q"],
            "parameters": {"type": "object", "properties": {"q": {"type": "string", "description": "q"}}}}
    task = CompletedTask("sentinel task", ToolCall(_SENTINEL_DONE_TOOL, {"q": "x"}), _SENTINEL_RESULT)
    return template.render(goal=_SENTINEL_GOAL, tools=[tool], memory=[task], history=[("hi", "hello")],
                           knowledge="sentinel knowledge")


def required_sections(template: AgentTemplate) -> list[str]:
    """All six for planning templates; conclusion templates need no tools section."""
    return [s for s in SECTIONS if not (template.kind == "conclusion" and s == "tools")]


def check_sections(template: AgentTemplate) -> list[str]:
    """Sections the template is missing (Meta-Agent's filter), found by rendering with sentinel values.

    goal/tools/memory: the sentinel goal, tool and task result must appear; format: the text must ask for its
    declared output format; profile/instruction: the static text must contain a role cue / a rule cue.
    """
    rendered = sentinel_render(template)
    static = rendered
    for sentinel in (_SENTINEL_GOAL, _SENTINEL_TOOL, _SENTINEL_DONE_TOOL, _SENTINEL_RESULT):
        static = static.replace(sentinel, "")
    present = {
        "goal": _SENTINEL_GOAL in rendered,
        "tools": _SENTINEL_TOOL in rendered,
        "memory": _SENTINEL_RESULT in rendered,
        "format": detect_format(rendered) == template.output_format
        and (template.kind != "conclusion" or bool(_ANSWER_CUES.search(static))),
        "profile": bool(_PROFILE_CUES.search(static)),
        "instruction": bool(_INSTRUCTION_CUES.search(static)),
    }
    return [s for s in required_sections(template) if not present[s]]
