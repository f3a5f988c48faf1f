"""SandboxTeacher (EMULATOR): answers parse to the gold call in every template format, progress, noise, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.errors import DataFileError, LabkitError
from labkit.llm import ChatModel, SandboxTeacher, get_model
from labkit.parsing import parse_output
from labkit.templates import load_templates
from labkit.tools import default_registry
from labkit.types import CompletedTask, ParsedAction, ToolCall

GOLD = [
    {"id": "t-weather", "query": "北京明天天气怎么样?适合户外跑步吗?", "lang": "zh",
     "gold_calls": [{"name": "get_weather_info", "args": {"location": "北京", "start_date": "2025-03-16",
                                                           "end_date": "2025-03-16", "is_current": "no"}}],
     "thoughts": ["查询北京明天的天气"], "reference_answer": "北京明天晴,气温3到14摄氏度,适合户外跑步。"},
    {"id": "t-money", "query": "How much is 250 US dollars in Chinese yuan, split three ways?", "lang": "en",
     "gold_calls": [{"name": "currency_convert", "args": {"amount": 250, "from_currency": "USD", "to_currency": "CNY"}},
                    {"name": "calculator", "args": {"expression": "1812.5 / 3"}}],
     "thoughts": ["Convert 250 USD to CNY", "Divide the CNY amount by three"],
     "reference_answer": "250 USD is about 1812.5 CNY, so each person pays about 604.17 CNY."},
    {"id": "t-train", "query": "3月20日从上海到杭州有哪些高铁?票价大约多少?", "lang": "zh",
     "gold_calls": [{"name": "train_timetable", "args": {"from_city": "上海", "to_city": "杭州", "date": "2025-03-20"}},
                    {"name": "web_search", "args": {"query": "上海到杭州 高铁 二等座 票价"}},
                    {"name": "calculator", "args": {"expression": "73 * 2"}}],
     "thoughts": ["查询上海到杭州3月20日的列车时刻", "搜索上海到杭州高铁票价", "计算往返票价"],
     "reference_answer": "3月20日上海到杭州有多趟高铁,二等座约73元,往返约146元。"},
]
REGISTRY = default_registry()
PLANNING = [t for t in load_templates() if t.kind == "planning"]
CONCLUSION = [t for t in load_templates() if t.kind == "conclusion"]


@pytest.fixture(scope="module")
def teacher() -> SandboxTeacher:
    return SandboxTeacher(gold=GOLD, bank=None)


def ask(teacher: SandboxTeacher, prompt: str):
    return teacher.chat([{"role": "user", "content": prompt}])


def run_episode(teacher: SandboxTeacher, template, gold: dict) -> list[ParsedAction]:
    """Drive the teacher through a whole query: each step's answer is parsed, executed and put in memory."""
    memory: list[CompletedTask] = []
    steps = []
    for _ in range(len(gold["gold_calls"]) + 1):
        prompt = template.render(goal=gold["query"], tools=REGISTRY, memory=memory)
        parsed = parse_output(ask(teacher, prompt).text, template.output_format, tools=REGISTRY)
        assert parsed, f"{template.name}: {parsed}"
        steps.append(parsed)
        if parsed.is_finish:
            break
        memory.append(CompletedTask(parsed.thought, parsed.call, REGISTRY.call(parsed.call).text))
    return steps


@pytest.mark.parametrize("template", PLANNING, ids=[t.name for t in PLANNING])
@pytest.mark.parametrize("gold", GOLD, ids=[g["id"] for g in GOLD])
def test_every_format_replays_the_gold_calls(teacher: SandboxTeacher, template, gold: dict) -> None:
    steps = run_episode(teacher, template, gold)
    calls = [ToolCall(c["name"], c["args"]) for c in gold["gold_calls"]]
    assert [s.call for s in steps[:-1]] == calls
    for step, thought in zip(steps, gold["thoughts"]):
        assert step.thought in (thought, "")  # '' only where a format carries no thought
    assert steps[-1].is_finish and not steps[-1].give_up
    if steps[-1].final_answer is not None:
        assert steps[-1].final_answer == gold["reference_answer"]
    else:
        assert steps[-1].call.name == "task_complete"


@pytest.mark.parametrize("template", CONCLUSION, ids=[t.name for t in CONCLUSION])
def test_conclusion_gets_reference_answer(teacher: SandboxTeacher, template) -> None:
    gold = GOLD[1]
    memory = [CompletedTask(t, ToolCall(c["name"], c["args"]), REGISTRY.call(ToolCall(c["name"], c["args"])).text)
              for t, c in zip(gold["thoughts"], gold["gold_calls"])]
    res = ask(teacher, template.render(goal=gold["query"], tools=REGISTRY, memory=memory))
    assert res.text == gold["reference_answer"] and res.meta["format"] == "conclusion"
    assert isinstance(res.meta["ungrounded_numbers"], list)


def test_progress_follows_calls_even_with_other_thoughts(teacher: SandboxTeacher) -> None:
    gold, template = GOLD[2], PLANNING[0]
    done = [CompletedTask("something else", ToolCall(c["name"], dict(reversed(list(c["args"].items())))), "ok")
            for c in gold["gold_calls"][:2]]
    parsed = parse_output(ask(teacher, template.render(goal=gold["query"], tools=REGISTRY, memory=done)).text,
                          template.output_format)
    assert parsed.call == ToolCall("calculator", {"expression": "73 * 2"})


