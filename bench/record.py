"""Where every benchmark keeps its raw figures: ``runs/bench/<name>.json`` (``LABKIT_RUNS`` moves ``runs/``).

A benchmark prints its table for the reader and passes the same figures to :func:`save`, which adds the benchmark's
name, the date and the machine (so a figure quoted in bench/README.md can be traced to the run that produced it) and
replaces the file atomically: a benchmark killed while writing never leaves a torn record behind.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labkit.paths import runs_dir  # noqa: E402


def machine() -> str:
    """``host arch N CPUs, python X.Y.Z``: enough to tell two runs' machines apart."""
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, python {platform.python_version()}"


def save(name: str, figures: dict[str, Any]) -> Path:
    """Write ``figures`` (plus ``bench``, ``date``, ``machine`` unless given) to ``runs/bench/<name>.json``."""
    record = {"bench": name, "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), **figures}
    path = runs_dir() / "bench" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
    return path
