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
# # 实验 01：认识大模型 Agent —— ReAct 循环与四种主流 Prompt 模板
#
# 本实验对应课程笔记 §1「认识大模型 Agent」（§1.1–§1.4）和 §2.1「主流 Agent Prompt 模板」。
#
# ## 学习目标
#
# 学完本实验，你应该能够：
#
# 1. 说出大模型应用需要 Agent 技术的三个原因（§1.1【重点】），并给真实问题归类（**练习 01.1**）；
# 2. 画出 Agent 的技术框架：大模型 + 规划 + 记忆 + 工具 + 行动（§1.2）；
# 3. 在沙盒世界（sandbox）里**真实运行**一次 ReAct 的 Thought → Action → Observation 循环，并亲手写出一步 ReAct 输出（**练习 01.2**）；
# 4. 把同一个问题、同一组工具分别套进 ReAct、ModelScope、AutoGPT、ToolLLaMA 四种模板，对照 prompt、输出格式和优缺点（§2.1）；
# 5. 对比三个“模型”：**模拟器（emulator）** 扮演的 GPT-4 级老师、**未经微调的 Gemma-3-270M** 基座模型、（若配置了密钥）真实的 API 大模型，
#    并由此说明为什么要做 Agent Tuning（§1.3【重点】）、它的研发流程是什么（§1.4）——这就是实验 02–06 的路线图。
#
# **先修**：Python 基础、会用 Jupyter。整个实验离线、只用 CPU，不需要 GPU，也不需要 API 密钥（有密钥时第 5 节多一个真实大模型的对比）。
#
# <!-- expected: 01 -->
# **你应该看到（实测）**：本实验没有要等很久的单元；smoke 模式整本 33 s（2026-12-02，2 vCPU AMD EPYC，只有 AVX2，安静）。
# <!-- /expected -->
# 沙盒世界的“今天”固定为 2025-03-15，所有工具结果都是确定的。
#
# **练习怎么做**：每个练习单元里，`# >>> 练习 NN.k` 和 `# <<< 练习 NN.k` 两行之间是你的答案区，把 `...` 换成你的答案，
# 运行单元，最后一行的 `check(...)` 会立刻告诉你对不对；不对时给出提示。

# %% tags=["parameters"]
mode = "smoke"  # "smoke"：快速检查（Gemma 只生成很少的 token）；"course"：课堂完整版
query = "帮我找到字节跳动所在城市，并告诉我当地实时天气。"  # 要回答的问题（取自沙盒金标问题库）
teacher_model = "sandbox"  # 模拟器：GPT-4 级老师的 emulator
student_model = "gemma-3-270m"  # 未经 Agent Tuning 的基座模型
api_model = "openai"  # 仅当配置了 OPENAI_API_KEY 时使用
tool_names = ["web_search", "wiki_search", "get_weather_info", "calculator"]  # 本题提供给 Agent 的工具（KAgent 也按问题挑选工具子集）
max_steps = 5

# %%
from IPython.display import display

from labkit.agent import run_react
from labkit.display import (API_HINT, api_ready, compare_traces, diagnose_trace, gold_roundtrip_table,
                            notebook_setup, prompts_side_by_side, template_comparison_table)
from labkit.exercises import check
from labkit.llm import get_model
from labkit.templates import load_template
from labkit.tools import default_registry
from labkit.types import ToolCall

student_tokens = 32 if mode == "smoke" else 256  # 基座模型在 CPU 上每秒只生成几个 token
student_budget = 1 if mode == "smoke" else None  # smoke：只跑 1 步（prompt 里仍写最多 max_steps 步）
all_tools = default_registry()
tools = all_tools.subset(tool_names)
notebook_setup()  # 表格完整显示、图中中文字体、屏蔽第三方库的进度条与警告
print(f"mode={mode}; 本题提供 {len(tools)}/{len(all_tools)} 个沙盒工具: {tools.names()}")

# %% [markdown]
# ## 1. 为什么需要 Agent（§1.1）
#
# 设想两个需求（§1.1 的应用场景）：“帮我订一张周五去上海的机票”、“帮我约一个和搜索产品部的需求沟通会，本周三至周五我日历上空闲的时间都可以”。
# 只会“说话”的大模型做不到。**【重点】大模型应用需要 Agent 技术的原因：**
#
# 1. **幻觉**：大模型的“幻觉”很难从模型本身彻底解决，严肃的应用场景需要引入外部知识确保答案准确；
# 2. **实时性**：大模型参数无法实时更新，本身也无法与真实世界实时连接（天气、火车时刻、汇率……）；
# 3. **复杂任务**：复杂业务不是一问一答就能解决的，需要任务拆解、多步执行与交互。
#
# 所以大模型应用不仅要“会说话”，更要“会做事”。

