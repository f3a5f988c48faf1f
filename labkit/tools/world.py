"""The sandbox world: fixed TODAY, bundled data files (data/world/*.json) and name lookups shared by the tools."""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from labkit.errors import DataFileError
from labkit.paths import data_dir
from labkit.tools.registry import ToolInputError

TODAY = dt.date(2025, 3, 15)
"""The world's fixed 'today' (a Saturday): every relative date in the query bank is counted from it."""

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def world_dir() -> Path:
    return data_dir() / "world"


@lru_cache(maxsize=None)
def load_world_file(name: str) -> dict[str, Any]:
    """Read ``data/world/<name>``; DataFileError names the file on a bad one."""
    path = world_dir() / name
    if not path.exists():
        raise DataFileError(path, "world data file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFileError(path, f"invalid JSON ({exc.msg})", line=exc.lineno) from None
    if not isinstance(data, dict):
        raise DataFileError(path, "expected a JSON object at the top level")
    return data


def is_zh(text: str) -> bool:
    """True when the text contains Chinese characters (tools answer in the language they were asked in)."""
    return bool(_CJK.search(text or ""))


def norm(name: str) -> str:
    return re.sub(r"[\s·・'’\-_.]", "", str(name)).lower()


@lru_cache(maxsize=None)
def _city_index() -> dict[str, dict[str, Any]]:
    index: dict[str, dict[str, Any]] = {}
    for i, city in enumerate(load_world_file("cities.json").get("cities", [])):
        for key in ("id", "en", "zh"):
            if not isinstance(city.get(key), str):
                raise DataFileError(world_dir() / "cities.json", f"city #{i} lacks a string", field=key)
        for alias in [city["id"], city["en"], city["zh"], *city.get("aliases", [])]:
            index.setdefault(norm(alias), city)
        for suffix in ("市", "city"):
            index.setdefault(norm(city["zh" if suffix == "市" else "en"] + suffix), city)
    return index


def cities() -> list[dict[str, Any]]:
    return list(load_world_file("cities.json")["cities"])


def find_city(name: str) -> dict[str, Any] | None:
    return _city_index().get(norm(name))


def city(name: str, arg: str = "location") -> dict[str, Any]:
    """The canonical city record for a Chinese or English name; ToolInputError lists some known names."""
    found = find_city(name)
    if found is None:
        sample = ", ".join(c["en"] for c in cities()[:8])
        raise ToolInputError(f"argument {arg!r}: unknown city {name!r} (known e.g. {sample}, ...)")
    return found


def city_name(rec: dict[str, Any], zh: bool) -> str:
    return rec["zh"] if zh else rec["en"]


def parse_date(value: str, arg: str) -> dt.date:
    """Parse 'yyyy-MM-dd' (also 'today'/'今天'); ToolInputError names the argument."""
    text = str(value).strip()
    if text.lower() in ("today", "now", "今天", "今日"):
        return TODAY
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ToolInputError(f"argument {arg!r} must be a date 'yyyy-MM-dd', got {value!r}") from None


WEEKDAYS_EN = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
WEEKDAYS_ZH = ["星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"]


def fmt_num(x: float, places: int = 2) -> str:
    """12.0 -> '12', 3.14159 -> '3.14' (no trailing zeros), thousands not separated."""
    text = f"{round(x, places):.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
