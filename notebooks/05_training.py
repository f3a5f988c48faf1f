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
# # 05 模型训练：全参数 SFT（Agent Tuning 的第三步）
#
# 课程笔记「训练成本参考」给出的做法是：
#
# - **训练框架**：HuggingFace Trainer + DeepSpeed Zero3
# - **配置说明**：max_len 4096 + Flash Attention + bf16（batchsize=1、AdamW 优化器）
# - **注意**：Agent 模型通常需要**全参数训练**，LoRA 效果不好。
#
# 本节用同一套代码（`labkit.train`）完成三件事：
# 1. `mode="smoke"`：用一个随机初始化的 2 层小 Gemma-3 训练几步（< 1 分钟），验证流程；
# 2. `mode="course"`：在 2 核 CPU 上微调 google/gemma-3-270m（词嵌入冻结，其余参数全部训练；设置见 `configs/course.yaml`），画出 loss 曲线，并对比训练前后的输出；
# 3. 在 Slurm 集群上，同一个 notebook 通过 papermill 参数指向 7B / 14B / 72B 模型和 DeepSpeed 配置（见 `slurm/`）。
#
# ## 学习目标
#
# 1. 说清 SFT 的本质（§3.2【重点】）：给定 Input，让模型的 Output' 接近标准 Output——并**亲手做出一条样本的 loss mask**（**练习 05.1**）；
# 2. 读懂笔记训练配置的每一项（Trainer、ZeRO-3、max_len、Flash Attention、bf16、batch 1、AdamW、全参数而非 LoRA，§3.3）；
# 3. **预测并解释第一步的 loss**：随机初始化 ≈ ln（词表大小），预训练模型为什么低得多（**练习 05.2**）；
# 4. 训练一个模型、看 loss 曲线、对比训练前后的输出；
# 5. 用笔记的成本表**估算一次新训练的时长与成本**（§1.4 训练成本参考，**练习 05.3**）。
#
# **先修**：实验 03（它写出 `runs/data/<mode>/train.jsonl`；没有运行过时本实验会自己构建 smoke 数据）。
# CPU 即可完成；有 GPU 时同一套代码自动用 bf16 与 Flash Attention，Slurm 脚本见 `slurm/`。不需要 API 密钥。
#
# <!-- expected: 05 -->
# **你应该看到（course 模式实测，2026-12-05，2 vCPU Intel Xeon（AMX + AVX-512-BF16），与别的任务共用 CPU，`labkit labs run 03 04 05 06 --mode course`，当时 configs/course.yaml 的 step_balance 还是关闭的（现在是 1.0：样本更多，分数更高，见 bench/README.md））**：训练一轮（epoch）：2,705 条样本装进 446 行，每行最多 2,048 个 token，同一条轨迹的样本共用的提示前缀只算一次（省下 30.1% 的 token，共 895,924 个）；batch 1，每步一行，共 446 步（lr 0.0002）。max_len 1,600：整条丢弃 0 条（最长的样本 1,590 个 token；提示从不截断）。
#
# 日志（train_log.jsonl）里 446 步的 s_per_step 合计 4,035 s（约 67 分钟），平均 9.05 s/步、每秒 222 个 token——这台 CPU 当时还在跑别的任务，这个时间偏长；训练在第 339 步被内核因内存不足杀掉，重跑本 notebook 从 checkpoint-325 接着训完（被杀前多跑的那几步不算在合计里）。同类 CPU 安静时，按 `bench/bench_step.py` 测得的 89.2 条样本/分钟，这一轮约 30 分钟（日志里的 67 分钟是共用 CPU 上的）。这一格运行时会显示“训练：已完成步数/总步数，已用时间，预计还需”。smoke 模式（tiny 模型）整本 58 s（2026-12-02，2 vCPU AMD EPYC，只有 AVX2，安静）。
# <!-- /expected -->

