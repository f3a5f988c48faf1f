"""Format converters: fixtures with each format's published field names survive a round trip; exports validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.data.convert import FORMATS, convert_file, from_format, read_format, to_format
from labkit.data.export import read_training_set, to_hf_dataset, write_training_set
from labkit.data.mix import mix
from labkit.errors import DataFileError, UnknownNameError
from labkit.jsonl import read_jsonl

FIXTURES = Path(__file__).parent / "fixtures" / "formats"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_fixture_round_trip_is_exact(fmt: str) -> None:
    records = read_jsonl(FIXTURES / f"{fmt}.jsonl")
    samples = read_format(FIXTURES / f"{fmt}.jsonl", fmt)
    assert samples and all(s["messages"] for s in samples)
    back = to_format(samples, fmt)
    assert back == records


def test_fixture_meaning_is_kept() -> None:
    kai = read_format(FIXTURES / "kagentinstruct.jsonl", "kagentinstruct")
    assert [s["step"] for s in kai] == [0, 1, 0]
    assert kai[0]["messages"][1]["content"].startswith('{"task_name"') and kai[0]["tools"][0]["name"] == "web_search"
    assert kai[2]["messages"][0]["content"].endswith("\nQuestion: What is 15% of 240?")
    tb = read_format(FIXTURES / "toolbench.jsonl", "toolbench")[0]
    assert [m["role"] for m in tb["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert tb["messages"][3]["kind"] == "observation" and tb["messages"][3]["loss"] is False
    ai = read_format(FIXTURES / "agentinstruct.jsonl", "agentinstruct")[0]
    assert [m["loss"] for m in ai["messages"]] == [False, False, False, True, False, True]
    sg = read_format(FIXTURES / "sharegpt_fc.jsonl", "sharegpt_fc")[0]
    assert sg["messages"][0]["role"] == "system" and sg["messages"][2]["kind"] == "function_call"
    assert sg["tools"][0]["name"] == "currency_convert" and sg["id"] == "sharegpt_fc-1"


def _our_samples() -> list[dict]:
    return [{"id": f"q1::react::{i}", "source": "agent", "query_id": "q1", "template": "react", "step": i,
             "query": "北京天气？", "tools": [{"name": "get_weather_info"}],
             "messages": [{"role": "user", "content": f"prompt {i}", "loss": False},
                          {"role": "assistant", "content": f"output {i}", "loss": True}]} for i in range(3)]


@pytest.mark.parametrize("fmt", ["agentinstruct", "toolbench"])
def test_our_samples_survive_conversation_formats(fmt: str) -> None:
    samples = _our_samples()
    back = from_format(to_format(samples, fmt), fmt)
    assert [s["messages"] for s in back] == [s["messages"] for s in samples]
    assert [s["id"] for s in back] == [s["id"] for s in samples]


def test_our_steps_group_into_one_kagentinstruct_entry() -> None:
    entries = to_format(_our_samples(), "kagentinstruct")
    assert len(entries) == 1 and len(entries[0]["llm_prompt_response"]) == 3
    e = entries[0]
    assert set(e) == {"id", "query", "source", "functions", "function_names", "llm_prompt_response", "extra_infos"}
    assert json.loads(e["functions"][0])["name"] == "get_weather_info" and e["function_names"] == ["get_weather_info"]
    back = from_format(entries, "kagentinstruct")
    assert [s["messages"] for s in back] == [s["messages"] for s in _our_samples()]


def test_bad_inputs_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "tb.jsonl"
    bad.write_text(json.dumps({"id": "1", "conversations": []}) + "\n" + json.dumps({"id": "2"}) + "\n")
    with pytest.raises(DataFileError, match=r"tb.jsonl:2 \[field 'conversations'\]"):
        read_format(bad, "toolbench")
    bad.write_text(json.dumps({"id": "1", "conversations": [{"from": "robot", "value": "x"}]}) + "\n")
    with pytest.raises(DataFileError, match=r"tb.jsonl:1: .*unknown ToolBench role 'robot'"):
        read_format(bad, "toolbench")
    with pytest.raises(UnknownNameError, match="unknown data format 'alpaca'"):
        to_format([], "alpaca")


def test_export_jsonl_and_dataset(tmp_path: Path) -> None:
    general = [{"id": f"g{i}", "instruction": f"问题{i}", "output": f"回答{i}", "lang": "zh"} for i in range(5)]
    mixed, info = mix(_our_samples() * 5, general, ratio=5.0, seed=1)
    assert info == {"agent": 15, "general": 3, "general_wanted": 3, "ratio": 5.0, "actual_ratio": 5.0,
                    "turns": 1, "general_items": 3, "general_unique": 3, "general_repeats": 0}
    many, info = mix(_our_samples() * 10, general[:2], ratio=5.0)
    assert info["general"] == 6 and info["general_unique"] == 2 and info["general_repeats"] == 4
    assert len({s["id"] for s in many}) == len([s for s in many if s["source"] == "general"]) + 3
    _, info = mix(_our_samples() * 10, general[:2], ratio=5.0, allow_repeats=False)
    assert info["general"] == 2 and info["actual_ratio"] == 15.0
    path = tmp_path / "train.jsonl"
    assert write_training_set(mixed, path) == 18
    rows = read_training_set(path)
    assert sum(r["source"] == "general" for r in rows) == 3
    ds = to_hf_dataset(rows)
    assert len(ds) == 18 and ds[0]["messages"][-1]["loss"] is True
    assert convert_file(path, "samples", tmp_path / "ai.jsonl", "agentinstruct") == 18
    bad = dict(rows[0], messages=[{"role": "user", "content": "x", "loss": False}])
    with pytest.raises(DataFileError, match=r"line|messages"):
        write_training_set([bad], tmp_path / "bad.jsonl")
