"""KAgentBench's five abilities and Overall, computed from a benchmark file and a predictions file, in two modes.

* ``compat="kagentbench"``: exactly the official ``benchmark_eval.py`` (rules: :mod:`labkit.evaluate.kagentbench`),
  checked against the unmodified script: the same printed line and the same value per template.
* labkit's own mode (default): the same pipeline with the switches of :data:`labkit.evaluate.differences.DIFFERENCES`
  on (tolerant parsing, extracted answers, templates from the benchmark, exact ROUGE, regex tokens, ...). Any mix:
  ``options=ScoringOptions.official().with_(tolerant_json=True)``.

Formulas (both modes; ROUGE = ROUGE-L F, EM = exact tool-name match, golden items whose thought / tool is the string
``'None'`` do not count):

* Planning_t   = max_g EM · ROUGE(thought_g, thought_t)
* Tool-use_t   = max_g EM · ArgScore(args_g, args_t)
* Reflection_t = max_g (1 − P_g) · (0.3 · EM · ROUGE(thought) + 0.7 · EM · ArgScore),
  P_g = 1 when golden item g repeats ``memory_last_task`` (same tool name and args)
* Concluding_t = max_g ROUGE(golden_result_g, answer_t);  Profile_q = max_g ROUGE(golden_g, answer_q)
* each ability = mean over records of (mean over that record's templates); reported × 100
* Overall = 0.25·Planning + 0.35·Tool-use + 0.10·Reflection + 0.20·Concluding + 0.10·Profile

Where the official script stops with an error (whitespace-only text, ``max([])``, ...), both modes score 0 and add a
:class:`ScoreNote` (compat mode also warns). An ability with no record is ``None`` ("n/a"), never NaN; an empty
benchmark, a benchmark id without prediction and a prediction id not in the benchmark are errors (the official
script stops on the last two as well). BLEU (nltk, smoothed, regex tokens) is an extra column, not in Overall.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labkit.errors import DataFileError
from labkit.evaluate import kagentbench as kb
from labkit.evaluate.differences import FLAGS, ScoringOptions, resolve_options
from labkit.evaluate.kagentbench import NONE, OfficialCrash, Step
from labkit.evaluate.rouge import MAX_TEXT_CHARS, bleu, rouge_l, tokenize, too_long
from labkit.jsonl import iter_jsonl
from labkit.parsing import clean_tool_name, first_parameter, read_json_object, strip_tail, strip_thought_label
from labkit.records import RECORD_TYPES, load_benchmark  # noqa: F401  (RECORD_TYPES: part of this module's API)
from labkit.types import ParseError

DIMENSIONS: tuple[str, ...] = ("Planning", "Tool-use", "Reflection", "Concluding", "Profile")
WEIGHTS: dict[str, float] = dict(kb.WEIGHTS)
# KAgentBench's prompt_input keys -> labkit.parsing output formats
KAGENTBENCH_FORMATS: dict[str, str] = {"ReACT": "react", "AutoGPT": "autogpt", "ToolLlama": "toolllama",
                                       "ModelScope": "modelscope", "KuaiAgent": "task_json", "Kuaiagent": "task_json"}
TYPE_DIMENSIONS: dict[str, tuple[str, ...]] = {"plantooluse": ("Planning", "Tool-use"), "reflextion": ("Reflection",),
                                               "conclusion": ("Concluding",), "profile": ("Profile",)}
INFO_NOTES: dict[str, str] = {
    "reused_parse": "an empty ReACT output or an unknown template key was scored with the previous template's parse",
    "duplicate_id": "an id appears twice in a file; its last line is used (first position kept)",
    "type_mismatch": "the prediction line's type differs from the benchmark's; the benchmark's is used",
}
repeats_last_task = kb.repeats_last_task


def output_format_of(record: Mapping[str, Any], template: str) -> str:
    """The output format a record's template asks for (our ``output_formats`` field, else KAgentBench's key name)."""
    formats = record.get("output_formats") or {}
    if template in formats:
        return str(formats[template])
    if record.get("type") == "conclusion" and template in ("KuaiAgent", "Kuaiagent"):
        return "conclusion"
    if template in KAGENTBENCH_FORMATS:
        return KAGENTBENCH_FORMATS[template]
    if record.get("type") in ("conclusion", "profile"):
        return "conclusion"
    from labkit.parsing import detect_format
    prompts = record.get("prompt_input")
    return detect_format(str(prompts.get(template, "")) if isinstance(prompts, Mapping) else "")


def parser_for(record: Mapping[str, Any], template: str, options: ScoringOptions) -> str | None:
    """Which official parser reads this template: its own name, else our ``output_formats``; None = unknown key."""
    if template in kb.PARSER_KEYS:
        return template
    fmt = (record.get("output_formats") or {}).get(template)
    if fmt in kb.FORMAT_PARSERS:
        return kb.FORMAT_PARSERS[fmt]
    if isinstance(fmt, str) and _declared(fmt):
        return fmt  # a format declared in a template file: no official parser; read by its own format object
    if options.no_parse_reuse:
        return kb.FORMAT_PARSERS.get(output_format_of(record, template), "conclusion")
    return None


def _declared(fmt: str) -> bool:
    from labkit.errors import UnknownNameError
    from labkit.formats import get_format

    try:
        return get_format(fmt).declared
    except UnknownNameError:
        return False


# ---------------------------------------------------------------- reading one planning output

_LENIENT_MARKERS = [(re.compile(r"\baction[ \t]*input[ \t]*:", re.IGNORECASE), "Action Input:"),
                    (re.compile(r"\baction[ \t]*:", re.IGNORECASE), "Action:"),
                    (re.compile(r"\bfinal[ \t]*answer[ \t]*:", re.IGNORECASE), "Final Answer:"),
                    (re.compile(r"\bthought[ \t]*:", re.IGNORECASE), "Thought:"),
                    (re.compile(r"\bobservation[ \t]*:", re.IGNORECASE), "Observation:")]
_REACT_MARK = re.compile(r"Action:|Final Answer:")
_FINAL_ANSWER = re.compile(r"Final Answer:")
_THINK_START, _THINK_END = "<|startofthink|>", "<|endofthink|>"
_JSON_START = ("{", "```")


def _normalise_markers(text: str) -> str:
    for pattern, marker in _LENIENT_MARKERS:
        text = pattern.sub(marker, text)
    return text


def _unquote(raw: str) -> str:
    return raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'" else raw


def _json_object(text: Any, o: ScoringOptions) -> dict[str, Any] | None:
    obj = kb.read_json(text)
    if obj is None and o.tolerant_json and isinstance(text, str):
        found = read_json_object(text)
        obj = found if isinstance(found, dict) else None
    return obj


def _clean_name(step: Step, o: ScoringOptions) -> Step:
    if o.tool_name_cleanup and isinstance(step.tool_name, str) and step.tool_name != NONE:
        step.tool_name = clean_tool_name(step.tool_name) or NONE
    return step


def _has_final_answer(text: str) -> bool:
    mark = _FINAL_ANSWER.search(text)
    return mark is not None and bool(text[mark.end():].strip())


def _finishes(step: Step) -> Step:
    step.tool_name, step.tool_args = "task_complete", {}
    return step


def _react(text: Any, funcs: Sequence[Any], o: ScoringOptions) -> Step:
    step = kb.parse_react(text, funcs)
    if o.react_thought:
        mark = _REACT_MARK.search(text)
        step.thought = strip_thought_label(text[: mark.start()] if mark else text)
    official_name = step.tool_name
    _clean_name(step, o)
    raw = step.action_input
    if official_name != NONE and raw is not None:
        obj = _json_object(raw, o) if o.react_json_input and raw.startswith(_JSON_START) else None
        if obj is not None:
            step.tool_args = obj
        elif o.react_plain_input:
            step.tool_args = {first_parameter(step.tool_name, funcs): _unquote(raw)}
        elif step.tool_name != official_name:  # cleaned name: look its parameter up again, the official way
            key = kb.first_property(step.tool_name, funcs)
            step.tool_args = {key: raw} if key != NONE else {}
    if o.final_answer_task_complete and step.tool_name == NONE and _has_final_answer(text):
        _finishes(step)
    return step


def _toolllama(text: Any, funcs: Sequence[Any], o: ScoringOptions) -> Step:
    step = _clean_name(kb.parse_toolllama(text), o)
    if not isinstance(text, str):
        return step
    if o.toolllama_thought and isinstance(step.thought, list):
        mark = text.find("Action:")
        step.thought = strip_thought_label(text[:mark] if mark != -1 else text)
    raw = step.action_input
    if raw and step.tool_args == {}:
        if raw.startswith(_JSON_START):
            step.tool_args = (_json_object(raw, o) if o.tolerant_json else None) or {}
        elif o.toolllama_plain_input:
            step.tool_args = {first_parameter(step.tool_name, funcs): _unquote(raw)}
    if o.final_answer_task_complete:
        name = step.tool_name
        if isinstance(name, str) and name.lower() == "finish" and step.tool_args.get("return_type") == "give_answer":
            _finishes(step)
        elif name == NONE and _has_final_answer(text):
            _finishes(step)
    return step


def _modelscope(text: Any, o: ScoringOptions) -> Step:
    inner = kb.think_block(text)
    start = text.find(_THINK_START)
    if inner is None and o.modelscope_unterminated and start != -1 and _THINK_END not in text[start:]:
        inner = text[start + len(_THINK_START):].strip()
    step = Step() if inner is None else kb.modelscope_fields(_json_object(inner, o))
    if o.modelscope_thought and start != -1:
        step.thought = text[:start].strip()
    _clean_name(step, o)
    if o.final_answer_task_complete and start == -1 and text.strip():
        _finishes(step)
    return step


def read_step(text: Any, parser: str, funcs: Sequence[Any] = (), options: ScoringOptions | None = None) -> Step:
    """One planning output -> :class:`Step` (official parse + the labkit rules switched on).

    ``parser`` is an official key (``ReACT``, ``AutoGPT``, ``ToolLlama``, ``ModelScope``, ``KuaiAgent``) or
    ``conclusion``. Raises :class:`OfficialCrash` where the official parser itself raises.
    """
    o = options if options is not None else ScoringOptions.labkit()
    if parser in ("ReACT", "ToolLlama") and o.lenient_markers and isinstance(text, str):
        text = _normalise_markers(text)
    if parser == "ReACT":
        return _react(text, funcs, o)
    if parser == "ToolLlama":
        return _toolllama(text, funcs, o)
    if parser == "ModelScope":
        return _modelscope(text, o)
    if parser in ("AutoGPT", "KuaiAgent"):
        fields_of = kb.autogpt_fields if parser == "AutoGPT" else kb.kuaiagent_fields
        return _clean_name(fields_of(_json_object(text, o)), o)
    if parser != "conclusion" and _declared(parser):
        return _declared_step(text, parser, funcs, o)
    step = Step(thought="")  # a planning template whose prompt asks for a plain answer
    if o.final_answer_task_complete and isinstance(text, str) and text.strip():
        _finishes(step)
    return step


def _declared_step(text: Any, fmt: str, funcs: Sequence[Any], o: ScoringOptions) -> Step:
    """A declared format's output, read by its format object (the official script has no parser for it)."""
    from labkit.formats import get_format

    res = get_format(fmt).parse(text, list(funcs) or None)
    if isinstance(res, ParseError):
        return Step()
    if res.call is not None:
        return _clean_name(Step(res.thought, res.call.name, dict(res.call.args)), o)
    step = Step(thought=res.thought)
    return _finishes(step) if res.final_answer is not None and o.final_answer_task_complete else step


