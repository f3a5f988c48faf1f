"""labkit.jsonl: encodings are detected or named, lone surrogates can be written, torn tails are dropped."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from labkit.errors import DataFileError
from labkit.jsonl import append_jsonl, iter_jsonl, read_jsonl, read_text, write_jsonl

RECORDS = [{"id": "a", "text": "北京今天小雨"}, {"id": "b", "text": "plain ascii"}]


def _lines(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def test_gbk_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "gbk.jsonl"
    path.write_bytes(json.dumps({"id": "ok"}).encode() + b"\n" + _lines(RECORDS[:1]).encode("gbk"))
    with pytest.raises(DataFileError) as err:
        read_jsonl(path)
    assert str(path) in str(err.value) and err.value.line == 2 and "GBK" in str(err.value)
    with pytest.raises(DataFileError, match="gbk.jsonl"):
        read_text(path)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig", "utf-32"])
def test_bom_and_utf16_files_are_decoded(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "x.jsonl"
    data = _lines(RECORDS).encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):  # no BOM: told apart by where the NUL bytes are
        assert not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    path.write_bytes(data)
    assert read_jsonl(path) == RECORDS


def test_lone_surrogates_are_written_and_read_back(tmp_path: Path) -> None:
    rec = {"id": "s", "text": "broken \ud83d reply", "key\udfff": ["\\\ud800", "ok"]}
    path = tmp_path / "s.jsonl"
    append_jsonl(path, [rec, {"id": "after"}])
    write_jsonl(tmp_path / "w.jsonl", [rec])
    path.read_bytes().decode("utf-8")  # the file itself is valid UTF-8
    assert read_jsonl(path) == [rec, {"id": "after"}]
    assert read_jsonl(tmp_path / "w.jsonl") == [rec]


def test_unicode_line_separators_inside_strings_stay_one_record(tmp_path: Path) -> None:
    rec = {"id": "u", "text": "a\u2028b\u2029c\x85d\x0be"}
    path = tmp_path / "u.jsonl"
    append_jsonl(path, [rec])
    assert read_jsonl(path) == [rec]


def test_tail_torn_inside_a_multibyte_character_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    append_jsonl(path, RECORDS[:1])
    with path.open("ab") as fh:
        fh.write('{"id": "c", "text": "中'.encode()[:-1])  # killed in the middle of a character
    assert read_jsonl(path, tolerate_torn_tail=True) == RECORDS[:1]
    with pytest.raises(DataFileError, match="t.jsonl"):
        read_jsonl(path)


def test_every_unreadable_input_is_a_data_file_error_with_file_and_line(tmp_path: Path) -> None:
    from labkit.errors import DataFileError
    from labkit.jsonl import read_json, read_jsonl, read_text

    bad = {"deep.jsonl": ('{"ok": 1}\n' + "[" * 200_000 + "]" * 200_000 + "\n", r"deep.jsonl:2: JSON nested too deeply"),
           "digits.jsonl": ('{"ok": 1}\n{"n": ' + "9" * 5000 + "}\n", r"digits.jsonl:2: unreadable JSON value \(Exceeds"),
           "broken.json": ('{\n  "a": 1,\n  "b": }\n', r"broken.json:3: invalid JSON")}
    for name, (text, message) in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DataFileError, match=message):
            read_json(tmp_path / name) if name.endswith(".json") else read_jsonl(tmp_path / name)
    (tmp_path / "folder.jsonl").mkdir()
    for read in (read_jsonl, read_text, read_json):
        with pytest.raises(DataFileError, match=r"folder.jsonl: is a folder, not a file"):
            read(tmp_path / "folder.jsonl")
    torn = tmp_path / "torn.jsonl"  # a torn last line is still only tolerated where asked for
    torn.write_text('{"ok": 1}\n{"n": ' + "[" * 5000)
    assert read_jsonl(torn, tolerate_torn_tail=True) == [{"ok": 1}]


def test_blank_lines_cost_no_memory_per_line_and_keep_line_numbers(tmp_path: Path) -> None:
    """A file of a million blank lines (issue 20's fuzz bench: 5 MB of newlines held 360 MB resident, a string per
    line twice over) is read in a few times its own size, and records after blank lines keep their line numbers."""
    import tracemalloc

    path = tmp_path / "blank.jsonl"
    path.write_bytes(b'{"id": 1}\n' + b" \r\n\n" * 500_000 + b'{"id": 2}\n\t\n')
    tracemalloc.start()
    try:
        assert list(iter_jsonl(path)) == [(1, {"id": 1}), (1_000_002, {"id": 2})]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 * path.stat().st_size, peak  # the bytes and the decoded text; a string per line is ~100x
    path.write_bytes(b"\n\n" + b'{"id": 1}\n' + b"\n" * 3 + b'{"id": ')
    with pytest.raises(DataFileError, match=r"blank.jsonl:7: invalid JSON"):
        read_jsonl(path)
    assert read_jsonl(path, tolerate_torn_tail=True) == [{"id": 1}]
    path.write_bytes(b'{"id": 1}')  # a last line without its newline is a record, not a torn tail
    assert read_jsonl(path, tolerate_torn_tail=True) == [{"id": 1}]
