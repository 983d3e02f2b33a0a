"""Cluster-margin: uncertain items, spread across clusters so a large batch is not one redundant clump."""

from __future__ import annotations

import math

import numpy as np
from sklearn.cluster import AgglomerativeClustering

from .base import ModelOutputs, QueryStrategy, as_array, ranks_to_informativeness
from .canonical import batch_size_for, canonical_order, take_in_turn
from .uncertainty import margin


def round_robin(labels: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[int]:
    """Take one random member per cluster per round, smallest clusters first, until ``batch_size``.

    Smallest first so that rare regions of the uncertain set are always represented; clusters of equal
    size keep the order in which they first appear in ``labels``.
    """
    clusters, first_seen, sizes = np.unique(labels, return_index=True, return_counts=True)
    by_size = np.lexsort((first_seen, sizes))
    return take_in_turn([rng.permutation(np.flatnonzero(labels == clusters[c])).tolist() for c in by_size], batch_size)


class ClusterMargin(QueryStrategy):
    """Cluster-margin: take the ``m = ceil(candidate_factor * batch_size)`` items with the smallest margin
    ``p(c1|x) - p(c2|x)``, cluster their embeddings (average-linkage agglomerative clustering into
    ``n_clusters``, default ``batch_size``), then round-robin over clusters, smallest first, drawing a
    random member (seeded by ``random_state``) from each.

    Citovsky, DeSalvo, Gentile, Karydas, Rajagopalan, Rostamizadeh & Kumar (2021), "Batch Active Learning
    at Scale". The paper clusters the whole pool once with a distance threshold; clustering only the
    candidates into a fixed number of groups keeps the cost independent of the pool size. Items outside
    the batch follow by margin (smaller = sooner).
    """

    name = "cluster_margin"
    requires = frozenset({"proba", "embeddings"})
    batch_aware = True

    def __init__(
        self,
        *,
        candidate_factor: float = 10.0,
        n_clusters: int | None = None,
        batch_size: int = 10,
        random_state: int | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, random_state=random_state)
        self.candidate_factor = candidate_factor
        self.n_clusters = n_clusters

    def _informativeness(self, outputs: ModelOutputs) -> np.ndarray:
        uncertainty = margin(as_array(outputs.proba, 2, "proba"))
        pool = as_array(outputs.embeddings, 2, "embeddings")
        if len(uncertainty) != len(pool):
            raise ValueError(f"proba has {len(uncertainty)} rows but embeddings has {len(pool)}")
        batch_size = batch_size_for(self.batch_size, len(pool))
        if batch_size == 0:
            return uncertainty
        n_candidates = min(len(pool), max(batch_size, math.ceil(self.candidate_factor * batch_size)))
        order = canonical_order(pool)
        # Stable sort over the canonical order: equal margins are cut by value, not by pool position.
        by_margin = np.argsort(-uncertainty[order], kind="stable")
        candidates = order[np.sort(by_margin[:n_candidates])]
        n_clusters = min(self.n_clusters or batch_size, n_candidates)
        if n_clusters > 1:
            labels = AgglomerativeClustering(n_clusters=n_clusters, linkage="average").fit_predict(
                pool[candidates]
            )
        else:
            labels = np.zeros(n_candidates, dtype=np.intp)
        picks = round_robin(labels, batch_size, np.random.default_rng(self.random_state))
        return ranks_to_informativeness(candidates[picks], uncertainty)
