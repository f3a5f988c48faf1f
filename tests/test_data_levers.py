"""The data levers of issue 19, each switched on and off on smoke-size data: Meta-Agent Tuning (the Meta-Agent's
kept templates labelled too, hand-written jobs reused, same templates per query), held-out output formats (never in
the training data, reported as their own group), step-position balance (continuation steps after a tool call
copied until tool calls : finishes reaches the setting), and the settings reader that guards them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from labkit.data.balance import balance_steps, step_action, step_action_table
from labkit.data.export import read_training_set
from labkit.errors import DataFileError
from labkit.records import TraceStep

from test_data_label import data_dir  # noqa: F401  (fixture)

HELD_OUT = ["declared:yaml", "declared:xml", "declared:kv"]


@pytest.fixture(scope="module")
def kept_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke Meta-Agent run's kept templates (offline, seconds): some in held-out families, some not."""
    from labkit.meta.pipeline import run_meta_agent

    result = run_meta_agent("smoke", tmp_path_factory.mktemp("meta") / "meta")
    families = Counter(t.format.family for t in result.kept)
    assert sum(families[f] for f in HELD_OUT) and sum(n for f, n in families.items() if f not in HELD_OUT)
    return result.templates_dir


def test_meta_share_takes_slots_and_keeps_every_other_job() -> None:
    from labkit.data.label import plan_jobs

    queries = [{"id": f"q{i}", "query": f"q{i}", "gold_calls": [{"name": "calculator", "args": {}}]}
               for i in range(40)]
    hand = ["kagent_planning_zh", "react", "autogpt", "toolllama"]
    meta = ["modelscope", "meta_terse_en", "meta_markdown_zh"]  # stand-ins: any planning templates
    base = plan_jobs(queries, hand, templates_per_query=3)
    mixed = plan_jobs(queries, hand, templates_per_query=3, meta_templates=meta, meta_share=0.5)
    per_query = Counter(j.query["id"] for j in mixed)
    assert set(per_query.values()) == {3}  # an epoch costs what it cost before
    meta_jobs = [j for j in mixed if j.template in meta]
    assert len(meta_jobs) == 60 and not {j.job_id for j in mixed if j.template not in meta} - {j.job_id for j in base}
    assert set(Counter(j.template for j in meta_jobs).values()) == {20}  # rotated evenly
    kept = {j.job_id: j for j in base}
    assert all(kept[j.job_id] == j for j in mixed if j.template not in meta)  # same tools, same conclusion
    assert plan_jobs(queries, hand, templates_per_query=3, meta_templates=meta, meta_share=0.0) == base


def test_meta_agent_tuning_build_and_held_out_formats(data_dir: Path, tmp_path: Path,  # noqa: F811
                                                      kept_dir: Path) -> None:
    from labkit.data.pipeline import build_dataset

    kw = {"teacher": "sandbox", "test_fraction": 0.3, "workers": 2, "progress": False}
    out = tmp_path / "data"
    off = build_dataset("smoke", out, **kw)
    on = build_dataset("smoke", out, template_dirs=[kept_dir], **kw)
    stats, groups = on.stats, on.stats["template_groups"]
    families = {p.stem: p for p in kept_dir.glob("*.yaml")}
    assert groups["meta"] and groups["held-out format"] and set(groups["meta"] + groups["held-out format"]) <= set(
        families)
    # the hand-written jobs of the earlier build are reused, the Meta-Agent's slots are new
    assert stats["labelling"]["skipped"] == stats["labelling"]["jobs"] - stats["meta_templates"]["jobs"] > 0
    assert stats["labelling"]["new"] == stats["meta_templates"]["jobs"] > 0
    assert stats["labelling"]["jobs"] == off.stats["labelling"]["jobs"]  # same templates per query
    train = read_training_set(out / "train.jsonl")
    trained = {s["template"] for s in train if s["source"] == "agent"}
    assert trained & set(groups["meta"])
    # no training sample is written in a held-out output-format family
    from labkit.templates import load_template

    assert not {load_template(t).format.family for t in trained} & set(HELD_OUT)
    assert not trained & set(groups["held-out format"] + groups["unseen"])
    assert stats["held_out_format_check"]["ok"] and json.loads((out / "leakage_report.json").read_text())["ok"]
    assert set(groups["held-out format"]) <= set(stats["test_templates"])
    # control: without the setting those templates would have been trained on
    free = build_dataset("smoke", tmp_path / "free", template_dirs=[kept_dir],
                         overrides={"held_out_formats": []}, **kw)
    free_trained = {s["template"] for s in read_training_set(tmp_path / "free" / "train.jsonl")}
    assert free_trained & set(groups["held-out format"]) and not free.stats["template_groups"]["held-out format"]
    # share 0: hand-written data only, but the held-out format group is still recorded for the evaluation
    zero = build_dataset("smoke", out, template_dirs=[kept_dir], overrides={"meta_templates": 0}, **kw)
    assert zero.stats["labelling"]["new"] == 0 and not zero.stats["template_groups"]["meta"]
    assert sorted(s["id"] for s in read_training_set(out / "train.jsonl")) == sorted(off.samples["id"])
    assert zero.stats["template_groups"]["held-out format"] == groups["held-out format"]


