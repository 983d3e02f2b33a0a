"""The logistic-regression head over encoder embeddings: one definition for the classifier, its
cross-validated estimate and the out-of-fold losses, so all three measure the same model."""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold

from backend.core.settings import HEAD_REGULARIZATIONS

#: Light regularisation: embeddings are dense and labels few.
DEFAULT_C = 10.0
#: Inverse regularisation strengths that ``head_regularization: cv`` chooses from.
C_GRID = (0.1, 1.0, 10.0, 100.0)


def head_estimator(seed: int, C: float = DEFAULT_C) -> LogisticRegression:
    """Multinomial logistic regression with inverse regularisation strength ``C``."""
    return LogisticRegression(max_iter=2000, C=C, random_state=seed)


def stratified_folds(y: np.ndarray) -> int:
    """Folds for a stratified split in which every fold holds every class: up to 5, at most the rarest
    class's count; 0 when fewer than 2 classes are labeled."""
    counts = np.bincount(y)
    counts = counts[counts > 0]
    if len(counts) < 2:
        return 0
    return int(min(5, counts.min()))


def choose_c(X: np.ndarray, y: np.ndarray, seed: int) -> float:
    """The ``C_GRID`` value with the best cross-validated log-loss on the labels (sklearn's
    ``LogisticRegressionCV``), so the probabilities that rank the pool are calibrated on the labels
    themselves; ``DEFAULT_C`` while a class has a single label, which no stratified split can hold out."""
    folds = stratified_folds(y)
    if folds < 2:
        return DEFAULT_C
    search = LogisticRegressionCV(
        Cs=list(C_GRID), cv=StratifiedKFold(folds, shuffle=True, random_state=seed), scoring="neg_log_loss",
        max_iter=2000, random_state=seed,
    )
    with warnings.catch_warnings():
        # sklearn's notices about its own parameter defaults say nothing about this fit.
        warnings.simplefilter("ignore", FutureWarning)
        search.fit(X, y)
    return float(np.ravel(search.C_)[0])


def fit_head(X: np.ndarray, y: np.ndarray, seed: int, regularization: str = "fixed") -> LogisticRegression:
    """The head on the labels: ``C = DEFAULT_C`` (``regularization="fixed"``) or chosen by ``choose_c`` ("cv")."""
    if regularization not in HEAD_REGULARIZATIONS:
        raise ValueError(f"regularization must be one of {', '.join(HEAD_REGULARIZATIONS)}, got {regularization!r}")
    C = choose_c(X, y, seed) if regularization == "cv" else DEFAULT_C
    return head_estimator(seed, C).fit(X, y)


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
