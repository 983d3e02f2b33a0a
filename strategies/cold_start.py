"""Cold start: with no trained model yet, ask about the items that best represent the pool."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from .base import TASK_TYPES, ModelOutputs, QueryStrategy, as_features, ranks_to_informativeness
from .canonical import batch_size_for, canonical_order, count_distinct


class ColdStart(QueryStrategy):
    """Representative sampling: k-means with ``k = batch_size + n_labeled`` on the embeddings, then per
    cluster the item nearest its centroid, ``argmin_{i in cluster c} ||x_i - mu_c||``; clusters that no
    labeled item falls in come first, bigger clusters first within each group.

    With no labels this is plain representative sampling. As labels arrive (``labeled_embeddings``,
    optional), each labeled item marks the cluster whose centroid is nearest it as *covered*; covered
    clusters go to the end of the batch, and the extra ``n_labeled`` clusters split the pool finer, so
    the batch moves to regions no label speaks for yet instead of picking neighbours of labeled tasks.

    Yuan, Lin & Boyd-Graber (2020), "Cold-start Active Learning through Self-supervised Language
    Modeling" (k-means centres as the first batch); Zhu, Wang, Yao & Tsou (2008), "Active Learning with
    Sampling by Uncertainty and Density for Word Sense Disambiguation and Text Classification"
    (representativeness). ``k`` is capped at the number of distinct embeddings, so a pool of duplicates
    yields a shorter batch. Items outside the batch follow by distance to their nearest centroid
    (closer = more typical = sooner).
    """

    name = "cold_start"
    requires = frozenset({"embeddings"})
    optional = frozenset({"labeled_embeddings"})
    batch_aware = True
    # Embeddings only: every task type has them.
    task_types = frozenset(TASK_TYPES)

    def __init__(self, *, n_init: int = 3, batch_size: int = 10, random_state: int | None = None) -> None:
        super().__init__(batch_size=batch_size, random_state=random_state)
        self.n_init = n_init

    def _informativeness(self, outputs: ModelOutputs) -> np.ndarray:
        pool = as_features(outputs.embeddings, 2, "embeddings")
        batch_size = batch_size_for(self.batch_size, len(pool))
        if batch_size == 0:
            return np.empty(0)
        # k-means++ seeds by row index; the canonical order makes the clustering independent of pool order.
        order = canonical_order(pool)
        points = pool[order]
        labeled = (
            as_features(outputs.labeled_embeddings, 2, "labeled_embeddings").astype(points.dtype, copy=False)
            if outputs.labeled_embeddings is not None and len(outputs.labeled_embeddings)
            else np.empty((0, pool.shape[1]), dtype=points.dtype)
        )
        n_clusters = min(batch_size + len(labeled), count_distinct(points))
        # ``points`` is our own copy, so k-means may centre it in place (and restores it) instead of copying it.
        kmeans = KMeans(n_clusters=n_clusters, n_init=self.n_init, random_state=self.random_state, copy_x=False).fit(points)
        distance = kmeans.transform(points)[np.arange(len(points)), kmeans.labels_]
        sizes = np.bincount(kmeans.labels_, minlength=n_clusters)
        covered = np.zeros(n_clusters, dtype=bool)
        if len(labeled):
            covered[kmeans.predict(labeled)] = True
        selected = []
        # Uncovered clusters first, then covered; bigger first within each (lexsort: last key is primary).
        for cluster in np.lexsort((-sizes, covered)):
            members = np.flatnonzero(kmeans.labels_ == cluster)
            if len(members) and len(selected) < batch_size:
                selected.append(members[np.argmin(distance[members])])
        base = np.empty(len(pool))
        base[order] = -distance
        return ranks_to_informativeness(order[selected], base)
