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
# # 实验 04：Meta-Agent —— 自动生成多样化的 Agent Prompt 模板
#
# 本实验对应课程笔记 §4「Agent 泛化性提升」。§4.1 说：训练数据的输入由 **Query、Tools、Agent Prompt 模板**三个变量组合而成，
# 基座确定之后，能做的就是提升这三者的多样性。§4.2.1 指出问题：ReAct、ToolLLaMA、ModelScope、AutoGPT 各有一套模板，
# **只在一套模板下训练，模型可能只是拟合了这套 prompt，换一套性能就急剧下降**。Meta-Agent 的办法是让 GPT-4 按
# Profile / Instruction / Tools / Goal / Memory / Format 六个部分**自动写出大量不同的模板**，再筛掉质量差的。
#
# 本实验把 §4.2.2 的两段流程完整跑一遍：
#
# 1. **生成**：收集 query → 相似 query 聚成集合 → 每个集合填进 Meta-Agent Prompt → 生成候选模板；
# 2. **筛选**：删掉关键信息缺失的模板（结构检查）→ 同一批 query 分别放进标杆模板和候选模板，**同一个模型**作答、打分，
#    `score2 − score1 > ε` 的实例保留 → 同一模板的实例求平均分，**大于阈值**的模板保留。
#
# 一个新东西贯穿全程：**输出格式也是数据**。生成的模板可以自带一种新的输出格式（JSON 字段、YAML、XML 标签、`key=value`、
# ReAct 式前缀……），写在模板文件里即可，解析、渲染、老师标注、训练、评测都不用改代码。
#
# ## 学习目标
#
# 1. 说清“只用一套模板训练”为什么会过拟合，Meta-Agent 如何用**种子 query 引导**提升模板多样性（§4.2.1、§4.2.2）；
# 2. 看懂一个输出格式由哪些规则组成（解析器、标准答案渲染、停止标记、记忆排版、是否以调用结束），并声明一个新格式；
# 3. 用 TF-IDF 字符 n-gram + K-Means 把问题库聚类，挑出每类的代表 query；
# 4. **预测结构检查会删掉哪些候选**（**练习 04.1**）；
# 5. **实现 ε 规则**（**练习 04.2**）和**模板级阈值**（**练习 04.3**），读懂漏斗图；
# 6. **自己扮演 Meta-Agent**：为一个聚类写一个候选模板，让它通过结构检查和成对裁判（**练习 04.4**）；
# 7. 用“不同输出格式数、标题措辞数、两两相似度”衡量保留下来的模板有多多样，并把它们当普通模板文件加载；
# 8. 看测量结果：单模板训练 vs 多样模板训练，在**训练时没见过的输出格式**上谁更好；
# 9. 做 Meta-Agent **Tuning**：用保留的模板重建训练数据（实验 05 用它训练），几种输出格式整族留给实验 06 评测。
#
# **先修**：实验 01、02（模板的六个部分）、实验 03（训练数据流水线）。离线、只用 CPU；有 API 密钥时，模板由真实大模型书写、
# 由大模型当裁判。
#
# <!-- expected: 04 -->
# **你应该看到（course 模式实测，2026-12-05，2 vCPU Intel Xeon（AMX + AVX-512-BF16），与别的任务共用 CPU，`labkit labs run 03 04 05 06 --mode course`，当时 configs/course.yaml 的 step_balance 还是关闭的（现在是 1.0：样本更多，分数更高，见 bench/README.md））**：整本 22 s。离线漏斗 2.46 s：536 条 query → 18 个簇 → 54 个候选 → 保留 33 个。用保留的模板重建训练数据 11.65 s（`meta_templates: 0.5`）：1,272 个标注任务里 636 个换成 Meta-Agent 模板（训练用其中 18 个；YAML / XML / key=value 格式家族的 15 个只留给实验 06 测试），得到 2,254 条 Agent 样本 + 451 条通用样本，共 2,705 条，实验 05 就用它训练。smoke 模式整本 12 s（2026-12-02，2 vCPU AMD EPYC，只有 AVX2，安静）。
# <!-- /expected -->

