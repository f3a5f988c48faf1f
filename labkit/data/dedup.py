"""Exact and near-duplicate detection with MinHash LSH (Jaccard over character 3-gram shingles)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypedDict, TypeVar

from datasketch import MinHash, MinHashLSH

T = TypeVar("T")

NEAR_DUP_THRESHOLD = 0.8  # estimated Jaccard similarity of character 3-gram shingles
SHINGLE_SIZE = 3
NUM_PERM = 128


def normalize(text: str) -> str:
    """NFKC, lower case, whitespace and punctuation removed: the text two copies must share to be 'exact'."""
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"[\s\W_]+", "", text)


def exact_key(text: str) -> str:
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()


def shingles(text: str, k: int = SHINGLE_SIZE) -> set[str]:
    norm = normalize(text)
    if len(norm) <= k:
        return {norm}
    return {norm[i : i + k] for i in range(len(norm) - k + 1)}


def minhash(text: str, num_perm: int = NUM_PERM) -> MinHash:
    m = MinHash(num_perm=num_perm, seed=1)
    m.update_batch([s.encode("utf-8") for s in shingles(text)])
    return m


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


class NearDupIndex:
    """A MinHash LSH index of texts; ``query`` returns the keys of indexed texts that look like near-duplicates.

    LSH gives candidates; each candidate is confirmed with the exact Jaccard of the shingle sets, so the
    threshold means what it says.
    """

    def __init__(self, threshold: float = NEAR_DUP_THRESHOLD, num_perm: int = NUM_PERM):
        self.threshold = threshold
        self.num_perm = num_perm
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._texts: dict[str, str] = {}
        self._exact: dict[str, str] = {}

    def add(self, key: str, text: str) -> None:
        if key in self._texts:
            raise ValueError(f"duplicate index key {key!r}")
        self._texts[key] = text
        self._exact.setdefault(exact_key(text), key)
        self._lsh.insert(key, minhash(text, self.num_perm))

    def exact_match(self, text: str) -> str | None:
        return self._exact.get(exact_key(text))

    def query(self, text: str) -> list[tuple[str, float]]:
        """``[(key, jaccard)]`` of indexed texts with Jaccard >= threshold, most similar first."""
        hits = []
        for key in self._lsh.query(minhash(text, self.num_perm)):
            sim = jaccard(text, self._texts[key])
            if sim >= self.threshold:
                hits.append((key, sim))
        return sorted(hits, key=lambda kv: (-kv[1], kv[0]))

    def __len__(self) -> int:
        return len(self._texts)


class Duplicate(TypedDict, Generic[T]):
    """A record :func:`deduplicate` removed, the key of the kept record it duplicates and their Jaccard."""

    record: T
    reason: str                  # "exact_duplicate" | "near_duplicate"
    duplicate_of: str
    jaccard: float


@dataclass
class DedupResult(Generic[T]):
    kept: list[T]
    removed: list[Duplicate[T]]


class _PairFields(TypedDict):
    left: str
    right: str


class DuplicatePair(_PairFields, total=False):
    """A key of the left collection and one of the right that are duplicates (:func:`cross_duplicates`)."""

    jaccard: float               # near duplicates only


class CrossDuplicates(TypedDict):
    exact: list[DuplicatePair]
    near: list[DuplicatePair]


def deduplicate(records: Sequence[T], text: Callable[[T], str], key: Callable[[T], str],
                *, threshold: float | None = NEAR_DUP_THRESHOLD) -> DedupResult[T]:
    """Keep the first of every group of exact or near-duplicate records (in input order).

    ``threshold=None`` removes exact duplicates only (e.g. agent prompts, which share their template text).
    """
    index = NearDupIndex(threshold) if threshold is not None else None
    seen: dict[str, str] = {}
    kept: list[T] = []
    removed: list[Duplicate[T]] = []
    for rec in records:
        t, k = text(rec), key(rec)
        ek = exact_key(t)
        if ek in seen:
            removed.append({"record": rec, "reason": "exact_duplicate", "duplicate_of": seen[ek], "jaccard": 1.0})
            continue
        near = index.query(t) if index is not None else []
        if near:
            removed.append({"record": rec, "reason": "near_duplicate", "duplicate_of": near[0][0],
                            "jaccard": round(near[0][1], 4)})
            continue
        seen[ek] = k
        if index is not None:
            index.add(k, t)
        kept.append(rec)
    return DedupResult(kept, removed)


def cross_duplicates(left: Iterable[tuple[str, str]], right: Iterable[tuple[str, str]],
                     *, threshold: float = NEAR_DUP_THRESHOLD) -> CrossDuplicates:
    """Pairs ``(left_key, right_key)`` that are exact or near duplicates across two collections of (key, text)."""
    index = NearDupIndex(threshold)
    for k, t in left:
        index.add(k, t)
    exact: list[DuplicatePair] = []
    near: list[DuplicatePair] = []
    for k, t in right:
        same = index.exact_match(t)
        if same is not None:
            exact.append({"left": same, "right": k})
        for lk, sim in index.query(t):
            if lk != same:
                near.append({"left": lk, "right": k, "jaccard": round(sim, 4)})
    return {"exact": exact, "near": near}
