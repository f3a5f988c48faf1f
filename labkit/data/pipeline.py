"""``build_dataset``: the whole training-data stage, from the query bank to train.jsonl, in one call.

query bank -> dedup -> split (held-out clusters + templates + output-format families) -> teacher labelling (cached,
resumable) -> filters -> human decisions -> per-step samples -> PII anonymisation -> exact dedup -> step-position
balance -> Agent:General mix -> export + stats.

The stages are public so that notebook 03 performs them one by one with the same code: :func:`split_query_bank`
(clean + split the bank), :func:`mode_jobs` (query x tools x template jobs), ``label_jobs``, ``check_record``,
``apply_decisions``, ``agent_samples`` / ``anonymize_samples`` / ``dedup_samples`` (:mod:`labkit.data.samples`),
``balance_steps``, :func:`split_general` and ``mix``. :func:`build_dataset` is exactly that sequence plus the exports and statistics.

The data levers of the mode's ``data`` section (:data:`LEVER_DEFAULTS`, all off when absent): ``meta_templates``
(Meta-Agent Tuning: the share of template slots labelled with the Meta-Agent's kept templates, given as
``template_dirs``), ``held_out_formats`` (output-format families no training template may use: the evaluation's
"held-out format" group), ``step_balance`` (:mod:`labkit.data.balance`) and ``general_turns`` (general samples as
conversations of that many exchanges, :func:`labkit.data.mix.mix`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from labkit.data import stats as st
from labkit.data.balance import balance_steps
from labkit.data.convert import to_kagentinstruct
from labkit.data.dedup import NEAR_DUP_THRESHOLD, DedupResult, cross_duplicates, deduplicate
from labkit.data.export import to_hf_dataset, write_training_set
from labkit.data.filters import Verdict, check_record, rejection_table
from labkit.data.label import LabelJob, label_jobs, load_failures, load_labelled, plan_jobs
from labkit.data.mix import MAX_GENERAL_TURNS, mix
from labkit.data.queries import load_general, load_queries
from labkit.data.review import apply_decisions, load_decisions
from labkit.data.samples import agent_samples, anonymize_samples, dedup_samples
from labkit.data.split import QuerySplit, held_out_format_check, leakage_report, split_queries, split_templates
from labkit.errors import LabkitError
from labkit.jsonl import write_jsonl
from labkit.modes import DataSettings, load_settings, mode_path, mode_section
from labkit.paths import runs_dir
from labkit.records import GeneralItem, LabelledRecord, Query
from labkit.templates import AgentTemplate, list_templates, load_templates, templates_in
from labkit.tools import ToolRegistry, default_registry

Mode = str  # a configs/<mode>.yaml name: "smoke", "course", ...
# Held out for the test set: two Meta-Agent-style planning templates and one conclusion template ("unseen").
DEFAULT_TEST_TEMPLATES = ("meta_xml_en", "meta_roleplay_zh", "meta_conclusion_brief_en")
# The data levers (issue 19): optional keys, off when absent. See configs/course.yaml for what each one does.
LEVER_DEFAULTS: dict[str, Any] = DataSettings.lever_defaults()


def train_max_len(mode: str) -> int | None:
    """The ``train.max_len`` of the mode's config (what stats.json checks every sample against), if it sets one."""
    value = mode_section(mode, "train").get("max_len")  # one key of the trainer's section (stages never import train)
    return int(value) if value else None


def data_settings(mode: str, overrides: dict[str, Any] | None = None) -> DataSettings:
    """The ``data`` section of ``configs/<mode>.yaml`` as :class:`~labkit.modes.DataSettings` (the levers off when
    absent), then ``overrides`` (same keys, applied as given); unknown keys and bad values raise
    :class:`~labkit.errors.DataFileError` naming the file, the line and ``data.<key>``."""
    cfg = load_settings(DataSettings, mode, "data", overrides)
    _check_levers(cfg, mode_path(mode), overridden=set(overrides or {}))
    return cfg


