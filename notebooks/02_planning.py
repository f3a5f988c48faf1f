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
# # 实验 02：Agent Prompt 模板设计 —— 任务规划（模板-1）与总结（模板-2）
#
# 本实验对应课程笔记 §2.2「Agent Prompt 模板设计」。我们设计两套 prompt：
#
# - **模板-1：任务规划与工具调用指令生成**。每次只规划**一个**新 Task，以 JSON 输出 `task_name` 和 `command`；
# - **模板-2：总结生成最终答案**。把“已完成任务和结果”整合成对用户有帮助的回答。
#
# 两者组成 KAgent / AutoGPT 式的**规划循环**：模板-1 反复规划 → 调用工具 → 结果写入记忆（Completed tasks），
# 直到模型给出 `task_complete`（或达到最多 5 步），再用模板-2 总结。最后我们对比模拟器、未微调的 Gemma-3-270M 与 API 大模型。
# 第 7 节（学完实验 05 后再回来）把微调后的学生放到 OpenAI 兼容接口后面，用同一个规划循环驱动它。
#
# ## 学习目标
#
# 1. 把模板-1 拆成 Profile / Instruction / Tools / Goal / Memory / Format 六个部分，说出每部分的作用（§2.2，也是 §6 总结第 3 条）；
# 2. 看懂规划循环里记忆（Completed tasks）如何一步步增长，并**亲手按模板-1 规划下一个 Task**（**练习 02.1**）；
# 3. 理解模板-2 如何把记忆整合成最终答案；
# 4. **实现规划循环的停止规则**：task_complete、不能重复调用、最多 5 步（**练习 02.2**）；
# 5. 看到基座小模型为什么做不到，为实验 03 构建训练数据做准备。
#
# **先修**：实验 01（ReAct 循环、四种模板）。离线、只用 CPU；不需要 GPU 或 API 密钥（有密钥时第 5 节多一个真实大模型）。
#
# <!-- expected: 02 -->
# **你应该看到（实测）**：本实验没有要等很久的单元；smoke 模式整本 53 s（2026-12-02，2 vCPU AMD EPYC，只有 AVX2，安静）。
# <!-- /expected -->

# %% tags=["parameters"]
mode = "smoke"  # "smoke"：快速检查；"course"：课堂完整版
query = "我有800英镑，换成欧元后花了510欧元，还剩多少欧元？"  # 规划循环的目标（取自沙盒金标问题库）
teacher_model = "sandbox"  # 模拟器：GPT-4 级老师的 emulator
student_model = "gemma-3-270m"  # 未经 Agent Tuning 的基座模型
api_model = "openai"  # 仅当配置了 OPENAI_API_KEY 时使用
planning_template = "kagent_planning_zh"  # 模板-1
conclusion_template = "kagent_conclusion_zh"  # 模板-2
tool_names = ["web_search", "wiki_search", "currency_convert", "calculator"]  # 本题提供给 Agent 的工具（KAgent 也按问题挑选工具子集）
max_steps = 5
served_model = ""  # 第 7 节放到 OpenAI 兼容服务后面的模型目录；""：有 runs/train/<mode> 就用它，smoke 模式退回 tiny
n_served_queries = 0  # 第 7 节让服务化的学生解几条留出 query（0：smoke 1 条，course 3 条）

# %%
import pandas as pd
from IPython.display import display

from labkit.agent import run_plan
from labkit.display import API_HINT, api_ready, compare_traces, diagnose_trace, notebook_setup, split_sections
from labkit.exercises import check
from labkit.llm import get_model
from labkit.parsing import parse_output
from labkit.templates import load_template
from labkit.tools import default_registry

student_tokens = 32 if mode == "smoke" else 256  # 基座模型在 CPU 上每秒只生成几个 token
student_budget = 1 if mode == "smoke" else None  # smoke：只跑 1 步（prompt 里仍写最多 max_steps 步）
all_tools = default_registry()
tools = all_tools.subset(tool_names)
plan_t, concl_t = load_template(planning_template), load_template(conclusion_template)
notebook_setup()  # 表格完整显示、图中中文字体、屏蔽第三方库的进度条与警告
print(f"mode={mode}; 模板-1={plan_t.name} ({plan_t.output_format}); 模板-2={concl_t.name}")

