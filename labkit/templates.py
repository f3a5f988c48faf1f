"""Agent prompt templates: YAML files under ``data/templates/`` rendered with Jinja2.

A template file holds metadata (name, family, kind, output_format, lang, sections, description, source) and the
Jinja2 ``template`` text. :meth:`AgentTemplate.render` fills it with blocks built in the family's own style:

* ``tools_block`` - ReAct ``Name: x. Description: y. Parameters: {...}`` lines, KAgent/AutoGPT ``Commands:`` with
  numbered JSON specs, ModelScope's JSON list of APIs, or ToolLLaMA's function list with ``Finish``;
* ``memory_block`` - completed tasks as a KAgent JSON list, ReAct/ToolLLaMA scratchpad lines, ModelScope think
  blocks, or plain ``task: result`` lines (conclusion templates);
* ``history_block``, ``knowledge``, ``goal``, ``now``, ``max_steps``, ``tool_names``, ``tool_specs``.

Optional keys ``tool_style`` / ``memory_style`` override the output format's default layout, so new templates need
no code. A template may bring an output format no built-in has: ``output_format`` names it and a ``format:`` mapping
declares it (:mod:`labkit.formats.declared`); loading the template registers the format, so it parses, renders and
drives the agent loop like a built-in one.

Templates are looked up by name in ``data/templates/`` and then in extra folders: :func:`add_template_dir` or the
``LABKIT_TEMPLATE_DIRS`` environment variable (``os.pathsep``-separated), e.g. the Meta-Agent's kept templates.

Template files are untrusted (Meta-Agent writes them): they are read with a bounded YAML loader (no aliases) and
compiled and rendered in a bounded Jinja2 sandbox (:mod:`labkit.templating`) with no globals but ``range``, so
``{{ cycler.__init__.__globals__.os.popen('id') }}``, a self-calling macro, ``'a' * 200000`` in a loop or
``center(2 * 10 ** 9)`` raise a :class:`~labkit.errors.DataFileError` naming the file instead of running anything
or exhausting time and memory.

Loading is all or nothing: a template is validated completely (its format declared but not registered, its text
rendered and checked to ask for that format) before its format is registered, and registration refuses a format
whose markers would change the format detected for another template's prompt (every template file found, the
prompts of the formats already declared): a rejected file leaves the format registry as it was.

What a prompt shows of completed tasks is bounded (:func:`prompt_task`): a 5 MB argument or thought from a model
is clipped before it reaches the next prompt.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox
import yaml

from labkit.bounds import MAX_PROMPT_VALUE_CHARS, clip, clip_value, show, text_size
from labkit.errors import DataFileError, LabkitError, UnknownNameError
from labkit.formats import (
    BUILTIN_FORMATS,
    COMPLETE_TOOL,
    FINISH_TOOL,
    GIVE_ANSWER,
    GIVE_UP,
    MEMORY_STYLES,
    THINK_END,
    THINK_START,
    TOOL_STYLES,
    FormatSpecError,
    OutputFormat,
    declare,
    detect_format,
    get_format,
    register,
)
from labkit.jsonl import read_text
from labkit.paths import data_dir
from labkit.templating import ENV, MAX_FILE_CHARS, RenderLimitError, budget, load_yaml
from labkit.types import CompletedTask, ToolCall

FAMILIES = ("react", "modelscope", "autogpt", "toolllama", "kagent", "meta")
KINDS = ("planning", "conclusion")
LANGS = ("zh", "en")
SECTIONS = ("profile", "instruction", "tools", "goal", "memory", "format")
REQUIRED_KEYS = ("name", "family", "kind", "output_format", "lang", "sections", "description", "source", "template")
OPTIONAL_KEYS = ("tool_style", "memory_style", "format")
DEFAULT_NOW = "2025-03-15 10:00:00"  # the sandbox world's fixed "now" (labkit.tools.world.TODAY, 10:00)
TEMPLATE_DIRS_ENV = "LABKIT_TEMPLATE_DIRS"
_COMPLETE_SPEC = {"name": COMPLETE_TOOL, "description": "Call when the gathered information answers the goal.",
                  "parameters": {"type": "object", "properties": {}}, "returns": "", "required": []}
_FINISH_FUNCTION = {
    "name": FINISH_TOOL,
    "description": "Call at the end. Give the answer, or give up and restart if you cannot go on.",
    "parameters": {"type": "object", "properties": {
        "return_type": {"type": "string", "enum": [GIVE_ANSWER, GIVE_UP]},
        "final_answer": {"type": "string", "description": "the final answer (for give_answer)"}},
        "required": ["return_type"]},
}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _compact(value: Any) -> str:
    """JSON without spaces: tool specs are the biggest part of a prompt and training runs on a CPU."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def tool_specs(tools: Any) -> list[dict[str, Any]]:
    """KAgent-style spec dicts (name, description, parameters, returns, required) from Tools or spec dicts."""
    specs = []
    for tool in tools:
        if hasattr(tool, "spec"):
            spec = dict(tool.spec())
        elif isinstance(tool, dict):
            spec = dict(tool.get("function", tool)) if tool.get("type") == "function" else dict(tool)
        else:
            raise TypeError(f"expected a Tool or a function-spec dict, got {type(tool).__name__}")
        params = spec.get("parameters") or {"type": "object", "properties": {}}
        spec["parameters"] = params
        spec.setdefault("required", list(params.get("required", [])))
        spec.setdefault("description", "")
        specs.append(spec)
    return specs


