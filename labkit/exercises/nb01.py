"""Checkers of notebook 01 (ReAct and the four prompt families)."""

from __future__ import annotations

import json
from typing import Any

from labkit.exercises import Feedback, exercise, failed, passed
from labkit.records import Query

# §1.1 【重点】: why LLM applications need agents. One primary reason per query; the hint explains the right one.
REASONS = {"幻觉": "幻觉：需要外部知识保证答案准确", "实时": "实时：参数不能实时更新，需要连接真实世界",
           "多步": "多步：复杂任务需要拆解、多步执行与交互"}
ALIASES = {"幻觉": "幻觉", "知识": "幻觉", "hallucination": "幻觉", "knowledge": "幻觉",
           "实时": "实时", "实时性": "实时", "realtime": "实时", "real-time": "实时",
           "多步": "多步", "复杂": "多步", "复杂任务": "多步", "multistep": "多步", "multi-step": "多步", "complex": "多步"}
WHY_AGENT_QUERIES: list[tuple[str, str, str]] = [
    ("北京现在下雨吗？", "实时", "天气每小时都在变：模型参数停在训练那一天，不可能“知道”现在的天气，必须连接真实世界查询。"),
    ("《三体》的作者刘慈欣是哪一年出生的？", "幻觉",
     "这个事实不会变，模型甚至可能“记得”；但小模型常常自信地编一个年份。严肃场景要查百科核实，这是第 1 条（幻觉）。"),
    ("帮我订一张周五去上海的机票。", "多步",
     "这是笔记 §1.1 的例子：查航班、比价、选座、确认、下单——不是一问一答，而是多步执行与交互。"),
    ("今天 100 美元能换多少人民币？", "实时", "汇率每天都在变：模型参数无法实时更新，必须调用汇率工具。"),
    ("请帮我约一个和搜索产品部的需求沟通会，本周三至周五我日历上空闲的时间都可以。", "多步",
     "笔记 §1.1 的第二个例子：要查自己的日历、查对方的空闲、协调时间、发邀请，是多步任务。"),
    ("这种药的说明书上写的成人每日最大剂量是多少？", "幻觉",
     "剂量不会天天变，但答错后果严重：不能依赖模型的记忆，要引入外部权威资料确保准确（第 1 条）。"),
]


def _label(value: Any) -> str | None:
    return ALIASES.get(str(value).strip().lower()) if value is not None else None


@exercise("01.1", title="给问题贴标签：它为什么需要 Agent？",
          note_section="§1.1 【重点】大模型应用需要 Agent 技术的原因")
def why_agent(answer: Any) -> Feedback:
    n = len(WHY_AGENT_QUERIES)
    if isinstance(answer, dict):
        answer = [answer.get(i, answer.get(i + 1)) for i in range(n)]
    if isinstance(answer, str) or not isinstance(answer, (list, tuple)):
        return failed(f"答案应是一个长度为 {n} 的列表，按题目顺序写标签，例如 ['实时', '幻觉', ...]。")
    if len(answer) != n:
        return failed(f"一共 {n} 个问题，你给了 {len(answer)} 个标签：每个问题一个。")
    labels = [_label(a) for a in answer]
    bad = [i for i, lab in enumerate(labels) if lab is None]
    if bad:
        return failed(f"第 {', '.join(str(i + 1) for i in bad)} 个标签看不懂：只能用 {' / '.join(REASONS)} "
                      f"（{'；'.join(REASONS.values())}）。")
    wrong = [(i, lab) for i, lab in enumerate(labels) if lab != WHY_AGENT_QUERIES[i][1]]
    if not wrong:
        return passed("全对。三条原因正对应 Agent 的三种能力：查外部知识（消除幻觉）、连接实时世界、拆解多步任务。")
    lines = [f"{len(wrong)} 个标签不对（每题只选最主要的原因）："]
    for i, lab in wrong:
        q, _, why = WHY_AGENT_QUERIES[i]
        lines.append(f"第 {i + 1} 题「{q}」不是「{lab}」——{why}")
    return failed("\n".join(lines), wrong=[i + 1 for i, _ in wrong])


def _norm(key: str, value: Any) -> Any:
    from labkit.tools.world import find_city

    if key == "location":
        rec = find_city(str(value).strip())
        return rec["id"] if rec else str(value).strip().lower()
    if key == "is_current":
        return str(value).strip().lower() in ("yes", "y", "true", "1", "是")
    return str(value).strip().lower()


KEY_HINTS = {
    "location": "地点不对：看第一步的 Observation，字节跳动的总部在哪座城市？",
    "start_date": "日期不对：沙盒世界的“今天”固定为 2025-03-15（不是你电脑上的日期）。",
    "end_date": "日期不对：沙盒世界的“今天”固定为 2025-03-15（不是你电脑上的日期）。",
    "is_current": "问题问的是“实时天气”，is_current 应该是 \"yes\"。",
}


@exercise("01.2", title="亲手写一步 ReAct 输出", note_section="§2.1 主流 Agent Prompt 模板：ReAct")
def react_step(answer: Any, *, query: Query, tools: Any, step: int = 1) -> Feedback:
    from labkit.parsing import parse_output
    from labkit.types import ParseError, ToolCall

    if not isinstance(answer, str):
        return failed("答案应是一段字符串：模型这一步输出的原文（Thought / Action / Action Input 三行）。")
    if "Observation:" in answer:
        return failed("不要自己写 Observation：模型写完 Action Input 就必须停下，Observation 由真实的工具填写。"
                      "（run_react 用 stop=['Observation:'] 截断，就是为了防止模型编造工具结果。）")
    parsed = parse_output(answer, "react", tools=tools)
    if isinstance(parsed, ParseError):
        return failed(f"解析失败 [{parsed.code}]：{parsed.message}\n格式是三行：\nThought: 你的想法\n"
                      "Action: 工具名\nAction Input: {\"参数名\": \"值\", ...}")
    if parsed.final_answer is not None:
        return failed("这一步还不能给 Final Answer：我们只知道字节跳动在哪座城市，还没有拿到天气。")
    gold = ToolCall(**query["gold_calls"][step])
    call = parsed.call
    assert call is not None
    if call.name not in tools:
        return failed(f"没有叫 {call.name!r} 的工具。本题可用：{', '.join(tools.names())}。")
    if call.name != gold.name:
        return failed(f"{call.name} 不是这一步要用的工具：已经知道了城市，现在需要的是该城市的天气。")
    if "plain_action_input" in parsed.repaired or not answer.split("Action Input:", 1)[-1].strip().startswith("{"):
        return failed("Action Input 写成了纯文本，它只能填进第一个参数（这正是笔记说的 ReAct 缺点「API 参数只能有一个」）。"
                      "本课程的 ReAct 模板让 Action Input 写成 JSON 对象，请把 4 个参数都写进去。")
    obs = tools.call(call)
    if not obs.ok:
        return failed(f"工具拒绝了这次调用：{obs.text}")
    for key, value in gold.args.items():
        if _norm(key, call.args.get(key)) != _norm(key, value):
            return failed(KEY_HINTS.get(key, f"参数 {key} 的值不对。"), arg=key)
    return passed(f"解析器读出了 {call.name}({json.dumps(call.args, ensure_ascii=False)})，工具返回：{obs.text}")
