"""The multi-label head: one logistic regression per label over encoder embeddings, plus a per-label threshold.

Each label is a sigmoid output trained on binary cross-entropy (sklearn's ``OneVsRestClassifier`` over the
same ``head_estimator`` as the single-label head). A label's threshold is tuned on out-of-fold
probabilities of the labels themselves, so the suggestion "every label over its threshold" is chosen on
data the head did not train on.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from sklearn.metrics import log_loss, precision_recall_curve
from sklearn.model_selection import KFold
from sklearn.multiclass import OneVsRestClassifier

from backend.models.logistic_head import C_GRID, DEFAULT_C, head_estimator

#: The threshold of a label whose out-of-fold probabilities cannot be tuned on (too few labels, a label
#: never or always present).
DEFAULT_THRESHOLD = 0.5
#: Fewer labeled tasks than this keep ``DEFAULT_THRESHOLD``: a tuned value would follow single tasks.
MIN_TUNING_LABELS = 10
#: The logit a label present in none (all) of the labels gets: ``expit(-15)`` is 3e-7.
_CONSTANT_LOGIT = 15.0


@dataclass(frozen=True)
class MultiLabelHead:
    """Per-label logistic regressions as one weight row per label: ``p_l = sigmoid(w_l . x + b_l)``."""

    coef: np.ndarray  # (n_labels, dim)
    intercept: np.ndarray  # (n_labels,)
    thresholds: np.ndarray  # (n_labels,)
    C: float = DEFAULT_C

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, n_labels) independent probabilities that each label applies."""
        return expit(np.asarray(X, dtype=np.float64) @ self.coef.T + self.intercept)


def fit_linear(X: np.ndarray, Y: np.ndarray, seed: int, C: float = DEFAULT_C) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest logistic regressions on the indicator matrix ``Y``, as (coef, intercept).

    A label every task has (or none has) cannot be learned from these labels; it gets a constant
    probability of almost 1 (almost 0), as ``OneVsRestClassifier`` predicts it.
    """
    with warnings.catch_warnings():
        # "Label not k is present in all training examples": expected with few labels, handled below.
        warnings.simplefilter("ignore", UserWarning)
        model = OneVsRestClassifier(head_estimator(seed, C)).fit(X, Y)
    coef = np.zeros((Y.shape[1], X.shape[1]))
    intercept = np.zeros(Y.shape[1])
    for label, estimator in enumerate(model.estimators_):
        if hasattr(estimator, "coef_"):
            coef[label], intercept[label] = estimator.coef_[0], estimator.intercept_[0]
        else:
            intercept[label] = _CONSTANT_LOGIT if Y[:, label].all() else -_CONSTANT_LOGIT
    return coef, intercept


def out_of_fold_proba(X: np.ndarray, Y: np.ndarray, seed: int, C: float = DEFAULT_C) -> np.ndarray | None:
    """Each labeled task's probabilities from heads that never saw it (up to 5 folds); None when too few."""
    folds = min(5, len(Y) // 2)
    if folds < 2:
        return None
    proba = np.zeros(Y.shape, dtype=np.float64)
    for train, held in KFold(folds, shuffle=True, random_state=seed).split(X):
        coef, intercept = fit_linear(X[train], Y[train], seed, C)
        proba[held] = expit(X[held] @ coef.T + intercept)
    return proba


def tune_thresholds(Y: np.ndarray, proba: np.ndarray | None) -> np.ndarray:
    """Per label, the threshold with the best F1 on out-of-fold probabilities (``precision_recall_curve``).

    Ties go to the threshold closest to 0.5. ``DEFAULT_THRESHOLD`` where there is nothing to tune on: fewer
    than ``MIN_TUNING_LABELS`` labels, or a label with fewer than 2 positive or 2 negative tasks.
    """
    thresholds = np.full(Y.shape[1], DEFAULT_THRESHOLD)
    if proba is None or len(Y) < MIN_TUNING_LABELS:
        return thresholds
    for label in range(Y.shape[1]):
        positives = int(Y[:, label].sum())
        if positives < 2 or len(Y) - positives < 2:
            continue
        precision, recall, candidates = precision_recall_curve(Y[:, label], proba[:, label])
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
        best = np.flatnonzero(f1 == f1.max())
        thresholds[label] = candidates[best[np.argmin(np.abs(candidates[best] - DEFAULT_THRESHOLD))]]
    return thresholds


def choose_multilabel_c(X: np.ndarray, Y: np.ndarray, seed: int) -> float:
    """``head_regularization: cv`` for multi-label heads: the ``C_GRID`` value whose out-of-fold probabilities
    have the lowest log-loss averaged over labels (sklearn's ``log_loss`` per label), one C for every label;
    ``DEFAULT_C`` under ``MIN_TUNING_LABELS`` labels, as for the thresholds."""
    if len(Y) < MIN_TUNING_LABELS:
        return DEFAULT_C
    losses = {}
    for C in C_GRID:
        proba = np.clip(out_of_fold_proba(X, Y, seed, C), 1e-12, 1 - 1e-12)
        losses[C] = np.mean([log_loss(Y[:, label], proba[:, label], labels=[0, 1]) for label in range(Y.shape[1])])
    return float(min(C_GRID, key=lambda C: (losses[C], C != DEFAULT_C)))


def fit_multilabel_head(X: np.ndarray, Y: np.ndarray, seed: int, C: float = DEFAULT_C) -> MultiLabelHead:
    """The head on all labels, with thresholds tuned on its out-of-fold probabilities."""
    coef, intercept = fit_linear(X, Y, seed, C)
    return MultiLabelHead(coef, intercept, tune_thresholds(Y, out_of_fold_proba(X, Y, seed, C)), C)
