"""Notebook display helpers: prompts side by side, gold round-trip tables, traces compared, base-model diagnosis."""

from __future__ import annotations

import difflib
import html
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from IPython.display import HTML

from labkit.agent.trace import Trace, TraceStep
from labkit.parsing import parse_output, render_gold
from labkit.templates import AgentTemplate
from labkit.types import ParseError, ToolCall

ECHO_MIN_CHARS = 20  # an output sharing this many consecutive characters with its prompt is "echoing" it

# The note's §2.1 comparison of the four mainstream prompt families (summarised).
TEMPLATE_COMPARISON = [
    ("ReAct", "Question 之后以 Thought / Action / Action Input / Observation 多轮执行，最后输出 Final Answer",
     "prompt 简单", "API 参数只能有一个；没有反思行为，错误的思考不能及时纠正"),
    ("ModelScope", "更为直接地生成回复；调用只需加入 <|startofthink|> 和 <|endofthink|> 字段，并在其中填入 command_name 和 args",
     "简单直接", "没有反思行为，错误的思考不能及时纠正"),
    ("AutoGPT", "分“生成工具调用”与“生成最终答案”两套 prompt；设 Constraints / Resources / Best Practices，严格 JSON 输出",
     "限制多，善于自我反思与任务规划", "prompt 较长，花费较大"),
    ("ToolLLaMA", "模仿 AutoGPT 与 ReAct，以 Thought / Action / Action Input 输出；增加 give_up_and_restart，可全部推倒重来",
     "自我反思、任务规划，并支持推倒重来", "prompt 较长，花费较大；推倒重来花费更大"),
]


def template_comparison_table() -> pd.DataFrame:
    return pd.DataFrame(TEMPLATE_COMPARISON, columns=["模板", "描述", "优点", "缺点"])


def prompts_side_by_side(prompts: Mapping[str, str], *, height_em: int = 32) -> HTML:
    """One scrollable column per prompt, so the families can be compared for the same query and tools."""
    cols = "".join(
        f"<div style='flex:1;min-width:18em'><b>{html.escape(name)}</b> ({len(text)} chars)"
        f"<pre style='white-space:pre-wrap;font-size:11px;height:{height_em}em;overflow:auto;border:1px solid #ccc;"
        f"padding:4px'>{html.escape(text)}</pre></div>" for name, text in prompts.items())
    return HTML(f"<div style='display:flex;gap:8px'>{cols}</div>")


def gold_roundtrip_table(templates: Sequence[AgentTemplate], call: ToolCall, thought: str,
                         tools: Any = None) -> pd.DataFrame:
    """For each template: the gold text of one tool call in its output format, and what the parser reads back."""
    rows = []
    for t in templates:
        gold = render_gold(call, t.output_format, thought)
        parsed = parse_output(gold, t.output_format, tools=tools)
        ok = not isinstance(parsed, ParseError)
        rows.append({"template": t.name, "output_format": t.output_format, "gold output": gold,
                     "parsed tool": parsed.call.name if ok and parsed.call else None,
                     "parsed args": json.dumps(parsed.call.args, ensure_ascii=False) if ok and parsed.call else None,
                     "round trip ok": ok and parsed.call == call})
    return pd.DataFrame(rows)


def compare_traces(traces: Sequence[Trace]) -> pd.DataFrame:
    """One row per run: who answered, how it stopped, which tools it called, the parse error, the answer."""
    rows = []
    for tr in traces:
        err = tr.error
        rows.append({"model": tr.model, "template": tr.template, "stopped": tr.stopped, "steps": len(tr.steps),
                     "calls": ", ".join(c["name"] for c in tr.calls),
                     "parse error": f"{err['code']}: {err['message']}" if err else "",
                     "final answer": (tr.final_answer or "")[:120]})
    return pd.DataFrame(rows)


def diagnose_step(step: TraceStep, *, output_format: str, max_new_tokens: int) -> dict[str, Any]:
    """Why a (base-model) output is unusable: parse error, prompt echo, no end of turn, prose instead of format."""
    out = step.output
    match = difflib.SequenceMatcher(None, out, step.prompt, autojunk=False).find_longest_match(
        0, len(out), 0, len(step.prompt))
    parsed = parse_output(out, output_format)
    return {
        "parse": "OK" if not isinstance(parsed, ParseError) else f"ParseError[{parsed.code}]",
        "message": parsed.message if isinstance(parsed, ParseError) else "",
        "echoes prompt": match.size >= ECHO_MIN_CHARS,
        "longest copied span": out[match.a: match.a + match.size][:60],
        "stopped by itself": 0 < step.completion_tokens < max_new_tokens,
        "completion tokens": step.completion_tokens,
        "output head": out[:120],
    }


def diagnose_trace(trace: Trace, *, output_format: str, max_new_tokens: int) -> pd.DataFrame:
    return pd.DataFrame([diagnose_step(s, output_format=output_format, max_new_tokens=max_new_tokens)
                         for s in trace.steps])


