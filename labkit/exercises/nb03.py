"""Checkers of notebook 03 (training-data construction)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.exercises import Feedback, exercise, failed, passed
from labkit.records import LabelledRecord, Query
from labkit.types import ToolCallDict

if TYPE_CHECKING:
    from labkit.data.filters import Verdict

FINISH = "task_complete"


@exercise("03.1", title="手工构建一条训练样本，与流水线的一致",
          note_section="§3.2 【重点】Fine Tuning 的本质（Input → Output）与训练数据构建的第 2、3 步")
def hand_built_sample(answer: Any, *, record: LabelledRecord, step: int) -> Feedback:
    from labkit.data.samples import step_samples

    steps = record["trace"]["steps"]
    expected = step_samples(record)[step]["messages"]
    if not isinstance(answer, dict) or not isinstance(answer.get("messages"), list):
        return failed("答案应是一个 dict，至少有 \"messages\" 键：{\"messages\": [{\"role\", \"content\", \"loss\"}, ...]}。")
    msgs = answer["messages"]
    if len(msgs) != 2:
        return failed(f"messages 有 {len(msgs)} 条：一条样本只有 2 条消息——这一步的 prompt（user）和这一步的输出（assistant）。"
                      "多步轨迹的每一步单独成一条样本（KAgentInstruct 的做法），不要把多步拼在一起。")
    if not all(isinstance(m, dict) for m in msgs) or [m.get("role") for m in msgs] != ["user", "assistant"]:
        return failed("两条消息的 role 依次是 \"user\"（输入：agent prompt）和 \"assistant\"（输出：老师的回答）。")
    user, assistant = msgs
    prompts = [s["prompt"] for s in steps]
    outputs = [s["output"] for s in steps]
    if user.get("content") != expected[0]["content"]:
        if user.get("content") == record["query"]:
            return failed("user 的内容不是用户的原始问题，而是模板渲染后的**完整 agent prompt**（§3.2 第 2 步：query 与 prompt 模板结合）。")
        if user.get("content") in prompts:
            return failed(f"这是第 {prompts.index(user.get('content'))} 步的 prompt；题目要的是第 {step} 步。")
        return failed(f"user 的内容应与轨迹第 {step} 步的 prompt 一字不差（record['trace']['steps'][{step}]['prompt']）。")
    if assistant.get("content") != expected[1]["content"]:
        content = str(assistant.get("content"))
        obs = steps[step].get("observation")
        if obs and obs in content:
            return failed("assistant 的内容里混进了 Observation：工具结果是工具给的，不是模型要学着写的输出。")
        if content in outputs:
            return failed(f"这是第 {outputs.index(content)} 步的输出；要与 prompt 属于同一步（第 {step} 步）。")
        return failed(f"assistant 的内容应与第 {step} 步老师的输出一字不差（steps[{step}]['output']）。")
    if user.get("loss") is not False:
        return failed("prompt 不参与 loss：user 消息要写 \"loss\": False。SFT 是“给定 Input，让 Output' 接近标准 Output”，"
                      "被监督的只有输出（§3.2【重点】）。")
    if assistant.get("loss") is not True:
        return failed("assistant 消息要写 \"loss\": True：训练数据中的 Output 就是用来“监督”参数调整方向的。")
    return passed("和流水线 step_samples(record) 生成的样本完全一致：Input = 完整 agent prompt，Output = 老师这一步的输出，"
                  "只有 Output 计算 loss。")


def _calls(record: LabelledRecord) -> list[ToolCallDict]:
    from labkit.agent import Trace

    return [c for c in Trace.from_dict(record["trace"]).calls if c["name"] != FINISH]


def _gold(query: Query) -> list[ToolCallDict]:
    return [c for c in query["gold_calls"] if c["name"] != FINISH]


def missed_by_filters(records: Sequence[LabelledRecord], verdicts: Sequence[Verdict],
                      queries: dict[str, Query]) -> list[str]:
    """Job ids that passed every filter although their calls differ from the gold annotation."""
    return [r["job_id"] for r, v in zip(records, verdicts) if v.accepted and _calls(r) != _gold(queries[r["query_id"]])]


@exercise("03.2", title="找出过滤规则漏掉的错参数轨迹，并在审核中拒绝",
          note_section="§3.2 【重点】训练数据构建第 4 步（人工修正或筛选）与 §4.3 数据质量（准确性）")
def filters_miss(answer: Any, *, records: Sequence[LabelledRecord], verdicts: Sequence[Verdict],
                 queries: dict[str, Query], decisions: str | Path) -> Feedback:
    from labkit.data.review import load_decisions

    if isinstance(answer, str):
        answer = [answer]
    if not isinstance(answer, (list, tuple, set)) or not all(isinstance(a, str) for a in answer):
        return failed("答案应是 job_id 字符串组成的列表（例如 ['calc-en-001::react@1a2b3c4d5e', ...]）。")
    by_job = {r["job_id"]: (r, v) for r, v in zip(records, verdicts)}
    unknown = [a for a in answer if a not in by_job]
    if unknown:
        return failed(f"不认识的 job_id：{unknown[:3]}。job_id 的形式是 \"<query id>::<模板名>@<老师哈希>\"，见 records[i]['job_id']。")
    rejected = [a for a in answer if not by_job[a][1].accepted]
    if rejected:
        codes = by_job[rejected[0]][1].codes
        return failed(f"{rejected[0]} 已经被过滤规则拒绝了（{', '.join(codes)}）：要找的是**通过了**全部过滤、却仍然有错的轨迹。")
    clean = [a for a in answer if _calls(by_job[a][0]) == _gold(queries[by_job[a][0]["query_id"]])]
    if clean:
        return failed(f"{clean[0]} 的工具调用与金标注完全一致（工具名和参数都对），它没有错。")
    want = set(missed_by_filters(records, verdicts, queries))
    missing = want - set(answer)
    if missing:
        return failed(f"找到了 {len(set(answer))} 条，还漏了 {len(missing)} 条。逐条比较已通过轨迹的调用与金标注：不只比较工具名，"
                      "还要比较**参数值**；比较前去掉 task_complete。")
    saved = load_decisions(decisions)
    edited = [j for j in sorted(want) if saved.get(j, {}).get("decision") == "edit"]
    if edited:
        return failed(f"{edited[0]} 被你“修改”了：只改这一步的输出不够——后面各步 prompt 的 Completed tasks 里仍是错误参数查到的结果，"
                      "总结也建立在它上面。这种轨迹应该拒绝（或让老师重新标注）。")
    todo = [j for j in sorted(want) if saved.get(j, {}).get("decision") != "reject"]
    if todo:
        return failed(f"找对了！最后一步：在审核中拒绝它们（还差 {len(todo)} 条）——record_decision(decisions, job_id, \"reject\", "
                      "note=...) 或在审核控件里点「拒绝」。这个决定写进 decisions.jsonl，build_dataset 会应用它。")
    if not want:
        return passed("这次老师的错误全部被过滤规则拦下，没有漏网之鱼（空列表是对的）。")
    return passed(f"{len(want)} 条“格式完全正确、工具也对、结论也有据，但参数值错了”的轨迹被找出并拒绝。"
                  "过滤规则只能检查形式，参数值对不对要对照意图——这就是笔记要求人工修正或筛选的原因。")


PREDICTIONS = {"A": "通用能力基本保持", "B": "通用能力明显下降（灾难性遗忘）", "C": "Agent 能力明显下降"}


@exercise("03.3", title="选择配比，算出要重复多少通用样本，并预测它的作用",
          note_section="§3.2 注意：避免灾难性遗忘，Agent 5 : 通用 1")
def mix_ratio(answer: Any, *, n_agent: int, n_pool: int) -> Feedback:
    keys = {"ratio", "n_general", "n_repeats", "without_general"}
    if not isinstance(answer, dict) or not keys <= set(answer):
        return failed("答案应是 dict：{\"ratio\": Agent:通用 的比值, \"n_general\": 要混入的通用样本数, "
                      "\"n_repeats\": 其中有多少条是重复使用的, \"without_general\": 'A' / 'B' / 'C'（你的预测）}。")
    ratio = answer["ratio"]
    if not isinstance(ratio, (int, float)) or isinstance(ratio, bool):
        return failed("ratio 是一个数：Agent 样本数 ÷ 通用样本数。")
    if abs(ratio - 0.2) < 1e-9:
        return failed("ratio 写反了：mix() 的 ratio 是 Agent : 通用，笔记的经验值是 Agent 5 : 通用 1。")
    if abs(ratio - 5) > 1e-9:
        return failed(f"笔记给的经验配比是 Agent 5 : 通用 1，ratio={ratio} 不是它。")
    want = round(n_agent / 5)
    n = answer["n_general"]
    if n == n_agent * 5:
        return failed(f"{n_agent} 条 Agent 样本按 5 : 1 需要的通用样本是它的五分之一，不是五倍。")
    if n != want:
        return failed(f"{n_agent} ÷ 5 = {n_agent / 5:g}，mix() 四舍五入取整，应混入 {want} 条（你写的是 {n}）。")
    repeats = max(0, want - n_pool)
    got = answer["n_repeats"]
    if got != repeats:
        if repeats and got == 0:
            return failed(f"通用池里只有 {n_pool} 条不重复的样本，却要混入 {want} 条：不够的部分 mix() 会**重复使用**池里的"
                          "样本（新 id 带 -repK 后缀）。重复了多少条？")
        if not repeats and got:
            return failed(f"通用池有 {n_pool} 条，够混入 {want} 条，不需要重复任何样本。")
        return failed(f"重复的条数 = 要混入的条数 − 池里不重复的条数（不够时）。你的 {got!r} 不对。")
    pred = str(answer["without_general"]).strip().upper()[:1]
    if pred not in PREDICTIONS:
        return failed("without_general 只能是 'A'、'B' 或 'C'。")
    reuse = (f"其中 {repeats} 条是重复的（池里只有 {n_pool} 条不重复的通用样本，平均每条用 {want / n_pool:.1f} 次）"
             if repeats else f"通用池有 {n_pool} 条，不需要重复")
    return passed(f"ratio=5、混入 {want} 条通用样本，{reuse}。你的预测是 {pred}（{PREDICTIONS[pred]}）——这是预测，"
                  "不评对错：笔记说不混通用数据会灾难性遗忘，实验 06 会拿两次实测的训练（只用 Agent 数据 vs 5 : 1）"
                  "对照你的预测。记住重复这件事：通用样本少而重复多时，模型见到的“通用能力”其实只有这几百条。",
                  prediction=pred)