# %% [markdown]
# ## 1. 模板-1 逐段拆解
#
# 模板-1 由六部分组成：
#
# | 部分 | 作用 |
# |---|---|
# | **Profile（角色）** | “你是一个很专业的AI任务规划师”——决策独立执行、不依赖人类帮助 |
# | **Instruction（指令 / Constraints）** | 笔记的 9 条约束全部保留：~4000 字短期记忆；不需要用户帮助；只用列出的 commands；搜索与鉴别真伪；尽量少调用、**不能重复调用**（5）；能得出结论就高效完成；自我批评；**最多 5 步**（8，步数是 `max_steps` 变量）；没完成目标就继续规划（9） |
# | **Tools（工具集 / Commands）** | 每个工具一行 JSON：name、description、parameters、required |
# | **Goal（目标）** | 用户的问题 |
# | **Memory（记忆）** | Completed tasks（已完成任务及结果）、Conversation history（对话历史）、Knowledge（知识）、Current Time |
# | **Format（输出格式）** | 只能输出一个 JSON Task：`{"task_name", "command": {"name", "args"}}`；信息足够时输出 `task_complete` |
#
# 下面把本题渲染出的模板-1 按这六部分切开：

# %%
prompt_1 = plan_t.render(goal=query, tools=tools, max_steps=max_steps)
markers = [("profile", ""), ("instruction", "Constraints:"), ("tools", "Commands:"), ("goal", "GOAL:"),
           ("memory", "Completed tasks:"), ("format", "根据目标和已有任务")]
sections = split_sections(prompt_1, markers)
display(sections)
assert (sections["chars"] > 0).all(), "模板-1 应包含全部六个部分"

# %% [markdown]
# ### 1.1 JSON 命令与 `task_complete`
#
# 模型的输出必须是一个 JSON 对象。框架用 `parse_output(text, "task_json")` 读出工具名和参数；
# 常见的小毛病（代码块包裹、前后多余文字、单引号）会被容错修复并记录在 `repaired` 里；真正读不懂时返回带错误码的 `ParseError`。
# 当模型认为已完成的任务足以回答问题时，它应输出 `task_complete`，循环随即结束。

# %%
examples = {
    "标准输出": '{"task_name": "查询北京当前天气", "command": {"name": "get_weather_info", "args": '
            '{"location": "Beijing", "start_date": "2025-03-15", "end_date": "2025-03-15", "is_current": "yes"}}}',
    "带代码块和多余文字": '好的。\n```json\n{"task_name": "完成", "command": {"name": "task_complete", "args": {}}}\n```',
    "单引号 JSON": "{'task_name': '搜索', 'command': {'name': 'web_search', 'args': {'query': '北京天气'}}}",
    "只是续写文字": "北京现在天气怎么样?北京现在天气怎么样?",
}
for label, text in examples.items():
    print(f"{label:>10}: {parse_output(text, plan_t.output_format, tools=tools)}")

# %% [markdown]
# ## 2. (a) 模拟器跑完整的规划循环
#
# `run_plan` 的每一步：用模板-1 渲染 prompt（Completed tasks 中带上之前每个 Task 的 command 和 result）→ 模型输出一个 JSON Task →
# 调用工具 → 结果写入记忆。遇到 `task_complete`、达到 `max_steps`（5）或**重复的相同调用**时停止，然后用模板-2 总结。
# 模拟器（`SandboxTeacher`）按沙盒金标注释扮演 GPT-4 级老师。

# %%
teacher = get_model(teacher_model)
trace_teacher = run_plan(teacher, query, tools=tools, template=plan_t, conclusion_template=concl_t,
                         max_steps=max_steps)
display(trace_teacher)

# %% [markdown]
# 记忆是怎样增长的？下面打印**最后一次规划 prompt** 的 Completed tasks 部分——每个已完成任务以
# `task_id / task_name / command / result` 的 JSON 写回给模型，模型据此判断是否还需要继续规划。

# %%
last_plan = [s for s in trace_teacher.steps if s.kind == "step"][-1]
memory_part = split_sections(last_plan.prompt, markers).set_index("section").loc["memory", "text"]
print(memory_part)

