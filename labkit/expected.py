""""What you should see": the measured course-run figures, shown in every notebook before the student waits.

One JSON of measured numbers (``notebooks/expected/course_run.json``: date, machine, command, the figures) is the
single source. ``python -m labkit.expected`` renders it into

* the marked markdown blocks of the notebooks — lines between ``<!-- expected: KEY -->`` and ``<!-- /expected -->``
  in ``notebooks/NN_name.py`` (the paired ``.ipynb`` is regenerated with jupytext), so a student reading ahead sees
  the numbers and how long each long cell took on the reference CPU without running anything;
* the images those blocks show (``notebooks/expected/*.png``), with ``figures.json`` recording which data each image
  was drawn from.

``python -m labkit.expected --check`` exits 1 while a block or an image is stale (tests/test_expected.py runs it),
so after a new course run the lead edits the JSON, runs the command, and commits.

The JSON's shape is :class:`CourseRun` (one ``TypedDict`` per section, below); :func:`load` checks every figure is
there, so a block or an image never meets a missing key.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict, get_type_hints, is_typeddict

from labkit.errors import DataFileError
from labkit.paths import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"
EXPECTED = NOTEBOOKS / "expected"
SOURCE = EXPECTED / "course_run.json"
BLOCK = re.compile(r"^# <!-- expected: (?P<key>[\w.]+) -->\n(?P<body>.*?)^# <!-- /expected -->$", re.M | re.S)


# ---------------------------------------------------------------- the figures (course_run.json, one type per section)

class Smoke(TypedDict):
    """Smoke-mode timings: measured on their own date and machine, so they carry both."""

    measured: str
    machine: str
    seconds: dict[str, float]        # notebook number ("01") -> the whole notebook in smoke mode


class Tokens(TypedDict):
    mean: float
    p50: float
    p95: float
    max: int


class Lab03(TypedDict):
    seconds: float
    agent_samples: int
    general_samples: int
    actual_ratio: float              # agent : general
    general_pool: int                # distinct general samples left after the held-out test set
    train_templates: int
    test_templates: int
    tokens: Tokens                   # per sample
    train_queries: int
    test_queries: int
    leaks: int


# a JSON array: [training arm, test templates, queries, format valid % (null: n/a), tool name right %, step score [CI]]
DiversityRow = tuple[str, str, int, float | None, float | None, str]


class DiversityTable(TypedDict):
    """Notebook 04's diversity table as measured: one row per template set (one set's own figures are
    :class:`labkit.meta.report.Diversity`)."""

    measured: str
    machine: str
    setting: str
    rows: list[DiversityRow]


class Rebuilt(TypedDict):
    """Meta-Agent Tuning: the training data notebook 04 rebuilds with its kept templates (what 05 trains on)."""

    seconds: float
    meta_templates: float            # the share of each query's template slots the kept templates label
    meta_jobs: int                   # labelling jobs on a kept template ...
    jobs: int                        # ... of all jobs
    meta_train_templates: int        # kept templates in the training data
    held_out_format_templates: int   # kept templates of the held-out format families: test only
    held_out_families: list[str]
    agent_samples: int
    general_samples: int


class Lab04(TypedDict):
    seconds: float                   # the whole notebook
    funnel_seconds: float
    queries: int
    clusters: int
    candidates: int
    kept: int
    rebuilt: Rebuilt
    diversity: DiversityTable


class Lab05(TypedDict):
    """One epoch of packed rows: every step trains one row of at most ``pack_tokens`` tokens (batch 1)."""

    steps: int
    samples: int
    tokens: int                      # the rows' tokens, a shared prompt prefix counted once
    pack_tokens: int
    shared_prefix_saving: float      # the fraction of the tokens sharing prefixes saves
    lr: float
    max_len: int
    dropped_too_long: int
    longest: int                     # tokens of the longest sample
    train_seconds: float             # the sum of s_per_step over train_log.jsonl
    oom_killed_at_step: int | None   # null: the run went straight through
    resumed_from: int | None         # the checkpoint step it went on from
    quiet_samples_per_min: float     # bench/bench_step.py's rate for this recipe on a quiet CPU of this kind


class Generation(TypedDict):
    """One model's answers in notebook 06's scoring cell."""

    generated: int                   # prompts the model answered in this run
    cached: int                      # prompts read from the answer cache (an earlier, interrupted run)
    seconds: float
    tokens_per_prompt: float         # new tokens per generated prompt


class HeldOutFormats(TypedDict):
    """The tuned model on output formats no training template uses: Planning / Tool-use / Reflection only."""

    templates: int
    records: int
    seconds: float                   # the cell (base and tuned model)
    tuned: list[float]               # Planning, Tool-use, Reflection
    tuned_mean: float                # their weighted mean ...
    tuned_mean_ci: tuple[float, float]
    seen_mean: float                 # ... and the same mean on the seen / unseen templates
    unseen_mean: float
    base_mean: float


class EndToEnd(TypedDict):
    queries: int
    base: int                        # queries the base model completed
    tuned: int


class FailureKinds(TypedDict):
    """The tuned model's planning answers by kind (the kinds of :data:`labkit.evaluate.failures.KINDS`, which add
    up to ``answers``) and where some of them fall."""

    answers: int
    right_tool: int
    unparsed: int                    # no tool can be read: the format broke
    unparsed_at_step_0: int
    unparsed_unseen_templates: int
    finished_early: int              # task_complete while a tool is still needed
    finished_early_after_step_0: int
    wrong_offered_tool: int
    tool_not_offered: int


CurvePoint = tuple[float, str, float]   # a JSON array: [train minutes, label, Overall]


class Curve(TypedDict):
    queries: int
    prompts_per_point: int           # generated for each snapshot between base and final (those two are cached)
    seconds: float                   # the cell
    points: list[CurvePoint]


class Lab06(TypedDict):
    seconds: float                   # the whole notebook, or the cells before the one it was stopped in
    stopped: str | None              # how and in which cell the run was stopped by hand; null: it ran to the end
    queries: int
    records: int
    prompts: int
    seen_prompts: int
    unseen_prompts: int
    generation_seconds: float        # the scoring cell
    base: Generation
    tuned: Generation
    scores: dict[str, list[str] | list[float]]   # "columns": the ability names; every other key: a model's scores
    overall_ci: dict[str, tuple[float, float]]    # model -> Overall's 95 % interval
    official_overall_tuned: float
    held_out_formats: HeldOutFormats
    end_to_end: EndToEnd
    failure_kinds: FailureKinds
    curve: Curve


# a JSON array: [label, samples seen, quiet-CPU minutes, Overall, its 95 % interval, Tool-use, end-to-end completed]
CeilingPoint = tuple[str, int, float, float, tuple[float, float], float, int]


class Ceiling(TypedDict):
    measured: str
    command: str
    machine: str
    queries: int
    agent_queries: int
    samples_per_epoch: int
    points: list[CeilingPoint]


CourseRun = TypedDict("CourseRun", {
    "about": str, "measured": str, "machine": str, "command": str, "settings": str, "sources": str,
    "smoke": Smoke, "03": Lab03, "04": Lab04, "05": Lab05, "06": Lab06, "ceiling": Ceiling,
})


def load(path: str | Path = SOURCE) -> CourseRun:
    """The measured figures; a missing figure (or one whose section is not an object) is a DataFileError naming
    it (``06.failure_kinds.right_tool``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataFileError(path, f"cannot read the measured figures: {exc}") from None
    for key in ("measured", "machine", "command"):
        if not isinstance(data, dict) or not data.get(key):
            raise DataFileError(path, "every measured figure needs its date, machine and command", field=key)
    _check_keys(data, CourseRun, path, "")
    _check_failure_kinds(data["06"]["failure_kinds"], path)
    return data


def _check_failure_kinds(f: FailureKinds, path: str | Path) -> None:
    """The kinds are every planning answer once: they add up to ``answers`` (the block and the chart show each)."""
    from labkit.evaluate.failures import KINDS

    total = sum(f[kind] for kind in KINDS)
    if total != f["answers"]:
        raise DataFileError(path, f"the kinds ({', '.join(KINDS)}) add up to {total}, not to answers = {f['answers']}",
                            field="06.failure_kinds")


def _check_keys(value: object, shape: type, path: str | Path, where: str) -> None:
    """Every key of the TypedDict ``shape`` is in ``value``, down through the nested sections."""
    if not isinstance(value, dict):
        raise DataFileError(path, f"expected an object, got {type(value).__name__}", field=where)
    for key, hint in get_type_hints(shape).items():
        name = f"{where}.{key}" if where else key
        if key not in value:
            raise DataFileError(path, "missing measured figure", field=name)
        if is_typeddict(hint):
            _check_keys(value[key], hint, path, name)


def _n(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,}"


def _minutes(seconds: float) -> str:
    return f"{seconds:,.0f} s（约 {seconds / 60:.0f} 分钟）" if seconds >= 120 else f"{seconds:,.0f} s"


def _stamp(d: CourseRun) -> str:
    """Date, machine, command and the settings of that run that differ from today's configs (``settings``, may be "")."""
    return f"{d['measured']}，{d['machine']}，`{d['command']}`" + (f"，{d['settings']}" if d["settings"] else "")


def _smoke(d: CourseRun, nb: str, model: str = "") -> str:
    s = d["smoke"]
    return f"smoke 模式{model}整本 {s['seconds'][nb]} s（{s['measured']}，{s['machine']}）"


# ---------------------------------------------------------------- blocks (key -> markdown lines)

def _quick(nb: str) -> Callable[[CourseRun], list[str]]:
    def render(d: CourseRun) -> list[str]:
        return [f"**你应该看到（实测）**：本实验没有要等很久的单元；{_smoke(d, nb)}。"]
    return render


def _03(d: CourseRun) -> list[str]:
    x = d["03"]
    return [f"**你应该看到（course 模式实测，{_stamp(d)}）**：整本 {_minutes(x['seconds'])}（老师缓存为空）。",
            f"{x['agent_samples']:,} 条 Agent 样本 + {x['general_samples']:,} 条通用样本（{x['actual_ratio']} : 1），"
            f"训练模板 {x['train_templates']} 个、留出模板 {x['test_templates']} 个；样本 token 数 平均 "
            f"{x['tokens']['mean']} / 中位 {x['tokens']['p50']} / p95 {x['tokens']['p95']} / 最长 {x['tokens']['max']:,}；"
            f"训练 / 测试 query {x['train_queries']} / {x['test_queries']} 条，泄漏 {x['leaks']} 条。{_smoke(d, '03')}。"]


def _03_mix(d: CourseRun) -> list[str]:
    x = d["03"]
    repeats = x["general_samples"] - x["general_pool"]
    return [f"**你应该看到（course 模式实测，{d['measured']}）**：要混入 {x['general_samples']} 条通用样本，而留出测试集之后"
            f"通用池只有 {x['general_pool']} 条不重复的，所以其中 **{repeats} 条是重复使用的**（每条平均用 "
            f"{x['general_samples'] / x['general_pool']:.1f} 次）。5 : 1 达到了，见到的通用内容却只有这 "
            f"{x['general_pool']} 条。"]


def _04(d: CourseRun) -> list[str]:
    x, r = d["04"], d["04"]["rebuilt"]
    return [f"**你应该看到（course 模式实测，{_stamp(d)}）**：整本 {_minutes(x['seconds'])}。离线漏斗 "
            f"{x['funnel_seconds']} s：{x['queries']} 条 query → {x['clusters']} 个簇 → {x['candidates']} 个候选 → "
            f"保留 {x['kept']} 个。用保留的模板重建训练数据 {r['seconds']} s（`meta_templates: {r['meta_templates']}`）："
            f"{r['jobs']:,} 个标注任务里 {r['meta_jobs']:,} 个换成 Meta-Agent 模板（训练用其中 {r['meta_train_templates']} 个；"
            f"{' / '.join(r['held_out_families'])} 格式家族的 {r['held_out_format_templates']} 个只留给实验 06 测试），得到 "
            f"{r['agent_samples']:,} 条 Agent 样本 + {r['general_samples']:,} 条通用样本，共 "
            f"{r['agent_samples'] + r['general_samples']:,} 条，实验 05 就用它训练。{_smoke(d, '04')}。"]


def _04_diversity(d: CourseRun) -> list[str]:
    x = d["04"]["diversity"]
    lines = [f"**实测结果**（{x['measured']}，{x['machine']}；{x['setting']}；`bench/README.md`）：", "",
             "| 训练方式 | 测试模板 | query 数 | 格式有效 % | 工具名正确 % | 步骤分 [95% 区间] |", "|---|---|---|---|---|---|"]
    for arm, group, n, valid, tool, score in x["rows"]:
        lines.append(f"| {arm} | {group} | {n} | {'—' if valid is None else valid} | {'—' if tool is None else tool} "
                     f"| {score} |")
    lines += ["", "**在这个预算下，笔记的论断没有被证实**：两种训练在没见过的模板上都几乎做不对步骤（差值 0.4，区间 [0.0, 1.3] "
              "跨过 0）；多样模板学到的是**更常按没见过的格式作答**（格式有效 27.3 % 对 2.3 %）。60 步只见过约四分之一个 epoch，"
              "课程配方的 200 步和多个种子是下一次要跑的测量。"]
    return lines


def _05(d: CourseRun) -> list[str]:
    x = d["05"]
    minutes = x["train_seconds"] / 60
    lines = [f"**你应该看到（course 模式实测，{_stamp(d)}）**：训练一轮（epoch）：{x['samples']:,} 条样本装进 "
             f"{x['steps']} 行，每行最多 {x['pack_tokens']:,} 个 token，同一条轨迹的样本共用的提示前缀只算一次（省下 "
             f"{x['shared_prefix_saving']:.1%} 的 token，共 {x['tokens']:,} 个）；batch 1，每步一行，共 {x['steps']} 步"
             f"（lr {x['lr']}）。max_len {x['max_len']:,}：整条丢弃 {x['dropped_too_long']} 条（最长的样本 "
             f"{x['longest']:,} 个 token；提示从不截断）。", "",
             f"日志（train_log.jsonl）里 {x['steps']} 步的 s_per_step 合计 {_minutes(x['train_seconds'])}，平均 "
             f"{x['train_seconds'] / x['steps']:.2f} s/步、每秒 {x['tokens'] / x['train_seconds']:.0f} 个 token——这台 CPU "
             "当时还在跑别的任务，这个时间偏长"]
    if x["oom_killed_at_step"] is not None:
        lines[-1] += (f"；训练在第 {x['oom_killed_at_step']} 步被内核因内存不足杀掉，重跑本 notebook 从 checkpoint-"
                      f"{x['resumed_from']} 接着训完（被杀前多跑的那几步不算在合计里）")
    lines[-1] += (f"。同类 CPU 安静时，按 `bench/bench_step.py` 测得的 {x['quiet_samples_per_min']} 条样本/分钟，这一轮约 "
                  f"{x['samples'] / x['quiet_samples_per_min']:.0f} 分钟（日志里的 {minutes:.0f} 分钟是共用 CPU 上的）。"
                  "这一格运行时会显示“训练：已完成步数/总步数，已用时间，预计还需”。"
                  f"{_smoke(d, '05', '（tiny 模型）')}。")
    return lines


def _06(d: CourseRun) -> list[str]:
    x, h = d["06"], d["06"]["held_out_formats"]
    took = (f"整本 {_minutes(x['seconds'])}" if x["stopped"] is None else
            f"整本没有跑完：{x['stopped']}，其后各格没有运行；之前各格合计 {_minutes(x['seconds'])}")
    return [f"**你应该看到（course 模式实测，{_stamp(d)}）**：{took}。{x['queries']} 条留出 query、"
            f"{x['records']} 条记录、{x['prompts']} 个 prompt（见过的模板 {x['seen_prompts']} 个，没见过的 "
            f"{x['unseen_prompts']} 个）。", "", *_score_table(d), "",
            f"官方 KAgentBench 解析器给微调后的模型 Overall {x['official_overall_tuned']}。**留出的输出格式**"
            f"（实验 04 留作测试的 {h['templates']} 个模板，{h['records']} 条记录）只算 Planning / Tool-use / Reflection："
            f"微调后的模型 {' / '.join(f'{v}' for v in h['tuned'])}，三者的加权平均 {h['tuned_mean']} "
            f"[{h['tuned_mean_ci'][0]}, {h['tuned_mean_ci'][1]}]；同样的平均在见过的模板上 {h['seen_mean']}、没见过的模板上 "
            f"{h['unseen_mean']}，基础模型 {h['base_mean']}。这一格用了 {_minutes(h['seconds'])}。", "",
            "![course 实测的分数](expected/06_scores.png)"]


def _score_table(d: CourseRun) -> list[str]:
    s, ci = d["06"]["scores"], d["06"]["overall_ci"]
    lines = ["| 模型 | " + " | ".join(s["columns"]) + " | Overall 95% 区间 |", "|---" * (len(s["columns"]) + 2) + "|"]
    for name, values in s.items():
        if name != "columns":
            lines.append(f"| {name} | " + " | ".join(f"{v}" for v in values) + f" | [{ci[name][0]}, {ci[name][1]}] |")
    return lines


def _generated(g: Generation, why: str) -> str:
    cached = f"；另外 {g['cached']} 个是此前一次被中断的运行生成的，这次直接读缓存" if g["cached"] else ""
    return (f"新生成 {g['generated']} 个回答，用了 {_minutes(g['seconds'])}，平均每个 {g['tokens_per_prompt']} 个新 "
            f"token——{why}{cached}。")


def _06_generation(d: CourseRun) -> list[str]:
    x = d["06"]
    return [f"**这一格要等多久**：参考 CPU（{d['measured']}，{d['machine']}）上这一格用了 "
            f"{_minutes(x['generation_seconds'])}。基础模型{_generated(x['base'], '它不会停')}微调后的模型"
            f"{_generated(x['tuned'], '学会了说完就停')}"
            "运行时这一格会显示“生成：已完成/总数，已用时间，预计还需”；中断后重跑只补齐没生成的部分。smoke 模式几秒钟。"]


def _06_why(d: CourseRun) -> list[str]:
    f, x = d["06"]["failure_kinds"], d["06"]
    unseen = "全部" if f["unparsed_unseen_templates"] == f["unparsed"] else f"{f['unparsed_unseen_templates']} 个"
    return [f"**你应该看到（course 模式实测，{d['measured']}）**：微调后的模型在 {f['answers']} 个规划回答里，选对工具 "
            f"{f['right_tool']} 个；读不出工具（格式坏了）{f['unparsed']} 个（{unseen}在没见过的模板上，其中 "
            f"{f['unparsed_at_step_0']} 个在第一步：坏在格式，而不是计划）；还需要工具时就 task_complete "
            f"{f['finished_early']} 个（其中 {f['finished_early_after_step_0']} 个在多步 query 的第一步之后：结束得太早）；"
            f"选了另一个提供的工具 {f['wrong_offered_tool']} 个；调用没有提供的工具 {f['tool_not_offered']} 个。"
            f"见过的模板 Overall {x['scores']['tuned, seen templates'][-1]}，没见过的 "
            f"{x['scores']['tuned, unseen templates'][-1]}；端到端 {x['end_to_end']['queries']} 条 query 成功 "
            f"{x['end_to_end']['base']} → {x['end_to_end']['tuned']} 条。", "",
            "![course 实测的失败类型](expected/06_failure_kinds.png)"]


def _06_curve(d: CourseRun) -> list[str]:
    c = d["06"]["curve"]
    points = "；".join(f"{label}：{v}（{round(m, 1):g} 分钟）" for m, label, v in c["points"])
    steps = [b[2] - a[2] for a, b in zip(c["points"], c["points"][1:])]
    change = "、".join(f"{s:+.1f}" for s in steps)
    shape = (f"每个点都比前一个高（依次 {change}），到最后还在升" + ("，只是最后一段涨得最少" if steps[-1] == min(steps) else "")
             if min(steps) > 0 else f"曲线不是一路上升的（依次 {change}）")
    return [f"**你应该看到（course 模式实测，{d['measured']}，{c['queries']} 条留出 query；分钟数是共用 CPU 上日志记下的"
            f"训练时间）**：Overall——{points}。{shape}；只有 {c['queries']} 条 query，一段里几分的差别可能只是噪声。"
            f"这一格只为中间的 {len(c['points']) - 2} 个快照各生成 {c['prompts_per_point']} 个回答（基础模型和最终模型读前面的"
            f"缓存），用了 {_minutes(c['seconds'])}。", "",
            "![course 实测的学习曲线](expected/06_learning_curve.png)"]


def _06_ceiling(d: CourseRun) -> list[str]:
    c = d["ceiling"]
    rows = [f"| {label} | {samples:,} | {minutes:g} | {overall} [{ci[0]}, {ci[1]}] | {tool} | {e2e} / {c['agent_queries']} |"
            for label, samples, minutes, overall, ci, tool, e2e in c["points"]]
    last = c["points"][-1]
    return [f"**你应该看到（实测，{c['measured']}，{c['machine']}；`{c['command']}`）**：同一份课程数据训练一整轮"
            f"（{c['samples_per_epoch']:,} 条样本），每个点在 {c['queries']} 条留出 query 的 benchmark 上打分（95% 区间），"
            f"端到端在 {c['agent_queries']} 个留出任务上算。", "",
            "| 点 | 见过的样本 | 安静 CPU 上的分钟 | Overall | Tool-use | 端到端完成 |", "|---|---|---|---|---|---|", *rows, "",
            f"整整一轮之后 Overall {last[3]}、端到端 {last[6]}/{c['agent_queries']}；端到端在 ½ 轮到 ¾ 轮之间才突然起来——"
            "学生先学会格式和选工具，再学会把一个多步任务做完。", "",
            "![一轮之内的天花板曲线](expected/06_ceiling_curve.png)"]


BLOCKS: dict[str, Callable[[CourseRun], list[str]]] = {
    "01": _quick("01"), "02": _quick("02"), "03": _03, "03.mix": _03_mix, "04": _04, "04.diversity": _04_diversity,
    "05": _05, "06": _06, "06.generation": _06_generation, "06.why": _06_why, "06.curve": _06_curve,
    "06.ceiling": _06_ceiling,
}


def render_block(key: str, data: CourseRun) -> str:
    if key not in BLOCKS:
        raise DataFileError(SOURCE, f"unknown expected block {key!r}; known: {', '.join(BLOCKS)}")
    body = "\n".join(BLOCKS[key](data))
    return "".join(f"# {line}\n" if line else "#\n" for line in body.split("\n"))


def update_source(text: str, data: CourseRun) -> str:
    """A notebook's jupytext source with every marked block rendered from ``data``."""
    return BLOCK.sub(lambda m: f"# <!-- expected: {m['key']} -->\n{render_block(m['key'], data)}# <!-- /expected -->",
                     text)


# ---------------------------------------------------------------- figures

def _figures(data: CourseRun) -> dict[str, tuple[Any, Callable[[Any, Path], Any]]]:
    """name -> (the data it is drawn from, draw(data, path))."""
    import pandas as pd

    from labkit.evaluate.failures import KINDS, plot_failure_kinds
    from labkit.evaluate.report import plot_bars, plot_curve

    x = data["06"]
    stamp = f"course 实测 {data['measured']}，{data['machine']}"

    def scores(s: dict[str, list[str] | list[float]], path: Path) -> None:
        table = pd.DataFrame({k: v for k, v in s.items() if k != "columns"}, index=s["columns"]).T
        fig = plot_bars(table)
        fig.axes[0].set_title(stamp, fontsize=9)
        fig.savefig(path, dpi=110, metadata={"Software": None})

    def kinds(f: FailureKinds, path: Path) -> None:
        counts = pd.DataFrame({"tuned": [f[kind] for kind in KINDS]}, index=list(KINDS.values()))
        fig = plot_failure_kinds(counts, title=f"{f['answers']} 个规划回答\n{stamp}")
        fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})

    def curve(source: Any, path: Path) -> None:  # {curve, measured, machine}: the image's stamp too
        c = source["curve"]
        frame = pd.DataFrame([{"train minutes": m, "point": label, "Overall": v} for m, label, v in c["points"]])
        fig = plot_curve(frame)
        fig.axes[0].set_title(f"Overall，{c['queries']} 条留出 query\n{stamp}", fontsize=9)
        fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})

    def ceiling(c: Ceiling, path: Path) -> None:
        frame = pd.DataFrame([{"samples": n, "Overall": o, "Tool-use": t, "end-to-end (%)": 100 * e / c["agent_queries"]}
                              for _label, n, _m, o, _ci, t, e in c["points"]])
        fig = plot_curve(frame, x="samples", xlabel="training samples seen",
                         columns=["Overall", "Tool-use", "end-to-end (%)"])
        fig.axes[0].set_title(f"{c['queries']} 条留出 query，{c['agent_queries']} 个端到端任务（实测 {c['measured']}）",
                              fontsize=9)
        fig.savefig(path, dpi=110, metadata={"Software": None})

    return {"06_scores.png": (x["scores"], scores), "06_failure_kinds.png": (x["failure_kinds"], kinds),
            "06_learning_curve.png": ({"curve": x["curve"], "measured": data["measured"],
                                       "machine": data["machine"]}, curve),
            "06_ceiling_curve.png": (data["ceiling"], ceiling)}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- generate / check

