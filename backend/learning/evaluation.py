"""How good a model is, without training a model only to measure it.

- the fast path (a head over embeddings): cross-validated metrics, cheap enough for every retrain;
- the full path (a fine-tune): metrics on the labels it held out of its one training;
- every version: prequential metrics (``backend.store.history``), from the labels annotators gave while it was
  live, each a fresh test point it never trained on;
- per-example out-of-fold losses for the ``difficulty`` strategy.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.model_selection import (
    KFold,
    StratifiedKFold,
    cross_val_predict,
    train_test_split,
)

from backend.core.labels import distinct_labels
from backend.learning.entity_metrics import entity_scores
from backend.models.logistic_head import DEFAULT_C, head_estimator, stratified_folds
from backend.models.multilabel_head import fit_multilabel_head
from backend.models.token_head import TokenHead


@dataclass(frozen=True)
class Evaluation:
    """Held-out metrics; ``None`` values with a ``note`` when there are too few labels to hold any out.

    For multi-label projects ``accuracy`` is subset accuracy (the whole label set right), sklearn's
    ``accuracy_score`` on indicator matrices, and precision/recall/F1 average over labels.
    """

    n_train: int
    n_eval: int
    accuracy: float | None
    precision_macro: float | None
    recall_macro: float | None
    f1_macro: float | None
    #: Multi-label projects' headline F1 (labels pooled); single-label ones report it too.
    f1_micro: float | None = None
    #: NER projects' entity-level micro precision and recall (seqeval); micro-F1 is their headline.
    precision_micro: float | None = None
    recall_micro: float | None = None
    note: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy (subset accuracy for indicator matrices), macro precision/recall/F1 and micro F1."""
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "f1_macro": float(f1),
        "f1_micro": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
    }


def holdout_split(y: np.ndarray, eval_fraction: float, seed: int, min_distinct: int = 2) -> tuple[np.ndarray, np.ndarray] | None:
    """Train/eval indices (stratified for single-label classes where it can be), or None when the labels are
    too few to hold any out or the training side would hold fewer than ``min_distinct`` distinct labels."""
    n_eval = int(round(len(y) * eval_fraction))
    if n_eval < 1 or len(y) - n_eval < 2:
        return None
    stratify = None
    if y.ndim == 1:
        counts = np.bincount(y)
        stratify = y if counts[counts > 0].min() >= 2 and n_eval >= len(set(y.tolist())) else None
    train, held = train_test_split(np.arange(len(y)), test_size=n_eval, random_state=seed, stratify=stratify)
    if distinct_labels(y[train]) < min_distinct:
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


def cross_validated_multilabel_head(X: np.ndarray, Y: np.ndarray, seed: int, C: float = DEFAULT_C) -> Evaluation:
    """The multi-label head's metrics under k-fold cross-validation (up to 5 folds of at least 2 labels).

    Each fold's head tunes its thresholds on its own training labels only (``fit_multilabel_head``), so the
    held-out fold measures the suggestions as they will be made, thresholds included.
    """
    folds = min(5, len(Y) // 2)
    if folds < 2:
        return Evaluation(len(Y), 0, None, None, None, None, note=f"{len(Y)} labels: too few to cross-validate")
    predicted = np.zeros_like(Y)
    for train, held in KFold(folds, shuffle=True, random_state=seed).split(X):
        head = fit_multilabel_head(X[train], Y[train], seed, C)
        predicted[held] = head.predict_proba(X[held]) >= head.thresholds
    return Evaluation(len(Y) - len(Y) // folds, len(Y), **classification_metrics(Y, predicted), note=f"{folds}-fold cross-validation")


def entity_evaluation(n_train: int, n_eval: int, scores: dict, note: str) -> Evaluation:
    """An NER model's ``backend.learning.entity_metrics.entity_scores`` over ``n_eval`` labeled texts as an ``Evaluation``:
    entity-level micro F1 (the headline), macro precision/recall/F1 over entity types; a tagger has no accuracy."""
    per_type = list(scores["per_type"].values())
    macro = {key: float(np.mean([row[key] for row in per_type])) if per_type else 0.0 for key in ("precision", "recall", "f1")}
    return Evaluation(
        n_train, n_eval, None, macro["precision"], macro["recall"], macro["f1"], float(scores["f1"]),
        precision_micro=float(scores["precision"]), recall_micro=float(scores["recall"]), note=note,
    )


def cross_validated_tagger(tagger: TokenHead, texts: list[str], spans: list, seed: int) -> Evaluation:
    """The token tagger's entity-level metrics under k-fold cross-validation over the labeled texts (up to 5
    folds of at least 2 texts); each fold's tagger reads the token vectors ``tagger`` already computed."""
    folds = min(5, len(texts) // 2)
    if folds < 2:
        return Evaluation(len(texts), 0, None, None, None, None, note=f"{len(texts)} labels: too few to cross-validate")
    predicted: list = [None] * len(texts)
    try:
        for train, held in KFold(folds, shuffle=True, random_state=seed).split(texts):
            fold = TokenHead(tagger.labels, tagger.model_path, tagger.max_length, tagger.batch_size, seed, tagger.device,
                             C=tagger.C, cache=tagger.cache)
            fold.fit([texts[i] for i in train], [spans[i] for i in train])
            for i, found in zip(held, fold.predict_spans([texts[i] for i in held])):
                predicted[i] = found
    except ValueError as error:  # metrics must never cost the ranking: report why there are none
        return Evaluation(len(texts), 0, None, None, None, None, note=f"no cross-validated estimate: {error}")
    scores = entity_scores(spans, predicted, tagger.labels)
    return entity_evaluation(
        len(texts) - len(texts) // folds, len(texts), scores, f"{folds}-fold cross-validation, entity-level (seqeval)"
    )


def holdout_evaluation(y_true: np.ndarray, predicted: np.ndarray, n_train: int) -> Evaluation:
    """Metrics of a model trained on ``n_train`` labels, from its predictions (``TextClassifier.decide``) on held-out ones."""
    return Evaluation(n_train, len(y_true), **classification_metrics(y_true, predicted), note="held out")


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