def _param_summary(spec: dict[str, Any]) -> dict[str, str]:
    props = spec["parameters"].get("properties") or {}
    return {k: str((v or {}).get("description") or (v or {}).get("type") or "") for k, v in props.items()}


def format_tools(specs: Sequence[dict[str, Any]], style: str) -> str:
    """The tools section in one family's style (see module docstring)."""
    if style == "react":
        return "\n".join(f"Name: {s['name']}. Description: {s['description']}. "
                         f"Parameters: {_dumps(_param_summary(s))}" for s in specs)
    if style == "commands":
        lines = []
        for i, s in enumerate(specs, 1):
            spec = {"name": s["name"], "description": s["description"], "parameters": _param_summary(s)}
            if s.get("required"):
                spec["required"] = list(s["required"])
            lines.append(f"{i}:{_compact(spec)}")
        return "Commands:\n" + "\n".join(lines)
    if style == "apis":
        return _compact([{"api_name": s["name"], "description": s["description"],
                        "parameters": _param_summary(s), "required": list(s.get("required") or [])}
                       for s in specs])
    if style == "functions":
        funcs = [{"name": s["name"], "description": s["description"], "parameters": _param_summary(s)}
                 for s in specs]
        finish = {"name": FINISH_TOOL, "description": _FINISH_FUNCTION["description"],
                  "parameters": {"return_type": f"{GIVE_ANSWER} or {GIVE_UP}",
                                 "final_answer": "the answer (with give_answer)"}}
        return "\n".join(_compact(f) for f in [*funcs, finish])
    raise ValueError(f"unknown tool style {style!r}; known: {', '.join(TOOL_STYLES)}")


def prompt_task(task: CompletedTask, limit: int = MAX_PROMPT_VALUE_CHARS) -> CompletedTask:
    """A completed task as a prompt shows it: thought, tool name, arguments and result each within about ``limit``
    characters (long strings cut with a marker, deep or long arguments elided: :func:`labkit.bounds.clip_value`).
    Ordinary tasks come back unchanged."""
    call, args = task.call, task.call.args
    if text_size(args, limit) > limit:
        args = clip_value(args, limit)
    name = clip(call.name, limit) if isinstance(call.name, str) else show(call.name)
    if args is call.args and name == call.name and len(task.task_name) <= limit and len(task.result) <= limit:
        return task
    return CompletedTask(clip(task.task_name, limit), ToolCall(name, args), clip(task.result, limit))