# %% tags=["parameters"]
mode = "smoke"  # "smoke"：快速检查（< 1 分钟）；"course"：课堂完整版（18 个聚类、54 个候选）
writer = "auto"  # 写模板的 Meta-Agent："auto"（有 OPENAI_API_KEY 用 "openai"，否则离线生成器）、"offline"、"openai[:模型名]"
judged_model = "auto"  # 裁判环节作答的模型："auto"（有密钥用 "openai"，否则 "sandbox-reader"）、"gemma-3-270m"、检查点目录
judge = "auto"  # 打分者："auto"（有密钥用大模型裁判，否则用客观评分器对照金标）、"objective"、"openai"
epsilon = -0.05  # ε：score2 − score1 > ε 的实例保留（负数表示允许比标杆略差）
threshold = 0.8  # 模板级阈值：实例平均分大于它的模板保留
seed = 0
out_dir = None  # 输出目录；None 表示 runs/meta/<mode>
comparison_dir = None  # 测量结果所在目录；None 表示 runs/bench/meta_diversity/course

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from labkit.display import api_ready, prompts_side_by_side
from labkit.exercises import check
from labkit.formats import BUILTIN_FORMATS, declare, get_format
from labkit.meta import report
from labkit.paths import runs_dir

has_key = api_ready()  # the key from the environment or the repo .env, read as OpenAIChat reads it
writer = ("openai" if has_key else "offline") if writer == "auto" else writer
judged_model = ("openai" if has_key else "sandbox-reader") if judged_model == "auto" else judged_model
judge = ("openai" if has_key else "objective") if judge == "auto" else judge
out = Path(out_dir) if out_dir else runs_dir() / "meta" / mode
print(f"mode={mode}; 写模板：{writer}；作答：{judged_model}；打分：{judge}；ε={epsilon}；阈值={threshold}")

# %% [markdown]
# ## 1. 输出格式也是数据
#
# 笔记 §2.1 的四种模板，差别最大的其实是 **Format**：ReAct 写 `Thought / Action / Action Input`，AutoGPT 写一个带
# `thoughts` 和 `command` 的 JSON，ModelScope 把调用夹在 `<|startofthink|>` 里……一种输出格式牵涉好几条规则：
# 怎么**解析**模型输出、怎么**渲染**标准答案（训练数据的 Output）、生成时在哪里**停下**让工具来写观察结果、
# 已完成的任务在 prompt 里怎么**排版**、结束时是给答案还是调用 `task_complete`。`labkit.formats` 把这些规则放进
# **一个格式对象**（LLaMA-Factory 也是“一种工具调用格式一个类”）：

# %%
display(report.format_table(BUILTIN_FORMATS.values()))

# %% [markdown]
# 新格式不需要写代码：在模板文件里**声明**即可。下面声明一个 YAML 风格的格式（字段名 reason / action / params），
# 渲染一条标准答案，再解析回来——这就是“往返”（round trip）：写出去再读回来必须还是同一步。

# %%
from labkit.types import ToolCall

yaml_fmt = declare("demo_yaml", {"style": "yaml", "fields": {"thought": "reason", "tool": "action", "args": "params",
                                                            "answer": "final", "observation": "got"}})
gold = yaml_fmt.render(ToolCall("get_weather_info", {"location": "北京", "is_current": "yes"}), "查询北京现在的天气")
print(gold, "\n---\n解析回来：", yaml_fmt.parse(gold))
print("停止标记：", yaml_fmt.stop_markers, "；往返问题：", yaml_fmt.round_trip_problems() or "无")

# %% [markdown]
# ## 2. 收集 query，相似的聚成集合（§4.2.2 第 1、2 步）
#
# 笔记说：手写一个固定的 Meta-Agent Prompt 让 GPT-4 生成，多样性有限；**用不同的种子 query 做引导**效果更好。
# 先把问题库聚类。句子向量用 **TF-IDF 字符 n-gram**（中英文都适用、离线、无需下载模型），聚类用 scikit-learn 的 K-Means；
# 每类离中心最近的几条就是这一类的**代表 query**，它们将被填进 Meta-Agent Prompt。

# %%
from labkit.data.queries import load_queries
from labkit.meta.cluster import cluster_queries, purity
from labkit.meta.pipeline import meta_settings

