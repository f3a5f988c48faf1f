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

This module is the API (score_predictions, score_files, load_predictions, compare_modes, difference_effects); its
parts are :mod:`labkit.evaluate.readers` (reading outputs), :mod:`labkit.evaluate.score_report` (report types,
abilities, weights, overall) and :mod:`labkit.evaluate.scoring` (the per-record scorer). Every name stays importable
from here.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from labkit.errors import DataFileError
from labkit.evaluate import kagentbench as kb
from labkit.evaluate.differences import FLAGS, ScoringOptions, resolve_options
from labkit.evaluate.rouge import bleu
from labkit.jsonl import iter_jsonl
from labkit.evaluate.readers import (  # noqa: F401  (this module's API since before the split)
    KAGENTBENCH_FORMATS,
    output_format_of,
    parser_for,
    read_conclusion,
    read_step,
    repeats_last_task,
)
from labkit.evaluate.score_report import (  # noqa: F401
    DIMENSIONS,
    INFO_NOTES,
    TYPE_DIMENSIONS,
    WEIGHTS,
    ScoreNote,
    ScoreReport,
    ScoreRow,
    overall,
)
from labkit.evaluate.scoring import RecordScorer, ability_means, planning_steps, unique_by_id  # noqa: F401
from labkit.records import RECORD_TYPES, load_benchmark  # noqa: F401  (RECORD_TYPES: part of this module's API)
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
    scorer = RecordScorer(o)
    if not benchmark:
        raise DataFileError(benchmark_source, "the benchmark has no records: nothing to score")
    bench, preds = unique_by_id(benchmark, scorer, "benchmark"), unique_by_id(predictions, scorer, "predictions")
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
    means, counts = ability_means(rows, "score")
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
    bleus, _ = ability_means(rows, "bleu")
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