# %% [markdown]
# ### 练习 01.1：它为什么需要 Agent？（§1.1【重点】）
#
# 下面 6 个问题，每个都需要 Agent 才能答好。给每个问题贴上**最主要**的原因：`"幻觉"`、`"实时"` 或 `"多步"`，
# 按顺序写成一个列表，例如 `["实时", "幻觉", ...]`。

# %%
from labkit.exercises.nb01 import WHY_AGENT_QUERIES

for i, (q, _, _) in enumerate(WHY_AGENT_QUERIES, start=1):
    print(f"{i}. {q}")

# %%
# >>> 练习 01.1：在下面写你的答案
my_labels = ...  # TODO：6 个标签组成的列表
# <<< 练习 01.1
check("01.1", my_labels)

# %% [markdown]
# ## 1.2 大模型 Agent 的技术框架（§1.2）
#
# 一个 Agent = **大模型**（读“说明书”、做决定）+ **规划**（拆解任务、反思，最多 5 步）+ **记忆**（已完成的任务和结果、对话历史、知识）
# + **工具**（搜索、百科、天气、日历、计算器、汇率……）+ **行动**（真的去调用工具，把结果写回记忆），最后**总结**出答案。
# 图中每个框都标出了本课程里实现它的模块：

# %%
from labkit.figures import agent_framework

agent_framework();

# %% [markdown]
# 下面先看看沙盒世界提供的工具（`*` 为本题提供给 Agent 的子集），并直接调用一个——这就是 Agent 的“手”。

# %%
for tool in all_tools:
    print(f"{'*' if tool.name in tools else ' '} {tool.name}: {tool.description}")
obs = all_tools.call(ToolCall("get_weather_info", {"location": "Beijing", "start_date": "2025-03-15",
                                                "end_date": "2025-03-15", "is_current": "yes"}))
print("\n工具返回 (Observation):", obs.text)

# %% [markdown]
# ## 2. ReAct：Thought → Action → Action Input → Observation
#
# ReAct 的 prompt 很简单：先给出工具列表和输出格式，再给出 `Question`。模型每一轮写出
# `Thought`（想做什么）、`Action`（选哪个工具）、`Action Input`（参数），然后**必须停下**——
# `Observation` 由真实的工具填写，而不是模型自己编。拿到足够信息后，模型写出 `Thought: I now know the final answer`
# 和 `Final Answer`。
#
# **与笔记的差别（请注意）**：笔记 §2.1 说 ReAct 的缺点之一是“API 参数只能有一个”——原始 ReAct 的 `Action Input` 是一段纯文本。
# 本课程的 ReAct 模板让 `Action Input` 写成 **JSON 对象**（见下面 prompt 里的 “a JSON object of arguments”），
# 这样 `get_weather_info` 这种 4 个参数的工具也能调用，等于**去掉了这个缺点**；解析器仍接受纯文本，并把它当作工具的**第一个**参数——
# 这就是笔记描述的原始行为（练习 01.2 会遇到）。下面是本题渲染出的第一轮 prompt：

# %%
react = load_template("react")
print(react.render(goal=query, tools=tools, max_steps=max_steps))

# %% [markdown]
# ### 2.1 (a) 模拟器（emulator）跑完整的 ReAct 循环
#
# `SandboxTeacher` 是一个**模拟器**：它不是语言模型，而是按沙盒金标注释扮演“GPT-4 级老师”，总能写出格式正确的下一步。
# `run_react` 每一步：渲染 prompt（带上之前的 Thought/Action/Observation 记录）→ 调模型（遇到 `Observation:` 停止）→
# 解析输出 → 调用工具 → 把结果作为 Observation 写回。展开表格中的 prompt 可以看到记忆是如何增长的。

# %%
teacher = get_model(teacher_model)
trace_teacher = run_react(teacher, query, tools=tools, max_steps=max_steps)
display(trace_teacher)

