"""One append-only keyed JSONL store for everything labkit keeps across runs and kills.

Request and prediction caches, labelled jobs, review decisions and human labels are all "the latest record per key",
written one line at a time. :class:`KeyedStore` is that mechanism:

* every ``put`` appends whole lines and flushes + fsyncs before it returns (a SIGKILL loses at most the line being
  written); the lines are written under the store's lock, the fsync runs outside it, so threads do not queue behind
  each other's disk flushes;
* a torn (unterminated) last line left by a kill is ignored when reading and cut off before the next append, so it
  never glues itself to a new record;
* writers in several processes share a file safely: every append (and the torn-tail cut before it) runs under an
  exclusive ``flock`` on the file, held by every writer, and the tail is re-read under that lock, so a cut can only
  remove bytes no live writer is still writing: a record another process has confirmed (its ``put`` returned) is
  never cut;
* the latest record for a key wins; reading never modifies the file;
* one lock per store makes ``put`` safe from many threads;
* an optional ``validate(record, path, line)`` checks (and may normalise) each record as it is read, raising
  :class:`~labkit.errors.DataFileError` naming file, line and field.

A store is generic in its record type: ``KeyedStore[CachedAnswer]`` holds the request cache's lines, and so on. The
record type is what the store's writers put; lines read back are trusted to have it (the file is written only
through ``put``) unless ``validate`` checks them.
"""

from __future__ import annotations

import fcntl  # POSIX, like the rest of labkit (process groups, signals)
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from labkit.errors import DataFileError
from labkit.jsonl import dumps_line, iter_jsonl

R = TypeVar("R", bound=Mapping[str, Any])  # the record type of one store (a TypedDict of its JSON lines)


@contextmanager
def file_lock(fd: int) -> Iterator[None]:
    """An exclusive ``flock`` on an open file, held by every KeyedStore writer while it appends or cuts a tail."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _cut_torn_tail(fd: int) -> int:
    """With the file lock held: cut the bytes after the last newline of ``fd`` (a line a killed writer left
    unfinished); returns how many were cut. Reads only the tail, backwards, so it costs one ``pread`` when clean."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    end, keep = size, 0
    while end > 0:
        start = max(0, end - (1 << 16))
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            keep = start + newline + 1
            break
        end = start
    os.ftruncate(fd, keep)
    os.fsync(fd)
    return size - keep


def repair_torn_tail(path: str | Path) -> int:
    """Cut a torn (unterminated) last line off ``path`` (under the writers' file lock); returns the bytes removed."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with path.open("rb+") as fh, file_lock(fh.fileno()):
        return _cut_torn_tail(fh.fileno())


class KeyedStore(Generic[R]):
    """Append-only JSONL map ``key -> latest record`` (see the module docstring). ``validate(raw, path, line)``
    gets each line as parsed JSON and returns the checked record (or None to keep the line as it is)."""

    def __init__(self, path: str | Path, key: str | Callable[[R], str], *,
                 validate: Callable[[dict[str, Any], Path, int], R | None] | None = None):
        self.path = Path(path)
        self._key = (lambda rec: rec[key]) if isinstance(key, str) else key
        self._field = key if isinstance(key, str) else None
        self._validate = validate
        self._lock = threading.Lock()
        self._fh: IO[str] | None = None  # opened (after the torn-tail repair) on the first put
        self._latest: dict[str, R] = {}
        if self.path.exists():
            for line, rec in iter_jsonl(self.path, tolerate_torn_tail=True):
                if self._validate is not None:
                    rec = self._validate(rec, self.path, line) or rec
                self._latest[self._key_of(rec, line)] = rec

    def _key_of(self, rec: R, line: int | None = None) -> str:
        try:
            k = self._key(rec)
        except (KeyError, TypeError):
            k = None
        if not isinstance(k, str):
            raise DataFileError(self.path, "record has no string key", line=line, field=self._field)
        return k

    # -- reading ---------------------------------------------------------------------------------------------
    def get(self, key: str, default: R | None = None) -> R | None:
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

    def values(self) -> list[R]:
        with self._lock:
            return list(self._latest.values())

    def items(self) -> list[tuple[str, R]]:
        with self._lock:
            return list(self._latest.items())

    # -- writing ---------------------------------------------------------------------------------------------
    def put(self, record: R, *, replace: bool = True) -> bool:
        """Append ``record`` (durably). With ``replace=False`` a key already stored is left alone (returns False)."""
        return self.put_many([record], replace=replace) == 1

    def put_many(self, records: Iterable[R], *, replace: bool = True) -> int:
        """Append several records in one write + fsync; returns how many were written."""
        rows = [(self._key_of(r), r) for r in records]
        with self._lock:
            if not replace:
                rows = [(k, r) for k, r in dict(rows).items() if k not in self._latest]
            if not rows:
                return 0
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = self.path.open("a+", encoding="utf-8")  # O_APPEND; readable for the tail check
            fd = self._fh.fileno()
            with file_lock(fd):  # no other writer is mid-line while we look at the tail and append
                _cut_torn_tail(fd)
                self._fh.write("".join(dumps_line(r) for _, r in rows))
                self._fh.flush()
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
