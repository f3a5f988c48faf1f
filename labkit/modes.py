"""Run modes defined once: ``configs/<mode>.yaml`` holds the settings of every stage for that mode.

``smoke`` (CI, a tiny random model, seconds) and ``course`` (the real 2-core CPU run) have a ``data``, a ``train``, an
``eval`` and a ``meta`` (Meta-Agent, notebook 04) section; the cluster files (``cluster_7b`` / ``cluster_14b`` /
``cluster_72b``) hold only ``train``. Each stage reads its own section through ONE loader, :func:`load_settings`, into
a typed settings class — :class:`DataSettings` (:func:`labkit.data.pipeline.data_settings`), :class:`EvalSettings`
(notebooks 05 / 06, :mod:`labkit.meta.compare`), :class:`MetaSettings` (:func:`labkit.meta.pipeline.meta_settings`)
and ``labkit.train.TrainSettings`` (``for_mode`` / ``from_yaml`` / ``from_cli``) — so a value lives in one file, and a
notebook parameter or a ``--key value`` on the command line overrides it for one run (nanoGPT's "defaults, then
overrides").

The rules, the same for every section: a key the settings class does not know is a
:class:`~labkit.errors.DataFileError` naming the file, the line and ``section.key``; a value of the wrong kind too
(ints are accepted for floats, ``null`` only where the field is optional); ``None`` is "unset" — in a settings class
(``train_queries: null`` = every query, ``max_new_tokens: null`` = each format's own budget) and as a keyword
override (a notebook parameter of ``None`` keeps the file's value); ``0`` is always a value. :func:`read_yaml` is the
one YAML reader (the value and the line of every key).

``load_mode("course")`` reads ``configs/course.yaml``; a path to any YAML file works too. Unknown sections are
rejected with the file, line and field named.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypedDict, TypeVar, get_type_hints

import yaml

from labkit.errors import DataFileError, LabkitError, UnknownNameError
from labkit.jsonl import read_text
from labkit.paths import REPO_ROOT

SECTIONS = ("data", "train", "eval", "meta")


def configs_dir() -> Path:
    return REPO_ROOT / "configs"


def list_modes() -> list[str]:
    return sorted(p.stem for p in configs_dir().glob("*.yaml"))


def mode_path(mode: str | Path) -> Path:
    """``"course"`` -> ``configs/course.yaml``; an existing ``.yaml`` path is returned as it is."""
    path = Path(mode)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise DataFileError(path, "config file not found")
        return path
    path = configs_dir() / f"{mode}.yaml"
    if not path.is_file():
        raise UnknownNameError("mode", str(mode), list_modes())
    return path


def read_yaml(path: str | Path) -> tuple[Any, dict[tuple[str, ...], int]]:
    """The one reader of settings files: ``(value, lines)`` where ``lines`` maps the key path of every mapping key
    (``("train", "lr")``) to its 1-based line. Invalid YAML is a :class:`DataFileError` with the line."""
    path = Path(path)
    text = read_text(path)
    try:
        value = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise DataFileError(path, f"invalid YAML: {exc}", line=None if line is None else line + 1) from None
    lines: dict[tuple[str, ...], int] = {}
    todo: list[tuple[tuple[str, ...], Any]] = [((), node)]
    while todo:
        prefix, current = todo.pop()
        if isinstance(current, yaml.MappingNode):
            for key, child in current.value:
                where = (*prefix, str(key.value))
                lines[where] = key.start_mark.line + 1
                if len(where) < 2:
                    todo.append((where, child))
    return value, lines


def load_mode(mode: str | Path) -> dict[str, dict[str, Any]]:
    """The sections of a mode file (missing sections are ``{}``)."""
    return _load(mode)[0]


def _load(mode: str | Path) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, ...], int]]:
    path = mode_path(mode)
    values, lines = read_yaml(path)
    values = values or {}
    if not isinstance(values, dict):
        raise DataFileError(path, f"expected a mapping with sections {SECTIONS}, got {type(values).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for key, section in values.items():
        if key not in SECTIONS:
            raise DataFileError(path, f"unknown section; expected one of {', '.join(SECTIONS)}",
                                line=lines.get((str(key),)), field=str(key))
        if section is not None and not isinstance(section, dict):
            raise DataFileError(path, f"expected a mapping, got {type(section).__name__}",
                                line=lines.get((str(key),)), field=str(key))
        out[key] = dict(section or {})
    return {s: out.get(s, {}) for s in SECTIONS}, lines


def mode_section(mode: str | Path, section: str) -> dict[str, Any]:
    """One section of a mode file as it is written, e.g. ``mode_section("course", "train")`` (stages read theirs
    typed, through :func:`load_settings`)."""
    if section not in SECTIONS:
        raise ValueError(f"section must be one of {SECTIONS}, got {section!r}")
    return load_mode(mode)[section]


S = TypeVar("S")


def load_settings(cls: type[S], mode: str | Path, section: str, overrides: Mapping[str, Any] | None = None,
                  **given: Any) -> S:
    """The ``section`` of a mode file as the settings dataclass ``cls``: the file's values, then ``overrides``
    (applied as given: ``None`` included, e.g. ``--set step_balance=null``), then the keyword settings ``given``
    that are not ``None`` (``None`` = unset: notebook parameters and function defaults keep the file's value).
    See :func:`settings_values` for the checks."""
    return cls(**settings_values(cls, mode, section, overrides, **given))


def settings_values(cls: type, mode: str | Path, section: str, overrides: Mapping[str, Any] | None = None, *,
                    flat: bool = False, prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                    **given: Any) -> dict[str, Any]:
    """The checked values :func:`load_settings` builds ``cls`` from. Every key is checked against the fields of
    ``cls`` and every value against the field's type (:func:`coerce`); a field without a default must be set.
    Problems are a :class:`DataFileError` naming the file, the line (for a value from the file) and ``section.key``
    (``key`` alone for a flat file). ``flat``: a file that is not a mode file (no section keys at its top) is that
    section's mapping itself (training settings files). ``prepare``: applied to the file's values only (e.g. paths
    relative to the repository root)."""
    path = mode_path(mode)
    values, lines, where = _section(path, section, flat)
    values = prepare(values) if prepare else values
    known = [f.name for f in fields(cls)]
    extra = {k: v for k, v in given.items() if v is not None}
    new = {**(overrides or {}), **extra}
    label = f"{section} setting" if where else f"{cls.__name__} key"
    for key in values:
        if key not in known:
            raise DataFileError(path, f"unknown {label}; known: {', '.join(sorted(known))}", line=lines.get(key),
                                field=f"{where}{key}")
    for key in new:
        if key not in known:
            raise DataFileError(path, f"unknown {label} (given as an override); known: {', '.join(sorted(known))}",
                                field=f"{where}{key}")
    merged = {**values, **new}
    missing = [f.name for f in fields(cls) if f.name not in merged
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise DataFileError(path, f"missing {section} settings: {', '.join(missing)}", field=section)
    hints = get_type_hints(cls)
    return {k: coerce(v, hints[k], path=path, field=f"{where}{k}", line=None if k in new else lines.get(k))
            for k, v in merged.items()}


def _section(path: Path, section: str, flat: bool) -> tuple[dict[str, Any], dict[str, int], str]:
    """``(values, line of each key, field prefix)`` of one section of a settings file."""
    if section not in SECTIONS:
        raise ValueError(f"section must be one of {SECTIONS}, got {section!r}")
    if flat:
        value, lines = read_yaml(path)
        if not isinstance(value or {}, dict):
            raise DataFileError(path, f"expected a mapping of settings, got {type(value).__name__}")
        if value and not set(value) <= set(SECTIONS):
            return dict(value), {k[0]: n for k, n in lines.items() if len(k) == 1}, ""
    sections, lines = _load(path)
    return sections[section], {k[1]: n for k, n in lines.items() if len(k) == 2 and k[0] == section}, f"{section}."


_BASES: dict[str, type] = {"list": list, "str": str, "float": float, "int": int, "bool": bool}


def coerce(value: Any, hint: Any, *, path: str | Path, field: str, line: int | None = None) -> Any:
    """A YAML / command-line value checked against a settings field's type hint: ints are accepted for floats,
    whole floats for ints, ``None`` only for an optional field, a list for ``list[...]``; anything else is a
    :class:`DataFileError` naming the file, line and field."""
    text = str(hint)
    if value is None:
        if "None" in text:
            return None
        raise DataFileError(path, "must not be null", line=line, field=field)
    base = hint if isinstance(hint, type) else _BASES.get(text.split(" |")[0].split("[")[0])
    if base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = not isinstance(value, bool) and (isinstance(value, int) or (isinstance(value, float)
                                                                          and value.is_integer()))
        value = int(value) if ok else value
    elif base is float:  # YAML 1.1 reads 1e-5 as a string: a number written so is still a number
        try:
            ok, value = not isinstance(value, bool), float(value)
        except (TypeError, ValueError):
            ok = False
    elif base is str:
        ok, value = True, str(value)
    elif base is list:
        ok = isinstance(value, (list, tuple))
        value = list(value) if ok else value
    else:
        ok = True
    if not ok:
        raise DataFileError(path, f"expected {getattr(base, '__name__', text)}, got {value!r}", line=line, field=field)
    return value


class Levers(TypedDict):
    """The data levers of :class:`DataSettings` (issue 19), as ``stats.json``'s ``levers`` records them."""

    meta_templates: float
    held_out_formats: list[str]
    step_balance: float | None
    general_turns: int | None


@dataclass
class DataSettings:
    """The ``data`` section (:func:`labkit.data.pipeline.data_settings`; the levers are checked there)."""

    train_queries: int | None        # None: every training query of the split
    test_queries: int | None         # None: every held-out query
    templates: list[str] | None      # None: every planning template that is not held out
    templates_per_query: int | None  # None: every chosen template for every query
    general_test: int                # held-out general samples (forgetting check)
    # the data levers (issue 19), off when absent
    meta_templates: float = 0.0      # share of template slots labelled with the Meta-Agent's kept templates
    held_out_formats: list[str] = field(default_factory=list)   # format families whose templates are test only
    step_balance: float | None = None   # tool call : finish ratio after a tool call; None: off
    general_turns: int | None = None    # exchanges per general conversation; None: one (labkit.data.mix)

    def levers(self) -> Levers:
        return Levers(meta_templates=self.meta_templates, held_out_formats=self.held_out_formats,
                      step_balance=self.step_balance, general_turns=self.general_turns)

    @classmethod
    def lever_defaults(cls) -> Levers:
        """Each lever's "off" value (what a file without it gets): the field's default."""
        off = {f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
               for f in fields(cls)}
        return Levers(meta_templates=off["meta_templates"], held_out_formats=off["held_out_formats"],
                      step_balance=off["step_balance"], general_turns=off["general_turns"])


@dataclass
class EvalSettings:
    """The ``eval`` section (notebooks 05 / 06, :func:`labkit.meta.compare.run_comparison`)."""

    n_queries: int                   # held-out queries in the benchmark
    n_agent_queries: int             # queries for the end-to-end agent check
    n_curve_queries: int             # held-out queries per learning-curve point
    n_general: int
    templates_per_record: int        # seen and unseen templates per benchmark record
    max_new_tokens: int | None = None   # None: each output format's own budget


@dataclass
class MetaSettings:
    """The ``meta`` section (:func:`labkit.meta.pipeline.meta_settings`); every value a positive integer."""

    n_clusters: int                  # query clusters, one Meta-Agent prompt each
    per_cluster: int                 # candidate templates written per cluster
    judge_queries: int               # queries per cluster the pairwise judge runs


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["key=value", ...]`` from a command line (``--set``) -> ``{key: value}``, values read as YAML (``1.0``,
    ``null``, ``[a, b]``) and dashes in keys read as underscores; an item without ``=`` raises LabkitError."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise LabkitError(f"--set needs KEY=VALUE, got {item!r}")
        out[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return out
