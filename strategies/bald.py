"""BALD: Bayesian active learning by disagreement, estimated from MC-dropout passes."""

from __future__ import annotations

import numpy as np

from .base import ModelOutputs, QueryStrategy, as_array
from .uncertainty import entropy


def mutual_information(committee_proba: np.ndarray) -> np.ndarray:
    """``H[(1/K) sum_k p_k] - (1/K) sum_k H[p_k]`` for ``committee_proba`` of shape (K, n_pool, C)."""
    committee_proba = as_array(committee_proba, 3, "committee_proba")
    information = entropy(committee_proba.mean(axis=0)) - entropy(committee_proba).mean(axis=0)
    # Mutual information is never negative; rounding can leave -1e-16 where all passes agree.
    return np.maximum(information, 0.0)


class BALD(QueryStrategy):
    """Mutual information between the prediction and the model parameters:
    ``I(y; w | x) ~= H[(1/K) sum_k p_k(y|x)] - (1/K) sum_k H[p_k(y|x)]`` over K stochastic passes.

    Houlsby, Huszár, Ghahramani & Lengyel (2011), "Bayesian Active Learning for Classification and
    Preference Learning"; with MC dropout as the posterior sampler, Gal, Islam & Ghahramani (2017),
    "Deep Bayesian Active Learning with Image Data". High when the passes are each confident but disagree,
    zero when they all agree, however uncertain they are.
    """

    name = "bald"
    requires = frozenset({"committee_proba"})

    def _informativeness(self, outputs: ModelOutputs) -> np.ndarray:
        return mutual_information(outputs.committee_proba)
