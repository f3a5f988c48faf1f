"""Checkers of notebook 06 (evaluation)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkit.exercises import Feedback, exercise, failed, passed, run_student

# The course note's "自动测试结果示例" (§3.4.1): Planning, Tool-use, Reflection, Concluding, Profile, Overall.
NOTE_TABLE: dict[str, tuple[float, float, float, float, float, float]] = {
    "GPT-3.5-turbo": (18.55, 26.26, 8.06, 37.26, 35.42, 25.63),
    "Qwen-7B": (13.34, 18.00, 7.91, 36.24, 34.99, 21.17),
    "Qwen2-7B": (20.11, 29.03, 21.01, 40.36, 42.06, 29.57),
    "Baichuan2-13B": (6.70, 16.10, 6.76, 24.97, 19.08, 14.89),
    "Qwen-MAT-7B": (31.64, 43.30, 33.34, 44.85, 44.78, 39.85),
    "Baichuan2-MAT-13B": (37.27, 52.97, 37.00, 48.01, 41.83, 45.34),
}
ABILITIES = ("Planning", "Tool-use", "Reflection", "Concluding", "Profile")


def note_rows() -> list[dict[str, Any]]:
    """The note's table as dicts ``{"model", "Planning", ..., "Profile"}`` (Overall left out: that is the task)."""
    return [{"model": m, **dict(zip(ABILITIES, v[:5]))} for m, v in NOTE_TABLE.items()]


def _weighted(row: dict[str, float], weights: Sequence[float]) -> float:
    return sum(w * row[a] for w, a in zip(weights, ABILITIES))


@exercise("06.1", title="从笔记的结果表重算 Overall", note_section="§3.4.1 自动评估：自动测试结果示例（Overall Score）")
def overall(answer: Any) -> Feedback:
    rows = note_rows()
    for row in rows:
        got = run_student(answer, dict(row))
        want = NOTE_TABLE[row["model"]][5]
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return failed(f"overall(row) 应返回一个数，{row['model']} 这一行返回了 {got!r}。")
        if abs(got - want) <= 0.006:
            continue
        if abs(got - sum(row[a] for a in ABILITIES) / 5) < 0.006:
            return failed(f"{row['model']}：你算的是五项的简单平均（{got:.2f}），笔记的 Overall 是 {want}。"
                          "各能力的权重不同——哪一项最重要？（提示：Tool-use 权重最大）")
        if abs(got - 100 * want) < 0.6 or abs(got - want / 100) < 0.0001:
            return failed("单位不对：表里的分数已经是百分制，Overall 也是百分制，不要再乘或除 100。")
        swapped = _weighted(row, (0.35, 0.25, 0.10, 0.20, 0.10))
        if abs(got - swapped) < 0.006:
            return failed("Planning 和 Tool-use 的权重弄反了：Tool-use 是 0.35，Planning 是 0.25。")
        return failed(f"{row['model']}：你的函数返回 {got:.2f}，笔记是 {want}。Overall 是五项能力的加权和，"
                      "权重之和为 1；KAgentBench 的权重：Planning 0.25、Tool-use 0.35、Reflection 0.10、"
                      "Concluding 0.20、Profile 0.10（试着用表里任意两行验证）。", model=row["model"])
    return passed("6 行全部复现（误差在四舍五入之内）：Overall = 0.25·Planning + 0.35·Tool-use + 0.10·Reflection "
                  "+ 0.20·Concluding + 0.10·Profile。MAT 模型的提升主要来自权重最大的 Tool-use 和 Planning。")


# Two annotators' scores for the same 12 traces (0..5, the note's rubric); fixed so the answer is checkable.
SCORES_A = (5, 4, 4, 3, 5, 2, 0, 4, 5, 3, 1, 4)
SCORES_B = (5, 4, 3, 3, 4, 2, 1, 5, 4, 4, 1, 3)


