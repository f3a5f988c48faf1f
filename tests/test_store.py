"""KeyedStore: the one append-only keyed JSONL store (torn tail, latest wins, threads, validation)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from labkit.errors import DataFileError
from labkit.jsonl import read_jsonl
from labkit.store import KeyedStore, repair_torn_tail


def test_latest_record_wins_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    store = KeyedStore(path, "id")
    store.put({"id": "a", "v": 1})
    store.put_many([{"id": "b", "v": 1}, {"id": "a", "v": 2}])
    assert not store.put({"id": "a", "v": 3}, replace=False)
    again = KeyedStore(path, "id")
    assert again.get("a") == {"id": "a", "v": 2} and len(again) == 2 and "b" in again and again.keys() == ["a", "b"]
    assert len(read_jsonl(path)) == 3  # append-only: the history stays in the file


def test_torn_tail_is_ignored_on_read_and_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    KeyedStore(path, "id").put({"id": "a", "text": "北京"})
    with path.open("ab") as fh:
        fh.write('{"id": "b", "text": "北'.encode()[:-1])  # SIGKILL inside a multi-byte character
    torn = path.read_bytes()
    store = KeyedStore(path, "id")
    assert store.keys() == ["a"] and path.read_bytes() == torn  # reading never modifies the file
    store.put({"id": "c"})
    assert [r["id"] for r in read_jsonl(path)] == ["a", "c"]  # the torn line did not glue onto the new one
    assert repair_torn_tail(path) == 0


def test_concurrent_puts_write_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    store = KeyedStore(path, "id")
    threads = [threading.Thread(target=lambda t=t: [store.put({"id": f"{t}-{i}", "pad": "x" * 500})
                                                     for i in range(50)]) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(read_jsonl(path)) == 400 and len(KeyedStore(path, "id")) == 400


def test_bad_records_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "a"}\n{"name": "no id"}\n')
    with pytest.raises(DataFileError, match=r"s.jsonl:2 \[field 'id'\]: record has no string key"):
        KeyedStore(path, "id")

    def positive(rec: dict, where: Path, line: int) -> dict:
        if rec.get("v", 0) < 0:
            raise DataFileError(where, "must be >= 0", line=line, field="v")
        return {**rec, "checked": True}

    path.write_text('{"id": "a", "v": 1}\n')
    assert KeyedStore(path, "id", validate=positive).get("a") == {"id": "a", "v": 1, "checked": True}
    path.write_text('{"id": "a", "v": 1}\n{"id": "b", "v": -1}\n')
    with pytest.raises(DataFileError, match=r"s.jsonl:2 \[field 'v'\]"):
        KeyedStore(path, "id", validate=positive)


REPO = Path(__file__).resolve().parents[1]
SLOW_WRITER = r"""
import sys, time
from pathlib import Path
from labkit.store import KeyedStore

path, ready = Path(sys.argv[1]), Path(sys.argv[2])
store = KeyedStore(path, "id")
store.put({"id": "a-0"})
print("a-0", flush=True)


class HalfThenRest:  # this writer's append reaches the file in two parts with a pause between, as a big write can
    def __init__(self, fh):
        self.fh = fh

    def write(self, text):
        self.fh.write(text[: len(text) // 2])
        self.fh.flush()
        ready.touch()
        time.sleep(1.0)
        return self.fh.write(text[len(text) // 2:])

    def __getattr__(self, name):
        return getattr(self.fh, name)


store._fh = HalfThenRest(store._fh)
store.put({"id": "a-1", "pad": "x" * 5000})
print("a-1", flush=True)
"""


@contextmanager
def writer_mid_line(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Process A (SLOW_WRITER) puts a-0, then stops in the middle of appending a-1; yields it there."""
    ready = path.with_name("ready")
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(path), str(ready)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "writer A did not start its append"
            time.sleep(0.01)
        yield proc
    finally:
        proc.kill()


def test_a_new_writers_repair_never_cuts_a_line_another_process_is_writing(tmp_path: Path) -> None:
    """Process A is in the middle of appending a record when process B opens the store and puts: B's torn-tail
    repair must wait for A's line instead of cutting it (which lost A's confirmed record and left a broken line)."""
    path = tmp_path / "s.jsonl"
    with writer_mid_line(path) as proc:
        KeyedStore(path, "id").put({"id": "b-0"})  # B: a new writer, its first put runs the repair
        confirmed = proc.communicate(timeout=30)[0].split()
    assert proc.returncode == 0 and confirmed == ["a-0", "a-1"]
    ids = [r["id"] for r in read_jsonl(path)]  # strict: a cut line would be invalid JSON in the middle
    assert sorted(ids) == ["a-0", "a-1", "b-0"]


def test_a_line_left_by_a_writer_killed_mid_append_is_cut_before_any_writers_next_append(tmp_path: Path) -> None:
    """Writer B is already open (its first put is done) when writer A is SIGKILLed in the middle of a line: B's
    next put cuts A's unfinished line first instead of gluing its own record onto it."""
    path = tmp_path / "s.jsonl"
    b = KeyedStore(path, "id")
    b.put({"id": "b-0"})
    with writer_mid_line(path) as proc:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert not path.read_bytes().endswith(b"\n")  # A's half line
    b.put({"id": "b-1"})
    assert [r["id"] for r in read_jsonl(path)] == ["b-0", "a-0", "b-1"]  # strict read: no glued line