# %% tags=["parameters"]
mode = "smoke"            # "smoke" | "course"
config = ""               # "“ -> configs/<mode>.yaml 的 train 部分；集群上如 ”cluster_7b"(configs/cluster_7b.yaml)
model_path = None         # None -> 按 mode：smoke 用 ”tiny“，course 用 ”gemma-3-270m"；也可以是任意模型目录
data_path = None          # None -> runs/data/<mode>/train.jsonl（由 03 数据构建 notebook 生成）
output_dir = None         # None -> runs/train/<mode>
deepspeed = ""            # "" -> 不用 DeepSpeed；集群上："../slurm/ds_zero3.json"
max_len = None            # None -> 按 mode（course：1600；笔记里的 GPU 配置是 4096）
max_steps = None          # None -> 按 mode（course：-1，即按 epochs=1 训练一轮，约 400–490 行（视数据而定），每行最多 2048 个 token）
epochs = None             # None -> 按 mode；只在 max_steps 不为正数时生效（集群上按 epoch 训练：max_steps 设为 -1）
batch_size = None         # None：以下几项都按 configs/<mode>.yaml 的 train 部分
grad_accum = None
lr = None
save_steps = None
gradient_checkpointing = False
stop_file = ""            # Slurm 抢占：该文件出现时保存 checkpoint 并退出
heldout_queries = []      # [] -> 数据阶段留出的测试 query 里取两条（中文、英文各一）
compare_template = "kagent_planning_zh"
max_new_tokens = None     # None -> configs/<mode>.yaml 的 eval 设置：course 按输出格式自己的 token 预算（高于最长的标准答案），smoke 截到 24
device = "auto"           # "auto"：有 CUDA 用 GPU，Apple 芯片用 MPS，否则 CPU；也可填 "cpu" / "cuda" / "mps"

# %%
import os

import pandas as pd

from labkit.display import notebook_setup
from labkit.exercises import check
from labkit.llm import resolve_device
from labkit.modes import EvalSettings, load_settings
from labkit.train import TrainSettings, note_table, train
from labkit.train import checks
from labkit.train.checks import compare_generations, plot_loss

cfg = TrainSettings.for_mode(
    config or mode, model_path=model_path, data_path=data_path, output_dir=output_dir, deepspeed=deepspeed or None,
    max_len=max_len, max_steps=max_steps, epochs=epochs, batch_size=batch_size, grad_accum=grad_accum, lr=lr,
    save_steps=save_steps, gradient_checkpointing=gradient_checkpointing, stop_file=stop_file or None,
    device=device)
is_main = int(os.environ.get("RANK", "0")) == 0   # 多卡时每个 rank 都执行本 notebook，只有 rank 0 画图和生成
notebook_setup()  # 表格完整显示、图中中文字体、屏蔽 DeepSpeed / transformers 的警告与进度条
print("训练和生成用的设备：", resolve_device(cfg.device))  # device 参数：auto 时有 CUDA / MPS 就用，否则 CPU
pd.Series(cfg.to_dict()).to_frame("value")

