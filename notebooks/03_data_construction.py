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
# 本实验对应课程笔记 §3.2「训练数据准备」、§4.1「训练数据的多样性」和 §4.3「训练数据构建关键经验」。Agent Tuning（Tool SFT）
# 的训练数据和普通 SFT 一样是 **Input → Output** 对，特殊之处在于：Prompt 更复杂、约束更多；Agent 是**多步**工作的，
# 训练数据也要多步、前后关联。**【重点】笔记给出的四个步骤**就是本实验的主线：
#
# 1. 根据业务**收集大量 query**，尽可能覆盖各种场景；
# 2. 把每个 query 与 **prompt 模板**结合，构成 agent prompt（训练数据的输入）；
# 3. 为每个 agent prompt 构建**标准答案**（输出）——借助 GPT-4 级大模型降本提效（这里用离线的**老师模拟器**）；
# 4. 通过**人工修正或筛选**得到高质量的 Output：数据质量越高，Agent Tuning 的效果越好。
#
# 之后按 §4.3 的清单做清洗：去重、隐私匿名化、Agent : 通用 = 5 : 1 的配比（笔记说用来防止灾难性遗忘；实验 06 用两次实测的训练检验它）、数据分割与防泄漏。
#
# ## 学习目标
#
# 1. **亲手执行**每一步：切分 → 渲染 prompt → 调老师 → 解析 → 标注全部轨迹 → 过滤 → 人工审核 → 生成样本 → 匿名化 → 去重 → 配比 → 泄漏检查，
#    每一步都是对 `labkit.data` 的一次短调用；最后用一键的 `build_dataset` 复现同样的结果（讲师与 Slurm 用它）；
# 2. 理解 Query × Tools × 模板 的组合如何带来多样性（§4.1【重点】）；
# 3. **手工构建一条训练样本**，与流水线生成的逐字一致（**练习 03.1**）；
# 4. 亲眼看到过滤规则**拦不住**的错误，找出来并在审核中拒绝（**练习 03.2**）；
# 5. 选择 Agent : 通用 配比，算出其中有多少通用样本是**重复使用**的，并预测它的作用（**练习 03.3**；实验 06 拿实测数字对照）。
#
# **先修**：实验 01、02（模板、规划循环、解析器）。离线、只用 CPU；不需要 GPU 或 API 密钥
# （有密钥时可以把 `teacher` 换成 `"openai"`，用真实大模型当老师）。
#
# <!-- expected: 03 -->
# **你应该看到（course 模式实测，2026-12-05，2 vCPU Intel Xeon（AMX + AVX-512-BF16），与别的任务共用 CPU，`labkit labs run 03 04 05 06 --mode course`，当时 configs/course.yaml 的 step_balance 还是关闭的（现在是 1.0：样本更多，分数更高，见 bench/README.md））**：整本 22 s（老师缓存为空）。
# 2,297 条 Agent 样本 + 459 条通用样本（5.004 : 1），训练模板 12 个、留出模板 3 个；样本 token 数 平均 456.9 / 中位 484 / p95 874 / 最长 1,325；训练 / 测试 query 424 / 111 条，泄漏 0 条。smoke 模式整本 26 s（2026-12-02，2 vCPU AMD EPYC，只有 AVX2，安静）。
# <!-- /expected -->

# %% tags=["parameters"]
mode = "smoke"  # "smoke"：小规模快速检查（< 3 分钟）；"course"：课堂完整版（≥ 2000 条 Agent 样本）
teacher = "sandbox"  # 老师模型：GPT-4 级老师的离线模拟器；也可填 "openai" 或 "openai:<模型名>"
teacher_noise = 0.15  # 仅模拟器：每次回复带有真实老师常见错误的概率
teacher_seed = -1  # 仅模拟器：噪声的随机种子；-1 表示 smoke 用 4、course 用 0（见第 7 节的说明）
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

