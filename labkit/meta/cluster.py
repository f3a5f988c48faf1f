"""Query clustering for Meta-Agent (course note §4.2.2 steps 1-2): group similar queries, pick representatives.

Queries are embedded offline with TF-IDF over character n-grams (works for Chinese and English alike, no
tokenizer or model download) and clustered with scikit-learn (KMeans, or agglomerative clustering with Ward
linkage; on L2-normalised rows both follow cosine similarity). Each cluster's *representatives* are the queries
nearest its centroid; they are the seed queries a Meta-Agent prompt is written from, so different clusters lead to
different templates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import numpy as np

from labkit.records import Query

Method = Literal["kmeans", "agglomerative"]


class ClusterSummary(TypedDict):
    """:meth:`QueryCluster.to_dict`: one entry of ``clusters.json`` and one row of :meth:`Clustering.table`."""

    id: int
    size: int
    langs: dict[str, int]
    majority_label: str
    label_purity: float
    top_terms: list[str]
    representatives: list[str]   # their query texts


@dataclass
class QueryCluster:
    id: int
    queries: list[Query]                       # every member (query-bank records)
    representatives: list[Query]               # nearest the centroid first
    top_terms: list[str] = field(default_factory=list)  # highest-weight n-grams of the centroid
    label_purity: float = 0.0                  # share of the most common hand label (``cluster`` field) in it
    majority_label: str = ""

    @property
    def size(self) -> int:
        return len(self.queries)

    @property
    def langs(self) -> dict[str, int]:
        return dict(Counter(q.get("lang", "?") for q in self.queries))

    def to_dict(self) -> ClusterSummary:
        return {"id": self.id, "size": self.size, "langs": self.langs, "majority_label": self.majority_label,
                "label_purity": round(self.label_purity, 3), "top_terms": self.top_terms,
                "representatives": [q["query"] for q in self.representatives]}


@dataclass
class Clustering:
    clusters: list[QueryCluster]
    method: str
    n_features: int
    vectors: Any = field(repr=False, default=None)  # sparse TF-IDF matrix, rows in input order
    labels: list[int] = field(repr=False, default_factory=list)

    def table(self) -> Any:
        import pandas as pd

        return pd.DataFrame([c.to_dict() for c in self.clusters]).set_index("id")

    def cluster_of(self, query_id: str) -> QueryCluster:
        return next(c for c in self.clusters if any(q["id"] == query_id for q in c.queries))


def embed(texts: Sequence[str], *, ngram_range: tuple[int, int] = (1, 3), max_features: int = 20_000) -> Any:
    """TF-IDF vectors over character n-grams (word boundaries respected), L2-normalised rows."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=ngram_range, max_features=max_features,
                          sublinear_tf=True, lowercase=True)
    matrix = vec.fit_transform(list(texts))
    return matrix, vec


def cluster_queries(queries: Sequence[Query], n_clusters: int = 18, *, method: Method = "kmeans",
                    n_representatives: int = 5, seed: int = 0) -> Clustering:
    """Cluster query-bank records by their ``query`` text; see the module docstring."""
    if not queries:
        raise ValueError("no queries to cluster")
    n_clusters = max(1, min(n_clusters, len(queries)))
    matrix, vec = embed([q["query"] for q in queries])
    if method == "kmeans":
        from sklearn.cluster import KMeans

        labels = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(matrix)
    elif method == "agglomerative":
        from sklearn.cluster import AgglomerativeClustering

        # Ward on L2-normalised rows: squared euclidean distance = 2 - 2 cos, so it merges by cosine similarity
        labels = AgglomerativeClustering(n_clusters=n_clusters, linkage="ward").fit_predict(matrix.toarray())
    else:
        raise ValueError(f"unknown method {method!r}; use 'kmeans' or 'agglomerative'")
    terms = np.array(vec.get_feature_names_out())
    clusters = []
    for k in sorted(set(labels.tolist()), key=lambda k: -int((labels == k).sum())):
        idx = np.flatnonzero(labels == k)
        centroid = np.asarray(matrix[idx].mean(axis=0)).ravel()
        sims = matrix[idx] @ centroid
        order = idx[np.argsort(-np.asarray(sims).ravel(), kind="stable")]
        members = [queries[i] for i in idx]
        hand = Counter(str(q.get("cluster", "")) for q in members)
        label, count = hand.most_common(1)[0]
        top = [t.strip() for t in terms[np.argsort(-centroid)[:8]] if t.strip()]
        clusters.append(QueryCluster(len(clusters), members, [queries[i] for i in order[:n_representatives]],
                                     top_terms=top, label_purity=count / len(members), majority_label=label))
    remap = {old: new for new, old in enumerate(sorted(set(labels.tolist()), key=lambda k: -int((labels == k).sum())))}
    return Clustering(clusters, method, matrix.shape[1], vectors=matrix, labels=[remap[int(x)] for x in labels])


def purity(clustering: Clustering) -> float:
    """Share of queries whose cluster's majority hand label (``cluster`` field) is their own label."""
    total = sum(c.size for c in clustering.clusters)
    return sum(c.label_purity * c.size for c in clustering.clusters) / total if total else 0.0