def test_unknown_query_finishes_politely(teacher: SandboxTeacher) -> None:
    for template in PLANNING:
        res = ask(teacher, template.render(goal="Compose a sonnet about quantum gravity", tools=REGISTRY))
        parsed = parse_output(res.text, template.output_format)
        assert parsed and parsed.is_finish and res.meta["query_id"] is None
    res = ask(teacher, CONCLUSION[0].render(goal="Compose a sonnet about quantum gravity", tools=REGISTRY))
    assert "sorry" in res.text.lower() or "抱歉" in res.text


def test_labelled_as_emulator_with_estimated_tokens(teacher: SandboxTeacher) -> None:
    assert isinstance(teacher, ChatModel)
    assert "emulator" in teacher.name and "EMULATOR" in repr(teacher) and "EMULATOR" in SandboxTeacher.__doc__
    prompt = next(t for t in PLANNING if t.name == "kagent_planning_zh").render(goal=GOLD[0]["query"], tools=REGISTRY)
    res = ask(teacher, prompt)
    assert res.model == teacher.name and res.meta["emulator"] is True and "estimated" in res.meta["token_counts"]
    assert res.prompt_tokens == -(-len(prompt) // 4) and res.completion_tokens == -(-len(res.text) // 4)
    assert res.meta["noise"] is None and teacher.last_noise is None
    short = teacher.chat([{"role": "user", "content": prompt}], max_new_tokens=5)
    assert short.text == res.text[:20] and short.meta["truncated"] and not res.meta["truncated"]
    cut = teacher.chat([{"role": "user", "content": prompt}], stop=["command"])
    assert cut.text == res.text[: res.text.index("command")]


def test_full_noise_spoils_every_answer_reproducibly() -> None:
    clean, noisy = SandboxTeacher(gold=GOLD, bank=None), SandboxTeacher(noise=1.0, seed=7, gold=GOLD, bank=None)
    again = SandboxTeacher(noise=1.0, seed=7, gold=GOLD, bank=None)
    kinds = set()
    for template in PLANNING:
        for gold in GOLD:
            prompt = template.render(goal=gold["query"], tools=REGISTRY)
            res = ask(noisy, prompt)
            assert res.text != ask(clean, prompt).text and res.text == ask(again, prompt).text
            kind = res.meta["noise"]
            assert kind == noisy.last_noise == noisy.noise_for(prompt)
            kinds.add(kind)
            parsed = parse_output(res.text, template.output_format)
            gold_call = ToolCall(gold["gold_calls"][0]["name"], gold["gold_calls"][0]["args"])
            if kind in ("wrong_tool", "wrong_arg", "missing_field"):
                assert not parsed or parsed.call != gold_call
    assert kinds == {"wrong_tool", "broken_json", "extra_prose", "missing_field", "wrong_arg"}


def test_partial_noise_depends_on_seed() -> None:
    prompts = [t.render(goal=g["query"], tools=REGISTRY) for t in PLANNING for g in GOLD]
    a = [SandboxTeacher(noise=0.3, seed=1, gold=GOLD, bank=None).noise_for(p) for p in prompts]
    b = [SandboxTeacher(noise=0.3, seed=2, gold=GOLD, bank=None).noise_for(p) for p in prompts]
    assert 0 < sum(k is not None for k in a) < len(prompts) and a != b


def test_bad_gold_records_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="thoughts"):
        SandboxTeacher(gold=[{**GOLD[0], "thoughts": []}], bank=None)
    bank = tmp_path / "bank.jsonl"
    bank.write_text(json.dumps(GOLD[0], ensure_ascii=False) + "\n" + json.dumps({"id": "x", "query": "q"}) + "\n")
    with pytest.raises(DataFileError, match=r"bank.jsonl:2 \[field 'gold_calls'\]"):
        SandboxTeacher(bank=bank)
    with pytest.raises(ValueError, match="noise"):
        SandboxTeacher(noise=1.5, bank=None)


def test_get_model_sandbox_spec() -> None:
    t = get_model("sandbox:noise=0.2,seed=3")
    assert isinstance(t, SandboxTeacher) and (t.noise, t.seed) == (0.2, 3)
    with pytest.raises(LabkitError, match="sandbox option"):
        get_model("sandbox:temperature=1")


def test_default_bank_one_query_per_cluster_every_template() -> None:
    teacher = SandboxTeacher()
    firsts: dict[str, dict] = {}
    for q in teacher.queries:
        raw = {"id": q.id, "query": q.query, "reference_answer": q.reference_answer, "thoughts": list(q.thoughts),
               "gold_calls": [c.to_dict() for c in q.gold_calls]}
        firsts.setdefault(q.id.rsplit("-", 2)[0], raw)
    assert len(firsts) >= 10
    for gold in firsts.values():
        for template in PLANNING:
            steps = run_episode(teacher, template, gold)
            assert [s.call for s in steps[:-1]] == [ToolCall(c["name"], c["args"]) for c in gold["gold_calls"]]
            assert steps[-1].is_finish
