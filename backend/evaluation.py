"""How good a model is, without training a model only to measure it.

- the fast path (a head over embeddings): cross-validated metrics, cheap enough for every retrain;
- the full path (a fine-tune): metrics on the labels it held out of its one training;
- every version: prequential metrics (``backend.history``), from the labels annotators gave while it was
  live, each a fresh test point it never trained on;
- per-example out-of-fold losses for the ``difficulty`` strategy.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split

from backend.head import DEFAULT_C, head_estimator, stratified_folds


@dataclass(frozen=True)
class Evaluation:
    """Held-out metrics; ``None`` values with a ``note`` when there are too few labels to hold any out."""

    n_train: int
    n_eval: int
    accuracy: float | None
    precision_macro: float | None
    recall_macro: float | None
    f1_macro: float | None
    note: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "f1_macro": float(f1),
    }


def holdout_split(y: np.ndarray, eval_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Stratified train/eval indices, or None when the labels are too few to hold any out."""
    n_eval = int(round(len(y) * eval_fraction))
    n_classes = len(set(y.tolist()))
    if n_eval < 1 or len(y) - n_eval < 2:
        return None
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 and n_eval >= n_classes else None
    train, held = train_test_split(np.arange(len(y)), test_size=n_eval, random_state=seed, stratify=stratify)
    if len(set(y[train].tolist())) < 2:
        return None
    return train, held


def cross_validated_head(X: np.ndarray, y: np.ndarray, seed: int, C: float = DEFAULT_C) -> Evaluation:
    """The head's metrics under k-fold cross-validation on the labels' embeddings (stratified where it can be).

    Cheap (a few logistic regressions over cached embeddings), so every fast retrain reports it without
    training a second model; every label then counts for both training and evaluation. Up to 5 folds of at
    least 2 labels, and no more folds than the commonest class has labels. A class with a single label is
    still scored: its fold's head never saw the class, so the label counts as an error, which is what the
    model would do with the next such task.
    """
    # StratifiedKFold needs some class with at least one label per fold.
    folds = min(5, len(y) // 2, int(np.bincount(y).max()) if len(y) else 0)
    if folds < 2 or len(set(y.tolist())) < 2:
        return Evaluation(len(y), 0, None, None, None, None, note=f"{len(y)} labels: too few to cross-validate")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    try:
        with warnings.catch_warnings():
            # "The least populated class has fewer members than n_splits": expected with few labels, see above.
            warnings.simplefilter("ignore", UserWarning)
            predicted = cross_val_predict(head_estimator(seed, C), X, y, cv=cv)
    except ValueError as error:  # metrics must never cost the ranking: report why there are none
        return Evaluation(len(y), 0, None, None, None, None, note=f"no cross-validated estimate: {error}")
    return Evaluation(len(y) - len(y) // folds, len(y), **classification_metrics(y, predicted), note=f"{folds}-fold cross-validation")


def holdout_evaluation(y_true: np.ndarray, proba: np.ndarray, n_train: int) -> Evaluation:
    """Metrics of a model trained on ``n_train`` labels, from its probabilities on held-out ones."""
    return Evaluation(n_train, len(y_true), **classification_metrics(y_true, proba.argmax(1)), note="held out")


def out_of_fold_losses(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Per-example cross-entropy of a logistic head under k-fold cross-validation.

    A cheap, honest proxy for "how hard is this example for the model": each loss comes from a head that
    never saw the example. Folds shrink to the rarest class's count so every fold is stratified.
    """
    folds = stratified_folds(y)
    if folds < 2:
        raise ValueError("out-of-fold losses need at least 2 labels in each of at least 2 classes")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    classes = np.unique(y)
    proba = cross_val_predict(
        head_estimator(seed), X, y, cv=cv, method="predict_proba"
    )
    true_class_proba = proba[np.arange(len(y)), np.searchsorted(classes, y)]
    return -np.log(np.clip(true_class_proba, 1e-12, 1.0))