def _check_levers(cfg: DataSettings, path: Path, overridden: set[str]) -> None:
    from labkit.errors import DataFileError
    from labkit.formats import format_families

    def bad(key: str, msg: str) -> DataFileError:
        return DataFileError(path, msg + (" (given as an override)" if key in overridden else ""), field=f"data.{key}")

    if not 0 <= cfg.meta_templates <= 1:
        raise bad("meta_templates", f"expected a share between 0 and 1, got {cfg.meta_templates!r}")
    if not all(isinstance(h, str) for h in cfg.held_out_formats):
        raise bad("held_out_formats", f"expected a list of format families, got {cfg.held_out_formats!r}")
    allowed = [f for f in format_families() if f != "builtin:conclusion"]
    for h in cfg.held_out_formats:
        if h not in allowed:
            raise bad("held_out_formats", f"unknown planning format family {h!r}; known: {', '.join(allowed)}")
    if cfg.step_balance is not None and cfg.step_balance <= 0:
        raise bad("step_balance", f"expected null (off) or a positive call : finish ratio, got {cfg.step_balance!r}")
    if cfg.general_turns is not None and not 1 <= cfg.general_turns <= MAX_GENERAL_TURNS:
        raise bad("general_turns", f"expected null (off) or 1 to {MAX_GENERAL_TURNS} exchanges per general "
                                   f"conversation, got {cfg.general_turns!r}")


@dataclass
class BuildResult:
    out_dir: Path
    stats: dict[str, Any]
    traces: pd.DataFrame            # accepted traces (after review)
    samples: pd.DataFrame           # training samples with token counts
    rejections: pd.DataFrame        # reason -> count table
    verdicts: list[Verdict]
    flagged: list[tuple[LabelledRecord, Verdict]] = field(default_factory=list)

    @property
    def train_path(self) -> Path:
        return self.out_dir / "train.jsonl"

    def plot(self) -> Any:
        return st.plot_overview(self.traces, self.samples, self.rejections)


def _stable(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}\x00{key}".encode()).hexdigest()


def _take(items: list[Query], n: int | None, seed: int) -> list[Query]:
    if n is None or n >= len(items):
        return items
    return sorted(items, key=lambda q: _stable(seed, q["id"]))[:n]


@dataclass
class QuerySelection:
    """The cleaned bank and its split: ``train`` / ``test`` are the queries this mode labels / holds out."""

    bank: list[Query]
    bank_dd: DedupResult[Query]
    split: QuerySplit
    train: list[Query]
    test: list[Query]


def split_query_bank(mode: Mode = "smoke", *, seed: int = 0, test_fraction: float = 0.2,
                   split_by: Literal["cluster", "query"] = "query", queries_path: str | Path | None = None,
                   registry: ToolRegistry | None = None) -> QuerySelection:
    """Load the query bank, drop exact/near duplicates, and hold out test queries *before* any labelling (so no
    test query's answer is ever generated for training); smoke mode then takes a small, seeded subset."""
    cfg = data_settings(mode)
    registry = registry or default_registry()
    bank = load_queries(queries_path, tool_names=registry.names())
    bank_dd = deduplicate(bank, text=lambda q: q["query"], key=lambda q: q["id"])
    split = split_queries(bank_dd.kept, test_fraction=test_fraction, seed=seed, by=split_by)
    return QuerySelection(bank, bank_dd, split, _take(split.train, cfg.train_queries, seed),
                          _take(split.test, cfg.test_queries, seed))