_TOOLLLAMA_ANSWER = '"final_answer": "'


def planning_steps(record: Mapping[str, Any], predict: Any,
                   options: ScoringOptions | None = None) -> list[tuple[str, Step]]:
    """``(template, Step)`` for each template output of a planning record (plantooluse / reflextion), read exactly
    as the scorer reads it under ``options`` (default: labkit's mode) — what a failure analysis must look at."""
    scorer = _Scorer(options if options is not None else ScoringOptions.labkit())
    scorer.where = (str(record.get("id", "")), "")
    return scorer.steps(record, scorer.templates(record, predict))


def read_conclusion(text: object, output_format: str) -> str:
    """labkit's answer extraction (switch ``answer_extraction``): the answer text of a concluding output ('' when
    the model called a tool instead of answering)."""
    import json

    s = "" if text is None else (json.dumps(text, ensure_ascii=False) if isinstance(text, dict) else str(text))
    s = s.strip()
    if not s:
        return ""
    if output_format == "autogpt":  # KAgentBench's cleaning
        if "web_search(" in s:
            return ""
        if 'response="' in s:
            return s.split('response="', 1)[1].removesuffix('")').strip()
    if output_format == "toolllama" and _TOOLLLAMA_ANSWER in s:
        return s.split(_TOOLLLAMA_ANSWER, 1)[1].replace('"', "").replace("}", "").strip()
    if output_format in ("conclusion", "", None):
        return s
    from labkit.parsing import parse_output
    from labkit.types import ParsedAction

    res = parse_output(s, output_format)
    if isinstance(res, ParsedAction):
        if res.final_answer is not None:
            return res.final_answer.strip()
        if res.call is not None and res.call.name == "task_complete":
            args = res.call.args
            return str(args.get("response") or args.get("reason") or "").strip()
        if res.call is not None:
            return ""
    return s


