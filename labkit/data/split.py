"""Train/test splits that generalise: whole query clusters (or queries) and whole templates are held out, and
a leakage report proves no exact or near-duplicate query crosses the split (same MinHash check as dedup)."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from labkit.data.dedup import NEAR_DUP_THRESHOLD, SHINGLE_SIZE, DuplicatePair, cross_duplicates
from labkit.errors import UnknownNameError
from labkit.records import Query, Sample


@dataclass
class QuerySplit:
    train: list[Query]
    test: list[Query]
    test_groups: list[str]  # held-out cluster names (by="cluster") or one query id per held-out paraphrase group
    dropped: list[Query] = field(default_factory=list)  # train queries too close to a test query


class LeakPair(TypedDict, total=False):
    test: str
    train: str
    jaccard: float               # near duplicates only


class FormatCheck(TypedDict):
    """:func:`held_out_format_check`'s answer."""

    families: list[str]
    training_families: list[str]
    templates_in_held_out_families: list[str]
    ok: bool


class _LeakageFields(TypedDict):
    method: str
    threshold: float
    train_queries: int
    test_queries: int
    exact_overlaps: int
    near_overlaps: int
    pairs: list[LeakPair]
    shared_clusters: list[str]
    shared_gold_call_sets: int
    shared_templates: list[str]
    ok: bool


class LeakageReport(_LeakageFields, total=False):
    """:func:`leakage_report`'s answer; the build adds ``held_out_formats`` and the general data's own report
    (``leakage_report.json``)."""

    held_out_formats: FormatCheck
    general: LeakageReport


def gold_signature(q: Query) -> str:
    """Queries with the same non-empty gold calls are paraphrases of one task: they must share a side."""
    calls = q.get("gold_calls") or []
    return json.dumps(calls, sort_keys=True, ensure_ascii=False) if calls else f"id:{q['id']}"


def split_queries(queries: Sequence[Query], *, test_fraction: float = 0.2, seed: int = 0,
                  by: Literal["cluster", "query"] = "query",
                  threshold: float = NEAR_DUP_THRESHOLD) -> QuerySplit:
    """Hold out about ``test_fraction`` of the queries for test.

    ``by="cluster"``: whole clusters go to test (unseen intents). ``by="query"``: within every cluster, whole
    groups of paraphrases (same gold calls) go to test, so test covers every cluster with unseen queries.
    Train queries that are still exact/near duplicates of a test query are then dropped (listed in ``dropped``).
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = random.Random(seed)
    strata: dict[str, dict[str, list[Query]]] = defaultdict(lambda: defaultdict(list))
    for q in queries:
        if by == "cluster":
            strata[""][q["cluster"]].append(q)
        else:
            strata[q["cluster"]][gold_signature(q)].append(q)
    held: set[str] = set()
    test_groups: list[str] = []
    for stratum in sorted(strata):
        groups = strata[stratum]
        names = sorted(groups)
        rng.shuffle(names)
        size = sum(len(g) for g in groups.values())
        target, n_test = max(1, round(test_fraction * size)), 0
        for name in names[:-1]:  # keep at least one group of every stratum for training
            if n_test >= target:
                break
            held.update(q["id"] for q in groups[name])
            test_groups.append(name if by == "cluster" else groups[name][0]["id"])
            n_test += len(groups[name])
    test = [q for q in queries if q["id"] in held]
    train_all = [q for q in queries if q["id"] not in held]
    overlap = cross_duplicates(((q["id"], q["query"]) for q in test), ((q["id"], q["query"]) for q in train_all),
                               threshold=threshold)
    leaking = {p["right"] for p in overlap["exact"] + overlap["near"]}
    dropped = [q for q in train_all if q["id"] in leaking]
    train = [q for q in train_all if q["id"] not in leaking]
    return QuerySplit(train, test, sorted(test_groups), dropped)


def split_templates(names: Sequence[str], holdout: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(train_templates, test_templates)``; every held-out name must exist and at least one must stay for train."""
    for h in holdout:
        if h not in names:
            raise UnknownNameError("template", h, list(names))
    train = [n for n in names if n not in holdout]
    if not train:
        raise ValueError("every template is held out; keep at least one for training")
    return train, list(holdout)


def leakage_report(train: Sequence[dict[str, Any]], test: Sequence[dict[str, Any]], *,
                   train_templates: Sequence[str] = (), test_templates: Sequence[str] = (),
                   threshold: float = NEAR_DUP_THRESHOLD) -> LeakageReport:
    """Exact and near-duplicate query overlaps between train and test (both lists of query records)."""
    pairs = cross_duplicates(((q["id"], q["query"]) for q in test), ((q["id"], q["query"]) for q in train),
                             threshold=threshold)
    train_gold_all = {gold_signature(q) for q in train if q.get("gold_calls")}
    shared_gold = sum(1 for q in test if q.get("gold_calls") and gold_signature(q) in train_gold_all)
    train_clusters = {q.get("cluster") for q in train}
    return {
        "method": f"MinHash LSH on character {SHINGLE_SIZE}-gram shingles, confirmed by exact Jaccard",
        "threshold": threshold,
        "train_queries": len(train),
        "test_queries": len(test),
        "exact_overlaps": len(pairs["exact"]),
        "near_overlaps": len(pairs["near"]),
        "pairs": [_leak_pair(p) for p in pairs["exact"] + pairs["near"]],
        "shared_clusters": sorted(c for c in {q.get("cluster") for q in test} & train_clusters if c),
        "shared_gold_call_sets": shared_gold,
        "shared_templates": sorted(set(train_templates) & set(test_templates)),
        "ok": not pairs["exact"] and not pairs["near"] and not shared_gold
        and not set(train_templates) & set(test_templates),
    }


def _leak_pair(p: DuplicatePair) -> LeakPair:
    out: LeakPair = {"test": p["left"], "train": p["right"]}
    if "jaccard" in p:
        out["jaccard"] = p["jaccard"]
    return out


def held_out_format_check(samples: Sequence[Sample], families: Sequence[str]) -> FormatCheck:
    """Whether any agent training sample is written in a held-out output-format family (``held_out_formats``):
    read from the samples themselves (their template's format), not from the template split that made them."""
    from labkit.templates import load_template

    family = {name: load_template(name).format.family
              for name in sorted({s["template"] for s in samples if s.get("source") == "agent"})}
    trained = sorted(n for n, f in family.items() if f in families)
    return {"families": list(families), "training_families": sorted(set(family.values())),
            "templates_in_held_out_families": trained, "ok": not trained}
