"""Run modes defined once: ``configs/<mode>.yaml`` holds the settings of every stage for that mode.

``smoke`` (CI, a tiny random model, seconds) and ``course`` (the real 2-core CPU run) have a ``data``, a ``train``, an
``eval`` and a ``meta`` (Meta-Agent, notebook 04) section; the cluster files (``cluster_7b`` / ``cluster_14b`` / ``cluster_72b``) hold only ``train``. Each
stage reads its own section — :func:`labkit.data.pipeline.build_dataset`, :meth:`labkit.train.SFTConfig.for_mode`,
notebook 06, :func:`labkit.meta.pipeline.run_meta_agent` — so a value lives in one file, and a notebook parameter or a ``--key value`` on the command line
overrides it for one run (nanoGPT's "defaults, then overrides").

``load_mode("course")`` reads ``configs/course.yaml``; a path to any YAML file works too. Unknown sections are
rejected with the file and field named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from labkit.errors import DataFileError, LabkitError, UnknownNameError
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


def load_mode(mode: str | Path) -> dict[str, dict[str, Any]]:
    """The sections of a mode file (missing sections are ``{}``)."""
    path = mode_path(mode)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise DataFileError(path, f"invalid YAML: {exc}", line=None if line is None else line + 1) from None
    if not isinstance(values, dict):
        raise DataFileError(path, f"expected a mapping with sections {SECTIONS}, got {type(values).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for key, section in values.items():
        if key not in SECTIONS:
            raise DataFileError(path, f"unknown section; expected one of {', '.join(SECTIONS)}", field=str(key))
        if section is not None and not isinstance(section, dict):
            raise DataFileError(path, f"expected a mapping, got {type(section).__name__}", field=str(key))
        out[key] = dict(section or {})
    return {s: out.get(s, {}) for s in SECTIONS}


def mode_section(mode: str | Path, section: str) -> dict[str, Any]:
    """One section of a mode file, e.g. ``mode_section("course", "train")``."""
    if section not in SECTIONS:
        raise ValueError(f"section must be one of {SECTIONS}, got {section!r}")
    return load_mode(mode)[section]


def check_keys(values: dict[str, Any], known: set[str] | list[str], *, mode: str | Path, section: str) -> None:
    """Reject keys a stage does not know (a typo must not fall back to a default silently)."""
    for key in values:
        if key not in known:
            raise DataFileError(mode_path(mode), f"unknown {section} setting; known: {', '.join(sorted(known))}",
                                field=f"{section}.{key}")


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
