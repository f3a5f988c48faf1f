"""Labelling through a faulty teacher, killed with SIGKILL at a random point, then resumed: nothing lost or doubled.

``bench/fake_teacher.py`` serves on 127.0.0.1 with ``--fault-rate`` of its replies broken (429 with Retry-After,
500, timeouts, truncated and non-JSON bodies, empty choices, lone surrogates). A child process labels ``--jobs`` jobs
through ``OpenAIChat``; it is SIGKILLed once a random number of jobs is done, then the same command runs again until
every job is labelled (a job whose retries all failed is logged and retried by the next run). The checks:

* lost: jobs without a record at the end (0);
* duplicated: jobs with more than one line in ``labelled.jsonl`` (0);
* counted done without a record: each run's ``skipped`` must equal the records on disk when it started, and every
  record must be whole (0);
* and the records equal those of a fault-free run, except replies that carried a lone surrogate (now U+FFFD).

    python bench/faulty_teacher.py --jobs 500 --fault-rate 0.3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fake_teacher  # noqa: E402
import record  # noqa: E402

TEMPLATES = ["kagent_planning_zh", "react", "autogpt", "toolllama", "modelscope"]
KEY = "sk-bench-not-a-real-key-000000"


def plan(n_jobs: int) -> list[Any]:
    from labkit.data.label import plan_jobs
    from labkit.data.queries import load_queries

    queries = load_queries()
    per_query = max(1, min(len(TEMPLATES), -(-n_jobs // len(queries))))
    return plan_jobs(queries, TEMPLATES, templates_per_query=per_query)[:n_jobs]


def child(url: str, out: str, n_jobs: int, workers: int) -> None:
    """One labelling run (the process the bench kills); prints its report as one JSON line."""
    from labkit.data.label import done_job_ids, label_jobs
    from labkit.llm import OpenAIChat

    jobs = plan(n_jobs)
    on_disk = len(done_job_ids(out))
    client = OpenAIChat(model=fake_teacher.MODEL, base_url=url, api_key=KEY, timeout=0.5, deadline=20.0,
                        max_retries=3, backoff=0.02, max_backoff=0.2)
    report = label_jobs(jobs, client, out, workers=workers, progress=False)
    print(json.dumps({"on_disk_at_start": on_disk, **report.to_dict()}), flush=True)


def _child_cmd(url: str, out: Path, n_jobs: int, workers: int) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "child", "--url", url, "--out", str(out),
            "--jobs", str(n_jobs), "--workers", str(workers)]


def _lines(out: Path) -> int:
    path = out / "labelled.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def run(n_jobs: int, fault_rate: float, *, workers: int = 16, seed: int = 0, latency: float = 0.01,
        hang: float = 1.0, max_rounds: int = 10, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The whole experiment (see module doc); returns the figures."""
    from labkit.data.label import load_labelled
    from labkit.jsonl import read_jsonl

    rng = random.Random(seed)
    env = {**os.environ, **(env or {})}
    result: dict[str, Any] = {"jobs": n_jobs, "fault_rate": fault_rate, "workers": workers}
    with tempfile.TemporaryDirectory() as tmp:
        clean_proc, clean_url = fake_teacher.start(latency=latency, env=env)
        try:
            subprocess.run(_child_cmd(clean_url, Path(tmp) / "clean", n_jobs, workers), env=env, check=True,
                           capture_output=True, text=True)
        finally:
            fake_teacher.stop(clean_proc)
        proc, url = fake_teacher.start(latency=latency, fault_rate=fault_rate, hang=hang, seed=seed, env=env)
        out = Path(tmp) / "faulty"
        try:
            kill_after = rng.randint(max(1, n_jobs // 10), max(2, n_jobs * 6 // 10))
            labeller = subprocess.Popen(_child_cmd(url, out, n_jobs, workers), env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
            while labeller.poll() is None and _lines(out) < kill_after:
                time.sleep(0.01)
            labeller.send_signal(signal.SIGKILL)
            labeller.wait()
            result["killed_after_jobs"] = _lines(out)
            with (out / "labelled.jsonl").open("ab") as fh:  # and as if the kill had torn the line being written
                fh.write(b'{"job_id": "torn::by::sigkill", "trace": {"st')
            rounds = []
            while len(rounds) < max_rounds:
                done = subprocess.run(_child_cmd(url, out, n_jobs, workers), env=env, capture_output=True,
                                      text=True, timeout=1800)
                if done.returncode != 0:
                    raise RuntimeError(done.stderr[-3000:])
                rounds.append(json.loads(done.stdout.strip().splitlines()[-1]))
                if rounds[-1]["failed"] == 0 and rounds[-1]["not_started"] == 0:
                    break
            result["server"] = fake_teacher.stats(url)
        finally:
            fake_teacher.stop(proc)
        lines = read_jsonl(out / "labelled.jsonl")
        per_job = Counter(r["plan_job_id"] for r in lines)
        # by plan job id: the two servers' ports differ, so the teacher part of the job ids differs
        records = {r["plan_job_id"]: r for r in load_labelled(out)}
        clean = {r["plan_job_id"]: r for r in load_labelled(Path(tmp) / "clean")}
        wanted = {j.job_id for j in plan(n_jobs)}
        assert set(clean) == wanted, "the fault-free run must label every job"

        def sig(rec: dict[str, Any]) -> str:
            return json.dumps(rec["trace"], ensure_ascii=False, sort_keys=True)

        differing = [j for j in wanted & set(records) if sig(records[j]) != sig(clean[j])]
        result.update({
            "resume_rounds": len(rounds),
            "skipped_per_round": [r["skipped"] for r in rounds],
            "failed_per_round": [r["failed"] for r in rounds],
            "lost": len(wanted - set(records)),
            "duplicated": sum(n > 1 for n in per_job.values()),
            "counted_done_without_record": sum(r["skipped"] != r["on_disk_at_start"] for r in rounds)
            + sum(not isinstance(r.get("trace"), dict) for r in records.values()),
            "identical_to_fault_free": len(wanted & set(records)) - len(differing),
            "differing": len(differing),
            "differing_explained_by_surrogates": sum("\ufffd" in sig(records[j]) for j in differing),
            "teacher_requests": sum(r["usage"]["requests"] for r in rounds),
            "teacher_retries": sum(r["usage"]["retries"] for r in rounds),
        })
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    c = sub.add_parser("child")
    c.add_argument("--url", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--jobs", type=int, required=True)
    c.add_argument("--workers", type=int, default=16)
    ap.add_argument("--jobs", type=int, default=500)
    ap.add_argument("--fault-rate", type=float, default=0.3)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.cmd == "child":
        child(a.url, a.out, a.jobs, a.workers)
        return
    start = time.perf_counter()
    result = run(a.jobs, a.fault_rate, workers=a.workers, seed=a.seed)
    result.update(seconds=round(time.perf_counter() - start, 1))
    record.save("faulty_teacher", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
