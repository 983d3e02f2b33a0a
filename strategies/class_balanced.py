"""Class-balanced margin: an uncertain batch split evenly across the classes the model predicts.

Under class imbalance, the most uncertain items mostly sit between the large classes, so a rare class can
go unseen for many rounds. Giving every predicted class an equal share of the batch keeps asking about the
rare ones too.
"""

from __future__ import annotations

import numpy as np

from .base import ModelOutputs, QueryStrategy, as_array, ranks_to_informativeness
from .canonical import batch_size_for, take_in_turn
from .uncertainty import margin


def balanced_picks(predicted: np.ndarray, uncertainty: np.ndarray, batch_size: int) -> list[int]:
    """Round-robin over predicted classes, rarest prediction first, each class giving its most uncertain
    item not yet taken, until ``batch_size`` items are picked.

    Classes predicted equally often go in class order; within a class, equal uncertainty goes by position,
    which the caller makes value-based when it needs permutation invariance.
    """
    classes, counts = np.unique(predicted, return_counts=True)
    by_rarity = classes[np.lexsort((classes, counts))]
    queues = []
    for label in by_rarity:
        members = np.flatnonzero(predicted == label)
        queues.append(members[np.argsort(-uncertainty[members], kind="stable")].tolist())
    return take_in_turn(queues, batch_size)


class ClassBalancedMargin(QueryStrategy):
    """Class-balanced margin: each predicted class ``argmax_c p(c|x)`` gets ``batch_size / n_predicted``
    of the batch (round-robin, rarest predicted class first), filled with its items of smallest margin
    ``p(c1|x) - p(c2|x)``. Items outside the batch follow by margin.

    After Bengar, van de Weijer, Fuentes & Raducanu (2022), "Class-Balanced Active Learning for Image
    Classification", WACV, which adds a class-balance constraint to uncertainty selection; this takes the
    constraint in its simplest form, equal quotas over the predicted classes, instead of their optimisation.
    Aggarwal, Popescu & Hudelot (2020), "Active Learning for Imbalanced Datasets", WACV, motivate
    favouring items predicted as rare classes.
    """

    name = "balanced_margin"
    requires = frozenset({"proba"})
    batch_aware = True

    def _informativeness(self, outputs: ModelOutputs) -> np.ndarray:
        proba = as_array(outputs.proba, 2, "proba")
        uncertainty = margin(proba)
        batch_size = batch_size_for(self.batch_size, len(proba))
        if batch_size == 0:
            return uncertainty
        # Rows sorted by value first, so that equal margins are cut the same way in any pool order.
        order = np.lexsort(proba.T[::-1])
        picks = balanced_picks(np.argmax(proba[order], axis=1), uncertainty[order], batch_size)
        return ranks_to_informativeness(order[picks], uncertainty)
