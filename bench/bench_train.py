"""Training speed of the course recipe, each optimisation on its own and combined, against main's course path and
TRL's SFTTrainer — side by side in one run, on the same agent samples, with the loss of the same batch compared.

    python bench/bench_train.py                      # gemma-3-270m, 24 course samples per variant (~25 min, 2 cores)
    python bench/bench_train.py --samples 8 --model tiny   # a quick look

Every variant trains on exactly the same samples in the same order (``--samples`` of the course training set,
drawn with a seed; packed/padded variants take them ``--per_row`` at a time), through ``labkit.train.train`` — the
HF Trainer the course runs — except the TRL row, which feeds the same token ids and completion masks to
``trl.SFTTrainer`` (pre-tokenised, completion-only loss). The first optimizer step of each variant is not timed
(one-off allocation and kernel set-up). Reported: supervised tokens/s (the tokens that carry the loss) and
samples/min, and each variant's factor over main's course path.

Loss check: before any update, every fp32 variant's loss on the first ``--per_row`` samples must equal main's
course-path loss on them within 1e-4 (same math: frozen embeddings and packing change the cost, not the loss);
bf16 rows report their difference instead.

"Shorter prompts" is measured, not estimated: the same labelling jobs are rendered once offering every sandbox tool
and once offering the gold tools plus distractors (labkit.tools.offer, what the data stage does), and the combined
recipe is timed on both.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import record  # noqa: E402
import torch  # noqa: E402

from labkit.jsonl import write_jsonl  # noqa: E402
from labkit.train import TrainSettings, train  # noqa: E402
from labkit.train.collate import IGNORE_INDEX, PadCollator, SFTDataset, load_samples  # noqa: E402
from labkit.train.loss import supervised_logits_loss  # noqa: E402
from labkit.train.packing import PackedCollator, register_segment_attention  # noqa: E402
from labkit.train.tiny import resolve_model_path  # noqa: E402


@dataclass
class Row:
    name: str
    seconds: float
    supervised: int
    samples: int
    loss0: float | None = None
    precision: str = "fp32"

    @property
    def sup_per_s(self) -> float:
        return self.supervised / self.seconds if self.seconds else 0.0

    @property
    def samples_per_min(self) -> float:
        return 60 * self.samples / self.seconds if self.seconds else 0.0


def course_samples(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` samples drawn from the course training set (built with the data stage if missing)."""
    from labkit.paths import runs_dir

    path = runs_dir() / "data" / "course" / "train.jsonl"
    if not path.exists():
        from labkit.data.pipeline import build_dataset

        build_dataset("course", progress=False)
    pool = load_samples(path)
    return random.Random(seed).sample(pool, n)


def first_loss(model_path: str, rows: list[dict[str, list[int]]], *, packing: bool, per_row: int, freeze: bool,
               bf16: bool) -> float:
    """The loss on ``rows`` before any update, computed the way the variant trains (one packed row, one padded
    batch of ``per_row``, or one sample per step)."""
    from transformers import AutoModelForCausalLM

    attn = register_segment_attention() if packing else "sdpa"
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32, attn_implementation=attn)
    if freeze:
        model.get_input_embeddings().weight.requires_grad_(False)
    collate = PackedCollator(0) if packing else PadCollator(0)
    batches = [collate(rows)] if packing or per_row > 1 else [collate([r]) for r in rows]
    n = sum(int((b["labels"] != IGNORE_INDEX).sum()) for b in batches)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        return float(sum(supervised_logits_loss(model, b, num_items_in_batch=n) for b in batches))


def run_labkit(name: str, model_path: str, data: Path, out: Path, *, samples: int, per_row: int, packing: bool,
               freeze: bool, precision: str) -> Row:
    """Train through labkit.train.train; time every step but the first from its step log."""
    batch = per_row if packing or per_row > 1 else 1
    cfg = TrainSettings(model_path=model_path, data_path=str(data), output_dir=str(out / name), max_len=4096,
                    max_steps=samples // batch, batch_size=batch, lr=1e-5, warmup_ratio=0.0, save_steps=10_000,
                    sequential=True, packing=packing, freeze_embeddings=freeze, precision=precision,
                    resume=False, seed=0)
    train(cfg)
    log = [json.loads(x) for x in (out / name / "train_log.jsonl").read_text().splitlines()][1:]
    return Row(name, sum(r["s_per_step"] for r in log), sum(r["supervised_tokens"] for r in log),
               len(log) * batch)


