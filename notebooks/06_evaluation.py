# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 效果评估：自动评估（KAgentBench 风格）与人工评估
#
# 课程笔记 §3.4 把效果评估分成两部分：
#
# * **自动评估**：用 GPT-4 + 人工修正的方式构建 benchmark（一般从训练数据中分出一部分），把 Agent 的输出与参考答案对比打分。
#   它的主要目的是**在训练过程中监控模型效果，评估指标的对比意义大于绝对值意义**。
# * **人工评估**：最可靠，但效率低、成本高，一般只在大的模型版本上使用。
#
# 本 notebook 按 KAgentBench 的做法实现自动评估的五个能力维度——**Planning（规划）、Tool-use（工具使用）、
# Reflection（反思）、Concluding（总结）、Profile（角色）**——以及加权的 Overall，并比较**基础模型**与
# **Agent Tuning 之后的模型**；最后给出人工评估的标注工具、可用率和标注一致性（Cohen's κ）。
#
# 两种运行模式（papermill 参数 `mode`）：
#
# * `smoke`：几条记录，沙盒教师（**模拟器**，不是真的 GPT-4）+ 随机初始化的 tiny 模型，< 3 分钟，用来验证流程；
# * `course`：基础 gemma-3-270m 与 `runs/train/course` 里的微调模型，在完整的留出（held-out）benchmark 上对比。
#
# ## 学习目标
#
# 1. 说清自动评估的目的（训练中监控，**对比意义大于绝对值**）和 benchmark 的构建方式（从数据里留出，§3.4.1）；
# 2. 看懂五个能力维度的打分公式，并**从结果表里解出 Overall 的权重**（**练习 06.1**）；
# 3. 比较基座模型与微调模型、见过与没见过的模板、没见过的输出格式（§4.1 多样性带来的泛化）；
# 4. 用**两次训练的实测数字**检验 Agent : 通用 = 5 : 1 的作用，对照你在练习 03.3 的预测（**练习 06.2**）；
# 5. 说清**为什么变好、还差在哪**：同一批留出 query 上基座与微调的回答并排看、失败类型、见过与没见过的模板、学习曲线；
# 6. **自己改一处配方、重训、再评估**：同样的训练分钟数，全参数 vs LoRA（检验笔记 §3.3 的说法）；
# 7. 按笔记的评分标准做人工评估，**算出可用率与标注一致性 κ**（§3.4.2，**练习 06.3**）。
#
# **先修**：实验 03、04（留出的 query、模板与输出格式）、实验 05（微调后的模型；没有时只评基座和模拟器）。CPU 即可；
# 有 API 密钥时 course 模式多评一个真实大模型。
#
# <!-- expected: 06 -->
# **你应该看到（course 模式实测，2026-12-05，2 vCPU Intel Xeon（AMX + AVX-512-BF16），与别的任务共用 CPU，`labkit labs run 03 04 05 06 --mode course`，当时 configs/course.yaml 的 step_balance 还是关闭的（现在是 1.0：样本更多，分数更高，见 bench/README.md））**：整本没有跑完：为让出 CPU，在配方实验（全参数对 LoRA，各训练 5 分钟）那一格手动停下，其后各格没有运行；之前各格合计 3,129 s（约 52 分钟）。40 条留出 query、176 条记录、312 个 prompt（见过的模板 136 个，没见过的 176 个）。
#
# | 模型 | Planning | Tool-use | Reflection | Concluding | Profile | Overall | Overall 95% 区间 |
# |---|---|---|---|---|---|---|---|
# | base gemma-3-270m | 0.0 | 0.0 | 0.1 | 14.2 | 14.3 | 4.3 | [3.9, 4.7] |
# | tuned | 54.9 | 51.7 | 10.1 | 93.0 | 22.5 | 53.7 | [49.2, 58.2] |
# | tuned, seen templates | 78.0 | 74.0 | 13.8 | 93.8 | 22.5 | 67.8 | [60.9, 74.0] |
# | tuned, unseen templates | 31.8 | 29.5 | 6.3 | 92.2 | 22.5 | 39.6 | [33.4, 45.9] |
#
# 官方 KAgentBench 解析器给微调后的模型 Overall 49.61。**留出的输出格式**（实验 04 留作测试的 15 个模板，96 条记录）只算 Planning / Tool-use / Reflection：微调后的模型 5.2 / 5.4 / 6.6，三者的加权平均 5.5 [0.7, 11.1]；同样的平均在见过的模板上 66.8、没见过的模板上 27.0，基础模型 0.1。这一格用了 872 s（约 15 分钟）。
#
# ![course 实测的分数](expected/06_scores.png)
# <!-- /expected -->
# %% tags=["parameters"]
mode = "smoke"            # "smoke" | "course"
data_dir = ""             # 数据阶段的输出目录（留空：runs/data/<mode>）
tuned_dir = ""            # 微调后的模型目录（留空：runs/train/<mode>）
base_model = "gemma-3-270m"
n_queries = None          # 用多少条留出 query 构建 benchmark（None：取 configs/<mode>.yaml 的 eval 部分）
templates_per_record = None  # 每条记录里 “见过的模板” 与 “没见过的模板” 各取几个（None：同上）
n_agent_queries = None    # 端到端成功率用多少条 query（None：同上）
n_general = None          # 通用能力检查用多少条留出的通用样本（None：同上）
n_curve_queries = None    # 学习曲线每个点用多少条留出 query（None：同上）
annotator = "A"           # 人工评估标注员的名字（两位标注员各用一个名字）
interactive = False       # True：在 Jupyter 里显示标注界面；papermill/CI 里保持 False
device = "auto"           # 生成与训练用的设备："auto"（有 CUDA 用 GPU，Apple 芯片用 MPS，否则 CPU）/ "cpu" / "cuda" / "mps"
lora_r = 8                # 配方实验里 LoRA 的秩
experiment_minutes = 0.0  # 配方实验每种配方训练几分钟（0：smoke 0.1，course 5）
experiment_queries = 0    # 配方实验用几条留出 query 评估（0：smoke 1，course 8）

