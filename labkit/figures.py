"""The course note's two diagrams, drawn with matplotlib: §1.2 the agent technical framework and §1.4 the Agent
Tuning R&D flow. Each box names the labkit module or notebook that implements it.

``python -m labkit.figures DIR`` writes ``agent_framework.png`` and ``rd_flow.png`` (the course map embeds them).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from labkit.plotting import use_cjk_font

# (name, x, y, colour, lines): box centre in axis units (0..10 x 0..6)
FRAMEWORK_BOXES = [
    ("agent", 5.0, 3.0, "#fde9c9", ["Agent 核心：大模型 LLM", "读 prompt（说明书）→ 决定下一步", "labkit.llm"]),
    ("planning", 1.7, 4.9, "#dbe9f6", ["规划 Planning", "任务拆解 · 反思 · 最多 5 步", "模板-1 · labkit.agent.run_plan"]),
    ("memory", 1.7, 1.1, "#e2f0d9", ["记忆 Memory", "Completed tasks · 对话历史 · Knowledge", "模板-1 的 Memory 段"]),
    ("tools", 8.3, 4.9, "#ead7f0", ["工具 Tools", "搜索 · 百科 · 天气 · 日历 · 计算器 · 汇率", "labkit.tools（沙盒世界）"]),
    ("action", 8.3, 1.1, "#f6d5d5", ["行动 Action", "调用工具 → Observation 写回记忆", "ToolRegistry.call"]),
    ("answer", 5.0, -0.55, "#eeeeee", ["总结 Conclusion：模板-2 → 最终答案"]),
]
FRAMEWORK_ARROWS = [("agent", "planning"), ("agent", "memory"), ("agent", "tools"), ("tools", "action"),
                    ("action", "memory"), ("memory", "agent"), ("agent", "answer")]

RD_STEPS = [
    ("收集 query", "覆盖各种业务场景", "03 §1"),
    ("设计 Agent Prompt 模板", "Profile/Instruction/Tools/\nGoal/Memory/Format", "01 · 02 · 04"),
    ("query × 工具 × 模板\n→ agent prompt（输入）", "多样性 §4.1", "03 §3"),
    ("GPT-4 级老师生成输出", "降本提效（此处：模拟器）", "03 §4"),
    ("过滤 + 人工修正/筛选", "数据质量越高效果越好", "03 §6–8"),
    ("清洗 · 匿名化 · 切分\n混入通用数据 5 : 1", "防止灾难性遗忘", "03 §9–11"),
    ("全参数 SFT", "HF Trainer + DeepSpeed ZeRO-3\n训练成本表", "05"),
    ("自动评估 + 人工评估", "KAgentBench 五个维度\n可用率 · κ", "06"),
]


def _box(ax: Any, x: float, y: float, lines: list[str], colour: str, width: float, height: float,
         title_size: float = 11) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.08",
                                facecolor=colour, edgecolor="#555555", linewidth=1.2))
    ax.text(x, y + (0.22 if len(lines) > 1 else 0), lines[0], ha="center", va="center", fontsize=title_size,
            weight="bold")
    if len(lines) > 1:
        ax.text(x, y - 0.25, "\n".join(lines[1:]), ha="center", va="center", fontsize=8.5, color="#333333")


def agent_framework(ax: Any = None) -> Any:
    """§1.2 大模型 Agent 的技术框架: the LLM core with planning, memory, tools and action around it."""
    import matplotlib.pyplot as plt

    use_cjk_font()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(10, 6.6))
    ax.set_xlim(-0.2, 10.2)
    ax.set_ylim(-1.0, 6.1)
    ax.axis("off")
    pos = {name: (x, y) for name, x, y, _, _ in FRAMEWORK_BOXES}
    sizes = {"agent": (3.4, 1.3), "answer": (4.2, 0.55)}
    for name, x, y, colour, lines in FRAMEWORK_BOXES:
        _box(ax, x, y, lines, colour, *sizes.get(name, (3.0, 1.25)))
    for a, b in FRAMEWORK_ARROWS:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        ax.annotate("", xy=(x0 + 0.72 * (x1 - x0), y0 + 0.72 * (y1 - y0)),
                    xytext=(x0 + 0.28 * (x1 - x0), y0 + 0.28 * (y1 - y0)),
                    arrowprops={"arrowstyle": "-|>", "color": "#444444", "lw": 1.4})
    ax.set_title("§1.2 大模型 Agent 的技术框架：会说话，更要会做事", fontsize=13)
    return fig


def rd_flow(ax: Any = None) -> Any:
    """§1.4 Agent Tuning 的研发流程 as a left-to-right, two-row flow; each box names the notebook that does it."""
    import matplotlib.pyplot as plt

    use_cjk_font()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(12, 4.6))
    ax.set_xlim(-0.5, 12)
    ax.set_ylim(-0.2, 4.6)
    ax.axis("off")
    per_row, w, h = 4, 2.5, 1.45
    centres = []
    for i, (title, note, where) in enumerate(RD_STEPS):
        row, col = divmod(i, per_row)
        x = 1.5 + col * 3.0 if row == 0 else 1.5 + (per_row - 1 - col) * 3.0  # snake: row 2 runs right to left
        y = 3.4 if row == 0 else 1.1
        centres.append((x, y))
        _box(ax, x, y, [title, note], "#dbe9f6" if row == 0 else "#e2f0d9", w, h, title_size=9.5)
        ax.text(x + w / 2 - 0.05, y + h / 2 - 0.05, f"实验 {where}", ha="right", va="top", fontsize=7.5,
                color="#8a3b12")
    for (x0, y0), (x1, y1) in zip(centres, centres[1:]):
        if y0 == y1:
            sx = w / 2 + 0.08 if x1 > x0 else -(w / 2 + 0.08)
            ax.annotate("", xy=(x1 - sx, y1), xytext=(x0 + sx, y0),
                        arrowprops={"arrowstyle": "-|>", "color": "#444444", "lw": 1.4})
        else:
            ax.annotate("", xy=(x1, y1 + h / 2 + 0.08), xytext=(x0, y0 - h / 2 - 0.08),
                        arrowprops={"arrowstyle": "-|>", "color": "#444444", "lw": 1.4})
    x_last, y_last = centres[-1]
    x_first, y_first = centres[0]
    ax.annotate("", xy=(x_first - w / 2 - 0.05, y_first), xytext=(x_last - w / 2 - 0.05, y_last),
                arrowprops={"arrowstyle": "-|>", "color": "#999999", "lw": 1.2, "ls": "--",
                            "connectionstyle": "arc3,rad=-0.5"})
    ax.text(x_last - w / 2, y_last - h / 2 - 0.25, "↺ 评估发现的问题 → 补充 query / 改模板 / 修数据，再训练（迭代）",
            fontsize=8.5, color="#555555", ha="left", va="center")
    ax.set_title("§1.4 Agent Tuning 的研发流程（框中右上角：本课程做这一步的实验）", fontsize=12)
    return fig


def save_all(out_dir: str | Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in (("agent_framework", agent_framework), ("rd_flow", rd_flow)):
        fig = draw()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in save_all(sys.argv[1] if len(sys.argv) > 1 else "notebooks/figures"):
        print(p)
