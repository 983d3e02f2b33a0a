"""Serve predictions from the version Label Studio was switched to, without ever training.

Only the ledger's active version is served (``backend.store.ledger``): a newer version on disk whose write-back
never finished is not. Versions are immutable once published, so a loaded version is cached by its path;
a newly activated version is picked up on the next request, with no restart.

A task that cannot be read under the config (no text field, a malformed id) gets no prediction; the other
tasks of the batch are answered as usual.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from backend.core.labels import LabelSpec
from backend.core.settings import ProjectSettings
from backend.learning.scoring import score_against
from backend.models.base import TextClassifier
from backend.models.families import load_classifier
from backend.store.model_store import ModelStore, ModelVersion
from backend.store.pool_ranking import PoolRanking
from backend.store.version_meta import VersionMeta
from strategies import NER, ModelOutputs, make_strategy

log = logging.getLogger(__name__)


def _task_id(task: Any) -> int | None:
    """A task's integer id, or None for anything else (LS sends ints; a request may send anything)."""
    task_id = task.get("id") if isinstance(task, dict) else None
    return task_id if isinstance(task_id, int) and not isinstance(task_id, bool) else None

#: Score for a task the version never ranked and the strategy cannot rank alone: after every ranked task.
UNRANKED_SCORE = 1.0


@dataclass
class LoadedVersion:
    version: ModelVersion
    meta: VersionMeta

    @cached_property
    def settings(self) -> ProjectSettings:
        return ProjectSettings.parse(self.meta.settings)

    @cached_property
    def ranking(self) -> PoolRanking:
        return self.version.pool()

    @cached_property
    def pool(self) -> dict[int, tuple[float, int | tuple[int, ...], float]]:
        """task id -> (score, suggestion, its probability), as written to Label Studio."""
        return self.ranking.rows()

    @cached_property
    def classifier(self) -> TextClassifier | None:
        return load_classifier(self.version.path, self.settings) if self.meta.trained else None


class Predictor:
    def __init__(self, store: ModelStore):
        self.store = store
        self._loaded: dict[str, LoadedVersion] = {}
        self._lock = threading.Lock()

    def active(self, project_id: int) -> LoadedVersion | None:
        version = self.store.active(project_id)
        if version is None:
            return None
        key = str(version.path)
        with self._lock:
            if key not in self._loaded:
                # Older versions of this project are never served again.
                stale = [k for k, v in self._loaded.items() if v.version.project_id == project_id]
                for k in stale:
                    del self._loaded[k]
                self._loaded[key] = LoadedVersion(version, version.meta())
            return self._loaded[key]

    def predict(self, project_id: int, spec: LabelSpec, tasks: Sequence[Any]) -> list[list[dict]]:
        """One list of predictions per task: empty when no usable model exists yet, or the task is unreadable."""
        loaded = self.active(project_id)
        served = (tuple(loaded.meta.classes), loaded.meta.task_type) if loaded else None
        if loaded is None or served != (spec.classes, spec.task_type):
            if loaded is not None:
                log.warning("project %s: label config classes changed since %s; waiting for a retrain", project_id, loaded.version.name)
            return [[] for _ in tasks]
        texts = [spec.text_of(task.get("data")) if isinstance(task, dict) else None for task in tasks]
        ranked: list[tuple[float, int | tuple[int, ...], float] | None] = [
            loaded.pool.get(task_id) if (task_id := _task_id(task)) is not None else None for task in tasks
        ]
        fresh = [i for i, row in enumerate(ranked) if row is None and texts[i] is not None]
        fresh_rows = self._score_fresh(loaded, [texts[i] for i in fresh])
        for i, row in zip(fresh, fresh_rows):
            ranked[i] = row
        return [[spec.prediction(loaded.version.name, *row)] if row is not None else [] for row in ranked]

    def _score_fresh(self, loaded: LoadedVersion, texts: list[str]) -> list[tuple[float, int | tuple[int, ...], float]]:
        """(score, suggestion, its probability) for tasks the version never ranked, by the version's own rules."""
        if not texts:
            return []
        classifier = loaded.classifier
        proba = classifier.predict_proba(texts) if classifier is not None else None
        strategy = make_strategy(loaded.meta.strategy, batch_size=loaded.settings.query_batch_size, random_state=loaded.settings.seed)
        scores = np.full(len(texts), UNRANKED_SCORE)
        outputs = classifier.probability_outputs(proba) if proba is not None else {}
        if outputs and not strategy.batch_aware and strategy.requires and strategy.requires <= outputs.keys():
            informativeness = strategy.query(ModelOutputs(**outputs))
            scores = score_against(loaded.ranking.informativeness, informativeness)
        thresholds = classifier.thresholds if classifier is not None else None
        spans = classifier.suggestions(texts, proba) if proba is not None and loaded.meta.task_type == NER else None
        fresh = PoolRanking.build(np.zeros(len(texts)), scores, scores, proba, thresholds, spans=spans)
        return [row for row in zip(fresh.scores.tolist(), fresh.suggestions(), fresh.confidence.tolist())]
