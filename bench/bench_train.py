"""Standard causal-LM loss vs logits only at supervised positions: s/step and tokens/s side by side.

Full-parameter AdamW steps on gemma-3-270m (CPU or GPU), the same batches for both variants: agent prompts rendered
with the ReAct template (prompt tokens masked) and a ReAct answer (supervised). Prints both rows and the speed ratio,
and checks that the two losses agree on the first batch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from labkit.train.checks import agent_prompt  # noqa: E402
from labkit.train.collate import PadCollator, SFTDataset  # noqa: E402
from labkit.train.loss import supervised_logits_loss  # noqa: E402
from labkit.train.tiny import resolve_model_path  # noqa: E402

QUERIES = ["北京明天天气怎么样?", "100 美元能换多少人民币?", "2025 年 3 月 20 日北京到上海的火车有哪些?",
           "计算 (3.5 + 4) * 12 的结果。"]
ANSWER = ('Thought: 我需要先调用合适的工具获取信息,再根据结果回答用户的问题。\nAction: web_search\n'
          'Action Input: {"query": "%s"}')


def batches(tokenizer, max_len: int, batch_size: int, n: int) -> list[dict[str, torch.Tensor]]:
    samples = [{"messages": agent_prompt(q) + [{"role": "assistant", "content": ANSWER % q}]} for q in QUERIES]
    ds = SFTDataset(samples, tokenizer, max_len)
    collate = PadCollator(tokenizer.pad_token_id)
    return [collate([ds[(i * batch_size + j) % len(ds)] for j in range(batch_size)]) for i in range(n)]


def run(model_path: str, data: list[dict[str, torch.Tensor]], supervised_only: bool) -> dict[str, float]:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32, attn_implementation="sdpa")
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    times, losses = [], []
    for i, batch in enumerate(data):
        t = time.perf_counter()
        loss = supervised_logits_loss(model, batch) if supervised_only else model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
        losses.append(loss.item())
    timed = times[1:] or times  # the first step pays one-off allocation costs
    tokens = sum(int(b["attention_mask"].sum()) for b in data[1:] or data)
    return {"s_per_step": sum(timed) / len(timed), "tokens_per_s": tokens / sum(timed), "first_loss": losses[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--steps", type=int, default=4, help="steps per variant (the first is not timed)")
    ap.add_argument("--max_len", type=int, default=512)
    ap.add_argument("--batch_size", type=int, default=1)
    a = ap.parse_args()
    path = resolve_model_path(a.model)
    tok = AutoTokenizer.from_pretrained(path)
    data = batches(tok, a.max_len, a.batch_size, a.steps)
    n_tok = int(data[0]["attention_mask"].sum())
    n_sup = int((data[0]["labels"] != -100).sum())
    print(f"model={Path(path).name} threads={torch.get_num_threads()} batch={a.batch_size} "
          f"tokens/batch={n_tok} supervised/batch={n_sup} steps={a.steps}")
    std = run(path, data, supervised_only=False)
    sup = run(path, data, supervised_only=True)
    print(f"{'variant':<28}{'s/step':>10}{'tokens/s':>12}{'loss@1':>10}")
    for name, r in (("standard loss", std), ("supervised logits only", sup)):
        print(f"{name:<28}{r['s_per_step']:>10.2f}{r['tokens_per_s']:>12.1f}{r['first_loss']:>10.4f}")
    print(f"speed-up (standard s/step / supervised-only s/step): {std['s_per_step'] / sup['s_per_step']:.2f}x; "
          f"loss difference at step 1: {abs(std['first_loss'] - sup['first_loss']):.2e}")


if __name__ == "__main__":
    main()
