"""Typed records that cross stage boundaries, each with ONE validator used wherever that record is read.

* query (the gold bank, held-out test queries): :func:`validate_query`, :func:`read_queries`;
  general instruction data: :func:`validate_general`, :func:`read_general`;
* training sample: :func:`validate_sample` (``contract=False`` for user data that lacks our provenance fields);
* benchmark record (ours or the public KAgentBench file): :func:`validate_benchmark_record`, :func:`load_benchmark`;
* trace step: :class:`TraceStep` (what the model saw and said, the parsed action, the tool's observation and error
  code) with :meth:`TraceStep.from_dict`, so later stages read the trace instead of re-parsing and re-running tools;
  saved as a :class:`~labkit.types.TraceStepDict` (its parse a :class:`~labkit.types.ParsedDict`) inside a
  :class:`~labkit.types.TraceDict` (the JSON types live in labkit.types, beside ``ToolCall`` and ``ParseResult``);
* labelled record (one teacher trace of a (query, template) job, ``labelled.jsonl``): :class:`LabelledRecord`, its
  failure-log twin :class:`LabelFailure`, the filters' :class:`FilterReason` and a review :class:`Decision`.

Records are ``TypedDict`` s: they are the JSON objects written to and read from the files, so a record serializes
to exactly the JSONL line it was read from.

A validator takes the raw parsed JSON object (``Mapping[str, object]``) and returns the typed record.

Every problem is a :class:`~labkit.errors.DataFileError` naming the file, line and field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from labkit.errors import DataFileError
from labkit.jsonl import iter_jsonl, require
from labkit.types import ParsedAction, ParsedDict, ParseError, ParseResult, ToolCall, ToolCallDict, TraceDict

LANGS = ("zh", "en")


# ---------------------------------------------------------------- queries
class Query(TypedDict):
    id: str
    query: str
    lang: str
    cluster: str
    gold_calls: list[ToolCallDict]  # labkit.types.ToolCallDict: {name, args}
    thoughts: list[str]          # thoughts[i] is the gold task name of gold_calls[i]
    reference_answer: str


class GeneralItem(TypedDict):
    id: str
    instruction: str
    output: str
    lang: str


def validate_gold(rec: Mapping[str, object], path: str | Path, line: int | None,
                  tool_names: Iterable[str] | None = None) -> list[ToolCall]:
    """``gold_calls`` (name + args objects, known tools when ``tool_names`` is given) with one thought each."""
    calls = require(rec, "gold_calls", list, path=path, line=line or 0)
    thoughts = require(rec, "thoughts", list, path=path, line=line or 0)
    if len(thoughts) != len(calls):
        raise DataFileError(path, f"{len(thoughts)} thoughts for {len(calls)} gold calls", line=line, field="thoughts")
    known = set(tool_names) if tool_names is not None else None
    out = []
    for i, c in enumerate(calls):
        where = f"gold_calls[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not isinstance(c.get("args", {}), dict):
            raise DataFileError(path, "expected {'name': str, 'args': object}", line=line, field=where)
        if known is not None and c["name"] not in known:
            raise DataFileError(path, f"unknown tool {c['name']!r}; known: {', '.join(sorted(known))}", line=line,
                                field=f"{where}.name")
        out.append(ToolCall(c["name"], dict(c.get("args") or {})))
    return out


def _lang(rec: Mapping[str, object], path: str | Path, line: int) -> str:
    lang = require(rec, "lang", str, path=path, line=line)
    if lang not in LANGS:
        raise DataFileError(path, f"lang must be one of {LANGS}, got {lang!r}", line=line, field="lang")
    return lang


def _text(rec: Mapping[str, object], name: str, path: str | Path, line: int) -> str:
    value = require(rec, name, str, path=path, line=line)
    if not value.strip():
        raise DataFileError(path, "empty text", line=line, field=name)
    return value


def validate_query(rec: Mapping[str, object], path: str | Path, line: int, *,
                   tool_names: Iterable[str] | None = None) -> Query:
    """One query-bank record (docs/ARCHITECTURE.md "Query bank"); the id comes back as a string."""
    qid = str(require(rec, "id", (str, int), path=path, line=line))
    _text(rec, "query", path, line)
    _lang(rec, path, line)
    require(rec, "cluster", str, path=path, line=line)
    require(rec, "reference_answer", str, path=path, line=line)
    validate_gold(rec, path, line, tool_names)
    return {**rec, "id": qid}  # type: ignore[typeddict-item]


def validate_general(rec: Mapping[str, object], path: str | Path, line: int) -> GeneralItem:
    """One general instruction record ``{id, instruction, output, lang}``."""
    gid = str(require(rec, "id", (str, int), path=path, line=line))
    _text(rec, "instruction", path, line)
    _text(rec, "output", path, line)
    _lang(rec, path, line)
    return {**rec, "id": gid}  # type: ignore[typeddict-item]


def _read_unique(path: str | Path, validate: Any) -> list[Any]:
    seen: dict[str, int] = {}
    out = []
    for line, rec in iter_jsonl(path):
        item = validate(rec, path, line)
        if item["id"] in seen:
            raise DataFileError(path, f"duplicate id {item['id']!r} (first on line {seen[item['id']]})", line=line,
                                field="id")
        seen[item["id"]] = line
        out.append(item)
    return out


def read_queries(path: str | Path, *, tool_names: Iterable[str] | None = None,
                 allow_empty: bool = False) -> list[Query]:
    """Every query in a JSONL file, validated, ids unique."""
    names = list(tool_names) if tool_names is not None else None
    out = _read_unique(path, lambda rec, p, n: validate_query(rec, p, n, tool_names=names))
    if not out and not allow_empty:
        raise DataFileError(path, "no queries in file")
    return out


def read_general(path: str | Path) -> list[GeneralItem]:
    return _read_unique(path, validate_general)


# ---------------------------------------------------------------- training samples
SAMPLE_FIELDS = ("id", "source", "query_id", "template", "step", "messages")
ROLES = ("system", "user", "assistant")


class SampleMessage(TypedDict, total=False):
    role: str
    content: str
    loss: bool
    kind: str            # optional extra for lossless conversion: "observation" | "function_call"


class SampleMeta(TypedDict, total=False):
    """A sample's ``meta``: where a step came from (``labkit.data.samples``: human_edited, llm_name), its
    step-balance copy number (``labkit.data.balance``) and the KAgentInstruct fields kept for the way back
    (``labkit.data.convert``: entry_id ... human_edited)."""

    human_edited: bool
    llm_name: str
    balance_copy: int
    entry_id: str
    kagent_source: str
    functions: list[str]         # the entry's tool specs as JSON strings
    function_names: list[str]
    extra_infos: dict[str, Any]  # KAgentInstruct's free-form extras
    input: str


class Sample(TypedDict, total=False):
    """A training sample: the contract fields (:data:`SAMPLE_FIELDS`) plus the optional extras the data stage and
    the converters carry (``labkit.data.convert``)."""

    id: str
    source: str          # "agent" | "general"
    query_id: str
    template: str | None  # None for a general sample
    step: int
    messages: list[SampleMessage]
    action: str          # what the step does: call | finish | conclusion | other (labkit.data.balance.step_action)
    query: str
    tool_names: list[str]
    tools: list[dict[str, Any]]   # tool specs (converters)
    meta: SampleMeta


def validate_sample(rec: Mapping[str, object], path: str | Path = "<samples>", line: int | None = None, *,
                    contract: bool = True) -> Sample:
    """One training sample. ``contract`` also requires our provenance fields (id, source, query_id, template,
    step); training accepts any chat data with a supervised turn (``contract=False``)."""
    if contract:
        for f in SAMPLE_FIELDS:
            if f not in rec:
                raise DataFileError(path, "missing field", line=line, field=f)
        if rec["source"] not in ("agent", "general"):
            raise DataFileError(path, f"source must be agent|general, got {rec['source']!r}", line=line,
                                field="source")
    msgs = rec.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise DataFileError(path, "messages must be a non-empty list", line=line, field="messages")
    for i, m in enumerate(msgs):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise DataFileError(path, f"expected an object, got {type(m).__name__}", line=line, field=where)
        if m.get("role") not in ROLES:
            raise DataFileError(path, f"role must be one of {'/'.join(ROLES)}, got {m.get('role')!r}", line=line,
                                field=f"{where}.role")
        if not isinstance(m.get("content"), str):
            raise DataFileError(path, "content must be a string", line=line, field=f"{where}.content")
    if not any(m.get("loss", m["role"] == "assistant") for m in msgs):
        raise DataFileError(path, "no supervised turn (loss=true)", line=line, field="messages")
    return rec  # type: ignore[return-value]


# ---------------------------------------------------------------- benchmark records (KAgentBench layout)
RECORD_TYPES: tuple[str, ...] = ("plantooluse", "reflextion", "conclusion", "profile")
NONE = "None"  # KAgentBench's marker for "no tool" / "no thought" in golden items


class GoldenItem(TypedDict, total=False):
    """One golden item of a benchmark record: a tool step (plantooluse / reflextion) or an answer (conclusion /
    profile)."""

    thought: str
    tool_name: str
    tool_args: dict[str, Any]
    golden_result: str


class BenchmarkRecord(TypedDict, total=False):
    id: str
    query: str
    type: str
    golden_result_list: list[GoldenItem]
    prompt_input: dict[str, str]
    funcs: list[dict[str, Any]]
    memory: str
    memory_type: str
    memory_last_task: dict[str, Any]
    template_tags: dict[str, str]      # ours: template -> "seen" | "unseen"
    output_formats: dict[str, str]     # ours: template -> labkit output format
    lang: str
    step: int


def validate_benchmark_record(rec: Mapping[str, object], path: str | Path, line: int) -> BenchmarkRecord:
    """One KAgentBench-layout record (ours or the public ``benchmark_eval.jsonl``), checking what scoring reads; the
    id comes back as a string.

    As lenient as the official script where it does not read a field: ``query`` and ``prompt_input`` may be missing
    or empty (the official script takes templates from the predictions), ``memory_last_task`` may be any value (a
    reflection record whose value lacks ``tool_name`` / ``tool_args`` is scored 0 with a note, where the official
    script stops), ``funcs`` may be missing. Stricter on purpose: an unknown ``type`` is an error (the official
    script silently skips the record), and golden items must have the keys the scorer reads.
    """
    if not isinstance(rec.get("id"), (str, int)):
        raise DataFileError(path, "missing or non-string id", line=line, field="id")
    typ = require(rec, "type", str, path=path, line=line)
    if typ not in RECORD_TYPES:
        raise DataFileError(path, f"unknown type {typ!r}; expected one of {RECORD_TYPES}", line=line, field="type")
    golden = require(rec, "golden_result_list", list, path=path, line=line)
    if not isinstance(rec.get("prompt_input", {}), dict):
        raise DataFileError(path, "expected a {template: prompt} object", line=line, field="prompt_input")
    for i, g in enumerate(golden):
        key = "tool_name" if typ in ("plantooluse", "reflextion") else "golden_result"
        if not isinstance(g, dict) or key not in g:
            raise DataFileError(path, f"item {i} lacks {key!r}", line=line, field="golden_result_list")
        if key == "tool_name" and str(g[key]) != NONE and not isinstance(g.get("tool_args", {}), dict):
            raise DataFileError(path, f"item {i}: tool_args must be an object", line=line, field="golden_result_list")
    if not isinstance(rec.get("funcs", []), list):
        raise DataFileError(path, "expected a list", line=line, field="funcs")
    return {**rec, "id": str(rec["id"]), "prompt_input": rec.get("prompt_input", {})}  # type: ignore[typeddict-item]


def load_benchmark(path: str | Path) -> list[BenchmarkRecord]:
    """Read a KAgentBench-layout JSONL (ours, or the public ``benchmark_eval.jsonl``), checking every record."""
    return [validate_benchmark_record(rec, path, line) for line, rec in iter_jsonl(path)]


# ---------------------------------------------------------------- trace steps
def parsed_to_dict(result: ParseResult) -> ParsedDict:
    """``{"ok": True, thought, call, final_answer, give_up, repaired}`` or ``{"ok": False, code, message}``."""
    if isinstance(result, ParseError):
        return {"ok": False, **result.to_dict()}
    d = result.to_dict()
    d["repaired"] = list(d.get("repaired", ()))
    return {"ok": True, **d}


def parsed_from_dict(d: ParsedDict) -> ParseResult:
    """The inverse of :func:`parsed_to_dict`."""
    if not d.get("ok"):
        return ParseError(str(d.get("code", "")), str(d.get("message", "")))
    call = d.get("call")
    return ParsedAction(thought=str(d.get("thought") or ""),
                        call=ToolCall(call["name"], dict(call.get("args") or {})) if isinstance(call, dict) else None,
                        final_answer=d.get("final_answer"), give_up=bool(d.get("give_up")),
                        repaired=tuple(d.get("repaired") or ()))


@dataclass
class TraceStep:
    """One LLM call of an agent run: the prompt, the raw output, the parsed action and, for a tool call, the tool's
    observation, whether the call was accepted (``tool_ok``) and the registry's error code (``tool_error``:
    unknown_tool, invalid_args, tool_error, tool_exception)."""

    prompt: str
    output: str
    parsed: ParsedDict
    observation: str | None = None
    kind: str = "step"  # "step" (plan / tool call) or "conclusion" (the summarising prompt)
    tool_ok: bool | None = None  # False when the registry rejected the call (unknown tool, bad args, tool error)
    completion_tokens: int = 0  # as the model reported it (0 when unknown)
    tool_error: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.parsed.get("ok"))

    @property
    def action(self) -> ParseResult:
        """The parsed output as a :class:`ParsedAction` or :class:`ParseError`."""
        return parsed_from_dict(self.parsed)

    def action_text(self) -> str:
        """A one-line human reading of the parsed output."""
        p = self.parsed
        if not p.get("ok"):
            return f"ParseError[{p.get('code')}]: {p.get('message')}"
        if p.get("give_up"):
            return "give_up_and_restart"
        if p.get("call"):
            return f"{p['call']['name']}({json.dumps(p['call']['args'], ensure_ascii=False)})"
        return f"Final Answer: {p.get('final_answer')}"

    @classmethod
    def from_dict(cls, d: Any, *, path: str | Path = "<dict>", line: int | None = None,
                  field: str = "step") -> TraceStep:
        """Validate one saved step (``dataclasses.asdict`` form); unknown keys are ignored."""
        if not isinstance(d, dict):
            raise DataFileError(path, f"expected an object, got {type(d).__name__}", line=line, field=field)
        for name, typ in (("prompt", str), ("output", str), ("parsed", dict)):
            if not isinstance(d.get(name), typ):
                raise DataFileError(path, f"expected {typ.__name__}", line=line, field=f"{field}.{name}")
        parsed = d["parsed"]
        call = parsed.get("call")
        if parsed.get("ok") and call is not None and not (isinstance(call, dict) and isinstance(call.get("name"), str)
                                                          and isinstance(call.get("args", {}), dict)):
            raise DataFileError(path, "expected {'name': str, 'args': object}", line=line, field=f"{field}.parsed.call")
        for name in ("observation", "tool_error"):
            if d.get(name) is not None and not isinstance(d[name], str):
                raise DataFileError(path, "expected text or null", line=line, field=f"{field}.{name}")
        return cls(**{k: d[k] for k in d if k in cls.__dataclass_fields__})


def trace_steps(trace: Mapping[str, object], *, path: str | Path = "<trace>", line: int | None = None) -> list[TraceStep]:
    """The validated steps of a saved trace (a :class:`~labkit.types.TraceDict`, or a raw one being read: ``Trace.from_dict``)."""
    steps = trace.get("steps") if isinstance(trace, dict) else None
    if not isinstance(steps, list):
        raise DataFileError(path, "expected a list of steps", line=line, field="trace.steps")
    return [TraceStep.from_dict(s, path=path, line=line, field=f"steps[{i}]") for i, s in enumerate(steps)]


# ---------------------------------------------------------------- labelled records (labkit.data.label)
class LabelSettings(TypedDict):
    """Everything besides query, template and teacher that decides a job's labels (``labkit.data.label``)."""

    max_steps: int
    max_new_tokens: int
    tools: list[str]
    conclusion_template: str | None