# %% [markdown]
# ### 练习 02.1：按模板-1 规划下一个 Task（§2.2 模板-1）
#
# 假设你就是规划模型。第 1 步已经完成：`currency_convert` 把 800 英镑换成了欧元，结果就在 Completed tasks 里（下面打印）。
# 请写出**第 2 步**的输出原文：一个字符串，内容是模板-1 规定的 JSON Task（`task_name` + `command`）。
# 它要能被 `parse_output(text, "task_json")` 直接读出（不需要任何容错修复），并且真的算出用户要的答案——
# 由工具来算：`calculator` 的参数是**算式本身**（用记忆里的数），而不是你心算好的结果。

# %%
import json

from labkit.data import load_queries

ex_query = next(q for q in load_queries() if q["query"] == "我有800英镑，换成欧元后花了510欧元，还剩多少欧元？")
print("第 1 步的 result：", trace_teacher.steps[0].observation)

# %%
# >>> 练习 02.1：在下面写你的答案
my_task = ...  # TODO：第 2 步的 JSON Task（字符串）
# <<< 练习 02.1
check("02.1", my_task, query=ex_query, tools=tools)

# %% [markdown]
# ## 3. 模板-2：总结生成最终答案
#
# 模板-2 更短：角色（“整合这些信息用中文给出最终的结论”）、注意事项（信息会冗余）、当前时间、**已完成任务和结果**、对话历史、知识、GOAL，
# 最后“生成对用户有帮助的回答:”。它的输入正是规划循环积累下的记忆：

# %%
conclusion_step = trace_teacher.steps[-1]
print(conclusion_step.prompt)
print("\n>>> 最终答案:", trace_teacher.final_answer)

# %% [markdown]
# ## 4. (b) 未经微调的基座模型：Gemma-3-270M
#
# 把同一个模板-1 prompt 交给基座模型。它没有学过“只输出一个 JSON Task”：通常会续写或复读 prompt 的文字，
# 不产生合法 JSON（错误码 `no_json` / `invalid_json` / `missing_field`），也不会在 JSON 结束处停下。
# 解析失败时循环立即停止并把错误保留在轨迹（Trace）里。smoke 模式只生成 32 个 token、只规划 1 步。

# %%
student = get_model(student_model)
trace_student = run_plan(student, query, tools=tools, template=plan_t, conclusion_template=concl_t,
                         max_steps=max_steps, step_budget=student_budget, max_new_tokens=student_tokens)
display(trace_student)
display(diagnose_trace(trace_student, output_format=plan_t.output_format, max_new_tokens=student_tokens))

# %% [markdown]
# ## 5. (c) API 大模型（可选）
#
# 配置了 OpenAI 兼容 API（`.env` 中的 `OPENAI_API_KEY`）时，用同样的两套模板跑真实大模型；否则打印配置方法。

# %%
traces = [trace_teacher, trace_student]
if api_ready():
    trace_api = run_plan(get_model(api_model), query, tools=tools, template=plan_t,
                         conclusion_template=concl_t, max_steps=max_steps)
    display(trace_api)
    traces.append(trace_api)
else:
    print(API_HINT)

# %% [markdown]
# ## 6. 对比

# %%
display(compare_traces(traces))

# %% [markdown]
# ### 练习 02.2：实现规划循环的停止规则（约束 5 与约束 8）
#
# 模板-1 要求“不能重复调用”、“最多只能规划 5 个任务”，可模型不一定遵守——循环自己必须会停。写一个函数
# `should_stop(call, done, max_steps)`：`call` 是模型刚规划出的调用 `{"name", "args"}`，`done` 是已经执行过的调用列表，
# 返回停止原因 `"finished"`（模型输出了 `task_complete`）、`"repeated_call"`（与已执行的某个调用完全相同）、
# `"max_steps"`（已经执行满 `max_steps` 个调用，不能再执行新的）或 `None`（继续执行）。检查会用 8 种情形测试它。

# %%
# >>> 练习 02.2：在下面写你的答案
should_stop = ...  # TODO：def should_stop(call, done, max_steps): ...
# <<< 练习 02.2
check("02.2", should_stop)