settings = meta_settings(mode)
clustering = cluster_queries(load_queries(), settings.n_clusters, seed=seed)
display(clustering.table()[["size", "langs", "majority_label", "label_purity", "top_terms"]])
for c in clustering.clusters[:2]:
    print(f"聚类 {c.id} 的代表 query：", [q["query"] for q in c.representatives[:3]])
print(f"与人工场景标签的纯度：{purity(clustering):.2f}（随机分组约为 {1 / 18:.2f}）")

# %% [markdown]
# 纯度不高是正常的：字符 n-gram 衡量的是**字面**相似，“北京现在天气怎么样”和“北京的故宫在哪”会因为“北京”靠近，
# 中英文 query 也各自成团。这正好给 Meta-Agent 提供了不同风格的种子。想要更“语义”的聚类，可以换成句向量模型或学生模型的隐状态。
#
# ## 3. Meta-Agent Prompt 与候选模板（§4.2.2 第 3、4 步）
#
# 每个聚类的代表 query 填进同一个 Meta-Agent Prompt：

# %%
from labkit.meta.generate import meta_prompt

print(meta_prompt(clustering.clusters[0], "metagen_c00_0"))

# %% [markdown]
# 有 API 密钥时，这个 prompt 真的发给大模型（`LLMMetaAgent`）。离线时由 `OfflineMetaAgent` 代写：它是一个**带种子的生成器**，
# 在人设、章节名与标题样式、指令措辞与顺序、语言（中 / 英 / 中英混合）、工具和记忆的排版、输出格式（5 种内置 +
# json / yaml / xml / kv / prefixed 五种声明式风格，字段名各不相同）上随机组合。像真实的生成器一样，它**偶尔会写出有毛病的模板**：
# 漏掉一部分、示例和声明的格式对不上、两个字段用了同一个标签、只用文字描述格式、人设写得又臭又长、YAML 写坏——
# 后面的筛选就是为它们准备的。下面一次跑完整个漏斗，然后逐段看结果。

# %%
from labkit.meta.pipeline import run_meta_agent

result = run_meta_agent(mode, out, writer=writer, judged_model=judged_model,
                        judge=None if judge == "objective" else judge, epsilon=epsilon, threshold=threshold, seed=seed)
if not result.kept and writer != "offline":  # e.g. a model that cannot write templates: keep the lab going offline
    print(f"{writer} 写的 {len(result.candidates)} 个候选一个也没有通过筛选（结果留在 {out}）；下面改用离线生成器。")
    writer, judged_model, judge = "offline", "sandbox-reader", "objective"
    result = run_meta_agent(mode, out / "offline", writer=writer, judged_model=judged_model, judge=None,
                            epsilon=epsilon, threshold=threshold, seed=seed)
print(f"用时 {result.settings['seconds']} 秒；候选 {len(result.candidates)} 个，保留 {len(result.kept)} 个 → {result.templates_dir}")
display(report.candidate_table(result.candidates).head(12))

# %%
first_two = [c for c in result.candidates if c.traits.get("flaw") is None][:2]
display(prompts_side_by_side({c.name: c.text for c in first_two}, height_em=28))

# %% [markdown]
# ## 4. 筛选一：结构检查
#
# 笔记：“对于关键信息缺失、有明显缺陷的模板，我们直接删除即可”。结构检查有三关：
#
# 1. **能加载**：YAML 合法、字段齐全，而且模板文本要求的格式（按 prompt 里的标记识别）就是它声明的格式；
# 2. **六个部分都在**：用哨兵值渲染一次——哨兵目标、哨兵工具、哨兵记忆结果必须出现，还要有角色描述和规则措辞；
# 3. **格式能往返**：按声明的格式渲染几条标准答案（含引号、换行、中文、空参数），必须原样解析回来。

# %%
cols = ["output_format", "flaw", "loaded", "sections_ok", "round_trip_ok", "section_reason"]
display(result.verdicts[cols].sort_values(["round_trip_ok", "flaw"], na_position="first"))