# ---------------------------------------------------------------- report types

@dataclass
class ScoreRow:
    id: str
    type: str
    template: str
    tag: str            # "seen" / "unseen" template (our benchmark), "" when unknown
    dimension: str
    score: float        # 0..1, the official per-template value in compat mode
    bleu: float | None  # 0..1, None where BLEU does not apply (Tool-use)


@dataclass(frozen=True)
class ScoreNote:
    id: str
    template: str
    code: str    # a key of kagentbench.CRASH_POINTS (scored 0 where the official script stops) or of INFO_NOTES
    detail: str


@dataclass
class ScoreReport:
    rows: list[ScoreRow]
    dimensions: dict[str, float | None]  # 0..100; None ("n/a") when the benchmark has no record of that type
    overall: float | None                # 0..100; None when it cannot be computed
    bleu: dict[str, float]               # 0..100 per text ability that has records
    queries: dict[str, int]              # scored records per ability
    notes: list[ScoreNote] = field(default_factory=list)
    options: ScoringOptions = field(default_factory=ScoringOptions)

    @property
    def complete(self) -> bool:
        return all(self.queries.get(d, 0) > 0 for d in DIMENSIONS)

    @property
    def mode(self) -> str:
        return "kagentbench" if self.options.is_official else ("labkit" if self.options == ScoringOptions() else
                                                               "custom")

    def summary(self) -> dict[str, float | None]:
        """Abilities and Overall in percent, 2 decimals; None = n/a (no record of that type)."""
        r = lambda v: None if v is None else round(v, 2)  # noqa: E731
        return {**{d: r(self.dimensions.get(d)) for d in DIMENSIONS}, "Overall": r(self.overall)}

    def official_line(self) -> str:
        """``plan : X, tooluse : X, reflextion : X, conclusion : X, profile : X, overall : X`` (as the script prints)."""
        return kb.format_line(self.dimensions, self.overall)

    def crash_counts(self) -> Counter[str]:
        """Notes where the official script would have stopped with an error (scored 0 instead), by code."""
        return Counter(n.code for n in self.notes if n.code in kb.CRASH_POINTS)

    def note_counts(self) -> Counter[str]:
        return Counter(n.code for n in self.notes)

    def to_frame(self) -> Any:
        import pandas as pd
        return pd.DataFrame([asdict(r) for r in self.rows])


