"""Load and validate the query bank (agent queries with gold annotations) and the general SFT set.

Every problem is a :class:`DataFileError` naming the file, the line and the field (the validators are
:func:`labkit.records.validate_query` / :func:`~labkit.records.validate_general`, shared with every other reader).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from labkit.paths import data_dir
from labkit.records import LANGS, GeneralItem, Query, read_general, read_queries


def agent_queries_path() -> Path:
    return data_dir() / "queries" / "agent_queries.jsonl"


def general_path() -> Path:
    return data_dir() / "queries" / "general.jsonl"


def load_queries(path: str | Path | None = None, *, tool_names: Iterable[str] | None = None) -> list[Query]:
    """Validated agent queries. With ``tool_names`` every gold call must name a known tool."""
    return read_queries(Path(path) if path else agent_queries_path(), tool_names=tool_names)


def load_general(path: str | Path | None = None) -> list[GeneralItem]:
    """Validated general instruction data ``{id, instruction, output, lang}``."""
    return read_general(Path(path) if path else general_path())


__all__ = ["LANGS", "agent_queries_path", "general_path", "load_general", "load_queries"]