# %% [markdown]
# ## 1. 每一项设置是什么、为什么这样设
#
# | 笔记中的设置 | `TrainSettings` 字段 | 含义 |
# |---|---|---|
# | HuggingFace Trainer | `train()` 内部的 `LabkitTrainer` | 标准训练循环：梯度累积、学习率调度、checkpoint、断点续训 |
# | DeepSpeed Zero3 | `deepspeed="slurm/ds_zero3.json"` | 把**参数、梯度、优化器状态**切分到所有 GPU 上；7B 全参数 + AdamW 需要约 16 字节/参数 ≈ 112 GB，单卡放不下，4 卡各 28 GB |
# | max_len 4096 | `max_len` | 一条样本（完整的 Agent Prompt + 输出）的最大 token 数；Agent Prompt 很长（工具说明 + 记忆），所以笔记用 4096。本课程**从不截断**：超过 `max_len` 的样本整条丢弃并计数。**与笔记的差别**：为了在 CPU 上跑得动，smoke / course 模式用更短的 `max_len`（数值见上面的配置表，来自 `configs/<mode>.yaml`），它比我们最长的样本还长，所以训练后打印的“整条丢弃”应为 0 条；不为 0 就说明 `max_len` 设小了 |
# | Flash Attention | 自动：CUDA 且装了 `flash_attn` 时用 `flash_attention_2`，否则 `sdpa` | 省显存、更快的注意力实现，长序列必备 |
# | bf16 | `precision="auto"` | GPU 支持 bf16 时用 bf16 混合精度；CPU 上用 fp32 |
# | batchsize=1 | `batch_size` + `grad_accum` | 长序列下每卡一次只放 1 条；用梯度累积得到更大的有效 batch。样本按长度分组（`group_by_length`） |
# | AdamW | `optim="adamw_torch"` | 带权重衰减的 Adam，全参数 SFT 的标准优化器 |
# | 全参数而非 LoRA | 训练全部参数 | Agent 能力（遵循复杂模板、规划、调用工具、总结）需要较大幅度地改变模型行为，低秩适配容量不够 |
#
# **只在回答上计算 loss**：样本格式是 `{"messages": [user（完整 Agent Prompt）, assistant（该步输出, loss=true）]}`。
# 提示部分的 label 置为 -100，只有助手内容和结尾的 `<end_of_turn>` 参与训练（模型要学会何时停止）。
# 另外，Gemma 的词表有 262k，输出层占了一半以上的计算量；`loss_on_supervised_logits_only=True` 只在被监督的位置计算 logits，
# loss 完全相同（有测试证明）。
#
# **在 2 核 CPU 上，course 模式打开了三个提速开关**（`configs/course.yaml`；集群配置 `configs/cluster_*.yaml` 不用前两个）：
#
# | 开关 | 做了什么 | 代价 |
# |---|---|---|
# | `freeze_embeddings: true` | 冻结与输出层共享权重的词嵌入（gemma-3-270m 的 2.68 亿参数里它占 1.68 亿），只训练其余约 1 亿参数：AdamW 的状态和 262k 行的梯度都小了很多 | **不再是严格的全参数训练**。笔记的结论（Agent 要全参数，LoRA 不行）针对的是 7B/13B 在 GPU 上的训练；课上为了在 2 核 CPU 上约半小时（实测 32 分钟）让小模型学会，我们只冻结词表这一层，其余全部参数都训练 |
# | `precision: auto` | CPU 支持原生 bf16(AVX512-BF16 / AMX)时用 bf16 自动混合精度，权重仍是 fp32 主副本；不支持就用 fp32 | loss 与 fp32 相差约 1e-4 量级（`bench/bench_train.py` 实测并打印） |
# | `packing: true` + `pack_tokens: 2048` | 样本首尾相接放进一行，每行装到约 2048 个 token（从打乱后的样本流里“最合适”地装箱，Agent 与通用样本按 5:1 混在一起），每步一行；position id 每条样本重新从 0 开始，**注意力不会跨样本**（测试证明 loss 和梯度与不拼接时相同） | 每步的 token 数几乎一样，不会出现一整步全是最短的通用样本（按长度分组采样时每 50 步末尾都会这样，loss 跳到 5–8） |
# | `share_prefix: true` | 同一条 query、同一个模板的各个规划步骤，prompt 直到“记忆”部分都相同：把它们放进同一行，公共前缀只算一次，后面各步只接自己不同的部分（见下面的掩码图） | 课程数据里约 40% 的 token 是重复的前缀，省下的计算全部变成更多样本；loss 与分开计算相同（有测试证明） |
#
# 上表 max_len 一行说的“整条丢弃、从不截断”是有原因的：从左截会丢掉指令和工具列表，模型就会去学一个它看不全的 prompt。
# 数据阶段只给每条 prompt 提供“标准工具 + 几个干扰工具”（而不是全部工具），所以 course 数据里一条都不会超长。

# %% [markdown]
# ## 2. 准备数据，看一条样本的 loss mask
#
# 【重点】（§3.2）Fine Tuning 本质上是在给定输入 Input 的条件下调整模型参数，使生成的 Output' 与训练数据中的标准 Output 尽可能接近；
# Output 就是用来“监督”参数调整方向的。落到代码上，就是 **loss mask**：prompt 的每个 token 的 label 是 -100（不计 loss），
# 老师输出的每个 token 的 label 是它自己的 id（计 loss）。

# %%
from pathlib import Path

from transformers import AutoTokenizer

from labkit.labs import ensure_dataset
from labkit.train.collate import IGNORE_INDEX, encode_messages, load_samples
from labkit.train.tiny import resolve_model_path

