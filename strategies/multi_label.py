"""Multi-label uncertainty: a task may carry any subset of the labels, one independent yes/no per label.

A multi-label model (one-vs-rest heads, or one sigmoid per label) gives ``label_proba`` of shape
(n_pool, n_labels): ``p_l = P(label l applies | x)``, each in [0, 1], rows not summing to 1. The
measures below turn it (and, for label cardinality, the labeled set's label sets) into one
informativeness per pool task, higher = ask sooner.
"""

from __future__ import annotations

import numpy as np

from .base import MULTI_LABEL, ModelOutputs, QueryStrategy, as_array


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Elementwise ``-p log p - (1 - p) log(1 - p)`` in nats, with ``0 log 0 = 0``: 0 at p in {0, 1},
    ``log 2`` at p = 1/2."""
    p = np.asarray(p, dtype=np.float64)
    q = 1.0 - p
    # The logs of the masked-out zeros are never used; 1.0 only keeps np.log from warning.
    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    qlogq = np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0)
    return -(plogp + qlogq) + 0.0


def mean_binary_entropy(label_proba: np.ndarray) -> np.ndarray:
    """``(1/L) sum_l H_b(p_l)`` over the L labels (last axis); 0 when there are no labels."""
    per_label = binary_entropy(label_proba)
    if per_label.shape[-1] == 0:
        return np.zeros(per_label.shape[:-1])
    return per_label.mean(axis=-1)


def label_cardinality_inconsistency(
    label_proba: np.ndarray, labeled_targets: np.ndarray, prediction_threshold: float = 0.5
) -> np.ndarray:
    """``| #{l : p_l > threshold} - (1/|L|) sum_{i in L} |Y_i| |`` for every pool row.

    The number of labels predicted for x against the average label cardinality (labels per task) of
    the labeled set L; a label counts as predicted when its probability *exceeds* the threshold, as in
    small-text. Raises ``ValueError`` for an empty labeled set, whose average cardinality is undefined.
    """
    label_proba = as_array(label_proba, 2, "label_proba")
    targets = as_array(labeled_targets, 2, "labeled_targets")
    if targets.shape[1] != label_proba.shape[1]:
        raise ValueError(
            f"label_proba has {label_proba.shape[1]} labels but labeled_targets has {targets.shape[1]}"
        )
    if len(targets) == 0:
        raise ValueError("label cardinality inconsistency needs at least 1 labeled task, got 0")
    average_cardinality = (targets > 0).sum(axis=1).mean()
    predicted = (label_proba > prediction_threshold).sum(axis=1)
    return np.abs(predicted - average_cardinality)


class MeanBinaryEntropy(QueryStrategy):
    """Mean binary entropy: ``(1/L) sum_l [-p_l log p_l - (1 - p_l) log(1 - p_l)]``, p_l = P(label l | x).

    Esuli & Sebastiani (2009), "Active Learning Strategies for Multi-Label Text Classification" (ECIR),
    rank a multi-label pool by combining the per-label uncertainties of the binary one-vs-rest
    classifiers, by their average (this strategy) or their maximum. They measure a label's uncertainty
    on the classifier's output by its closeness to the decision threshold, not by entropy; the binary
    entropy (Shannon, 1948) is a decreasing function of ``|p_l - 1/2|``, so for any single label it ranks
    exactly like that closeness, but the average of entropies is not the average of closenesses.
    """

    name = "mean_binary_entropy"
    requires = frozenset({"label_proba"})
    task_types = frozenset({MULTI_LABEL})

    def _informativeness(self, outputs: ModelOutputs) -> np.ndarray:
        return mean_binary_entropy(as_array(outputs.label_proba, 2, "label_proba"))


class LabelCardinalityInconsistency(QueryStrategy):
    """Label cardinality inconsistency: ``| sum_l [[p_l > t]] - (1/|L|) sum_{i in L} |Y_i| |``, t = 0.5.

    Li & Guo (2013), "Active Learning with Multi-Label SVM Classification" (IJCAI): the L2 norm (for a
    scalar, the absolute value) of the gap between the number of labels predicted for x and the average
    number of labels per labeled task; a task whose predicted label count is unusual is likely mislabeled
    by the model. They combine it with a max-margin uncertainty; alone it is small-text's
    ``LabelCardinalityInconsistency`` (2.0.0.dev1 and later), whose scores this reproduces, including
    its strict ``p_l > t`` and its refusal of an empty labeled set. Scores take few distinct values (a
    count minus a constant), so many tasks tie; tied tasks get equal informativeness and the caller's
    tie-break orders them (small-text's ``argpartition`` picks among them arbitrarily).
    """

    name = "label_cardinality_inconsistency"
    requires = frozenset({"label_proba", "labeled_targets"})
    task_types = frozenset({MULTI_LABEL})

    def __init__(
        self, *, prediction_threshold: float = 0.5, batch_size: int = 10, random_state: int | None = None
    ) -> None:
        super().__init__(batch_size=batch_size, random_state=random_state)
        if not 0.0 <= prediction_threshold <= 1.0:
            raise ValueError(f"prediction_threshold must be in [0, 1], got {prediction_threshold}")
        self.prediction_threshold = prediction_threshold

    def _informativeness(self, outputs: ModelOutputs) -> np.ndarray:
        return label_cardinality_inconsistency(
            outputs.label_proba, outputs.labeled_targets, self.prediction_threshold
        ).astype(np.float64)
