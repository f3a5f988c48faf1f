"""Section check and pairwise judge (course note §4.2.2, the filtering steps).

Section check: a candidate is dropped when its file does not load (bad YAML or schema, or its text asks for
another format than it declares), when a required part is missing (:func:`labkit.templates.check_sections`, by
rendering with sentinel values), or when its declared output format does not read back what it writes
(:meth:`~labkit.formats.base.OutputFormat.round_trip_problems`).

Pairwise judge: the same queries go into the benchmark templates (ReAct, AutoGPT, ToolLLaMA, ModelScope, KAgent)
and into the candidate, the *same* model answers every prompt, and each answer gets a score in [0, 1]:

* offline - the objective scorer against gold: KAgentBench's Planning and Tool-use for that step
  (:func:`labkit.evaluate.scorer.score_predictions`, labkit's own mode), weighted 0.25 : 0.35 as in Overall and renormalised, and halved
  when the answer only parses after a tolerant repair (the data filters would reject it as off-format);
* with an API key - an LLM judge (:class:`LLMJudge`) that reads the prompt and the answer and gives 0-10.

``s1`` is the mean score of the benchmark templates on a situation, ``s2`` the candidate's; the instance is kept
when ``s2 - s1 > epsilon`` (:func:`keep_instance`). A template's score is the mean ``s2`` over all its instances;
a template is kept when that mean is greater than ``threshold``, else it is dropped with all its instances
(:func:`template_verdicts`) - "大于一定阈值" in the note, strictly greater like the epsilon rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from labkit.errors import LabkitError
from labkit.evaluate.scorer import WEIGHTS, score_predictions
from labkit.formats import get_format
from labkit.records import BenchmarkRecord
from labkit.templates import AgentTemplate, check_sections, load_template
from labkit.types import ParseError

BENCHMARK_TEMPLATES = ("react", "autogpt", "toolllama", "modelscope", "kagent_planning_zh", "kagent_planning_en")
DEFAULT_EPSILON = -0.05
DEFAULT_THRESHOLD = 0.8
REPAIRED_FACTOR = 0.5
_STEP_WEIGHT = WEIGHTS["Planning"] + WEIGHTS["Tool-use"]


# ---------------------------------------------------------------- section check

@dataclass
class SectionVerdict:
    name: str
    loaded: bool
    missing: list[str]
    round_trip: list[str]
    error: str = ""

    @property
    def passed(self) -> bool:
        return self.loaded and not self.missing and not self.round_trip

    @property
    def reason(self) -> str:
        if not self.loaded:
            return "unloadable: " + self.error
        if self.missing:
            return "missing sections: " + ", ".join(self.missing)
        if self.round_trip:
            return "format does not round-trip: " + self.round_trip[0]
        return ""


def section_check(path: str | Path) -> tuple[SectionVerdict, AgentTemplate | None]:
    """Load a candidate file and check its parts and its format (see the module docstring)."""
    path = Path(path)
    try:
        template = load_template(path)
        missing, round_trip = check_sections(template), template.format.round_trip_problems()
    except LabkitError as exc:  # DataFileError, bad format name, ...: a rejected candidate, never a stopped run
        return SectionVerdict(path.stem, False, [], [], str(exc)), None
    return SectionVerdict(template.name, True, missing, round_trip), template


# ---------------------------------------------------------------- scores

def keep_instance(s2: float, s1: float, epsilon: float = DEFAULT_EPSILON) -> bool:
    """The note's rule: keep the candidate's prompt instance when score2 - score1 > epsilon."""
    return s2 - s1 > epsilon


def objective_scores(record: BenchmarkRecord, outputs: Mapping[str, str]) -> dict[str, float]:
    """Per template: (0.25 Planning + 0.35 Tool-use) / 0.6 against the record's gold step, halved when the output
    needs a tolerant repair to parse; 0 when it does not parse."""
    rows = score_predictions([record], [{**record, "model_predict": dict(outputs)}]).rows
    per: dict[str, dict[str, float]] = {}
    for r in rows:
        per.setdefault(r.template, {})[r.dimension] = r.score
    out = {}
    for template, text in outputs.items():
        dims = per.get(template, {})
        score = (WEIGHTS["Planning"] * dims.get("Planning", 0.0) + WEIGHTS["Tool-use"] * dims.get("Tool-use", 0.0)) \
            / _STEP_WEIGHT
        parsed = get_format(record["output_formats"][template]).parse(text, record.get("funcs"))
        if not isinstance(parsed, ParseError) and parsed.repaired:
            score *= REPAIRED_FACTOR
        out[template] = score
    return out


JUDGE_PROMPT = """You grade one step of a tool-using AI agent. The agent received this prompt:
<<<PROMPT
{prompt}
PROMPT>>>
It replied:
<<<REPLY
{reply}
REPLY>>>
Give a score from 0 to 10: 10 = the reply follows the output format the prompt asks for exactly and takes the right
next step (the right tool with complete, correct arguments); 0 = unusable. Reply with JSON only:
{{"score": <0-10>, "reason": "<one sentence>"}}"""


class LLMJudge:
    """GPT-4-as-judge: a real model scores each answer 0-10 (normalised to [0, 1]); None when its reply is
    unreadable (the instance is then left out and counted)."""

    def __init__(self, model: Any, *, max_prompt_chars: int = 6000):
        self.model, self.max_prompt_chars = model, max_prompt_chars
        self.name = f"LLM judge ({model.name})"

    def score(self, prompt: str, reply: str) -> float | None:
        from labkit.formats.jsontext import load_json_object

        text = self.model.chat([{"role": "user", "content": JUDGE_PROMPT.format(
            prompt=prompt[-self.max_prompt_chars:], reply=reply)}], max_new_tokens=120).text
        try:
            value = load_json_object(text, []).get("score")
        except Exception:  # noqa: BLE001 - any unreadable judge reply counts as "no score"
            match = re.search(r"\b(10|\d)(?:\.\d+)?\b", text)
            value = float(match.group()) if match else None
        try:
            return max(0.0, min(1.0, float(value) / 10)) if value is not None else None
        except (TypeError, ValueError):
            return None


# ---------------------------------------------------------------- instances and template verdicts

class InstanceRow(TypedDict):
    """:meth:`Instance.to_dict`: one line of ``instances.jsonl``."""

    template: str
    record: str
    query_id: str
    cluster: int
    s1: float
    s2: float
    kept: bool
    output: str
    delta: float


class BenchmarkScore(TypedDict):
    """A benchmark template's own score on one situation (:func:`judge_records`); a line of
    ``benchmark_scores.jsonl``, where the funnel adds the ``cluster``."""

    record: str
    template: str
    score: float | None    # None: the LLM judge's reply was unreadable
    cluster: NotRequired[int]


class TemplateVerdict(TypedDict):
    """A candidate's judged instances summed up (:func:`template_verdicts`)."""

    instances: int
    kept_instances: int
    mean_s2: float         # the template's score
    mean_s1: float
    mean_delta: float
    kept: bool             # mean_s2 > threshold


