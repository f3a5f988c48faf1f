"""Guided decoding end to end: one checkpoint on notebook 06's held-out agent tasks, with and without it.

    nice -n 15 python bench/guided_decoding.py runs/train/course --data runs/data/course         # the 20 tasks
    nice -n 15 python bench/guided_decoding.py tiny --data runs/data/course -n 2                 # a quick check

The tasks are the ones notebook 06's end-to-end check runs: the data stage's held-out queries
(``<data>/test_queries.jsonl``), round-robin over clusters and languages to the mode's ``eval.n_queries``, the first
``eval.n_agent_queries`` of them (configs/<mode>.yaml: 40 and 20 for course); ``-n`` takes fewer. Each runs through
the plan loop exactly as there (labkit.evaluate.agent_success: gold tools + distractors offered, Template-1
planning, sandbox tools, Template-2 conclusion), once decoded freely and once with ``guided=True`` (the planning
steps held to the format's call grammar: an offered tool, that tool's schema keys; conclusions stay free). Rows:
tasks, finished (the run ended with an answer), right calls, answer matched, success (both), planning steps, parse
errors and calls the registry refused (unknown tool / invalid arguments).

The end-to-end seconds are confounded (the two runs write different texts, batched), so the cost per token is
measured apart: each task's first planning prompt generated one at a time, free and guided alternately, same
prompt and budget; ms/token of each and the difference is the overhead, by the wall clock and by the process's CPU
time (on a shared CPU the wall clock measures the other jobs as well). The token index (once per tokenizer) is
built and timed before. Traces: runs/bench/guided_decoding/<checkpoint>/; figures: runs/bench/guided_decoding.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from record import save  # noqa: E402

from labkit.agent import Trace, decoding_for, resolve_template  # noqa: E402
from labkit.agent.loop import AgentRun  # noqa: E402
from labkit.evaluate import read_split  # noqa: E402
from labkit.evaluate.benchmark import offered, select_queries  # noqa: E402
from labkit.evaluate.runner import agent_row, agent_success  # noqa: E402
from labkit.llm import get_model, supports_guides  # noqa: E402
from labkit.llm.guided import token_index  # noqa: E402
from labkit.modes import EvalSettings, load_settings  # noqa: E402
from labkit.paths import runs_dir  # noqa: E402
from labkit.tools import default_registry  # noqa: E402

REFUSED = ("unknown_tool", "invalid_args")  # the registry's error codes for a call strict function calling prevents


def agent_tasks(data: Path, mode: str, n: int | None) -> list[dict[str, Any]]:
    """Notebook 06's end-to-end tasks: held-out queries, round-robin to eval.n_queries, the first n_agent_queries."""
    ev = load_settings(EvalSettings, mode, "eval")
    queries, _, _ = read_split(data)
    tasks = select_queries(queries, ev.n_queries)[: ev.n_agent_queries]
    return tasks[:n] if n else tasks


def end_to_end(model: Any, tasks: list[dict[str, Any]], guided: bool, folder: Path, batch_size: int) -> dict:
    path = folder / f"traces_{'guided' if guided else 'free'}.jsonl"
    path.unlink(missing_ok=True)
    start = time.perf_counter()
    rate, outcomes = agent_success(model, tasks, traces_path=path, guided=guided, batch_size=batch_size)
    seconds = time.perf_counter() - start
    traces = Trace.load(path)
    plans = [s for t in traces for s in t.steps if s.kind != "conclusion"]
    tokens = sum(s.completion_tokens or 0 for t in traces for s in t.steps)
    return {**agent_row(rate, outcomes), "planning steps": len(plans), "parse errors": sum(not s.ok for s in plans),
            "refused calls": sum(s.tool_error in REFUSED for s in plans), "generated tokens": tokens,
            "seconds": round(seconds, 1), "stopped": [o.stopped for o in outcomes],
            "calls": [[c["name"] for c in t.calls] for t in traces]}