@dataclass
class TemplateSplit:
    """Which templates a build labels and which it holds out. ``train_planning`` are the hand-written (repo)
    training templates, ``meta_planning`` the Meta-Agent's kept templates it labels too (``meta_templates`` > 0),
    ``format_planning`` every candidate whose output-format family is held out (``held_out_formats``): test only."""

    train_planning: list[str]
    test_planning: list[str]
    train_conclusion: list[str]
    test_conclusion: list[str]
    meta_planning: list[str] = field(default_factory=list)
    format_planning: list[str] = field(default_factory=list)

    @property
    def train(self) -> list[str]:
        return self.train_planning + self.meta_planning + self.train_conclusion

    @property
    def test(self) -> list[str]:
        return self.test_planning + self.format_planning + self.test_conclusion

    @property
    def groups(self) -> dict[str, list[str]]:
        """The evaluation's template groups: ``seen`` (hand-written, trained), ``meta`` (Meta-Agent, trained),
        ``unseen`` (held-out templates in trained formats), ``held-out format`` (formats no training template uses)."""
        return {"seen": self.train_planning + self.train_conclusion, "meta": self.meta_planning,
                "unseen": self.test_planning + self.test_conclusion, "held-out format": self.format_planning}


def choose_templates(test_templates: Sequence[str] | None, only: Sequence[str] | None, *,
                     meta: Sequence[AgentTemplate] = (), meta_share: float = 0.0,
                     held_out_formats: Sequence[str] = ()) -> TemplateSplit:
    """The template split. Hand-written candidates: every template found by name (data/templates, then the
    template search path) that is not one of ``meta``; ``only`` narrows the planning ones. ``meta``: the
    Meta-Agent's kept templates, labelled when ``meta_share`` > 0. A planning template (either kind) whose format
    family is in ``held_out_formats`` is never labelled: it goes to ``format_planning``."""
    meta_names = {t.name for t in meta}
    tmpls = [t for t in load_templates(list_templates()) if t.name not in meta_names]
    planning = [t.name for t in tmpls if t.kind == "planning"]
    conclusion = [t.name for t in tmpls if t.kind == "conclusion"]
    held = list(test_templates) if test_templates is not None else [n for n in DEFAULT_TEST_TEMPLATES
                                                                    if n in planning + conclusion]
    train_p, test_p = split_templates(planning, [h for h in held if h in planning or h not in conclusion])
    train_c, test_c = split_templates(conclusion, [h for h in held if h in conclusion])
    if only is not None:
        train_p = [n for n in only if n in train_p]
    family = {t.name: t.format.family for t in [*tmpls, *meta]}
    out_of_format = [n for n in train_p if family[n] in held_out_formats]
    meta_p = [t.name for t in meta if t.kind == "planning"]
    ts = TemplateSplit([n for n in train_p if n not in out_of_format], test_p, train_c, test_c,
                       format_planning=out_of_format + [n for n in meta_p if family[n] in held_out_formats])
    if not ts.train_planning:
        raise LabkitError(f"every training template is in a held-out format family ({list(held_out_formats)}): "
                          "take one out of the data.held_out_formats setting")
    if meta_share > 0:
        ts.meta_planning = [n for n in meta_p if n not in ts.format_planning]
    return ts


def meta_templates_from(template_dirs: Sequence[str | Path] | None) -> list[AgentTemplate]:
    """The templates in the given folders (the Meta-Agent's kept ones; :func:`labkit.templates.templates_in`)."""
    return [t for d in template_dirs or () for t in templates_in(d)]


def mode_jobs(mode: Mode, train_queries: Sequence[Query], *, seed: int = 0,
              test_templates: Sequence[str] | None = None, templates: Sequence[str] | None = None,
              templates_per_query: int | None = None, registry: ToolRegistry | None = None,
              template_dirs: Sequence[str | Path] | None = None,
              overrides: dict[str, Any] | None = None) -> tuple[list[LabelJob], TemplateSplit]:
    """The labelling jobs of a mode — each (query, planning template) with its tool set (gold + distractors) —
    and the template split (held-out templates are never labelled). ``template_dirs``: folders of the
    Meta-Agent's kept templates (notebook 04); the ``meta_templates`` setting is the share of template slots they
    get, ``held_out_formats`` keeps their (and any) templates of those format families out of training."""
    cfg = data_settings(mode, overrides)
    meta = meta_templates_from(template_dirs)
    ts = choose_templates(test_templates, templates or cfg.templates, meta=meta,
                          meta_share=cfg.meta_templates, held_out_formats=cfg.held_out_formats)
    per_query = templates_per_query if templates_per_query is not None else cfg.templates_per_query
    jobs = plan_jobs(train_queries, ts.train_planning, conclusion_templates=ts.train_conclusion,
                     registry=registry or default_registry(), seed=seed, templates_per_query=per_query,
                     meta_templates=[t for t in meta if t.name in ts.meta_planning],
                     meta_share=cfg.meta_templates)
    return jobs, ts


