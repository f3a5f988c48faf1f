"""get_weather_info: deterministic weather per (city, date), generated from a seeded function of a city's climate."""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass

from labkit.tools.registry import Tool, ToolInputError
from labkit.tools.world import TODAY, City, city, city_name, fmt_num, is_zh, parse_date

PAST_DAYS, FORECAST_DAYS, MAX_SPAN = 30, 14, 10
CONDITIONS = {"sunny": "晴", "partly cloudy": "多云", "overcast": "阴", "light rain": "小雨",
              "moderate rain": "中雨", "thunderstorm": "雷阵雨", "snow": "小雪"}


@dataclass(frozen=True)
class DayWeather:
    condition: str  # an English key of CONDITIONS
    low: int
    high: int
    humidity: int
    wind_kmh: int

    def condition_in(self, zh: bool) -> str:
        return CONDITIONS[self.condition] if zh else self.condition.capitalize()

    @property
    def current_temp(self) -> float:
        """The 10:00 temperature shown for is_current='yes'."""
        return round(self.low + 0.8 * (self.high - self.low), 1)


def day_weather(rec: City, day: dt.date) -> DayWeather:
    """The one weather a city has on a day: seeded by (city id, date), shaped by its climate."""
    clim = rec["climate"]
    rng = random.Random(f"{rec['id']}|{day.isoformat()}")
    season = math.cos(2 * math.pi * (day.timetuple().tm_yday - 200) / 365.25)
    if clim.get("hemisphere") == "S":
        season = -season
    mean = clim["mean_c"] + clim["amplitude_c"] * season + rng.uniform(-3.0, 3.0)
    spread = rng.randint(6, 11)
    low, high = round(mean - spread / 2), round(mean + spread / 2)
    wet = rng.random() < clim["rain_chance"]
    if wet:
        condition = "snow" if high <= 2 else rng.choice(
            ["light rain", "light rain", "moderate rain"] + (["thunderstorm"] if high >= 24 else []))
    else:
        condition = rng.choice(["sunny", "sunny", "partly cloudy", "partly cloudy", "overcast"])
    humidity = rng.randint(65, 95) if wet else rng.randint(25, 70)
    return DayWeather(condition, low, high, humidity, rng.randint(4, 30))


def _yes_no(value: str) -> bool:
    text = str(value).strip().lower()
    if text in ("yes", "y", "true", "1", "是", "现在"):
        return True
    if text in ("no", "n", "false", "0", "否", "", "none"):
        return False
    raise ToolInputError(f"argument 'is_current' must be 'yes' or 'no', got {value!r}")


def get_weather_info(location: str, start_date: str = "", end_date: str = "", is_current: str = "no") -> str:
    names = [p.strip() for p in str(location).replace("，", ",").replace("、", ",").split(",") if p.strip()]
    if not names:
        raise ToolInputError("argument 'location' is empty; give a city such as 'Beijing'")
    zh = is_zh(location)
    recs = [city(n) for n in names]
    if _yes_no(is_current):
        lines = []
        for rec in recs:
            w = day_weather(rec, TODAY)
            if zh:
                lines.append(f"{city_name(rec, True)} 当前（{TODAY} 10:00）：{w.condition_in(True)}，"
                             f"气温{fmt_num(w.current_temp, 1)}°C，湿度{w.humidity}%，风速{w.wind_kmh} km/h")
            else:
                lines.append(f"{city_name(rec, False)} now ({TODAY} 10:00): {w.condition_in(False)}, "
                             f"{fmt_num(w.current_temp, 1)}°C, humidity {w.humidity}%, wind {w.wind_kmh} km/h")
        return "\n".join(lines)
    start = parse_date(start_date or TODAY.isoformat(), "start_date")
    end = parse_date(end_date or start.isoformat(), "end_date")
    if end < start:
        raise ToolInputError(f"argument 'end_date' ({end}) is before 'start_date' ({start})")
    first, last = TODAY - dt.timedelta(days=PAST_DAYS), TODAY + dt.timedelta(days=FORECAST_DAYS)
    if start < first or end > last:
        raise ToolInputError(f"weather is only available from {first} to {last} (today is {TODAY}); "
                             f"got {start} to {end}")
    if (end - start).days + 1 > MAX_SPAN:
        raise ToolInputError(f"at most {MAX_SPAN} days per call; got {(end - start).days + 1}")
    lines = []
    for rec in recs:
        day = start
        while day <= end:
            w = day_weather(rec, day)
            if zh:
                lines.append(f"{city_name(rec, True)} {day}：{w.condition_in(True)}，{w.low}~{w.high}°C，"
                             f"湿度{w.humidity}%，风速{w.wind_kmh} km/h")
            else:
                lines.append(f"{city_name(rec, False)} {day}: {w.condition_in(False)}, {w.low}~{w.high}°C, "
                             f"humidity {w.humidity}%, wind {w.wind_kmh} km/h")
            day += dt.timedelta(days=1)
    return "\n".join(lines)


TOOLS = [
    Tool(
        name="get_weather_info",
        description="Weather for cities between two dates, or current weather.",
        parameters={"type": "object", "additionalProperties": False, "properties": {
            "location": {"type": "string", "description": "City names, comma-separated, e.g. Beijing"},
            "start_date": {"type": "string", "description": "Start date, yyyy-MM-dd"},
            "end_date": {"type": "string", "description": "End date, yyyy-MM-dd"},
            "is_current": {"type": "string", "description": "'yes' for current weather, else 'no'"}}},
        returns="One line of weather per city and day.",
        fn=get_weather_info,
        required=["location", "start_date", "end_date"],
    )
]