from labkit.data import load_queries, split_query_bank
from labkit.display import notebook_setup
from labkit.exercises import check
from labkit.paths import runs_dir
from labkit.tools import default_registry

notebook_setup()  # 表格完整显示、图中中文字体、屏蔽第三方库的进度条与警告
out = Path(out_dir) if out_dir else runs_dir() / "data" / mode
noise_seed = teacher_seed if teacher_seed >= 0 else (4 if mode == "smoke" else 0)
teacher_spec = f"sandbox:noise={teacher_noise},seed={noise_seed}" if teacher == "sandbox" else teacher
registry = default_registry()
print(f"mode={mode}; teacher={teacher_spec}; 输出目录: {out}")

# %% [markdown]
# ## 1. 收集 Query：问题库（第 1 步）
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
# ## 2. 先切分，再标注（§4.3 数据分割、避免泄漏）
#
# 测试 query 必须在**标注之前**就留出来：这样任何测试题的答案都不会被生成进训练数据。`split_query_bank` 做三件事：
# 问题库去重（精确 + MinHash 近似，Jaccard ≥ 0.8）；在每个场景类别里按“改写组”（金标调用完全相同的 query）整组留出测试；
# smoke 模式再取一个小的、固定种子的子集。

# %%
sel = split_query_bank(mode, seed=seed)
print(f"问题库 {len(sel.bank)} 条，去重删除 {len(sel.bank_dd.removed)} 条；训练池 {len(sel.split.train)}，测试池 {len(sel.split.test)}；"
      f"本模式标注 {len(sel.train)} 条、留出测试 {len(sel.test)} 条")

# %% [markdown]
# ## 3. Query × Tools × 模板 → agent prompt（第 2 步，§4.1【重点】多样性）
#
# 每个“标注任务”是一个 (query, 模板) 组合，并为它挑一组工具：金标工具 + 2~3 个**干扰工具**（模型要学会从多个工具里选对的）。
# 一部分模板整套留出、只用于测试（“未见模板”，§4.2 Meta-Agent 的动机：模型不能只拟合一套 prompt）。
# **【重点】**对 Query、Tools、模板三个变量分别构造多样的数据再组合，模型才不只拟合特定的模板，而能适应各种 query 和工具集合。

# %%
from labkit.data import mode_jobs

jobs, tsplit = mode_jobs(mode, sel.train, seed=seed)
print(f"{len(jobs)} 个标注任务；训练模板 {tsplit.train}；留出（未见）模板 {tsplit.test}")
display(pd.DataFrame([{"job_id": j.job_id, "template": j.template, "tools": ", ".join(j.tools)} for j in jobs[:6]]))

# %% [markdown]
# 取第一个任务，把 query 和它的工具集渲染进模板——这就是训练数据的**输入**：

# %%
from labkit.templates import load_template

job = jobs[0]
template = load_template(job.template)
prompt = template.render(goal=job.query["query"], tools=registry.subset(job.tools))
print(prompt)

# %% [markdown]
# ## 4. 老师写出标准答案（第 3 步）并解析
#
# 把 prompt 发给老师（这里是**模拟器**：按金标注扮演 GPT-4 级老师，并以 `teacher_noise` 的概率犯真实老师会犯的错），
# 再用解析器读出它的动作。解码规则按模板的输出格式来（`decoding_for`，与 Agent 循环用的是同一套）：ReAct 类格式要在
# `Observation:` 处停下，由工具来填写结果；JSON 格式在第一个完整的 JSON 对象闭合时停止。

# %%
from labkit.agent import decoding_for
from labkit.llm import get_model
from labkit.parsing import parse_output

reply = get_model(teacher_spec).chat([{"role": "user", "content": prompt}], **decoding_for(template.output_format).kwargs())
print("老师的输出：\n" + reply.text)
print("\n模拟器注入的噪声：", reply.meta.get("noise"))
print("解析结果：", parse_output(reply.text, template.output_format, tools=registry.subset(job.tools)))

