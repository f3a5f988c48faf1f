# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 实验 03：Agent Tuning 训练数据构建
#
# 本实验对应课程笔记 §3.2「训练数据准备」和 §4.3「训练数据构建关键经验」。Agent Tuning（Tool SFT）的训练数据
# 和普通 SFT 一样是 **Input → Output** 对，特殊之处在于：Prompt 更复杂、约束更多；Agent 是**多步**工作的，
# 训练数据也要多步、前后关联。笔记给出的四个步骤，就是本实验的主线：
#
# 1. 根据业务**收集大量 query**，尽可能覆盖各种场景；
# 2. 把每个 query 与 **prompt 模板**结合，构成 agent prompt（训练数据的输入）；
# 3. 为每个 agent prompt 构建**标准答案**（输出）——借助 GPT-4 级大模型降本提效（这里用离线的**老师模拟器**）；
# 4. 通过**人工修正或筛选**得到高质量的 Output：数据质量越高，Agent Tuning 的效果越好。
#
# 之后按 §4.3 的清单做清洗：去重、隐私匿名化、数据分割与防泄漏、Agent : 通用 = 5 : 1 的配比（防止灾难性遗忘）。

# %% tags=["parameters"]
mode = "smoke"  # "smoke"：小规模快速检查（< 3 分钟）；"course"：课堂完整版（≥ 2000 条 Agent 样本）
teacher = "sandbox"  # 老师模型：GPT-4 级老师的离线模拟器；也可填 "openai" 或 "openai:<模型名>"
teacher_noise = 0.15  # 仅模拟器：每次回复带有真实老师常见错误的概率
out_dir = None  # 输出目录；None 表示 runs/data/<mode>
interactive = False  # True：在 Jupyter 里用控件逐条人工审核；papermill 下为 False，只应用已保存的审核决定
agent_general_ratio = 5.0  # Agent : 通用 数据配比（笔记经验值 5 : 1）
workers = 2  # 并发调用老师的线程数（真实 API 时受限流约束）
price_per_1k_prompt = 0.0  # 每 1k 输入 token 的价格（模拟器为 0；换成真实 API 时填写）
price_per_1k_completion = 0.0
seed = 0

# %%
import json
from pathlib import Path

import pandas as pd
from IPython.display import display

from labkit.data import build_dataset, evaluate_pii, load_queries, read_training_set
from labkit.paths import runs_dir

out = Path(out_dir) if out_dir else runs_dir() / "data" / mode
teacher_spec = f"sandbox:noise={teacher_noise}" if teacher == "sandbox" else teacher
print(f"mode={mode}; teacher={teacher_spec}; 输出目录: {out}")

# %% [markdown]
# ## 1. 收集 Query：问题库
#
# 笔记 §4.1 把训练数据的输入拆成三个变量：**Query、Tools、Agent Prompt 模板**，数据就是三者的组合。
# 先看 Query：每条都带有金标注（`gold_calls` 工具调用序列、`thoughts` 任务描述、`reference_answer` 参考答案），
# 后面既用来驱动老师模拟器，也用来检查老师的输出是否符合意图。`cluster` 是问题的场景类别。

# %%
queries = load_queries()
bank = pd.DataFrame(queries)
print(f"{len(bank)} 条 query，{bank['cluster'].nunique()} 个场景类别；语言分布：{bank['lang'].value_counts().to_dict()}")
bank["n_calls"] = bank["gold_calls"].map(len)
display(bank.groupby("cluster").agg(queries=("id", "size"), mean_calls=("n_calls", "mean")).round(2).T)
display(bank[["id", "query", "n_calls", "reference_answer"]].sample(5, random_state=seed))

# %% [markdown]
# ## 2. 一键构建：`build_dataset`
#
# `build_dataset` 把整条流水线串起来（逻辑都在 `labkit.data` 里，下面逐段解释每一步的结果）：
#
# | 步骤 | 做什么 | 对应 |
# |---|---|---|
# | 问题库去重 + 切分 | 精确 + 近似去重；按“改写组”留出测试 query，并**留出整套模板**作为“未见模板” | §4.3 数据分割 / 避免泄漏 |
# | 老师标注 | 每个 (query, 模板) 跑一遍规划循环：每一步的 prompt 和输出都记下来，工具真实执行；最后用模板-2 总结 | §3.2 第 2、3 步 |
# | 自动过滤 | 解析失败、未知工具、参数不合 Schema、步数过多、工具序列与意图不符、结论无依据… 每条都有原因码 | §3.2 第 4 步、§4.3 数据质量 |
# | 人工审核 | 接受 / 修改 / 拒绝，每个决定立即写盘 | §3.2 第 4 步 |
# | 匿名化 + 去重 + 配比 + 导出 | PII 替换为占位符；Agent : 通用 = 5 : 1；导出 JSONL 与 `datasets.Dataset` | §3.2 注意、§4.3 隐私 |
#
# 老师调用有**磁盘缓存**（以“模型名 + messages + 生成参数”的 sha256 为键，追加写 JSONL）：重跑 0 次调用；
# 中途被杀掉（哪怕 SIGKILL）也能断点续跑，不丢不重。进度条显示剩余时间，并统计 token 数与费用。

