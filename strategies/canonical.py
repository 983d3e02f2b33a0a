"""Make batch selection independent of the order the backend happens to list the pool in.

Greedy and clustering algorithms break ties by position (``argmax`` takes the first maximum, k-means++
seeds by index). Running them on rows sorted by value, then mapping the result back, means that the same
pool in a different order yields the same batch: only truly identical rows remain interchangeable.
"""

from __future__ import annotations

import numpy as np

from .base import as_features


def canonical_order(embeddings: np.ndarray) -> np.ndarray:
    """Indices that sort the rows of ``embeddings`` by their bytes: a fixed total order on row values.

    Byte order is not numeric order, but any order that depends only on the values will do, and
    comparing whole rows at once is ~100x faster than ``np.lexsort`` over hundreds of columns. Rows are
    compared in their own float type: casting a float32 pool to float64 first would change no tie, only
    copy it.
    """
    rows = np.ascontiguousarray(as_features(embeddings, 2, "embeddings"))
    as_bytes = rows.view(np.dtype((np.void, rows.itemsize * rows.shape[1]))).ravel()
    return np.argsort(as_bytes, kind="stable")


def count_distinct(sorted_rows: np.ndarray) -> int:
    """Number of distinct rows in rows already in ``canonical_order`` (equal rows are then adjacent)."""
    if len(sorted_rows) == 0:
        return 0
    return 1 + int(np.any(sorted_rows[1:] != sorted_rows[:-1], axis=1).sum())


def batch_size_for(batch_size: int, n_pool: int) -> int:
    """A batch cannot be larger than the pool (an empty pool gives an empty batch); a non-positive
    request is a caller bug."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    return min(batch_size, n_pool)


def take_in_turn(queues: list[list[int]], batch_size: int) -> list[int]:
    """The head of each queue in turn, round after round, skipping empty ones, until ``batch_size`` items
    (or every item) are taken. Consumes the queues."""
    picked: list[int] = []
    batch_size = min(batch_size, sum(len(queue) for queue in queues))
    while len(picked) < batch_size:
        for queue in queues:
            if queue and len(picked) < batch_size:
                picked.append(queue.pop(0))
    return picked