# %% [markdown]
# ### 练习 04.1：预测结构检查会删掉哪些候选（§4.2.2 删除关键信息缺失、有明显缺陷的模板）
#
# 下面是为同一个聚类写出的 4 个候选（文件原文）。**不要运行检查**，读一读它们的模板文本和 `format` 声明，
# 写出你认为会被结构检查删掉的候选名字集合 `my_dropped`，例如 `{"quiz_a"}`。

# %%
from labkit.meta.generate import flaw_examples

quiz_dir = out / "quiz"
quiz_dir.mkdir(parents=True, exist_ok=True)
quiz = {}
for name, cand in zip(["quiz_a", "quiz_b", "quiz_c", "quiz_d"], flaw_examples(
        clustering.clusters[0], ["format_in_words", "missing_section", None, "colliding_labels"], seed=seed)):
    quiz[name] = quiz_dir / f"{name}.yaml"
    quiz[name].write_text(cand.text, encoding="utf-8")
display(prompts_side_by_side({n: p.read_text(encoding="utf-8") for n, p in quiz.items()}, height_em=30))

# %%
# >>> 练习 04.1：在下面写你的答案
my_dropped = ...  # TODO：例如 {"quiz_a", "quiz_b"}
# <<< 练习 04.1
check("04.1", my_dropped, quiz=quiz)

# %% [markdown]
# ## 5. 筛选二：成对裁判（§4.2.2 筛选第 1～3 步）
#
# 同一批 query（来自该聚类、但**不是**给 Meta-Agent 看过的代表 query）分别放进**标杆模板**（ReAct、AutoGPT、ToolLLaMA、
# ModelScope、KAgent 中英文）和候选模板，形成 prompt pair；**同一个模型**回答每个 prompt，再给每个回答打分：
# `s1` = 标杆模板们在这个情境上的平均分，`s2` = 候选模板的得分。
#
# **离线时让谁来作答？** 这一步最容易做错。如果用实验 03 的老师模拟器（SandboxTeacher），它直接从金标答案出发，
# **不管 prompt 写成什么样都答对**——每个模板都是 100 分，裁判什么也筛不出来。它的 noise 参数也帮不上忙：
# 噪声按 prompt 的哈希随机注入，和模板好坏无关，等于按运气筛模板。所以作答的必须是**回答取决于模板**的模型：
#
# - 有密钥：真实大模型作答、大模型当裁判（笔记的做法）；
# - 有训练好的学生模型：`judged_model` 填它的目录（注意要用实验 05 之前就有的模型，否则是用学生评判自己的训练数据）；
# - 离线默认 `sandbox-reader`：一个**会读 prompt 的模拟器**。它知道金标答案，但像一个中等水平的模型那样，在 prompt 不清楚时更容易出错：
#   prompt 里**没有该格式的示例**时，35% 的概率改用它熟悉的 ReAct 格式作答（解析失败）；没有“只能使用列出的工具”这类规则时，
#   15% 的概率选错工具；prompt 超过 2500 字符后，每多 1000 字符漏写/写错参数的概率增加 5 个百分点。
#   这些规则是**假设**，写在 `labkit/llm/reader.py` 里，欢迎质疑——离线实验教的是 ε 规则、阈值和漏斗这套**机制**。
#
# 打分（离线）用实验 06 的客观评分器对照金标：这一步的 (0.25 × Planning + 0.35 × Tool-use) / 0.6，输出要靠容错修复才能解析时
# 再减半（实验 03 的过滤规则会把它当作格式外文字删掉）。

# %%
inst = result.instances
show = ["template", "record", "s1", "s2", "delta", "kept"]
display(inst[show].sort_values("delta").head(8))
bench_scores = result.benchmark_scores.groupby("template")["score"].mean().round(3)
print("标杆模板的平均分：", bench_scores.to_dict())

# %% [markdown]
# ### 练习 04.2：实现 ε 规则（§4.2.2：score2 − score1 > ε 则保留该 prompt 实例）
#
# 写一个函数 `keep(s2, s1, eps)`，返回 True（保留这个 prompt 实例）或 False。检查会用 7 组数（包括差值恰好等于 ε、
# ε 为负数的情形）测试它，再在本次运行的全部实例上和流水线的决定逐一比对。