@dataclass
class Instance:
    template: str
    record: str        # benchmark-style record id: <query id>:plan<step>
    query_id: str
    cluster: int
    s1: float          # mean score of the benchmark templates on this situation
    s2: float          # the candidate's score
    kept: bool         # s2 - s1 > epsilon
    output: str

    @property
    def delta(self) -> float:
        return self.s2 - self.s1

    def to_dict(self) -> InstanceRow:
        return {"template": self.template, "record": self.record, "query_id": self.query_id, "cluster": self.cluster,
                "s1": self.s1, "s2": self.s2, "kept": self.kept, "output": self.output, "delta": self.delta}


def judge_records(records: Sequence[BenchmarkRecord], outputs: Sequence[Mapping[str, str]], *,
                  benchmarks: Sequence[str], cluster: int, epsilon: float = DEFAULT_EPSILON,
                  judge: LLMJudge | None = None) -> tuple[list[Instance], list[BenchmarkScore]]:
    """Instances for every candidate in every record, plus the benchmark templates' own scores (for display)."""
    instances: list[Instance] = []
    bench_rows: list[BenchmarkScore] = []
    for rec, outs in zip(records, outputs):
        if judge is None:
            scores: dict[str, float | None] = dict(objective_scores(rec, outs))
        else:
            scores = {t: judge.score(rec["prompt_input"][t], o) for t, o in outs.items()}
        bench = [scores[t] for t in benchmarks if t in scores and scores[t] is not None]
        if not bench:
            continue
        s1 = sum(bench) / len(bench)  # type: ignore[arg-type]
        bench_rows += [{"record": rec["id"], "template": t, "score": scores[t]} for t in benchmarks if t in scores]
        for t, out in outs.items():
            if t in benchmarks or scores[t] is None:
                continue
            s2 = float(scores[t])  # type: ignore[arg-type]
            instances.append(Instance(t, rec["id"], str(rec["id"]).split(":")[0], cluster, s1, s2,
                                      keep_instance(s2, s1, epsilon), out))
    return instances, bench_rows


def template_verdicts(instances: Sequence[Instance],
                      threshold: float = DEFAULT_THRESHOLD) -> dict[str, TemplateVerdict]:
    """Per template: mean s2 over all its instances, mean delta, kept-instance count, and whether it is kept
    (mean s2 > threshold)."""
    by: dict[str, list[Instance]] = {}
    for inst in instances:
        by.setdefault(inst.template, []).append(inst)
    out: dict[str, TemplateVerdict] = {}
    for name, rows in by.items():
        mean = sum(r.s2 for r in rows) / len(rows)
        out[name] = {"instances": len(rows), "kept_instances": sum(r.kept for r in rows), "mean_s2": mean,
                     "mean_s1": sum(r.s1 for r in rows) / len(rows),
                     "mean_delta": sum(r.delta for r in rows) / len(rows), "kept": mean > threshold}
    return out
