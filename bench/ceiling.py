"""The student's ceiling: how the held-out scores grow with the samples a training run has seen.

    python -m labkit.train --config course --epochs 1 --max_steps -1 --curve_points 3 --output_dir runs/train/ceiling
    python bench/ceiling.py --run runs/train/ceiling        # every snapshot + the final model, ~10 min each
    python bench/ceiling.py --run runs/train/ceiling --only final --general --base gemma-3-270m   # + forgetting

The run's weight snapshots (``curve/step-N``, from ``curve_points``) and its final model are scored on the course
benchmark that notebook 06 builds (the ``eval`` section of configs/course.yaml: 40 held-out queries, one seen and one
unseen template per record) with 95 % bootstrap intervals over queries, and run end to end on the first
``n_agent_queries`` held-out queries (Template-1 planning, sandbox tools, Template-2 conclusion). Each point gets the
samples seen and the training minutes up to it from the run's ``train_log.jsonl``. Snapshots come from one run, so
the ones before the end were taken at a learning rate still high on its cosine schedule. Generation is cached per
point (``<run>/ceiling/<point>/``): an interrupted bench resumes where it stopped.

``--general`` adds the forgetting check to every point: on the held-out general samples of the data stage
(``general_test.jsonl``, never trained on, ``n_general`` of them) the ROUGE-L / BLEU of the model's answers
(notebook 06's general check) and the held-out loss per supervised token (``bench/mix_forgetting.py``'s measure);
``--base MODEL`` scores that model too, as point ``base`` (step 0), so the rise over it can be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import record  # noqa: E402

from labkit.jsonl import read_jsonl  # noqa: E402


def points(run: Path) -> list[tuple[str, Path, int]]:
    """(name, model dir, step) of every snapshot and of the final model, in training order."""
    out = []
    index = run / "curve" / "index.jsonl"
    for r in read_jsonl(index) if index.exists() else []:
        out.append((f"step-{r['step']}", run / "curve" / r["path"], int(r["step"])))
    if (run / "config.json").exists():
        log = read_jsonl(run / "train_log.jsonl", tolerate_torn_tail=True)
        out.append(("final", run, max(int(r["step"]) for r in log)))
    return out


def progress_at(run: Path, step: int) -> dict[str, float]:
    log = [r for r in read_jsonl(run / "train_log.jsonl", tolerate_torn_tail=True) if int(r["step"]) <= step]
    return {"step": step, "samples": sum(int(r.get("samples", 0)) for r in log),
            "minutes": round(sum(float(r["s_per_step"]) for r in log) / 60, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a training output dir with curve/ snapshots")
    ap.add_argument("--mode", default="course", help="configs/<mode>.yaml eval section and runs/data/<mode>")
    ap.add_argument("--only", nargs="*", help="point names to score (default: all)")
    ap.add_argument("--skip_agent", action="store_true")
    ap.add_argument("--skip_benchmark", action="store_true", help="no KAgentBench-style scores (e.g. --general only)")
    ap.add_argument("--general", action="store_true", help="also score the held-out general samples (forgetting)")
    ap.add_argument("--base", default=None, help="also score this base model, as point 'base'")
    a = ap.parse_args()
    from labkit.data.mix import general_sample
    from labkit.evaluate import build_benchmark, evaluate_model, read_split
    from labkit.evaluate import report as rep
    from labkit.evaluate.benchmark import general_test_path, select_queries
    from labkit.evaluate.runner import agent_success
    from labkit.llm import get_model
    from labkit.modes import EvalSettings, load_settings
    from labkit.paths import runs_dir

    run = Path(a.run).resolve()
    ev = load_settings(EvalSettings, a.mode, "eval")
    queries, seen, unseen = read_split(runs_dir() / "data" / a.mode)
    queries = select_queries(queries, ev.n_queries)
    k = ev.templates_per_record
    benchmark = build_benchmark(queries, seen=seen, unseen=unseen, templates_per_record=(k, k))
    general_file = general_test_path(runs_dir() / "data" / a.mode) if a.general else None
    if a.general and general_file is None:
        sys.exit(f"ceiling: --general needs the held-out general samples, none in {runs_dir() / 'data' / a.mode}")
    general = read_jsonl(general_file)[:ev.n_general] if general_file else []
    results = []
    for name, model_dir, step in ([("base", Path(a.base), 0)] if a.base else []) + points(run):
        if a.only and name not in a.only:
            continue
        out = run / "ceiling" / name
        out.mkdir(parents=True, exist_ok=True)
        model = get_model(str(model_dir))
        t = time.perf_counter()
        row: dict = {"point": name, **progress_at(run, step)}
        if not a.skip_benchmark:
            report, _ = evaluate_model(model, benchmark, out, batch_size=8)
            row["eval_seconds"] = round(time.perf_counter() - t, 1)
            for tag in (None, "seen", "unseen"):
                f = rep.score_intervals(report, tag=tag)
                row[tag or "all"] = {d: [round(float(x), 1) for x in (v.score, v.low, v.high)] for d, v in f.iterrows()}
        if not a.skip_agent:
            traces = out / "agent_traces.jsonl"
            traces.unlink(missing_ok=True)
            rate, outcomes = agent_success(model, queries[:ev.n_agent_queries], traces_path=traces)
            row["end_to_end"] = {"queries": len(outcomes), "success": sum(o.success for o in outcomes),
                                 "tools_ok": sum(o.calls_ok for o in outcomes),
                                 "answer_ok": sum(o.answer_ok for o in outcomes)}
        if general:
            from labkit.train.checks import heldout_loss
            row["general"], _ = rep.general_ability(model, general, out / "general_cache.jsonl")
            row["general"]["loss"] = round(heldout_loss(model_dir, [general_sample(g) for g in general])["loss"], 4)
        saved = out / "ceiling_point.json"   # a later call that scores other parts keeps the earlier ones
        row = {**(json.loads(saved.read_text(encoding="utf-8")) if saved.exists() else {}), **row}
        results.append(row)
        saved.write_text(json.dumps(row, ensure_ascii=False, indent=2), encoding="utf-8")
        e2e = row.get("end_to_end", {})
        scores = row.get("all", {})
        print(f"{name}: step {row['step']}, {row['samples']} samples, {row['minutes']} min: Overall "
              f"{scores.get('Overall', '-')}, Tool-use {scores.get('Tool-use', '-')}, end-to-end "
              f"{e2e.get('success', '-')}/{e2e.get('queries', '-')}"
              + (f", general ROUGE-L {row['general']['ROUGE-L']}, loss {row['general']['loss']}" if general else ""),
              flush=True)
    record.save("ceiling", {"run": str(run), "mode": a.mode, "queries": len(queries), "points": results})


if __name__ == "__main__":
    main()
