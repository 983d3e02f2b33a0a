"""Information density: uncertainty weighted by how representative an item is of the pool.

Pure uncertainty sampling favours outliers: an item far from everything else can be uncertain and still
teach the model little about the rest of the pool. Settles & Craven (2008) multiply the uncertainty by the
item's mean similarity to the pool, so that uncertain items in dense regions come first.
"""

from __future__ import annotations

import numpy as np

from .base import ModelOutputs, QueryStrategy, as_array, as_features
from .uncertainty import margin


def mean_similarity(embeddings: np.ndarray) -> np.ndarray:
    """``(1/U) sum_u sim(x, x_u)`` over the whole pool U, with ``sim = (1 + cos) / 2`` in [0, 1].

    Cosine is mapped to [0, 1] so the density stays non-negative for any embedding (the paper's TF-IDF
    vectors are never negative; encoder embeddings are). The mean cosine to every pool item equals the dot
    product with the mean of the unit vectors, so this costs one pass over the pool, not a U x U matrix.
    A zero vector has no direction: its cosine to everything is taken as 0.
    """
    pool = as_features(embeddings, 2, "embeddings")
    if len(pool) == 0:
        return np.zeros(0)
    # Unit vectors are never materialised: at 100k tasks each n x d copy would cost 150-300 MB.
    norms = np.sqrt(np.einsum("ij,ij->i", pool, pool))
    inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    mean_unit = (pool.T @ inverse) / len(pool)
    mean_cosine = (pool @ mean_unit) * inverse
    return (1.0 + mean_cosine.astype(np.float64)) / 2.0


class InformationDensity(QueryStrategy):
    """Information density: ``phi(x) = (1 - (p(c1|x) - p(c2|x))) * ((1/U) sum_u sim(x, x_u)) ** beta``.

    The uncertainty is the margin's, shifted to [0, 1] so that a product with the density keeps its order;
    ``sim`` is cosine mapped to [0, 1] (``mean_similarity``); ``beta`` (default 1) sets the density's weight,
    and ``beta = 0`` is plain margin sampling.

    Settles & Craven (2008), "An Analysis of Active Learning Strategies for Sequence Labeling Tasks",
    EMNLP, equation 9 (information density).
    """

    name = "information_density"
    requires = frozenset({"proba", "embeddings"})

    def __init__(self, *, beta: float = 1.0, batch_size: int = 10, random_state: int | None = None) -> None:
        super().__init__(batch_size=batch_size, random_state=random_state)
        if beta < 0:
            raise ValueError(f"beta must be non-negative, got {beta}")
        self.beta = beta

    def _informativeness(self, outputs: ModelOutputs) -> np.ndarray:
        uncertainty = 1.0 + margin(as_array(outputs.proba, 2, "proba"))
        density = mean_similarity(outputs.embeddings)
        if len(uncertainty) != len(density):
            raise ValueError(f"proba has {len(uncertainty)} rows but embeddings has {len(density)}")
        return uncertainty * density**self.beta
