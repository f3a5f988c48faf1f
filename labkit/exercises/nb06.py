"""Checkers of notebook 06 (evaluation)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NotRequired, TypedDict

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
# One row of such a table, as exercise 06.1's solve_weights(rows) gets it.
ScoreRow = TypedDict("ScoreRow", {"model": str, "Planning": float, "Tool-use": float, "Reflection": float,
                                  "Concluding": float, "Profile": float, "Overall": NotRequired[float]})


def _row(model: str, scores: Sequence[float], overall: float | None = None) -> ScoreRow:
    """``scores`` in :data:`ABILITIES` order."""
    row: ScoreRow = {"model": model, "Planning": scores[0], "Tool-use": scores[1], "Reflection": scores[2],
                     "Concluding": scores[3], "Profile": scores[4]}
    if overall is not None:
        row["Overall"] = overall
    return row


def note_rows(*, with_overall: bool = False) -> list[ScoreRow]:
    """The note's table as rows (``"Overall"`` only when asked)."""
    return [_row(m, v, v[5] if with_overall else None) for m, v in NOTE_TABLE.items()]


# A table like the note's but scored with other weights (a made-up benchmark): a function that *solves* for the
# weights recovers these; one that returns the note's weights from memory does not.
OTHER_WEIGHTS = (0.10, 0.30, 0.20, 0.15, 0.25)


def other_rows(n: int = 8, seed: int = 7) -> list[ScoreRow]:
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        scores = [round(rng.uniform(5, 60), 2) for _ in ABILITIES]
        rows.append(_row(f"model-{i}", scores, round(sum(w * x for w, x in zip(OTHER_WEIGHTS, scores)), 2)))
    return rows


WEIGHT_TOLERANCE = 0.01


@exercise("06.1", title="从结果表解出 Overall 的权重", note_section="§3.4.1 自动评估：自动测试结果示例（Overall Score）")
def overall(answer: Any) -> Feedback:
    from labkit.evaluate.scorer import WEIGHTS

    got = {}
    for label, rows, want in (("笔记的表", note_rows(with_overall=True), [WEIGHTS[a] for a in ABILITIES]),
                              ("另一张表（权重不同）", other_rows(), list(OTHER_WEIGHTS))):
        weights = run_student(answer, [dict(r) for r in rows])
        if not isinstance(weights, Mapping) or set(ABILITIES) - set(weights):
            return failed(f"solve_weights(rows) 应返回 dict：五项能力名 → 权重，缺了 {sorted(set(ABILITIES) - set(weights or {}))}"
                          if isinstance(weights, Mapping) else
                          f"solve_weights(rows) 应返回 dict（五项能力名 → 权重），你返回了 {type(weights).__name__}。")
        try:
            values = [float(weights[a]) for a in ABILITIES]
        except (TypeError, ValueError):
            return failed("权重应是数。")
        if label != "笔记的表" and all(abs(v - g) < 1e-9 for v, g in zip(values, got["笔记的表"])):
            return failed("你的函数对另一张表返回了和笔记那张表一模一样的权重：它是把权重写死（抄来）的，不是从数据里解出来的。"
                          "Overall 是五项的加权和：每一行给出一个方程，六行（或更多）就能解出五个权重（最小二乘）。")
        if all(abs(v - 100 * w) < 100 * WEIGHT_TOLERANCE for v, w in zip(values, want)):
            return failed("权重写成了百分数：五个权重之和应为 1。")
        if abs(sum(values) - 1) > 0.05 and not all(abs(v - w) <= WEIGHT_TOLERANCE for v, w in zip(values, want)):
            return failed(f"在{label}上，你的五个权重之和是 {sum(values):.3f}，不是 1；而且解不出表里的 Overall。"
                          "把每一行写成 Overall = Σ 权重 × 能力，用 numpy.linalg.lstsq 解这个线性方程组。")
        off = [(a, v, w) for a, v, w in zip(ABILITIES, values, want) if abs(v - w) > WEIGHT_TOLERANCE]
        if off:
            a, v, w = off[0]
            return failed(f"在{label}上，{a} 的权重 {v:.3f} 偏了（误差应在 ±{WEIGHT_TOLERANCE} 内，表里的分数只保留两位小数）。"
                          "检查一下：是不是只用了几行、把能力和权重的顺序对错了，或者没有用 Overall 列做方程右边？", ability=a)
        got[label] = values
    w = dict(zip(ABILITIES, got["笔记的表"]))
    return passed("两张表都解对了。笔记的表：" + "、".join(f"{a} {v:.2f}" for a, v in w.items()) +
                  "——Overall = 0.25·Planning + 0.35·Tool-use + 0.10·Reflection + 0.20·Concluding + 0.10·Profile，"
                  "权重最大的是 Tool-use。MAT 模型的提升主要来自权重最大的 Tool-use 和 Planning。")


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


