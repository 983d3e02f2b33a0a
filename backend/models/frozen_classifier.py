"""A frozen encoder plus a logistic-regression head: the fast path of both model modes, retrains in seconds."""
from __future__ import annotations

from functools import cached_property
from typing import Callable, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from transformers import AutoConfig, AutoModel, AutoTokenizer

from backend.core.settings import ProjectSettings
from backend.models.base import TextClassifier, saved_classes
from backend.models.devices import inference_precision
from backend.models.encoder import (
    Encoder,
    check_max_length,
    mean_pool,
    resolve_model_path,
)
from backend.models.logistic_head import DEFAULT_C, fit_head, head_estimator, head_proba
from backend.store.embedding_cache import EmbeddingCache, encoder_fingerprint


class FrozenEncoderClassifier(TextClassifier):
    """Frozen encoder embeddings (mean pooled) + multinomial logistic regression.

    Embeddings are cached per text, so retraining the head after each new label costs milliseconds; the
    encoder's weights are loaded only when a text is not cached (a warm retrain never loads them).
    """

    saved_file = "head.npz"
    #: Beside the head: which encoder it reads (the encoder's weights are not copied into the version).
    ENCODER_FILE = "encoder.txt"

    def __init__(self, classes: Sequence[str], settings: ProjectSettings, model_path: str | None = None):
        super().__init__(classes, settings)
        self.model_path = model_path or resolve_model_path(settings.model_name)
        self.config = AutoConfig.from_pretrained(self.model_path, local_files_only=True)
        check_max_length(self.config, settings.max_length)
        self.head: LogisticRegression | None = None
        # The bootstrap committee refits heads on resamples of the training set.
        self.train_X = np.zeros((0, 0), dtype=np.float32)
        self.train_y = np.zeros(0, dtype=np.int64)
        self._cache: dict[str, np.ndarray] = {}

    @cached_property
    def encoder(self) -> Encoder:
        return Encoder(
            AutoModel.from_pretrained(self.model_path, local_files_only=True).eval(),
            AutoTokenizer.from_pretrained(self.model_path, local_files_only=True),
            self.device,
            self.settings.max_length,
            self.settings.batch_size,
        )

    def encode(self, texts: Sequence[str], progress=None) -> np.ndarray:
        """The texts' embeddings, computed now and not remembered (chunk jobs, and misses the caller caches)."""
        def forward(batch):
            return mean_pool(self.encoder.model(**batch).last_hidden_state, batch["attention_mask"])

        return self.encoder.map_batches(texts, forward, progress, "embed")

    def embed(self, texts, progress=None):
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            self._cache.update(zip(missing, self.encode(missing, progress)))
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)

    def embed_through_cache(
        self, cache: EmbeddingCache, task_ids: Sequence[int], texts: Sequence[str], progress=None, store: bool = True,
        embed_misses: Callable[[list[str]], np.ndarray] | None = None,
    ) -> tuple[int, int]:
        """Take the tasks' embeddings from the project's cache and compute only the misses; ``(hits, misses)``.

        The cache is keyed by task id, text and encoder (``backend.store.embedding_cache``), so after the first
        retrain a label costs embedding only new or edited tasks, not the whole pool again. Misses are
        written back when ``store`` (only the holder of the project lock writes the cache). ``embed_misses``
        computes them elsewhere (``backend.jobs.chunked_embedding``); by default, here.
        """
        vectors, hit = cache.lookup(task_ids, texts)
        self._cache.update((t, v) for t, v, h in zip(texts, vectors, hit) if h)
        missing = np.flatnonzero(~hit)
        if len(missing):
            missing_texts = [texts[i] for i in missing]
            fresh = embed_misses(missing_texts) if embed_misses else self.encode(missing_texts, progress)
            self._cache.update(zip(missing_texts, fresh))
            if store:
                cache.store([task_ids[i] for i in missing], [texts[i] for i in missing], fresh)
        return int(hit.sum()), len(missing)

    def cache_for(self, project_dir) -> EmbeddingCache:
        """This encoder's embedding cache in a project's folder."""
        return EmbeddingCache(project_dir / "embeddings", self.fingerprint, self.dim)

    @property
    def fingerprint(self) -> str:
        """Which encoder and settings the embeddings come from (``backend.store.embedding_cache``)."""
        return encoder_fingerprint(self.model_path, self.settings.max_length, inference_precision(self.device))

    @property
    def dim(self) -> int:
        return int(self.config.hidden_size)

    def fit(self, texts, y, progress=None):
        self.train_X, self.train_y = self.embed(texts, progress), np.asarray(y, dtype=np.int64)
        self.head = fit_head(self.train_X, self.train_y, self.settings.seed, self.settings.head_regularization)
        return self

    def predict_proba(self, texts, progress=None):
        return head_proba(self._require_head(), self.embed(texts, progress), len(self.classes))

    def committee_proba(self, texts, members, progress=None):
        """Bootstrap committee (Breiman 1996 bagging): each member is a head fit on a resample of the labels."""
        head = self._require_head()
        X_train, y_train = self.train_X, self.train_y
        X = self.embed(texts, progress)
        rng = np.random.default_rng(self.settings.seed)
        probas = []
        for _ in range(members):
            sample = rng.integers(0, len(y_train), len(y_train))
            # Members keep the head's C, so the committee varies the data, not the regularisation.
            resampled = len(set(y_train[sample])) > 1
            member = head_estimator(self.settings.seed, head.C).fit(X_train[sample], y_train[sample]) if resampled else head
            probas.append(head_proba(member, X, len(self.classes)))
        return np.stack(probas)

    def _require_head(self) -> LogisticRegression:
        if self.head is None:
            raise RuntimeError("the classifier head is not trained yet; call fit first")
        return self.head

    def save(self, folder):
        head = self._require_head()
        np.savez(
            folder / self.saved_file,
            coef=head.coef_,
            intercept=head.intercept_,
            classes=head.classes_,
            C=head.C,
            train_X=self.train_X,
            train_y=self.train_y,
        )
        self.save_encoder_name(folder)

    def save_encoder_name(self, folder) -> None:
        (folder / self.ENCODER_FILE).write_text(self.model_path)

    @classmethod
    def unfitted(cls, folder, settings):
        """A classifier of this family over the encoder a saved version names, its head not yet loaded."""
        return cls(saved_classes(folder), settings, model_path=(folder / cls.ENCODER_FILE).read_text())

    @classmethod
    def load(cls, folder, settings):
        classifier = cls.unfitted(folder, settings)
        with np.load(folder / cls.saved_file) as data:
            # Heads saved before C was stored were all fit with the default.
            head = LogisticRegression(C=float(data["C"]) if "C" in data else DEFAULT_C)
            head.coef_, head.intercept_, head.classes_ = data["coef"], data["intercept"], data["classes"]
            classifier.train_X, classifier.train_y = data["train_X"], data["train_y"]
        classifier.head = head
        return classifier
