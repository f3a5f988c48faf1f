"""The sandbox world: fixed TODAY, bundled data files (data/world/*.json) and name lookups shared by the tools.

The records of the world files are typed here, once, as the JSON objects they are: :class:`City` (``cities.json``),
:class:`Entity` and its :class:`Fact` s (``entities.json``; :func:`labkit.tools.wiki.entities` adds one per city),
:class:`Currency` (``rates.json``) and :class:`Page` (a web page: ``corpus.jsonl``, and the topic pages of
``topics.json``); :class:`Bilingual` is any ``{"en", "zh"}`` pair (a country, a summary, a glossary pair).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, TypedDict

from labkit.errors import DataFileError
from labkit.paths import data_dir
from labkit.tools.registry import ToolInputError

TODAY = dt.date(2025, 3, 15)
"""The world's fixed 'today' (a Saturday): every relative date in the query bank is counted from it."""



class Bilingual(TypedDict):
    en: str
    zh: str


class _ClimateFields(TypedDict):
    mean_c: float
    amplitude_c: float
    rain_chance: float


class Climate(_ClimateFields, total=False):
    """What a city's weather is drawn from (:func:`labkit.tools.weather.day_weather`); ``hemisphere`` "N" (the
    default) or "S"."""

    hemisphere: str


class _CityFields(TypedDict):
    id: str
    en: str
    zh: str
    country: Bilingual
    population_m: float
    climate: Climate
    food: Bilingual
    best_season: Bilingual
    known_for: Bilingual


class City(_CityFields, total=False):
    """One city of ``cities.json``; ``aliases`` are further names :func:`find_city` knows it by."""

    aliases: list[str]


class Fact(TypedDict):
    key: str                     # a key of labkit.tools.wiki.LABELS
    en: str
    zh: str


class _EntityFields(TypedDict):
    id: str
    type: str                    # person | landmark | company | city
    en: str
    zh: str
    summary: Bilingual
    facts: list[Fact]


class Entity(_EntityFields, total=False):
    """One encyclopedia entry: an entity of ``entities.json``, or a city's entry (``labkit.tools.wiki``)."""

    aliases: list[str]
    city_id: str | None          # landmark, company, city: the city it is in (None: not a sandbox city)
    born_year: int               # person
    died_year: int | None        # person (None: alive)
    year: int | None             # landmark, company


class _CurrencyFields(TypedDict):
    code: str
    per_usd: float
    en: str
    zh: str


class Currency(_CurrencyFields, total=False):
    """One currency of ``rates.json``: ``per_usd`` units buy one US dollar."""

    aliases: list[str]


class Page(TypedDict):
    """One web page of the sandbox corpus (``corpus.jsonl``, built by ``labkit.build.worldgen``)."""

    url: str
    title: str
    text: str
    lang: str


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def world_dir() -> Path:
    return data_dir() / "world"


@lru_cache(maxsize=None)
def load_world_file(name: str) -> dict[str, Any]:
    """Read ``data/world/<name>``, a JSON object of any layout (the typed records are read from it by
    :func:`cities`, :func:`labkit.tools.wiki.entities`, :func:`labkit.tools.convert.currencies`); DataFileError names
    the file on a bad one."""
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
def _city_index() -> dict[str, City]:
    index: dict[str, City] = {}
    for i, city in enumerate(load_world_file("cities.json").get("cities", [])):
        for key in ("id", "en", "zh"):
            if not isinstance(city.get(key), str):
                raise DataFileError(world_dir() / "cities.json", f"city #{i} lacks a string", field=key)
        for alias in [city["id"], city["en"], city["zh"], *city.get("aliases", [])]:
            index.setdefault(norm(alias), city)
        for suffix in ("市", "city"):
            index.setdefault(norm(city["zh" if suffix == "市" else "en"] + suffix), city)
    return index


def cities() -> list[City]:
    return list(load_world_file("cities.json")["cities"])


def find_city(name: str) -> City | None:
    return _city_index().get(norm(name))


def city(name: str, arg: str = "location") -> City:
    """The canonical city record for a Chinese or English name; ToolInputError lists some known names."""
    found = find_city(name)
    if found is None:
        sample = ", ".join(c["en"] for c in cities()[:8])
        raise ToolInputError(f"argument {arg!r}: unknown city {name!r} (known e.g. {sample}, ...)")
    return found


def city_name(rec: City, zh: bool) -> str:
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
