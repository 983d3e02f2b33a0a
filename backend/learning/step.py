"""The active-learning step: from a project's labels to the ranking of its unlabeled pool.

The worker's retrain (``backend.jobs.retrain``) and ``al-simulate`` (``backend.simulation``) make the same calls
in the same order, so a simulation replays exactly what a project gets:

1. ``plan``: the phase rule (``backend.learning.phases``) picks the phase and the strategy, and says whether a
   model can train on these labels;
2. ``fit`` the classifier on the labels, and ``evaluate`` it by cross-validation on them (the worker; the
   simulation scores a held-out test set instead);
3. ``predict``: the trained model's probabilities of the pool: its suggestions, and what most strategies read;
4. ``query``: the strategy's informativeness of every pool task, from the outputs it requires
   (``backend.learning.scoring``); ``ranking`` turns it into what a version writes to Label Studio.

The caller reads the labels before and publishes after: the worker from and to Label Studio, the simulation
from the hidden labels of a dataset and into the next round's batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from backend.core.exceptions import Skip
from backend.core.progress import Progress
from backend.core.settings import ProjectSettings
from backend.learning.evaluation import (
    Evaluation,
    cross_validated_head,
    cross_validated_multilabel_head,
    cross_validated_tagger,
)
from backend.learning.phases import can_train, choose_phase
from backend.learning.scoring import collect_outputs, ls_scores, needs_trained_model
from backend.models.base import TextClassifier
from backend.store.pool_ranking import PoolRanking
from strategies import NER, QueryStrategy, make_strategy


@dataclass(frozen=True)
class Plan:
    """What this round does: the phase, the strategy that ranks, why, and whether a model trains."""

    phase: str
    strategy: QueryStrategy
    reason: str
    trainable: bool


@dataclass
class ActiveLearningStep:
    """One round over one classifier; ``task_type`` is the label config's, ``random_state`` seeds the strategy."""

    classifier: TextClassifier
    settings: ProjectSettings
    task_type: str
    random_state: int
    progress: Progress | None = None

    def plan(self, counted: np.ndarray) -> Plan:
        """``counted`` is what the phase rule counts (``backend.core.labels.training_targets``' second value).
        ``Skip`` when the strategy needs a trained model and none can train on these labels yet."""
        phase, name, reason = choose_phase(self.settings, counted, self.task_type)
        strategy = make_strategy(name, batch_size=self.settings.query_batch_size, random_state=self.random_state)
        trainable = can_train(self.settings, counted, self.task_type)
        if not trainable and needs_trained_model(strategy):
            raise Skip(f"strategy {strategy.name!r} needs a trained model, and none can train yet: {reason}")
        return Plan(phase, strategy, reason, trainable)

    def fit(self, plan: Plan, texts: Sequence[str], y) -> bool:
        """Fit the classifier on the labels when the plan trains one; whether it did."""
        if plan.trainable:
            self.classifier.fit(texts, y, self.progress)
        return plan.trainable

    def evaluate(self, plan: Plan, texts: Sequence[str], y) -> Evaluation | None:
        """The fitted model's cross-validated metrics on the labels it was fit on; None when none trained."""
        return cross_validated(self.classifier, texts, y, self.settings.seed) if plan.trainable else None

    def predict(self, plan: Plan, pool_texts: Sequence[str]) -> np.ndarray | None:
        """The trained model's probabilities of the pool; None when the plan trains no model."""
        return self.classifier.predict_proba(pool_texts, self.progress) if plan.trainable else None

    def query(
        self, plan: Plan, pool_texts: Sequence[str], labeled_texts: Sequence[str], y, proba: np.ndarray | None
    ) -> np.ndarray:
        """The plan's strategy's informativeness of each pool task (higher: ask sooner)."""
        outputs = collect_outputs(
            self.classifier, plan.strategy, pool_texts, labeled_texts, y,
            committee_size=self.settings.committee_size, seed=self.settings.seed, proba=proba, progress=self.progress,
        )
        return plan.strategy.query(outputs)

    def ranking(
        self, task_ids: Sequence[int], pool_texts: Sequence[str], informativeness: np.ndarray, proba: np.ndarray | None
    ) -> PoolRanking:
        """What a version writes: Label Studio's lowest-first scores and, with a trained model, its suggestions."""
        trained = proba is not None
        return PoolRanking.build(
            task_ids, ls_scores(informativeness), informativeness, proba, self.classifier.thresholds if trained else None,
            spans=self.classifier.suggestions(pool_texts, proba) if trained and self.task_type == NER else None,
        )


def cross_validated(classifier: TextClassifier, texts: Sequence[str], y, seed: int) -> Evaluation:
    """Cross-validated metrics of the fitted model that ranks the pool (the served head's own C)."""
    if classifier.output_field == "token_proba":
        return cross_validated_tagger(classifier.tagger, texts, y, seed)
    if classifier.multi_label:
        return cross_validated_multilabel_head(classifier.train_X, y, seed, classifier.head.C)
    return cross_validated_head(classifier.train_X, y, seed, classifier.head.C)