class _LabelledFields(TypedDict):
    job_id: str                  # <query>::<template>@<teacher hash>[~<settings hash>]
    plan_job_id: str             # <query>::<template>
    query_id: str
    query: str
    lang: str | None
    cluster: str | None
    template: str
    conclusion_template: str | None
    tools: list[str]             # the offered tool names
    teacher: str
    teacher_id: str
    trace: TraceDict           # read its steps with trace_steps
    teacher_meta: list[dict[str, Any]]


class LabelledRecord(_LabelledFields, total=False):
    """One line of ``labelled.jsonl``: a teacher's trace of one (query, template) job (``labkit.data.label.run_job``;
    on disk ``settings`` comes between ``teacher_id`` and ``trace``). ``human_edited_steps`` / ``human_accepted`` are
    added by review (``labkit.data.review``); ``settings`` is absent from records written before settings were
    recorded."""

    settings: LabelSettings
    human_edited_steps: list[int]
    human_accepted: bool


class LabelFailure(TypedDict):
    """One line of ``failures.jsonl``: a labelling attempt that failed (retried on resume)."""

    job_id: str
    plan_job_id: str
    teacher_id: str
    query_id: str
    template: str
    error_type: str
    reason: str


class FilterReason(TypedDict):
    """Why a filter (``labkit.data.filters``) or a reviewer rejected a labelled record: a reason ``code``, the
    trace step it was found at (``None``: the whole trace) and a human-readable ``detail``."""

    code: str
    step: int | None
    detail: str


class _DecisionFields(TypedDict):
    job_id: str
    decision: str                # accept | edit | reject


class Decision(_DecisionFields, total=False):
    """One human review decision (``labkit.data.review``): the latest per ``job_id`` wins. ``record_decision``
    writes every field; a hand-written decisions file needs ``job_id``, ``decision`` and, for an edit, ``step`` and
    ``output``."""

    step: int | None             # edit: the step whose output is replaced
    output: str | None           # edit: the corrected output
    reviewer: str
    note: str
    time: str