# %%
import json
from pathlib import Path

import pandas as pd
from IPython.display import display

from labkit.display import api_ready, notebook_setup
from labkit.exercises import check
from labkit.evaluate import benchmark_stats, build_benchmark, evaluate_model, read_split, score_predictions
from labkit.evaluate import format_benchmark, read_template_groups
from labkit.evaluate import report as rep
from labkit.evaluate.benchmark import general_test_path, golden_predictions, select_queries
from labkit.labs import ensure_dataset
from labkit.llm import get_model, resolve_device
from labkit.modes import EvalSettings, load_settings
from labkit.paths import runs_dir

SMOKE = mode == "smoke"
# configs/<mode>.yaml's eval section, checked and typed; a parameter left None keeps the file's value
ev = load_settings(EvalSettings, mode, "eval", n_queries=n_queries, n_agent_queries=n_agent_queries,
                   n_general=n_general, n_curve_queries=n_curve_queries, templates_per_record=templates_per_record)
n_queries, n_agent_queries, n_general, n_curve_queries = ev.n_queries, ev.n_agent_queries, ev.n_general, ev.n_curve_queries
templates_per_record, max_new_tokens = ev.templates_per_record, ev.max_new_tokens
data_path = ensure_dataset(mode, data_dir or None)  # 没跑过 03 时先构建数据
tuned_path = Path(tuned_dir) if tuned_dir else runs_dir() / "train" / mode
out_dir = runs_dir() / "eval" / mode
out_dir.mkdir(parents=True, exist_ok=True)
notebook_setup()  # 表格完整显示、图中中文字体、屏蔽第三方库的进度条与警告
print("数据：", data_path, "｜微调后的模型：", tuned_path, "｜输出：", out_dir)

# %% [markdown]
# ## 1. 构建 benchmark：只用留出的 query
#
# 笔记说 benchmark “一般从训练数据中随机分出一部分即可”。数据阶段（notebook 03）已经按 **query 簇**
# 和 **模板** 两个维度留出了测试集：`test_queries.jsonl` 里的 query 训练时没见过，`stats.json` 里的
# `test_templates` 是训练时没见过的模板。我们按 KAgentBench 的记录格式（`id, query, type, golden_result_list,
# funcs, prompt_input, memory, memory_type, memory_last_task`）生成四类记录：
#
# | type | 考什么 | Memory 里有什么 | 参考答案 |
# |---|---|---|---|
# | `plantooluse` | 下一步规划 + 工具调用（第 0 步和轨迹中间某一步） | 已完成的标准任务及工具真实返回 | 该步的 task_name + 工具调用 |
# | `reflextion` | 反思：上一步失败后能否改正 | 上一步调用缺少参数，工具返回了错误 | 正确的调用（与失败的那步不同） |
# | `conclusion` | 总结（模板-2 类模板） | 全部已完成任务 | 参考答案 |
# | `profile` | 角色设定：以人设身份回答 | 人设卡片 + 用户问题 | 自我介绍 + 将用哪些工具怎么解决 |
#
# 每条记录带多个模板的 prompt，并标记该模板是训练时 **见过（seen）** 还是 **没见过（unseen）**，用来考察泛化。

# %%
queries, seen, unseen = read_split(data_path)
queries = select_queries(queries, n_queries)  # round-robin over clusters and languages
bench_path = out_dir / "benchmark.jsonl"
benchmark = build_benchmark(queries, seen=seen, unseen=unseen, out_path=bench_path,
                            templates_per_record=(templates_per_record, templates_per_record))
print(f"{len(queries)} 条留出 query → {len(benchmark)} 条记录")
formats = read_template_groups(data_path)["held-out format"]  # output formats no training template uses (04)
print("见过的模板：", seen)
print("没见过的模板：", unseen)
print("留出的输出格式：", formats or "无（构建数据时没有经过实验 04）")
stats = benchmark_stats(benchmark)
print("prompt 数：", stats["total_instances"], "｜按模板标记：", stats["template_tags"])
pd.DataFrame(stats["by_type"]).T

# %%
example = next(r for r in benchmark if r["type"] == "reflextion")
template, prompt = next(iter(example["prompt_input"].items()))
print("类型：", example["type"], "｜模板：", template, f"（{example['template_tags'][template]}）")
print("上一步（memory_last_task）：", example["memory_last_task"])
print("参考答案：", json.dumps(example["golden_result_list"], ensure_ascii=False))
print(prompt[-1200:])

# %% [markdown]
# ## 2. 打分公式
#
# 设 $T_{n}$ 为参考答案里的工具名、$T'_{n}$ 为模型输出的工具名，EM 为精确匹配（0/1）；$T_h$、$T'_h$ 为任务描述
# （task_name / thought），用 ROUGE-L 做模糊匹配（0–1）。对每个模板 $t$、每个参考项 $g$：
#
# * Planning：$\max_g \mathrm{EM}\cdot \mathrm{ROUGE}(T_h, T'_h)$
# * Tool-use：$\max_g \mathrm{EM}\cdot \mathrm{ArgScore}$，ArgScore = 参考参数每个 key 上值的 ROUGE-L 的平均（缺 key 记 0）
# * Reflection：$\max_g (1-P_g)\,(0.3\,\mathrm{EM}\cdot\mathrm{ROUGE} + 0.7\,\mathrm{EM}\cdot\mathrm{ArgScore})$，
#   若参考项与上一步（`memory_last_task`）完全相同则 $P_g=1$
# * Concluding / Profile：与各参考答案 ROUGE-L 的最大值
# * 每个能力 = 对 query 取平均（每个 query 先对模板取平均），× 100
# * **Overall = 五项能力的加权和**，权重之和为 1——权重是多少？练习 06.1 让你从结果表里把它解出来。
#
# 中文分词：先切词，再把含中文（Unicode `Lo`）的词拆成单字；ROUGE-L 用 rouge-chinese 计算。BLEU（nltk，平滑）
# 作为附加列，不计入 Overall。
#
# **两种计分模式。** `compat="kagentbench"` 完全按官方 `benchmark_eval.py` 计分（解析、答案抽取、nltk 分词、
# 聚合都与官方一致；已用官方脚本逐条核对：打印的六个分数相同，每个模板的分数逐位相同），只在官方脚本会报错退出的
# 地方（纯空白输出、`max([])` 等）记 0 分并给出提示。默认的 labkit 模式用的是同一套规则，只是打开了下表的每一个
# 开关：每一行是一处与官方脚本的不同（容错解析、抽取答案、按 benchmark 的模板计分、完全相同得 100 等），
# 每一个都可以单独开关（`ScoringOptions`），除此之外两种模式没有别的差别。