def stale(data: CourseRun | None = None, *, notebooks: Path = NOTEBOOKS, out: Path = EXPECTED) -> list[str]:
    """What is out of date with the JSON: notebook sources whose blocks differ, images drawn from other data."""
    data = data if data is not None else load()
    problems = [f"{p.name}: an expected block differs from {SOURCE.name}" for p in sorted(notebooks.glob("[0-9][0-9]_*.py"))
                if update_source(p.read_text(encoding="utf-8"), data) != p.read_text(encoding="utf-8")]
    index = json.loads((out / "figures.json").read_text(encoding="utf-8")) if (out / "figures.json").exists() else {}
    for name, (source, _draw) in _figures(data).items():
        if not (out / name).exists() or index.get(name) != _digest(source):
            problems.append(f"{name}: missing or drawn from other data")
    return problems


def generate(data: CourseRun | None = None, *, notebooks: Path = NOTEBOOKS, out: Path = EXPECTED,
             sync: bool = True) -> list[Path]:
    """Rewrite the blocks and images (see the module docstring); returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = data if data is not None else load()
    written = []
    for path in sorted(notebooks.glob("[0-9][0-9]_*.py")):
        old = path.read_text(encoding="utf-8")
        new = update_source(old, data)
        if new != old:
            path.write_text(new, encoding="utf-8")
            written.append(path)
            if sync:
                subprocess.run([sys.executable, "-m", "jupytext", "--update", "--to", "ipynb", str(path)],
                               check=True, capture_output=True)
    out.mkdir(parents=True, exist_ok=True)
    index = {}
    for name, (source, draw) in _figures(data).items():
        draw(source, out / name)
        plt.close("all")
        index[name] = _digest(source)
        written.append(out / name)
    (out / "figures.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labkit.expected", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 while a block or an image is stale")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale()
        print("\n".join(problems) or "up to date")
        return 1 if problems else 0
    for path in generate():
        print(path.relative_to(REPO_ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
