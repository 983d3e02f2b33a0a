"""The logistic-regression head over encoder embeddings: one definition for the classifier, its
cross-validated estimate and the out-of-fold losses, so all three measure the same model."""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression


def head_estimator(seed: int) -> LogisticRegression:
    """Multinomial logistic regression, lightly regularised (C=10): embeddings are dense and labels few."""
    return LogisticRegression(max_iter=2000, C=10.0, random_state=seed)


def fit_head(X: np.ndarray, y: np.ndarray, seed: int) -> LogisticRegression:
    return head_estimator(seed).fit(X, y)


def head_proba(head: LogisticRegression, X: np.ndarray, n_classes: int) -> np.ndarray:
    """Place the head's columns (only classes it saw) into the full class list."""
    proba = np.zeros((len(X), n_classes), dtype=np.float64)
    proba[:, head.classes_.astype(int)] = head.predict_proba(X)
    return proba


def full_class_linear(head: LogisticRegression, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A logistic regression's logits as one weight row per class of the full class list.

    Binary sklearn models keep one row (the log-odds of the second class); splitting it in halves gives
    the same softmax. Classes without labels get zero weights and a bias well below the seen ones, so
    they start improbable but still learnable.
    """
    coef, intercept = head.coef_, head.intercept_
    if len(head.classes_) == 2:
        coef, intercept = np.vstack([-coef[0] / 2, coef[0] / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    weight = np.zeros((n_classes, coef.shape[1]))
    bias = np.full(n_classes, intercept.min() - 5.0)
    seen = head.classes_.astype(int)
    weight[seen], bias[seen] = coef, intercept
    return weight, bias