def api_ready() -> bool:
    """True when an OpenAI-compatible API key is configured (environment or ``.env``); the key is never shown.

    Reads the settings exactly as :meth:`labkit.llm.OpenAIChat.from_env` does (no parent folder's ``.env``, nothing
    copied into ``os.environ``), so an untrusted ``.env`` cannot redirect the key through this check."""
    from labkit.llm.openai_client import read_env

    return bool(read_env().get("OPENAI_API_KEY"))


API_HINT = """未检测到 OPENAI_API_KEY，跳过 API 模型。如需对比真实大模型，请在仓库根目录创建 .env 文件（已被 git 忽略）：
    OPENAI_API_KEY=sk-...
    OPENAI_BASE_URL=https://api.openai.com/v1   # 可选：任何 OpenAI 兼容服务
    LABKIT_API_MODEL=gpt-4o-mini                # 可选
然后重新运行本单元。"""


def split_sections(prompt: str, markers: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Cut a rendered prompt at marker strings (in order) into named sections: one row per section.

    The first section runs from the start of the prompt to the second marker; a marker not found is reported
    as an empty section, so a template edit that drops a section shows up instead of silently merging.
    """
    cuts: list[tuple[str, int]] = []
    start = 0
    for i, (name, marker) in enumerate(markers):
        pos = 0 if i == 0 else prompt.find(marker, start)
        cuts.append((name, pos))
        start = max(start, pos)
    rows = []
    found = [(n, p) for n, p in cuts if p >= 0]
    for k, (name, pos) in enumerate(found):
        end = found[k + 1][1] if k + 1 < len(found) else len(prompt)
        rows.append({"section": name, "chars": end - pos, "text": prompt[pos:end].strip()})
    rows += [{"section": n, "chars": 0, "text": "(not found)"} for n, p in cuts if p < 0]
    return pd.DataFrame(rows)


def silence_library_noise() -> None:
    """Keep notebook cells readable: no dataset-saving / weight-loading progress bars, no DeepSpeed or transformers
    info and deprecation chatter (errors still show). labkit's own progress bars (labelling, training) stay."""
    import logging
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if "DS_ACCELERATOR" not in os.environ and not _cuda_available():
        os.environ["DS_ACCELERATOR"] = "cpu"  # DeepSpeed then skips its "unable to detect a GPU" warning
    for name in ("DeepSpeed", "deepspeed", "torch.distributed", "accelerate", "datasets", "papermill"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*(TRANSFORMERS_CACHE|torch_dtype|use_cache=True|generation flags).*")
    try:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
    try:
        import datasets

        datasets.disable_progress_bars()
        datasets.utils.logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def notebook_setup(*, quiet: bool = True) -> str | None:
    """Call once at the top of a notebook: pandas shows tables in full (no '...' in long cells), matplotlib gets a
    CJK font for Chinese labels, library noise is silenced. Returns the CJK font used (None: fallback, warned)."""
    from labkit.plotting import use_cjk_font

    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_columns", None)
    pd.set_option("display.width", 200)
    if quiet:
        silence_library_noise()
    return use_cjk_font()


def loss_mask_html(input_ids: Sequence[int], labels: Sequence[int], tokenizer: Any, *,
                   prompt_tail: int = 40) -> HTML:
    """The tokens of one training sample, coloured by the loss mask: grey = label -100 (not trained on), green =
    supervised. Only the last ``prompt_tail`` prompt tokens before the first supervised one are shown."""
    first = next((i for i, lab in enumerate(labels) if lab != -100), len(labels))
    start = max(0, first - prompt_tail)
    spans = [f"<span style='color:#888'>… {start} 个 prompt token 略 …</span> " if start else ""]
    for tok_id, lab in zip(input_ids[start:], labels[start:]):
        text = html.escape(tokenizer.decode([tok_id])).replace("\n", "↵<br>")
        style = "background:#d4f7d4;border-bottom:2px solid #2ea043" if lab != -100 else "color:#777"
        spans.append(f"<span style='{style};margin-right:1px'>{text}</span>")
    n_sup = sum(lab != -100 for lab in labels)
    return HTML(f"<div style='font-family:monospace;font-size:12px;line-height:1.7'>{''.join(spans)}</div>"
                f"<p>{len(input_ids)} 个 token，其中 <b>{n_sup}</b> 个（绿色）参与 loss，其余 {len(input_ids) - n_sup} 个 label = -100。</p>")


def plot_segment_mask(positions: Sequence[int], *, window: int | None = None, title: str = "") -> Any:
    """Picture of one packed unit's attention mask (labkit.train.packing.segment_mask): a row per query token, a
    column per key token, dark = may attend. A shared prefix shows as the block every branch sees on the left."""
    import matplotlib.pyplot as plt
    import torch

    from labkit.plotting import use_cjk_font
    from labkit.train.packing import segment_mask

    use_cjk_font(warn=False)
    mask = segment_mask(torch.tensor(list(positions)), window)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(mask.numpy(), cmap="Greys", interpolation="nearest")
    ax.set_xlabel("key token（被看的位置）")
    ax.set_ylabel("query token（正在计算的位置）")
    ax.set_title(title or f"{len(positions)} tokens")
    fig.tight_layout()
    return fig
