# Solutions of notebook 04 (docs/EXERCISES.md): each section replaces the placeholder of its exercise.

# %% solution 04.1
my_dropped = {"quiz_b", "quiz_d"}  # quiz_b lacks a part; quiz_d's tool and args share one label (no round trip)

# %% solution 04.2
def keep(s2, s1, eps):
    return s2 - s1 > eps  # strictly greater, candidate minus benchmark

# %% solution 04.3
means = inst.groupby("template")["s2"].mean()  # every instance of the template, not only the kept ones
my_kept = set(means[means > threshold].index)

# %% solution 04.4
my_template = """\
name: my_agent_template
family: meta
kind: planning
output_format: react
lang: zh
sections: [profile, instruction, tools, goal, memory, format]
description: 练习 04.4：学生扮演 Meta-Agent，为一个聚类写的候选模板（中文措辞，ReAct 输出，带示例）。
source: 按课程笔记 §4.2.2 的六个部分手写。
template: |
  【你是谁】你是一位做事利落的助手，会借助工具回答用户的问题。
  【做事的规矩】
  1. 每次回复只做一步：调用一个工具，或者给出最终答案；
  2. 只能使用下面列出的工具，不要编造工具；参数写成 JSON 对象；
  3. 最多调用 {{ max_steps }} 次工具。
  【可用工具】
  {{ tools_block }}
  【用户的问题】{{ goal }}
  【已经做过的事】
  {{ memory_block }}
  【回复格式】照这个样子写（示例）：
  Thought: 先查一下北京现在的天气
  Action: get_weather_info
  Action Input: {"location": "北京", "start_date": "2025-03-15", "end_date": "2025-03-15", "is_current": "yes"}
  信息足够时写：
  Thought: 我已经知道答案了
  Final Answer: 最终答案
"""
