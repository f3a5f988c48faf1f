"""Checkers of notebook 02 (Template-1 planning and Template-2 conclusion)."""

from __future__ import annotations

import json
import re
from typing import Any

from labkit.exercises import Feedback, exercise, failed, passed, run_student
from labkit.records import Query
from labkit.types import ToolCallDict

FINISH = "task_complete"


def _numbers(text: str) -> set[str]:
    """The numbers in a text, normalised (``955.840`` and ``955.84`` are one number)."""
    return {format(float(n), "g") for n in re.findall(r"\d+(?:\.\d+)?", text)}


def _result_number(text: str) -> str | None:
    m = re.search(r"=\s*(-?\d+(?:\.\d+)?)\s*$", text.strip())
    return m.group(1) if m else None


@exercise("02.1", title="按模板-1 规划下一个 Task", note_section="§2.2 Agent Prompt 模板设计：模板-1（任务规划与工具调用）")
def plan_next_task(answer: Any, *, query: Query, tools: Any, step: int = 1) -> Feedback:
    from labkit.parsing import parse_output
    from labkit.types import ParseError, ToolCall

    if not isinstance(answer, str):
        return failed("答案应是模型输出的原文（一个字符串），内容是一个 JSON 对象：{\"task_name\": ..., \"command\": {...}}。"
                      "如果你写的是 dict，用 json.dumps(..., ensure_ascii=False) 转成字符串。")
    parsed = parse_output(answer, "task_json", tools=tools)
    if isinstance(parsed, ParseError) and "task_name" in parsed.message or not isinstance(parsed, ParseError) and \
            not parsed.thought.strip():
        return failed("task_name 缺失或为空：它是这一步的任务描述（实验 06 的 Planning 分数就是拿它和参考描述比 ROUGE）。")
    if isinstance(parsed, ParseError):
        return failed(f"解析失败 [{parsed.code}]：{parsed.message}\n模板-1 要求只输出一个 JSON："
                      "{\"task_name\": \"任务描述\", \"command\": {\"name\": \"工具名\", \"args\": {...}}}")
    if "json_repair" in parsed.repaired:
        return failed("JSON 本身不合法（例如用了单引号、少了括号），解析器只能靠 json_repair 猜着修："
                      "键和字符串都要用双引号。训练数据里这样的输出会被 unparseable 过滤掉。")
    if parsed.repaired:
        return failed(f"解析器要“容错修复”才能读懂（{', '.join(parsed.repaired)}）：模板-1 说“只能以如下 json 格式生成”，"
                      "JSON 之外不要有任何文字或代码块——训练数据里这样的输出会被 off_format_text 过滤掉。")
    gold = ToolCall(**query["gold_calls"][step])
    done = [ToolCall(**c) for c in query["gold_calls"][:step]]
    call = parsed.call
    assert call is not None
    if call.name == FINISH:
        return failed("还不能 task_complete：记忆里只有换算结果，用户问的“还剩多少欧元”还没算出来。")
    if call in done or call.name in {c.name for c in done}:
        return failed(f"{call.name} 已经在 Completed tasks 里了——约束 5：尽量少调用、不能重复调用。下一步该做还没做的事。")
    if call.name not in tools:
        return failed(f"没有叫 {call.name!r} 的 command；只能用 Commands 里列出的：{', '.join(tools.names())}（约束 3）。")
    if call.name != gold.name:
        return failed(f"{call.name} 不是这一步需要的工具：换算已经完成，剩下的是一道减法。")
    obs = tools.call(call)
    if not obs.ok:
        return failed(f"工具拒绝了这次调用：{obs.text}\n参数名要与 Commands 里 parameters 的 properties 完全一致。")
    want = _result_number(tools.call(gold).text)
    got = _result_number(obs.text)
    expr = json.dumps(call.args, ensure_ascii=False)
    if got != want:
        if "800" in expr:
            return failed("算式里用了 800（英镑）：要用换算后的欧元金额，它在 Completed tasks 里上一步的 result 中。")
        return failed(f"算出来是 {got}，不对：用 Completed tasks 里的欧元金额减去花掉的 510。", got=got)
    missing = _numbers(" ".join(str(v) for v in gold.args.values())) - _numbers(expr)
    if missing:  # the right result handed over pre-computed: the step the data calls for is the computation
        return failed(f"结果对了，但算式里没有 {', '.join(sorted(missing))}：这一步要让 calculator **做这道计算**"
                      "（记忆里的欧元金额 − 花掉的 510），而不是模型心算好答案再交给工具——小模型心算出错正是它需要工具的"
                      "原因（§1.1 幻觉），训练数据里的这一步也是算式。", missing=sorted(missing))
    return passed(f"正确：{call.name}({json.dumps(call.args, ensure_ascii=False)}) → {obs.text}。"
                  "下一步模型看到这个结果，就该输出 task_complete 了。")


