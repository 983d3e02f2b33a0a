"""A frozen encoder plus a logistic-regression head (``model_mode: head``): retrains in seconds."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from transformers import AutoModel, AutoTokenizer

from backend.embedding_cache import encoder_fingerprint
from backend.encoder import Encoder, mean_pool, resolve_model_path
from backend.settings import ProjectSettings
from backend.training import TextClassifier, saved_classes


class FrozenEncoderClassifier(TextClassifier):
    """Frozen encoder embeddings (mean pooled) + multinomial logistic regression.

    Embeddings are cached per text, so retraining the head after each new label costs milliseconds.
    """

    def __init__(self, classes: Sequence[str], settings: ProjectSettings, model_path: str | None = None):
        super().__init__(classes, settings)
        self.model_path = model_path or resolve_model_path(settings.model_name)
        self.encoder = Encoder(
            AutoModel.from_pretrained(self.model_path).eval(),
            AutoTokenizer.from_pretrained(self.model_path),
            self.device,
            settings.max_length,
            settings.batch_size,
        )
        self.head: LogisticRegression | None = None
        # The bootstrap committee refits heads on resamples of the training set.
        self.train_X = np.zeros((0, 0), dtype=np.float32)
        self.train_y = np.zeros(0, dtype=np.int64)
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts, progress=None):
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            def forward(batch):
                return mean_pool(self.encoder.model(**batch).last_hidden_state, batch["attention_mask"])

            vectors = self.encoder.map_batches(missing, forward, progress, "embed")
            self._cache.update(zip(missing, vectors))
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)

    def remember(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Embeddings computed earlier (the project's embedding cache), so ``embed`` does not compute them again."""
        self._cache.update(zip(texts, vectors))

    @property
    def fingerprint(self) -> str:
        """Which encoder and settings the embeddings come from (``backend.embedding_cache``)."""
        return encoder_fingerprint(self.model_path, self.settings.max_length)

    @property
    def dim(self) -> int:
        return int(self.encoder.model.config.hidden_size)

    def fit(self, texts, y, progress=None):
        self.train_X, self.train_y = self.embed(texts, progress), np.asarray(y, dtype=np.int64)
        self.head = fit_head(self.train_X, self.train_y, self.settings.seed)
        return self

    def predict_proba(self, texts, progress=None):
        return _head_proba(self._require_head(), self.embed(texts, progress), len(self.classes))

    def committee_proba(self, texts, members, progress=None):
        """Bootstrap committee (Breiman 1996 bagging): each member is a head fit on a resample of the labels."""
        head = self._require_head()
        X_train, y_train = self.train_X, self.train_y
        X = self.embed(texts, progress)
        rng = np.random.default_rng(self.settings.seed)
        probas = []
        for _ in range(members):
            sample = rng.integers(0, len(y_train), len(y_train))
            member = fit_head(X_train[sample], y_train[sample], self.settings.seed) if len(set(y_train[sample])) > 1 else head
            probas.append(_head_proba(member, X, len(self.classes)))
        return np.stack(probas)

    def _require_head(self) -> LogisticRegression:
        if self.head is None:
            raise RuntimeError("the classifier head is not trained yet; call fit first")
        return self.head

    def save(self, folder):
        head = self._require_head()
        np.savez(
            folder / "head.npz",
            coef=head.coef_,
            intercept=head.intercept_,
            classes=head.classes_,
            train_X=self.train_X,
            train_y=self.train_y,
        )
        (folder / "encoder.txt").write_text(self.model_path)

    @classmethod
    def load(cls, folder, settings):
        classifier = cls(saved_classes(folder), settings, model_path=(folder / "encoder.txt").read_text())
        with np.load(folder / "head.npz") as data:
            head = LogisticRegression()
            head.coef_, head.intercept_, head.classes_ = data["coef"], data["intercept"], data["classes"]
            classifier.train_X, classifier.train_y = data["train_X"], data["train_y"]
        classifier.head = head
        return classifier


def fit_head(X: np.ndarray, y: np.ndarray, seed: int) -> LogisticRegression:
    return LogisticRegression(max_iter=2000, C=10.0, random_state=seed).fit(X, y)


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


def _head_proba(head: LogisticRegression, X: np.ndarray, n_classes: int) -> np.ndarray:
    """Place the head's columns (only classes it saw) into the full class list."""
    proba = np.zeros((len(X), n_classes), dtype=np.float64)
    proba[:, head.classes_.astype(int)] = head.predict_proba(X)
    return proba