ensure_dataset(mode, Path(cfg.data_path).parent, needs=[Path(cfg.data_path).name])  # 没跑过 03：按同一 mode 构建
tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(cfg.model_path))
sample = load_samples(cfg.data_path, max_samples=1)[0]
enc = encode_messages(sample["messages"], tokenizer, cfg.max_len)
supervised = tokenizer.decode([t for t, lab in zip(enc.input_ids, enc.labels) if lab != IGNORE_INDEX])
print(f"{len(enc.input_ids)} 个 token，其中 {sum(lab != IGNORE_INDEX for lab in enc.labels)} 个被监督")
print("被监督的部分：\n" + supervised)

# %%
from labkit.display import loss_mask_html

loss_mask_html(enc.input_ids, enc.labels, tokenizer)

# %% [markdown]
# ### 练习 05.1：亲手做 loss mask（§3.2【重点】）
#
# `render_turns(messages)` 把一条样本切成若干段 `(role, text, supervised)`，拼起来就是模型看到的完整文本。
# 请写一个函数 `make_labels(pieces)`，按这些段**自己算出 labels**：开头是 `<bos>`（属于输入）；每段用
# `tokenizer(text, add_special_tokens=False)["input_ids"]` 分词，`supervised` 为真的段 label 等于 token id，否则每个 token 填 -100。
# 检查会用它算**三条**样本——下面这条、一条带 system 提示的通用样本、一条两轮对话（第一轮 assistant 不计 loss）——
# 与 `encode_messages` 的结果逐位比较。所以交一份现成的 labels 列表、或者直接调用 `encode_messages` 都不算数。

# %%
from labkit.chat import render_turns

pieces = render_turns(sample["messages"])
for role, text, sup in pieces:
    print(f"{role:>9} supervised={sup!s:<5} {text[:60]!r}{'…' if len(text) > 60 else ''}")

# %%
# >>> 练习 05.1：在下面写你的答案
make_labels = ...  # TODO：def make_labels(pieces): ...，返回与 input_ids 等长的整数列表
# <<< 练习 05.1
check("05.1", make_labels, messages=sample["messages"], tokenizer=tokenizer)

# %% [markdown]
# ### 练习 05.2：预测第一步的 loss
#
# loss 是被监督 token 上的平均交叉熵。训练开始**之前**请预测：(1)一个**随机初始化**的模型（smoke 模式的 tiny，词表与 Gemma 相同）
# 第一步的 loss 大约是多少?(2)**预训练过的** gemma-3-270m（course 模式）第一步的 loss 比它低还是高?

# %%
import math

print("词表大小 V =", len(tokenizer))

# %%
# >>> 练习 05.2：在下面写你的答案
my_prediction = ...  # TODO：{"random_init“：一个数，”pretrained"："lower“ 或 ”higher"}
# <<< 练习 05.2
check("05.2", my_prediction, vocab_size=len(tokenizer))

# %% [markdown]
# ### 拼行：按 token 预算装满，共享前缀只算一次
#
# 下面把训练数据按课程的方式拼成行，打印一轮（epoch）的统计：每行多少条样本、每条样本平均占多少 token、共享前缀省下多少。
# 再画出样本最多的那一组的注意力掩码：纵轴是正在计算的 token，横轴是它能看到的 token，黑色表示“能看到”。
# 左边那一整列黑块就是公共前缀：后面每一步（每个“分支”）都能看到它，但分支之间互相看不到；分支的位置编号从前缀末尾接着数，
# 所以模型看到的和单独训练那条样本时完全一样。

# %%
from labkit.display import plot_segment_mask
from labkit.train.collate import SFTDataset
from labkit.train.packing import packed_rows

budget = max(cfg.pack_tokens, cfg.max_len)
ds = SFTDataset(load_samples(cfg.data_path), tokenizer, cfg.max_len)
epoch = packed_rows(ds.rows, ds.sources, ds.prefix_keys, budget=budget, share_prefix=True)
print(epoch.epoch_stats[0].to_dict())
unit = max((u for row in epoch.rows for u in row), key=lambda u: u.samples)
plot_segment_mask(unit.positions, title=f"{unit.samples} samples, one shared prefix: {len(unit)} tokens "
                                        f"(separately {unit.full_tokens})");