# ---------------------------------------------------------------- scoring

class _Scorer:
    """Scores records under one set of options, collecting notes."""

    def __init__(self, options: ScoringOptions):
        self.o = options
        self.notes: list[ScoreNote] = []
        self.where = ("", "")

    def note(self, code: str, detail: str) -> None:
        self.notes.append(ScoreNote(self.where[0], self.where[1], code, detail))

    def crash(self, crash: OfficialCrash) -> None:
        self.note(crash.code, crash.detail)

    def rouge(self, label: Any, predict: Any) -> float:
        a, b = str(label), str(predict)
        if a == "" or b == "":
            return 0.0
        if too_long(a, b):
            self.note("too_long", f"a text of {max(len(a), len(b))} characters is not compared (at most "
                      f"{MAX_TEXT_CHARS}): ROUGE-L 0")
            return 0.0
        if not tokenize(a, self.o.tokenizer) or not tokenize(b, self.o.tokenizer):
            self.note("empty_tokens", f"no tokens in {(a if not a.strip() else b)!r:.40}")
            return 0.0
        return rouge_l(b, a, tokenizer=self.o.tokenizer, exact=self.o.exact_rouge)

    def templates(self, record: Mapping[str, Any], predict: Any) -> list[tuple[str, Any]]:
        if self.o.benchmark_templates:
            outputs = predict if isinstance(predict, Mapping) else {}
            prompts = record.get("prompt_input")
            keys = list(prompts) if isinstance(prompts, Mapping) and prompts else list(outputs)
            return [(k, outputs.get(k, "")) for k in keys]
        if not isinstance(predict, Mapping):
            self.note("bad_output_type", f"model_predict is {type(predict).__name__}, not an object")
            return []
        return list(predict.items())

    def output(self, text: Any) -> Any:
        return strip_tail(text) if self.o.cut_end_markers and isinstance(text, str) else text

    def steps(self, record: Mapping[str, Any], items: list[tuple[str, Any]]) -> list[tuple[str, Step]]:
        out, previous = [], None
        funcs = record.get("funcs") or []
        for key, text in items:
            self.where = (self.where[0], key)
            parser = parser_for(record, key, self.o)
            text = self.output(text)
            if not self.o.no_parse_reuse and kb.reuses_previous(parser, text):
                if previous is None:
                    self.note("no_previous_parse", "nothing to reuse: the first template is an empty ReACT output "
                                                   "or an unknown key")
                    step = Step()
                else:
                    self.note("reused_parse", INFO_NOTES["reused_parse"])
                    step = previous
            else:
                try:
                    step = read_step(text, parser or "conclusion", funcs, self.o)
                except OfficialCrash as crash:
                    self.crash(crash)
                    step = Step()
            out.append((key, step))
            previous = step
        return out

    def plan_bleu(self, golden: Sequence[Mapping[str, Any]], step: Step) -> float:
        return max((bleu(str(step.thought), [g["thought"]]) if step.tool_name == g.get("tool_name") else 0.0
                    for g in kb.eligible(golden, need_thought=True)), default=0.0)

    def record(self, record: Mapping[str, Any], predict: Any) -> list[ScoreRow]:
        rid, typ = str(record["id"]), str(record["type"])
        self.where = (rid, "")
        tags = record.get("template_tags") or {}
        golden = list(record.get("golden_result_list") or [])
        row = lambda template, dim, score, b: ScoreRow(rid, typ, template, str(tags.get(template, "")), dim,  # noqa
                                                       score, b)
        if typ == "profile":
            self.where = (rid, "profile")
            return [row("profile", "Profile", *self.answer(self.output(predict), kb.golden_answers(record),
                                                           dumps=False))]
        items = self.templates(record, predict)
        if not items:
            self.note("no_templates", "no template output to average over")
            return [row("", dim, 0.0, None if dim == "Tool-use" else 0.0) for dim in TYPE_DIMENSIONS[typ]]
        if typ == "conclusion":
            rows = []
            for key, text in items:
                self.where = (rid, key)
                rows.append(row(key, "Concluding", *self.answer(self.conclusion(record, key, self.output(text)),
                                                                kb.golden_answers(record))))
            return rows
        rows = []
        for key, step in self.steps(record, items):
            self.where = (rid, key)
            if typ == "plantooluse":
                rows.append(row(key, "Planning", kb.plan_metric(golden, step, self.rouge), self.plan_bleu(golden, step)))
                try:
                    tool = kb.tool_metric(golden, step, self.rouge, empty_gold_matches=self.o.empty_gold_args)
                except OfficialCrash as crash:
                    self.crash(crash)
                    tool = 0.0
                rows.append(row(key, "Tool-use", tool, None))
            else:
                try:
                    score = kb.reflection_metric(golden, step, record.get("memory_last_task"), self.rouge,
                                                 empty_gold_matches=self.o.empty_gold_args, on_crash=self.crash)
                except OfficialCrash as crash:
                    self.crash(crash)
                    score = 0.0
                rows.append(row(key, "Reflection", score, self.plan_bleu(golden, step)))
        return rows

    def conclusion(self, record: Mapping[str, Any], key: str, text: Any) -> Any:
        if self.o.answer_extraction:
            return read_conclusion(text, output_format_of(record, key))
        try:
            return kb.clean_conclusion(parser_for(record, key, self.o), text)
        except OfficialCrash as crash:
            self.crash(crash)
            return ""

    def answer(self, answer: Any, golden: list[Any], *, dumps: bool = True) -> tuple[float, float]:
        answer = kb.answer_text(answer) if dumps else answer  # a dict profile answer is scored as its str()
        try:
            score = kb.best_answer_score(answer, golden, self.rouge)
        except OfficialCrash as crash:
            self.crash(crash)
            score = 0.0
        return score, (bleu(str(answer), [str(g) for g in golden]) if answer != "" and golden else 0.0)


