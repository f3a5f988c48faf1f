"""Training samples from labelled traces: one sample per LLM call of an accepted trace (:func:`step_samples`,
:func:`agent_samples`), PII anonymised in place (:func:`anonymize_samples`) and exact duplicates dropped
(:func:`dedup_samples`).

A sample is a :class:`labkit.records.Sample`: the user turn is the full agent prompt the teacher saw (``loss``
false), the assistant turn the teacher's output of that step (``loss`` true), plus the provenance fields
(``query_id``, ``template``, ``step``) and ``action`` (:func:`labkit.data.balance.step_action`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from labkit.data.anonymize import anonymize
from labkit.data.balance import step_action
from labkit.data.dedup import DedupResult, deduplicate
from labkit.records import LabelledRecord, Sample, trace_steps
from labkit.templates import load_template


def step_samples(rec: LabelledRecord) -> list[Sample]:
    """Training samples (one per LLM call: planning steps and the conclusion) from an accepted trace. ``action``
    says what the step does (:func:`labkit.data.balance.step_action`: call, finish, conclusion, other)."""
    out = []
    edited = set(rec.get("human_edited_steps", []))
    for i, (s, step) in enumerate(zip(rec["trace"]["steps"], trace_steps(rec["trace"]))):
        concl = s.get("kind") == "conclusion"
        name = rec["conclusion_template"] if concl else rec["template"]
        action = step_action(step, load_template(name).format if i in edited else None)
        out.append(Sample(id=f"{rec['job_id']}::{i}", source="agent", query_id=rec["query_id"], template=name,
                          step=i, action=action, query=rec["query"], tool_names=rec["tools"],
                          meta={"human_edited": i in edited, "llm_name": rec["teacher"]},
                          messages=[{"role": "user", "content": s["prompt"], "loss": False},
                                    {"role": "assistant", "content": s["output"], "loss": True}]))
    return out


def anonymize_samples(samples: list[Sample]) -> dict[str, int]:
    """Replace PII in every message in place; returns counts per PII type."""
    counts: dict[str, int] = {}
    for s in samples:
        for m in s["messages"]:
            m["content"], spans = anonymize(m["content"])
            for sp in spans:
                counts[sp.type] = counts.get(sp.type, 0) + 1
    return counts


def agent_samples(accepted: Sequence[LabelledRecord]) -> list[Sample]:
    """Every training sample of the accepted traces: one per LLM call (see :func:`step_samples`)."""
    return [s for r in accepted for s in step_samples(r)]


def sample_text(sample: Sample) -> str:
    return json.dumps(sample["messages"], ensure_ascii=False)


def dedup_samples(samples: Sequence[Sample]) -> DedupResult[Sample]:
    """Exact duplicates only: agent prompts share their template text, so near-duplicate matching would merge
    different queries."""
    return deduplicate(samples, text=sample_text, key=lambda s: s["id"], threshold=None)