# %%
from labkit.evaluate import differences_frame

differences_frame()[["area", "labkit (on)", "official (off)"]]

# %% [markdown]
# 先做一个**健全性检查**：把参考答案本身当作预测，应当每一项都是 100。

# %%
gold_check = score_predictions(benchmark, golden_predictions(benchmark))
print(gold_check.summary())
assert all(v == 100.0 for v in gold_check.summary().values()), "golden answers must score 100"

# %% [markdown]
# ### 练习 06.1：从结果表解出 Overall 的权重（§3.4.1）
#
# 笔记的“自动测试结果示例”给出了 6 个模型的五项能力和 Overall，却没给权重。每一行都是一个方程：
# Overall = w₁·Planning + w₂·Tool-use + w₃·Reflection + w₄·Concluding + w₅·Profile。写一个函数 `solve_weights(rows)`：
# `rows` 是若干行 `{"model", "Planning", "Tool-use", "Reflection", "Concluding", "Profile", "Overall"}`，返回五项的权重
# `{"Planning": w₁, ...}`。表里的分数只保留了两位小数，所以要用**最小二乘**（`np.linalg.lstsq`）。检查会用笔记的表，
# 再用一张**权重不同**的表——把权重写死的函数过不了第二张表。

# %%
import numpy as np

from labkit.exercises.nb06 import note_rows

pd.DataFrame(note_rows(with_overall=True)).set_index("model")

# %%
# >>> 练习 06.1：在下面写你的答案
solve_weights = ...  # TODO：def solve_weights(rows): ...，返回 {"Planning": ..., ..., "Profile": ...}
# <<< 练习 06.1
check("06.1", solve_weights)

# %% [markdown]
# 解出来的就是 KAgentBench 的权重：**Overall = 0.25·Planning + 0.35·Tool-use + 0.10·Reflection + 0.20·Concluding + 0.10·Profile**。
# Tool-use 权重最大：选对工具并填对参数，是 Agent 最要紧的能力。

# %% [markdown]
# ## 3. 生成预测并打分
#
# 每个模板的 prompt 作为一条 user 消息发给模型（与 KAgentBench 的推理脚本一致），按**该模板的输出格式**解码：
# JSON 格式（KAgent、AutoGPT）在第一个顶层 JSON 对象闭合时**当场停止生成**（不是生成完再截断；遇到重复的
# key 也停，那是欠训练模型常见的死循环）；ReAct / ToolLLaMA 在 `Observation:` 处停；每种格式的 token 预算
# 略大于题库里该格式最长的标准答案（`labkit.agent.MAX_NEW_TOKENS`，有测试核对），正确答案永远不会被截断。
# 所有回答**立刻写入缓存**（按 (模型, 解码设置, prompt) 做键的追加式 JSONL，每条都强制落盘），中断后重跑只补齐没生成的部分。
#
# 下面的时间表列出每个模型实际生成了多少 prompt、平均每条多少新 token、用了多少秒。
#
# <!-- expected: 06.generation -->
# **这一格要等多久**：参考 CPU（2026-12-05，2 vCPU Intel Xeon（AMX + AVX-512-BF16），与别的任务共用 CPU）上这一格用了 949 s（约 16 分钟）。基础模型新生成 208 个回答，用了 387 s（约 6 分钟），平均每个 134.4 个新 token——它不会停；另外 104 个是此前一次被中断的运行生成的，这次直接读缓存。微调后的模型新生成 312 个回答，用了 556 s（约 9 分钟），平均每个 52.6 个新 token——学会了说完就停。运行时这一格会显示“生成：已完成/总数，已用时间，预计还需”；中断后重跑只补齐没生成的部分。smoke 模式几秒钟。
# <!-- /expected -->

# %%
print("本地模型生成用的设备：", resolve_device(device))  # 参数 device；auto 时有 CUDA / MPS 就用，否则 CPU
models = {"sandbox teacher (emulator)": "sandbox"}
if SMOKE:
    models["tiny (random init)"] = "tiny"
else:
    models["base " + base_model] = base_model
if (tuned_path / "config.json").exists():
    models[f"tuned ({tuned_path.name})"] = str(tuned_path)
if not SMOKE and api_ready():  # an OpenAI-compatible API model, only when a key is configured
    models["api"] = "openai"
smoke_bench = [r for r in benchmark if r["type"] in ("plantooluse", "profile")][:2]
reports, timings = {}, {}
for label, spec in models.items():
    model = get_model(spec, device=device)
    records = smoke_bench if SMOKE and spec != "sandbox" else benchmark
    kw = {"max_new_tokens": max_new_tokens} if spec != "sandbox" and max_new_tokens else {}
    reports[label], stats = evaluate_model(model, records, out_dir / label.split(" ")[0], batch_size=8, **kw)
    timings[label] = {"prompts": stats.prompts, "new": stats.generated, "cached": stats.cached,
                      "new tokens / prompt": round(stats.completion_tokens / max(stats.generated, 1), 1),
                      "seconds": round(stats.seconds, 1), "tok/s": round(stats.tokens_per_second, 1)}