# %% [markdown]
# ## 5. 标注全部任务：完整的多步轨迹
#
# `label_jobs` 对每个任务跑一遍完整的规划循环（实验 02 的 `run_plan` / 实验 01 的 `run_react`）：每一步的 prompt 和老师输出都记下来，
# 工具真实执行，最后用模板-2 总结。老师调用有**磁盘缓存**（以“模型名 + messages + 生成参数”的 sha256 为键，追加写 JSONL）：
# 重跑 0 次调用；中途被杀掉（哪怕是无法拦截的强制结束 `kill -9`，即 SIGKILL）也能断点续跑，不丢不重。进度条显示剩余时间，并统计 token 数与费用。
# 标注好的轨迹以 `<query id>::<模板名>@<老师身份的哈希>` 为 `job_id`：同一个文件夹里换一位老师，会重新标注，而不是沿用别的老师的结果。

# %%
from labkit.data.label import label_jobs, load_labelled

report = label_jobs(jobs, teacher_spec, out / "labelling", workers=workers, price_per_1k_prompt=price_per_1k_prompt,
                    price_per_1k_completion=price_per_1k_completion, registry=registry)
wanted = set(report.job_ids)  # 只取这位老师、这组设置下的标注
records = sorted((r for r in load_labelled(out / "labelling") if r["job_id"] in wanted), key=lambda r: r["job_id"])
print(f"{len(records)} 条轨迹（本次新做 {report.new}，已完成跳过 {report.skipped}，失败 {report.failed}）；老师调用：{report.usage}")

# %% [markdown]
# 一条“样本”是一个 (query, 模板) 的完整轨迹：每一步的**完整 prompt**（输入）和老师的**输出**，工具的观察结果，
# 以及模板-2 的总结。训练时，**每一步**变成一条训练数据（KAgentInstruct 的做法：平均每个 query 约 1.85 步）。

# %%
from labkit.agent import Trace

example = next(r for r in records if len(r["trace"]["steps"]) >= 3)
print(example["job_id"], "| 本样本提供的工具（金标工具 + 2~3 个干扰工具）:", example["tools"])
display(Trace.from_dict(example["trace"]))

# %% [markdown]
# ### 练习 03.1：手工构建一条训练样本（§3.2【重点】）
#
# 【重点】大模型 Fine Tuning 本质上是：给定输入 Input，调整参数，使模型生成的 Output' 与训练数据中的标准 Output 尽可能接近；
# 训练数据中的 Output 就是用来“监督”参数调整方向的。
#
# 用上面这条轨迹 `example` 的**第 1 步**（下标 1，即第二次调用老师），亲手拼出一条训练样本：
# `{"messages": [{"role": ..., "content": ..., "loss": ...}, ...]}`——哪一段是 Input、哪一段是 Output、哪一段参与 loss？
# 检查会把它与流水线 `step_samples(example)` 生成的样本逐字比较。

# %%
# >>> 练习 03.1：在下面写你的答案
my_sample = ...  # TODO：{"messages": [...]}，用 example["trace"]["steps"][1]
# <<< 练习 03.1
check("03.1", my_sample, record=example, step=1)

# %% [markdown]
# ## 6. 自动过滤：每条被拒样本都有原因码（第 4 步的“筛选”）
#
# 老师（哪怕是 GPT-4）也会出错：工具选错、JSON 写坏、多出客套话、漏参数、参数值错。模拟器按 `noise` 概率注入
# 这几类错误（真实老师没有这种“标签”，所以我们只能靠过滤规则去发现它们）。每条轨迹跑一遍 `check_record`：

# %%
from labkit.data import check_record, rejection_table

by_id = {q["id"]: q for q in sel.train}
verdicts = [check_record(r, by_id[r["query_id"]], registry) for r in records]
display(rejection_table(verdicts)[["samples", "primary", "share", "meaning"]])
noisy = [any(m.get("noise") for m in r["teacher_meta"]) for r in records]
caught = sum(n and not v.accepted for n, v in zip(noisy, verdicts))
print(f"通过 {sum(v.accepted for v in verdicts)}，拒绝 {sum(not v.accepted for v in verdicts)}；"
      f"模拟器注入了错误的轨迹 {sum(noisy)} 条，其中被过滤规则拦下 {caught} 条，**漏过 {sum(noisy) - caught} 条**")

