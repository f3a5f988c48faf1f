"""JSONL reading and crash-safe appending.

Every reader reports the file and line of a bad record; every writer appends a whole line and flushes + fsyncs,
so a run killed with SIGKILL leaves at most one torn last line, which ``read_jsonl(..., tolerate_torn_tail=True)``
drops (the record is simply redone on resume).

Text files are read as UTF-8; a UTF-8/UTF-16/UTF-32 byte-order mark, or UTF-16 without one (NUL-byte pattern), is
decoded accordingly, and anything else (e.g. GBK) raises a :class:`DataFileError` naming the file and line.
Strings holding lone surrogates (``"\\ud800"``, e.g. from a broken server reply) are written as JSON escapes, so
such a record can always be written and reads back unchanged.

Whatever a file holds, reading it ends in a value or a :class:`DataFileError` naming file and line, never another
exception: a folder where a file is expected, an unreadable file, invalid JSON, JSON nested too deeply for the
parser (``RecursionError``) and integers longer than Python converts (``sys.get_int_max_str_digits()``, 4300).

Readers yield the parsed JSON objects as plain dicts (a validator in :mod:`labkit.records` turns one into a typed
record); writers take any JSON object, typed records (``TypedDict`` s) included, so their parameter is
``Mapping[str, object]``: to a type checker a ``TypedDict`` is a ``Mapping[str, object]`` but not a plain dict.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from labkit.errors import DataFileError

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_NON_BLANK = re.compile(r"\S")


def decode_text(data: bytes, path: str | Path) -> str:
    """Bytes of a text file -> str (see module doc); undecodable bytes raise DataFileError with file and line."""
    encoding = "utf-8"
    for bom, name in _BOMS:
        if data.startswith(bom):
            data, encoding = data[len(bom):], name
            break
    else:
        head = data[:4096]
        if len(head) >= 4 and head.count(0) >= len(head) // 4:  # ASCII-range UTF-16 text: every other byte is NUL
            encoding = "utf-16-le" if head[1::2].count(0) > head[0::2].count(0) else "utf-16-be"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1 if encoding == "utf-8" else None
        hint = ""
        if encoding == "utf-8":
            try:
                data.decode("gb18030")
                hint = " (it decodes as GBK/GB18030: re-save it as UTF-8)"
            except UnicodeDecodeError:
                pass
        raise DataFileError(path, f"not valid {encoding.upper()} text: {exc.reason} at byte {exc.start}{hint}",
                            line=line) from None


def read_bytes(path: str | Path) -> bytes:
    """A whole file's bytes; a missing file, a folder or an unreadable file raise :class:`DataFileError`."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataFileError(path, "file not found") from None
    except IsADirectoryError:
        raise DataFileError(path, "is a folder, not a file") from None
    except OSError as exc:
        raise DataFileError(path, f"cannot read it ({exc.strerror or exc})") from None


def read_text(path: str | Path) -> str:
    """A whole text file, decoded as :func:`decode_text` does."""
    return decode_text(read_bytes(path), path)


def loads_json(text: str, path: str | Path, line: int | None = None) -> Any:
    """``json.loads`` whose every failure is a :class:`DataFileError` naming ``path`` and ``line``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFileError(path, f"invalid JSON ({exc.msg} at column {exc.colno})", line=line or exc.lineno) from None
    except RecursionError:
        raise DataFileError(path, "JSON nested too deeply to read", line=line) from None
    except ValueError as exc:  # an integer with more digits than Python converts
        raise DataFileError(path, f"unreadable JSON value ({str(exc).split(';')[0]})", line=line) from None


def read_json(path: str | Path) -> Any:
    """A whole JSON file (e.g. ``config.json``, ``scores.json``); every failure is a :class:`DataFileError`."""
    return loads_json(read_text(path), path)


def dumps_line(record: Mapping[str, object]) -> str:
    """One JSONL line (with ``\\n``); non-ASCII stays readable, lone surrogates become ``\\udXXX`` escapes."""
    text = json.dumps(record, ensure_ascii=False)
    if LONE_SURROGATE.search(text):  # only inside JSON strings, where the escape is valid and round-trips
        text = LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text + "\n"


def iter_jsonl(path: str | Path, *, tolerate_torn_tail: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)``; blank lines are skipped; a bad line raises :class:`DataFileError`."""
    path = Path(path)
    data = read_bytes(path)
    try:
        text = decode_text(data, path)
    except DataFileError:
        if not (tolerate_torn_tail and data and not data.endswith(b"\n")):
            raise
        text = decode_text(data[: data.rfind(b"\n") + 1], path)  # a write torn inside a multi-byte character
    # Lines end at "\n" only (not splitlines(): U+2028 and friends may sit inside JSON strings). Blank lines are
    # skipped by a regex and nothing is split up front, so a file of 5 million newlines costs neither a Python step
    # per line nor a list of 5 million strings (360 MB resident before).
    pos, i = 0, 1  # pos: the start of line i
    while (found := _NON_BLANK.search(text, pos)) is not None:
        start = max(pos, text.rfind("\n", pos, found.start()) + 1)
        i += text.count("\n", pos, start)
        end = text.find("\n", found.start())
        line = text[start:] if end == -1 else text[start:end + 1]
        try:
            record = loads_json(line, path, i)
        except DataFileError:
            if tolerate_torn_tail and end == -1:
                return  # a last line torn by a kill
            raise
        if not isinstance(record, dict):
            raise DataFileError(path, f"expected a JSON object, got {type(record).__name__}", line=i)
        yield i, record
        if end == -1:
            return
        pos, i = end + 1, i + 1


def read_jsonl(path: str | Path, *, tolerate_torn_tail: bool = False) -> list[dict[str, Any]]:
    return [rec for _, rec in iter_jsonl(path, tolerate_torn_tail=tolerate_torn_tail)]


def append_jsonl(path: str | Path, records: Iterable[Mapping[str, object]]) -> int:
    """Append records durably (flush + fsync). Returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("a", encoding="utf-8") as fh:
        for rec in records:
            fh.write(dumps_line(rec))
            n += 1
        fh.flush()
        os.fsync(fh.fileno())
    return n


def write_jsonl(path: str | Path, records: Iterable[Mapping[str, object]]) -> int:
    """Atomically replace ``path`` with ``records`` (write to a temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(dumps_line(rec))
            n += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return n


def require(record: Mapping[str, object], field: str, typ: type | tuple[type, ...], *, path: str | Path, line: int) -> Any:
    """Return ``record[field]`` or raise a :class:`DataFileError` naming file, line and field."""
    if field not in record:
        raise DataFileError(path, "missing field", line=line, field=field)
    value = record[field]
    if not isinstance(value, typ):
        names = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise DataFileError(path, f"expected {names}, got {type(value).__name__}", line=line, field=field)
    return value
