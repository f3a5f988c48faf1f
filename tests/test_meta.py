"""Meta-Agent: clustering, the offline generator's variety and flaws, the prompt-sensitive judge, the whole funnel."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from labkit.data.queries import load_queries
from labkit.formats import get_format
from labkit.llm import SandboxReader, SandboxTeacher, get_model
from labkit.llm.reader import has_worked_example, prompt_features
from labkit.errors import DataFileError
from labkit.jsonl import read_jsonl
from labkit.meta.cluster import ClusterSummary, cluster_queries, purity
from labkit.meta.generate import FLAW_KINDS, OfflineMetaAgent, Traits, generate_candidates, pools
from labkit.meta.judge import (
    BenchmarkScore,
    Instance,
    InstanceRow,
    keep_instance,
    objective_scores,
    section_check,
    template_verdicts,
)
from labkit.meta.pipeline import MetaRunSettings, run_meta_agent
from labkit.meta.report import FunnelStep, diversity, section_headings
from labkit.templates import load_template, load_templates
from labkit.tools import default_registry
from labkit.types import ToolCall


@pytest.fixture(autouse=True)
def _own_format_registry():
    """Declared formats registered by one test's candidates must not clash with the next test's."""
    import labkit.formats as formats

    saved = dict(formats._declared)
    yield
    formats._declared.clear()
    formats._declared.update(saved)


@pytest.fixture(scope="module")
def clustering():
    return cluster_queries(load_queries(), 18, seed=0)


def test_clusters_cover_the_bank_and_pick_central_representatives(clustering) -> None:
    queries = load_queries()
    assert len(clustering.clusters) == 18 and sum(c.size for c in clustering.clusters) == len(queries)
    assert sorted(q["id"] for c in clustering.clusters for q in c.queries) == sorted(q["id"] for q in queries)
    for c in clustering.clusters:
        assert 1 <= len(c.representatives) <= 5 and all(r in c.queries for r in c.representatives)
    again = cluster_queries(queries, 18, seed=0)
    assert again.labels == clustering.labels
    assert purity(clustering) > 1 / 18 * 3  # far better than chance against the hand labels
    ward = cluster_queries(queries, 18, method="agglomerative")
    assert len(ward.clusters) == 18
    with pytest.raises(ValueError):
        cluster_queries(queries, 3, method="dbscan")  # type: ignore[arg-type]


def write(tmp_path: Path, cand) -> Path:
    path = tmp_path / f"{cand.name}.yaml"
    path.write_text(cand.text, encoding="utf-8")
    return path


def test_generator_is_seeded_and_genuinely_varied(clustering, tmp_path: Path) -> None:
    writer = OfflineMetaAgent(seed=0, flaws={})
    cands = generate_candidates(clustering.clusters, writer, per_cluster=3)
    assert [c.text for c in cands] == [c.text for c in generate_candidates(clustering.clusters, writer, 3)]
    assert cands[0].text != generate_candidates(clustering.clusters[:1], OfflineMetaAgent(seed=1, flaws={}), 1)[0].text
    traits = [c.traits for c in cands]
    assert len({t["output_format"] for t in traits}) >= 12
    assert len({t["style"] for t in traits}) >= 5  # built-in + json/yaml/xml/kv/prefixed
    assert {t["lang"] for t in traits} == {"zh", "en", "mixed"}
    assert len({t["header_style"] for t in traits}) >= 5 and len({t["persona"] for t in traits}) >= 15
    assert len({tuple(t["order"]) for t in traits}) >= 10
    for cand in cands:  # without flaws every candidate passes the section check
        verdict, template = section_check(write(tmp_path, cand))
        assert verdict.passed, (cand.name, verdict.reason)
        assert template.format.round_trip_problems() == []


@pytest.mark.parametrize("flaw", FLAW_KINDS)
def test_each_flaw_is_caught_where_it_should_be(flaw: str, clustering, tmp_path: Path) -> None:
    cands = generate_candidates(clustering.clusters, OfflineMetaAgent(seed=3, flaws={flaw: 1.0}), per_cluster=1)
    cands = [c for c in cands if c.traits["flaw"] == flaw]
    assert cands
    for cand in cands:
        verdict, template = section_check(write(tmp_path, cand))
        if flaw in ("format_mismatch", "broken_yaml"):
            assert not verdict.loaded, cand.name
        elif flaw == "missing_section":
            assert verdict.missing == [cand.traits["dropped_section"]]
        elif flaw == "colliding_labels":
            assert verdict.loaded and not verdict.missing and verdict.round_trip
        else:  # format_in_words, padded: complete templates; only the judge can tell them apart
            assert verdict.passed
            prompt = template.render(goal="北京现在天气怎么样？", tools=default_registry())
            feats = prompt_features(prompt, template.output_format)
            if flaw == "format_in_words":
                assert not feats.example
            else:
                assert template.text.count(pools()["padding"][template.lang][0]) == 3 and feats.chars > 3000


def test_worked_examples_are_found_in_the_builtin_prompts() -> None:
    registry = default_registry()
    for t in load_templates():
        if t.kind == "planning" and t.name != "meta_terse_en":  # terse writes its format on one line, with \n
            assert has_worked_example(t.render(goal="g", tools=registry), t.output_format), t.name
    assert not has_worked_example(load_template("meta_terse_en").render(goal="g", tools=registry), "react")


def test_reader_answers_depend_on_the_prompt_and_are_reproducible() -> None:
    reader, teacher = get_model("sandbox-reader"), SandboxTeacher()
    assert isinstance(reader, SandboxReader)
    registry = default_registry()
    queries = [q for q in load_queries() if q["gold_calls"]][:60]
    good = load_template("kagent_planning_en")
    fallback = mistakes = 0
    for q in queries:
        prompt = good.render(goal=q["query"], tools=registry)
        text = reader.chat([{"role": "user", "content": prompt}]).text
        assert text == reader.chat([{"role": "user", "content": prompt}]).text
        mistakes += text != teacher.chat([{"role": "user", "content": prompt}]).text
        # the same step asked without a worked example and without a tool rule
        bare = prompt.replace('{"task_name": "task description", "command"', '{"task_name"... "command"') \
            .replace("only use the commands below", "use commands")
        feats = prompt_features(bare, "task_json")
        assert not feats.example and not feats.tool_rule
        fallback += reader.chat([{"role": "user", "content": bare}]).meta["noise"] is not None
    assert mistakes < 0.2 * len(queries) < fallback  # a clear prompt: few mistakes; an unclear one: many


def test_epsilon_rule_and_template_threshold() -> None:
    assert keep_instance(0.9, 0.8, 0.0) and not keep_instance(0.8, 0.8, 0.0) and keep_instance(0.8, 0.8, -0.05)
    rows = [Instance("a", f"q{i}:plan0", f"q{i}", 0, 0.9, s, keep_instance(s, 0.9, -0.05), "") for i, s in
            enumerate([1.0, 1.0, 0.0])] + [Instance("b", "q0:plan0", "q0", 0, 0.9, 1.0, True, "")]
    assert not template_verdicts(rows, threshold=1.0)["b"]["kept"]  # the note: greater than the threshold
    tv = template_verdicts(rows, threshold=0.8)
    assert tv["a"]["mean_s2"] == pytest.approx(2 / 3) and not tv["a"]["kept"] and tv["a"]["kept_instances"] == 2
    assert tv["b"]["kept"] and tv["b"]["mean_delta"] == pytest.approx(0.1)


def test_objective_scores_reward_gold_and_penalise_repairs() -> None:
    from labkit.evaluate.benchmark import build_benchmark

    q = next(q for q in load_queries() if q["lang"] == "en" and len(q["gold_calls"]) == 1)
    rec = build_benchmark([q], seen=["kagent_planning_en"], unseen=["react"], types=("plantooluse",))[0]
    gold = ToolCall(q["gold_calls"][0]["name"], q["gold_calls"][0]["args"])
    clean = get_format("task_json").render(gold, q["thoughts"][0])
    scores = objective_scores(rec, {"kagent_planning_en": clean, "react": "I think I should search."})
    assert scores == {"kagent_planning_en": 1.0, "react": 0.0}
    chatty = objective_scores(rec, {"kagent_planning_en": "Sure! " + clean, "react": ""})
    assert chatty["kagent_planning_en"] == 0.5


def test_funnel_smoke_saves_kept_templates_that_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_meta_agent("smoke", tmp_path / "meta")
    counts = [f["count"] for f in result.funnel if f["unit"] == "templates"]
    assert counts == sorted(counts, reverse=True) and counts[0] == 12
    assert (tmp_path / "meta" / "funnel.json").exists() and (tmp_path / "meta" / "candidates.jsonl").exists()
    saved = sorted(p.stem for p in (tmp_path / "meta" / "templates").glob("*.yaml"))
    assert saved == sorted(t.name for t in result.kept) and saved
    monkeypatch.setenv("LABKIT_TEMPLATE_DIRS", str(result.templates_dir))
    for name in saved:
        t = load_template(name)
        call = ToolCall("web_search", {"query": "天气 weather"})
        assert t.format.parse(t.format.render(call, "look it up")).call == call
    rows = result.verdicts
    assert not rows[~rows["round_trip_ok"]]["kept"].any()


def test_the_funnel_writes_each_record_as_its_type_says(tmp_path: Path) -> None:
    """Every file of a run holds records with exactly the keys (in order) of the TypedDict that names them."""
    out = tmp_path / "meta"
    result = run_meta_agent("smoke", out)
    saved = json.loads((out / "funnel.json").read_text(encoding="utf-8"))
    assert list(saved["settings"]) == list(result.settings) == list(MetaRunSettings.__annotations__)
    assert {tuple(f) for f in saved["funnel"]} == {tuple(FunnelStep.__annotations__)}
    clusters = json.loads((out / "clusters.json").read_text(encoding="utf-8"))
    assert {tuple(c) for c in clusters} == {tuple(ClusterSummary.__annotations__)}
    assert {tuple(r) for r in read_jsonl(out / "instances.jsonl")} == {tuple(InstanceRow.__annotations__)}
    assert {tuple(r) for r in read_jsonl(out / "benchmark_scores.jsonl")} == {tuple(BenchmarkScore.__annotations__)}
    traits = [r["traits"] for r in read_jsonl(out / "candidates.jsonl")]
    assert traits and all(set(t) <= set(Traits.__annotations__) for t in traits)
    assert set().union(*traits) - {"finish"} == set(Traits.__annotations__) - {"finish"}


def test_word_pools_missing_a_pool_name_the_file_and_the_pool(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from labkit.meta import generate
    from labkit.paths import data_dir

    full = yaml.safe_load((data_dir() / "meta" / "generator.yaml").read_text(encoding="utf-8"))
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "generator.yaml").write_text(
        yaml.safe_dump({k: v for k, v in full.items() if k != "padding"}), encoding="utf-8")
    monkeypatch.setattr(generate, "data_dir", lambda: tmp_path)
    pools.cache_clear()
    try:
        with pytest.raises(DataFileError, match="generator.yaml.*padding"):
            pools()
    finally:
        pools.cache_clear()


def test_course_offline_keeps_twenty_templates_in_four_formats(tmp_path: Path) -> None:
    result = run_meta_agent("course", tmp_path / "meta")
    kept = result.kept
    assert len(kept) >= 20 and len({t.output_format for t in kept}) >= 4
    assert len({getattr(t.format, "style", t.format.name) for t in kept}) >= 4
    div = diversity(kept)
    assert div["distinct_headings"] >= 20 and div["mean_pairwise_similarity"] < 0.6
    flaws = collections.Counter(result.verdicts[result.verdicts["kept"]]["flaw"].fillna("none"))
    assert not {"missing_section", "format_mismatch", "colliding_labels", "broken_yaml"} & set(flaws)
    for t in kept:
        call = ToolCall("get_weather_info", {"location": "北京", "is_current": "yes"})
        assert t.format.parse(t.format.render(call, "查询天气")).call == call
        assert section_headings(t)


class Scripted:
    """A ChatModel that replies with fixed texts (stands in for an API model)."""

    def __init__(self, replies):
        self.name, self.replies, self.prompts = "scripted", list(replies), []

    def chat(self, messages, **kw):
        from labkit.types import ChatResult

        self.prompts.append(messages[-1]["content"])
        return ChatResult(self.replies.pop(0), self.name)


def test_llm_writer_and_llm_judge_read_real_model_replies(clustering, tmp_path: Path) -> None:
    from labkit.meta.generate import LLMMetaAgent
    from labkit.meta.judge import LLMJudge

    cluster = clustering.clusters[0]
    offline = OfflineMetaAgent(seed=0, flaws={}).write(cluster, 0)
    model = Scripted([f"Here is the template:\n```yaml\n{offline.text}```\nEnjoy!"])
    cand = LLMMetaAgent(model).write(cluster, 0)
    assert cand.text.strip() == offline.text.strip() and cluster.representatives[0]["query"] in model.prompts[0]
    assert section_check(write(tmp_path, cand))[0].passed
    judge = LLMJudge(Scripted(['{"score": 7, "reason": "ok"}', "I would say 4 out of 10", "no idea", '{"score": 42}']))
    assert [judge.score("p", "r") for _ in range(4)] == [0.7, 0.4, None, 1.0]


# ---------------------------------------------------------------- hostile candidates (issue 20, findings 1 and 3)

def hostile_candidate(name: str, kind: str) -> str:
    """A candidate file that must be rejected without stopping the run or touching the format registry."""
    from labkit.templates import SECTIONS, template_yaml

    text = ("You are a planner. Rules: only use the tools listed.\nTools:\n{{ tools_block }}\nGoal: {{ goal }}\n"
            "Done:\n{{ memory_block or 'nothing' }}\nReply with one step:\nthink=why\nuse=tool_name\n"
            'args={"arg": "value"}\nor answer=the answer\n')
    fmt = {"style": "kv", "fields": {"thought": "think", "tool": "use", "args": "args", "answer": "answer"}}
    data = {"name": name, "family": "meta", "kind": "planning", "output_format": f"kv_{name}", "lang": "en",
            "sections": list(SECTIONS), "description": kind, "source": "a hostile Meta-Agent", "template": text,
            "format": fmt}
    if kind == "capturing markers":  # kagent_conclusion_en holds "Goal:": it would be read as this format
        data["format"] = {**fmt, "markers": ["Goal:"]}
    elif kind == "one-letter marker":
        data["format"] = {**fmt, "markers": ["e"]}
    elif kind == "self-calling macro":
        data["template"] = text + "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"
    elif kind == "alias bomb":
        names = [chr(97 + i) for i in range(9)]
        bomb = ", ".join(["&a [x, x, x, x, x, x, x, x, x]"] + [f"&{n} [" + ", ".join([f"*{p}"] * 9) + "]"
                                                               for p, n in zip(names, names[1:])])
        return template_yaml({k: v for k, v in data.items() if k != "sections"}) + f"sections: [{bomb}]\n"
    return template_yaml(data)


class HostileWriter:
    """The offline Meta-Agent, with two hostile candidates per cluster in place of its first two."""

    kinds = ("capturing markers", "one-letter marker", "self-calling macro", "alias bomb")

    def __init__(self) -> None:
        self.inner, self.name = OfflineMetaAgent(seed=0), "hostile writer"

    def write(self, cluster, index: int):
        cand = self.inner.write(cluster, index)
        if index < 2:
            kind = self.kinds[(2 * cluster.id + index) % len(self.kinds)]
            cand.text, cand.traits = hostile_candidate(cand.name, kind), {"flaw": kind, "output_format": ""}
        return cand


def test_hostile_candidates_are_rejected_and_the_run_goes_on(tmp_path: Path) -> None:
    from labkit.formats import known_formats
    from labkit.templates import list_templates

    result = run_meta_agent("smoke", tmp_path / "meta", writer=HostileWriter(), n_clusters=2, per_cluster=3,
                            judge_queries=1)
    rows = result.verdicts
    hostile = rows[rows["flaw"].isin(HostileWriter.kinds)]
    assert sorted(hostile["flaw"]) == sorted(HostileWriter.kinds) and not hostile["loaded"].any()
    reasons = dict(zip(hostile["flaw"], hostile["section_reason"]))
    assert "capture" in reasons["capturing markers"] and "format.markers" in reasons["one-letter marker"]
    assert "nest deeper" in reasons["self-calling macro"] and "alias" in reasons["alias bomb"]
    funnel = {f["step"]: f["count"] for f in result.funnel}
    assert funnel["generated"] == 6 and funnel["loadable"] == int(rows["loaded"].sum()) <= 2
    assert not {f"kv_{name}" for name in hostile.index} & set(known_formats())  # none of theirs registered
    assert all(load_template(n) for n in list_templates())  # every template still loads
