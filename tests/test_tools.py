"""The sandbox tools: good calls, bad calls (never raising), safety and determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from record_shapes import shape_errors

from labkit.errors import UnknownNameError
from labkit.tools import TODAY, Tool, ToolRegistry, default_registry
from labkit.tools.registry import OpenAIFunction, OpenAITool, ToolSpec
from labkit.tools.search import search, tokens
from labkit.types import Observation, ToolCall

REQUIRED_NAMES = {"web_search", "browse_website", "wiki_search", "get_weather_info", "get_calendar_info", "time_delta",
                  "calculator", "currency_convert", "unit_convert", "train_timetable", "task_complete"}


@pytest.fixture(scope="module")
def reg() -> ToolRegistry:
    return default_registry()


def call(reg: ToolRegistry, name: str, **args) -> Observation:
    return reg.call(ToolCall(name, args))


def test_registry_names_specs_and_short_descriptions(reg):
    assert set(reg.names()) == REQUIRED_NAMES and len(reg) >= 10 and "calculator" in reg
    for tool in reg:
        spec = tool.spec()
        assert set(spec) == {"name", "description", "parameters", "returns", "required"} == ToolSpec.__required_keys__
        assert spec["parameters"]["type"] == "object"
        assert set(spec["required"]) <= set(spec["parameters"]["properties"])
        assert all(set(p) == {"type", "description"} for p in spec["parameters"]["properties"].values())
        assert len(tool.description.split()) <= 20
        assert all(len(p["description"].split()) <= 10 for p in tool.parameters["properties"].values())
        oa = tool.openai_schema()
        assert oa["type"] == "function" and oa["function"]["name"] == tool.name
        assert set(oa) == OpenAITool.__required_keys__ and set(oa["function"]) == OpenAIFunction.__required_keys__
    assert reg.subset(["calculator", "web_search"]).names() == ["calculator", "web_search"]
    with pytest.raises(UnknownNameError, match="unknown tool 'nope'"):
        reg.get("nope")


def test_registry_never_raises(reg):
    bad = [ToolCall("no_such_tool", {}), ToolCall("calculator", {}), ToolCall("calculator", {"expression": ["1"]}),
           ToolCall("currency_convert", {"amount": "lots", "from_currency": "USD", "to_currency": "CNY"}),
           ToolCall("get_weather_info", {"location": "Beijing", "start_date": "2025-03-15", "end_date": "2025-03-15",
                                         "colour": "red"}),
           ToolCall("calculator", "1+1")]  # type: ignore[arg-type]
    for c in bad:
        obs = reg.call(c)
        assert not obs.ok and obs.text.startswith("Error:") and obs.error
    assert "available tools" in reg.call(bad[0]).text
    assert "missing required argument 'expression'" in reg.call(bad[1]).text
    assert "'amount' must be of type number" in reg.call(bad[3]).text
    assert "colour" in reg.call(bad[4]).text


def test_tool_exception_becomes_observation():
    def boom(x: str) -> str:
        raise RuntimeError("kaput")

    reg = ToolRegistry([Tool("boom", "Always fails.", {"type": "object", "properties": {"x": {"type": "string"}}},
                             "nothing", boom, ["x"])])
    obs = reg.call(ToolCall("boom", {"x": "1"}))
    assert not obs.ok and "boom failed: RuntimeError: kaput" in obs.text


def test_number_strings_are_coerced(reg):
    obs = call(reg, "currency_convert", amount="100", from_currency="美元", to_currency="cny")
    assert obs.ok and obs.text.startswith("100 USD = 724.00 CNY")
    assert call(reg, "unit_convert", value="10", from_unit="公里", to_unit="英里").text == "10 km = 6.2137 mile"


@pytest.mark.parametrize("expr,value", [("(3+4)*2^3", "56"), ("sqrt(16) + 2 ** 10", "1028"), ("10 / 4", "2.5"),
                                        ("17 % 5", "2"), ("-3 × 4 ÷ 2", "-6"), ("max(3, 9) - pi", "5.8584")])
def test_calculator_good(reg, expr, value):
    obs = call(reg, "calculator", expression=expr)
    assert obs.ok and obs.text == f"{expr} = {value}"


@pytest.mark.parametrize("expr", ["__import__('os')", "os.system('ls')", "().__class__", "open('x')", "a + 1",
                                  "9 ** 9 ** 9", "1 / 0", "lambda: 1", "[1, 2]", "'a' * 3", "sqrt(-1)", ""])
def test_calculator_rejects_unsafe_or_invalid(reg, expr):
    obs = call(reg, "calculator", expression=expr)
    assert not obs.ok and obs.text.startswith("Error: calculator")


HUGE = ["round(1, -10**8)", "round(1, 10**8)", "round(10**300, -10**6)", "round(1.5, -10**9)",
        "(10**100)**1000*(10**100)**1000", "9**999*9**999*9**999", "factorial(170)**2",
        "factorial(170)*factorial(170)*factorial(170)*factorial(170)", "(2**1000)**3", "1e308*10-1e308*10",
        "10**100**2", "round(2**3000, -3000)"]


def test_calculator_refuses_huge_work_quickly_with_a_failed_observation():
    """Huge exponents, ndigits and factorial-like growth are refused before they are computed. The calls run in a
    child process so that a protection that is missing fails the test instead of hanging it."""
    import json
    import subprocess
    import sys

    code = ("import json, sys, time\nfrom labkit.tools import default_registry\nfrom labkit.types import ToolCall\n"
            "reg = default_registry()\nout = []\nfor e in json.loads(sys.argv[1]):\n"
            "    t = time.perf_counter(); obs = reg.call(ToolCall('calculator', {'expression': e}))\n"
            "    out.append([e, obs.ok, obs.text, time.perf_counter() - t])\nprint(json.dumps(out))")
    try:
        done = subprocess.run([sys.executable, "-c", code, json.dumps(HUGE)], capture_output=True, text=True,
                              timeout=30, check=True, cwd=Path(__file__).resolve().parents[1])
    except subprocess.TimeoutExpired:
        pytest.fail("the calculator ran for more than 30 s on one of " + ", ".join(HUGE))
    for expr, ok, text, seconds in json.loads(done.stdout):
        assert not ok and text.startswith("Error: calculator") and seconds < 0.5, (expr, text, seconds)
    assert call(default_registry(), "calculator", expression="round(1234.5678, 2)").text == "round(1234.5678, 2) = 1234.57"


def test_weather_is_deterministic_bilingual_and_bounded(reg):
    args = {"location": "Beijing", "start_date": "2025-03-16", "end_date": "2025-03-18", "is_current": "no"}
    a, b = reg.call(ToolCall("get_weather_info", args)), reg.call(ToolCall("get_weather_info", dict(args)))
    assert a.ok and a.text == b.text and len(a.text.splitlines()) == 3
    zh = call(reg, "get_weather_info", location="北京", start_date="2025-03-16", end_date="2025-03-16",
              is_current="no")
    assert zh.text.startswith("北京 2025-03-16：") and a.text.splitlines()[0].split("°C")[0].split(", ")[-1] in zh.text
    two = call(reg, "get_weather_info", location="上海,Tokyo", start_date=str(TODAY), end_date=str(TODAY),
               is_current=True)
    assert two.ok and "当前（2025-03-15 10:00）" in two.text and len(two.text.splitlines()) == 2
    assert "unknown city 'Atlantis'" in call(reg, "get_weather_info", location="Atlantis", start_date="2025-03-16",
                                             end_date="2025-03-16").text
    far = call(reg, "get_weather_info", location="Paris", start_date="2026-01-01", end_date="2026-01-02")
    assert not far.ok and "only available" in far.text
    assert "'yyyy-MM-dd'" in call(reg, "get_weather_info", location="Paris", start_date="16/03/2025",
                                  end_date="2025-03-16").text


def test_calendar_and_time_delta(reg):
    today = call(reg, "get_calendar_info", date="2025-03-15").text
    assert "Saturday" in today and "weekend" in today
    mid = call(reg, "get_calendar_info", date="2025-10-06").text
    assert "Monday" in mid and "Mid-Autumn Festival" in mid and "中秋节" in mid
    assert "Spring Equinox" in call(reg, "get_calendar_info", date="2025-03-20").text
    assert "200 days" in call(reg, "time_delta", start_date="2025-03-15", end_date="2025-10-01").text
    assert "-14 days" in call(reg, "time_delta", start_date="2025-03-15", end_date="2025-03-01").text
    assert not call(reg, "get_calendar_info", date="tomorrow").ok


def test_currency_and_units(reg):
    assert "1 EUR = " in call(reg, "currency_convert", amount=1, from_currency="EUR", to_currency="JPY").text
    assert not call(reg, "currency_convert", amount=1, from_currency="XYZ", to_currency="USD").ok
    assert call(reg, "unit_convert", value=100, from_unit="°C", to_unit="°F").text == "100 °C = 212 °F"
    assert call(reg, "unit_convert", value=36, from_unit="km/h", to_unit="m/s").text == "36 km/h = 10 m/s"
    assert call(reg, "unit_convert", value=2, from_unit="斤", to_unit="kg").text == "2 jin = 1 kg"
    mixed = call(reg, "unit_convert", value=1, from_unit="kg", to_unit="km")
    assert not mixed.ok and "cannot convert mass" in mixed.text


def test_search_browse_and_wiki(reg):
    assert tokens("北京烤鸭 Peking Duck") == ["北京", "京烤", "烤鸭", "peking", "duck"]
    hits = call(reg, "web_search", query="Eiffel Tower").text.splitlines()
    assert len(hits) == 3 and hits[0].startswith("Eiffel Tower: visitor guide | https://sandbox.labkit/en/landmark/eiffel")
    assert search("大熊猫 竹子")[0]["url"].endswith("giant-panda-zh")
    page = call(reg, "browse_website", url="https://sandbox.labkit/en/topic/react-agents", question="who proposed it")
    assert page.ok and "Princeton" in page.text
    assert not call(reg, "browse_website", url="https://example.com/x").ok
    ein = call(reg, "wiki_search", entity="爱因斯坦", question="哪年出生")
    assert ein.ok and ein.text.startswith("阿尔伯特·爱因斯坦（Albert Einstein）") and "出生：1879年" in ein.text
    assert "Founder: Ma Huateng" in call(reg, "wiki_search", entity="tencent", question="who founded it").text
    assert "Country: China" in call(reg, "wiki_search", entity="Peking").text
    miss = call(reg, "wiki_search", entity="Einstien")
    assert not miss.ok and "Albert Einstein" in miss.text


def test_timetable(reg):
    a = call(reg, "train_timetable", from_city="上海", to_city="北京", date="2025-03-20")
    b = call(reg, "train_timetable", from_city="Shanghai", to_city="Beijing", date="2025-03-20")
    assert a.ok and b.ok and a.text.startswith("上海 → 北京") and "CNY" in b.text
    assert [line.split()[0] for line in a.text.splitlines()[1:]] == [line.split()[0] for line in b.text.splitlines()[1:]]
    none = call(reg, "train_timetable", from_city="Beijing", to_city="Sydney", date="2025-03-20")
    assert not none.ok and "no direct service" in none.text
    assert not call(reg, "train_timetable", from_city="Beijing", to_city="Shanghai", date="2024-01-01").ok
    assert call(reg, "task_complete").text == "Task complete."


def test_world_size_and_every_name_resolves(reg):
    from labkit.tools.search import corpus
    from labkit.tools.travel import routes
    from labkit.tools.wiki import entities
    from labkit.tools.world import cities, load_world_file, world_dir

    assert len(corpus()) >= 150 and {d["lang"] for d in corpus()} == {"zh", "en"}
    assert len(entities()) >= 60 and len(cities()) >= 30 and len(routes()) >= 20
    assert len(load_world_file("rates.json")["currencies"]) >= 10
    assert sum(p.stat().st_size for p in world_dir().iterdir()) < 2_000_000
    for ent in entities():
        for name in (ent["en"], ent["zh"], *ent["aliases"]):
            assert call(reg, "wiki_search", entity=name).text.startswith((ent["en"], ent["zh"])), name
    for c in cities():
        for name in (c["en"], c["zh"]):
            assert call(reg, "get_weather_info", location=name, start_date="2025-03-16", end_date="2025-03-16").ok


def test_world_files_are_the_typed_records():
    """Each world record type names exactly the keys its file has, so the types are the files' true shape."""
    from labkit.tools.convert import currencies
    from labkit.tools.search import corpus
    from labkit.tools.wiki import entities
    from labkit.tools.world import Bilingual, City, Climate, Currency, Entity, Fact, Page, cities, load_world_file

    bad = []
    for c in cities():
        bad += shape_errors(c, City, c["id"]) + shape_errors(c["climate"], Climate, f"{c['id']}.climate")
        for key in ("country", "food", "best_season", "known_for"):
            bad += shape_errors(c[key], Bilingual, f"{c['id']}.{key}")
    for e in entities():
        bad += shape_errors(e, Entity, e["id"]) + shape_errors(e["summary"], Bilingual, f"{e['id']}.summary")
        bad += [err for f in e["facts"] for err in shape_errors(f, Fact, f"{e['id']}.facts")]
    bad += [err for cur in currencies() for err in shape_errors(cur, Currency, cur["code"])]
    bad += [err for page in corpus() for err in shape_errors(page, Page, page["url"])]
    bad += [err for doc in load_world_file("topics.json")["docs"] for err in shape_errors(doc, Page, doc["url"])]
    bad += [err for pair in load_world_file("glossary.json")["pairs"] for err in shape_errors(pair, Bilingual, "pair")]
    assert not bad, bad[:5]


