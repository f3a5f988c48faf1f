"""Teacher-labelling throughput against a local OpenAI-compatible server with a fixed latency per request.

For each concurrency c (label_jobs workers = c) it labels 32·c jobs through ``OpenAIChat`` against
``bench/fake_teacher.py`` (127.0.0.1, ``--latency`` seconds per request) and reports requests/s as a fraction of the
ideal c / latency (goal >= 0.9), then re-runs the same jobs into the same folder: it must make 0 calls. Each
configuration runs ``--repeat`` times (the machine is shared: the table shows the worst and the best run, and every
run's 1-minute load average is in ``runs/bench/teacher_throughput.json``). With fewer jobs per worker the end of the
run, when some workers have no job left, weighs more (16 jobs per worker: 0.89 at c = 32, 32 per worker: 0.93).

    python bench/teacher_throughput.py --latency 0.5 --concurrency 1 8 32 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fake_teacher  # noqa: E402
import record  # noqa: E402

from labkit.data.label import label_jobs, plan_jobs  # noqa: E402
from labkit.data.queries import load_queries  # noqa: E402
from labkit.llm import OpenAIChat  # noqa: E402

TEMPLATES = ["kagent_planning_zh", "react", "autogpt", "toolllama"]
KEY = "sk-bench-not-a-real-key-000000"


def run_once(url: str, jobs: list, c: int, latency: float, tmp: Path) -> dict:
    """Label ``jobs`` with ``c`` workers into a fresh folder, then again into the same one (must make 0 calls)."""
    out = tmp / f"c{c}-{time.monotonic_ns()}"
    client = OpenAIChat(model=fake_teacher.MODEL, base_url=url, api_key=KEY, concurrency=c)
    before = fake_teacher.stats(url)["chat"]
    start = time.perf_counter()
    report = label_jobs(jobs, client, out, workers=c, progress=False)
    seconds = time.perf_counter() - start
    requests = fake_teacher.stats(url)["chat"] - before
    again_before = fake_teacher.stats(url)["chat"]
    again = label_jobs(jobs, client, out, workers=c, progress=False)
    return {"concurrency": c, "jobs": len(jobs), "requests": requests, "seconds": round(seconds, 2),
            "requests_per_s": round(requests / seconds, 2), "ideal_per_s": round(c / latency, 2),
            "fraction": round(requests / seconds / (c / latency), 3), "failed": report.failed,
            "rerun_calls": again.usage.calls, "rerun_requests": fake_teacher.stats(url)["chat"] - again_before,
            "load_avg_1min": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--latency", type=float, default=0.5)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--jobs-per-worker", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=2, help="runs per concurrency (the table shows the worst and best)")
    a = ap.parse_args(argv)
    jobs = plan_jobs(load_queries(), TEMPLATES, templates_per_query=2)
    proc, url = fake_teacher.start(latency=a.latency)
    runs = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(a.repeat):
                for c in a.concurrency:
                    runs.append(run_once(url, jobs[: c * a.jobs_per_worker], c, a.latency, Path(tmp)))
                    print(json.dumps(runs[-1]), flush=True)
    finally:
        fake_teacher.stop(proc)
    result = {"latency_s": a.latency, "runs": runs}
    record.save("teacher_throughput", result)
    print(f"\nlatency {a.latency} s per request; {a.repeat} runs per concurrency")
    print("| concurrency | jobs | requests | requests/s (worst run) | ideal c/latency | fraction worst | fraction best |"
          " re-run calls |")
    print("|---|---|---|---|---|---|---|---|")
    for c in a.concurrency:
        rs = sorted((r for r in runs if r["concurrency"] == c), key=lambda r: r["fraction"])
        worst = rs[0]
        print(f"| {c} | {worst['jobs']} | {worst['requests']} | {worst['requests_per_s']} | {worst['ideal_per_s']} | "
              f"{worst['fraction']} | {rs[-1]['fraction']} | {max(r['rerun_calls'] for r in rs)} |")
    return result


if __name__ == "__main__":
    main()