def test_held_out_format_check_reads_the_samples(kept_dir: Path) -> None:
    from labkit.data.split import held_out_format_check
    from labkit.templates import templates_in

    yaml_t = next(t for t in templates_in(kept_dir) if t.format.family in HELD_OUT)
    samples = [{"source": "agent", "template": "react"}, {"source": "agent", "template": yaml_t.name}]
    bad = held_out_format_check(samples, HELD_OUT)
    assert not bad["ok"] and bad["templates_in_held_out_families"] == [yaml_t.name]
    assert held_out_format_check(samples[:1], HELD_OUT)["ok"]


def _samples(step: int, action: str, n: int, prefix: str) -> list[dict]:
    return [{"id": f"{prefix}{step}-{i}", "source": "agent", "step": step, "action": action, "meta": {}}
            for i in range(n)]


def test_step_balance_copies_continuations_up_to_the_ratio() -> None:
    data = (_samples(0, "call", 10, "a") + _samples(1, "call", 4, "b") + _samples(1, "finish", 10, "c")
            + _samples(2, "call", 1, "d") + _samples(2, "finish", 6, "e") + _samples(3, "conclusion", 3, "f")
            + [{"id": "g", "source": "general", "step": 0}])
    same, info = balance_steps(data, None)
    assert same == data and info["added"] == 0 and info["before"] == info["after"]
    out, info = balance_steps(data, 1.0, seed=3)
    after = step_action_table(out)
    assert after.loc[0, "call"] == 10  # before any tool call: untouched
    assert after.loc[1, "call"] == 10 and after.loc[1, "finish"] == 10  # 4 + 6 copies
    assert after.loc[2, "call"] == 3 and info["by_step"]["2"]["capped"]  # at most 3 copies of one sample
    assert info["added"] == 8 and len({s["id"] for s in out}) == len(out)
    copies = Counter(s["id"].split("#")[0] for s in out if "#bal" in s["id"] and s["step"] == 1)
    assert sorted(copies.values()) == [1, 1, 2, 2]  # every sample once before any twice
    assert balance_steps(data, 1.0, seed=3)[0] == out and balance_steps(data, 1.0, seed=4)[0] != out
    half, _ = balance_steps(data, 0.5)
    assert step_action_table(half).loc[1, "call"] == 5