display(pd.DataFrame(timings).T)
table = rep.score_table(reports)
table

# %% [markdown]
# 只看一个数字是不够的：benchmark 只有几十条 query，换一批同类的 query 分数会变多少？下表对**留出的 query**
# 做 bootstrap（2000 次有放回重抽 query，一条 query 的所有记录一起抽），给出每个能力和 Overall 的 95% 区间。
# 两个模型的区间不重叠，差距才可信。

# %%
rep.interval_table(reports)

# %% [markdown]
# 上表就是笔记里“自动测试结果示例”那样的表格。对照 KAgentBench 官方结果（KwaiAgents 仓库后来更正过评测脚本的一处错误，
# 这里引用更正之后重新发布的数字）：
# Qwen-7B 21.17 → Qwen-7B-MAT 39.85，Baichuan2-13B 14.89 → Baichuan2-13B-MAT 45.34（Overall）。
# 我们的 benchmark 小得多、工具和世界是沙盒里的，**绝对值不可与官方数字直接比较**，看的是同一 benchmark 上微调前后的差距。
# smoke 模式里 tiny 模型只评了两条记录、每条只生成 24 个 token，它的分数只是流程演示。
#
# **为什么模拟器几乎满分——这不是能力。** 模拟器（`SandboxTeacher`）是按沙盒世界的**金标注**作答的，而 benchmark 的参考答案
# 正是从同一份金标注生成的：它在 Planning、Tool-use、Reflection、Concluding 上得 100，只说明“参考答案与打分流程是自洽的”，
# 和上面把参考答案当预测的健全性检查是一回事。它的 **Profile 不是 100**：profile 记录给出人设卡片，参考答案是
# “以人设身份自我介绍 + 说明会用哪些工具、怎么做”；模拟器没有人设的概念，把问题当普通问题直接回答了事实（见下例），
# 与参考文本只有部分词语重叠，ROUGE-L 只有几十分，Overall 也因此低于 100。

# %%
sandbox_preds = [json.loads(line) for line in (out_dir / "sandbox" / "predictions.jsonl").read_text(
    encoding="utf-8").splitlines() if line.strip()]
prof = next(r for r in sandbox_preds if r["type"] == "profile")
print("参考答案：", prof["golden_result_list"][0]["golden_result"])
print("模拟器的回答：", json.dumps(prof["model_predict"], ensure_ascii=False)[:300])

# %%
rep.plot_bars(table, out_dir / "scores_bar.png")
rep.plot_radar(table, out_dir / "scores_radar.png");

# %% [markdown]
# ### 和官方脚本对照：两种模式并排
#
# 同一份预测分别用 labkit 模式和官方兼容模式（`kagentbench`）打分。两者之差就是上面那张表里各个开关的总效果；
# 下面第二张表把差距拆到每个开关上：`Overall` 列是“官方规则 + 只打开这一个开关”比官方多出的分数，
# `Overall if dropped` 是“labkit 模式只关掉这一个开关”少掉的分数（两者不同，说明开关之间有交互）。
# 发表对比时请用兼容模式的数字；课程里看微调前后的差距用 labkit 模式即可，两种模式下的排序通常一致。

# %%
from labkit.evaluate import compare_modes, difference_effects
from labkit.evaluate.scorer import load_predictions

preds = {label: load_predictions(out_dir / label.split(" ")[0] / "predictions.jsonl") for label in reports}
display(pd.concat({label: compare_modes(p, p) for label, p in preds.items()}))
last = [label for label, r in reports.items() if r.complete][-1]  # the tuned model in course mode
print("下面拆解的是这个模型的差距：", last)
effects = difference_effects(preds[last], preds[last])[["Overall", "Overall if dropped"]]
effects[(effects != 0).any(axis=1)]

# %% [markdown]
# ## 4. 见过的模板 vs 没见过的模板
#
# Meta-Agent Tuning 的目标之一是让模型**不依赖某一个模板**。如果微调后的模型在 unseen 模板上的分数
# 也明显提高，说明它学到的是规划、调用工具、总结的能力，而不只是记住了一种 prompt 格式。

# %%
display(pd.concat({tag: rep.interval_table(reports, tag=tag) for tag in ("seen", "unseen")}))
breakdown = rep.template_breakdown(reports)
breakdown.pivot_table(index=["dimension", "tag", "template"], columns="model", values="score")

# %% [markdown]
# 更难的一关是**没见过的输出格式**：实验 04 把 YAML 式、XML 式、`key=value` 式的模板整族留出，训练数据里一条都没有。
# 同样的规划与反思情境换成这些模板再考一次（单独成一个 benchmark，上面的 Overall 不受影响），三组并排：
# 见过的模板（手写、训练过）、没见过的模板（训练过的格式）、没见过的输出格式，每组都带 95% 区间。
# 这里只比 Planning、Tool-use、Reflection 和它们的加权平均：留出的格式都是规划格式，Profile 在三组里是同一个 prompt。

# %%
fmt_bench = format_benchmark(queries, formats, templates_per_record=templates_per_record,
                             out_path=out_dir / "benchmark_formats.jsonl")
fmt_reports = {}
for label, spec in models.items() if fmt_bench else ():
    records = fmt_bench[:2] if SMOKE and spec != "sandbox" else fmt_bench
    kw = {"max_new_tokens": max_new_tokens} if spec != "sandbox" and max_new_tokens else {}
    fmt_reports[label], _ = evaluate_model(get_model(spec), records, out_dir / "formats" / label.split(" ")[0],
                                           batch_size=8, **kw)
print(f"held-out format benchmark: {len(fmt_bench)} records, templates {formats}")
rep.group_table(reports, fmt_reports)

# %%
rep.bleu_table(reports)