# %%
result = build_dataset(mode, out, teacher=teacher_spec, agent_general_ratio=agent_general_ratio, workers=workers,
                       seed=seed, price_per_1k_prompt=price_per_1k_prompt,
                       price_per_1k_completion=price_per_1k_completion)
stats = result.stats
lab = stats["labelling"]
print(f"用时 {stats['seconds']} 秒；标注任务 {lab['jobs']} 个（本次新做 {lab['new']}，已完成跳过 {lab['skipped']}，失败 {lab['failures']}）")
print("老师调用：", lab["usage"])

# %% [markdown]
# ## 3. 看一条老师标注的轨迹
#
# 一条“样本”是一个 (query, 模板) 的完整轨迹：每一步的**完整 prompt**（输入）和老师的**输出**，工具的观察结果，
# 以及模板-2 的总结。训练时，**每一步**变成一条训练数据（KAgentInstruct 的做法：平均每个 query 约 1.85 步）。

# %%
from labkit.agent import Trace
from labkit.data.label import load_labelled

records = {r["job_id"]: r for r in load_labelled(out / "labelling")}
example = next(r for r in records.values() if len(r["trace"]["steps"]) >= 3)
print(example["job_id"], "| 本样本提供的工具（金标工具 + 2~3 个干扰工具）:", example["tools"])
display(Trace.from_dict(example["trace"]))

# %% [markdown]
# ## 4. 自动过滤：每条被拒样本都有原因码
#
# 老师（哪怕是 GPT-4）也会出错：工具选错、JSON 写坏、多出客套话、漏参数、参数值错。模拟器按 `noise` 概率注入
# 这几类错误（真实老师没有这种“标签”，所以我们只能靠过滤规则去发现它们）。原因码：

# %%
display(result.rejections[["samples", "primary", "share", "meaning"]])
f = stats["filters"]
print(f"通过 {f['accepted']}，拒绝 {f['rejected']}；模拟器注入了错误的轨迹 {f['emulator_noise']['traces_with_injected_noise']} 条，"
      f"其中被过滤规则拦下 {f['emulator_noise']['of_which_rejected']} 条")
rej = pd.read_csv(out / "rejections.csv")
display(rej.groupby("code").head(1)[["job_id", "code", "step", "detail"]])

# %% [markdown]
# 注意最后一行的比例：过滤规则拦不住所有错误（例如“参数值错但格式完全正确”），这正是笔记强调**人工修正或筛选**的原因。
#
# ## 5. 人工审核
#
# 被拒的、或只是被“宽容解析”救回来的样本会被标记出来。审核控件逐条展示 prompt / 输出 / 原因，
# 可以**接受**、**修改**（在文本框里改输出）或**拒绝**；每个决定立即追加写入 `decisions.jsonl`，
# 再次运行 `build_dataset` 时合并回数据（老师调用全部命中缓存，0 次调用）。

# %%
from labkit.data import Reviewer

decisions = out / "decisions.jsonl"
print(f"待审核 {len(result.flagged)} 条；已保存的审核决定：{stats['filters']['review']}")
if interactive:
    display(Reviewer(result.flagged, decisions, reviewer="me"))
else:
    print("非交互模式（papermill）：跳过审核界面，只应用", decisions, "中已有的决定")

# %% [markdown]
# 在 Jupyter 中把 `interactive = True`，审核完后重新运行上面第 2 节的单元格即可把决定合并进数据集。
#
# ## 6. 数据清洗：去重与隐私匿名化（§4.3 第 5、6 条）
#
# - **去重**：精确重复（规范化后哈希相同）+ 近似重复：MinHash LSH，字符 3-gram，**Jaccard ≥ 0.8** 视为重复；
# - **匿名化**：手机号（国内/国际）、18 位身份证（校验位）、邮箱、银行卡（Luhn 校验）、可识别的姓名（“我叫X”“Mr. X”）
#   替换为 `<PHONE>` 等占位符。效果在我们手工标注的 `data/pii/labelled.jsonl` 上度量（含大量反例）：

# %%
from labkit.data.anonymize import anonymize

pii = evaluate_pii()
print(f"PII 检测：{pii['strings']} 条标注文本（{pii['negatives']} 条无 PII 的反例），"
      f"precision={pii['precision']:.3f}，recall={pii['recall']:.3f}")
