"""Pointwise uncertainty sampling: how unsure is the current model about each pool item?

Lewis & Gale (1994), "A Sequential Algorithm for Training Text Classifiers", introduced uncertainty
sampling; Settles (2009), "Active Learning Literature Survey", section 3.1, gives the three measures below.
Each function takes probabilities of shape (..., n_classes) and returns informativeness (higher = more
uncertain) over the leading axes.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np

from .base import ModelOutputs, QueryStrategy, as_array


def least_confidence(proba: np.ndarray) -> np.ndarray:
    """``1 - max_c p_c``."""
    return 1.0 - np.max(np.asarray(proba, dtype=np.float64), axis=-1)


def margin(proba: np.ndarray) -> np.ndarray:
    """``-(p_(1) - p_(2))``: the negated gap between the two most probable classes."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape[-1] < 2:
        raise ValueError("margin needs at least two classes")
    top_two = np.partition(proba, -2, axis=-1)[..., -2:]
    return -(top_two[..., 1] - top_two[..., 0])


def entropy(proba: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats, ``-sum_c p_c log p_c``, with ``0 log 0 = 0``."""
    proba = np.asarray(proba, dtype=np.float64)
    positive = proba > 0
    # log of the masked-out zeros is never used; 1.0 only keeps np.log from warning.
    plogp = np.where(positive, proba * np.log(np.where(positive, proba, 1.0)), 0.0)
    return -np.sum(plogp, axis=-1)


class _ProbaUncertainty(QueryStrategy):
    """Scores each pool item on its own from ``proba`` with ``measure``."""

    requires = frozenset({"proba"})
    measure: ClassVar[Callable[[np.ndarray], np.ndarray]]

    def _informativeness(self, outputs: ModelOutputs) -> np.ndarray:
        return type(self).measure(as_array(outputs.proba, 2, "proba"))


class LeastConfidence(_ProbaUncertainty):
    """Least confidence: ``1 - max_c p(c|x)``.

    Lewis & Gale (1994), "A Sequential Algorithm for Training Text Classifiers".
    """

    name = "least_confidence"
    measure = staticmethod(least_confidence)


class Margin(_ProbaUncertainty):
    """Margin sampling: ``-(p(c1|x) - p(c2|x))`` for the two most probable classes c1, c2.

    Scheffer, Decomain & Wrobel (2001), "Active Hidden Markov Models for Information Extraction".
    """

    name = "margin"
    measure = staticmethod(margin)


class Entropy(_ProbaUncertainty):
    """Entropy sampling: ``-sum_c p(c|x) log p(c|x)``.

    Shannon (1948), "A Mathematical Theory of Communication"; as a query strategy, Settles & Craven
    (2008), "An Analysis of Active Learning Strategies for Sequence Labeling Tasks".
    """

    name = "entropy"
    measure = staticmethod(entropy)