# %% [markdown]
# ## 5. 通用能力检查：有没有灾难性遗忘？
#
# 笔记提醒训练数据里要混入通用 SFT 数据（Agent : 通用 ≈ 5 : 1），防止通用能力剧烈下降。这里用数据阶段
# 留出的通用样本，比较各模型回答与参考答案的 ROUGE-L：微调后若与基础模型相当，说明没有明显遗忘。

# %%
general_path = general_test_path(data_path)
general = [json.loads(line) for line in general_path.read_text(encoding="utf-8").splitlines() if line.strip()] \
    if general_path else []
general = general[:n_general]
rows = {}
for label, spec in models.items():
    if spec == "sandbox" or not general:
        continue  # the emulator only knows agent queries
    res, _ = rep.general_ability(get_model(spec, device=device), general, out_dir / label.split(" ")[0] / "general_cache.jsonl",
                                 max_new_tokens=max_new_tokens or 160)
    rows[label] = res
pd.DataFrame(rows).T if rows else print("no held-out general samples found in", data_path)

# %% [markdown]
# ### 5:1 配比的作用：两次训练的真实数字
#
# 在练习 03.3 里你**预测**过：完全不混通用数据会怎样。现在对照实测。上面只比较了一个微调模型；要看配比本身的作用，需要**两次**训练：
# 同一个基座、同样的步数和学习率，一次只用 Agent 样本，一次用 5 : 1 的混合数据（注意：混合数据里的通用样本大部分是**重复使用**的——
# 通用池只有两百多条不重复的，见实验 03 第 10 节）；再在**训练时没见过**的通用样本和 Agent 样本上算 loss（每个被监督 token 的交叉熵，
# 越低越好；通用 loss 比基座模型**升高**，才是遗忘）。这是 `bench/mix_forgetting.py` 在 2 核 CPU 上实测的结果（命令与时间见表上方），
# 也可以自己重跑：

# %%
from labkit.evaluate.report import mix_effect_table
from labkit.exercises.nb06 import load_mix_results
from labkit.paths import REPO_ROOT

mix_results = load_mix_results(REPO_ROOT / "bench" / "results" / "mix_forgetting.json")
print("实测于", mix_results["measured"], "｜命令：", mix_results["command"], "｜混合数据：", mix_results["mix"])
mix_effect_table(mix_results)

# %% [markdown]
# ### 练习 06.2：读两次训练的数字（§3.2 注意：5 : 1 防止灾难性遗忘）
#
# 从上表读出三件事：(1) 两次训练后，通用留出集的 loss 相对基座模型各变化了多少（训练后 − 训练前）？(2) 有没有哪一次训练让它比基座
# **更高**（也就是测到了遗忘）？(3) 混入通用数据的代价：混合训练的 Agent 留出 loss 比只用 Agent 数据的高多少？
# 答案按数据来，不按笔记的预期来。

# %%
# >>> 练习 06.2：在下面写你的答案
my_reading = ...  # TODO：{"general_change": {"agent only": 数, "mix": 数}, "forgetting": True/False, "agent_cost_of_mix": 数}
# <<< 练习 06.2
check("06.2", my_reading, results=mix_results)

# %% [markdown]
# 读数时注意：仓库里这次实测（60 步，见 `bench/README.md`）两次训练后的通用 loss **都比基座低**（3.86 → 3.21 / 2.46）：
# 60 步内只用 Agent 数据并没有出现可测的遗忘；混入通用数据带来的是**通用能力更好**，代价是 Agent 留出 loss 高一些（0.63 对 0.23）。
# 所以这份数据支持的说法是“5 : 1 让通用能力变好、Agent 拟合稍慢”，而不是“它防止了遗忘”——笔记说的遗忘要训练更久才可能出现，
# 可以用更大的 `--steps` 重跑 `bench/mix_forgetting.py` 去找它。留出的通用样本只有 20 条，看方向，不看小数点。

# %% [markdown]
# ## 6. 端到端成功率：让模型真的在沙盒里跑 Agent 循环
#
# 单步打分看的是“下一步对不对”。端到端评估让模型用模板-1 规划、调用沙盒工具、再用模板-2 总结，
# 然后检查：**所有参考工具都被调用过且关键参数匹配**（值相同，或自由文本参数 ROUGE-L ≥ 0.5），并且
# **最终回答包含参考答案里的所有数字**（没有数字时要求 ROUGE-L ≥ 0.5）。两者都满足才算成功。

# %%
from labkit.evaluate.runner import agent_row, agent_success

agent_rows, traces = {}, {}
for label, spec in models.items():
    if SMOKE and spec != "sandbox":
        continue  # a random tiny model would only burn CPU here
    path = out_dir / label.split(" ")[0] / "agent_traces.jsonl"
    path.unlink(missing_ok=True)
    rate, outcomes = agent_success(get_model(spec, device=device), queries[:n_agent_queries], traces_path=path)
    agent_rows[label] = agent_row(rate, outcomes)  # finished: the run ended with an answer
    traces[label] = path
pd.DataFrame(agent_rows).T

# %% [markdown]
# 部署时常用**受约束解码**（guided decoding，即 strict function calling / guided JSON）：模型写工具调用时，工具名只能从提供的
# 工具里选，参数名只能来自该工具的 JSON schema，参数值和思考仍由模型自己写。它是本地模型的一个选项（`guided=True`，默认关闭），
# 只作用于规划步骤；总结和上面的 KAgentBench 打分始终是自由生成。下面在同样的留出任务上给微调后的模型再跑一遍，单独成行
# （smoke 模式上面没有跑本地模型，这一格跳过）。它能保证格式和工具名，却不能替模型选对工具、填对参数值。

# %%
tuned_label = f"tuned ({tuned_path.name})"
if tuned_label in agent_rows:  # course mode: the free row is above, same tasks
    path = out_dir / "tuned" / "agent_traces_guided.jsonl"
    path.unlink(missing_ok=True)
    rate, outcomes = agent_success(get_model(models[tuned_label], device=device), queries[:n_agent_queries],
                                   traces_path=path, guided=True)
    agent_rows[tuned_label + " + guided decoding"] = agent_row(rate, outcomes)
