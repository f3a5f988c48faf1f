"""The per-record scorer behind :func:`labkit.evaluate.scorer.score_predictions`: one record's templates scored under
one set of :class:`~labkit.evaluate.differences.ScoringOptions`, collecting :class:`ScoreNote` s; the ability
means; :func:`planning_steps`, a record's planning steps as the scorer reads them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from labkit.evaluate import kagentbench as kb
from labkit.evaluate.differences import ScoringOptions
from labkit.evaluate.kagentbench import OfficialCrash, Step
from labkit.evaluate.rouge import MAX_TEXT_CHARS, bleu, rouge_l, tokenize, too_long
from labkit.evaluate.readers import output_format_of, parser_for, read_conclusion, read_step
from labkit.evaluate.score_report import DIMENSIONS, INFO_NOTES, TYPE_DIMENSIONS, ScoreNote, ScoreRow
from labkit.parsing import strip_tail


class RecordScorer:
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


def unique_by_id(records: Iterable[Mapping[str, Any]], scorer: RecordScorer, what: str) -> dict[str, Mapping[str, Any]]:
    """id -> record; a repeated id keeps its first position and its last line (the official script's dicts)."""
    out: dict[str, Mapping[str, Any]] = {}
    for rec in records:
        rid = str(rec["id"])
        if rid in out:
            scorer.where = (rid, "")
            scorer.note("duplicate_id", f"id repeated in the {what}; last line used")
        out[rid] = rec
    return out


def ability_means(rows: list[ScoreRow], attr: str) -> tuple[dict[str, float | None], dict[str, int]]:
    """Per ability: mean over records of the mean over their templates (unscaled, in row order); None if none."""
    per: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        value = getattr(r, attr)
        if value is not None:
            per.setdefault(r.dimension, {}).setdefault(r.id, []).append(value)
    means = {d: kb.mean([kb.mean(v) for v in per[d].values()]) if per.get(d) else None for d in DIMENSIONS}
    return means, {d: len(per.get(d, {})) for d in DIMENSIONS}


def planning_steps(record: Mapping[str, Any], predict: Any,
                   options: ScoringOptions | None = None) -> list[tuple[str, Step]]:
    """``(template, Step)`` for each template output of a planning record (plantooluse / reflextion), read exactly
    as the scorer reads it under ``options`` (default: labkit's mode) — what a failure analysis must look at."""
    scorer = RecordScorer(options if options is not None else ScoringOptions.labkit())
    scorer.where = (str(record.get("id", "")), "")
    return scorer.steps(record, scorer.templates(record, predict))