# %% [markdown]
# ## 7. 过滤规则拦不住的错误
#
# 上面最后一个数字不是 0：有的轨迹**格式完全正确、工具也选对了、结论里的数字也都能在工具结果里找到**，可某个**参数值**是错的
# （比如查了另一天的日历、问了另一个问题）。过滤规则只能检查形式，判断不了“参数是否符合用户意图”——
# 这正是笔记强调**人工修正或筛选**的原因。（说明：模拟器的噪声由种子决定；`teacher_seed=-1` 让 smoke 模式用种子 4，
# 它的 48 条轨迹里有这样的漏网之鱼可供练习；course 模式用种子 0，漏网的更多——上面打印的数字就是本次的实际数目。）
#
# ### 练习 03.2：找出漏网之鱼，并在审核中拒绝它们（§3.2【重点】第 4 步，§4.3 数据质量）
#
# 找出**所有**通过了过滤（`verdict.accepted`）、但工具调用与金标注不一致的轨迹，把它们的 `job_id` 列成列表；然后在审核里**拒绝**它们
# （`record_decision(decisions, job_id, "reject", note=...)`，与审核控件的「拒绝」按钮写的是同一个文件）。
# 可用的东西：`records`、`verdicts`（一一对应）、`by_id[r["query_id"]]["gold_calls"]`（金标注）、
# `Trace.from_dict(r["trace"]).calls`（轨迹里的调用，`{"name", "args"}`）。比较前去掉 `task_complete`。

# %%
from labkit.data import record_decision

decisions = out / "decisions.jsonl"

# %%
# >>> 练习 03.2：在下面写你的答案
my_suspects = ...  # TODO：job_id 列表；再对每条调用 record_decision(decisions, job_id, "reject", ...)
# <<< 练习 03.2
check("03.2", my_suspects, records=records, verdicts=verdicts, queries=by_id, decisions=decisions)

# %% [markdown]
# ## 8. 人工审核（第 4 步的“修正”）
#
# 被拒的、或只是被“宽容解析”救回来的样本都要人看一眼。审核控件逐条展示 prompt / 输出 / 原因，可以**接受**、**修改**（在文本框里改输出）
# 或**拒绝**；每个决定立即追加写入 `decisions.jsonl` 并在控件底部确认“已保存”。再次打开时它从**第一条未决定的**样本继续，
# 已决定的样本标出它的决定、不计入待审。改过的输出会**立刻**用同一套过滤规则重新检查，并显示是否通过。

# %%
from labkit.data import Reviewer, apply_decisions, load_decisions

flagged = [(r, v) for r, v in zip(records, verdicts) if v.flagged]
print(f"待审核 {len(flagged)} 条；已保存的审核决定 {len(load_decisions(decisions))} 条")
if interactive:
    display(Reviewer(flagged, decisions, reviewer="me", recheck=lambda r: check_record(r, by_id[r["query_id"]], registry)))
else:
    print("非交互模式（papermill）：不显示审核界面，只应用", decisions, "中已有的决定")

# %% [markdown]
# 把审核决定合并回数据：接受覆盖过滤结果、拒绝删除、修改则对修改后的轨迹**重新过滤**。

# %%
records, verdicts, review = apply_decisions(records, verdicts, load_decisions(decisions),
                                            lambda r: check_record(r, by_id[r["query_id"]], registry))
accepted = [r for r, v in zip(records, verdicts) if v.accepted]
print("审核：", review, f"→ 最终保留 {len(accepted)} 条轨迹")