def _unique(records: Iterable[Mapping[str, Any]], scorer: _Scorer, what: str) -> dict[str, Mapping[str, Any]]:
    """id -> record; a repeated id keeps its first position and its last line (the official script's dicts)."""
    out: dict[str, Mapping[str, Any]] = {}
    for rec in records:
        rid = str(rec["id"])
        if rid in out:
            scorer.where = (rid, "")
            scorer.note("duplicate_id", f"id repeated in the {what}; last line used")
        out[rid] = rec
    return out


def _aggregate(rows: list[ScoreRow], attr: str) -> tuple[dict[str, float | None], dict[str, int]]:
    """Per ability: mean over records of the mean over their templates (unscaled, in row order); None if none."""
    per: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        value = getattr(r, attr)
        if value is not None:
            per.setdefault(r.dimension, {}).setdefault(r.id, []).append(value)
    means = {d: kb.mean([kb.mean(v) for v in per[d].values()]) if per.get(d) else None for d in DIMENSIONS}
    return means, {d: len(per.get(d, {})) for d in DIMENSIONS}


def overall(dimensions: Mapping[str, float | None]) -> float | None:
    """Weighted sum of the abilities present (weights renormalised when some are missing); None when none is."""
    present = {d: v for d, v in dimensions.items()
               if d in WEIGHTS and v is not None and not (isinstance(v, float) and math.isnan(v))}
    if len(present) == len(WEIGHTS):
        return kb.overall(present)
    total = sum(WEIGHTS[d] for d in present)
    return sum(WEIGHTS[d] * v for d, v in present.items()) / total if total else None


