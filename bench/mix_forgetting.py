"""Does the note's Agent : General = 5 : 1 mix protect general ability? (course note §3.2, notebook 06)

Two full fine-tunes of the same base model, same seed, same number of steps and learning rate: one on the agent
samples only, one on the 5 : 1 mix that `build_dataset` writes. Then the held-out loss (cross-entropy per supervised
token) of the base model and of both tuned models on
  - general:  the held-out general samples (`general_test.jsonl`: never trained on, leakage-checked), and
  - agent:    teacher steps for the held-out test queries with the training templates (never trained on).
Lower is better; a rise of the general loss over the base model is forgetting. Writes a JSON (default
bench/results/mix_forgetting.json) that notebook 06 shows.

    nice -n 10 python bench/mix_forgetting.py --steps 60            # ~ 2 x 60 steps of gemma-3-270m on the CPU
    python bench/mix_forgetting.py --model tiny --steps 4 --out /tmp/x.json   # a quick run of the machinery
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

from labkit.data import build_dataset, mode_jobs, read_training_set, step_samples
from labkit.data.label import label_jobs, load_labelled
from labkit.data.mix import general_sample
from labkit.jsonl import read_jsonl, write_jsonl
from labkit.paths import runs_dir
from labkit.train import TrainSettings, train
from labkit.train.checks import heldout_loss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--agent-heldout", type=int, default=40, help="held-out agent samples scored")
    ap.add_argument("--work", default=str(runs_dir() / "bench" / "mix_forgetting"))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "mix_forgetting.json"))
    args = ap.parse_args()
    work = Path(args.work)
    data = build_dataset("course", work / "data", progress=False)
    mixed = read_training_set(data.train_path)
    agent_only = [s for s in mixed if s["source"] == "agent"]
    write_jsonl(work / "agent_only.jsonl", agent_only)
    stats = data.stats

    general = [general_sample(g) for g in read_jsonl(data.out_dir / "general_test.jsonl")]
    test_q = read_jsonl(data.out_dir / "test_queries.jsonl")
    jobs, _ = mode_jobs("course", test_q, templates_per_query=1)  # the training templates, one per query
    label_jobs(jobs, "sandbox", work / "heldout_labelling", progress=False)
    heldout_agent = [s for r in load_labelled(work / "heldout_labelling") for s in step_samples(r)]
    heldout_agent = sorted(heldout_agent, key=lambda s: s["id"])[: args.agent_heldout]

    runs = {"agent only": work / "agent_only.jsonl", "agent : general = 5 : 1": data.train_path}
    results = {"base (no training)": {"model": args.model}}
    for label, data_path in runs.items():
        out = work / ("train_" + ("agent_only" if label == "agent only" else "mix_5_1"))
        cfg = TrainSettings.for_mode("course", model_path=args.model, data_path=str(data_path), output_dir=str(out),
                                 max_steps=args.steps, lr=args.lr, save_steps=args.steps)
        t0 = time.perf_counter()
        res = train(cfg)
        res.raise_if_preempted()  # stopped by a signal: a re-run resumes from the checkpoint; never score a half run
        results[label] = {"model": str(out), "train_samples": len(read_jsonl(data_path)), "steps": res.global_step,
                          "train_seconds": round(time.perf_counter() - t0, 1), "final_loss": res.losses[-1][1]}
    for label, row in results.items():
        path = row["model"]
        row["general_heldout"] = heldout_loss(path, general)
        row["agent_heldout"] = heldout_loss(path, heldout_agent)
        print(label, row, flush=True)
    report = {"command": "python bench/mix_forgetting.py " + " ".join(
                  f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k in ("model", "steps", "lr")),
              "measured": datetime.now(timezone.utc).isoformat(timespec="minutes"), "machine": platform.processor()
              or platform.machine(), "lr": args.lr, "steps": args.steps, "base_model": args.model,
              "mix": stats["samples"]["mix"], "general_heldout_samples": len(general),
              "agent_heldout_samples": len(heldout_agent), "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