# %% [markdown]
# ## 7. (d) 闭环：把微调后的学生放到 OpenAI 兼容接口后面
#
# 训练（notebook 05）之后再回到这里。`transformers serve` 把一个模型目录变成 `/v1/chat/completions` 服务（只监听
# 127.0.0.1，模型目录里自带的 chat 模板会被套用），我们用**和调用 API 大模型完全相同的** `OpenAIChat` 客户端驱动
# 上面的规划循环：对 Agent 代码来说，本地小模型和云端大模型没有区别——这正是 Agent Tuning 的目的：用私有部署的
# 小模型代替大模型 API。留出的 query 训练时没见过；`check_trace` 检查所有标准工具都以正确参数调用过、且最终回答
# 包含参考答案的数字。smoke 模式服务的是随机初始化的 tiny 模型，只验证这条链路能跑通。

# %%
from pathlib import Path

from labkit.evaluate.benchmark import offered, select_queries
from labkit.evaluate.runner import check_trace
from labkit.jsonl import read_jsonl
from labkit.labs import ensure_dataset
from labkit.llm import OpenAIChat
from labkit.llm.serve import LocalServer
from labkit.paths import runs_dir

trained = runs_dir() / "train" / mode
served = served_model or (str(trained) if (trained / "config.json").exists() else ("tiny" if mode == "smoke" else ""))
held_out = select_queries(read_jsonl(ensure_dataset(mode) / "test_queries.jsonl"), n_served_queries or
                          (1 if mode == "smoke" else 3))
print("served model:", served or "(none yet: run notebook 05 first)")

# %%
served_rows = []
if served:
    with LocalServer(served) as server:
        client = OpenAIChat(base_url=server.base_url, model=server.model_id, timeout=600)
        for q in held_out:
            trace = run_plan(client, q["query"], tools=offered(q, all_tools, plan_t.format),
                             template=f"kagent_planning_{q['lang']}", conclusion_template=f"kagent_conclusion_{q['lang']}",
                             max_steps=max_steps, step_budget=student_budget, max_new_tokens=16 if mode == "smoke" else None)
            outcome = check_trace(trace, q)
            served_rows.append({"query": q["query"], "calls": [c["name"] for c in trace.calls], "stopped": trace.stopped,
                                "answer": trace.final_answer, "success": outcome.success})
display(pd.DataFrame(served_rows)) if served_rows else None

# %% [markdown]
# ## 小结
#
# - 模板-1 把“说明书”写得足够清楚：角色、9 条约束（≤ 5 步、不重复调用、要反思）、工具、目标、记忆、严格的 JSON 输出格式；
#   一个 Agent Prompt 通常就由 Profile、Instruction、Tools、Format、Memory、Goal 这六部分组成（§6 总结第 3 条）；
# - 模板-2 只负责把已完成任务的结果整合成答案：规划与总结分开，各自更简单；
# - 模型不一定守约束，所以循环自己要会停（练习 02.2）：`task_complete`、重复调用、步数用完；
# - GPT-4 级模型（这里由模拟器扮演）能照着说明书做事，2.7 亿参数的基座模型不能——下一步就是用这两套模板构建训练数据（实验 03），
#   对小模型做 **Agent Tuning**（实验 05）；
# - 微调后的小模型放到 OpenAI 兼容接口后面（`transformers serve`），Agent 代码一行不改就能用它代替 API 大模型（第 7 节）。
#
# ## 延伸阅读
#
# - **KwaiAgents**（笔记 §5）：本实验的模板-1/2 沿用 KAgentSys 的规划 / 总结两段式 prompt；它的 KAgentInstruct（20 万+ 条指令数据）
#   与 KAgentBench（3k+ 条评测）是实验 03、06 的原型，Qwen-7B-MAT 等模型用 Meta-Agent 方法训练（实验 04）。
# - **ToolBench（ToolLLaMA）**：469,585 条数据、3,451 个工具、16,464 个 API，AutoGPT 风格 prompt + `give_up_and_restart`。
# - **AgentTuning**：AgentInstruct（1,866 条轨迹、6 个真实任务）+ ShareGPT 通用数据混合训练 AgentLM 7B/13B/70B——实验 03 的“5 : 1 配比”正是这个思路。