def format_memory(memory: Sequence[CompletedTask], style: str, fmt: OutputFormat | None = None) -> str:
    """Completed tasks in one family's style ('' when there are none); ``own``: the output format's own layout.
    Each task is shown within bounds (:func:`prompt_task`)."""
    if not memory:
        return ""
    memory = [prompt_task(t) for t in memory]
    if style == "own":
        if fmt is None:
            raise ValueError("memory style 'own' needs the output format")
        return fmt.render_memory(memory)
    if style == "kagent":
        rows = [_dumps({"task_id": i, "task_name": t.task_name, "command": t.call.to_dict(), "result": t.result})
                for i, t in enumerate(memory, 1)]
        return "[\n" + ",\n".join(rows) + "\n]"
    if style == "scratchpad":
        return "\n".join(f"Thought: {t.task_name}\nAction: {t.call.name}\nAction Input: {_dumps(t.call.args)}\n"
                         f"Observation: {t.result}" for t in memory)
    if style == "modelscope":
        return "\n".join(f"{t.task_name}{THINK_START}{_dumps({'api_name': t.call.name, 'parameters': t.call.args})}"
                         f"{THINK_END}\n<|startofexec|>{t.result}<|endofexec|>" for t in memory)
    if style == "results":
        return "\n".join(f"{i}. {t.task_name}: {t.result}" for i, t in enumerate(memory, 1))
    raise ValueError(f"unknown memory style {style!r}; known: {', '.join(MEMORY_STYLES)}")


def format_history(history: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"User: {q}\nAssistant: {a}" for q, a in history)


@dataclass
class AgentTemplate:
    name: str
    family: str
    kind: str
    output_format: str
    lang: str
    sections: list[str]
    description: str
    source: str
    path: Path
    text: str = field(repr=False, default="")
    tool_style: str = ""
    memory_style: str = ""
    format_spec: dict[str, Any] | None = None  # the ``format:`` declaration, for a format no built-in has
    fmt: OutputFormat | None = field(default=None, repr=False, compare=False)  # the format object, when known

    def __post_init__(self) -> None:
        self.tool_style = self.tool_style or self.format.tool_style
        self.memory_style = self.memory_style or self.format.memory_style
        try:
            self._compiled = ENV.from_string(self.text)
        except jinja2.TemplateSyntaxError as exc:
            raise DataFileError(self.path, f"Jinja2 syntax error: {exc.message}", line=_yaml_line(self, exc.lineno),
                                field="template") from None
        except (RecursionError, MemoryError, SyntaxError, ValueError) as exc:  # e.g. 10,000 nested brackets
            raise DataFileError(self.path, f"cannot compile: {type(exc).__name__} (nested too deeply?)",
                                field="template") from None

    def render(self, *, goal: str, tools: Any, memory: Sequence[CompletedTask] = (),
               history: Sequence[tuple[str, str]] = (), knowledge: str = "", now: str | None = None,
               max_steps: int = 5) -> str:
        """The full prompt. ``tools``: a ToolRegistry, a sequence of Tools, or function-spec dicts."""
        specs = tool_specs(tools)
        if self.format.finishes_with_call and COMPLETE_TOOL not in {s["name"] for s in specs}:
            specs.append(dict(_COMPLETE_SPEC))
        context = {
            "goal": goal, "knowledge": knowledge, "now": now or DEFAULT_NOW, "max_steps": max_steps,
            "tools_block": format_tools(specs, self.tool_style), "tool_specs": specs,
            "tool_names": ", ".join(s["name"] for s in specs),
            "memory_block": format_memory(list(memory), self.memory_style, self.format),
            "history_block": format_history(list(history)),
        }
        try:
            with budget(context):
                text = self._compiled.render(**context)
        except RenderLimitError as exc:
            raise DataFileError(self.path, f"the template goes past a render limit: {exc}", field="template") from None
        except jinja2.sandbox.SecurityError as exc:
            raise DataFileError(self.path, f"unsafe template, refused by the sandbox: {exc}",
                                field="template") from None
        except jinja2.TemplateError as exc:
            raise DataFileError(self.path, f"cannot render: {clip(str(exc), 500)}", field="template") from None
        except (ArithmeticError, LookupError, TypeError, ValueError) as exc:  # e.g. {{ 1 / 0 }}, {{ goal + 1 }}
            raise DataFileError(self.path, f"cannot render: {type(exc).__name__}: {clip(str(exc), 500)}",
                                field="template") from None
        except RecursionError:  # a guard missed: still the file's fault, not the caller's
            raise DataFileError(self.path, "cannot render: RecursionError", field="template") from None
        return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"

    @property
    def format(self) -> OutputFormat:
        """The output format object (built-in, or the one this template declares)."""
        return self.fmt if self.fmt is not None else get_format(self.output_format)