STOP_CASES: list[tuple[str, ToolCallDict, list[ToolCallDict], int, str | None, str]] = [
    ("第一步就完成", {"name": FINISH, "args": {}}, [], 5, "finished",
     "模型输出 task_complete 时循环应结束并转去模板-2 总结：返回 \"finished\"。"),
    ("一模一样的调用", {"name": "web_search", "args": {"query": "北京天气"}},
     [{"name": "web_search", "args": {"query": "北京天气"}}], 5, "repeated_call",
     "约束 5“不能重复调用”：同一个调用的结果已经在记忆里，再调一次只会原地打转，应返回 \"repeated_call\"。"),
    ("参数顺序不同的同一调用", {"name": "currency_convert", "args": {"to_currency": "EUR", "amount": 800,
                                                             "from_currency": "GBP"}},
     [{"name": "currency_convert", "args": {"amount": 800, "from_currency": "GBP", "to_currency": "EUR"}}], 5,
     "repeated_call", "参数只是顺序不同，仍是同一个调用（比较 dict，而不是比较 JSON 字符串）。"),
    ("同一工具、不同参数", {"name": "get_weather_info", "args": {"location": "Shanghai"}},
     [{"name": "get_weather_info", "args": {"location": "Beijing"}}], 5, None,
     "名字相同但参数不同不算重复：查完北京再查上海的天气是合理的，应返回 None（继续）。"),
    ("已经做满 5 步", {"name": "calculator", "args": {"expression": "1+1"}},
     [{"name": "web_search", "args": {"query": str(i)}} for i in range(5)], 5, "max_steps",
     "约束 8“最多只能规划 5 个任务”：已经执行了 5 个调用，第 6 个不能再执行，应返回 \"max_steps\"。"),
    ("做满 5 步后完成", {"name": FINISH, "args": {}},
     [{"name": "web_search", "args": {"query": str(i)}} for i in range(5)], 5, "finished",
     "步数用完时 task_complete 仍然允许（它不是工具调用）：先判断完成，再判断步数。"),
    ("第 5 个调用", {"name": "calculator", "args": {"expression": "2*3"}},
     [{"name": "web_search", "args": {"query": str(i)}} for i in range(4)], 5, None,
     "只执行过 4 个调用时，第 5 个还在限额内（注意差一错误）：应返回 None。"),
    ("max_steps=2", {"name": "calculator", "args": {"expression": "2*3"}},
     [{"name": "web_search", "args": {"query": "a"}}, {"name": "wiki_search", "args": {"entity": "b"}}], 2,
     "max_steps", "步数上限是参数 max_steps，不要写死 5。"),
]


@exercise("02.2", title="实现规划循环的停止规则", note_section="§2.2 模板-1 的约束 5（不能重复调用）与约束 8（最多 5 步）")
def stop_rule(answer: Any) -> Feedback:
    for label, call, done, max_steps, want, hint in STOP_CASES:
        got = run_student(answer, call, done, max_steps)
        if got != want:
            return failed(f"情形「{label}」：应返回 {want!r}，你的函数返回 {got!r}。{hint}", case=label)
    return passed(f"{len(STOP_CASES)} 个情形全对。labkit.agent 的循环（run_steps）就是这样停下的："
                  "task_complete → 总结；重复调用 → repeated_call；步数用完 → max_steps。")
