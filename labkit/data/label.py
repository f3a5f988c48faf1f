"""Teacher labelling: run every (query, template) job through the agent loop with a teacher model.

Every step's prompt and output is recorded (the trace). Results go to ``labelled.jsonl`` (one line per finished
job, fsynced) and errors to ``failures.jsonl`` (one line per failed job, with its reason); a job is never half
written, so a run killed with SIGKILL resumes where it stopped, with nothing lost and nothing duplicated. Teacher
requests go through :class:`~labkit.data.cache.CachedChatModel`, so a re-run makes no teacher calls.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from labkit.agent import is_planning_format, run_agent
from labkit.data.cache import CachedChatModel, RequestCache, Usage, repair_jsonl_tail
from labkit.jsonl import append_jsonl, read_jsonl
from labkit.llm import ChatModel, get_model
from labkit.templates import AgentTemplate, load_template
from labkit.tools import ToolRegistry, default_registry
from labkit.tools.offer import offer_tools
from labkit.types import ChatResult, Message

LABELLED = "labelled.jsonl"
FAILURES = "failures.jsonl"
CACHE = "teacher_cache.jsonl"
FINISH_TOOL = "task_complete"


@dataclass(frozen=True)
class LabelJob:
    job_id: str
    query: dict[str, Any]
    template: str
    conclusion_template: str | None
    tools: tuple[str, ...]


def _hash_int(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()[:8], "big")


def plan_jobs(queries: Sequence[dict[str, Any]], templates: Sequence[str | AgentTemplate], *,
              conclusion_templates: Sequence[str | AgentTemplate] = ("kagent_conclusion_zh",),
              registry: ToolRegistry | None = None, distractors: tuple[int, int] = (2, 3),
              templates_per_query: int | None = None, seed: int = 0) -> list[LabelJob]:
    """One job per (query, planning template); with ``templates_per_query=k`` each query gets k templates, rotated
    so that every template is used about equally often (KAgentInstruct pairs most queries with one template). Tools: :func:`labkit.tools.offer.offer_tools` (gold + seeded distractors, + task_complete for
    JSON planning formats). Planning formats get a conclusion template of the same language when there is one.
    Unknown template names raise :class:`~labkit.errors.UnknownNameError` before any work starts."""
    registry = registry or default_registry()
    plans = [t if isinstance(t, AgentTemplate) else load_template(t) for t in templates]
    concls = [t if isinstance(t, AgentTemplate) else load_template(t) for t in conclusion_templates]
    for t in plans:
        if t.kind != "planning":
            raise ValueError(f"template {t.name!r} is a {t.kind} template; pass it in conclusion_templates")
    jobs = []
    order = sorted(plans, key=lambda t: _hash_int(seed, t.name))
    k = len(order) if templates_per_query is None else max(1, min(templates_per_query, len(order)))
    for qi, q in enumerate(sorted(queries, key=lambda q: _hash_int(seed, q["id"]))):
        gold = list(dict.fromkeys(c["name"] for c in q["gold_calls"] if c["name"] != FINISH_TOOL))
        chosen = [order[(qi * k + i) % len(order)] for i in range(k)]
        for t in sorted(chosen, key=lambda t: t.name):
            job_id = f"{q['id']}::{t.name}"
            names = offer_tools(gold, job_id, registry, seed=seed, distractors=distractors,
                                finish=is_planning_format(t.output_format))
            concl = None
            if is_planning_format(t.output_format):
                same_lang = [c.name for c in concls if c.lang == t.lang] or [c.name for c in concls]
                concl = same_lang[_hash_int(seed, job_id, "concl") % len(same_lang)] if same_lang else None
            jobs.append(LabelJob(job_id, q, t.name, concl, tuple(n for n in names if n in registry)))
    return jobs


class _Recorder:
    """Per-job wrapper that remembers each reply's backend ``meta`` (e.g. the emulator's injected noise)."""

    def __init__(self, model: ChatModel):
        self.model, self.name, self.metas = model, model.name, []  # type: ignore[var-annotated]

    def chat(self, messages: list[Message], **kw: Any) -> ChatResult:
        result = self.model.chat(messages, **kw)
        self.metas.append({**result.meta, "cached": result.cached})
        return result

    def chat_batch(self, batch: list[list[Message]], **kw: Any) -> list[ChatResult]:
        return [self.chat(m, **kw) for m in batch]


@dataclass
class LabelReport:
    out_dir: Path
    total_jobs: int
    new: int = 0
    skipped: int = 0
    failed: int = 0
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "total_jobs": self.total_jobs, "new": self.new,
                "skipped": self.skipped, "failed": self.failed, "usage": self.usage.to_dict(),
                "seconds": round(self.seconds, 2)}


def done_job_ids(out_dir: str | Path) -> set[str]:
    """Jobs already finished (labelled or failed) — repairs a torn last line first."""
    out_dir = Path(out_dir)
    done: set[str] = set()
    for name in (LABELLED, FAILURES):
        path = out_dir / name
        if path.exists():
            repair_jsonl_tail(path)
            done |= {r["job_id"] for r in read_jsonl(path)}
    return done


def run_job(job: LabelJob, model: ChatModel, registry: ToolRegistry, *, max_steps: int = 5,
            max_new_tokens: int = 512) -> dict[str, Any]:
    """Label one job; returns the record written to ``labelled.jsonl``."""
    recorder = _Recorder(model)
    trace = run_agent(recorder, job.query["query"], template=job.template, tools=registry.subset(job.tools),
                      max_steps=max_steps, max_new_tokens=max_new_tokens,
                      conclusion_template=job.conclusion_template or "kagent_conclusion_zh")
    q = job.query
    return {"job_id": job.job_id, "query_id": q["id"], "query": q["query"], "lang": q.get("lang"),
            "cluster": q.get("cluster"), "template": job.template, "conclusion_template": trace.conclusion_template,
            "tools": list(job.tools), "teacher": model.name, "trace": trace.to_dict(), "teacher_meta": recorder.metas}


def label_jobs(jobs: Sequence[LabelJob], teacher: ChatModel | str, out_dir: str | Path, *, workers: int = 4,
               max_steps: int = 5, max_new_tokens: int = 512, price_per_1k_prompt: float = 0.0,
               price_per_1k_completion: float = 0.0, cache_path: str | Path | None = None,
               registry: ToolRegistry | None = None, progress: bool = True) -> LabelReport:
    """Label the jobs not yet done in ``out_dir`` with ``workers`` threads; see the module docstring."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = get_model(teacher) if isinstance(teacher, str) else teacher
    cached = CachedChatModel(model, RequestCache(cache_path or out_dir / CACHE), price_per_1k_prompt,
                             price_per_1k_completion)
    registry = registry or default_registry()
    done = done_job_ids(out_dir)
    todo = [j for j in jobs if j.job_id not in done]
    report = LabelReport(out_dir, len(jobs), skipped=len(jobs) - len(todo), usage=cached.usage)
    lock, start = threading.Lock(), time.perf_counter()
    bar = tqdm(total=len(jobs), initial=report.skipped, desc="labelling", unit="job", disable=not progress)

    def work(job: LabelJob) -> None:
        try:
            rec = run_job(job, cached, registry, max_steps=max_steps, max_new_tokens=max_new_tokens)
            path, failed = out_dir / LABELLED, False
        except Exception as exc:  # kept with its reason, never dropped
            rec = {"job_id": job.job_id, "query_id": job.query["id"], "template": job.template,
                   "error_type": type(exc).__name__, "reason": str(exc)[:2000]}
            path, failed = out_dir / FAILURES, True
        with lock:
            append_jsonl(path, [rec])
            report.failed += failed
            report.new += not failed
            u = cached.usage
            bar.set_postfix(calls=u.calls, cached=u.cache_hits, tokens=u.prompt_tokens + u.completion_tokens,
                            cost=f"{u.cost:.4f}", refresh=False)
            bar.update(1)

    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for fut in as_completed([pool.submit(work, j) for j in todo]):
                fut.result()
    finally:
        bar.close()
        report.seconds = time.perf_counter() - start
    return report


def load_labelled(out_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(out_dir) / LABELLED
    return read_jsonl(path, tolerate_torn_tail=True) if path.exists() else []


def load_failures(out_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(out_dir) / FAILURES
    return read_jsonl(path, tolerate_torn_tail=True) if path.exists() else []