def _yaml_line(template: AgentTemplate, template_line: int | None) -> int | None:
    """Map a line inside the ``template`` text to the YAML file's line (best effort)."""
    if template_line is None:
        return None
    try:
        lines = template.path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for i, line in enumerate(lines, 1):
        if line.startswith("template:"):
            return i + template_line
    return None


def templates_dir() -> Path:
    return data_dir() / "templates"


_extra_dirs: list[Path] = []


def add_template_dir(path: str | Path) -> Path:
    """Look template names up in ``path`` too (after data/templates and earlier additions)."""
    path = Path(path).resolve()
    if path not in _extra_dirs:
        _extra_dirs.append(path)
    return path


def templates_in(folder: str | Path) -> list[AgentTemplate]:
    """Every template file in ``folder`` (e.g. the Meta-Agent's kept ones), loaded, with the folder added to the
    name lookup (:func:`add_template_dir`) so that samples naming them load later. A name that resolves to another
    file (data/templates or an earlier folder wins) raises :class:`DataFileError`: the data would be labelled with
    one template and evaluated with another. A missing folder raises DataFileError too."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFileError(folder, "template folder not found")
    add_template_dir(folder)
    found = _template_paths()
    out = []
    for path in sorted(folder.glob("*.yaml")):
        template = load_template(path)
        other = found.get(template.name)
        if other is None:
            raise DataFileError(path, f"the name {template.name!r} differs from the file name: names are looked up "
                                f"as <name>.yaml", field="name")
        if other.resolve() != path.resolve():
            raise DataFileError(path, f"template name {template.name!r} is already taken by {other}; rename the file "
                                "or drop the other folder from the template search path", field="name")
        out.append(template)
    return out


def template_dirs() -> list[Path]:
    """Where template names are looked up: data/templates, then LABKIT_TEMPLATE_DIRS, then add_template_dir()."""
    env = [Path(p).resolve() for p in os.environ.get(TEMPLATE_DIRS_ENV, "").split(os.pathsep) if p.strip()]
    return list(dict.fromkeys([templates_dir(), *env, *_extra_dirs]))


def _template_paths() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in template_dirs():
        for p in sorted(folder.glob("*.yaml")):
            found.setdefault(p.stem, p)  # the first folder wins, so data/templates cannot be shadowed
    return found


def list_templates() -> list[str]:
    return sorted(_template_paths())


def load_template(name_or_path: str | Path) -> AgentTemplate:
    """Load and validate one template (a name from :func:`template_dirs` or a YAML path); bad files raise
    DataFileError naming file and field. A ``format:`` declaration is registered only once the whole file is valid
    and only if its markers capture no other template's prompt (see the module docstring)."""
    template = _build(_template_path(name_or_path))
    if template.format.declared:
        _register(template)
    return template


def load_templates(names: Iterable[str] | None = None) -> list[AgentTemplate]:
    return [load_template(n) for n in (list_templates() if names is None else names)]