display(pd.DataFrame(pii["per_type"]).T[["precision", "recall", "tp", "fp", "fn"]])
display(pd.DataFrame(pii["errors"]).head(8))
print(anonymize("我叫王小明，手机13812345678，邮箱wxm@example.com")[0])
print("问题库去重删除：", stats["queries"]["bank_duplicates_removed"], "条；训练样本中替换的 PII：", stats["pii_replaced"])

# %% [markdown]
# 漏掉的主要是**没有提示词的姓名**（如“张伟明天要去上海”）——规则方法的局限，真实项目可以再接 NER 模型。
#
# ## 7. 数据分割与防泄漏（§4.3 第 7 条）
#
# 测试集必须是模型**没见过的**：
# - **未见 query**：同一组改写（金标工具调用完全相同的 query）整组留出，保证每个场景类别都有测试题；
#   再用与去重相同的 MinHash 检查：训练集与测试集之间**精确重复 0、近似重复 0**；
# - **未见模板**：整套模板只出现在测试中，用来检验 Agent 是否只是“拟合了某一套 prompt”（§4.2 Meta-Agent 的动机）。

# %%
leak = json.loads((out / "leakage_report.json").read_text(encoding="utf-8"))
print("训练模板：", stats["train_templates"])
print("留出（未见）模板：", stats["test_templates"])
print({k: leak[k] for k in ("method", "threshold", "train_queries", "test_queries", "exact_overlaps",
                            "near_overlaps", "shared_gold_call_sets", "shared_templates", "ok")})
print("通用数据的泄漏检查：", {k: leak["general"][k] for k in ("exact_overlaps", "near_overlaps", "ok")})

# %% [markdown]
# ## 8. 配比与导出
#
# 笔记 §3.2：要在训练数据中加上通用 SFT 数据，防止灾难性遗忘，经验配比 **Agent 5 : 通用 1**。
# 导出格式：每行一条 `{"id", "source", "query_id", "template", "step", "messages"}`，`messages` 中每一轮带 `loss`
# 标记——只有老师的输出（assistant）参与损失计算，prompt 不参与。

# %%
from labkit.chat import render_chat

train = read_training_set(out / "train.jsonl")
print(stats["samples"]["mix"])
sample = next(s for s in train if s["source"] == "agent" and s["step"] == 1)
print("一条训练样本（学生模型实际看到的文本，末尾是需要学习的输出）：\n")
print(render_chat(sample["messages"], add_generation_prompt=False)[-900:])

# %% [markdown]
# 同一份数据也可以转换成公开数据集的格式（KAgentInstruct、ToolBench/ToolLLaMA、AgentInstruct、LLaMA-Factory ShareGPT），
# 方便和开源数据混合或交给其他训练框架：

# %%
from labkit.data import to_format, to_hf_dataset

ds = to_hf_dataset(train)
print(ds)
entry = to_format([s for s in train if s["query_id"] == sample["query_id"] and s["template"] == sample["template"]],
                  "kagentinstruct")[0]
print({k: (v if k != "llm_prompt_response" else f"[{len(v)} steps]") for k, v in entry.items() if k != "functions"})
print(json.dumps(to_format([sample], "sharegpt_fc")[0], ensure_ascii=False)[:300], "...")

# %% [markdown]
# ## 9. 数据统计：多样性与平衡（§4.3 第 2、3 条）
#
# 工具分布、每条轨迹的步数、token 长度（用学生模型 Gemma 的分词器统计；CPU 训练时长度直接决定耗时）、
# 被拒原因、模板配比、Agent : 通用 比例：

# %%
fig = result.plot()
print("token 长度：", stats["tokens"], "（计数方式：", stats["token_counter"], "）")
print("每个模板的样本数：", stats["samples_per_template"])

# %% [markdown]
# ## 10. 小结：§4.3 清单对照
#
# | 经验 | 本实验的做法 |
# |---|---|
# | 数据质量（准确性、一致性） | 金标意图 + 自动过滤原因码 + 人工审核（接受/修改/拒绝） |
# | 数据量与多样性 | Query × Tools（金标 + 干扰工具）× 多套模板的组合；course 模式 ≥ 2000 条 Agent 样本 |
# | 数据平衡 | 查看工具分布、模板配比、步数分布 |
# | 数据增强 / 合成 | 用 GPT-4 级老师（此处为模拟器）合成输出 |
# | 数据清洗 | 精确 + MinHash 近似去重 |
# | 隐私与合规 | PII 匿名化，并在标注集上度量 precision / recall |
# | 数据分割、避免泄漏 | 留出改写组与整套模板；泄漏报告：精确 0、近似 0 |
# | 持续更新 | 请求缓存 + 断点续跑：新增 query 或模板时只标注新增部分 |
#
# 产物都在输出目录中：`train.jsonl`（实验 05 用它训练）、`test_queries.jsonl` 与 `general_test.jsonl`（实验 06 评测用）、
# `stats.json`、`leakage_report.json`、`rejections.csv`。

# %%
print(sorted(p.name for p in out.iterdir()))