# %%
# >>> 练习 04.2：在下面写你的答案
keep = ...  # TODO：def keep(s2, s1, eps): ...
# <<< 练习 04.2
check("04.2", keep, instances=inst, epsilon=epsilon)

# %% [markdown]
# ## 6. 模板级阈值与漏斗（§4.2.2 筛选第 4 步）
#
# “对于同一个模板的所有实例求平均分，得到模板的得分，当分值大于一定阈值，保留该模板，否则删除该模板以及对应的 prompt 实例。”
# 注意两个规则管的对象不同：ε 规则逐个筛**实例**（哪些 prompt 进训练数据），阈值筛**模板**（哪些模板文件留下）。

# %% [markdown]
# ### 练习 04.3：用阈值决定模板去留
#
# 用 `inst`（每行一个实例：`template`、`s1`、`s2`、`delta`、`kept`）和 `threshold`，算出应保留的模板名集合 `my_kept`。

# %%
# >>> 练习 04.3：在下面写你的答案
my_kept = ...  # TODO：一个 set，元素是模板名
# <<< 练习 04.3
check("04.3", my_kept, instances=inst, threshold=threshold)

# %% [markdown]
# 漏斗：每一步还剩多少模板（蓝）、多少实例（绿）。下面的表换几组 ε 和阈值重新统计（只用已经打过的分，不再调用模型），
# 看看两个超参数各自影响什么。

# %%
fig, ax = plt.subplots(figsize=(7, 3.6))
result.plot_funnel(ax=ax)
plt.show()
display(report.threshold_sweep(inst, result.verdicts, epsilons=[-0.2, -0.05, 0.0, 0.05], thresholds=[0.6, 0.8, 0.9]))

# %% [markdown]
# ε = 0 时，候选和标杆**一样好**的实例也会被删掉（差值 0 不大于 0）；标杆模板本身质量高、客观分常常满分，
# 所以笔记的 ε 实际上应当取 0 附近的小负数，或者配合打分更细的大模型裁判。
#
# ### 练习 04.4：扮演 Meta-Agent，写一个候选模板（§4.2.2 第 4 步）
#
# 现在由你来当 Meta-Agent：读一读聚类 0 的代表 query（下面打印），为它写一个**新的**规划模板文件（YAML 全文，一个字符串 `my_template`），
# 六个部分（Profile / Instruction / Tools / Goal / Memory / Format）都要有，模板正文里用 `{{ goal }}`、`{{ tools_block }}`、
# `{{ memory_block }}`、`{{ max_steps }}` 这些变量（键的写法照着上面打印的任意一个候选或 `data/templates/*.yaml`）。
# 检查会把它送进**和漏斗完全相同的两道筛选**：结构检查，然后在这个聚类的裁判 query 上和标杆模板成对比较（离线作答的是
# 会读 prompt 的 `sandbox-reader`），模板平均分要大于阈值。改个名字交一份现成的模板不算（相似度 > 0.9 会被识别出来）。

# %%
from labkit.templates import load_templates

print("聚类 0 的代表 query：", [q["query"] for q in clustering.clusters[0].representatives])
others = {t.name: t.text for t in [*load_templates(), *result.kept]}  # 现成的模板：抄它们不算数

# %%
# >>> 练习 04.4：在下面写你的答案
my_template = ...  # TODO：一个 YAML 字符串：name / family / kind / output_format / lang / sections / description / source / template
# <<< 练习 04.4
check("04.4", my_template, cluster=clustering.clusters[0], out_dir=out / "mine", others=others,
      n_queries=settings.judge_queries, epsilon=epsilon, threshold=threshold, seed=seed)
#
# ## 7. 保留下来的模板有多多样？
#
# 三个指标：不同的**输出格式**数（和格式“家族”数：内置各算一家，声明式按 json / yaml / xml / kv / prefixed 分）、
# 不同的**章节标题措辞**数、模板文本之间的**平均两两相似度**（TF-IDF 余弦，越低越多样）。对照组是仓库里手写的规划模板（内置 + meta_*）。

# %%
from labkit.templates import load_templates

