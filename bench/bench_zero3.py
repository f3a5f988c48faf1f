"""Show that DeepSpeed ZeRO-3 shards parameters and optimizer state across ranks, on CPU.

``python bench/bench_zero3.py`` launches itself with ``torchrun --nproc_per_node 1`` and ``2`` (gloo / DeepSpeed CPU
accelerator), loads gemma-3-270m under ``deepspeed.zero.Init`` (each rank keeps only its partition), runs one optimizer step through ``deepspeed.initialize``, and prints per-rank numbers side by side:
local parameter elements (the rank's partition), optimizer-state elements and bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def worker(model_dir: str, out: str, steps: int) -> None:
    import deepspeed
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.integrations import HfDeepSpeedConfig

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    deepspeed.init_distributed(dist_backend="gloo")
    ds_config = json.loads((REPO / "slurm" / "ds_zero3.json").read_text())
    ds_config.update(train_micro_batch_size_per_gpu=1, gradient_accumulation_steps=1, train_batch_size=world,
                     gradient_clipping=1.0, bf16={"enabled": False}, fp16={"enabled": False})
    for key in ("reduce_bucket_size", "stage3_prefetch_bucket_size", "stage3_param_persistence_threshold"):
        ds_config["zero_optimization"][key] = {"stage3_param_persistence_threshold": 0}.get(key, 5e7)
    t0 = time.perf_counter()
    hf_ds = HfDeepSpeedConfig(ds_config)  # noqa: F841  (kept alive: from_pretrained then loads under zero.Init)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = model.config
    params = list(model.parameters())
    full = sum(p.ds_numel for p in params)
    local = sum(p.ds_tensor.numel() for p in params)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-5)
    engine, *_ = deepspeed.initialize(model=model, optimizer=optim, config=ds_config)
    ids = torch.randint(0, config.vocab_size, (1, 64))
    step_s = []
    for _ in range(steps):
        t = time.perf_counter()
        loss = engine(input_ids=ids, labels=ids).loss
        engine.backward(loss)
        engine.step()
        step_s.append(time.perf_counter() - t)
    opt = engine.optimizer
    state_numel = sum(t.numel() for group in opt.optimizer.state.values() for t in group.values()
                      if torch.is_tensor(t) and t.dim() > 0)
    fp32_master = sum(p.numel() for g in opt.fp32_partitioned_groups_flat for p in [g])
    rec = {"rank": rank, "world": world, "full_param_numel": full, "local_param_numel": local,
           "local_fp32_master_numel": fp32_master, "local_adam_state_numel": state_numel,
           "local_bytes_params_master_adam": 4 * (local + fp32_master + state_numel),
           "loss": float(loss), "s_per_step": sum(step_s) / len(step_s), "init_s": time.perf_counter() - t0}
    Path(out).with_name(f"{Path(out).stem}.rank{rank}.json").write_text(json.dumps(rec))


def launch(world: int, model_dir: str, out_dir: Path, steps: int) -> list[dict]:
    out = out_dir / f"zero3_world{world}.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={world}", "--master_port",
           str(29600 + world), __file__, "--worker", "--model", model_dir, "--out", str(out), "--steps", str(steps)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"torchrun world={world} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return [json.loads((out_dir / f"{out.stem}.rank{r}.json").read_text()) for r in range(world)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=str(Path.home() / ".cache" / "labkit" / "gemma-3-270m"))
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    if a.worker:
        worker(a.model, a.out, a.steps)
        return
    import record

    with tempfile.TemporaryDirectory() as tmp:
        rows = launch(1, a.model, Path(tmp), a.steps) + launch(2, a.model, Path(tmp), a.steps)
    print(f"{'world':>5} {'rank':>4} {'full params':>12} {'local params':>12} {'fp32 master':>12} "
          f"{'adam state':>12} {'local MiB':>10} {'loss':>8} {'s/step':>7}")
    for r in rows:
        print(f"{r['world']:>5} {r['rank']:>4} {r['full_param_numel']:>12,} {r['local_param_numel']:>12,} "
              f"{r['local_fp32_master_numel']:>12,} {r['local_adam_state_numel']:>12,} "
              f"{r['local_bytes_params_master_adam'] / 2**20:>10.1f} {r['loss']:>8.4f} {r['s_per_step']:>7.2f}")
    one = rows[0]["local_bytes_params_master_adam"]
    for r in rows[1:]:
        print(f"world 2 rank {r['rank']}: {r['local_bytes_params_master_adam'] / one:.3f} x the 1-rank memory")
    record.save("bench_zero3", {"model": a.model, "steps": a.steps, "rows": rows})


if __name__ == "__main__":
    main()