def test_step_balance_setting_reaches_the_data(data_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    from labkit.data.pipeline import build_dataset

    kw = {"teacher": "sandbox", "test_fraction": 0.3, "workers": 2, "progress": False}
    res = build_dataset("smoke", tmp_path / "d", overrides={"step_balance": 1.0}, **kw)
    before, after = res.stats["step_actions"]["before"], res.stats["step_actions"]["after"]
    assert res.stats["step_balance"]["added"] > 0 and after["1"]["call"] > before["1"]["call"]
    train = read_training_set(tmp_path / "d" / "train.jsonl")
    assert sum("#bal" in s["id"] for s in train) == res.stats["samples"]["step_balance_copies"]
    table = step_action_table(train)  # stats.json's table is what the file holds
    assert {str(k): {a: int(v) for a, v in row.items()} for k, row in table.iterrows()} == after


def test_general_turns_make_conversations_of_general_records() -> None:
    from labkit.data.mix import mix

    agent = [{"id": f"a{i}", "source": "agent", "step": 0, "messages": []} for i in range(30)]
    general = [{"id": f"g{i}", "instruction": f"q{i}", "output": f"r{i}", "lang": "en"} for i in range(5)]
    one, info1 = mix(agent, general, ratio=5.0, seed=2)
    mixed, info = mix(agent, general, ratio=5.0, seed=2, turns=3)
    assert (info1["general"], info1["turns"], info1["general_items"], info1["general_repeats"]) == (6, 1, 6, 1)
    assert (info["general"], info["turns"], info["general_items"], info["general_repeats"]) == (6, 3, 18, 13)
    convs = [s for s in mixed if s["source"] == "general"]
    assert len(convs) == 6 and len({s["id"] for s in mixed}) == len(mixed)
    for conv in convs:
        msgs = conv["messages"]
        assert [m["role"] for m in msgs] == ["user", "assistant"] * 3
        assert [m["loss"] for m in msgs] == [False, True] * 3  # every answer is supervised
        assert all(m["content"] == "r" + u["content"][1:] for u, m in zip(msgs[::2], msgs[1::2]))
    used = Counter(m["content"] for s in convs for m in s["messages"][::2])
    assert sorted(used.values()) == [3, 3, 4, 4, 4]  # the pool taken in turn: every record before any again
    # the agent samples and their order do not depend on the turns
    assert [s["id"] for s in mixed if s["source"] == "agent"] == [s["id"] for s in one if s["source"] == "agent"]
    for bad in (0, 17):
        with pytest.raises(ValueError, match="turns"):
            mix(agent, general, turns=bad)


def test_general_turns_setting_reaches_the_data(data_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    from labkit.data.pipeline import build_dataset

    kw = {"teacher": "sandbox", "test_fraction": 0.3, "workers": 2, "progress": False}
    res = build_dataset("smoke", tmp_path / "d", overrides={"general_turns": 3}, **kw)
    mix_info = res.stats["samples"]["mix"]
    assert res.stats["levers"]["general_turns"] == 3 and mix_info["turns"] == 3
    train = read_training_set(tmp_path / "d" / "train.jsonl")
    general = [s for s in train if s["source"] == "general"]
    assert len(general) == mix_info["general"] > 0 and mix_info["general_items"] == 3 * len(general)
    assert all(sum(m.get("loss", False) for m in s["messages"]) == 3 for s in general)


def test_step_action_reads_edited_steps_again() -> None:
    from labkit.templates import load_template

    fmt = load_template("react").format
    step = TraceStep.from_dict({"prompt": "p", "output": "Thought: done\nFinal Answer: 42", "kind": "planning",
                                "parsed": {"ok": True, "thought": "t", "call": {"name": "calculator", "args": {}},
                                           "final_answer": None, "give_up": False, "repaired": []}})
    assert step_action(step) == "call"  # what the teacher did (the trace's parse)
    assert step_action(step, fmt) == "finish"  # what the edited output does


@pytest.mark.parametrize(("key", "value", "field"), [
    ("meta_templates", 1.5, "data.meta_templates"), ("meta_templates", True, "data.meta_templates"),
    ("held_out_formats", ["declared:toml"], "data.held_out_formats"),
    ("held_out_formats", ["builtin:conclusion"], "data.held_out_formats"),
    ("step_balance", 0, "data.step_balance"), ("steps_balance", 1.0, "data.steps_balance"),
    ("general_turns", 0, "data.general_turns"), ("general_turns", 17, "data.general_turns"),
    ("general_turns", 2.5, "data.general_turns"), ("general_turns", "4", "data.general_turns")])
def test_lever_settings_are_checked(key: str, value: object, field: str, tmp_path: Path) -> None:
    import yaml

    from labkit.data.pipeline import data_settings

    base = yaml.safe_load(Path("configs/smoke.yaml").read_text(encoding="utf-8"))
    with pytest.raises(DataFileError, match=field.replace(".", r"\.")):
        data_settings("smoke", {key: value})
    path = tmp_path / "mode.yaml"
    path.write_text(yaml.safe_dump({"data": {**base["data"], key: value}}), encoding="utf-8")
    with pytest.raises(DataFileError, match=field.replace(".", r"\.")) as err:
        data_settings(str(path))
    assert str(path) in str(err.value)


def test_levers_default_to_off_when_absent(tmp_path: Path) -> None:
    import yaml

    from labkit.data.pipeline import LEVER_DEFAULTS, data_settings

    base = yaml.safe_load(Path("configs/smoke.yaml").read_text(encoding="utf-8"))["data"]
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({"data": {k: v for k, v in base.items() if k not in LEVER_DEFAULTS}}))
    assert data_settings(str(path)).levers() == LEVER_DEFAULTS


def test_data_cli_builds_with_overrides_and_prints_the_lever_table(data_dir: Path, tmp_path: Path,  # noqa: F811
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from labkit.data.__main__ import main

    assert main(["--mode", "smoke", "--out", str(tmp_path / "d"), "--set", "step_balance"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["--mode", "smoke", "--out", str(tmp_path / "d"), "--set", "step_balance=-1"]) == 2
    assert "data.step_balance" in capsys.readouterr().err and not (tmp_path / "d" / "train.jsonl").exists()
    assert main(["--mode", "smoke", "--out", str(tmp_path / "d"), "--teacher", "sandbox",
                 "--set", "step_balance=1.0"]) == 0
    out = capsys.readouterr().out
    stats = json.loads((tmp_path / "d" / "stats.json").read_text())
    assert stats["levers"]["step_balance"] == 1.0 and "step index x action (after step balance):" in out
    assert f"{stats['samples']['step_balance_copies']} step-balance copies" in out


def test_templates_in_refuses_a_name_that_loads_another_file(tmp_path: Path) -> None:
    from labkit.paths import REPO_ROOT
    from labkit.templates import templates_in

    text = (REPO_ROOT / "data" / "templates" / "react.yaml").read_text(encoding="utf-8")
    (tmp_path / "react.yaml").write_text(text, encoding="utf-8")  # data/templates/react.yaml wins the lookup
    with pytest.raises(DataFileError, match="already taken"):
        templates_in(tmp_path)
    (tmp_path / "react.yaml").unlink()
    (tmp_path / "other_file.yaml").write_text(text.replace("name: react", "name: lever_probe"), encoding="utf-8")
    with pytest.raises(DataFileError, match="differs from the file name"):
        templates_in(tmp_path)
    with pytest.raises(DataFileError, match="not found"):
        templates_in(tmp_path / "missing")