# %% [markdown]
# ## 3. 训练
#
# `train(cfg)` 每 `save_steps` 步保存 checkpoint，重新运行会**自动从最新的 checkpoint 继续**；收到 SIGUSR1/SIGTERM 信号（集群调度器在抢占作业或时间到之前发给进程的通知）
# （Slurm 抢占或到时）会先保存 checkpoint 再退出。训练日志逐步写入 `output_dir/train_log.jsonl`。
#
# **这一格要等多久**：course 模式在参考 CPU 上约 32 分钟（上面“你应该看到”里的实测）；运行时格子里有一行随训练更新的进度：
# “训练：已完成步数/总步数，已用时间，预计还需”。smoke 模式只训练几步，几秒钟。

# %%
result = train(cfg)
result.raise_if_preempted()  # 被抢占：停在这里，Slurm 重新排队后从 checkpoint 继续
print(f"训练到第 {result.global_step} 步；从 checkpoint 继续：{result.resumed_from or '否'}")
print(f"每步 {result.s_per_step:.2f} s，每秒 {result.tokens_per_s:.0f} 个 token，本次用时 {result.seconds:.0f} s")
print(f"样本：保留 {result.data.kept} 条，超过 max_len 而整条丢弃 {result.data.dropped_too_long} 条（从不截断提示），"
      f"最长 {result.data.longest} token")

# %%
if is_main:
    plot_loss(result.losses, f"{mode}: {Path(resolve_model_path(cfg.model_path)).name}")

# %%
first = result.losses[0][1] if result.losses else float("nan")
print(f"第一步 loss = {first:.2f}；ln(V) = ln({len(tokenizer)}) = {math.log(len(tokenizer)):.2f}")

# %% [markdown]
# **怎样读第一步的 loss**：随机初始化的模型（smoke 模式的 tiny）对 26 万个词元几乎一视同仁，每个正确 token 的概率约 1/V，
# 所以第一步 loss ≈ ln(262144) ≈ 12.5，上面 smoke 的数字就在这附近，几步之后也降不了多少——**这是预期的**，smoke 只验证流程。
# 预训练的 gemma-3-270m（course 模式）第一步 loss 低得多：它已经会语言，常见汉字、JSON 的括号引号、工具名里的英文单词都能给出
# 远高于 1/V 的概率；它不会的只是这种格式和规划，训练把 loss 继续往下压的正是这部分。
# %% [markdown]
# ## 4. 训练前后对比
#
# 用同一个规划提示（参数 `compare_template`，默认是模板-1 `kagent_planning_zh`，要求输出 JSON Task；沙盒工具 + 留出的测试问题），
# 分别让**基座模型**和**训练后的模型**生成第一步输出（贪心解码；按这个模板输出格式自己的停止规则和 token 预算，预算高于题库里最长的标准答案，所以不会把正确的回答截断）。训练后的模型应当学会输出一个
# `{"task_name": ..., "command": {...}}` JSON，并以 `<end_of_turn>` 结束。smoke 模式里两个都是随机初始化的 tiny 模型、只训练了几步，
# 输出是乱码——**这是预期的**，只用来验证流程；有意义的对比在 course 模式。

# %%
heldout = heldout_queries or checks.heldout_queries(Path(cfg.data_path).parent / "test_queries.jsonl")
if is_main and not heldout:
    print("数据目录旁没有留出的 test_queries.jsonl:跳过前后对比(可用参数 heldout_queries 指定)")
ev = load_settings(EvalSettings, mode, "eval", max_new_tokens=max_new_tokens)  # configs/<mode>.yaml 的 eval 部分
if is_main and heldout:
    comparison = compare_generations(resolve_model_path(cfg.model_path), cfg.output_dir, heldout,
                                     template=compare_template, device=device, max_new_tokens=ev.max_new_tokens)
    display(comparison.style.set_properties(**{"white-space": "pre-wrap", "text-align": "left"}))

