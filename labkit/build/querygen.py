"""Generate the query bank (data/queries/agent_queries.jsonl) and general samples (data/queries/general.jsonl).

Every query comes from a seeded template over the sandbox world; its gold calls are executed against the tools and
the reference answer is written from the values those calls return. Run ``python -m labkit.build.querygen``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from labkit.jsonl import write_jsonl
from labkit.paths import data_dir
from labkit.records import Query
from labkit.tools import default_registry
from labkit.tools.calc import evaluate
from labkit.tools.calendar import holidays
from labkit.tools.convert import convert_currency, convert_unit, currencies
from labkit.tools.registry import ToolRegistry
from labkit.tools.search import find_page, search
from labkit.tools.travel import options, routes
from labkit.tools.weather import day_weather
from labkit.tools.wiki import entities, fact
from labkit.tools.world import (TODAY, WEEKDAYS_EN, WEEKDAYS_ZH, City, Currency, Entity, Page, cities, find_city,
                                fmt_num, load_world_file)
from labkit.types import ToolCall

SEED = 20250315
PER_LANG = 15        # queries per tool cluster per language
NO_TOOL_PER_LANG = 13
GENERAL_TARGET = 200


@dataclass
class Draft:
    """One query before execution: calls to run and a function writing the answer from their outputs."""

    query: str
    calls: list[ToolCall]
    thoughts: list[str]
    answer: Callable[[list[str]], str]
    cites: tuple[str, ...] = ()  # non-numeric values the answer quotes; each must occur in a tool output


Maker = Callable[[random.Random, str, int], Draft]


def _d(offset: int) -> dt.date:
    return TODAY + dt.timedelta(days=offset)


def _name(rec: City, lang: str) -> str:
    return rec["zh"] if lang == "zh" else rec["en"]


def _pick(rng: random.Random, patterns: list[str], i: int) -> str:
    return patterns[i % len(patterns)]


def _wx(rec: City, day: dt.date, lang: str) -> str:
    w = day_weather(rec, day)
    if lang == "zh":
        return f"{w.condition_in(True)}，{w.low}~{w.high}°C，湿度{w.humidity}%"
    return f"{w.condition_in(False).lower()}, {w.low}~{w.high}°C, humidity {w.humidity}%"


# ---------------------------------------------------------------- weather
WX_NOW = {
    "en": ["What's the weather like in {c} right now?", "How is the weather in {c} at the moment?",
           "Is it raining in {c} now?", "Tell me the current temperature in {c}.",
           "I'm in {c}. What's the weather outside right now?", "Current weather conditions in {c}, please.",
           "Check the weather in {c} for me now."],
    "zh": ["{c}现在天气怎么样？", "{c}此刻的天气如何？", "现在{c}下雨吗？", "告诉我{c}当前的气温。",
           "我在{c}，外面现在天气怎样？", "请查询{c}的实时天气。", "帮我看看{c}现在的天气。"],
}


def weather_current(rng: random.Random, lang: str, i: int) -> Draft:
    rec = rng.choice(cities())
    c = _name(rec, lang)
    w = day_weather(rec, TODAY)
    t = fmt_num(w.current_temp, 1)
    call = ToolCall("get_weather_info", {"location": c, "start_date": str(TODAY), "end_date": str(TODAY),
                                         "is_current": "yes"})
    if lang == "zh":
        return Draft(_pick(rng, WX_NOW[lang], i).format(c=c), [call], [f"获取{c}现在的天气信息"],
                     lambda obs: f"{c}现在{w.condition_in(True)}，气温{t}°C，湿度{w.humidity}%，风速{w.wind_kmh} km/h。")
    return Draft(_pick(rng, WX_NOW[lang], i).format(c=c), [call], [f"Get the current weather in {c}"],
                 lambda obs: f"Current weather in {c}: {w.condition_in(False).lower()}, {t}°C, humidity "
                             f"{w.humidity}%, wind {w.wind_kmh} km/h.")


WX_DAYS = [  # (English phrase, Chinese phrase, first offset, last offset)
    ("tomorrow", "明天", 1, 1), ("the day after tomorrow", "后天", 2, 2), ("next Monday", "下周一", 2, 2),
    ("on March 20", "3月20日", 5, 5), ("next Saturday", "下周六", 7, 7), ("on 2025-03-25", "2025年3月25日", 10, 10),
    ("over the next three days", "未来三天", 1, 3), ("this weekend", "这个周末", 0, 1),
    ("from March 18 to March 20", "3月18日到3月20日", 3, 5), ("on March 28", "3月28日", 13, 13)]
WX_FORECAST = {
    "en": ["What will the weather be in {c} {when}?", "Weather forecast for {c} {when}, please.",
           "Will it rain in {c} {when}?", "How cold or warm will {c} be {when}?",
           "I'm visiting {c} {when}. What weather should I expect?", "Check {c}'s forecast {when}.",
           "Should I pack an umbrella for {c} {when}?"],
    "zh": ["{c}{when}天气怎么样？", "请查一下{c}{when}的天气预报。", "{c}{when}会下雨吗？", "{c}{when}气温多少度？",
           "我{when}要去{c}，那边天气如何？", "帮我看看{c}{when}的天气。", "{when}去{c}需要带伞吗？"],
}


def weather_forecast(rng: random.Random, lang: str, i: int) -> Draft:
    rec = rng.choice(cities())
    en, zh, a, b = rng.choice(WX_DAYS)
    c, when = _name(rec, lang), (zh if lang == "zh" else en)
    start, end = _d(a), _d(b)
    call = ToolCall("get_weather_info", {"location": c, "start_date": str(start), "end_date": str(end),
                                         "is_current": "no"})
    days = [_d(k) for k in range(a, b + 1)]
    if lang == "zh":
        text = "；".join(f"{d}{_wx(rec, d, 'zh')}" for d in days)
        if len(days) == 1:
            text = f"{start}）{_wx(rec, start, 'zh')}"
            return Draft(_pick(rng, WX_FORECAST[lang], i).format(c=c, when=when), [call],
                         [f"查询{c}{start}的天气"], lambda obs: f"{c}{when}（{text}。")
        return Draft(_pick(rng, WX_FORECAST[lang], i).format(c=c, when=when), [call],
                     [f"查询{c}{start}至{end}的天气"], lambda obs: f"{c}{when}的天气：{text}。")
    if len(days) == 1:
        return Draft(_pick(rng, WX_FORECAST[lang], i).format(c=c, when=when), [call],
                     [f"Get the weather forecast for {c} on {start}"],
                     lambda obs: f"Forecast for {c} on {start}: {_wx(rec, start, 'en')}.")
    text = "; ".join(f"{d} {_wx(rec, d, 'en')}" for d in days)
    return Draft(_pick(rng, WX_FORECAST[lang], i).format(c=c, when=when), [call],
                 [f"Get the weather forecast for {c} from {start} to {end}"],
                 lambda obs: f"Forecast for {c}: {text}.")


# ---------------------------------------------------------------- money and units
CUR = {
    "en": ["How much is {a} {F} in {T}?", "Convert {a} {F} to {T}.", "What's {a} {Fn} worth in {Tn}?",
           "I have {a} {Fn}. How many {Tn} is that?", "Exchange {a} {F} into {T} at today's rate.",
           "{a} {F} equals how many {T}?", "What do I get for {a} {Fn} in {Tn}?"],
    "zh": ["{a}{Fn}能换多少{Tn}？", "把{a}{Fn}换算成{Tn}。", "{a}{F}等于多少{T}？", "我有{a}{Fn}，相当于多少{Tn}？",
           "按今天的汇率，{a}{Fn}是多少{Tn}？", "帮我算一下{a}{Fn}兑换{Tn}是多少。", "{a}{Fn}折合{Tn}多少钱？"],
}


def _two_currencies(rng: random.Random) -> tuple[Currency, Currency]:
    src, dst = rng.sample(currencies(), 2)
    if rng.random() < 0.6 and "CNY" not in (src["code"], dst["code"]):
        dst = next(c for c in currencies() if c["code"] == "CNY")
    return src, dst


def currency(rng: random.Random, lang: str, i: int) -> Draft:
    src, dst = _two_currencies(rng)
    amount = rng.choice([20, 50, 100, 150, 200, 250, 300, 500, 800, 1000, 1200, 2000, 5000])
    value, rate = convert_currency(amount, src["code"], dst["code"])
    key = "zh" if lang == "zh" else "en"
    q = _pick(rng, CUR[lang], i).format(a=amount, F=src["code"], T=dst["code"], Fn=src[key], Tn=dst[key])
    call = ToolCall("currency_convert", {"amount": amount, "from_currency": src["code"], "to_currency": dst["code"]})
    v, r = f"{value:.2f}", f"{rate:.4f}"
    if lang == "zh":
        return Draft(q, [call], [f"将{amount}{src['zh']}换算为{dst['zh']}"],
                     lambda obs: f"{amount}{src['zh']}约合{v}{dst['zh']}（汇率1 {src['code']} = {r} {dst['code']}）。")
    return Draft(q, [call], [f"Convert {amount} {src['code']} to {dst['code']}"],
                 lambda obs: f"{amount} {src['code']} is about {v} {dst['code']} (1 {src['code']} = {r} "
                             f"{dst['code']}).")


CUR_CALC = {
    "en": ["I have {a} {F}. After changing it to {T} I spend {s} {T}. How much {T} is left?",
           "Convert {a} {F} to {T}, then subtract {s} {T}. What remains?",
           "My budget is {a} {F}; a hotel costs {s} {T}. How much {T} do I have after paying?",
           "If I exchange {a} {F} for {T} and buy something for {s} {T}, what's left?",
           "Change {a} {Fn} into {Tn} and take away {s}. How much is left?",
           "After spending {s} {T} out of {a} {F}, how many {T} remain?"],
    "zh": ["我有{a}{Fn}，换成{Tn}后花了{s}{Tn}，还剩多少{Tn}？", "把{a}{F}换成{T}，再减去{s}{T}，还剩多少？",
           "预算{a}{Fn}，酒店要{s}{Tn}，付完还剩多少{Tn}？", "{a}{Fn}兑换成{Tn}后买了{s}{Tn}的东西，剩多少？",
           "先把{a}{Fn}换算成{Tn}，然后扣掉{s}，结果是多少？", "从{a}{F}里花掉{s}{T}，还剩多少{T}？"],
}
CUR_SPLIT = {
    "en": ["Convert {a} {F} to {T} and split it equally among {n} people. How much each?",
           "We have {a} {Fn} to share among {n} friends. How many {Tn} does each get?"],
    "zh": ["把{a}{Fn}换成{Tn}后平分给{n}个人，每人多少？", "{a}{F}换算成{T}，{n}个人平摊，每人多少{T}？"],
}


def currency_calc(rng: random.Random, lang: str, i: int) -> Draft:
    src, dst = _two_currencies(rng)
    amount = rng.choice([100, 200, 300, 500, 800, 1000, 1500, 2000])
    value, _ = convert_currency(amount, src["code"], dst["code"])
    v = f"{value:.2f}"
    key = "zh" if lang == "zh" else "en"
    first = ToolCall("currency_convert", {"amount": amount, "from_currency": src["code"], "to_currency": dst["code"]})
    t_conv = f"将{amount}{src['zh']}换算为{dst['zh']}" if lang == "zh" else f"Convert {amount} {src['code']} to {dst['code']}"
    if i % 4 == 3:  # split among n people
        n = rng.randint(2, 6)
        expr = f"{v} / {n}"
        res = fmt_num(evaluate(expr), 4)
        q = _pick(rng, CUR_SPLIT[lang], i // 4).format(a=amount, F=src["code"], T=dst["code"], Fn=src[key],
                                                         Tn=dst[key], n=n)
        if lang == "zh":
            return Draft(q, [first, ToolCall("calculator", {"expression": expr})], [t_conv, f"计算{n}人平分的金额"],
                         lambda obs: f"{amount}{src['zh']}约合{v}{dst['zh']}，{n}人平分每人约{res}{dst['zh']}。")
        return Draft(q, [first, ToolCall("calculator", {"expression": expr})], [t_conv, f"Divide the amount by {n}"],
                     lambda obs: f"{amount} {src['code']} is {v} {dst['code']}, so each of the {n} people gets "
                                 f"about {res} {dst['code']}.")
    spend = max(1, round(value * rng.uniform(0.2, 0.8), -1 if value > 100 else 0))
    s = fmt_num(spend)
    expr = f"{v} - {s}"
    res = fmt_num(evaluate(expr), 4)
    q = _pick(rng, CUR_CALC[lang], i).format(a=amount, F=src["code"], T=dst["code"], Fn=src[key], Tn=dst[key], s=s)
    if lang == "zh":
        return Draft(q, [first, ToolCall("calculator", {"expression": expr})], [t_conv, "计算花费后剩余的金额"],
                     lambda obs: f"{amount}{src['zh']}约合{v}{dst['zh']}，花掉{s}后还剩{res}{dst['zh']}。")
    return Draft(q, [first, ToolCall("calculator", {"expression": expr})], [t_conv, "Subtract the amount spent"],
                 lambda obs: f"{amount} {src['code']} is {v} {dst['code']}; after spending {s} you have {res} "
                             f"{dst['code']} left.")


UNIT_PAIRS = [  # (from arg, to arg, en from, en to, zh from, zh to, values)
    ("km", "mile", "kilometers", "miles", "公里", "英里", [5, 10, 21, 42, 100, 250]),
    ("mile", "km", "miles", "kilometers", "英里", "公里", [1, 3, 26, 60, 120]),
    ("m", "foot", "meters", "feet", "米", "英尺", [2, 10, 50, 330, 828]),
    ("inch", "cm", "inches", "centimeters", "英寸", "厘米", [6, 13, 27, 55, 65]),
    ("kg", "lb", "kilograms", "pounds", "公斤", "磅", [1, 5, 23, 60, 75]),
    ("lb", "kg", "pounds", "kilograms", "磅", "公斤", [2, 10, 150, 200]),
    ("jin", "kg", "jin", "kilograms", "斤", "公斤", [3, 10, 120]),
    ("oz", "g", "ounces", "grams", "盎司", "克", [4, 8, 16]),
    ("°C", "°F", "degrees Celsius", "degrees Fahrenheit", "摄氏度", "华氏度", [-10, 0, 25, 37, 100]),
    ("°F", "°C", "degrees Fahrenheit", "degrees Celsius", "华氏度", "摄氏度", [32, 68, 98.6, 212]),
    ("km/h", "m/s", "km/h", "m/s", "公里每小时", "米每秒", [36, 90, 120, 350]),
    ("mph", "km/h", "mph", "km/h", "英里每小时", "公里每小时", [30, 55, 70]),
]
UNIT = {
    "en": ["How many {T} is {v} {F}?", "Convert {v} {F} to {T}.", "{v} {F} in {T}?", "What is {v} {F} expressed in {T}?",
           "Please change {v} {F} into {T}.", "I need {v} {F} in {T}. What's the number?"],
    "zh": ["{v}{F}等于多少{T}？", "把{v}{F}换算成{T}。", "{v}{F}是多少{T}？", "请将{v}{F}转换为{T}。",
           "{v}{F}合多少{T}？", "帮我把{v}{F}换成{T}。"],
}


def unit(rng: random.Random, lang: str, i: int) -> Draft:
    fa, ta, fe, te, fz, tz, values = rng.choice(UNIT_PAIRS)
    v = rng.choice(values)
    res = fmt_num(convert_unit(v, fa, ta), 4)
    F, T = (fz, tz) if lang == "zh" else (fe, te)
    call = ToolCall("unit_convert", {"value": v, "from_unit": fa, "to_unit": ta})
    q = _pick(rng, UNIT[lang], i).format(v=v, F=F, T=T)
    if lang == "zh":
        return Draft(q, [call], [f"将{v}{fz}换算为{tz}"], lambda obs: f"{v}{fz}约等于{res}{tz}。")
    return Draft(q, [call], [f"Convert {v} {fa} to {ta}"], lambda obs: f"{v} {fe} is about {res} {te}.")


# ---------------------------------------------------------------- arithmetic and dates
def _expression(rng: random.Random) -> tuple[str, str, str]:
    """(expression, English phrase, Chinese phrase)."""
    kind = rng.randrange(5)
    a, b, c = rng.randint(12, 999), rng.randint(3, 99), rng.randint(2, 40)
    if kind == 0:
        e = f"({a} + {b}) * {c}"
        return e, e, e
    if kind == 1:
        e = f"{a} * {b} - {c}"
        return e, e, e
    if kind == 2:
        p = rng.choice([5, 8, 12, 15, 20, 25, 30])
        return f"{a} * {p} / 100", f"{p}% of {a}", f"{a}的{p}%"
    if kind == 3:
        n = rng.choice([2, 3, 5, 7, 10, 50, 200, 1234])
        return f"sqrt({n})", f"the square root of {n}", f"{n}的平方根"
    x, y = rng.randint(2, 12), rng.randint(2, 6)
    return f"{x} ** {y}", f"{x} to the power of {y}", f"{x}的{y}次方"


CALC = {
    "en": ["What is {e}?", "Calculate {e}.", "Compute {e} for me.", "Please work out {e}.",
           "What's the result of {e}?", "Can you evaluate {e}?"],
    "zh": ["{e}等于多少？", "计算一下{e}。", "帮我算{e}。", "请算出{e}的结果。", "{e}的结果是多少？", "{e}是多少？"],
}


def calc(rng: random.Random, lang: str, i: int) -> Draft:
    expr, en, zh = _expression(rng)
    res = fmt_num(evaluate(expr), 4)
    call = ToolCall("calculator", {"expression": expr})
    if lang == "zh":
        return Draft(_pick(rng, CALC[lang], i).format(e=zh), [call], [f"计算{zh}"],
                     lambda obs: f"{zh}的计算结果是{res}。")
    return Draft(_pick(rng, CALC[lang], i).format(e=en), [call], [f"Calculate {en}"],
                 lambda obs: f"{en[0].upper() + en[1:]} is {res}.")


def _zh_date(d: dt.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _en_date(d: dt.date) -> str:
    return f"{d.strftime('%B')} {d.day}, {d.year}"


CAL = {
    "en": ["What day of the week is {d}?", "Is {d} a weekend?", "Which weekday falls on {d}?",
           "Is {d} a holiday?", "Tell me about the date {d}: weekday and any holiday.", "What weekday is {d}?"],
    "zh": ["{d}是星期几？", "{d}是周末吗？", "{d}是工作日还是周末？", "{d}是节假日吗？", "查一下{d}是星期几、有没有节日。",
           "{d}那天星期几？"],
}


def _calendar_answer(day: dt.date, lang: str) -> str:
    hol = holidays().get(str(day))
    wd = day.weekday()
    if lang == "zh":
        kind = "周末" if wd >= 5 else "工作日"
        return f"{_zh_date(day)}是{WEEKDAYS_ZH[wd]}（{kind}）" + (f"，是{hol[1]}。" if hol else "，不是节日。")
    kind = "a weekend day" if wd >= 5 else "a workday"
    return f"{_en_date(day)} is a {WEEKDAYS_EN[wd]} ({kind})" + (f" and it is {hol[0]}." if hol else ", not a holiday.")


def calendar(rng: random.Random, lang: str, i: int) -> Draft:
    pool = [dt.date.fromisoformat(h) for h in holidays()] + [_d(k) for k in range(-20, 120, 3)]
    day = rng.choice(pool)
    d = _zh_date(day) if lang == "zh" else _en_date(day)
    call = ToolCall("get_calendar_info", {"date": str(day)})
    thought = f"查询{day}的日历信息" if lang == "zh" else f"Look up the calendar for {day}"
    return Draft(_pick(rng, CAL[lang], i).format(d=d), [call], [thought], lambda obs: _calendar_answer(day, lang))


COUNTDOWN = {
    "en": ["How many days are left until {h} ({d}), and what day of the week is it?",
           "{h} is on {d}. What weekday is that and how far away is it?",
           "Count the days from today to {h} on {d}, and tell me the weekday.",
           "What weekday is {h} ({d}) this year, and how many days until then?",
           "How long do I have to wait for {h} on {d}? Also, which weekday is it?",
           "Days until {h} ({d})? And is it a weekend?"],
    "zh": ["距离{h}（{d}）还有多少天？那天是星期几？", "{h}是{d}，那天星期几？离今天还有几天？", "从今天到{d}的{h}还有几天，是星期几？",
           "今年{h}（{d}）是星期几，还要等多少天？", "{h}在{d}，帮我算还有几天，并告诉我是周几。", "离{d}{h}还有多久？那天是周末吗？"],
}


def holiday_countdown(rng: random.Random, lang: str, i: int) -> Draft:
    future = [(k, v) for k, v in holidays().items() if dt.date.fromisoformat(k) > TODAY]
    key, (hen, hzh) = rng.choice(future)
    day = dt.date.fromisoformat(key)
    days = (day - TODAY).days
    wd = day.weekday()
    calls = [ToolCall("get_calendar_info", {"date": key}), ToolCall("time_delta", {"start_date": str(TODAY),
                                                                                   "end_date": key})]
    if lang == "zh":
        q = _pick(rng, COUNTDOWN[lang], i).format(h=hzh, d=f"{day.month}月{day.day}日")
        return Draft(q, calls, [f"查询{key}是星期几", f"计算今天到{hzh}的天数"],
                     lambda obs: f"{hzh}（{key}）是{WEEKDAYS_ZH[wd]}，距今天还有{days}天。")
    q = _pick(rng, COUNTDOWN[lang], i).format(h=hen, d=f"{day.strftime('%B')} {day.day}")
    return Draft(q, calls, [f"Look up the weekday of {key}", f"Count the days from today to {hen}"],
                 lambda obs: f"{hen} ({key}) is a {WEEKDAYS_EN[wd]}, {days} days from today.")


# ---------------------------------------------------------------- encyclopedia
def _of(kind: str) -> list[Entity]:
    return [e for e in entities() if e["type"] == kind]


PERSON = {  # fact key -> patterns; the gold 'question' is the fact's short name
    "en": {"born": ["When was {p} born?", "In what year was {p} born?", "What is {p}'s birth year?"],
           "known_for": ["What is {p} known for?", "What is {p} famous for?", "Why is {p} remembered?"],
           "summary": ["Who is {p}?", "Tell me about {p}.", "Give me a one-line introduction to {p}."]},
    "zh": {"born": ["{p}是哪一年出生的？", "{p}的出生年份是？", "{p}生于哪一年？"],
           "known_for": ["{p}以什么闻名？", "{p}有什么主要成就？", "{p}最著名的贡献是什么？"],
           "summary": ["{p}是谁？", "介绍一下{p}。", "用一句话介绍{p}。"]},
}
QUESTION = {"born": ("birth year", "出生年份"), "known_for": ("known for", "主要成就"), "summary": ("introduction", "简介"),
            "location": ("location", "位置"), "built": ("when built", "建造时间"), "size": ("size", "规模"),
            "founded": ("founded year", "成立时间"), "founder": ("founder", "创始人"),
            "headquarters": ("headquarters", "总部")}


THE = frozenset({"greatwall", "forbiddencity", "bund", "terracotta", "potala", "orientalpearl", "yellowcrane",
                 "eiffel", "liberty", "operahouse", "goldengate", "brandenburg", "colosseum", "tajmahal", "pandabase"})


def display(ent: Entity, lang: str) -> str:
    """How a sentence names the entity: 'the Eiffel Tower' in English where the name takes an article."""
    if lang == "zh":
        return ent["zh"]
    return f"the {ent['en']}" if ent["id"] in THE else ent["en"]


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]


def _after_comma(sentence: str) -> str:
    first = sentence.split(" ", 1)[0]
    return sentence[0].lower() + sentence[1:] if first in ("The", "Construction") else sentence


def _fact_answer(ent: Entity, key: str, lang: str) -> str:
    zh = lang == "zh"
    name = display(ent, lang)
    if key == "summary":
        return f"{name}：{ent['summary']['zh']}" if zh else _sentence(f"{name}: {ent['summary']['en']}")
    value = fact(ent, key, zh)
    zh_forms = {"born": "{n}出生于{v}。", "known_for": "{n}以{v}闻名。", "location": "{n}位于{v}。",
                "built": "{n}的建造时间：{v}。", "size": "{n}的规模：{v}。", "founded": "{n}成立于{v}。",
                "founder": "{n}的创始人是{v}。", "headquarters": "{n}的总部位于{v}。"}
    en_forms = {"born": "{n} was born in {v}.", "known_for": "{n} is known for {v}.", "location": "{n} is in {v}.",
                "built": "construction of {n}: {v}.", "size": "{n} measures {v}.", "founded": "{n} was founded in {v}.",
                "founder": "{n} was founded by {v}.", "headquarters": "{n} is headquartered in {v}."}
    return _sentence((zh_forms if zh else en_forms)[key].format(n=name, v=value))


def _wiki_draft(rng: random.Random, lang: str, i: int, ents: list[Entity],
                table: dict[str, dict[str, list[str]]]) -> Draft:
    ent = rng.choice(ents)
    keys = [k for k in table[lang] if k == "summary" or fact(ent, k, False)]
    key = keys[i % len(keys)]
    pats = table[lang][key]
    name = ent["zh"] if lang == "zh" else ent["en"]
    question = QUESTION[key][1 if lang == "zh" else 0]
    call = ToolCall("wiki_search", {"entity": name, "question": question})
    thought = f"查询{name}的{question}" if lang == "zh" else f"Look up the {question} of {name}"
    summary = ent["summary"]["zh" if lang == "zh" else "en"]
    cites = (fact(ent, key, lang == "zh") or "",) if key != "summary" else (summary,)
    return Draft(pats[(i // len(keys)) % len(pats)].format(p=display(ent, lang)), [call], [thought],
                 lambda obs: _fact_answer(ent, key, lang), cites)


def wiki_person(rng: random.Random, lang: str, i: int) -> Draft:
    return _wiki_draft(rng, lang, i, _of("person"), PERSON)


LANDMARK = {
    "en": {"location": ["Where is {p}?", "Which city is {p} in?"],
           "built": ["When was {p} built?", "How old is {p}? When was it completed?"],
           "size": ["How big is {p}?", "How tall or long is {p}?"]},
    "zh": {"location": ["{p}在哪里？", "{p}位于哪个城市？"], "built": ["{p}是什么时候建成的？", "{p}建于哪一年？"],
           "size": ["{p}有多大？", "{p}有多高或多长？"]},
}
COMPANY = {
    "en": {"founded": ["When was {p} founded?", "In which year was {p} established?"],
           "founder": ["Who founded {p}?", "Who are the founders of {p}?"],
           "headquarters": ["Where is {p} headquartered?", "Which city is {p} based in?"]},
    "zh": {"founded": ["{p}是哪一年成立的？", "{p}创立于什么时候？"], "founder": ["{p}的创始人是谁？", "谁创办了{p}？"],
           "headquarters": ["{p}的总部在哪里？", "{p}总部位于哪个城市？"]},
}


def wiki_landmark(rng: random.Random, lang: str, i: int) -> Draft:
    return _wiki_draft(rng, lang, i, _of("landmark"), LANDMARK)


def wiki_company(rng: random.Random, lang: str, i: int) -> Draft:
    return _wiki_draft(rng, lang, i, _of("company"), COMPANY)


AGE = {
    "en": ["How many years ago was {p} born?", "{p} was born how long ago, counting to 2025?",
           "Work out how many years have passed since {p}'s birth.", "If {p} were alive in 2025, how old would they be?",
           "How long ago, in years, was {p} born?", "Count the years from {p}'s birth to 2025."],
    "zh": ["{p}出生距今多少年？", "到2025年，{p}诞辰多少周年？", "算一下{p}出生到现在过了多少年。",
           "如果{p}活到2025年，应该多少岁？", "{p}是多少年前出生的？", "从{p}出生到2025年有多少年？"],
    "en_alive": ["How old is {p} in 2025?", "What age does {p} turn in 2025?"],
    "zh_alive": ["{p}今年多少岁？", "{p}在2025年满多少岁？"],
}


def person_age(rng: random.Random, lang: str, i: int) -> Draft:
    people = [p for p in _of("person") if p["born_year"] > 0]
    ent = rng.choice(people)
    name = ent["zh"] if lang == "zh" else ent["en"]
    born = ent["born_year"]
    alive = ent["died_year"] is None and i % 3 == 0
    pats = AGE[f"{lang}_alive"] if alive else AGE[lang]
    expr = f"{TODAY.year} - {born}"
    years = TODAY.year - born
    calls = [ToolCall("wiki_search", {"entity": name, "question": QUESTION["born"][1 if lang == "zh" else 0]}),
             ToolCall("calculator", {"expression": expr})]
    if lang == "zh":
        tail = f"今年{years}岁。" if alive else f"距2025年已有{years}年。"
        return Draft(_pick(rng, pats, i).format(p=name), calls, [f"查询{name}的出生年份", "计算相隔的年数"],
                     lambda obs: f"{name}出生于{born}年，{tail}")
    tail = f"so {name} turns {years} in 2025." if alive else f"which is {years} years before 2025."
    return Draft(_pick(rng, pats, i).format(p=name), calls, [f"Look up the birth year of {name}",
                                                             "Compute the number of years"],
                 lambda obs: f"{name} was born in {born}, {tail}")


WIKI_WX = {
    "en": ["Which city is {p} in, and what's the weather there right now?",
           "I'm going to see {p} today. Where is it, and how's the weather?",
           "Find out where {p} is located and check the current weather in that city.",
           "What city hosts {p}? Tell me the weather there now too.",
           "Where is {p}, and is it raining there at the moment?",
           "Locate {p} and give me the current weather of its city."],
    "zh": ["{p}在哪个城市？那里现在天气怎么样？", "我今天想去{p}，它在哪儿？天气如何？", "查一下{p}位于哪里，再看看那个城市现在的天气。",
           "{p}所在的城市现在天气好吗？", "{p}在哪里？那边此刻下雨吗？", "帮我找到{p}所在城市，并告诉我当地实时天气。"],
}


def wiki_weather(rng: random.Random, lang: str, i: int) -> Draft:
    ents = [e for e in entities() if e["type"] in ("landmark", "company") and e.get("city_id")]
    ent = rng.choice(ents)
    rec = find_city(ent.get("city_id") or "")
    assert rec is not None, ent["id"]
    zh = lang == "zh"
    name, c = (ent["zh"], rec["zh"]) if zh else (ent["en"], rec["en"])
    key = "location" if ent["type"] == "landmark" else "headquarters"
    w = day_weather(rec, TODAY)
    t = fmt_num(w.current_temp, 1)
    calls = [ToolCall("wiki_search", {"entity": name, "question": QUESTION[key][1 if zh else 0]}),
             ToolCall("get_weather_info", {"location": c, "start_date": str(TODAY), "end_date": str(TODAY),
                                           "is_current": "yes"})]
    if zh:
        return Draft(_pick(rng, WIKI_WX[lang], i).format(p=display(ent, lang)), calls, [f"查询{name}所在的城市", f"获取{c}现在的天气"],
                     lambda obs: f"{name}位于{c}，那里现在{w.condition_in(True)}，气温{t}°C，湿度{w.humidity}%。",
                     (c, w.condition_in(True)))
    return Draft(_pick(rng, WIKI_WX[lang], i).format(p=display(ent, lang)), calls,
                 [f"Find the city of {name}", f"Get the current weather in {c}"],
                 lambda obs: f"{_sentence(display(ent, lang))} is in {c}; current weather there: "
                             f"{w.condition_in(False).lower()}, {t}°C, humidity {w.humidity}%.", (c, w.condition_in(False)))


# ---------------------------------------------------------------- web
SEARCH = {
    "en": ["Search the web for {t}.", "Find me a web page about {t}.", "Look up {t} online.",
           "What does the web say about {t}?", "Can you google {t} for me?", "I want to read about {t}. Search for it."],
    "zh": ["在网上搜一下{t}。", "帮我找一篇关于{t}的网页。", "上网查查{t}。", "网上关于{t}有什么信息？", "搜索{t}相关的内容。",
           "我想了解{t}，帮我搜索一下。"],
}


@lru_cache(maxsize=None)
def _search_topics(lang: str) -> list[tuple[str, Page]]:
    """(query text, the page it must find first) for topic pages and travel guides in that language."""
    out: list[tuple[str, Page]] = []
    for doc in load_world_file("topics.json")["docs"]:
        if doc["lang"] == lang:
            out.append((doc["title"].split("：")[0].split(":")[0], doc))
    for rec in cities():
        page = find_page(f"https://sandbox.labkit/{lang}/travel/{rec['id']}")
        if page is not None:
            out.append((f"{rec['zh']}旅游攻略" if lang == "zh" else f"{rec['en']} travel guide", page))
    return [(q, d) for q, d in out if search(q) and search(q)[0]["url"] == d["url"]]


def web_search(rng: random.Random, lang: str, i: int) -> Draft:
    topic, doc = rng.choice(_search_topics(lang))
    call = ToolCall("web_search", {"query": topic})
    if lang == "zh":
        return Draft(_pick(rng, SEARCH[lang], i).format(t=topic), [call], [f"搜索{topic}"],
                     lambda obs: f"最相关的网页是《{doc['title']}》（{doc['url']}）：{_first_line_snippet(obs[0])}")
    return Draft(_pick(rng, SEARCH[lang], i).format(t=topic), [call], [f"Search the web for {topic}"],
                 lambda obs: f"The top result is \"{doc['title']}\" ({doc['url']}): {_first_line_snippet(obs[0])}")


def _first_line_snippet(observation: str) -> str:
    return observation.splitlines()[0].split(" | ", 2)[2]


BROWSE = {
    "en": ["Search online for {p} and read the page to tell me {q}.",
           "Find a web page about {p}, open it, and report {q}.",
           "Look {p} up on the web and check {q}.",
           "Use web search to find {p}; browse the result to learn {q}.",
           "Search the internet for {p} and read from the page {q}.",
           "Open the top web result for {p} and tell me {q}."],
    "zh": ["上网搜索{p}，打开网页告诉我它的{q}。", "找一篇关于{p}的网页，读一读，告诉我{q}。", "在网上查{p}，看看页面上写的{q}。",
           "用搜索引擎找{p}，浏览结果，找出{q}。", "搜索{p}并阅读网页，它的{q}是什么？", "打开{p}的搜索结果，告诉我{q}。"],
}
BROWSE_Q = {"born": ("when they were born", "出生年份"), "known_for": ("what they are known for", "主要成就"),
            "built": ("when it was built", "建造时间"), "size": ("its size", "规模"), "location": ("its location", "位置"),
            "founded": ("when it was founded", "成立时间"), "founder": ("who its founder is", "创始人"),
            "headquarters": ("where its headquarters are", "总部地址")}
BROWSE_KEYS = {"person": ["born", "known_for"], "landmark": ["built", "size", "location"],
               "company": ["founded", "founder", "headquarters"]}


def search_browse(rng: random.Random, lang: str, i: int) -> Draft:
    zh = lang == "zh"
    ent = rng.choice([e for e in entities() if e["type"] in BROWSE_KEYS])
    name = ent["zh"] if zh else ent["en"]
    key = rng.choice([k for k in BROWSE_KEYS[ent["type"]] if fact(ent, k, zh)])
    url = f"https://sandbox.labkit/{lang}/{ent['type']}/{ent['id']}"
    hits = search(name)
    if not hits or hits[0]["url"] != url:
        raise _Skip(f"{name}: top search hit is not its page")
    label = BROWSE_Q[key][1 if zh else 0]
    calls = [ToolCall("web_search", {"query": name}), ToolCall("browse_website", {"url": url, "question": label})]
    thoughts = [f"搜索{name}", f"浏览网页查找{label}"] if zh else [f"Search the web for {name}",
                                                              f"Read the page to find the {label}"]
    q = _pick(rng, BROWSE[lang], i).format(p=display(ent, lang), q=label)
    return Draft(q, calls, thoughts, lambda obs: ("根据网页，" if zh else "According to the page, ")
                 + _after_comma(_fact_answer(ent, key, lang)), (fact(ent, key, zh) or "",))


# ---------------------------------------------------------------- travel
def _route(rng: random.Random) -> tuple[City, City]:
    a, b, _ = rng.choice(routes())
    src, dst = find_city(a), find_city(b)
    assert src and dst
    return (src, dst) if rng.random() < 0.5 else (dst, src)


TRIP = {
    "en": ["I'm going from {a} to {b} {when}. What trains or flights are there, and what's the weather in {b}?",
           "Plan my trip from {a} to {b} {when}: show the options and the weather at the destination.",
           "Which services run from {a} to {b} {when}, and will the weather in {b} be nice?",
           "Check how I can get from {a} to {b} {when} and the forecast for {b} that day.",
           "Travelling {a} to {b} {when}. Give me the earliest departure and {b}'s weather.",
           "What's the earliest way to reach {b} from {a} {when}, and how is the weather there?"],
    "zh": ["我{when}从{a}去{b}，有哪些车次或航班？{b}那天天气怎么样？", "帮我规划{when}从{a}到{b}的行程：交通方式和目的地天气。",
           "{when}从{a}到{b}有什么车？{b}天气好吗？", "查一下{when}{a}到{b}怎么走，以及{b}当天的天气预报。",
           "{when}{a}出发去{b}，最早的一班是几点？{b}天气如何？", "{when}想从{a}去{b}，最早能怎么走？那边天气怎样？"],
}
TRIP_DAYS = [("tomorrow", "明天", 1), ("the day after tomorrow", "后天", 2), ("next Monday", "下周一", 2),
             ("on March 20", "3月20日", 5), ("next Saturday", "下周六", 7), ("on March 24", "3月24日", 9),
             ("on March 27", "3月27日", 12)]


def trip_planning(rng: random.Random, lang: str, i: int) -> Draft:
    src, dst = _route(rng)
    en, zhw, off = rng.choice(TRIP_DAYS)
    day = _d(off)
    zh = lang == "zh"
    a, b, when = (src["zh"], dst["zh"], zhw) if zh else (src["en"], dst["en"], en)
    first = options(src, dst, day)[0]
    calls = [ToolCall("train_timetable", {"from_city": a, "to_city": b, "date": str(day)}),
             ToolCall("get_weather_info", {"location": b, "start_date": str(day), "end_date": str(day),
                                           "is_current": "no"})]
    q = _pick(rng, TRIP[lang], i).format(a=a, b=b, when=when)
    if zh:
        kind = "高铁" if first.kind == "train" else "航班"
        return Draft(q, calls, [f"查询{day}{a}到{b}的车次和航班", f"查询{b}{day}的天气"],
                     lambda obs: f"{day}最早的是{first.number}{kind}，{first.depart}出发、{first.arrive}到达，"
                                 f"票价{first.price_cny}元；{b}当天{_wx(dst, day, 'zh')}。")
    return Draft(q, calls, [f"Find trains and flights from {a} to {b} on {day}", f"Get the weather in {b} on {day}"],
                 lambda obs: f"The earliest option on {day} is {first.kind} {first.number}, leaving {first.depart} "
                             f"and arriving {first.arrive} for {first.price_cny} CNY; the forecast for {b} is "
                             f"{_wx(dst, day, 'en')}.")


BUDGET = {
    "en": ["What's the cheapest way from {a} to {b} {when}, and what would it cost for {n} people in {C}?",
           "Find the lowest fare from {a} to {b} {when}. How much is that for {n} of us, in {C}?",
           "{n} people travelling {a} to {b} {when}: cheapest total price converted to {C}?",
           "Price the cheapest trip {a} to {b} {when} for {n} travellers and convert the total to {C}.",
           "How much in {C} do {n} tickets on the cheapest service from {a} to {b} {when} cost?",
           "Our group of {n} goes from {a} to {b} {when}. Cheapest fare total, in {C} please."],
    "zh": ["{when}从{a}到{b}最便宜的方式是什么？{n}个人一共多少钱，折合多少{C}？", "找{when}{a}到{b}的最低票价，{n}个人总共多少，换成{C}是多少？",
           "{n}人{when}从{a}去{b}，按最便宜的票算总价，再换算成{C}。", "帮我算{when}{a}到{b}最便宜的票{n}张一共多少{C}。",
           "{when}{a}去{b}，{n}个人坐最便宜的班次，总价合多少{C}？", "我们{n}个人{when}从{a}去{b}，最低总票价是多少？用{C}表示。"],
}


def trip_budget(rng: random.Random, lang: str, i: int) -> Draft:
    src, dst = _route(rng)
    en, zhw, off = rng.choice(TRIP_DAYS)
    day = _d(off)
    zh = lang == "zh"
    cur = rng.choice([c for c in currencies() if c["code"] != "CNY"])
    n = rng.randint(2, 5)
    a, b, when, C = (src["zh"], dst["zh"], zhw, cur["zh"]) if zh else (src["en"], dst["en"], en, cur["code"])
    cheapest = min(options(src, dst, day), key=lambda o: (o.price_cny, o.depart))
    expr = f"{cheapest.price_cny} * {n}"
    total = cheapest.price_cny * n
    conv = f"{convert_currency(total, 'CNY', cur['code'])[0]:.2f}"
    calls = [ToolCall("train_timetable", {"from_city": a, "to_city": b, "date": str(day)}),
             ToolCall("calculator", {"expression": expr}),
             ToolCall("currency_convert", {"amount": total, "from_currency": "CNY", "to_currency": cur["code"]})]
    q = _pick(rng, BUDGET[lang], i).format(a=a, b=b, when=when, n=n, C=C)
    if zh:
        return Draft(q, calls, [f"查询{day}{a}到{b}的车次和票价", f"计算{n}人的总票价", f"将总价换算为{cur['zh']}"],
                     lambda obs: f"最便宜的是{cheapest.number}，每人{cheapest.price_cny}元，{n}人共{total}元，"
                                 f"约合{conv}{cur['zh']}。")
    return Draft(q, calls, [f"Find fares from {a} to {b} on {day}", f"Multiply the cheapest fare by {n}",
                            f"Convert the total to {cur['code']}"],
                 lambda obs: f"The cheapest is {cheapest.number} at {cheapest.price_cny} CNY each; for {n} people "
                             f"that is {total} CNY, about {conv} {cur['code']}.")


# ---------------------------------------------------------------- no tool needed
NO_TOOL = {
    "en": ["How do you say \"{en}\" in Chinese?", "Translate \"{en}\" into Chinese.", "What's the Chinese for \"{en}\"?",
           "Give me the Chinese translation of \"{en}\".", "In Mandarin, how would I say \"{en}\"?",
           "Please put \"{en}\" into Chinese."],
    "zh": ["“{zh}”用英语怎么说？", "把“{zh}”翻译成英文。", "“{zh}”的英文是什么？", "请给出“{zh}”的英文翻译。",
           "“{zh}”英语怎么表达？", "帮我把“{zh}”译成英语。"],
}


def no_tool(rng: random.Random, lang: str, i: int) -> Draft:
    pair = rng.choice(load_world_file("glossary.json")["pairs"])
    if lang == "zh":
        return Draft(_pick(rng, NO_TOOL[lang], i).format(zh=pair["zh"]), [], [],
                     lambda obs: f"“{pair['zh']}”的英文是“{pair['en']}”。")
    return Draft(_pick(rng, NO_TOOL[lang], i).format(en=pair["en"]), [], [],
                 lambda obs: f"\"{pair['en']}\" in Chinese is “{pair['zh']}”.")


CLUSTERS: dict[str, Maker] = {
    "weather_current": weather_current, "weather_forecast": weather_forecast, "currency": currency,
    "currency_calc": currency_calc, "unit": unit, "calc": calc, "calendar": calendar,
    "holiday_countdown": holiday_countdown, "wiki_person": wiki_person, "wiki_landmark": wiki_landmark,
    "wiki_company": wiki_company, "person_age": person_age, "wiki_weather": wiki_weather, "web_search": web_search,
    "search_browse": search_browse, "trip_planning": trip_planning, "trip_budget": trip_budget, "no_tool": no_tool,
}


class _Skip(Exception):
    """A draft that cannot be made with this random pick; the generator tries another."""


NUMBER = re.compile(r"\d+(?:\.\d+)?")


def ungrounded_numbers(answer: str, query: str, observations: list[str]) -> list[str]:
    """Numbers the answer cites that appear in neither the query nor any tool output (should be none)."""
    source = query + "\n" + "\n".join(observations)
    return [n for n in NUMBER.findall(answer) if n not in source]


def build_queries(seed: int = SEED, registry: ToolRegistry | None = None) -> list[Query]:
    """The whole agent query bank, deterministic for a seed; every gold call is executed and must succeed."""
    registry = registry or default_registry()
    out: list[Query] = []
    seen: set[str] = set()
    for cluster, maker in CLUSTERS.items():
        for lang in ("zh", "en"):
            rng = random.Random(f"{seed}|{cluster}|{lang}")
            want = NO_TOOL_PER_LANG if cluster == "no_tool" else PER_LANG
            made, tries = 0, 0
            while made < want:
                tries += 1
                if tries > want * 40:
                    raise RuntimeError(f"querygen: cannot make {want} distinct {cluster}/{lang} queries")
                try:
                    draft = maker(rng, lang, made)
                except _Skip:
                    continue
                if draft.query in seen:
                    continue
                obs = [registry.call(c) for c in draft.calls]
                bad = [o.text for o in obs if not o.ok]
                if bad:
                    raise RuntimeError(f"querygen: gold call failed for {draft.query!r}: {bad[0]}")
                texts = [o.text for o in obs]
                answer = draft.answer(texts)
                missing = ungrounded_numbers(answer, draft.query, texts)
                missing += [c for c in draft.cites if not any(c in t for t in texts)]
                if missing:
                    raise RuntimeError(f"querygen: answer cites {missing} not in tool outputs: {answer!r}")
                seen.add(draft.query)
                made += 1
                out.append({"id": f"{cluster}-{lang}-{made:03d}", "query": draft.query, "lang": lang,
                            "cluster": cluster,
                            "gold_calls": [c.to_dict() for c in draft.calls],
                            "thoughts": draft.thoughts, "reference_answer": answer})
    return out


def main(argv: list[str] | None = None) -> None:
    from labkit.build.general import build_general

    ap = argparse.ArgumentParser(description="Regenerate data/queries/*.jsonl from the sandbox world.")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--out", type=Path, default=data_dir() / "queries")
    args = ap.parse_args(argv)
    queries = build_queries(args.seed)
    n = write_jsonl(args.out / "agent_queries.jsonl", queries)
    m = write_jsonl(args.out / "general.jsonl", build_general(args.seed, target=GENERAL_TARGET))
    print(f"wrote {n} agent queries and {m} general samples to {args.out}")


if __name__ == "__main__":
    main()