# %% [markdown]
# ### 练习 01.2：亲手写一步 ReAct 输出（§2.1 ReAct）
#
# 问题是“帮我找到字节跳动所在城市，并告诉我当地实时天气。”第一步模型调用了 `wiki_search`，Observation 说字节跳动的总部在**北京**
# （见上表第 1 行）。现在轮到你扮演模型：写出**第二步**的输出原文（一个字符串），要求解析器 `parse_output(text, "react")`
# 能读出正确的工具调用。提示：三行 `Thought:` / `Action:` / `Action Input:`；写到哪里必须停下？

# %%
from labkit.data import load_queries

ex_query = next(q for q in load_queries() if q["id"] == "wiki_weather-zh-006")  # 本练习用的问题（含金标注）

# %%
# >>> 练习 01.2：在下面写你的答案
my_step = ...  # TODO：第二步的 ReAct 输出原文（多行字符串）
# <<< 练习 01.2
check("01.2", my_step, query=ex_query, tools=tools)

# %% [markdown]
# ## 3. 四种主流 Prompt 模板：同一个问题，同一组工具
#
# 常见 Agent 模板除了 AutoGPT，还有 ReAct、ModelScope、ToolLLaMA。把**同一个问题**和**同一组工具**分别渲染进去，左右对照：
# 注意工具的写法（一行描述 / JSON 列表 / Commands / 函数列表）、输出格式的约定，以及 prompt 的长度（= 推理成本）。

# %%
families = ["react", "modelscope", "autogpt", "toolllama"]
templates = [load_template(name) for name in families]
display(prompts_side_by_side({t.name: t.render(goal=query, tools=tools) for t in templates}))

# %% [markdown]
# 同一步“调用天气工具”，在四种格式里的**标准输出（gold output）**长得完全不同。下面用 `render_gold` 写出每种格式的标准输出，
# 再用 `parse_output` 把它解析回工具调用——解析器就是 Agent 框架读懂模型输出的那一环。

# %%
call = ToolCall("get_weather_info", {"location": "Beijing", "start_date": "2025-03-15",
                                     "end_date": "2025-03-15", "is_current": "yes"})
gold = gold_roundtrip_table(templates, call, "我需要查询北京当前的天气", tools=tools)
display(gold)
assert gold["round trip ok"].all()

# %% [markdown]
# 课程笔记 §2.1 对四种模板的比较：

# %%
display(template_comparison_table())

# %% [markdown]
# **本课程的实现与笔记的两处出入**：
#
# - **ModelScope**：笔记写的是在 `<|startofthink|>` 与 `<|endofthink|>` 之间填 `command_name` 和 `args`；本课程的 ModelScope 模板和解析器
#   用的是 ModelScope-Agent 实际使用的字段名 `api_name` 和 `parameters`（含义相同，见上面 gold output 一列）。
# - **ToolLLaMA 的 `give_up_and_restart`**：与笔记一致地实现了——模型输出 `Finish` + `give_up_and_restart` 时，循环**清空记忆从头再来**，
#   并把失败那次尝试的调用和结果写进新 prompt（“重来的 prompt 会把历史失败的记录加进去”）；默认最多重来 1 次
#   （`run_react(..., restarts=1)`），再放弃才真正停止。代价正如笔记所说：重来会让花费更大。

# %% [markdown]
# ## 4. (b) 未经微调的基座模型：Gemma-3-270M
#
# 同一个 ReAct prompt 交给**基座模型** google/gemma-3-270m（2.7 亿参数，没有任何指令或 Agent 训练）。
# 预期它会失败：它只会“续写”文本——常常复读 prompt 里的内容、不按 `Thought/Action` 格式输出、也不知道何时停下。
# 下表的诊断列出：解析错误码、是否在复读 prompt、是否自己停了下来（还是被 `max_new_tokens` 截断）。
# smoke 模式下只生成 32 个 token、只跑 1 步，以便在 CPU 上几十秒内完成：输出被截在半句话、看起来像乱码或复读，**这是预期的**——
# 基座模型本来就不会这个格式，32 个 token 也不够它写完一步。

# %%
student = get_model(student_model)
trace_student = run_react(student, query, tools=tools, max_steps=max_steps,
                         step_budget=student_budget, max_new_tokens=student_tokens)
display(trace_student)
display(diagnose_trace(trace_student, output_format="react", max_new_tokens=student_tokens))

# %% [markdown]
# ## 5. (c) API 大模型（可选）
#
# 如果你配置了 OpenAI 兼容的 API（`.env` 中的 `OPENAI_API_KEY`），这里会用同一个 prompt 跑真实的大模型；否则打印配置方法。
# 密钥只从环境变量读取，永远不会被打印。