# %% [markdown]
# ## 5. 训练成本
#
# 笔记中的成本表：成本 = 34.742 元/GPU·小时 × GPU 数 × 总时长。我们用 `labkit.train.cost` 复现它，并按
# 「训练 FLOPs ≈ 6 × 参数量 × token 数 × epoch 数」反推出笔记的时长隐含的 **MFU**（A100 bf16 峰值 312 TFLOP/s）。

# %%
note_table()

# %% [markdown]
# 隐含 MFU 约 14%–18%：长序列、ZeRO-3 的通信和 batch size 1 都会拉低利用率。估算新任务时，可以直接代入这个 MFU：

# %%
from labkit.train.cost import estimate, cost_table

mfu = note_table()["implied MFU"].mean()
cost_table([estimate("7B, 2x data", 7e9, 940e6, 3, 8, mfu), estimate("14B, 16 GPUs", 14e9, 470e6, 4, 16, mfu)])

# %% [markdown]
# ### 练习 05.3：估算一次训练的时长与成本（§1.4 训练成本参考）
#
# 你的团队要全参数微调一个 7B 模型：训练数据 940M token（笔记的 2 倍）、3 个 epoch、8 卡 A100。按笔记 7B 一行**隐含的 MFU**
# (`NOTE_ROWS[0].mfu()`)估算训练总时长（小时）和成本（元，34.742 元/卡·时）。请自己用公式算，不要调用 `estimate`。

# %%
from labkit.train.cost import NOTE_ROWS

mfu_7b = NOTE_ROWS[0].mfu()
print(f"笔记 7B 一行隐含的 MFU = {mfu_7b:.4f}")

# %%
# >>> 练习 05.3：在下面写你的答案
my_cost = ...  # TODO：{"hours": ..., "cost_cny": ...}
# <<< 练习 05.3
check("05.3", my_cost, params=7e9, tokens=940e6, epochs=3, gpus=8, mfu=mfu_7b)

# %% [markdown]
# ## 6. 在 Slurm 集群上运行
#
# `slurm/train_7b.sbatch`（1 节点 × 4 A100）、`train_14b.sbatch`（1 节点 × 8 A100）、`train_72b.sbatch`（4 节点 × 8 A100）
# 都用 papermill 执行**本 notebook**，通过 `-p` 传入 `model_path`、`deepspeed`、`max_len` 等参数；`srun` 在每个节点启动一个
# `torchrun`，每个 rank 执行一遍 notebook。作业被抢占时保存 checkpoint 并 `scontrol requeue`，重新排队后自动续训。
# 详见 `slurm/README.md`。

# %% [markdown]
# ## 小结
#
# - SFT 的本质：给定 Input，让 Output' 接近标准 Output；代码上就是 loss mask——prompt 全是 -100，只有老师的输出（含 `<end_of_turn>`）计 loss；
# - 第一步 loss：随机初始化 ≈ ln(V) ≈ 12.5；预训练模型低得多，因为它已经会语言，Agent Tuning 教的是格式、规划与停止；
# - 笔记的配置（HF Trainer + DeepSpeed ZeRO-3、max_len 4096、Flash Attention、bf16、batch 1、AdamW）在本实验里一一对应到 `TrainSettings`；
#   Agent 模型通常需要**全参数**训练（§3.3：LoRA 效果不好）——实验 06 的“改配方”实验在同样的训练分钟数下对比全参数与 LoRA，自己检验这句话；
# - 成本 = 34.742 元/卡·时 × 卡数 × 小时；时长 ≈ 6·N·token 数·epoch ÷ （卡数 × 峰值 × MFU），笔记的表隐含 MFU 约 14%–18%。
#
# ## 延伸阅读（笔记 §5）
#
# - **KwaiAgents**：Qwen-7B-MAT、Qwen-14B-MAT、Baichuan2-13B-MAT 等都在 KAgentInstruct（20 万+ 条）上全参数微调，7B/13B 超过 GPT-3.5；
# - **AgentTuning**：AgentLM 7B/13B/70B 由 Llama2-chat 在 AgentInstruct（1,866 条）+ ShareGPT 上微调；
# - **ToolBench**：同时发布了全参数的 ToolLLaMA-2-7b-v2 / ToolLLaMA-7b-v1 和 ToolLLaMA-7b-LoRA-v1，可以自己比较全参数与 LoRA 的差别。