def score_predictions(benchmark: Sequence[Mapping[str, Any]], predictions: Sequence[Mapping[str, Any]], *,
                      compat: str | None = None, options: ScoringOptions | None = None,
                      source: str | Path = "<predictions>", benchmark_source: str | Path = "<benchmark>",
                      lines: Sequence[int] | None = None) -> ScoreReport:
    """Score predictions (benchmark records + ``model_predict``) joined to the benchmark by ``id``.

    ``compat="kagentbench"``: the official script's numbers; default: labkit's own mode; ``options``: any mix of the
    switches. Raises :class:`DataFileError` for an empty benchmark, a benchmark id with no prediction and a
    prediction id the benchmark lacks (``lines``: the predictions' line numbers, for the message).
    """
    o = resolve_options(compat, options)
    scorer = _Scorer(o)
    if not benchmark:
        raise DataFileError(benchmark_source, "the benchmark has no records: nothing to score")
    bench, preds = _unique(benchmark, scorer, "benchmark"), _unique(predictions, scorer, "predictions")
    missing = [i for i in bench if i not in preds]
    if missing:
        raise DataFileError(source, f"{len(missing)} benchmark ids have no prediction (first: {missing[0]!r})",
                            field="id")
    extra = [(n, str(p["id"])) for n, p in enumerate(predictions) if str(p["id"]) not in bench]
    if extra:
        n, first = extra[0]
        raise DataFileError(source, f"{len(extra)} prediction ids are not in the benchmark (first: {first!r})",
                            line=lines[n] if lines is not None and n < len(lines) else None, field="id")
    rows: list[ScoreRow] = []
    for rid in (bench if o.benchmark_templates else preds):
        pred = preds[rid]
        if "type" in pred and pred["type"] != bench[rid]["type"]:
            scorer.where = (rid, "")
            scorer.note("type_mismatch", f"prediction type {pred['type']!r}, benchmark {bench[rid]['type']!r}")
        rows.extend(scorer.record(bench[rid], pred.get("model_predict")))
    means, counts = _aggregate(rows, "score")
    dims = {d: None if v is None else v * 100 for d, v in means.items()}
    if all(v is not None for v in means.values()):
        total: float | None = kb.overall(means) * 100  # type: ignore[arg-type]
    elif o.renormalise_overall:
        total = overall(dims)
    else:
        total = None
        scorer.where = ("", "")
        for d in DIMENSIONS:
            if means[d] is None:
                scorer.note("missing_dimension", f"no record scores {d}: it and Overall are n/a")
    bleus, _ = _aggregate(rows, "bleu")
    report = ScoreReport(rows, dims, total, {d: v * 100 for d, v in bleus.items() if d != "Tool-use" and v is not None},
                         counts, scorer.notes, o)
    crashes = report.crash_counts()
    if compat is not None and crashes:
        warnings.warn(f"{sum(crashes.values())} places where the official KAgentBench script would stop with an "
                      f"error were scored 0 instead: {dict(crashes)} (see ScoreReport.notes)", stacklevel=2)
    return report