def _template_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        found = _template_paths().get(str(name_or_path))
        if found is None:
            raise UnknownNameError("template", str(name_or_path), list_templates())
        path = found
    if not path.is_file():
        raise DataFileError(path, "file not found" if not path.exists() else "not a file")
    return path


def _read(path: Path) -> dict[str, Any]:
    if path.stat().st_size > 4 * MAX_FILE_CHARS:
        raise DataFileError(path, f"the file is larger than a template file may be ({MAX_FILE_CHARS} characters)")
    try:
        data = load_yaml(read_text(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataFileError(path, f"invalid YAML: {clip(str(getattr(exc, 'problem', exc)), 500)}",
                            line=mark.line + 1 if mark else None) from None
    except RecursionError:
        raise DataFileError(path, "invalid YAML: nested too deeply") from None
    if not isinstance(data, dict):
        raise DataFileError(path, f"expected a YAML mapping, got {type(data).__name__}")
    return data


def _build(path: Path) -> AgentTemplate:
    """The template in ``path``, fully validated; registers nothing."""
    data = _read(path)
    for key in REQUIRED_KEYS:
        if key not in data or data[key] in (None, ""):
            raise DataFileError(path, "missing field", field=key)
    for key in ("name", "description", "source", "template"):
        if not isinstance(data[key], str):
            raise DataFileError(path, f"expected text, got {type(data[key]).__name__}", field=key)
    unknown = [k for k in data if k not in REQUIRED_KEYS + OPTIONAL_KEYS]
    if unknown:
        raise DataFileError(path, f"unknown key; allowed: {', '.join(REQUIRED_KEYS + OPTIONAL_KEYS)}",
                            field=clip(str(unknown[0]), 100))
    for key, allowed in (("family", FAMILIES), ("kind", KINDS), ("lang", LANGS),
                         ("tool_style", TOOL_STYLES + ("",)), ("memory_style", MEMORY_STYLES + ("",))):
        if data.get(key, "") not in allowed:
            raise DataFileError(path, f"unknown value {show(data[key])}; allowed: {', '.join(a for a in allowed if a)}",
                                field=key)
    fmt = _output_format(path, data)
    sections = data["sections"]
    if not isinstance(sections, list) or any(s not in SECTIONS for s in sections):
        raise DataFileError(path, f"must be a list drawn from {', '.join(SECTIONS)}; got {show(sections)}",
                            field="sections")
    if (data["kind"] == "conclusion") != (not fmt.has_call_form):
        raise DataFileError(path, "conclusion templates (and only they) use an answer-only format such as "
                            "'conclusion'", field="output_format")
    if data.get("memory_style") == "own" and fmt.memory_style != "own":
        raise DataFileError(path, f"format {fmt.name!r} has no own memory layout", field="memory_style")
    template = AgentTemplate(
        name=data["name"], family=data["family"], kind=data["kind"], output_format=fmt.name,
        lang=data["lang"], sections=list(sections), description=data["description"].strip(),
        source=data["source"].strip(), path=path, text=data["template"],
        tool_style=data.get("tool_style", ""), memory_style=data.get("memory_style", ""),
        format_spec=dict(data["format"]) if data.get("format") is not None else None, fmt=fmt)
    asked = detect_format(_sentinel_render(template), extra=[fmt] if fmt.declared else [])
    if asked != template.output_format:
        raise DataFileError(path, f"the text asks for format {asked!r} (by its markers), not the declared "
                            f"{template.output_format!r}", field="template")
    return template


def _output_format(path: Path, data: dict[str, Any]) -> OutputFormat:
    """The template's output format: a built-in name, or the format its ``format:`` mapping declares (declared
    here, not registered)."""
    name = data["output_format"]
    if not isinstance(name, str):
        raise DataFileError(path, f"expected a format name, got {type(name).__name__}", field="output_format")
    if data.get("format") is None:
        if name not in BUILTIN_FORMATS:
            raise DataFileError(path, f"unknown output format {show(name)}: use a built-in one "
                                f"({', '.join(BUILTIN_FORMATS)}) or declare it in a 'format:' mapping",
                                field="output_format")
        return BUILTIN_FORMATS[name]
    try:
        return declare(name, data["format"], builtin_names=list(BUILTIN_FORMATS))
    except FormatSpecError as exc:
        raise DataFileError(path, str(exc), field=_spec_field(exc)) from None


def _spec_field(exc: FormatSpecError) -> str:
    return "output_format" if exc.field == "output_format" else f"format.{exc.field}".rstrip(".")


def _register(template: AgentTemplate) -> None:
    """Register the template's declared format, checked against every other template file's prompt."""
    prompts = [(f"the template {p}", text, fmt) for p, text, fmt in _known_prompts(exclude=template.path)]
    try:
        register(template.format, prompts=prompts, witness=_sentinel_render(template))  # type: ignore[arg-type]
    except FormatSpecError as exc:
        raise DataFileError(template.path, str(exc), field=_spec_field(exc)) from None


_prompt_cache: dict[Path, tuple[tuple[int, int], tuple[str, OutputFormat] | None]] = {}


def _known_prompts(exclude: Path) -> list[tuple[Path, str, OutputFormat]]:
    """``(file, sentinel render, its format)`` of every template file under :func:`template_dirs` that validates
    on its own (cached per file version), except ``exclude``."""
    out = []
    skip = exclude.resolve()
    for path in _template_paths().values():
        path = path.resolve()
        if path == skip:
            continue
        try:
            st = path.stat()
        except OSError:
            continue
        version = (st.st_mtime_ns, st.st_size)
        cached = _prompt_cache.get(path)
        if cached is None or cached[0] != version:
            try:
                tmpl = _build(path)
                entry: tuple[str, OutputFormat] | None = (_sentinel_render(tmpl), tmpl.format)
            except LabkitError:
                entry = None  # a broken file is reported when it is loaded, not here
            _prompt_cache[path] = cached = (version, entry)
        if cached[1] is not None:
            out.append((path, *cached[1]))
    return out


def template_yaml(data: dict[str, Any]) -> str:
    """A template file's text for a mapping of its keys (the ``template`` text as a literal block), e.g. to save a
    generated template; :func:`load_template` reads it back."""

    class _Dumper(yaml.SafeDumper):
        pass

    def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _text)
    _Dumper.ignore_aliases = lambda self, data: True  # type: ignore[method-assign]  # the loader refuses aliases
    order = [k for k in REQUIRED_KEYS + OPTIONAL_KEYS if k in data and k != "template"] + ["template"]
    body = {k: data[k] for k in order if k in data}
    return yaml.dump(body, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)


# ---------------------------------------------------------------- Meta-Agent section check

_SENTINEL_GOAL = "ZQGOALSENTINEL"
_SENTINEL_TOOL = "zq_sentinel_tool"
_SENTINEL_DONE_TOOL = "zq_done_tool"  # the memory's completed call names another tool, so it cannot pass as a tool list
_SENTINEL_RESULT = "ZQRESULTSENTINEL"
_PROFILE_CUES = re.compile(r"you are|you.re|act as|\brole\b|as an? [a-z]+ (agent|assistant|planner)|你是|作为|扮演|"
                           r"角色|身份", re.IGNORECASE)
_ANSWER_CUES = re.compile(r"answer|conclusion|reply|respond|回答|答案|结论|回复", re.IGNORECASE)
_INSTRUCTION_CUES = re.compile(r"constraint|rule|\bnotes?:|instruction|guideline|must|never|do not|don't|only use|"
                               r"规则|约束|指令|注意|要求|必须|不要|不能|只能|务必", re.IGNORECASE)


def _sentinel_render(template: AgentTemplate) -> str:
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
    rendered = _sentinel_render(template)
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