class HeldoutLoss(TypedDict):
    """:func:`labkit.train.checks.heldout_loss` of one model on one held-out sample set."""

    samples: int
    tokens: int
    loss: float                      # mean cross-entropy per supervised token
    perplexity: float


class _MixRunFields(TypedDict):
    model: str
    general_heldout: HeldoutLoss
    agent_heldout: HeldoutLoss


class MixRun(_MixRunFields, total=False):
    """One model of the comparison; the trained ones also say how they were trained."""

    train_samples: int
    steps: int
    train_seconds: float
    final_loss: float


class MixReport(TypedDict):
    """``bench/results/mix_forgetting.json`` (written by ``bench/mix_forgetting.py``)."""

    command: str
    measured: str
    machine: str
    lr: float
    steps: int
    base_model: str
    mix: dict[str, float | None]     # the data stage's mixing counts (the info of labkit.data.mix.mix)
    general_heldout_samples: int
    agent_heldout_samples: int
    results: dict[str, MixRun]       # "base (no training)", "agent only", "agent : general = 5 : 1"


def load_mix_results(path: str | Path) -> MixReport:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@exercise("06.2", title="读两次训练的数字：5 : 1 配比测出了什么", note_section="§3.2 注意：避免灾难性遗忘，Agent 5 : 通用 1")
def mix_effect(answer: Any, *, results: MixReport) -> Feedback:
    rows = results["results"]
    base, agent, mixed = (rows[k]["general_heldout"]["loss"] for k in
                          ("base (no training)", "agent only", "agent : general = 5 : 1"))
    agent_a, mixed_a = (rows[k]["agent_heldout"]["loss"] for k in ("agent only", "agent : general = 5 : 1"))
    keys = {"general_change", "forgetting", "agent_cost_of_mix"}
    if not isinstance(answer, dict) or not keys <= set(answer):
        return failed("答案应是 dict：{\"general_change\": {\"agent only\": 数, \"mix\": 数}（训练后 − 基座的通用留出 loss）, "
                      "\"forgetting\": True/False（有没有哪次训练让通用留出 loss 比基座**更高**）, "
                      "\"agent_cost_of_mix\": 数（混合训练的 Agent 留出 loss 比只用 Agent 数据的高多少）}。")
    change = answer["general_change"]
    want = {"agent only": agent - base, "mix": mixed - base}
    if not isinstance(change, Mapping) or set(want) - set(change):
        return failed("general_change 是一个 dict，两个键：\"agent only\" 和 \"mix\"。")
    for key, value in want.items():
        got = change[key]
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return failed(f"general_change[{key!r}] 应是一个数。")
        if abs(got + value) < 1e-3 and abs(value) > 1e-3:
            return failed("符号反了：变化 = 训练后的 loss − 基座模型的 loss；loss 变小（负数）说明通用问答变好了。")
        if abs(got - value) > 1e-3:
            return failed(f"general_change[{key!r}]：用表中 general_heldout 一列，训练后的 loss 减去 base 的 loss。"
                          f"你的 {got:g} 不对。")
    forgot = agent > base or mixed > base
    if not isinstance(answer["forgetting"], bool):
        return failed("forgetting 是 True 或 False。")
    if answer["forgetting"] != forgot:
        if not forgot:
            return failed("看你自己算出的两个变化：都是负数，两次训练后通用留出 loss 都**低于**基座模型——遗忘是 loss 比训练前"
                          "更高。“只用 Agent 数据就会灾难性遗忘”是预期，不是这份数据测到的。")
        return failed("有一次训练后通用留出 loss 比基座模型更高：那就是测到了遗忘。")
    cost = answer["agent_cost_of_mix"]
    if not isinstance(cost, (int, float)) or isinstance(cost, bool) or abs(cost - (mixed_a - agent_a)) > 1e-3:
        return failed("agent_cost_of_mix = 混合训练的 agent_heldout loss − 只用 Agent 数据训练的 agent_heldout loss。")
    better = "混合训练" if mixed < agent else "只用 Agent 数据的训练"
    story = ("两次训练都没有测到遗忘（通用 loss 都比基座低）" if not forgot else "测到了遗忘（有一次通用 loss 比基座高）")
    return passed(f"对。通用留出 loss：基座 {base:.3f} → 只用 Agent {agent:.3f}（{agent - base:+.3f}）、5 : 1 混合 {mixed:.3f}"
                  f"（{mixed - base:+.3f}）；{story}，通用能力更好的是{better}。代价：混合训练的 Agent 留出 loss 高 "
                  f"{mixed_a - agent_a:.3f}。对照你在练习 03.3 的预测：数据说的是什么，就记下什么。")