def load_predictions(path: str | Path, *, with_lines: bool = False) -> Any:
    """Read a KAgentBench-layout predictions file, checking ``id`` and ``model_predict`` per line.

    As lenient as the official script: a profile prediction may be any JSON value (it is scored as ``str()``);
    a non-profile ``model_predict`` must be an object. ``with_lines``: also return each record's line number.
    """
    out, lines = [], []
    for line, rec in iter_jsonl(path):
        if not isinstance(rec.get("id"), (str, int)):
            raise DataFileError(path, "missing or non-string id", line=line, field="id")
        if "model_predict" not in rec:
            raise DataFileError(path, "missing model_predict", line=line, field="model_predict")
        if rec.get("type", "profile") != "profile" and not isinstance(rec["model_predict"], dict):
            raise DataFileError(path, f"expected an object {{template: output}}, got "
                                f"{type(rec['model_predict']).__name__}", line=line, field="model_predict")
        out.append(rec)
        lines.append(line)
    return (out, lines) if with_lines else out


def score_files(benchmark_path: str | Path, predictions_path: str | Path, *, compat: str | None = None,
                options: ScoringOptions | None = None) -> ScoreReport:
    """Score a predictions JSONL against a benchmark JSONL (ours or the public KAgentBench file)."""
    preds, lines = load_predictions(predictions_path, with_lines=True)
    return score_predictions(load_benchmark(benchmark_path), preds, compat=compat, options=options,
                             source=predictions_path, benchmark_source=benchmark_path, lines=lines)


def compare_modes(benchmark: Sequence[Mapping[str, Any]], predictions: Sequence[Mapping[str, Any]]) -> Any:
    """Abilities and Overall (percent) in labkit's mode and in compat mode, one row each ('n/a': no record)."""
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = pd.DataFrame({"labkit": score_predictions(benchmark, predictions).summary(),
                              "kagentbench": score_predictions(benchmark, predictions, compat="kagentbench").summary()}
                             ).T
    return _na(table)


def _na(table: Any) -> Any:
    """Missing values shown as 'n/a' (pandas would show None as NaN)."""
    return table.astype(object).where(table.notna(), "n/a")


def difference_effects(benchmark: Sequence[Mapping[str, Any]], predictions: Sequence[Mapping[str, Any]],
                       switches: Sequence[str] = FLAGS) -> Any:
    """What each switch of the difference table does to the scores (percentage points), as a DataFrame.

    Columns: each ability and Overall for *official + this switch alone* minus official, and ``Overall if dropped``
    = labkit minus *labkit without this switch*. The last rows: the whole gap (labkit − official) and the sum of the
    single-switch effects (the rest is interaction between switches). 'n/a' where a value cannot be computed (an
    official Overall needs all five abilities).
    """
    import pandas as pd

    def run(o: ScoringOptions) -> dict[str, float | None]:
        return score_predictions(benchmark, predictions, options=o).summary()

    def diff(a: dict[str, float | None], b: dict[str, float | None]) -> dict[str, float | None]:
        return {k: None if a[k] is None or b[k] is None else round(a[k] - b[k], 2) for k in a}  # type: ignore

    base, full = run(ScoringOptions.official()), run(ScoringOptions.labkit())
    rows = {}
    for flag in switches:
        alone = diff(run(ScoringOptions.official().with_(**{flag: True})), base)
        dropped = diff(full, run(ScoringOptions.labkit().with_(**{flag: False})))
        rows[flag] = {**alone, "Overall if dropped": dropped["Overall"]}
    gap = diff(full, base)
    rows["(all: labkit − official)"] = {**gap, "Overall if dropped": gap["Overall"]}
    summed = {k: round(sum(r[k] or 0.0 for f, r in rows.items() if f in switches), 2) for k in gap}
    rows["(sum of single switches)"] = {**summed, "Overall if dropped": round(sum(
        rows[f]["Overall if dropped"] or 0.0 for f in switches), 2)}
    return _na(pd.DataFrame(rows).T)
