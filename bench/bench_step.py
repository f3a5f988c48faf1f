"""One course training step against the CPU's matrix-multiply rate, and what packing by token budget and
shared-prefix rows buy — side by side in one run, on the same course samples, with the loss check.

    python bench/bench_step.py                          # gemma-3-270m, about 10 minutes on 2 cores
    python bench/bench_step.py --model tiny --agent 12  # a quick look

The samples are whole trajectories (every step of a query under one template, as the course data has them) drawn
with a seed, plus general samples in the data's agent : general ratio, shuffled. Every variant trains on all of them
once through ``labkit.train.train`` (the course's code path), each in a fresh process so that no allocator state or
registered attention leaks from one into the next; the first step is not timed. Variants, each adding one change:

1. main's course path: bf16 autocast, frozen embedding, 4 samples per packed row in file order, PyTorch SDPA once per
   sample (main's attention, kept below as the reference);
2. + labkit's segment attention (one masked matmul attention per sample, scores in fp32);
3. + rows filled to a token budget (``pack_tokens``);
4. + shared-prefix rows (``share_prefix``).

Useful FLOP/s counts the matrix work the processed tokens need — 6 × linear weights per token (forward, input and
weight gradients), the LM head at supervised positions (forward + input gradient: the tied embedding is frozen), and
attention over the keys each token may see (× 3 for the backward) — divided by the step time, and is compared with a
2048 × 2048 matmul measured in the same run (bf16 where the CPU has native bf16). Shared prefixes are counted once
(the work really done), so their gain shows in samples/min, not in FLOP/s.

Loss check: on one trajectory plus a general sample, the fp32 loss of a shared-prefix row must equal the loss of the
samples one per row within 1e-4; the bf16 rows report their difference.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import record  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from labkit.jsonl import read_jsonl, write_jsonl  # noqa: E402

PER_ROW = 4
BUDGET = 2048
VARIANTS = {  # name: (label, TrainSettings overrides, main's attention)
    "main": ("main's course path (4 samples/row, SDPA per sample)", {"packing": True, "batch_size": PER_ROW}, True),
    "attention": ("+ segment attention (masked matmul)", {"packing": True, "batch_size": PER_ROW}, False),
    "budget": (f"+ rows filled to {BUDGET} tokens", {"packing": True, "batch_size": 1, "pack_tokens": BUDGET},
               False),
    "prefix": ("+ shared-prefix rows", {"packing": True, "batch_size": 1, "pack_tokens": BUDGET,
                                        "share_prefix": True}, False),
}


def main_segment_sdpa(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                      sliding_window: int | None = None, position_ids: torch.Tensor | None = None,
                      **kwargs: Any) -> tuple[torch.Tensor, None]:
    """main's attention for packed rows (before this bench's change): PyTorch SDPA once per sample."""
    from labkit.train.packing import segment_bounds

    outs = []
    for start, end in segment_bounds(position_ids):
        q, k, v = query[:, :, start:end], key[:, :, start:end], value[:, :, start:end]
        n = end - start
        if sliding_window and n > sliding_window:
            i = torch.arange(n)
            mask = (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - sliding_window)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scaling, enable_gqa=True)
        else:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scaling, enable_gqa=True)
        outs.append(o)
    return torch.cat(outs, dim=2).transpose(1, 2).contiguous(), None


def matmul_rate(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, (time.perf_counter() - t) / repeats)
    return 2 * n ** 3 / best


def draw_samples(path: Path, n_agent: int, seed: int) -> list[dict[str, Any]]:
    """Whole trajectories until ``n_agent`` agent samples, plus general samples in the data's ratio, shuffled."""
    pool = read_jsonl(path)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    general = []
    for s in pool:
        if s.get("source") == "general":
            general.append(s)
        else:
            groups[(s.get("query_id"), s.get("template"))].append(s)
    rng = random.Random(seed)
    keys = sorted(groups)
    rng.shuffle(keys)
    agent: list[dict] = []
    for k in keys:
        if len(agent) >= n_agent:
            break
        agent.extend(groups[k])
    picked = agent + rng.sample(general, round(len(agent) * len(general) / max(len(pool) - len(general), 1)))
    rng.shuffle(picked)
    return picked


