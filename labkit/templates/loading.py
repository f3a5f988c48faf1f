"""Loading template files by name: ``data/templates/`` first, then the folders of :func:`add_template_dir` and of
``LABKIT_TEMPLATE_DIRS`` (``os.pathsep``-separated). Loading is all or nothing: a file is read with the bounded YAML
loader, validated completely (keys, values, its ``format:`` declared but not registered, its text rendered and
checked to ask for that format) before its format is registered, and registration refuses a format whose markers
would change the format detected for another template's prompt."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from labkit.bounds import clip, show
from labkit.errors import DataFileError, LabkitError, UnknownNameError
from labkit.formats import (
    BUILTIN_FORMATS,
    MEMORY_STYLES,
    TOOL_STYLES,
    FormatSpecError,
    OutputFormat,
    declare,
    detect_format,
    register,
)
from labkit.jsonl import read_text
from labkit.paths import data_dir
from labkit.templates.sections import sentinel_render
from labkit.templates.template import FAMILIES, KINDS, LANGS, OPTIONAL_KEYS, REQUIRED_KEYS, SECTIONS, AgentTemplate
from labkit.templating import MAX_FILE_CHARS, load_yaml

TEMPLATE_DIRS_ENV = "LABKIT_TEMPLATE_DIRS"


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
    asked = detect_format(sentinel_render(template), extra=[fmt] if fmt.declared else [])
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
        register(template.format, prompts=prompts, witness=sentinel_render(template))  # type: ignore[arg-type]
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
                entry: tuple[str, OutputFormat] | None = (sentinel_render(tmpl), tmpl.format)
            except LabkitError:
                entry = None  # a broken file is reported when it is loaded, not here
            _prompt_cache[path] = cached = (version, entry)
        if cached[1] is not None:
            out.append((path, *cached[1]))
    return out
