"""JSONL reading and crash-safe appending.

Every reader reports the file and line of a bad record; every writer appends a whole line and flushes + fsyncs,
so a run killed with SIGKILL leaves at most one torn last line, which ``read_jsonl(..., tolerate_torn_tail=True)``
drops (the record is simply redone on resume).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from labkit.errors import DataFileError


def iter_jsonl(path: str | Path, *, tolerate_torn_tail: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)``; blank lines are skipped; a bad line raises :class:`DataFileError`."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(path, "file not found")
    with path.open("r", encoding="utf-8") as fh:
        lines = fh.readlines()
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            is_tail = i == len(lines) and not line.endswith("\n")
            if tolerate_torn_tail and is_tail:
                return
            raise DataFileError(path, f"invalid JSON ({exc.msg} at column {exc.colno})", line=i) from None
        if not isinstance(record, dict):
            raise DataFileError(path, f"expected a JSON object, got {type(record).__name__}", line=i)
        yield i, record


def read_jsonl(path: str | Path, *, tolerate_torn_tail: bool = False) -> list[dict[str, Any]]:
    return [rec for _, rec in iter_jsonl(path, tolerate_torn_tail=tolerate_torn_tail)]


def append_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Append records durably (flush + fsync). Returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("a", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
        fh.flush()
        os.fsync(fh.fileno())
    return n


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Atomically replace ``path`` with ``records`` (write to a temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return n


def require(record: dict[str, Any], field: str, typ: type | tuple[type, ...], *, path: str | Path, line: int) -> Any:
    """Return ``record[field]`` or raise a :class:`DataFileError` naming file, line and field."""
    if field not in record:
        raise DataFileError(path, "missing field", line=line, field=field)
    value = record[field]
    if not isinstance(value, typ):
        names = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise DataFileError(path, f"expected {names}, got {type(value).__name__}", line=line, field=field)
    return value