def run_trl(model_path: str, rows: list[dict[str, list[int]]], out: Path,
            check_rows: list[dict[str, list[int]]]) -> Row:
    """trl.SFTTrainer on the same token ids (completion-only loss, fp32, batch 1); its loss before any update is
    computed by TRL's own collator and loss on ``check_rows`` (the batch every variant's loss is compared on)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig as TRLConfig
    from trl import SFTTrainer as TRLTrainer

    def as_trl(rs: list[dict[str, list[int]]]) -> Any:
        return Dataset.from_list([{"input_ids": r["input_ids"],
                                   "completion_mask": [int(x != IGNORE_INDEX) for x in r["labels"]]} for r in rs])

    ds = as_trl(rows)
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a: Any, **k: Any) -> None:
            self.t = time.perf_counter()

        def on_step_end(self, *a: Any, **k: Any) -> None:
            times.append(time.perf_counter() - self.t)

    args = TRLConfig(output_dir=str(out / "trl"), per_device_train_batch_size=1, max_steps=len(rows),
                     learning_rate=1e-5, lr_scheduler_type="cosine", optim="adamw_torch", logging_steps=1,
                     save_strategy="no", report_to=[], use_cpu=True, completion_only_loss=True, max_length=None,
                     dataloader_num_workers=0, disable_tqdm=True, seed=0)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32, attn_implementation="sdpa")
    tok = AutoTokenizer.from_pretrained(model_path)
    # TRL's default order is random: give it the samples in the order the labkit rows train on them
    args.train_sampling_strategy = "sequential"
    # the check rows go in as eval_dataset so that TRL prepares them as it prepares training data (it folds
    # completion_mask into labels there; its collator alone would supervise the prompt too)
    trainer = TRLTrainer(model=model, args=args, train_dataset=ds, eval_dataset=as_trl(check_rows),
                         processing_class=tok, callbacks=[Timer()])
    check = trainer.eval_dataset
    batch = trainer.data_collator([check[i] for i in range(len(check))])
    with torch.no_grad():
        loss0 = float(trainer.compute_loss(model, dict(batch)))
    trainer.train(resume_from_checkpoint=None)
    sup = sum(int(sum(m)) for m in ds["completion_mask"][1:])
    return Row("TRL SFTTrainer (fp32, all params, batch 1)", sum(times[1:]), sup, len(rows) - 1, loss0)


def shorter_prompt_sets(n_jobs: int, seed: int) -> tuple[list[dict], list[dict]]:
    """The same labelling jobs rendered offering every tool vs the gold tools + distractors (sandbox teacher)."""
    from labkit.data.label import plan_jobs, run_job
    from labkit.data.pipeline import choose_templates
    from labkit.data.samples import step_samples
    from labkit.data.queries import load_queries
    from labkit.llm import SandboxTeacher
    from labkit.tools import default_registry

    registry = default_registry()
    ts = choose_templates(None, None)
    queries = random.Random(seed).sample([q for q in load_queries() if q["gold_calls"]], n_jobs)
    jobs = plan_jobs(queries, ts.train_planning, conclusion_templates=ts.train_conclusion, templates_per_query=1,
                     seed=seed)
    teacher = SandboxTeacher()
    subset = [s for j in jobs for s in step_samples({**run_job(j, teacher, registry), "job_id": j.job_id})]
    every = [s for j in jobs for s in step_samples({**run_job(
        type(j)(j.job_id, j.query, j.template, j.conclusion_template, tuple(registry.names())), teacher, registry),
        "job_id": j.job_id})]
    return subset, every


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--samples", type=int, default=24, help="samples each variant trains on (+ the untimed first)")
    ap.add_argument("--per_row", type=int, default=4, help="samples per packed row / padded batch")
    ap.add_argument("--prompt_jobs", type=int, default=8, help="labelling jobs for the shorter-prompt rows")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip_trl", action="store_true")
    a = ap.parse_args()
    from labkit.llm.local import load_tokenizer
    from labkit.train.trainer import cpu_has_native_bf16

    model_path = resolve_model_path(a.model)
    tok = load_tokenizer()
    n = a.samples + a.per_row  # the first step (one sample, or one row of per_row) is not timed
    samples = course_samples(n, a.seed)
    rows = SFTDataset(samples, tok, 4096).rows
    out = Path(tempfile.mkdtemp(prefix="bench_train_"))
    data = out / "train.jsonl"
    write_jsonl(data, samples)
    bf16 = "bf16" if cpu_has_native_bf16() else "fp32"
    print(f"model={Path(model_path).name} threads={torch.get_num_threads()} samples={a.samples} per_row={a.per_row} "
          f"mean tokens/sample={sum(len(r['input_ids']) for r in rows) / len(rows):.0f} "
          f"native bf16={cpu_has_native_bf16()} date={time.strftime('%Y-%m-%d %H:%M')}", flush=True)

    variants = [  # name, packing, per_row, freeze, precision
        ("main's course path (fp32, all params, batch 1)", False, 1, False, "fp32"),
        ("+ frozen embeddings", False, 1, True, "fp32"),
        *([("+ bf16 autocast", False, 1, False, "bf16")] if bf16 == "bf16" else []),  # fp32-only CPU: no such row
        (f"+ padded batch {a.per_row}", False, a.per_row, False, "fp32"),
        (f"+ packing {a.per_row}/row", True, a.per_row, False, "fp32"),
        (f"combined: frozen + {bf16} + packing {a.per_row}/row", True, a.per_row, True, bf16),
    ]
    results: list[Row] = []
    for name, packing, per_row, freeze, precision in variants:
        skip = 1 if per_row == 1 else 0  # batch-1 variants: skip the extra per_row - 1 samples so all see the same
        data_v = out / f"{len(results)}.jsonl"
        write_jsonl(data_v, samples[a.per_row - 1:] if skip else samples)
        row = run_labkit(f"v{len(results)}", model_path, data_v, out, samples=len(samples) - (a.per_row - 1) * skip,
                         per_row=per_row, packing=packing, freeze=freeze, precision=precision)
        row.name, row.precision = name, precision
        row.loss0 = first_loss(model_path, rows[: a.per_row], packing=packing, per_row=per_row, freeze=freeze,
                               bf16=precision == "bf16")
        results.append(row)
        print(f"  {name}: {row.sup_per_s:.1f} supervised tokens/s", flush=True)
    if not a.skip_trl:
        results.insert(1, run_trl(model_path, rows[a.per_row - 1:], out, rows[: a.per_row]))

    subset, every = shorter_prompt_sets(a.prompt_jobs, a.seed)
    tok_sub = sum(len(r["input_ids"]) for r in SFTDataset(subset, tok, 8192).rows) / len(subset)
    tok_all = sum(len(r["input_ids"]) for r in SFTDataset(every, tok, 8192).rows) / len(every)
    combined = variants[-1]
    prompt_rows = []
    for label, ss in (("every tool offered", every), ("gold + distractors offered", subset)):
        p = out / f"prompts_{len(prompt_rows)}.jsonl"
        write_jsonl(p, ss[: (len(ss) // a.per_row) * a.per_row])
        r = run_labkit(f"p{len(prompt_rows)}", model_path, p, out, samples=(len(ss) // a.per_row) * a.per_row,
                       per_row=a.per_row, packing=True, freeze=True, precision=combined[4])
        r.name = f"combined recipe, {label}"
        prompt_rows.append(r)

    base = results[0]
    print()
    print(f"{'variant':<52}{'sup tok/s':>10}{'samples/min':>13}{'x main':>8}{'loss@0':>10}{'Δloss':>10}")
    for r in results:
        d = abs(r.loss0 - base.loss0) if r.loss0 is not None and base.loss0 is not None else float("nan")
        print(f"{r.name:<52}{r.sup_per_s:>10.1f}{r.samples_per_min:>13.1f}{r.sup_per_s / base.sup_per_s:>8.2f}"
              f"{r.loss0:>10.4f}{d:>10.1e}")
    print(f"\nshorter prompts: {tok_all:.0f} tokens/sample offering every tool vs {tok_sub:.0f} with gold + "
          f"distractors ({tok_all / tok_sub:.2f}x)")
    for r in prompt_rows:
        print(f"{r.name:<52}{r.sup_per_s:>10.1f}{r.samples_per_min:>13.1f}")
    print(f"shorter-prompt factor (samples/min): {prompt_rows[1].samples_per_min / prompt_rows[0].samples_per_min:.2f}x")
    comb = results[-1]
    print(f"\ncombined vs main's course path: {comb.sup_per_s / base.sup_per_s:.2f}x supervised tokens/s"
          + ("" if a.skip_trl else f"; vs TRL: {comb.sup_per_s / results[1].sup_per_s:.2f}x"))
    worst = max(abs(r.loss0 - base.loss0) for r in results if r.precision == "fp32" and r.loss0 is not None)
    print(f"loss check: fp32 variants within {worst:.1e} of main's course path on the same batch "
          f"({'OK' if worst < 1e-4 else 'FAIL'}, limit 1e-4)")
    record.save("bench_train", {"model": Path(model_path).name, "threads": torch.get_num_threads(),
                                "native_bf16": cpu_has_native_bf16(), "samples": a.samples, "per_row": a.per_row,
                                "variants": [{**vars(r), "sup_per_s": r.sup_per_s,
                                              "samples_per_min": r.samples_per_min} for r in results],
                                "prompts": {"tokens_every_tool": tok_all, "tokens_gold_distractors": tok_sub,
                                            "rows": [{**vars(r), "samples_per_min": r.samples_per_min}
                                                     for r in prompt_rows]},
                                "loss_check_worst_fp32": worst})


if __name__ == "__main__":
    main()
