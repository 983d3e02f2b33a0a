"""How good a model is: held-out metrics, and per-example out-of-fold losses for the ``difficulty`` strategy."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split

from backend.settings import ProjectSettings
from backend.training import TextClassifier


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


def evaluate_holdout(
    make: Callable[[], TextClassifier], texts: Sequence[str], y: np.ndarray, settings: ProjectSettings, progress=None
) -> Evaluation:
    split = holdout_split(y, settings.eval_fraction, settings.seed)
    if split is None:
        return Evaluation(len(y), 0, None, None, None, None, note=f"{len(y)} labels are too few to hold any out")
    train, held = split
    classifier = make().fit([texts[i] for i in train], y[train], progress)
    predicted = classifier.predict_proba([texts[i] for i in held]).argmax(1)
    return Evaluation(len(train), len(held), **classification_metrics(y[held], predicted))


def out_of_fold_losses(X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Per-example cross-entropy of a logistic head under k-fold cross-validation.

    A cheap, honest proxy for "how hard is this example for the model": each loss comes from a head that
    never saw the example. Folds shrink to the rarest class's count so every fold is stratified.
    """
    counts = np.bincount(y)
    folds = int(min(5, counts[counts > 0].min()))
    if folds < 2 or len(set(y.tolist())) < 2:
        raise ValueError("out-of-fold losses need at least 2 labels in each of at least 2 classes")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    classes = np.unique(y)
    proba = cross_val_predict(
        LogisticRegression(max_iter=2000, C=10.0, random_state=seed), X, y, cv=cv, method="predict_proba"
    )
    true_class_proba = proba[np.arange(len(y)), np.searchsorted(classes, y)]
    return -np.log(np.clip(true_class_proba, 1e-12, 1.0))
