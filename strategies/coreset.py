"""Core-set selection: cover the embedding space so that no pool item is far from a labeled one."""

from __future__ import annotations

import numpy as np

from .base import TASK_TYPES, ModelOutputs, QueryStrategy, as_array, ranks_to_informativeness
from .canonical import batch_size_for, canonical_order


def min_distances(points: np.ndarray, centres: np.ndarray, chunk_rows: int = 2048) -> np.ndarray:
    """Euclidean distance from each of ``points`` to its nearest row of ``centres``.

    Chunked so a large pool against a large labeled set never materialises the full distance matrix.
    """
    centre_sq = np.einsum("ij,ij->i", centres, centres)
    nearest = np.empty(len(points))
    for start in range(0, len(points), chunk_rows):
        block = points[start : start + chunk_rows]
        sq = np.einsum("ij,ij->i", block, block)[:, None] + centre_sq[None, :] - 2.0 * block @ centres.T
        # Cancellation can leave tiny negatives for near-identical rows.
        nearest[start : start + chunk_rows] = np.sqrt(np.maximum(sq.min(axis=1), 0.0))
    return nearest


def k_center_greedy(pool: np.ndarray, labeled: np.ndarray, batch_size: int) -> tuple[list[int], np.ndarray]:
    """Greedily pick ``batch_size`` pool rows, each the farthest from everything labeled or picked so far.

    Returns the picks in order and every row's final distance to its nearest labeled-or-picked centre.
    With nothing labeled the first centre is the row nearest the pool mean: the most central item is a
    sensible first question and, unlike "row 0", does not depend on how the pool is ordered.
    """
    selected: list[int] = []
    if len(labeled):
        min_distance = min_distances(pool, labeled)
    else:
        min_distance = np.full(len(pool), np.inf)
        if batch_size:
            first = int(np.argmin(np.linalg.norm(pool - pool.mean(axis=0), axis=1)))
            selected.append(first)
            min_distance = np.linalg.norm(pool - pool[first], axis=1)
    while len(selected) < batch_size:
        candidates = min_distance.copy()
        # Duplicates of a picked row also sit at distance 0; masking keeps the batch free of repeats.
        candidates[selected] = -np.inf
        pick = int(np.argmax(candidates))
        selected.append(pick)
        min_distance = np.minimum(min_distance, np.linalg.norm(pool - pool[pick], axis=1))
    return selected, min_distance


class CoreSet(QueryStrategy):
    """k-center greedy: repeatedly pick ``argmax_i min_{j in labeled ∪ picked} ||x_i - x_j||``.

    Sener & Savarese (2018), "Active Learning for Convolutional Neural Networks: A Core-Set Approach".
    The batch comes first in pick order; every other item follows by its distance to the nearest
    labeled-or-picked item (farther = sooner), i.e. by how badly the current cover misses it.
    """

    name = "coreset"
    requires = frozenset({"embeddings", "labeled_embeddings"})
    batch_aware = True
    # Embeddings only: every task type has them.
    task_types = frozenset(TASK_TYPES)

    def _informativeness(self, outputs: ModelOutputs) -> np.ndarray:
        pool = as_array(outputs.embeddings, 2, "embeddings")
        labeled = np.asarray(outputs.labeled_embeddings, dtype=np.float64).reshape(-1, pool.shape[1])
        order = canonical_order(pool)
        selected, min_distance = k_center_greedy(
            pool[order], labeled, batch_size_for(self.batch_size, len(pool))
        )
        base = np.empty(len(pool))
        base[order] = min_distance
        return ranks_to_informativeness(order[selected], base)
