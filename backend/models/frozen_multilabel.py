"""The fast path for multi-label projects: the frozen encoder's cached embeddings plus a one-vs-rest head."""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from backend.models.frozen_classifier import FrozenEncoderClassifier
from backend.models.logistic_head import DEFAULT_C
from backend.models.multilabel_head import (
    MultiLabelHead,
    choose_multilabel_c,
    fit_linear,
    fit_multilabel_head,
)


class FrozenEncoderMultiLabelClassifier(FrozenEncoderClassifier):
    """``FrozenEncoderClassifier`` with ``y`` an indicator matrix and sigmoid outputs per label.

    ``predict_proba`` gives (n, n_labels) independent probabilities; ``thresholds`` (tuned per label) turn them
    into the suggested label sets. ``head_regularization: cv`` picks one C for every label
    (``choose_multilabel_c``).
    """

    multi_label = True
    output_field = "label_proba"
    saved_file = "multilabel_head.npz"

    def fit(self, texts, y, progress=None):
        self.train_X, self.train_y = self.embed(texts, progress), np.asarray(y, dtype=np.int64)
        seed = self.settings.seed
        C = choose_multilabel_c(self.train_X, self.train_y, seed) if self.settings.head_regularization == "cv" else DEFAULT_C
        self.head = fit_multilabel_head(self.train_X, self.train_y, seed, C)
        return self

    def predict_proba(self, texts, progress=None):
        return self._require_head().predict_proba(self.embed(texts, progress))

    @property
    def thresholds(self) -> np.ndarray:
        return self._require_head().thresholds

    def committee_proba(self, texts, members, progress=None):
        """Bootstrap committee of one-vs-rest heads (Breiman 1996 bagging), (members, n, n_labels)."""
        head = self._require_head()
        X = self.embed(texts, progress)
        rng = np.random.default_rng(self.settings.seed)
        probas = []
        for _ in range(members):
            sample = rng.integers(0, len(self.train_y), len(self.train_y))
            coef, intercept = fit_linear(self.train_X[sample], self.train_y[sample], self.settings.seed, head.C)
            probas.append(expit(X @ coef.T + intercept))
        return np.stack(probas)

    def save(self, folder):
        head = self._require_head()
        np.savez(
            folder / self.saved_file, coef=head.coef, intercept=head.intercept, thresholds=head.thresholds,
            C=head.C, train_X=self.train_X, train_y=self.train_y,
        )
        self.save_encoder_name(folder)

    @classmethod
    def load(cls, folder, settings):
        classifier = cls.unfitted(folder, settings)
        with np.load(folder / cls.saved_file) as data:
            classifier.head = MultiLabelHead(data["coef"], data["intercept"], data["thresholds"], float(data["C"]))
            classifier.train_X, classifier.train_y = data["train_X"], data["train_y"]
        return classifier