pd.DataFrame(agent_rows).T

# %% [markdown]
# ## 学习曲线：训练多久才够？
#
# notebook 05 训练时按 `curve_points` 等间隔保存了几份权重快照（只有权重，bf16，没有优化器状态）。在同一小批留出
# query 上给基础模型（0 分钟）、每份快照和最终模型打分，画出 Overall 随训练分钟数的变化：曲线还在上升，说明多训练
# 会更好；已经走平，说明瓶颈在数据或模型，而不是训练时间。（快照以 bf16 保存，分数与 fp32 的最终模型有细微差别。）
# 基础模型和最终模型的答案前面评完整 benchmark 时已经生成并缓存，这里直接读取（表中 `generated` 列是真正调用模型的 prompt 数，这两个点为 0）。
#
# <!-- expected: 06.curve -->
# **你应该看到（course 模式实测，2026-12-05，8 条留出 query；分钟数是共用 CPU 上日志记下的训练时间）**：Overall——base：5.0（0 分钟）；step 112：23.1（15.1 分钟）；step 223：44.7（31.3 分钟）；step 334：56.7（50.8 分钟）；最终模型（step 446）：60.6（67.2 分钟）。每个点都比前一个高（依次 +18.1、+21.6、+12.0、+3.9），到最后还在升，只是最后一段涨得最少；只有 8 条 query，一段里几分的差别可能只是噪声。这一格只为中间的 3 个快照各生成 60 个回答（基础模型和最终模型读前面的缓存），用了 853 s（约 14 分钟）。
#
# ![course 实测的学习曲线](expected/06_learning_curve.png)
# <!-- /expected -->

# %%
curve_base = None if SMOKE else base_model
caches = {base_model: out_dir / "base" / "cache.jsonl", str(tuned_path): out_dir / "tuned" / "cache.jsonl"}
curve = rep.learning_curve(tuned_path, benchmark, out_dir, base=curve_base, n_queries=n_curve_queries,
                           max_new_tokens=max_new_tokens, caches=caches, device=device)  # base, final: cached
if not curve.empty:
    rep.plot_curve(curve, out_dir / "learning_curve.png")
curve

# %% [markdown]
# ### 天花板：训练一整轮会怎样？
#
# 上面的曲线只有课程训练的那几个点。要分清瓶颈是**训练时间**还是**数据**，就把同一份配方训练完整一轮，在 ¼、½、¾、1 轮
# 各取一个快照，在完整的 benchmark 和端到端任务上打分（`python bench/ceiling.py --run 训练输出目录`）。在两核 CPU 上训练加打分
# 要一个多小时，所以 notebook 里不跑，只给出实测；曲线如果到一轮还在升，说明多训练还有用；走平了，说明该换数据了。
#
# <!-- expected: 06.ceiling -->
# **你应该看到（实测，2026-12-05，2 vCPU Intel Xeon（AMX + AVX-512-BF16），与别的任务共用 CPU；分钟数按 bench/bench_step.py 在安静 CPU 上测得的 89.2 条样本/分钟换算；`python bench/ceiling.py --run runs/train/ceiling`）**：同一份课程数据训练一整轮（2,840 条样本），每个点在 40 条留出 query 的 benchmark 上打分（95% 区间），端到端在 20 个留出任务上算。
#
# | 点 | 见过的样本 | 安静 CPU 上的分钟 | Overall | Tool-use | 端到端完成 |
# |---|---|---|---|---|---|
# | base | 0 | 0 | 4.2 [3.8, 4.7] | 0.0 | 0 / 20 |
# | 1/4 epoch | 703 | 7.9 | 25.7 [21.2, 30.6] | 25.5 | 1 / 20 |
# | 1/2 epoch | 1,408 | 15.8 | 43.8 [37.5, 50.5] | 34.2 | 1 / 20 |
# | 3/4 epoch | 2,104 | 23.6 | 63.0 [57.2, 68.8] | 60.6 | 11 / 20 |
# | 1 epoch | 2,840 | 31.8 | 70.6 [65.2, 75.7] | 73.7 | 12 / 20 |
#
# 整整一轮之后 Overall 70.6、端到端 12/20；端到端在 ½ 轮到 ¾ 轮之间才突然起来——学生先学会格式和选工具，再学会把一个多步任务做完。
#
# ![一轮之内的天花板曲线](expected/06_ceiling_curve.png)
# <!-- /expected -->

# %% [markdown]
# ## 为什么变好、还差在哪
#
# 分数表说了“变好了多少”，没说“为什么”。这一节用**本次运行自己的预测**回答：同一批留出 query 上，基座模型和微调模型的回答并排看；
# 把微调模型的每个规划回答按失败类型分类；再看见过 / 没见过的模板和学习曲线。下面三格只读前面已经生成的预测，几秒钟就好。
#
# <!-- expected: 06.why -->
# **你应该看到（course 模式实测，2026-12-05）**：微调后的模型在 112 个规划回答里，选对工具 65 个；读不出工具（格式坏了）23 个（全部在没见过的模板上，其中 22 个在第一步：坏在格式，而不是计划）；还需要工具时就 task_complete 17 个（其中 15 个在多步 query 的第一步之后：结束得太早）；选了另一个提供的工具 5 个；调用没有提供的工具 2 个。见过的模板 Overall 67.8，没见过的 39.6；端到端 20 条 query 成功 0 → 8 条。
#
# ![course 实测的失败类型](expected/06_failure_kinds.png)
# <!-- /expected -->
#
# 先并排看回答（前两条留出 query 的规划记录；“判定”一列是下面失败分类给这个回答的类型）：

# %%
from labkit.evaluate.failures import answers_side_by_side, failure_counts, planning_answers, plot_failure_kinds