# %% [markdown]
# ## 9. 生成样本、匿名化、去重（§4.3 第 5、6 条）
#
# 每条保留的轨迹按步拆成训练样本；先**匿名化**再**去重**（两条只差在手机号上的样本，匿名化后才会被识别为重复）：
#
# - **匿名化**：手机号（国内/国际）、18 位身份证（校验位）、邮箱、银行卡（Luhn 校验）、可识别的姓名（“我叫X”“Mr. X”）替换为 `<PHONE>` 等占位符；
# - **去重**：样本只去精确重复（规范化后哈希相同）——Agent prompt 共用大段模板文字，近似去重会把不同 query 的样本误判为重复。

# %%
from labkit.data import agent_samples, anonymize_samples, dedup_samples

samples = agent_samples(accepted)
pii_counts = anonymize_samples(samples)
samples_dd = dedup_samples(samples)
print(f"{len(samples)} 条 Agent 样本；替换的 PII：{pii_counts or '无'}；精确重复删除 {len(samples_dd.removed)} 条")

# %% [markdown]
# 匿名化规则的效果在我们手工标注的 `data/pii/labelled.jsonl` 上度量（含大量反例）：

# %%
from labkit.data import evaluate_pii
from labkit.data.anonymize import anonymize

pii = evaluate_pii()
print(f"PII 检测：{pii['strings']} 条标注文本（{pii['negatives']} 条无 PII 的反例），"
      f"precision={pii['precision']:.3f}，recall={pii['recall']:.3f}")
display(pd.DataFrame(pii["per_type"]).T[["precision", "recall", "tp", "fp", "fn"]])
display(pd.DataFrame(pii["errors"]).head(8))
print(anonymize("我叫王小明，手机13812345678，邮箱wxm@example.com")[0])

# %% [markdown]
# 漏掉的主要是**没有提示词的姓名**（如“张伟明天要去上海”）——规则方法的局限，真实项目可以再接 NER 模型。
#
# ### 步骤位置平衡：调用过工具之后，学生看到的是什么？（§4.3 第 3 条 数据平衡）
#
# 每条样本是轨迹的一步，`step` 是它之前调用过几次模型。下表按步骤数出每一步的动作：`call` 调用工具、`finish` 结束
# （`task_complete` 或最终答案）、`conclusion` 模板-2 的总结。第 1 步（已经调用过一次工具）如果 `finish` 多于 `call`，
# 学生就会学到“调用一次就结束”，哪怕问题还需要下一个工具。数据设置 `step_balance`（`configs/<mode>.yaml`）打开时，
# 把第 1 步及以后的 `call` 样本按固定种子复制（每条最多 3 份），直到每一步 `call : finish` 达到设定的比例；关闭时原样不动。
# course 模式设的是 `1.0`：同样的数据、同样的配方各训练一轮，关闭时 Overall 53.7；打开后用两个随机种子各训练一次，
# 分别是 62.4 和 73.4（端到端 8 和 13 / 20）。两个种子之间就差了 11 分——**只训练一次，说明不了一个开关的作用**
# （数字与命令见 `bench/README.md`）。

# %%
from labkit.data import balance_steps, data_settings, step_action_table

agent, balance = balance_steps(samples_dd.kept, data_settings(mode).step_balance, seed=seed)
print(f"step_balance = {balance['ratio']}：复制了 {balance['added']} 条继续调用工具的样本")
display(pd.concat({"平衡前": step_action_table(samples_dd.kept), "平衡后": step_action_table(agent)}, axis=1))