hand = [t for t in load_templates() if t.kind == "planning"]
display(pd.DataFrame({"手写模板（内置 + meta_*）": report.diversity(hand), "Meta-Agent 保留": report.diversity(result.kept)}))
formats = pd.Series([report.format_family(t) for t in result.kept]).value_counts()
print("保留模板的格式家族：", formats.to_dict())

# %%
picks = list({report.format_family(t): t for t in result.kept}.values())[:3]
display(report.side_by_side(picks))

# %% [markdown]
# ## 8. 保留的模板就是普通模板文件
#
# 它们被存成 `templates/*.yaml`，和 `data/templates/` 里的文件格式完全一样（自带格式的，声明就写在 `format:` 里）。
# 把这个目录加入模板搜索路径，就能按名字加载、渲染，并且每一个都能往返：

# %%
from labkit.templates import add_template_dir, load_template
from labkit.tools import default_registry

add_template_dir(result.templates_dir)
call = ToolCall("get_weather_info", {"location": "上海", "is_current": "yes"})
rows = [{"template": t.name, "format": t.output_format, "round trip":
         load_template(t.name).format.parse(t.format.render(call, "查询上海天气")).call == call} for t in result.kept]
display(pd.DataFrame(rows).set_index("template").T)
print(load_template(result.kept[0].name).render(goal="上海现在天气怎么样？", tools=default_registry().subset(["get_weather_info"]))[:600])

# %% [markdown]
# 老师模拟器会按模板自带的格式作答，过滤规则、训练、评测也都认识这些格式。第 10 节就用它们重建训练数据。
#
# ## 9. 多样性真的能泛化吗？
#
# 笔记的论断需要一个测量：**同样的训练预算**下，一个学生只用一套模板（模板-1）训练，另一个用 Meta-Agent 保留的多样模板训练，
# 在**训练时谁都没见过的输出格式**（所有 yaml、xml 声明式格式的模板）上比较，附 95% 区间（对 query 做 bootstrap，多个种子）。
# 这个实验要训练两次模型，在 2 核 CPU 上需要较长时间，由 `bench/meta_diversity.py` 完成（命令见 `bench/README.md`），
# 结果写到 `results.json`，下面的单元读出你自己的测量。仓库里记录的一次实测是这样的：
#
# <!-- expected: 04.diversity -->
# **实测结果**（2026-12-02，2 vCPU AMD EPYC, shared；one seed, 60 steps x 4 packed samples per arm, lr 2e-4, 16 held-out queries；`bench/README.md`）：
#
# | 训练方式 | 测试模板 | query 数 | 格式有效 % | 工具名正确 % | 步骤分 [95% 区间] |
# |---|---|---|---|---|---|
# | single | unseen format | 16 | 2.3 | 0.0 | 0.0 [0.0, 0.0] |
# | single | seen format | 5 | 12.5 | 0.0 | 0.0 [0.0, 0.0] |
# | diverse | unseen format | 16 | 27.3 | 2.3 | 0.4 [0.0, 1.3] |
# | diverse | seen format | 5 | 12.5 | 0.0 | 0.0 [0.0, 0.0] |
# | diverse - single | unseen format | 16 | — | — | 0.4 [0.0, 1.3] |
#
# **在这个预算下，笔记的论断没有被证实**：两种训练在没见过的模板上都几乎做不对步骤（差值 0.4，区间 [0.0, 1.3] 跨过 0）；多样模板学到的是**更常按没见过的格式作答**（格式有效 27.3 % 对 2.3 %）。60 步只见过约四分之一个 epoch，课程配方的 200 步和多个种子是下一次要跑的测量。
# <!-- /expected -->

# %%
from labkit.meta.compare import load_comparison

res_dir = Path(comparison_dir) if comparison_dir else runs_dir() / "bench" / "meta_diversity" / "course"
res = load_comparison(res_dir)
if res is None:
    print(f"{res_dir} 下没有你自己的测量结果，上面是仓库记录的实测；自己测：\n"
          "  nice -n 10 python bench/meta_diversity.py --mode course --seeds 0 1 2")
else:
    print("训练模式：", res["train_mode"], "；种子：", res["seeds"], "；没见过的格式：", res["split"]["unseen_format"])
    display(pd.DataFrame(res["table"]).drop(columns=["per_seed"]).round(1))

