"""The bundled query bank and general samples: shape, balance, and gold calls that really solve each query."""

from __future__ import annotations

import collections
import re
from pathlib import Path

import pytest

from labkit.build import querygen
from labkit.build.general import build_general
from labkit.jsonl import read_jsonl
from labkit.paths import data_dir
from labkit.tools import default_registry
from labkit.types import ToolCall


@pytest.fixture(scope="module")
def bank() -> list[dict]:
    return read_jsonl(data_dir() / "queries" / "agent_queries.jsonl")


@pytest.fixture(scope="module")
def general() -> list[dict]:
    return read_jsonl(data_dir() / "queries" / "general.jsonl")


def test_bank_shape_and_balance(bank):
    assert len(bank) >= 480
    ids = [q["id"] for q in bank]
    assert len(set(ids)) == len(ids)
    assert len({q["query"] for q in bank}) == len(bank)
    langs = collections.Counter(q["lang"] for q in bank)
    assert set(langs) == {"zh", "en"} and abs(langs["zh"] - langs["en"]) <= len(bank) * 0.1
    clusters = collections.Counter(q["cluster"] for q in bank)
    assert len(clusters) >= 12
    no_tool = [q for q in bank if not q["gold_calls"]]
    assert 0.03 <= len(no_tool) / len(bank) <= 0.08 and {q["cluster"] for q in no_tool} == {"no_tool"}
    names = default_registry().names()
    for q in bank:
        assert set(q) == {"id", "query", "lang", "cluster", "gold_calls", "thoughts", "reference_answer"}
        assert len(q["gold_calls"]) <= 3 and len(q["thoughts"]) == len(q["gold_calls"])
        assert all(c["name"] in names and c["name"] != "task_complete" for c in q["gold_calls"])
        assert q["reference_answer"].strip() and all(t.strip() for t in q["thoughts"])
        assert (re.search(r"[\u4e00-\u9fff]", q["query"]) is not None) == (q["lang"] == "zh")
    assert any(len(q["gold_calls"]) == 3 for q in bank) and any(len(q["gold_calls"]) == 2 for q in bank)


def test_enough_phrasings_per_cluster_and_language():
    tables = [querygen.WX_NOW, querygen.WX_FORECAST, querygen.CUR, querygen.CUR_CALC, querygen.UNIT, querygen.CALC,
              querygen.CAL, querygen.COUNTDOWN, querygen.AGE, querygen.WIKI_WX, querygen.SEARCH, querygen.BROWSE,
              querygen.TRIP, querygen.BUDGET, querygen.NO_TOOL]
    for table in tables:
        assert len(table["en"]) >= 6 and len(table["zh"]) >= 6
    for table in (querygen.PERSON, querygen.LANDMARK, querygen.COMPANY):
        for lang in ("en", "zh"):
            assert sum(len(p) for p in table[lang].values()) >= 6


def test_every_gold_call_reexecutes_and_grounds_the_answer(bank):
    reg = default_registry()
    for q in bank:
        texts = []
        for c in q["gold_calls"]:
            obs = reg.call(ToolCall(c["name"], c["args"]))
            assert obs.ok, (q["id"], obs.text)
            texts.append(obs.text)
        assert querygen.ungrounded_numbers(q["reference_answer"], q["query"], texts) == [], q["id"]


def test_generator_is_deterministic_and_matches_the_file(bank, general):
    again = querygen.build_queries()
    assert again == bank, "data/queries/agent_queries.jsonl is stale: run python -m labkit.build.querygen"
    assert build_general(querygen.SEED, target=querygen.GENERAL_TARGET) == general
    other = querygen.build_queries(seed=1)
    assert [q["query"] for q in other] != [q["query"] for q in bank]


def test_general_samples(general):
    assert len(general) >= 180
    assert len({g["id"] for g in general}) == len(general)
    assert len({g["instruction"] for g in general}) == len(general)
    langs = collections.Counter(g["lang"] for g in general)
    assert min(langs["zh"], langs["en"]) >= 60
    for g in general:
        assert set(g) == {"id", "instruction", "output", "lang"} and g["output"].strip()
    kinds = collections.Counter(g["id"].split("-")[1] for g in general)
    assert set(kinds) == {"translation", "definition", "summary", "list", "arithmetic"}
    arith = [g for g in general if "-arithmetic-" in g["id"] and g["lang"] == "en" and " × " in g["output"]]
    for g in arith:
        a, b, r = map(int, re.match(r"(\d+) × (\d+) = (\d+)", g["output"]).groups())
        assert a * b == r


def test_build_entry_points_regenerate_the_committed_files(tmp_path: Path) -> None:
    import subprocess
    import sys

    from labkit.build.worldgen import build_corpus
    from labkit.paths import REPO_ROOT

    assert build_corpus() == read_jsonl(REPO_ROOT / "data" / "world" / "corpus.jsonl"), \
        "data/world/corpus.jsonl is stale: run python -m labkit.build.worldgen"
    done = subprocess.run([sys.executable, "-m", "labkit.build.querygen", "--out", str(tmp_path)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("agent_queries.jsonl", "general.jsonl"):
        assert (tmp_path / name).read_bytes() == (REPO_ROOT / "data" / "queries" / name).read_bytes()