# %% [markdown]
# ## 10. 混入通用数据（§3.2 注意：避免灾难性遗忘）
#
# 笔记：还须避免灾难性遗忘，即防止训练后模型的通用能力剧烈下降，因此要在训练数据中加上通用 SFT 数据，配比（经验值）**Agent 5 : 通用 1**。
# 通用数据先去重，并留出一部分作为实验 06 的“遗忘检查”（与训练部分之间同样没有泄漏）。
#
# 有一个实际问题：course 模式里我们的通用数据池**比 5 : 1 需要的少**（smoke 模式样本少，够用）。`mix()` 的做法是把池里的样本**重复使用**（新 id 带 `-repK` 后缀），
# 直到数量达到 Agent 样本数 ÷ 5。于是“5 : 1”在条数上达到了，模型见到的通用**内容**却只有池里那几百条——读实验 06 的结果时要记住这一点。
# 按 token 算差得更远：通用样本只有 9–121 个 token，Agent 样本平均近 500 个，5 : 1 的条数约是 66 : 1 的 token。数据设置
# `general_turns`（例如 4）把几条通用样本连成一段多轮对话，条数不变、通用 token 约多 4 倍。实测（一个种子，见 `bench/README.md`）：
# Agent 分数在两个种子的差距之内，留出通用样本上也没有测到遗忘——所以 course 配置没有打开它。
#
# ### 练习 03.3：选择配比，算出重复，预测它的作用
#
# 用 `mix(agent, general, ratio=...)` 按笔记的配比混合（`ratio` 是 Agent : 通用）。回答：按这个配比，`n_general` 是多少条？
# 通用池 `gen_train` 不够时，其中 `n_repeats` 条是重复使用的——是多少？最后写下你的**预测**：如果完全不混通用数据（只用 Agent 数据训练），
# 会发生什么——A. 通用能力基本保持；B. 通用能力明显下降（灾难性遗忘）；C. Agent 能力明显下降。预测不评对错，实验 06 会用两次实测的训练对照它。

# %%
from labkit.data import load_general, split_general
from labkit.data.mix import mix

gen_train, gen_test, gen_dd = split_general(load_general(), data_settings(mode).general_test, seed=seed)
print(f"通用数据：训练可用 {len(gen_train)} 条，留出 {len(gen_test)} 条；Agent 样本 {len(agent)} 条")

# %%
# >>> 练习 03.3：在下面写你的答案
my_ratio = ...  # TODO：Agent : 通用 的比值
my_mix = ...    # TODO：{"ratio": ..., "n_general": ..., "n_repeats": ..., "without_general": "A" / "B" / "C"}
# <<< 练习 03.3
check("03.3", my_mix, n_agent=len(agent), n_pool=len(gen_train))

# %%
mixed, mix_info = mix(agent, gen_train, ratio=agent_general_ratio, seed=seed)
print(mix_info)
print(f"通用样本 {mix_info['general']} 条：不重复的 {mix_info['general_unique']} 条，重复使用的 {mix_info['general_repeats']} 条")

# %% [markdown]
# <!-- expected: 03.mix -->
# **你应该看到（course 模式实测，2026-12-05）**：要混入 459 条通用样本，而留出测试集之后通用池只有 216 条不重复的，所以其中 **243 条是重复使用的**（每条平均用 2.1 次）。5 : 1 达到了，见到的通用内容却只有这 216 条。
# <!-- /expected -->

# %% [markdown]
# ## 11. 泄漏检查（§4.3 第 7 条）
#
# 最后用与去重相同的 MinHash 检查训练 query 与测试 query：**精确重复 0、近似重复 0**，测试模板也从未用于训练：

# %%
from labkit.data import leakage_report

leak = leakage_report(sel.train, sel.test, train_templates=tsplit.train, test_templates=tsplit.test)
print({k: leak[k] for k in ("method", "threshold", "train_queries", "test_queries", "exact_overlaps",
                            "near_overlaps", "shared_gold_call_sets", "shared_templates", "ok")})

# %% [markdown]
# ## 12. 一键复现：`build_dataset`（讲师与 Slurm 用）
#
# 上面每一步都是 `labkit.data` 的公开函数；`build_dataset` 就是按同样的顺序调用它们，再写出全部文件和统计。
# 它读取同一个老师缓存和同一个 `decisions.jsonl`，所以**不再调用老师**，结果与你一步步做出来的完全相同：

# %%
from labkit.data import build_dataset, read_training_set

