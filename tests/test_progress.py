"""labkit.progress: items done / total, ETA, and the status file the runner reads."""

from __future__ import annotations

import time
from pathlib import Path

from labkit.progress import Progress, clock, read_status, status_text


def test_eta_status_file_and_runner_text(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    p = Progress(10, "生成（base）", delay_s=0, min_interval_s=0, print_every_s=0, status_file=path)
    assert p.eta_s is None and "正在估算" in p.line()
    time.sleep(0.2)
    p.update(2)
    assert p.eta_s is not None and abs(p.eta_s - 4 * p.elapsed_s) < 0.2  # 8 items left at 2 items per elapsed
    status = read_status(path)
    assert status is not None and status["done"] == 2 and status["total"] == 10
    assert status_text(status).startswith("生成（base） 2/10 ETA ")
    p.update(10)
    p.close()
    assert status_text(read_status(path)) == "" and p.line().endswith("完成")


def test_resumed_steps_do_not_count_in_the_rate(tmp_path: Path) -> None:
    p = Progress(100, "训练", done_before=50, delay_s=0, status_file=tmp_path / "s.json")
    assert p.eta_s is None  # nothing done in this run yet
    time.sleep(0.1)
    p.update(60)
    assert abs(p.eta_s - 4 * p.elapsed_s) < 0.1  # 10 steps in this run, 40 left


def test_short_steps_show_nothing(tmp_path: Path, capsys) -> None:
    path = tmp_path / "s.json"
    with Progress(3, "quick", status_file=path) as p:
        p.update(3)
    assert not path.exists() and capsys.readouterr().err == ""
    assert clock(65) == "01:05" and clock(3725) == "1:02:05"


def test_a_status_file_without_every_key_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"what": "生成", "done": 3}', encoding="utf-8")  # e.g. written by an older labkit
    assert read_status(path) is None and status_text(read_status(path)) == ""
    path.write_text('{"what": "生成", "done": 3, "total": 9, "elapsed_s": 1.0, "eta_s": null, "finished": false, '
                    '"pid": 1, "time": 0.0}', encoding="utf-8")
    assert status_text(read_status(path)) == "生成 3/9"