def per_token_cost(model: Any, tasks: list[dict[str, Any]], rounds: int) -> dict[str, dict[str, float]]:
    """Batch-1 generation of each task's first planning prompt, free and guided alternately (same prompts)."""
    registry = default_registry()
    jobs = []
    for q in tasks:
        tmpl = resolve_template(f"kagent_planning_{q.get('lang', 'zh')}")
        run = AgentRun(model.name, q["query"], tmpl, offered(q, registry, tmpl.format), max_steps=5,
                       guided=True)
        jobs.append(([{"role": "user", "content": run.prompt()}], run.grammar, decoding_for(tmpl.output_format)))
    totals = {"free": [0, 0.0, 0.0], "guided": [0, 0.0, 0.0]}
    for _ in range(rounds):
        for messages, grammar, dec in jobs:
            for name, kw in (("free", {}), ("guided", {"guide": grammar})):
                wall, cpu = time.perf_counter(), time.process_time()
                result = model.chat(messages, **dec.kwargs(), **kw)
                totals[name][0] += result.completion_tokens
                totals[name][1] += time.perf_counter() - wall
                totals[name][2] += time.process_time() - cpu
    return {name: {"tokens": n, "seconds": round(s, 2), "ms/token": round(1000 * s / max(n, 1), 1),
                   "cpu ms/token": round(1000 * c / max(n, 1), 1)} for name, (n, s, c) in totals.items()}


def table(rows: dict[str, dict], cost: dict[str, dict]) -> str:
    cols = ["queries", "finished", "tools ok", "answer ok", "success rate", "planning steps", "parse errors",
            "refused calls", "generated tokens", "seconds"]
    head = " | ".join(cols) + " | ms/token (batch 1) | CPU ms/token"
    lines = [f"| decoding | {head} |", "|---" * (len(cols) + 3) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(str(row[c]) for c in cols) +
                     f" | {cost[name]['ms/token']} | {cost[name]['cpu ms/token']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="the model: a checkpoint directory (e.g. runs/train/course), gemma-3-270m or "
                                       "tiny")
    ap.add_argument("--data", help="the data stage's output (default: runs/data/<mode>)")
    ap.add_argument("--mode", default="course", help="configs/<mode>.yaml: eval.n_queries / eval.n_agent_queries")
    ap.add_argument("-n", type=int, default=0, help="run only the first n tasks (0: all n_agent_queries)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds of the batch-1 per-token measurement")
    ap.add_argument("--batch_size", type=int, default=8)
    a = ap.parse_args()
    tasks = agent_tasks(Path(a.data) if a.data else runs_dir() / "data" / a.mode, a.mode, a.n)
    if not tasks:
        sys.exit(f"no held-out tool-using queries in {a.data or runs_dir() / 'data' / a.mode}")
    model = get_model(a.checkpoint)
    if not supports_guides(model):
        sys.exit(f"{a.checkpoint!r} is not a local model: guided decoding needs one (labkit.llm.LocalHFModel)")
    start = time.perf_counter()
    token_index(model.tokenizer)
    index_s = time.perf_counter() - start
    folder = runs_dir() / "bench" / "guided_decoding" / Path(a.checkpoint).name
    folder.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {"checkpoint": str(a.checkpoint), "dtype": str(model.dtype), "mode": a.mode,
                               "tasks": [q["id"] for q in tasks], "token_index_s": round(index_s, 1),
                               "command": " ".join(["python", *sys.argv]), "end_to_end": {}}
    for name, guided in (("free", False), ("guided", True)):
        figures["end_to_end"][name] = row = end_to_end(model, tasks, guided, folder, a.batch_size)
        print(f"{name}: {row}", flush=True)
        save("guided_decoding", figures)  # what is done is kept if the run is stopped
    rows = figures["end_to_end"]
    figures["per_token"] = cost = per_token_cost(model, tasks, a.rounds)
    figures["overhead_ms_per_token"] = overhead = round(cost["guided"]["ms/token"] - cost["free"]["ms/token"], 1)
    figures["overhead_cpu_ms_per_token"] = cpu = round(cost["guided"]["cpu ms/token"] - cost["free"]["cpu ms/token"], 1)
    print(table(rows, cost))
    print(f"token index built in {index_s:.1f} s; guided decoding costs {overhead} ms/token more at batch 1 "
          f"({cost['guided']['ms/token']} vs {cost['free']['ms/token']}), {cpu} ms/token more CPU time (the "
          "process's own, all threads: the fair figure on a shared CPU)")
    print("saved", save("guided_decoding", figures))


if __name__ == "__main__":
    main()
