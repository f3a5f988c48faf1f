"""Agent loops: ReAct scratchpad, KAgent plan loop + conclusion, stop reasons, traces on disk and in HTML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labkit.agent import Trace, TraceStep, run_agent, run_plan, run_react
from labkit.errors import DataFileError
from labkit.jsonl import read_jsonl
from labkit.llm import get_model
from labkit.llm.sandbox import SandboxTeacher
from labkit.paths import data_dir
from labkit.templates import load_template
from labkit.tools import default_registry
from labkit.types import ChatResult, Message


class Scripted:
    """A fake ChatModel that answers with the given outputs in order and records what it was asked."""

    name = "scripted"

    def __init__(self, outputs: list[str]):
        self.outputs = list(outputs)
        self.prompts: list[str] = []
        self.stops: list[list[str] | None] = []
        self.untils: list[str | None] = []

    def chat(self, messages: list[Message], *, max_new_tokens: int = 256, temperature: float = 0.0,
             stop: list[str] | None = None, until: str | None = None) -> ChatResult:
        from labkit.llm.base import cut_until

        self.prompts.append(messages[-1]["content"])
        self.stops.append(stop)
        self.untils.append(until)
        return ChatResult(text=cut_until(self.outputs.pop(0), until), model=self.name)

    def chat_batch(self, batch: list[list[Message]], **kw: Any) -> list[ChatResult]:
        return [self.chat(m, **kw) for m in batch]


def task(name: str, tool: str, **args: Any) -> str:
    return json.dumps({"task_name": name, "command": {"name": tool, "args": args}}, ensure_ascii=False)


def test_react_calls_tool_feeds_observation_back_and_finishes() -> None:
    model = Scripted(['Thought: 先算一下\nAction: calculator\nAction Input: {"expression": "12*7"}',
                      "Thought: I now know the final answer\nFinal Answer: 84"])
    trace = run_react(model, "12乘以7等于多少?", tools=["calculator"])
    assert trace.stopped == "finished" and trace.final_answer == "84"
    assert len(trace.steps) == 2 and model.stops[0] == ["Observation:"]
    first = trace.steps[0]
    assert first.parsed["call"] == {"name": "calculator", "args": {"expression": "12*7"}}
    assert first.tool_ok is True and "84" in (first.observation or "")
    assert first.observation in model.prompts[1]  # the scratchpad carries the observation into the next prompt
    assert "12乘以7等于多少" in model.prompts[0]


def test_plan_loop_memory_task_complete_and_conclusion() -> None:
    model = Scripted([task("计算乘积", "calculator", expression="12*7"),
                      task("任务完成", "task_complete", reason="done"), "12乘以7等于84。"])
    trace = run_plan(model, "12乘以7等于多少?", tools=["calculator"])
    assert trace.stopped == "finished" and trace.final_answer == "12乘以7等于84。"
    assert [s.kind for s in trace.steps] == ["step", "step", "conclusion"]
    assert trace.conclusion_template == "kagent_conclusion_zh"
    assert "计算乘积" in model.prompts[1] and "84" in model.prompts[1]  # Completed tasks memory
    assert "84" in model.prompts[2]  # the conclusion prompt sees the results
    assert model.stops[0] is None and model.untils[0] == "json_object"  # JSON planning stops when its object closes
    assert trace.calls == [{"name": "calculator", "args": {"expression": "12*7"}},
                           {"name": "task_complete", "args": {"reason": "done"}}]


def test_plan_stops_on_repeated_call_and_max_steps() -> None:
    same = task("计算", "calculator", expression="1+1")
    repeated = run_plan(Scripted([same, same, "答案是2"]), "1+1?", tools=["calculator"])
    assert repeated.stopped == "repeated_call" and repeated.final_answer == "答案是2"
    assert len([s for s in repeated.steps if s.kind == "step"]) == 2 and repeated.steps[1].observation is None

    outs = [task(f"计算{i}", "calculator", expression=f"{i}+1") for i in range(3)] + ["结论"]
    capped = run_plan(Scripted(outs), "算一算", tools=["calculator"], max_steps=3)
    assert capped.stopped == "max_steps" and capped.final_answer == "结论" and len(capped.steps) == 4

    model = Scripted([task("计算", "calculator", expression="2+2"), "结论"])
    budget = run_plan(model, "算一算", tools=["calculator"], max_steps=5, step_budget=1)
    assert budget.stopped == "max_steps" and len(budget.steps) == 2
    full = load_template("kagent_planning_zh").render(goal="算一算", tools=default_registry().subset(["calculator"]),
                                                      max_steps=5)
    assert model.prompts[0] == full  # the prompt still announces max_steps; only the run is shorter


def test_parse_error_is_kept_and_stops_without_conclusion() -> None:
    model = Scripted(["北京现在天气怎么样?北京现在天气怎么样?北京现在"])
    trace = run_plan(model, "北京现在天气怎么样?")
    assert trace.stopped == "parse_error" and trace.final_answer is None and len(trace.steps) == 1
    assert trace.error is not None and trace.error["code"] == "no_json"
    assert "ParseError[no_json]" in trace.steps[0].action_text()


def test_rejected_tool_call_becomes_an_observation() -> None:
    model = Scripted([task("查", "no_such_tool", q="x"), task("完成", "task_complete"), "无法回答"])
    trace = run_plan(model, "随便问问")
    assert trace.steps[0].tool_ok is False and "no_such_tool" in (trace.steps[0].observation or "")
    assert trace.stopped == "finished"


def test_toolllama_give_up() -> None:
    out = 'Thought: 放弃\nAction: Finish\nAction Input: {"return_type": "give_up_and_restart"}'
    trace = run_react(Scripted([out]), "问题", template="toolllama", restarts=0)
    assert trace.stopped == "give_up" and trace.final_answer is None and trace.restarts == 0


def test_trace_roundtrip_html_and_bad_file(tmp_path: Path) -> None:
    trace = Trace("q <b>", "react", "m", [TraceStep("p <script>", "out & more", {"ok": True, "thought": "t",
                  "call": None, "final_answer": "42", "give_up": False, "repaired": []}, None)], "42", "finished")
    path = tmp_path / "traces.jsonl"
    trace.save_jsonl(path)
    trace.save_jsonl(path)
    loaded = Trace.load(path)
    assert len(loaded) == 2 and loaded[0] == trace
    page = trace._repr_html_()
    assert "&lt;script&gt;" in page and "<script>" not in page and "<details>" in page and "out &amp; more" in page
    path.write_text(path.read_text() + json.dumps({"query": "x", "template": "react", "model": "m",
                                                   "stopped": "finished"}) + "\n")
    with pytest.raises(DataFileError, match=r"traces.jsonl:3 \[field 'steps'\]"):
        Trace.load(path)


GOLD = [
    {"id": "w1", "query": "北京现在天气怎么样?", "lang": "zh",
     "gold_calls": [{"name": "get_weather_info", "args": {"location": "Beijing", "start_date": "2025-03-15",
                                                          "end_date": "2025-03-15", "is_current": "yes"}}],
     "thoughts": ["查询北京当前的天气"], "reference_answer": "北京现在有小雨。"},
    {"id": "c1", "query": "3英里是多少公里?再加上10公里一共多少?", "lang": "zh",
     "gold_calls": [{"name": "unit_convert", "args": {"value": 3, "from_unit": "mile", "to_unit": "km"}},
                    {"name": "calculator", "args": {"expression": "4.828032+10"}}],
     "thoughts": ["把3英里换算成公里", "计算总公里数"], "reference_answer": "一共约14.83公里。"},
]


@pytest.mark.parametrize("template", ["kagent_planning_zh", "kagent_planning_en", "react", "autogpt", "modelscope",
                                      "toolllama"])
def test_emulator_solves_multi_step_queries_with_every_template(template: str) -> None:
    teacher = SandboxTeacher(gold=GOLD, bank=None)
    for q in GOLD:
        trace = run_agent(teacher, q["query"], template=template)
        assert trace.stopped == "finished", (template, q["id"], str(trace))
        calls = [c for c in trace.calls if c["name"] != "task_complete"]
        assert calls == [{"name": c["name"], "args": c["args"]} for c in q["gold_calls"]], str(trace)
        assert all(s.tool_ok for s in trace.steps if s.observation is not None), str(trace)
        assert trace.final_answer == q["reference_answer"]
        planning = load_template(template).output_format in ("task_json", "autogpt")
        assert (trace.steps[-1].kind == "conclusion") == planning
        if planning:
            assert trace.conclusion_template == f"kagent_conclusion_{load_template(template).lang}"


BANK = data_dir() / "queries" / "agent_queries.jsonl"


@pytest.mark.skipif(not BANK.exists(), reason="query bank not built yet")
def test_emulator_follows_the_bank_gold_calls() -> None:
    teacher = get_model("sandbox")
    for q in read_jsonl(BANK)[:5]:
        trace = run_plan(teacher, q["query"])
        assert trace.stopped == "finished", str(trace)
        assert [c["name"] for c in trace.calls][:-1] == [c["name"] for c in q["gold_calls"]]
        assert trace.final_answer == q["reference_answer"]


def test_toolllama_give_up_restarts_once_with_the_failure_history() -> None:
    give_up = 'Thought: 搜不到\nAction: Finish\nAction Input: {"return_type": "give_up_and_restart"}'
    search = 'Thought: 先搜索\nAction: web_search\nAction Input: {"query": "字节跳动 总部"}'
    answer = 'Thought: 换个办法\nAction: Finish\nAction Input: {"return_type": "give_answer", "final_answer": "北京"}'
    model = Scripted([search, give_up, answer])
    trace = run_react(model, "字节跳动总部在哪？", template="toolllama")
    assert trace.stopped == "finished" and trace.final_answer == "北京" and trace.restarts == 1
    restarted = model.prompts[2]
    assert "Attempt 1 gave up (搜不到)" in restarted and 'web_search({"query": "字节跳动 总部"})' in restarted
    assert "Earlier attempts" not in model.prompts[0] and "Thought: 先搜索" not in restarted  # memory starts empty
    assert Trace.from_dict(trace.to_dict()).restarts == 1


def test_toolllama_gives_up_for_good_after_the_last_restart() -> None:
    give_up = 'Thought: 放弃\nAction: Finish\nAction Input: {"return_type": "give_up_and_restart"}'
    trace = run_react(Scripted([give_up, give_up]), "问题", template="toolllama")
    assert trace.stopped == "give_up" and trace.restarts == 1 and len(trace.steps) == 2


def test_batched_plan_runs_take_exactly_the_single_runs_steps() -> None:
    """run_plans (lock-step, one batched call per step) gives the same traces as run_plan one query at a time."""
    from labkit.agent import run_plans
    from labkit.llm import SandboxTeacher

    teacher = SandboxTeacher(noise=0.3, seed=3)
    bank = teacher.queries[:6]
    items = [(q.query, None) for q in bank]

    class Counting:
        name = teacher.name

        def __init__(self):
            self.batches = []

        def chat(self, messages, **kw):
            return teacher.chat(messages, **kw)

        def chat_batch(self, batch, **kw):
            self.batches.append(len(batch))
            return [teacher.chat(m, **kw) for m in batch]

    counting = Counting()
    together = run_plans(counting, items, batch_size=4)
    alone = [run_plan(teacher, q, tools=t) for q, t in items]
    assert [t.to_dict() for t in together] == [t.to_dict() for t in alone]
    assert max(counting.batches) == 4 and sum(counting.batches) == sum(len(t.steps) for t in together)


# ---------------------------------------------------------------- hostile model outputs (issue 20, finding 5)

def nested(n: int) -> str:
    return "[" * n + "1" + "]" * n


@pytest.mark.parametrize(("template", "step"), [
    ("kagent_planning_zh", lambda v: '{"task_name": "t", "command": {"name": "web_search", "args": {"query": %s}}}' % v),
    ("react", lambda v: "Thought: t\nAction: web_search\nAction Input: {\"query\": %s}" % v),
])
def test_hostile_outputs_end_as_failed_steps_with_bounded_prompts(template: str, step: Any) -> None:
    refused = [nested(500), nested(100_000), "9" * 5000, json.dumps("a" * 5_000_000)]  # parse error or refused call
    for value in [*refused, json.dumps("\ud800\x00")]:
        model = Scripted([step(value), step(json.dumps("x")), step(json.dumps("y")), "答案"])
        trace = run_agent(model, "北京现在天气怎么样？", template=template, tools=["web_search"], max_steps=3)
        assert trace.stopped in ("parse_error", "max_steps", "finished"), trace.stopped  # no exception above
        assert max(len(p) for p in model.prompts) < 20_000  # nothing of the hostile value is replayed in full
        first = trace.steps[0]
        assert (not first.ok or first.tool_ok is False) == (value in refused)
        json.dumps(trace.to_dict())  # the trace can be saved


def test_trace_dict_is_the_asdict_layout_and_its_typeddict() -> None:
    """``Trace.to_dict`` builds the JSON by hand (typed as ``TraceDict``): it must stay what ``asdict`` wrote, key for
    key, and ``TraceDict`` / ``TraceStepDict`` must name exactly those keys (a new Trace field needs all three)."""
    import dataclasses

    from labkit.types import TraceDict, TraceStepDict

    trace = run_plan(SandboxTeacher(), "北京今天天气怎么样？", max_steps=3)
    saved = trace.to_dict()
    assert json.dumps(saved, ensure_ascii=False) == json.dumps(dataclasses.asdict(trace), ensure_ascii=False)
    assert list(saved) == list(TraceDict.__annotations__) == [f.name for f in dataclasses.fields(Trace)]
    assert [list(s) for s in saved["steps"]] == [list(TraceStepDict.__annotations__)] * len(trace.steps)
    assert list(TraceStepDict.__annotations__) == [f.name for f in dataclasses.fields(TraceStep)]
    saved["steps"][0]["parsed"]["thought"] = "changed"  # a copy, never a view of the trace
    assert trace.steps[0].parsed["thought"] != "changed"