def test_corpus_page_without_lang_names_file_line_and_field(tmp_path, monkeypatch):
    from labkit.errors import DataFileError
    from labkit.tools.search import corpus
    from labkit.tools.world import world_dir

    (tmp_path / "world").mkdir()
    pages = [json.loads(line) for line in (world_dir() / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:3]]
    del pages[1]["lang"]
    (tmp_path / "world" / "corpus.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pages), encoding="utf-8")
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path))
    corpus.cache_clear()
    try:
        with pytest.raises(DataFileError, match=r"corpus\.jsonl:2 \[field 'lang'\]: missing field"):
            corpus()
    finally:
        corpus.cache_clear()


@pytest.mark.parametrize("name", [["web_search"], {"n": 1}, None, 3])
def test_a_tool_name_that_is_not_a_string_is_a_clear_observation(reg, name):
    obs = reg.call(ToolCall(name, {"query": "x"}))  # type: ignore[arg-type]
    assert not obs.ok and obs.error == "unknown_tool" and "tool name must be a string" in obs.text


def test_what_goes_back_into_a_prompt_is_capped_and_marked(reg):
    from labkit.tools.registry import MAX_ECHO_CHARS, MAX_OBSERVATION_CHARS

    huge = "zzqxw " * 1_600  # no result: the sandbox search echoes the query (arguments stay under MAX_ARG_CHARS)
    for obs in (call(reg, "web_search", query=huge), reg.call(ToolCall("x" * 100_000, {})),
                call(reg, "currency_convert", amount=100, from_currency=huge, to_currency="CNY"),
                call(reg, "get_weather_info", location=["a" * 100_000], start_date="2025-03-15")):
        assert len(obs.text) <= MAX_OBSERVATION_CHARS + 40, len(obs.text)
    assert "…[truncated " in call(reg, "web_search", query=huge).text
    echoed = reg.call(ToolCall("x" * 100_000, {})).text
    assert len(echoed) < MAX_ECHO_CHARS + 400 and "truncated" in echoed
    assert call(reg, "calculator", expression="2+3").text == "2+3 = 5"  # normal answers are untouched


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), "NaN", "inf", "1e999"])
def test_non_finite_numbers_are_rejected_not_turned_into_nan_text(reg, value):
    obs = call(reg, "currency_convert", amount=value, from_currency="USD", to_currency="CNY")
    assert not obs.ok and obs.error == "invalid_args" and "amount" in obs.text and "nan" not in obs.text.lower()[:6]
    assert "nan USD" not in obs.text and "inf km" not in obs.text
    nested = call(reg, "web_search", query=float("nan"))
    assert not nested.ok and "finite" in nested.text


def test_hostile_arguments_are_a_failed_call_not_an_exception(reg):  # issue 20, finding 5
    deep: dict = {}
    node = deep
    for _ in range(100_000):
        node["a"] = {}
        node = node["a"]
    wide = [[[[[[[[[["x"]]]]]]]]]]
    for args in ({"query": deep}, deep, {"query": wide}, {"query": "a" * 5_000_000}, {"query": 10 ** 5000}):
        obs = reg.call(ToolCall("web_search", args))
        assert not obs.ok and obs.error == "invalid_args" and len(obs.text) < 300, obs.text[:300]
    assert call(reg, "web_search", query="北京 天气").ok  # ordinary arguments are untouched
