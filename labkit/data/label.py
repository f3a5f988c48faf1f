"""Teacher labelling: run every (query, template) job through the agent loop with a teacher model.

Every step's prompt and output is recorded (the trace). Results go to ``labelled.jsonl`` (one line per finished
job, fsynced) and errors to ``failures.jsonl`` (one line per failed attempt, with its reason). Only
``labelled.jsonl`` marks a job done: ``failures.jsonl`` is a log, so a resumed run retries every failed job. A job is
never half written, so a run killed with SIGKILL resumes where it stopped, with nothing lost and nothing duplicated.
An empty (or whitespace-only) teacher reply fails the job (:class:`EmptyReply`) instead of becoming a label.
Teacher requests go through :class:`~labkit.llm.cached.CachedChatModel`, so a re-run makes no teacher calls.
A job's labels are identified by query, template, teacher *and settings* (:func:`labelled_job_id`: step and token
budgets, offered tools, conclusion template), so a run with other settings labels anew instead of reusing old labels.

Time is bounded: each teacher call by the client's own deadline, each job by ``job_deadline_s`` (checked before
every call and passed down to the transport as a :func:`~labkit.llm.base.call_deadline`, so a silent or trickling
server is cut when the job's time is up; an overrun is a failure, retried on resume) and, optionally, the whole run by ``deadline_s`` (jobs not
started by then are left for the next run and reported as ``not_started``).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from labkit.agent import run_agent
from labkit.errors import LabkitError, scrub
from labkit.jsonl import read_jsonl
from labkit.llm import ChatModel, get_model, model_id
from labkit.llm.base import call_deadline
from labkit.llm.cached import CachedChatModel, RequestCache, Usage
from labkit.records import LabelFailure, LabelledRecord, LabelSettings, Query
from labkit.store import KeyedStore
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
    query: Query
    template: str
    conclusion_template: str | None
    tools: tuple[str, ...]


def _hash_int(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()[:8], "big")


def plan_jobs(queries: Sequence[Query], templates: Sequence[str | AgentTemplate], *,
              conclusion_templates: Sequence[str | AgentTemplate] = ("kagent_conclusion_zh",),
              registry: ToolRegistry | None = None, distractors: tuple[int, int] = (2, 3),
              templates_per_query: int | None = None, seed: int = 0,
              meta_templates: Sequence[str | AgentTemplate] = (), meta_share: float = 0.0) -> list[LabelJob]:
    """One job per (query, planning template); with ``templates_per_query=k`` each query gets k templates, rotated
    so that every template is used about equally often (KAgentInstruct pairs most queries with one template).
    Tools: :func:`labkit.tools.offer.offer_tools` (gold + seeded distractors, + task_complete for JSON planning
    formats). Planning formats get a conclusion template of the same language when there is one. Unknown template
    names raise :class:`~labkit.errors.UnknownNameError` before any work starts.

    Meta-Agent Tuning: ``meta_share`` of all template slots (spread evenly, query by query) go to
    ``meta_templates`` (rotated among themselves); every other slot keeps the template the rotation above gives it,
    so each query still gets k templates and its remaining jobs are exactly the jobs of a build without them (their
    labels are reused, not made again)."""
    registry = registry or default_registry()
    plans = [t if isinstance(t, AgentTemplate) else load_template(t) for t in templates]
    metas = [t if isinstance(t, AgentTemplate) else load_template(t) for t in meta_templates]
    concls = [t if isinstance(t, AgentTemplate) else load_template(t) for t in conclusion_templates]
    for t in plans + metas:
        if t.kind != "planning":
            raise ValueError(f"template {t.name!r} is a {t.kind} template; pass it in conclusion_templates")
    if not 0.0 <= meta_share <= 1.0:
        raise ValueError(f"meta_share must be in [0, 1], got {meta_share}")
    share = meta_share if metas else 0.0
    jobs = []
    order = sorted(plans, key=lambda t: _hash_int(seed, t.name))
    meta_order = sorted(metas, key=lambda t: _hash_int(seed, t.name))
    k = len(order) if templates_per_query is None else max(1, min(templates_per_query, len(order)))
    n_meta = 0
    for qi, q in enumerate(sorted(queries, key=lambda q: _hash_int(seed, q["id"]))):
        gold = list(dict.fromkeys(c["name"] for c in q["gold_calls"] if c["name"] != FINISH_TOOL))
        chosen = []
        for i in range(k):
            slot = qi * k + i
            if int((slot + 1) * share) > int(slot * share):  # this slot is a Meta-Agent one (evenly spread)
                chosen.append(meta_order[n_meta % len(meta_order)])
                n_meta += 1
            else:
                chosen.append(order[slot % len(order)])
        chosen = list({t.name: t for t in chosen}.values())  # fewer Meta-Agent templates than slots: no repeats
        for t in sorted(chosen, key=lambda t: t.name):
            job_id = f"{q['id']}::{t.name}"
            names = offer_tools(gold, job_id, registry, seed=seed, distractors=distractors,
                                finish=t.format.finishes_with_call)
            concl = None
            if t.format.finishes_with_call:
                same_lang = [c.name for c in concls if c.lang == t.lang] or [c.name for c in concls]
                concl = same_lang[_hash_int(seed, job_id, "concl") % len(same_lang)] if same_lang else None
            jobs.append(LabelJob(job_id, q, t.name, concl, tuple(n for n in names if n in registry)))
    return jobs


class JobDeadlineExceeded(LabkitError):
    """A labelling job ran past its ``job_deadline_s``; it is logged as a failure and retried on resume."""


class EmptyReply(LabkitError):
    """The teacher answered with nothing (empty or whitespace only): the job fails and is retried on resume."""


class _Recorder:
    """Per-job wrapper that remembers each reply's backend ``meta`` (e.g. the emulator's injected noise) and stops a
    job that has run past its deadline."""

    def __init__(self, model: ChatModel, deadline_s: float | None = None):
        self.model, self.name, self.metas = model, model.name, []  # type: ignore[var-annotated]
        self.deadline_s, self.start = deadline_s, time.monotonic()

    def chat(self, messages: list[Message], **kw: Any) -> ChatResult:
        spent = time.monotonic() - self.start
        if self.deadline_s is not None and spent > self.deadline_s:
            raise JobDeadlineExceeded(f"job ran {spent:.1f} s, past its deadline of {self.deadline_s:g} s, "
                                      f"after {len(self.metas)} teacher calls")
        left = None if self.deadline_s is None else self.deadline_s - spent
        try:
            with call_deadline(left, f"job_deadline_s={self.deadline_s:g}"):  # the transport cuts the call there
                result = self.model.chat(messages, **kw)
        except Exception as exc:
            spent = time.monotonic() - self.start
            if self.deadline_s is None or spent < self.deadline_s:
                raise
            raise JobDeadlineExceeded(f"job ran {spent:.1f} s, past its deadline of {self.deadline_s:g} s, in teacher "
                                      f"call {len(self.metas) + 1}: {scrub(str(exc))[:500]}") from None
        if not result.text.strip():
            raise EmptyReply(f"the teacher ({self.name}) gave an empty reply to call {len(self.metas) + 1}; "
                             "an empty reply is not a label (it was not cached; the job is retried on resume)")
        self.metas.append({**result.meta, "cached": result.cached})
        return result

    def chat_batch(self, batch: list[list[Message]], **kw: Any) -> list[ChatResult]:
        return [self.chat(m, **kw) for m in batch]


def teacher_job_id(plan_job_id: str, teacher_id: str) -> str:
    """The id of one job labelled by one teacher: ``<query>::<template>@<hash of the teacher identity>``, so a
    different teacher in the same folder makes new labels instead of reusing another teacher's. (With labelling
    settings other than :data:`LEGACY_SETTINGS` the id gets a suffix: :func:`labelled_job_id`.)"""
    return f"{plan_job_id}@{hashlib.sha256(teacher_id.encode()).hexdigest()[:10]}"


LEGACY_SETTINGS: dict[str, int] = {"max_steps": 5, "max_new_tokens": 512}  # what ids without a suffix were made with


def label_settings(job: LabelJob, *, max_steps: int = 5, max_new_tokens: int = 512) -> LabelSettings:
    """Everything besides query, template and teacher that decides a job's labels: the step and token budgets of
    the run and the job's offered tools and conclusion template (set by ``plan_jobs``: seed, distractors, the
    conclusion templates). Recorded in each labelled record as ``settings``."""
    return {"max_steps": max_steps, "max_new_tokens": max_new_tokens, "tools": list(job.tools),
            "conclusion_template": job.conclusion_template}


def _made_with(rec: LabelledRecord, settings: LabelSettings) -> bool:
    """Was ``rec`` labelled under ``settings``? A record from before settings were recorded was made with
    :data:`LEGACY_SETTINGS`; its tools and conclusion template are in the record itself."""
    if "settings" in rec:
        return rec["settings"] == settings
    return (all(settings[k] == v for k, v in LEGACY_SETTINGS.items()) and rec.get("tools") == settings["tools"]
            and rec.get("conclusion_template") in (None, settings["conclusion_template"]))


def labelled_job_id(job: LabelJob, teacher_id: str, settings: LabelSettings, labelled: KeyedStore) -> str:
    """The id under which ``job`` is labelled with ``settings`` (:func:`label_settings`) by ``teacher_id``.

    Settings are part of the identity, so changed settings never reuse old labels (nor the review decisions made
    on them, which are keyed by job id): ``teacher_job_id(...)`` as before when the run uses
    :data:`LEGACY_SETTINGS` and nothing else under that id was labelled differently (so existing folders stay
    valid), else ``<that>~<sha256 of the settings>[:10]``."""
    base = teacher_job_id(job.job_id, teacher_id)
    if all(settings[k] == v for k, v in LEGACY_SETTINGS.items()):
        rec = labelled.get(base)
        if rec is None or _made_with(rec, settings):
            return base
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return f"{base}~{digest}"


@dataclass
class LabelReport:
    out_dir: Path
    total_jobs: int
    teacher_id: str = ""
    new: int = 0
    skipped: int = 0
    failed: int = 0
    not_started: int = 0  # left for the next run by ``deadline_s``
    job_ids: list[str] = field(default_factory=list)  # the labelled-record id of every job, in job order
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "total_jobs": self.total_jobs, "teacher_id": self.teacher_id,
                "new": self.new,
                "skipped": self.skipped, "failed": self.failed, "not_started": self.not_started,
                "usage": self.usage.to_dict(), "seconds": round(self.seconds, 2)}


def labelled_store(out_dir: str | Path) -> KeyedStore:
    """``labelled.jsonl`` as a store: teacher job id -> its labelled record (the only "done" mark)."""
    return KeyedStore(Path(out_dir) / LABELLED, "job_id")


def done_job_ids(out_dir: str | Path) -> set[str]:
    """Jobs already labelled (``labelled.jsonl`` only: a logged failure is not done)."""
    return set(labelled_store(out_dir).keys())


def run_job(job: LabelJob, model: ChatModel, registry: ToolRegistry, *, max_steps: int = 5,
            max_new_tokens: int = 512, deadline_s: float | None = None,
            templates: dict[str, AgentTemplate] | None = None, job_id: str | None = None) -> LabelledRecord:
    """Label one job; returns the record written to ``labelled.jsonl`` (``job_id``: its id from
    :func:`labelled_job_id`, which names the teacher and the settings; default: ``teacher_job_id``).
    ``templates``: already loaded templates by name (else each job reads its template files)."""
    recorder = _Recorder(model, deadline_s)
    concl = job.conclusion_template or "kagent_conclusion_zh"
    loaded = templates or {}
    trace = run_agent(recorder, job.query["query"], template=loaded.get(job.template, job.template),
                      tools=registry.subset(job.tools), max_steps=max_steps, max_new_tokens=max_new_tokens,
                      conclusion_template=loaded.get(concl, concl))
    q, tid = job.query, model_id(model)
    return LabelledRecord(job_id=job_id or teacher_job_id(job.job_id, tid), plan_job_id=job.job_id,
                          query_id=q["id"], query=q["query"], lang=q.get("lang"), cluster=q.get("cluster"),
                          template=job.template, conclusion_template=trace.conclusion_template, tools=list(job.tools),
                          teacher=model.name, teacher_id=tid,
                          settings=label_settings(job, max_steps=max_steps, max_new_tokens=max_new_tokens),
                          trace=trace.to_dict(), teacher_meta=recorder.metas)


def label_jobs(jobs: Sequence[LabelJob], teacher: ChatModel | str, out_dir: str | Path, *, workers: int = 4,
               max_steps: int = 5, max_new_tokens: int = 512, price_per_1k_prompt: float = 0.0,
               price_per_1k_completion: float = 0.0, cache_path: str | Path | None = None,
               registry: ToolRegistry | None = None, progress: bool = True, job_deadline_s: float | None = 600.0,
               deadline_s: float | None = None) -> LabelReport:
    """Label the jobs not yet done in ``out_dir`` with ``workers`` threads; see the module docstring."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = get_model(teacher) if isinstance(teacher, str) else teacher
    cached = CachedChatModel(model, RequestCache(cache_path or out_dir / CACHE), price_per_1k_prompt,
                             price_per_1k_completion)
    registry = registry or default_registry()
    labelled, failures = labelled_store(out_dir), KeyedStore(out_dir / FAILURES, "job_id")
    tid = model_id(cached)
    ids = {j.job_id: labelled_job_id(j, tid, label_settings(j, max_steps=max_steps, max_new_tokens=max_new_tokens),
                                     labelled) for j in jobs}
    todo = [j for j in jobs if ids[j.job_id] not in labelled]
    report = LabelReport(out_dir, len(jobs), tid, skipped=len(jobs) - len(todo), usage=cached.usage,
                         job_ids=[ids[j.job_id] for j in jobs])
    names = {n for j in todo for n in (j.template, j.conclusion_template or "kagent_conclusion_zh")}
    templates = {n: load_template(n) for n in sorted(names)}  # parsed and checked once, not once per job
    lock, start = threading.Lock(), time.perf_counter()
    bar = tqdm(total=len(jobs), initial=report.skipped, desc="labelling", unit="job", disable=not progress)

    def work(job: LabelJob) -> None:
        if deadline_s is not None and time.perf_counter() - start > deadline_s:
            with lock:
                report.not_started += 1
            return
        rec: LabelledRecord | LabelFailure
        try:
            rec = run_job(job, cached, registry, max_steps=max_steps, max_new_tokens=max_new_tokens,
                          deadline_s=job_deadline_s, templates=templates, job_id=ids[job.job_id])
            store, failed = labelled, False
        except Exception as exc:  # kept with its reason, never dropped
            rec = LabelFailure(job_id=ids[job.job_id], plan_job_id=job.job_id, teacher_id=tid,
                               query_id=job.query["id"], template=job.template, error_type=type(exc).__name__,
                               reason=scrub(str(exc))[:2000])
            store, failed = failures, True
        store.put(rec)
        with lock:
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


def load_labelled(out_dir: str | Path) -> list[LabelledRecord]:
    """Every labelled record in ``out_dir`` (the latest per teacher job id; all teachers)."""
    return labelled_store(out_dir).values()


def load_failures(out_dir: str | Path) -> list[LabelFailure]:
    """The failure log: one record per failed attempt (a job retried later appears here too)."""
    path = Path(out_dir) / FAILURES
    return read_jsonl(path, tolerate_torn_tail=True) if path.exists() else []
