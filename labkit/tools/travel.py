"""train_timetable: a deterministic list of trains and flights between two cities on a date (fares in CNY)."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from functools import lru_cache

from labkit.tools.registry import Tool, ToolInputError
from labkit.tools.world import TODAY, City, city, city_name, is_zh, load_world_file, parse_date

_RAIL_ABROAD = {frozenset({"london", "paris"}), frozenset({"paris", "berlin"})}
MAX_DAYS_AHEAD = 60


@dataclass(frozen=True)
class Option:
    number: str
    kind: str  # "train" | "flight"
    depart: str
    arrive: str
    minutes: int
    price_cny: int

    def line(self, zh: bool) -> str:
        h, m = divmod(self.minutes, 60)
        if zh:
            kind = "高铁" if self.kind == "train" else "航班"
            seat = "二等座" if self.kind == "train" else "经济舱"
            return f"{self.number} {kind} {self.depart}→{self.arrive}（{h}小时{m}分），{seat} {self.price_cny} 元"
        seat = "second class" if self.kind == "train" else "economy"
        return f"{self.number} {self.kind} {self.depart}→{self.arrive} ({h}h{m:02d}m), {seat} {self.price_cny} CNY"


@lru_cache(maxsize=None)
def _routes() -> dict[frozenset[str], int]:
    return {frozenset({r["from"], r["to"]}): int(r["km"]) for r in load_world_file("cities.json").get("routes", [])}


def routes() -> list[tuple[str, str, int]]:
    """(city id, city id, km) for every served pair."""
    return [(r["from"], r["to"], int(r["km"])) for r in load_world_file("cities.json").get("routes", [])]


def _clock(minutes: int) -> str:
    minutes %= 24 * 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def options(src: City, dst: City, day: dt.date) -> list[Option]:
    """The services from src to dst on day, sorted by departure."""
    km = _routes().get(frozenset({src["id"], dst["id"]}))
    if km is None:
        return []
    rng = random.Random(f"{src['id']}>{dst['id']}|{day.isoformat()}")
    domestic = src["country"]["zh"] == dst["country"]["zh"] == "中国"
    out: list[Option] = []
    if (domestic and km <= 2400) or frozenset({src["id"], dst["id"]}) in _RAIL_ABROAD:
        minutes = int(km / 280 * 60 + 18)
        fare = max(20, round(km * 0.46))
        for slot in sorted(rng.sample(range(6 * 60, 20 * 60, 20), 3)):
            dur = minutes + rng.randint(-10, 25)
            out.append(Option(f"G{rng.randint(1, 1999)}", "train", _clock(slot), _clock(slot + dur), dur, fare))
    if km >= 500:
        minutes = int(km / 750 * 60 + 45)
        for slot in sorted(rng.sample(range(7 * 60, 22 * 60, 15), 2)):
            dur = minutes + rng.randint(-5, 20)
            price = round(300 + km * 0.55 * rng.uniform(0.6, 1.3), -1)
            code = rng.choice(["CA", "MU", "CZ", "HU", "ZH"])
            out.append(Option(f"{code}{rng.randint(100, 9899)}", "flight", _clock(slot), _clock(slot + dur), dur,
                              int(price)))
    return sorted(out, key=lambda o: o.depart)


def train_timetable(from_city: str, to_city: str, date: str) -> str:
    src, dst = city(from_city, "from_city"), city(to_city, "to_city")
    day = parse_date(date, "date")
    if src["id"] == dst["id"]:
        raise ToolInputError("arguments 'from_city' and 'to_city' are the same city")
    if not TODAY <= day <= TODAY + dt.timedelta(days=MAX_DAYS_AHEAD):
        raise ToolInputError(f"argument 'date': timetables cover {TODAY} to "
                             f"{TODAY + dt.timedelta(days=MAX_DAYS_AHEAD)}, got {day}")
    found = options(src, dst, day)
    zh = is_zh(from_city + to_city)
    if not found:
        served = sorted({city_name(city(b if a == src["id"] else a), zh) for a, b, _ in routes()
                         if src["id"] in (a, b)})
        raise ToolInputError(f"no direct service from {city_name(src, zh)} to {city_name(dst, zh)}; "
                             f"{city_name(src, zh)} has services to: {', '.join(served) or 'none'}")
    head = (f"{city_name(src, True)} → {city_name(dst, True)} {day}：" if zh
            else f"{city_name(src, False)} → {city_name(dst, False)} on {day}:")
    return "\n".join([head, *(o.line(zh) for o in found)])


TOOLS = [
    Tool(
        name="train_timetable",
        description="Trains and flights between two cities on a date, with fares.",
        parameters={"type": "object", "additionalProperties": False, "properties": {
            "from_city": {"type": "string", "description": "Departure city"},
            "to_city": {"type": "string", "description": "Arrival city"},
            "date": {"type": "string", "description": "Travel date, yyyy-MM-dd"}}},
        returns="One line per train or flight: number, times, duration, fare.",
        fn=train_timetable,
        required=["from_city", "to_city", "date"],
    )
]