def split_general(general: Sequence[GeneralItem], n_test: int, *,
                  seed: int = 0) -> tuple[list[GeneralItem], list[GeneralItem], DedupResult[GeneralItem]]:
    """``(train, test, dedup)`` of the general SFT pool: deduplicated, ``n_test`` held out for the forgetting
    check, and training items that near-duplicate a test instruction dropped (leakage-free)."""
    gen_dd = deduplicate(general, text=lambda g: g["instruction"] + "\n" + g["output"], key=lambda g: g["id"])
    gen_sorted = sorted(gen_dd.kept, key=lambda g: _stable(seed, g["id"]))
    gen_test, gen_train = gen_sorted[:n_test], gen_sorted[n_test:]
    leaks = cross_duplicates([(g["id"], g["instruction"]) for g in gen_train],
                             [(g["id"], g["instruction"]) for g in gen_test])
    leaked = {p["left"] for p in leaks["exact"] + leaks["near"]}
    return [g for g in gen_train if g["id"] not in leaked], gen_test, gen_dd


def build_dataset(mode: Mode = "smoke", out_dir: str | Path | None = None, teacher: Any = "sandbox:noise=0.15", *,
                  test_templates: Sequence[str] | None = None, templates: Sequence[str] | None = None,
                  test_fraction: float = 0.2, split_by: Literal["cluster", "query"] = "query",
                  agent_general_ratio: float = 5.0, templates_per_query: int | None = None, workers: int = 4,
                  seed: int = 0,
                  decisions_path: str | Path | None = None, price_per_1k_prompt: float = 0.0,
                  price_per_1k_completion: float = 0.0, progress: bool = True,
                  queries_path: str | Path | None = None, general_path: str | Path | None = None,
                  template_dirs: Sequence[str | Path] | None = None,
                  overrides: dict[str, Any] | None = None) -> BuildResult:
    """Build the training set; see the module docstring. Re-running reuses every cached teacher answer.

    ``template_dirs``: folders of the Meta-Agent's kept templates (notebook 04, Meta-Agent Tuning): the
    ``meta_templates`` setting is the share of template slots they get, and those in a ``held_out_formats``
    family become test-only templates. ``overrides``: values for keys of the mode's ``data`` section (the levers:
    ``meta_templates``, ``held_out_formats``, ``step_balance``), checked like the file's."""
    cfg, t0 = data_settings(mode, overrides), time.perf_counter()
    out = Path(out_dir) if out_dir else runs_dir() / "data" / mode
    out.mkdir(parents=True, exist_ok=True)
    registry = default_registry()

    # 1. clean the query bank, then split: held-out queries (before any labelling) and held-out templates.
    sel = split_query_bank(mode, seed=seed, test_fraction=test_fraction, split_by=split_by, queries_path=queries_path,
                         registry=registry)
    bank, bank_dd, split, train_q, test_q = sel.bank, sel.bank_dd, sel.split, sel.train, sel.test
    jobs, ts = mode_jobs(mode, train_q, seed=seed, test_templates=test_templates, templates=templates,
                         templates_per_query=templates_per_query, registry=registry, template_dirs=template_dirs,
                         overrides=overrides)

    # 2. teacher labelling (resumable; cached).
    label_dir = out / "labelling"
    report = label_jobs(jobs, teacher, label_dir, workers=workers, price_per_1k_prompt=price_per_1k_prompt,
                        price_per_1k_completion=price_per_1k_completion, registry=registry, progress=progress)
    wanted = set(report.job_ids)  # this teacher's labels, made with these settings
    records = sorted((r for r in load_labelled(label_dir) if r["job_id"] in wanted), key=lambda r: r["job_id"])
    labelled_ids = {r["job_id"] for r in records}
    failures = [f for f in load_failures(label_dir) if f["job_id"] in wanted]  # a log: retried jobs appear too
    still_failing = sorted({f["job_id"] for f in failures} - labelled_ids)
    if not records:
        first = next((f for f in reversed(failures) if f["job_id"] in still_failing), None)
        why = f"; last error: {first['error_type']}: {first['reason'][:300]}" if first else ""
        raise LabkitError(f"no labelling job succeeded ({len(still_failing)} of {len(jobs)} failed{why}); see "
                          f"{label_dir / 'failures.jsonl'}. Nothing was written; fix the teacher and run again "
                          "(answers already cached are kept).")

    # 3. filters, then saved human decisions.
    by_id = {q["id"]: q for q in train_q}
    verdicts = [check_record(r, by_id[r["query_id"]], registry) for r in records]
    flagged = [(r, v) for r, v in zip(records, verdicts) if v.flagged]
    decisions = load_decisions(decisions_path or out / "decisions.jsonl")
    records, verdicts, review = apply_decisions(records, verdicts, decisions,
                                                lambda r: check_record(r, by_id[r["query_id"]], registry))
    accepted = [r for r, v in zip(records, verdicts) if v.accepted]
    if not accepted:
        codes = Counter(v.reasons[0]["code"] for v in verdicts if v.reasons)
        raise LabkitError(f"the data stage accepted nothing: {len(records)} jobs labelled, 0 accepted (first "
                          f"rejection reasons: {dict(codes.most_common(5))}); nothing was written to {out} (earlier "
                          f"outputs and the cached teacher answers are kept). Look at the teacher's answers in "
                          f"{label_dir / 'labelled.jsonl'}, fix the teacher or the filters, and run again.")

    # 4. samples, anonymised, exact-deduplicated; general data split and mixed in.
    agent = agent_samples(accepted)
    pii = anonymize_samples(agent)
    agent_dd = dedup_samples(agent)
    balanced, balance = balance_steps(agent_dd.kept, cfg.step_balance, seed=seed)
    gen_train, gen_test, gen_dd = split_general(load_general(general_path), cfg.general_test, seed=seed)
    mixed, mix_info = mix(balanced, gen_train, ratio=agent_general_ratio, seed=seed, turns=cfg.general_turns or 1)

    # 5. write everything.
    write_training_set(mixed, out / "train.jsonl")
    to_hf_dataset(mixed).save_to_disk(str(out / "hf_dataset"))
    write_jsonl(out / "train_kagentinstruct.jsonl", to_kagentinstruct(
        [{**s, "tools": [registry.get(n).spec() for n in s["tool_names"]]} for s in agent_dd.kept]))
    write_jsonl(out / "test_queries.jsonl", test_q)
    write_jsonl(out / "general_test.jsonl", gen_test)
    leak = leakage_report(train_q, test_q, train_templates=ts.train, test_templates=ts.test)
    leak["held_out_formats"] = held_out_format_check(mixed, cfg.held_out_formats)
    leak["ok"] = leak["ok"] and leak["held_out_formats"]["ok"]
    leak["general"] = leakage_report([{"id": g["id"], "query": g["instruction"]} for g in gen_train],
                                     [{"id": g["id"], "query": g["instruction"]} for g in gen_test])
    (out / "leakage_report.json").write_text(json.dumps(leak, ensure_ascii=False, indent=2), encoding="utf-8")
    _write_rejections(out / "rejections.csv", records, verdicts)

    found = [t.name for t in meta_templates_from(template_dirs)]
    count, counter_name = st.token_counter()
    traces_df = st.trace_table(accepted)
    samples_df = st.sample_table(mixed, count)
    rej = rejection_table(verdicts)
    noisy = [any(m.get("noise") for m in r.get("teacher_meta", [])) for r in records]
    stats = {
        "mode": mode, "teacher": teacher if isinstance(teacher, str) else teacher.name,
        "teacher_id": report.teacher_id, "seed": seed, "seconds": round(time.perf_counter() - t0, 2),
        "queries": {"bank": len(bank), "bank_duplicates_removed": len(bank_dd.removed), "train_pool": len(split.train),
                    "test_pool": len(split.test), "dropped_for_leakage": len(split.dropped), "train": len(train_q),
                    "test": len(test_q), "test_groups": split.test_groups, "split_by": split_by},
        "train_templates": ts.train, "test_templates": ts.test, "template_groups": ts.groups,
        "template_dirs": [str(Path(d).resolve()) for d in template_dirs or ()],
        "levers": cfg.levers(),
        "meta_templates": {"share": cfg.meta_templates, "found": len(found), "labelled": ts.meta_planning,
                           "held_out_format": [n for n in ts.format_planning if n in found],
                           "unused": [n for n in found if n not in ts.meta_planning + ts.format_planning],
                           "jobs": sum(j.template in ts.meta_planning for j in jobs), "of_jobs": len(jobs)},
        "held_out_format_check": leak["held_out_formats"],
        "step_balance": {k: v for k, v in balance.items() if k not in ("before", "after")},
        "step_actions": {"before": balance["before"], "after": balance["after"]},
        "labelling": {**report.to_dict(), "jobs": len(jobs), "labelled": len(records), "failures": len(still_failing),
                      "failure_log_lines": len(failures)},
        "filters": {"accepted": len(accepted), "rejected": len(records) - len(accepted),
                    "by_reason": {k: int(v) for k, v in rej["samples"].items()},
                    "flagged_for_review": len(flagged), "review": review,
                    "emulator_noise": {"traces_with_injected_noise": sum(noisy),
                                       "of_which_rejected": sum(n and not v.accepted for n, v in zip(noisy, verdicts))}},
        "samples": {"agent": len(balanced), "agent_unique": len(agent_dd.kept), "step_balance_copies": balance["added"],
                    "agent_exact_duplicates_removed": len(agent_dd.removed),
                    "general": mix_info["general"], "total": len(mixed), "mix": mix_info,
                    "general_duplicates_removed": len(gen_dd.removed), "general_test": len(gen_test),
                    "accepted_templates": sorted({s["template"] for s in agent_dd.kept})},
        "pii_replaced": pii, "near_dup_threshold": NEAR_DUP_THRESHOLD, "token_counter": counter_name,
        **st.summarize(traces_df, samples_df, max_len=train_max_len(mode)),
        "files": ["train.jsonl", "hf_dataset/", "train_kagentinstruct.jsonl", "test_queries.jsonl",
                  "general_test.jsonl", "stats.json", "leakage_report.json", "rejections.csv",
                  "labelling/labelled.jsonl", "labelling/failures.jsonl", "labelling/teacher_cache.jsonl"],
    }
    (out / "stats.json").write_text(json.dumps(stats, ensure_ascii=False, indent=2), encoding="utf-8")
    return BuildResult(out, stats, traces_df, samples_df, rej, verdicts, flagged)


def _write_rejections(path: Path, records: Sequence[LabelledRecord], verdicts: Sequence[Verdict]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["job_id", "query_id", "template", "code", "step", "primary", "detail"])
        for r, v in zip(records, verdicts):
            for i, reason in enumerate(v.reasons):
                w.writerow([r["job_id"], r["query_id"], r["template"], reason["code"], reason["step"], i == 0,
                            reason["detail"]])
    tmp.replace(path)