def useful_flops(model_dir: str, rows: list[dict[str, list[int]]], supervised: int) -> float:
    """FLOPs of the matrix work in a run over ``rows`` (packed rows as trained); see the module doc."""
    from transformers import AutoConfig

    from labkit.train.packing import segment_bounds, segment_mask

    c = AutoConfig.from_pretrained(model_dir)
    h, heads, kv, d, inter = c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim, \
        c.intermediate_size
    linear = c.num_hidden_layers * (h * heads * d + 2 * h * kv * d + heads * d * h + 3 * h * inter)
    tokens = sum(len(r["position_ids"]) for r in rows)
    layer_types = getattr(c, "layer_types", None) or ["full_attention"] * c.num_hidden_layers
    keys = 0
    for r in rows:
        pos = torch.tensor(r["position_ids"])
        for a, b in segment_bounds(pos):
            full = int(segment_mask(pos[a:b]).sum())
            windowed = int(segment_mask(pos[a:b], c.sliding_window).sum()) if c.sliding_window else full
            keys += sum(windowed if t == "sliding_attention" else full for t in layer_types)
    attention = 3 * 4 * heads * d * keys  # QKᵀ and PV, forward + 2 × backward
    return 6 * linear * tokens + 4 * h * c.vocab_size * supervised + attention