result = build_dataset(mode, out, teacher=teacher_spec, agent_general_ratio=agent_general_ratio, workers=workers,
                       seed=seed, price_per_1k_prompt=price_per_1k_prompt,
                       price_per_1k_completion=price_per_1k_completion)
stats = result.stats
train = read_training_set(out / "train.jsonl")
print(f"用时 {stats['seconds']} 秒；本次新的老师调用 {stats['labelling']['new']} 个；样本 {len(train)} 条")
assert sorted(s["id"] for s in train) == sorted(s["id"] for s in mixed), "build_dataset 应与逐步执行的结果一致"
print("与逐步执行的结果一致：", stats["samples"]["mix"] == mix_info)

# %% [markdown]
# ## 13. 导出格式
#
# 每行一条 `{"id", "source", "query_id", "template", "step", "messages"}`，`messages` 中每一轮带 `loss` 标记——
# 只有老师的输出（assistant）参与损失计算，prompt 不参与。下面打印学生模型实际看到的文本的**最后一部分**（从一行的开头起）：

# %%
from labkit.chat import render_chat

sample = next(s for s in train if s["source"] == "agent" and s["step"] == 1)
text = render_chat(sample["messages"], add_generation_prompt=False)
tail = text[text.rfind("\n", 0, len(text) - 900) + 1:] if len(text) > 900 else text
print("一条训练样本（末尾是需要学习的输出）：\n\n" + tail)

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
# ## 14. 数据统计：多样性与平衡（§4.3 第 2、3 条）
#
# 工具分布、每条轨迹的步数、token 长度（用学生模型 Gemma 的分词器统计；CPU 训练时长度直接决定耗时）、
# 被拒原因、模板配比、Agent : 通用 比例：

# %%
fig = result.plot()
print("token 长度：", stats["tokens"], "（计数方式：", stats["token_counter"], "）")
print("每个模板的样本数：", stats["samples_per_template"])

# %% [markdown]
# ## 小结：§4.3 清单对照
#
# | 经验 | 本实验的做法 |
# |---|---|
# | 数据质量（准确性、一致性） | 金标意图 + 自动过滤原因码 + 人工审核（接受/修改/拒绝）；过滤拦不住的参数错误靠人（练习 03.2） |
# | 数据量与多样性 | Query × Tools（金标 + 干扰工具）× 多套模板的组合（§4.1【重点】）；course 模式 ≥ 2000 条 Agent 样本 |
# | 数据平衡 | 查看工具分布、模板配比、步数分布 |
# | 数据增强 / 合成 | 用 GPT-4 级老师（此处为模拟器）合成输出 |
# | 数据清洗 | 精确 + MinHash 近似去重 |
# | 隐私与合规 | PII 匿名化，并在标注集上度量 precision / recall |
# | 数据分割、避免泄漏 | 标注前留出改写组与整套模板；泄漏报告：精确 0、近似 0 |
# | 持续更新 | 请求缓存 + 断点续跑：新增 query 或模板时只标注新增部分 |
#
# 产物都在输出目录中：`train.jsonl`（实验 05 用它训练）、`test_queries.jsonl` 与 `general_test.jsonl`（实验 06 评测用）、
# `stats.json`、`leakage_report.json`、`rejections.csv`、`decisions.jsonl`。
#
# ## 延伸阅读（笔记 §5）
#
# - **KwaiAgents / KAgentInstruct**：20 万+ 条 Agent 指令微调数据，部分人工编辑——本实验的“每步一条样本”格式即来自它；
# - **ToolBench**：469,585 条数据，覆盖 3,451 个工具、16,464 个 API（RapidAPI）——Tools 维度多样性的极致；
# - **AgentTuning / AgentInstruct**：1,866 条高质量交互、6 个真实场景任务，与 ShareGPT 通用数据混合训练 AgentLM，
#   通用语言能力基本保持不变——正是本实验“Agent : 通用 = 5 : 1”要达到的效果。

# %%
print(sorted(p.name for p in out.iterdir()))
