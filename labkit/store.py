"""One append-only keyed JSONL store for everything labkit keeps across runs and kills.

Request and prediction caches, labelled jobs, review decisions and human labels are all "the latest record per key",
written one line at a time. :class:`KeyedStore` is that mechanism:

* every ``put`` appends whole lines and flushes + fsyncs before it returns (a SIGKILL loses at most the line being
  written); the lines are written under the store's lock, the fsync runs outside it, so threads do not queue behind
  each other's disk flushes;
* a torn (unterminated) last line left by a kill is ignored when reading and cut off before the next append, so it
  never glues itself to a new record;
* the latest record for a key wins; reading never modifies the file;
* one lock per store makes ``put`` safe from many threads;
* an optional ``validate(record, path, line)`` checks (and may normalise) each record as it is read, raising
  :class:`~labkit.errors.DataFileError` naming file, line and field.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from labkit.errors import DataFileError
from labkit.jsonl import dumps_line, iter_jsonl

Record = dict[str, Any]
Validator = Callable[[Record, Path, int], Record | None]


def repair_torn_tail(path: str | Path) -> int:
    """Cut a torn (unterminated) last line off ``path``; returns the number of bytes removed."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with path.open("rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        fh.seek(0)
        keep = fh.read().rfind(b"\n") + 1
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    return size - keep


class KeyedStore:
    """Append-only JSONL map ``key -> latest record`` (see the module docstring)."""

    def __init__(self, path: str | Path, key: str | Callable[[Record], str], *, validate: Validator | None = None):
        self.path = Path(path)
        self._key = (lambda rec: rec[key]) if isinstance(key, str) else key
        self._field = key if isinstance(key, str) else None
        self._validate = validate
        self._lock = threading.Lock()
        self._fh: IO[str] | None = None  # opened (after the torn-tail repair) on the first put
        self._latest: dict[str, Record] = {}
        if self.path.exists():
            for line, rec in iter_jsonl(self.path, tolerate_torn_tail=True):
                if self._validate is not None:
                    rec = self._validate(rec, self.path, line) or rec
                self._latest[self._key_of(rec, line)] = rec

    def _key_of(self, rec: Record, line: int | None = None) -> str:
        try:
            k = self._key(rec)
        except (KeyError, TypeError):
            k = None
        if not isinstance(k, str):
            raise DataFileError(self.path, "record has no string key", line=line, field=self._field)
        return k

    # -- reading ---------------------------------------------------------------------------------------------
    def get(self, key: str, default: Record | None = None) -> Record | None:
        with self._lock:
            return self._latest.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._latest

    def __len__(self) -> int:
        return len(self._latest)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._latest))

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._latest)

    def values(self) -> list[Record]:
        with self._lock:
            return list(self._latest.values())

    def items(self) -> list[tuple[str, Record]]:
        with self._lock:
            return list(self._latest.items())

    # -- writing ---------------------------------------------------------------------------------------------
    def put(self, record: Record, *, replace: bool = True) -> bool:
        """Append ``record`` (durably). With ``replace=False`` a key already stored is left alone (returns False)."""
        return self.put_many([record], replace=replace) == 1

    def put_many(self, records: Iterable[Record], *, replace: bool = True) -> int:
        """Append several records in one write + fsync; returns how many were written."""
        rows = [(self._key_of(r), r) for r in records]
        with self._lock:
            if not replace:
                rows = [(k, r) for k, r in dict(rows).items() if k not in self._latest]
            if not rows:
                return 0
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                repair_torn_tail(self.path)
                self._fh = self.path.open("a", encoding="utf-8")
            self._fh.write("".join(dumps_line(r) for _, r in rows))
            self._fh.flush()
            fd = self._fh.fileno()
            self._latest.update(rows)
        os.fsync(fd)  # outside the lock: concurrent puts share the disk flush instead of queueing for it
        return len(rows)

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def __del__(self) -> None:
        fh = getattr(self, "_fh", None)
        if fh is not None:
            fh.close()
