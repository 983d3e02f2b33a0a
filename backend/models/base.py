"""Text classifiers the worker trains: one sklearn-like interface, two model modes.

- ``FineTunedClassifier`` (``backend.models.finetuned_classifier``): fine-tunes a BERT-family model end to end.
- ``FrozenEncoderClassifier`` (``backend.models.frozen_classifier``): a frozen encoder's mean-pooled embeddings plus a
  logistic-regression head; retrains in seconds.

Both share ``fit`` / ``predict_proba`` / ``embed`` / ``committee_proba`` / ``save`` / ``load``. Held-out
evaluation lives in ``backend.learning.evaluation``.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import numpy as np

from backend.core.labels import label_sets
from backend.core.progress import Progress
from backend.core.settings import ProjectSettings
from backend.models.devices import select_device


class TextClassifier(ABC):
    """A classifier over a fixed, ordered list of class names.

    Single-label by default: ``y`` holds class indices, ``predict_proba`` rows sum to 1 and feed the
    strategies as ``proba``. A multi-label classifier sets ``multi_label``, trains on an indicator matrix and
    reports ``label_proba`` (``strategies.ModelOutputs``).
    """

    multi_label = False
    #: The ``strategies.ModelOutputs`` field ``predict_proba`` fills.
    output_field = "proba"
    min_classes = 2
    #: The file (or folder) ``save`` writes into a version's folder; ``backend.models.families.load_classifier``
    #: tells the families apart by it.
    saved_file: str = ""

    def __init__(self, classes: Sequence[str], settings: ProjectSettings):
        if len(classes) < self.min_classes:
            raise ValueError(f"a classifier needs at least {self.min_classes} classes, got {list(classes)}")
        self.classes = list(classes)
        self.settings = settings
        self.device = select_device(settings.device)

    @abstractmethod
    def fit(self, texts: Sequence[str], y: np.ndarray, progress: Progress | None = None) -> "TextClassifier":
        """Train on class indices ``y`` (into ``self.classes``)."""

    @abstractmethod
    def predict_proba(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """(n, n_classes) probabilities."""

    @property
    def thresholds(self) -> np.ndarray | None:
        """Multi-label: each label's threshold, over which it is suggested. Single-label: None (the argmax)."""
        return None

    def probability_outputs(self, proba: np.ndarray) -> dict[str, np.ndarray]:
        """The ``strategies.ModelOutputs`` fields that ``predict_proba``'s output fills."""
        return {self.output_field: proba}

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """The predicted labels: class indices (the argmax), or with ``thresholds`` a 0/1 indicator matrix."""
        if self.thresholds is None:
            return proba.argmax(1)
        return label_sets(proba, self.thresholds)[0].astype(np.int64)

    @abstractmethod
    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """(n, dim) float32 embeddings."""

    @abstractmethod
    def committee_proba(self, texts: Sequence[str], members: int, progress: Progress | None = None) -> np.ndarray:
        """(members, n, n_classes) probabilities from a committee of models."""

    @abstractmethod
    def save(self, folder: Path) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, folder: Path, settings: ProjectSettings) -> "TextClassifier": ...


def saved_classes(folder: Path) -> list[str]:
    return json.loads((folder / "classes.json").read_text())
