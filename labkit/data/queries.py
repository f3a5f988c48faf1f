"""Load and validate the query bank (agent queries with gold annotations) and the general SFT set.

Every problem is a :class:`DataFileError` naming the file, the line and the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from labkit.errors import DataFileError
from labkit.jsonl import iter_jsonl, require
from labkit.paths import data_dir

LANGS = ("zh", "en")


def agent_queries_path() -> Path:
    return data_dir() / "queries" / "agent_queries.jsonl"


def general_path() -> Path:
    return data_dir() / "queries" / "general.jsonl"


def _check_id(rec: dict[str, Any], seen: dict[str, int], path: Path, line: int) -> str:
    qid = str(require(rec, "id", (str, int), path=path, line=line))
    if qid in seen:
        raise DataFileError(path, f"duplicate id {qid!r} (first on line {seen[qid]})", line=line, field="id")
    seen[qid] = line
    return qid


def _check_lang(rec: dict[str, Any], path: Path, line: int) -> str:
    lang = require(rec, "lang", str, path=path, line=line)
    if lang not in LANGS:
        raise DataFileError(path, f"lang must be one of {LANGS}, got {lang!r}", line=line, field="lang")
    return lang


def load_queries(path: str | Path | None = None, *, tool_names: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Validated agent queries. With ``tool_names`` every gold call must name a known tool."""
    path = Path(path) if path else agent_queries_path()
    known = set(tool_names) if tool_names is not None else None
    seen: dict[str, int] = {}
    out = []
    for line, rec in iter_jsonl(path):
        qid = _check_id(rec, seen, path, line)
        if not require(rec, "query", str, path=path, line=line).strip():
            raise DataFileError(path, "empty query", line=line, field="query")
        _check_lang(rec, path, line)
        require(rec, "cluster", str, path=path, line=line)
        require(rec, "reference_answer", str, path=path, line=line)
        calls = require(rec, "gold_calls", list, path=path, line=line)
        thoughts = require(rec, "thoughts", list, path=path, line=line)
        if len(thoughts) != len(calls):
            raise DataFileError(path, f"{len(thoughts)} thoughts for {len(calls)} gold calls", line=line,
                                field="thoughts")
        for i, c in enumerate(calls):
            field = f"gold_calls[{i}]"
            if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not isinstance(c.get("args"), dict):
                raise DataFileError(path, "expected {'name': str, 'args': object}", line=line, field=field)
            if known is not None and c["name"] not in known:
                raise DataFileError(path, f"unknown tool {c['name']!r}; known: {', '.join(sorted(known))}",
                                    line=line, field=f"{field}.name")
        out.append({**rec, "id": qid})
    if not out:
        raise DataFileError(path, "no queries in file")
    return out


def load_general(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Validated general instruction data ``{id, instruction, output, lang}``."""
    path = Path(path) if path else general_path()
    seen: dict[str, int] = {}
    out = []
    for line, rec in iter_jsonl(path):
        gid = _check_id(rec, seen, path, line)
        for f in ("instruction", "output"):
            if not require(rec, f, str, path=path, line=line).strip():
                raise DataFileError(path, "empty text", line=line, field=f)
        _check_lang(rec, path, line)
        out.append({**rec, "id": gid})
    return out