# %%
traces = [trace_teacher, trace_student]
if api_ready():
    trace_api = run_react(get_model(api_model), query, tools=tools, max_steps=max_steps)
    display(trace_api)
    traces.append(trace_api)
else:
    print(API_HINT)

# %% [markdown]
# ## 6. 为什么要做 Agent Tuning？（§1.3）
#
# 三个“模型”回答同一个问题的结果对比：

# %%
display(compare_traces(traces))

# %% [markdown]
# 用 Prompt Engineering 可以实现 Agent 吗？可以——AutoGPT 就是例子，有密钥时第 5 节的真实大模型也能照着 prompt 把事做完。
# 上面的模拟器**不算**：它不读 prompt 的要求，而是直接按沙盒世界的**金标注**写出每一步（格式由 prompt 选定，内容来自金标），
# 所以它总能做对，只说明流程是通的。那为什么还要训练 Agent 模型？
#
# **【重点】因为这么做的前提是：模型足够“聪明”，靠看“说明书”就能执行**；Prompt Engineering 实际上是把“说明书”写得更加清晰易懂。
#
# 1. 实践证明，除了 GPT-4 level 的大模型，其他大模型（包括 GPT-3.5）无法很好遵从 prompt 要求完成复杂的 Agent 任务——上表里的 Gemma-3-270M 就是极端的例子；
# 2. 在很多实际应用场景，无法使用最强的大模型 API，需要私有化部署小模型，需要控制推理成本；
# 3. 通过训练，一个小参数量的大模型（13B、7B 等）也能达到较好的能力，更加实用。
#
# 训练 Agent 模型可以看作“案例学习”：在“说明书”的基础上，再通过真实的案例来“强化培训”。
#
# ## 7. Agent Tuning 的研发流程（§1.4）
#
# 从收集 query 到评估，就是本课程后面几个实验的顺序（框的右上角标出了做这一步的实验；训练成本参考表在实验 05）：

# %%
from labkit.figures import rd_flow

rd_flow();

# %% [markdown]
# ## 小结
#
# - 大模型应用需要 Agent：消除幻觉（外部知识）、连接实时世界、处理多步复杂任务（§1.1）；Agent = 大模型 + 规划 + 记忆 + 工具 + 行动（§1.2）；
# - ReAct 的循环是 Thought → Action → Action Input → **停下** → 工具填写 Observation；四种模板的差别在工具写法、输出格式、是否有反思和重来（§2.1）；
# - GPT-4 级模型能照着说明书做事（离线时由模拟器按金标注代演，它不是在读说明书），2.7 亿参数的基座模型不能——这就是要做 **Agent Tuning** 的原因（§1.3）：
#   用大量“案例”（prompt → 标准输出）对小模型做有监督微调，让它学会格式、规划与停止。下一个实验设计这些案例用的两套模板。
#
# ## 延伸阅读（笔记 §5：几个 Agent Tuning 开源项目）
#
# - **ToolBench（ToolLLaMA）**：数据集 + 训练与评估脚本 + 微调模型 ToolLLaMA；数据 469,585 条（工具 3,451 个、API 16,464 个）；
#   模型 ToolLLaMA-2-7b-v2、ToolLLaMA-7b-v1、ToolLLaMA-7b-LoRA-v1。本实验的 ToolLLaMA 模板与 `give_up_and_restart` 即来自它。
# - **AgentTuning**：用多个 Agent 任务的交互轨迹对 LLM 做指令微调；数据 AgentInstruct（1,866 个高质量交互、6 个真实场景任务）；
#   AgentLM（7B / 13B / 70B）由 Llama2-chat 在 AgentInstruct + ShareGPT 混合数据上微调，在未见过的 Agent 任务上泛化、通用能力基本不变。
# - **KwaiAgents**（快手 × 哈工大）：让 7B/13B 的“小”大模型超越 GPT-3.5；数据 KAgentInstruct（20 万+ 条，部分人工编辑）、
#   KAgentBench（3k+ 条人工编辑的评测数据）；用 Meta-Agent 方法训练 Qwen-7B-MAT、Qwen-14B-MAT、Qwen-7B-MAT-cpp、Qwen1.5-14B-MAT、Baichuan2-13B-MAT。
#   本课程的模板-1/2（实验 02）和评测（实验 06）沿用它的做法。