def worker(variant: str, model_path: str, data: Path, out: Path) -> None:
    """One variant in this (fresh) process: train over the samples once, print a JSON line."""
    import labkit.train.packing as packing
    from labkit.train import TrainSettings, train
    from labkit.train.collate import SFTDataset, load_samples
    from labkit.llm.local import load_tokenizer

    label, overrides, main_attention = VARIANTS[variant]
    if main_attention:
        packing.segment_attention = main_segment_sdpa  # registered under labkit_segments by the trainer
    n = len(read_jsonl(data))
    cfg = TrainSettings(model_path=model_path, data_path=str(data), output_dir=str(out / variant), max_len=BUDGET,
                    lr=1e-5, warmup_ratio=0.0, save_steps=100_000, sequential=True, freeze_embeddings=True,
                    precision="auto", resume=False, seed=0, curve_points=0,
                    **({"epochs": 1.0} if overrides.get("pack_tokens") else {"max_steps": n // PER_ROW}),
                    **overrides)
    train(cfg)
    log = read_jsonl(out / variant / "train_log.jsonl")
    saved = json.loads((out / variant / "labkit_train_config.json").read_text())
    # the rows as trained, to count their matrix work (same packing code, same seed)
    ds = SFTDataset(load_samples(data), load_tokenizer(), cfg.max_len)
    if cfg.pack_tokens:
        pr = packing.packed_rows(ds.rows, ds.sources, ds.prefix_keys, budget=cfg.pack_tokens,
                                 share_prefix=cfg.share_prefix, seed=cfg.seed)
        rows = [packing.row_tensors(pr[i]["units"]) for i in range(len(pr))]
    else:
        rows = [packing.row_tensors([packing.sample_unit(r) for r in ds.rows[i:i + PER_ROW]])
                for i in range(0, len(ds.rows) - len(ds.rows) % PER_ROW, PER_ROW)]
    rows = [{k: v[0].tolist() for k, v in r.items()} for r in rows]
    timed = log[1:]
    flops = useful_flops(model_path, rows[1:len(log)], sum(r["supervised_tokens"] for r in timed))
    print("RESULT " + json.dumps({
        "variant": variant, "label": label, "precision": saved["precision_resolved"], "steps": len(timed),
        "seconds": sum(r["s_per_step"] for r in timed), "samples": sum(r["samples"] for r in timed),
        "tokens": sum(r["tokens"] for r in timed), "supervised": sum(r["supervised_tokens"] for r in timed),
        "step_tokens": [r["tokens"] for r in log], "flops": flops}), flush=True)


def loss_check(model_path: str, samples: list[dict[str, Any]]) -> dict[str, float]:
    """fp32 and bf16 losses of one trajectory + a general sample: one per row vs one shared-prefix row."""
    from transformers import AutoModelForCausalLM

    from labkit.llm.local import load_tokenizer
    from labkit.train.collate import PadCollator, SFTDataset, prefix_key
    from labkit.train.loss import supervised_logits_loss
    from labkit.train.packing import register_segment_attention, row_tensors, shared_prefix_units

    by_key: dict[tuple, list[dict]] = defaultdict(list)
    for s in samples:
        if prefix_key(s):
            by_key[prefix_key(s)].append(s)
    traj = max(by_key.values(), key=len)
    check = traj + [next(s for s in samples if s.get("source") == "general")]
    ds = SFTDataset([{**s, "prefix_key": prefix_key(s)} for s in check], load_tokenizer(), 4096)
    n = ds.supervised_tokens()
    out = {"check_samples": len(check)}
    attn = register_segment_attention()
    for precision in ("fp32", "bf16"):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            ref = AutoModelForCausalLM.from_pretrained(model_path, attn_implementation="sdpa")
            out[f"{precision}_separate"] = float(sum(supervised_logits_loss(ref, PadCollator(0)([r]), n)
                                                     for r in ds.rows))
            model = AutoModelForCausalLM.from_pretrained(model_path, attn_implementation=attn)
            row = row_tensors(shared_prefix_units(ds.rows, ds.prefix_keys, 8192, sources=ds.sources))
            out[f"{precision}_shared_prefix"] = float(supervised_logits_loss(model, row, n))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--agent", type=int, default=60, help="agent samples (whole trajectories) each variant trains on")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    from labkit.train.tiny import resolve_model_path

    model_path = str(resolve_model_path(a.model))
    if a.worker:
        return worker(a.worker, model_path, Path(a.data), Path(a.out))
    from labkit.llm.local import cpu_has_native_bf16
    from labkit.paths import runs_dir

    path = runs_dir() / "data" / "course" / "train.jsonl"
    if not path.exists():
        from labkit.data.pipeline import build_dataset

        build_dataset("course", progress=False)
    samples = draw_samples(path, a.agent, a.seed)
    out = Path(tempfile.mkdtemp(prefix="bench_step_"))
    data = out / "train.jsonl"
    write_jsonl(data, samples)
    native = cpu_has_native_bf16()
    rate = matmul_rate(torch.bfloat16 if native else torch.float32)
    print(f"model={Path(model_path).name} threads={torch.get_num_threads()} samples={len(samples)} "
          f"native bf16={native} matmul 2048² {'bf16' if native else 'fp32'}: {rate / 1e9:.0f} GFLOP/s "
          f"date={time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    results = []
    for v in a.variants:
        proc = subprocess.run([sys.executable, __file__, "--model", a.model, "--worker", v, "--data", str(data),
                               "--out", str(out)], capture_output=True, text=True)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            sys.exit(f"variant {v} failed:\n{proc.stderr[-3000:]}")
        r = json.loads(line[len("RESULT "):])
        r["useful_flops_per_s"] = r["flops"] / r["seconds"]
        results.append(r)
        print(f"  {r['label']}: {r['seconds'] / r['steps']:.2f} s/step", flush=True)
    checks = loss_check(model_path, samples)
    base = results[0]
    print(f"\n{'variant':<50}{'s/step':>8}{'tok/step':>9}{'tok/sample':>11}{'samples/min':>12}{'x main':>8}"
          f"{'GFLOP/s':>9}{'÷ matmul':>9}")
    for r in results:
        spm = 60 * r["samples"] / r["seconds"]
        print(f"{r['label']:<50}{r['seconds'] / r['steps']:>8.2f}{r['tokens'] / r['steps']:>9.0f}"
              f"{r['tokens'] / r['samples']:>11.0f}{spm:>12.1f}{spm / (60 * base['samples'] / base['seconds']):>8.2f}"
              f"{r['useful_flops_per_s'] / 1e9:>9.0f}{r['useful_flops_per_s'] / rate:>9.2f}")
        steps = r["step_tokens"]
        r["step_tokens_min_max"] = [min(steps), max(steps)]
    d32 = abs(checks["fp32_shared_prefix"] - checks["fp32_separate"])
    d16 = abs(checks["bf16_shared_prefix"] - checks["fp32_separate"])
    print(f"\ntokens per step (min..max): " + "; ".join(f"{r['variant']} {r['step_tokens_min_max'][0]}.."
                                                     f"{r['step_tokens_min_max'][1]}" for r in results))
    print(f"loss check on {checks['check_samples']} samples (one trajectory + a general sample): fp32 one per row "
          f"{checks['fp32_separate']:.5f}, shared-prefix row {checks['fp32_shared_prefix']:.5f} (Δ {d32:.1e}, "
          f"{'OK' if d32 < 1e-4 else 'FAIL'}, limit 1e-4); bf16 shared-prefix row Δ {d16:.1e} from fp32")
    record.save("bench_step", {"model": Path(model_path).name, "threads": torch.get_num_threads(),
                               "native_bf16": native, "matmul_flops_per_s": rate, "samples": len(samples),
                               "variants": results, "loss_check": checks})
    if d32 >= 1e-4:
        sys.exit(1)


if __name__ == "__main__":
    main()