# %% [markdown]
# 读表时看两行：`diverse - single` 在 `unseen format` 上的差值和它的 95% 区间。区间整体在 0 以上，才能说多样模板在新格式上更好；
# 区间跨过 0，就是这个规模下**没有测出差别**——如实记下来，而不是只报告好看的数字。
#
# ## 10. Meta-Agent Tuning：用保留的模板重建训练数据（03 → 04 → 05）
#
# Meta-Agent **Tuning** 的意思是：学生就在这些保留下来的模板上训练，所以才能适应没见过的模板。`tuning_data` 把实验 03 的
# 数据阶段再跑一遍，这次把保留的模板也交给它（`build_dataset(..., template_dirs=[...])`）：
#
# - 每个 query 仍然配 `templates_per_query` 个模板（一个 epoch 的代价不变），其中 `meta_templates` 这一比例的位置换成
#   Meta-Agent 的模板，其余位置与实验 03 完全相同，老师的标注直接沿用，只有新位置需要老师作答；
# - 输出格式属于 `held_out_formats`（YAML 式、XML 式、`key=value`）的模板**一条也不进训练数据**，留给实验 06 单独评测：
#   这样才能分开报告“见过的模板”“没见过的模板”和“没见过的输出格式”。
#
# 两个设置都在 `configs/<mode>.yaml` 的 `data` 部分；结果写回 `runs/data/<mode>/`，实验 05 就用它训练。

# %%
from labkit.meta.pipeline import tuning_data

data = tuning_data(mode, result.templates_dir)
st = data.stats
print(f"Agent 样本 {st['samples']['agent']} 条；老师新标注 {st['labelling']['new']} 个任务，沿用实验 03 的 "
      f"{st['labelling']['skipped']} 个；Meta-Agent 模板占 {st['meta_templates']['jobs']}/{st['meta_templates']['of_jobs']} 个任务")
display(pd.DataFrame({g: {"模板数": len(v), "例子": ", ".join(v[:3])} for g, v in st["template_groups"].items()}).T)
print("训练数据里属于留出格式家族的模板：", st["held_out_format_check"]["templates_in_held_out_families"] or "无")

# %% [markdown]
# ## 小结
#
# - 只在一套模板上训练，模型学到的可能是“这套 prompt 长什么样”，而不是“怎么规划、调用工具、总结”（§4.2.1）；
# - Meta-Agent 用**聚类得到的种子 query** 引导生成，比固定一个 Meta-Agent Prompt 更多样（§4.2.2 第 1～4 步）；
# - 生成的模板良莠不齐，筛选分两段：**结构检查**删掉缺部分、格式不能往返的（练习 04.1）；**成对裁判**用同一个模型比较候选与标杆，
#   `s2 − s1 > ε` 保留实例（练习 04.2），模板平均分**大于阈值**才保留模板（练习 04.3）；你自己写的候选也要过这两关（练习 04.4）；
# - 离线裁判的作答模型必须“看 prompt 吃饭”：会从金标作答的老师模拟器给每个模板都打满分，什么也筛不出来；
# - 输出格式是数据：一个格式对象拥有解析、渲染、停止标记、记忆排版和结束方式，模板文件可以声明新格式而不改代码；
# - 多样性用数字衡量（格式数、标题措辞数、两两相似度），泛化用测量回答（第 9 节），结论以区间为准：在仓库记录的这次小预算实测里，
#   多样模板让学生更常按没见过的格式作答，但**步骤做对并没有测出差别**——论断在这个规模下没有被证实。
# - Meta-Agent Tuning：保留的模板进入训练数据（第 10 节），几种输出格式整族留出，实验 06 分三组报告。
#
# ## 延伸阅读
#
# - **KwaiAgents / KAgentInstruct**：Meta-Agent Tuning（MAT）用 GPT-4 生成模板，最终保留 18,005 个模板、20 万+ 条指令数据，
#   训练出 Qwen-7B-MAT 等模型；论文未给出 ε 与分数刻度，本实验的取值是我们自己的选择。
# - **LLaMA-Factory** 的 `tool_utils.py`：一种工具调用格式一个类（格式化工具列表、格式化调用、反向解析），与本实验的格式对象同一思路。