local = [label for label in preds if not label.startswith("sandbox")]  # base (smoke: tiny) and tuned
side = answers_side_by_side(benchmark, {label.split(" ")[0]: preds[label] for label in local}, n_queries=2)
side.style.set_properties(**{"white-space": "pre-wrap", "text-align": "left"})

# %% [markdown]
# 失败类型：每个规划回答按评分器读出的工具名归入一类——选对工具（参数可能还不对，Tool-use 会扣分）、还需要工具时就
# `task_complete`（结束得太早）、选了 prompt 提供的另一个工具、调用了没有提供的工具、读不出工具（格式坏了）。
# 左边一组是见过的模板，右边是没见过的；再按“第一步 / 后面的步骤”分一次，看结束得太早是不是集中在多步 query 的后面几步。

# %%
studied = local[-1]  # the tuned model in course mode (smoke: the last local model)
answers = planning_answers(benchmark, preds[studied])
kinds = failure_counts(answers, by="tag")
plot_failure_kinds(kinds, out_dir / "failure_kinds.png", title=f"{studied} 的规划回答")
by_step = failure_counts(answers.assign(第几步=answers["step"].map(lambda k: "第一步" if k == 0 else "后面的步骤")),
                         by="第几步")
display(kinds)
by_step

# %% [markdown]
# 怎么读（以参考 CPU 上 course 模式的实测为例，数字见本节开头的“你应该看到”；你的数字在上面）：
#
# - **为什么变好**：基座模型几乎从不按格式输出一个能读出的工具（分数表里 Planning、Tool-use 是 0），也不会停；
#   训练一轮之后，微调模型多数回答选对了工具、并且写完一步就停——它学到的首先是**格式和停止**，其次是**选工具**。
# - **还差在哪**：实测里最大的一类错误是**读不出工具**，全在没见过的模板上、几乎都在第一步——换了一套没见过的 prompt，
#   学生第一步就写不对格式。其次是**还需要工具时就 task_complete**，集中在多步 query 的后面几步——训练数据里每条轨迹都以
#   task_complete 结束，学生学会了“结束”，还没学会“什么时候还不能结束”。选错提供的工具、调用没提供的工具都很少。
#   下一步可以试什么、哪些已经测过（例如 `step_balance`），见 `bench/README.md`。
# - **见过 vs 没见过的模板**：第 4 节的区间表里没见过的模板低一大截，但也比基座高得多——学到的不只是某一套 prompt 的样子。
# - **学习曲线**：上一节的曲线一路上升，最后一段涨得最少；只有 8 条 query，分不清是开始走平还是噪声——
#   上面“天花板”一节在完整的 benchmark 上量了一整轮。
#
# ## 实验：改一处配方，重训，再评估（全参数 vs LoRA，§3.3）
#
# Agent Tuning 的核心动作是**改数据或配方 → 重训 → 再评估**。笔记 §3.3 说“Agent 模型通常需要全参数训练，LoRA 效果不好”。
# 我们在同样的**训练分钟数**下检验它：一份用 course 配方训练全部参数（词嵌入仍冻结），一份只训练秩为 `lora_r` 的 LoRA 适配器
# （`TrainSettings(lora_r=...)`，用 Hugging Face 的 peft；训练结束时把适配器合并回权重，所以评估方式完全一样）。两份都用恒定学习率，
# 训练到时间预算（`max_minutes`）就停，再在**同一小批留出 query** 的规划记录上打分，附 95% 区间。
#
# **这一节要等多久**：smoke 模式两份各训练约 6 秒（tiny 模型，只验证流程）。course 模式两份各训练 `experiment_minutes`（默认 5 分钟），
# 再各生成约 30 个回答（参考 CPU 上约 1 分钟）；运行时格子里有训练进度和预计剩余时间。这个实验**还没有在参考机器上跑过**，
# 没有可供对照的实测数字——你的结果就是这台机器上的第一份，请如实记下。

# %%
from dataclasses import replace

from labkit.evaluate.report import query_of, recipe_table, recipe_verdict
from labkit.labs import recipe_run
from labkit.train import TrainSettings

minutes = experiment_minutes or (0.1 if SMOKE else 5.0)
n_exp = experiment_queries or (1 if SMOKE else 8)
keep = list(dict.fromkeys(query_of(r["id"]) for r in benchmark))[:n_exp]
subset = [r for r in benchmark if r["type"] == "plantooluse" and query_of(r["id"]) in keep]
arms = {}
for arm, name, r in (("full", "full", 0), (f"LoRA r={lora_r}", "lora", lora_r)):
    base_cfg = TrainSettings.for_mode(mode, data_path=str(data_path / "train.jsonl"), device=device,
                                      output_dir=str(runs_dir() / "experiment" / mode / name))
    cfg = replace(base_cfg, curve_points=0, lr_scheduler="constant", max_minutes=minutes, lora_r=r)
    arms[arm] = recipe_run(cfg, subset, out_dir / f"experiment_{name}", device=device,
                           max_new_tokens=max_new_tokens or None)
exp_table = recipe_table(arms)
print(f"每种配方训练 {minutes} 分钟；评估：{len(keep)} 条留出 query 的 {len(subset)} 条规划记录")
print(recipe_verdict(exp_table))
exp_table

# %% [markdown]
# 读表：`trainable params` 是真正被更新的参数数（LoRA 少两个数量级），`steps` 是同样的分钟数里各走了多少步（LoRA 每步省掉了大部分
# 优化器状态和权重更新，但前向、反向仍要穿过整个模型，所以快不了太多）。分数差距的区间跨过 0，就是**这次没测出差别**；
# 笔记的结论针对的是 7B/13B 在大量数据上的训练，一台 2 核 CPU 上几分钟的训练能说明的有限——如实写下你看到的，再想想还缺什么证据
# （更多 query、更长训练、多个种子）。想换别的配方？把上面的 `lora_r` 换成别的值，或者改 `TrainSettings.for_mode` 的其他设置（例如
# `lr`），重跑这一格即可（每种配方的模型在 `runs/experiment/<mode>/` 下，删掉目录才会重新训练）。

