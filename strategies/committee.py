"""Query by committee: ask where the members of a committee disagree.

The committee is ``committee_proba`` of shape (n_members, n_pool, n_classes): bootstrap-trained heads or
MC-dropout passes. Seung, Opper & Sompolinsky (1992), "Query by Committee", introduced the idea.
"""

from __future__ import annotations

import numpy as np

from .base import ModelOutputs, QueryStrategy, as_array
from .uncertainty import entropy


def vote_entropy(committee_proba: np.ndarray) -> np.ndarray:
    """``-sum_c (V_c / K) log(V_c / K)`` where ``V_c`` counts members whose most probable class is c."""
    committee_proba = as_array(committee_proba, 3, "committee_proba")
    n_members, _, n_classes = committee_proba.shape
    votes = np.argmax(committee_proba, axis=-1)
    vote_share = np.eye(n_classes)[votes].sum(axis=0) / n_members
    return entropy(vote_share)


def average_kl_divergence(committee_proba: np.ndarray) -> np.ndarray:
    """``(1/K) sum_k KL(p_k || p_mean)`` with ``p_mean = (1/K) sum_k p_k`` and ``0 log 0 = 0``."""
    committee_proba = as_array(committee_proba, 3, "committee_proba")
    consensus = committee_proba.mean(axis=0)
    positive = committee_proba > 0
    # Wherever p_k > 0 the consensus is at least p_k / K > 0, so the ratio is always defined.
    log_ratio = np.log(np.where(positive, committee_proba, 1.0) / np.where(positive, consensus, 1.0))
    return np.sum(committee_proba * log_ratio, axis=-1).mean(axis=0)


class VoteEntropy(QueryStrategy):
    """Vote entropy: ``-sum_c (V_c/K) log(V_c/K)``, V_c = number of the K members voting for class c.

    Dagan & Engelson (1995), "Committee-Based Sampling for Training Probabilistic Classifiers".
    """

    name = "qbc_vote_entropy"
    requires = frozenset({"committee_proba"})

    def _informativeness(self, outputs: ModelOutputs) -> np.ndarray:
        return vote_entropy(outputs.committee_proba)


class AverageKLDivergence(QueryStrategy):
    """Average KL divergence to the consensus: ``(1/K) sum_k KL(p_k || (1/K) sum_j p_j)``.

    McCallum & Nigam (1998), "Employing EM and Pool-Based Active Learning for Text Classification".
    The value equals the committee's mutual information, i.e. the ``bald`` score on the same members.
    """

    name = "qbc_kl"
    requires = frozenset({"committee_proba"})

    def _informativeness(self, outputs: ModelOutputs) -> np.ndarray:
        return average_kl_divergence(outputs.committee_proba)