@exercise("06.3", title="人工评估：可用率与标注一致性 κ", note_section="§3.4.2 人工评估（评分标准、4 分和 5 分算可用）")
def human_eval(answer: Any) -> Feedback:
    from labkit.evaluate.human import USABLE_MIN, cohen_kappa

    if not isinstance(answer, dict) or not {"usable_rate_a", "kappa_usable"} <= set(answer):
        return failed("答案应是 dict：{\"usable_rate_a\": 标注员 A 的可用率（0–1）, "
                      "\"kappa_usable\": A、B 在“可用 / 不可用”上的 Cohen's κ}。")
    rate = sum(s >= USABLE_MIN for s in SCORES_A) / len(SCORES_A)
    ua, ub = [s >= USABLE_MIN for s in SCORES_A], [s >= USABLE_MIN for s in SCORES_B]
    kappa = cohen_kappa(ua, ub)
    r, k = answer["usable_rate_a"], answer["kappa_usable"]
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (r, k)):
        return failed("两个值都应是数。")
    if abs(r - 100 * rate) < 0.01:
        return failed("可用率写成比例（0–1），不是百分数。")
    if abs(r - sum(s >= 3 for s in SCORES_A) / len(SCORES_A)) < 1e-6 and abs(r - rate) > 1e-6:
        return failed("3 分不算可用：笔记说“得分为 4 分或 5 分的回答被认为是可用的”。")
    if abs(r - sum(s == 5 for s in SCORES_A) / len(SCORES_A)) < 1e-6:
        return failed("4 分也算可用（小有出入，核心信息准确），不只 5 分。")
    if abs(r - rate) > 1e-6:
        return failed(f"可用率 = 可用（≥ 4 分）条数 ÷ 总条数；你的 {r:g} 不对。")
    p_o = sum(x == y for x, y in zip(ua, ub)) / len(ua)
    if abs(k - p_o) < 1e-6:
        return failed(f"{k:.3f} 是原始一致率 p_o：κ 还要扣掉偶然一致的概率 p_e，κ = (p_o − p_e) / (1 − p_e)。")
    if abs(k - cohen_kappa(list(SCORES_A), list(SCORES_B))) < 1e-6:
        return failed("这是在 0–5 分原始分数上算的 κ；题目要的是“可用 / 不可用”两类上的 κ（先按 ≥ 4 转成是/否）。")
    if abs(k - kappa) > 1e-3:
        return failed("κ = (p_o − p_e) / (1 − p_e)，p_o 是两人一致的比例，p_e = Σ_类别 A 选该类的比例 × B 选该类的比例。")
    return passed(f"可用率 {rate:.1%}，κ = {kappa:.3f}。κ 在 0.4–0.6 之间只算“中等”一致：标准或培训还需要改进——"
                  "这就是笔记说人工评估的难点在于标准的制定和对评估人员的培训。")


def load_mix_results(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@exercise("06.2", title="读两次训练的数字：5 : 1 配比的作用", note_section="§3.2 注意：避免灾难性遗忘，Agent 5 : 通用 1")
def mix_effect(answer: Any, *, results: dict[str, Any]) -> Feedback:
    rows = results["results"]
    base, agent, mixed = (rows[k]["general_heldout"]["loss"] for k in
                          ("base (no training)", "agent only", "agent : general = 5 : 1"))
    if not isinstance(answer, dict) or not {"forgets_more", "general_loss_change_agent_only"} <= set(answer):
        return failed("答案应是 dict：{\"forgets_more\": 'agent only' 或 'mix'（哪次训练后通用能力下降更多）, "
                      "\"general_loss_change_agent_only\": 只用 Agent 数据训练后，通用留出集 loss 相对基座模型的变化}。")
    change = round(agent - base, 4)
    got = answer["general_loss_change_agent_only"]
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return failed("general_loss_change_agent_only 是一个数（训练后 − 训练前）。")
    if abs(got + change) < 1e-3 and abs(change) > 1e-3:
        return failed("符号反了：变化 = 训练后的 loss − 基座模型的 loss；loss 变大（正数）说明通用能力变差。")
    if abs(got - change) > 1e-3:
        return failed(f"用表中 general_heldout 一列：只用 Agent 数据训练后的 loss 减去 base 的 loss。你的 {got:g} 不对。")
    more = "agent only" if agent > mixed else "mix"
    pick = str(answer["forgets_more"]).strip().lower()
    if pick not in ("agent only", "mix"):
        return failed("forgets_more 只能是 'agent only' 或 'mix'。")
    if pick != more:
        return failed("比较两次训练后通用留出集的 loss：loss 越高，说明通用问答的能力丢得越多。")
    return passed(f"对：只用 Agent 数据，通用 loss 从 {base:.3f} 变为 {agent:.3f}（{change:+.3f}）；5 : 1 混合后是 {mixed:.3f}。"
                  "混入通用数据，正是为了让这个数不要剧烈上升。")