# %% [markdown]
# ## 7. 人工评估
#
# 评分标准（笔记 §3.4）：5 完全正确；4 小有出入，核心信息准确，补充信息错误 ≤ 10%；3 核心信息准确，但 10%–60%
# 的补充信息不正确；2 核心信息不正确，或超过 60% 的内容有错误；1 核心信息存在重大不准确；**违规内容一票否决，记 0 分**
# （我们把答非所问、编造事实也归入 0 分）。**4 分和 5 分算“可用”**。
#
# 每次点击立即写入 `labels_<标注员>.jsonl`（并强制写到磁盘上，断电也不丢），控件下方确认“已保存”；可以回到上一条、撤销或重做一个标签；
# 关掉 notebook 再打开会从第一条未标注的继续；全部标完后按钮变灰、界面关闭。两位标注员
# 各自标注同一批轨迹后，用 Cohen's κ 衡量一致性（κ > 0.6 一般认为一致性较好；太低说明标准或培训需要改进）。
#
# **标注的是谁的轨迹**：course 模式标注**微调后模型**的端到端轨迹（第 6 节最后跑的那个模型）；smoke 模式第 6 节只跑了模拟器
# （随机初始化的 tiny 模型跑 Agent 循环只会浪费 CPU），所以 smoke 模式里标注的是**模拟器老师的轨迹**，只用来演示标注流程——
# 下面一行会打印实际被标注的模型。

# %%
from labkit.agent import Trace
from labkit.evaluate.human import Annotator, agreement, item_from_trace

label0, trace_path = list(traces.items())[-1]  # the last model run (the tuned one in course mode)
print("标注的是这个模型的轨迹：", label0)
items = [item_from_trace(t.to_dict(), f"{label0.split(' ')[0]}:{i}") for i, t in enumerate(Trace.load(trace_path))]
ann = Annotator(items, out_dir / f"labels_{annotator}.jsonl", annotator=annotator, interactive=interactive)
ann.widget() if interactive else print(ann.summary())

# %%
other = sorted(p for p in out_dir.glob("labels_*.jsonl") if p.name != f"labels_{annotator}.jsonl")
if other:
    print("0–5 分上的一致性：", agreement(out_dir / f"labels_{annotator}.jsonl", other[0]))
    print("“可用（≥ 4 分）”上的一致性：", agreement(out_dir / f"labels_{annotator}.jsonl", other[0], usable_only=True))
else:
    print("目前只有一位标注员：请第二个人用 annotator='B' 标注同一批轨迹，再运行本单元")

# %% [markdown]
# ### 练习 06.3：可用率与标注一致性 κ（§3.4.2 人工评估）
#
# 两位标注员 A、B 按笔记的标准给同样 12 条轨迹打了分（下面打印）。请**自己算出**：A 的可用率（4 分和 5 分算可用，写成 0–1 的比例），
# 以及 A、B 在“可用 / 不可用”两类上的 Cohen's κ = (p_o − p_e) / (1 − p_e)。不要调用 `cohen_kappa`。

# %%
from labkit.exercises.nb06 import SCORES_A, SCORES_B

print("A:", SCORES_A)
print("B:", SCORES_B)

# %%
# >>> 练习 06.3：在下面写你的答案
my_human = ...  # TODO：{"usable_rate_a": ..., "kappa_usable": ...}
# <<< 练习 06.3
check("06.3", my_human)

# %% [markdown]
# ## 小结
#
# * 自动评估的分数用于**对比**（同一 benchmark 上微调前后、seen 与 unseen 模板），不要拿绝对值和别的 benchmark 比；
# * benchmark 只有几十条 query：看 bootstrap 的 95% 区间，区间不重叠的差距才可信；学习曲线告诉我们多训练还有没有用；
# * Overall 的权重照搬 KAgentBench（0.25/0.35/0.10/0.20/0.10），Tool-use 权重最大；
# * 通用能力检查和端到端成功率补充了单步打分看不到的东西（遗忘、多步衔接）；
# * 人工评估最可靠但昂贵：只在大的版本上做，并用 κ 检查标注标准是否一致；
# * 模拟器的高分来自它读的正是参考答案所用的金标注，只证明流程自洽；真正要看的是基座 → 微调的差距；
# * 5 : 1 混入通用数据的作用要用两次训练来看：仓库的实测里两次训练后通用 loss **都下降了**（只用 Agent −0.65，5 : 1 混合 −1.40），
#   60 步内没有测到遗忘；混合换来的是更好的通用能力，代价是 Agent 留出 loss 高一些——预测（练习 03.3）要拿实测来对照；
# * 为什么变好、还差在哪：学生先学会格式和停止，再学会选工具；最大的短板是还需要工具时就 task_complete（结束得太早）；
# * 改配方要重训再评估：全参数 vs LoRA 在同样分钟数下的差别，以本机的实测和区间为准。
#
# ## 延伸阅读（笔记 §5）
#
# * **KwaiAgents / KAgentBench**：3k+ 条人工编辑的评测数据，五个维度 + Overall；Qwen-7B 21.17 → Qwen-7B-MAT 39.85，
#   Baichuan2-13B 14.89 → Baichuan2-13B-MAT 45.34（笔记 §3.4.1 的表，练习 06.1）；
# * **AgentTuning**：AgentLM 在未见过的 Agent 任务上泛化，同时通用语言能力基本保持不变——正是本实验第 4、5 节要检查的两件事；
# * **ToolBench（ToolLLaMA）**：469,585 条数据、3,451 个工具、16,464 个 API，同时提供训练与评估脚本和 ToolLLaMA-2-7b-v2 等模型。
#
# 所有产物在 `runs/eval/<mode>/`：`benchmark.jsonl`、各模型的 `predictions.jsonl`、`scores.json`、缓存、图和标注文件。
