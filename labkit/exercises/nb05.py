"""Checkers of notebook 05 (full-parameter SFT)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from labkit.exercises import Feedback, exercise, failed, passed, run_student
from labkit.types import Message

IGNORE = -100


def _conversations(messages: Sequence[Message]) -> list[list[Message]]:
    """The notebook's sample plus two the student has never seen encoded: a general instruction with a system
    prompt, and two assistant turns of which only the second is supervised."""
    return [[m.copy() for m in messages],
            [{"role": "system", "content": "你是一个乐于助人的助手。"},
             {"role": "user", "content": "用一句话介绍杭州。", "loss": False},
             {"role": "assistant", "content": "杭州是浙江省省会，以西湖闻名。", "loss": True}],
            [{"role": "user", "content": "Convert 5 km to miles.", "loss": False},
             {"role": "assistant", "content": "Thought: use unit_convert", "loss": False},
             {"role": "user", "content": "Observation: 5 km = 3.107 mi", "loss": False},
             {"role": "assistant", "content": "Final Answer: about 3.11 miles.", "loss": True}]]


def _diagnose(got: list[int], want: list[int], input_ids: Sequence[int], end_of_turn_id: int) -> str | None:
    """A hint naming the typical mistake, or None when ``got`` equals ``want``."""
    if got == want:
        return None
    if len(got) == len(want) - 1:
        return "少了一个位置：别忘了开头的 <bos>（它属于输入，填 -100）。labels 必须和 input_ids 一样长。"
    if len(got) != len(want):
        return f"长度 {len(got)} 不对：labels 必须和 input_ids 一样长（{len(want)}）。"
    if all(x != IGNORE for x in got):
        return ("所有位置都被监督了：prompt（用户消息、模板、工具说明）也会计入 loss，模型会把力气花在复述 prompt 上。"
                "prompt 部分应填 -100。")
    if all(x == IGNORE for x in got):
        return "全是 -100：没有任何位置计入 loss，模型什么也学不到。"
    sup = [i for i, x in enumerate(want) if x != IGNORE]
    if [i for i, x in enumerate(got) if x == IGNORE] == sup:
        return "反了：你监督了 prompt、屏蔽了输出。要学的是老师的输出（assistant），prompt 填 -100。"
    if got[:-1] == want[1:] or got[1:] == want[:-1]:
        return ("错位了一格：不要自己把 labels 移位——模型内部会用第 t 个位置的 logits 预测第 t+1 个 token。"
                "labels 与 input_ids 逐位对齐，被监督的位置直接等于该位置的 token id。")
    eot = [i for i in sup if input_ids[i] == end_of_turn_id]
    if eot and all(got[i] == IGNORE for i in eot) and all(got[i] == want[i] for i in sup if i not in eot):
        return "输出后的 <end_of_turn> 也要监督：模型要学会“说完就停”（实验 01 里基座模型一直写到 token 上限）。"
    wrong = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
    return (f"第 {wrong} 个位置不对（应为 {want[wrong]}，你写的是 {got[wrong]}）：被监督的位置等于 input_ids 的值，"
            "其余为 -100；supervised 为真的那一段（assistant 的内容和 <end_of_turn>）才被监督，"
            "loss=False 的 assistant 轮次不监督。")


@exercise("05.1", title="亲手做 loss mask：只监督模型的输出",
          note_section="§3.2 【重点】SFT：训练数据中的 Output 用来“监督”参数调整方向（§3.3 模型训练）")
def loss_mask(answer: Any, *, messages: Sequence[Message], tokenizer: Any) -> Feedback:
    from labkit.chat import END_OF_TURN, render_turns
    from labkit.train.collate import encode_messages

    if not callable(answer):
        return failed("答案应是一个函数 make_labels(pieces)：输入 render_turns(messages) 切好的段，返回 labels 列表。"
                      "检查会拿它去算好几条样本（包括你没见过的），所以不能只交一份算好的列表。")
    names = set(getattr(getattr(answer, "__code__", None), "co_names", ()))
    if "encode_messages" in names or "labels" in names:
        return failed("你的函数调用了 encode_messages（或读了现成的 .labels）：这正是要你自己实现的东西。"
                      "只用 tokenizer 给每一段分词，按 supervised 决定填 token id 还是 -100。")
    eot_id = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    for k, conv in enumerate(_conversations(messages)):
        full = encode_messages(conv, tokenizer, 10**6)
        got = run_student(answer, render_turns(conv))
        if not isinstance(got, (list, tuple)) or not all(isinstance(x, int) for x in got):
            return failed("make_labels 应返回一个整数列表：与 input_ids 等长，被监督的位置填 token id，其余填 -100。")
        hint = _diagnose(list(got), list(full.labels), full.input_ids, eot_id)
        if hint is not None:
            which = ("本 notebook 的样本" if k == 0 else
                     "一条带 system 提示的通用样本" if k == 1 else "一条两轮对话（第一轮 assistant 的 loss=False）")
            return failed(f"在{which}上：{hint}", conversation=k)
    return passed("三条样本（本 notebook 的、一条通用样本、一条两轮对话）全部与 encode_messages 逐位一致：只有 supervised 为真的段"
                  "（老师的输出 + <end_of_turn>）参与 loss，其余都是 -100。")


@exercise("05.2", title="预测第一步的 loss", note_section="§3.3 模型训练：loss 是被监督 token 上的交叉熵")
def first_loss(answer: Any, *, vocab_size: int) -> Feedback:
    if not isinstance(answer, dict) or not {"random_init", "pretrained"} <= set(answer):
        return failed("答案应是 dict：{\"random_init\": 随机初始化模型第一步的 loss（一个数）, "
                      "\"pretrained\": 'lower' 或 'higher'（预训练模型的第一步 loss 比它低还是高）}。")
    x = answer["random_init"]
    want = math.log(vocab_size)
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return failed("random_init 是一个数。")
    close = lambda a, b: abs(a - b) <= 0.02 * abs(b)  # noqa: E731
    if close(x, math.log10(vocab_size)):
        return failed("你用了以 10 为底的对数：交叉熵用自然对数（PyTorch 的 cross_entropy 就是 ln）。")
    if close(x, math.log2(vocab_size)):
        return failed("你用了以 2 为底的对数（那是“比特”）：交叉熵 loss 用自然对数 ln。")
    if close(x, vocab_size) or close(x, 1 / vocab_size):
        return failed("那是词表大小（或它的倒数）：随机模型给每个词元的概率约为 1/V，loss = −ln(1/V) = ln V。")
    if not close(x, want):
        return failed(f"随机初始化的模型对 V = {vocab_size} 个词元几乎一视同仁，每个正确 token 的概率约 1/V，"
                      f"交叉熵 = −ln(1/V)。你写的 {x:g} 不对。")
    pred = str(answer["pretrained"]).strip().lower()
    if pred not in ("lower", "higher", "低", "高", "更低", "更高"):
        return failed("pretrained 只能是 'lower' 或 'higher'。")
    if pred in ("higher", "高", "更高"):
        return failed("预训练模型已经学会了语言：常见的词、JSON 的括号与引号、中文的常用字它都能给出远高于 1/V 的概率，"
                      "所以它的第一步 loss 明显低于 ln V——它缺的只是这种格式和规划的“案例学习”。")
    return passed(f"ln({vocab_size}) = {want:.2f}：随机初始化的 tiny 模型第一步 loss 就在这附近；预训练的 gemma-3-270m 一开始就低得多，"
                  "因为它已经会语言，只是不会这个格式。")


@exercise("05.3", title="估算一次训练的时长与成本", note_section="§1.4 Agent Tuning 的研发流程：训练成本参考")
def training_cost(answer: Any, *, params: float, tokens: float, epochs: float, gpus: int, mfu: float) -> Feedback:
    from labkit.train.cost import GPU_HOUR_PRICE_CNY, estimate

    if not isinstance(answer, dict) or not {"hours", "cost_cny"} <= set(answer):
        return failed("答案应是 dict：{\"hours\": 训练总时长（小时）, \"cost_cny\": 成本（元）}。")
    row = estimate("ex", params, tokens, epochs, gpus, mfu)
    h, c = float(answer["hours"]), float(answer["cost_cny"])
    close = lambda a, b: abs(a - b) <= 0.02 * abs(b)  # noqa: E731
    if not close(h, row.hours):
        for factor, hint in ((epochs, "你漏乘了 epoch 数：每个 epoch 都要把全部 token 过一遍。"),
                             (1 / epochs, "epoch 数乘了两次，或者把每 epoch 时长当成了总时长。"),
                             (1 / gpus, "忘了除以 GPU 数：GPU 数在分母上，8 张卡分担同样的 FLOPs，时长是单卡的 1/8。"),
                             (1 / gpus ** 2, "你把 GPU 数乘到了分子上：它在分母上，卡越多用时越短。"),
                             (6, "训练每个 token 约 6·N FLOPs（前向 2N + 反向 4N），你漏了 6。"),
                             (1 / mfu, "你漏了 MFU：实际算力 = 峰值 × MFU，它在分母上，利用率越低用时越长。")):
            if close(h * factor, row.hours):
                return failed(hint)
        return failed("时长 = 6 × 参数量 × token 数 × epoch 数 ÷ (GPU 数 × 312e12 FLOP/s × MFU) ÷ 3600；"
                      f"或按笔记 7B 一行等比例换算。你的 {h:g} 小时不对。")
    if close(c, h * GPU_HOUR_PRICE_CNY):
        return failed("成本 = 单价 × GPU 数 × 小时：你只乘了小时，漏了 GPU 数。")
    if not close(c, GPU_HOUR_PRICE_CNY * gpus * h):
        return failed(f"成本 = 34.742 元/(卡·时) × GPU 数 × 小时。你的 {c:g} 元不对。")
    return passed(f"约 {row.hours:.0f} 小时、{row.cost_cny:,.0f} 元（{row.gpu_hours:.0f} 卡·时）。"
                  "数据翻倍、epoch 从 5 降到 3、卡数翻倍，与笔记 7B 一行（125 h、17,371 元）相比正好是等比例的结果。")
