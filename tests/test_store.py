"""KeyedStore: the one append-only keyed JSONL store (torn tail, latest wins, threads, validation)."""

from __future__ import annotations

import threading
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
