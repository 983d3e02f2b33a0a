"""The fast path for NER projects: a token tagger (``backend.models.token_head``) beside the project's sentence embeddings.

The tagger ranks and suggests spans; the sentence embeddings (the same cached, mean-pooled vectors every
project has) serve the strategies that read embeddings, ``cold_start`` among them. Token vectors are cached
on disk too (``backend.store.token_cache``), so a retrain encodes only new or changed texts.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from backend.models.frozen_classifier import FrozenEncoderClassifier
from backend.store.token_cache import TokenCache
from backend.models.token_head import TokenHead
from backend.models.base import saved_classes


TOKEN_CACHE_FILE = "token_vectors.sqlite"
#: One suggested entity: start, end (Label Studio offsets, which are Python indices), label index, score, its text.
SpanSuggestion = tuple[int, int, int, float, str]


class SpanTagger(FrozenEncoderClassifier):
    """``fit(texts, spans)``; ``predict_proba`` gives (n, max_tokens, n_tags) BIO tag distributions, zero rows at
    special and padding positions; ``spans`` decodes them."""

    output_field = "token_proba"
    min_classes = 1

    def __init__(self, classes: Sequence[str], settings, model_path: str | None = None):
        super().__init__(classes, settings, model_path)
        self.tagger = TokenHead(
            self.classes, self.model_path, settings.max_length, settings.batch_size, settings.seed, settings.device
        )

    def embed_through_cache(self, cache, task_ids, texts, progress=None, store=True, embed_misses=None):
        """Sentence embeddings as every project has them, then the tasks' token vectors from the token cache
        (``backend.store.token_cache``, beside the sentence cache in the project's folder), encoding only the misses;
        returns the sentence cache's ``(hits, misses)``."""
        counts = super().embed_through_cache(cache, task_ids, texts, progress, store, embed_misses)
        tokens = TokenCache(cache.root.parent / TOKEN_CACHE_FILE, self.fingerprint)
        try:
            if store:
                tokens.clear_other_fingerprints()
            self.tagger.cache.update(tokens.lookup(task_ids, texts))
            missing = [(task_id, text) for task_id, text in zip(task_ids, texts) if text not in self.tagger.cache]
            self.token_cache_counts = (len(task_ids) - len(missing), len(missing))
            if missing:
                missing_ids, missing_texts = zip(*missing)
                computed = self.tagger.token_embeddings(list(missing_texts))
                if store:
                    tokens.store(missing_ids, missing_texts, computed)
        finally:
            tokens.close()
        return counts

    @property
    def dropped(self) -> Counter:
        """Spans the last ``fit`` could not align to tokens, by reason (``backend.core.spans``)."""
        return self.tagger.dropped

    def fit(self, texts, y, progress=None):
        self.tagger.fit(texts, y)
        return self

    def predict_proba(self, texts, progress=None):
        proba, _ = self.tagger.predict_token_proba(texts)
        return proba

    def probability_outputs(self, proba: np.ndarray) -> dict[str, np.ndarray]:
        return {"token_proba": proba, "token_mask": proba.sum(-1) > 0}

    def suggestions(self, texts: Sequence[str], proba: np.ndarray) -> list[tuple[SpanSuggestion, ...]]:
        """Each text's suggested entities, from ``predict_proba``'s output for those texts, as
        ``(start, end, label index, score, span text)`` (the rows ``model_store.PoolRanking`` keeps)."""
        decoded = self.tagger.decode(texts, proba, self.probability_outputs(proba)["token_mask"])
        return [
            tuple((s.start, s.end, self.classes.index(s.label), float(s.score or 0.0), text[s.start : s.end]) for s in spans)
            for text, spans in zip(texts, decoded)
        ]

    def committee_proba(self, texts, members, progress=None):
        raise NotImplementedError("no committee strategy ranks NER tasks")

    def save(self, folder):
        self.tagger.save(folder / "token_head.npz")
        (folder / "encoder.txt").write_text(self.model_path)

    @classmethod
    def load(cls, folder, settings):
        classifier = cls(saved_classes(folder), settings, model_path=(folder / "encoder.txt").read_text())
        classifier.tagger = TokenHead.load(
            folder / "token_head.npz", classifier.model_path, settings.batch_size, settings.seed, settings.device
        )
        return classifier
