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
# 本实验对应课程笔记 §1「认识大模型 Agent」和 §2.1「主流 Agent Prompt 模板」。你将：
#
# 1. 理解大模型应用为什么需要 Agent；
# 2. 在沙盒世界（sandbox）里**真实运行**一次 ReAct 的 Thought → Action → Observation 循环；
# 3. 把同一个问题、同一组工具分别套进 ReAct、ModelScope、AutoGPT、ToolLLaMA 四种模板，对照它们的 prompt 和输出格式；
# 4. 对比三个“模型”回答同一个问题：**模拟器（emulator）** 扮演的 GPT-4 级老师、**未经微调的 Gemma-3-270M** 基座模型、以及（若配置了密钥）真实的 API 大模型。
#
# 整个实验离线、只用 CPU。沙盒世界的“今天”固定为 2025-03-15，所有工具结果都是确定的。

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
                            prompts_side_by_side, template_comparison_table)
from labkit.llm import get_model
from labkit.templates import load_template
from labkit.tools import default_registry
from labkit.types import ToolCall

student_tokens = 32 if mode == "smoke" else 256  # 基座模型在 CPU 上每秒只生成几个 token
student_budget = 1 if mode == "smoke" else None  # smoke：只跑 1 步（prompt 里仍写最多 max_steps 步）
all_tools = default_registry()
tools = all_tools.subset(tool_names)
print(f"mode={mode}; 本题提供 {len(tools)}/{len(all_tools)} 个沙盒工具: {tools.names()}")

# %% [markdown]
# ## 1. 为什么需要 Agent
#
# 设想两个需求：“帮我订一张周五去上海的机票”、“帮我约一个本周三至周五我日历上空闲时间的会”。只会“说话”的大模型做不到，因为：
#
# 1. **幻觉**：模型自身很难彻底消除幻觉，严肃场景需要引入外部知识保证答案准确；
# 2. **实时性**：模型参数无法实时更新，也无法与真实世界实时连接（天气、火车时刻、汇率……）；
# 3. **复杂任务**：复杂业务不是一问一答能解决的，需要任务拆解、多步执行与交互。
#
# 所以大模型应用不仅要“会说话”，更要“会做事”：**规划**要做什么、**调用工具**拿到真实信息、最后**总结**出答案。
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
# 和 `Final Answer`。下面是本题渲染出的第一轮 prompt：

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
# ## 4. (b) 未经微调的基座模型：Gemma-3-270M
#
# 同一个 ReAct prompt 交给**基座模型** google/gemma-3-270m（2.7 亿参数，没有任何指令或 Agent 训练）。
# 预期它会失败：它只会“续写”文本——常常复读 prompt 里的内容、不按 `Thought/Action` 格式输出、也不知道何时停下。
# 下表的诊断列出：解析错误码、是否在复读 prompt、是否自己停了下来（还是被 `max_new_tokens` 截断）。
# smoke 模式下只生成 32 个 token、只跑 1 步，以便在 CPU 上几十秒内完成。

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
# ## 6. 小结
#
# 三个“模型”回答同一个问题的结果对比：

# %%
display(compare_traces(traces))

# %% [markdown]
# - 模拟器（扮演 GPT-4 级老师）能严格遵守格式：规划 → 调用工具 → 读取 Observation → 给出 Final Answer；
# - 基座小模型看不懂“说明书”：它不会按格式输出，也不会停下来等工具结果——这正是**Agent Tuning**要解决的问题：
#   用大量“案例”（prompt → 标准输出）对小模型做有监督微调，让它学会格式、规划与停止。
#
# **思考题**：ReAct 的 `Action Input` 只有一个参数时，多参数工具（如 `get_weather_info`）该怎么办？
# ToolLLaMA 的 `give_up_and_restart` 带来了什么好处，又有什么代价？
