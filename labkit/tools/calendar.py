"""get_calendar_info and time_delta: weekdays, 2025 holidays and solar terms, days between dates."""

from __future__ import annotations

from functools import lru_cache

from labkit.tools.registry import Tool
from labkit.tools.world import TODAY, WEEKDAYS_EN, WEEKDAYS_ZH, load_world_file, parse_date


@lru_cache(maxsize=None)
def _named_days() -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]], int]:
    data = load_world_file("calendar_2025.json")
    holidays = {h["date"]: (h["en"], h["zh"]) for h in data.get("holidays", [])}
    terms = {t["date"]: (t["en"], t["zh"]) for t in data.get("solar_terms", [])}
    return holidays, terms, int(data.get("year", 2025))


def holidays() -> dict[str, tuple[str, str]]:
    """{'2025-10-01': ('National Day', '国庆节'), ...}"""
    return dict(_named_days()[0])


def get_calendar_info(date: str) -> str:
    day = parse_date(date, "date")
    hol, terms, year = _named_days()
    key = day.isoformat()
    wd = day.weekday()
    parts = [f"{key}: {WEEKDAYS_EN[wd]} ({WEEKDAYS_ZH[wd]})", "weekend 周末" if wd >= 5 else "workday 工作日"]
    if day.year != year:
        parts.append(f"holidays: only {year} is listed")
    else:
        parts.append(f"holiday: {hol[key][0]} ({hol[key][1]})" if key in hol else "holiday: none")
        if key in terms:
            parts.append(f"solar term: {terms[key][0]} ({terms[key][1]})")
    delta = (day - TODAY).days
    parts.append(f"{abs(delta)} days {'after' if delta >= 0 else 'before'} today {TODAY}")
    return "; ".join(parts)


def time_delta(start_date: str, end_date: str) -> str:
    start, end = parse_date(start_date, "start_date"), parse_date(end_date, "end_date")
    days = (end - start).days
    weeks, rest = divmod(abs(days), 7)
    return f"From {start} to {end}: {days} days ({weeks} weeks {rest} days) / 相差{days}天"


TOOLS = [
    Tool(
        name="get_calendar_info",
        description="Weekday, holiday and solar term of a date.",
        parameters={"type": "object", "additionalProperties": False, "properties": {
            "date": {"type": "string", "description": "Date, yyyy-MM-dd"}}},
        returns="Weekday, holiday, solar term and distance from today.",
        fn=get_calendar_info,
        required=["date"],
    ),
    Tool(
        name="time_delta",
        description="Number of days between two dates.",
        parameters={"type": "object", "additionalProperties": False, "properties": {
            "start_date": {"type": "string", "description": "Start date, yyyy-MM-dd"},
            "end_date": {"type": "string", "description": "End date, yyyy-MM-dd"}}},
        returns="Days (and weeks) from start_date to end_date.",
        fn=time_delta,
        required=["start_date", "end_date"],
    ),
]
