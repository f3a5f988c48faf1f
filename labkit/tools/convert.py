"""currency_convert (fixed sandbox rate table) and unit_convert (length, mass, temperature, speed)."""

from __future__ import annotations

from functools import lru_cache

from labkit.tools.registry import Tool, ToolInputError
from labkit.tools.world import Currency, fmt_num, load_world_file, norm


def currencies() -> list[Currency]:
    """The currencies of ``rates.json``, in file order."""
    return list(load_world_file("rates.json")["currencies"])


@lru_cache(maxsize=None)
def _currencies() -> dict[str, Currency]:
    index: dict[str, Currency] = {}
    for cur in currencies():
        for alias in [cur["code"], cur["en"], cur["zh"], *cur.get("aliases", [])]:
            index.setdefault(norm(alias), cur)
    return index


def currency(name: str, arg: str) -> Currency:
    found = _currencies().get(norm(name))
    if found is None:
        codes = sorted({c["code"] for c in _currencies().values()})
        raise ToolInputError(f"argument {arg!r}: unknown currency {name!r}; known codes: {', '.join(codes)}")
    return found


def convert_currency(amount: float, from_currency: str, to_currency: str) -> tuple[float, float]:
    """(converted amount, rate of 1 from_currency in to_currency)."""
    src, dst = currency(from_currency, "from_currency"), currency(to_currency, "to_currency")
    rate = dst["per_usd"] / src["per_usd"]
    return amount * rate, rate


def currency_convert(amount: float, from_currency: str, to_currency: str) -> str:
    src, dst = currency(from_currency, "from_currency"), currency(to_currency, "to_currency")
    value, rate = convert_currency(amount, from_currency, to_currency)
    as_of = load_world_file("rates.json").get("as_of", "")
    return (f"{fmt_num(amount)} {src['code']} = {value:.2f} {dst['code']} "
            f"(1 {src['code']} = {rate:.4f} {dst['code']}, sandbox rate of {as_of})")


# unit -> (dimension, factor to the base unit); temperature is handled separately
_UNITS: dict[str, tuple[str, float]] = {
    "m": ("length", 1.0), "km": ("length", 1000.0), "cm": ("length", 0.01), "mm": ("length", 0.001),
    "mile": ("length", 1609.344), "yard": ("length", 0.9144), "foot": ("length", 0.3048), "inch": ("length", 0.0254),
    "kg": ("mass", 1.0), "g": ("mass", 0.001), "mg": ("mass", 1e-6), "t": ("mass", 1000.0), "lb": ("mass", 0.45359237),
    "oz": ("mass", 0.028349523125), "jin": ("mass", 0.5),
    "m/s": ("speed", 1.0), "km/h": ("speed", 1 / 3.6), "mph": ("speed", 0.44704), "knot": ("speed", 0.514444),
    "c": ("temperature", 1.0), "f": ("temperature", 1.0), "k": ("temperature", 1.0)}
_ALIASES = {
    "meter": "m", "meters": "m", "metre": "m", "metres": "m", "米": "m", "kilometer": "km", "kilometers": "km",
    "kilometre": "km", "公里": "km", "千米": "km", "centimeter": "cm", "centimeters": "cm", "厘米": "cm",
    "millimeter": "mm", "毫米": "mm", "miles": "mile", "mi": "mile", "英里": "mile", "yards": "yard", "yd": "yard",
    "码": "yard", "feet": "foot", "ft": "foot", "英尺": "foot", "inches": "inch", "in": "inch", "英寸": "inch",
    "kilogram": "kg", "kilograms": "kg", "公斤": "kg", "千克": "kg", "gram": "g", "grams": "g", "克": "g",
    "milligram": "mg", "毫克": "mg", "ton": "t", "tons": "t", "tonne": "t", "吨": "t", "pound": "lb", "pounds": "lb",
    "lbs": "lb", "磅": "lb", "ounce": "oz", "ounces": "oz", "盎司": "oz", "斤": "jin", "meterspersecond": "m/s",
    "米每秒": "m/s", "米/秒": "m/s", "kmh": "km/h", "kph": "km/h", "kilometersperhour": "km/h", "公里每小时": "km/h",
    "千米每小时": "km/h", "公里/小时": "km/h", "milesperhour": "mph", "英里每小时": "mph", "knots": "knot",
    "kn": "knot", "节": "knot", "celsius": "c", "°c": "c", "℃": "c", "摄氏度": "c", "fahrenheit": "f", "°f": "f",
    "℉": "f", "华氏度": "f", "kelvin": "k", "开尔文": "k"}
UNIT_NAMES = {"c": "°C", "f": "°F", "k": "K"}


def unit(name: str, arg: str) -> str:
    key = str(name).strip().lower().replace(" ", "")
    key = _ALIASES.get(key, key)
    if key not in _UNITS:
        raise ToolInputError(f"argument {arg!r}: unknown unit {name!r}; known e.g. km, mile, kg, lb, °C, °F, km/h, mph")
    return key


def _to_kelvin(v: float, u: str) -> float:
    return {"c": v + 273.15, "f": (v - 32) * 5 / 9 + 273.15, "k": v}[u]


def _from_kelvin(v: float, u: str) -> float:
    return {"c": v - 273.15, "f": (v - 273.15) * 9 / 5 + 32, "k": v}[u]


def convert_unit(value: float, from_unit: str, to_unit: str) -> float:
    src, dst = unit(from_unit, "from_unit"), unit(to_unit, "to_unit")
    (dim_s, f_s), (dim_d, f_d) = _UNITS[src], _UNITS[dst]
    if dim_s != dim_d:
        raise ToolInputError(f"cannot convert {dim_s} ({from_unit!r}) to {dim_d} ({to_unit!r})")
    if dim_s == "temperature":
        return _from_kelvin(_to_kelvin(value, src), dst)
    return value * f_s / f_d


def unit_convert(value: float, from_unit: str, to_unit: str) -> str:
    result = convert_unit(value, from_unit, to_unit)
    src, dst = unit(from_unit, "from_unit"), unit(to_unit, "to_unit")
    return f"{fmt_num(value, 4)} {UNIT_NAMES.get(src, src)} = {fmt_num(result, 4)} {UNIT_NAMES.get(dst, dst)}"


TOOLS = [
    Tool(
        name="currency_convert",
        description="Convert an amount between currencies at fixed sandbox rates.",
        parameters={"type": "object", "additionalProperties": False, "properties": {
            "amount": {"type": "number", "description": "Amount of money"},
            "from_currency": {"type": "string", "description": "Source currency code, e.g. USD"},
            "to_currency": {"type": "string", "description": "Target currency code, e.g. CNY"}}},
        returns="The converted amount and the rate used.",
        fn=currency_convert,
        required=["amount", "from_currency", "to_currency"],
    ),
    Tool(
        name="unit_convert",
        description="Convert length, mass, temperature or speed units.",
        parameters={"type": "object", "additionalProperties": False, "properties": {
            "value": {"type": "number", "description": "Number to convert"},
            "from_unit": {"type": "string", "description": "Unit of value, e.g. km"},
            "to_unit": {"type": "string", "description": "Target unit, e.g. mile"}}},
        returns="The value in the target unit.",
        fn=unit_convert,
        required=["value", "from_unit", "to_unit"],
    ),
]
