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
from backend.models.token_head import DEFAULT_TOKEN_C, TokenHead
from backend.store.token_cache import TokenCache

TOKEN_CACHE_FILE = "token_vectors.sqlite"
#: One suggested entity: start, end (Label Studio offsets, which are Python indices), label index, score, its text.
SpanSuggestion = tuple[int, int, int, float, str]


class SpanTagger(FrozenEncoderClassifier):
    """``fit(texts, spans)``; ``predict_proba`` gives (n, max_tokens, n_tags) BIO tag distributions, zero rows at
    special and padding positions; ``spans`` decodes them."""

    output_field = "token_proba"
    min_classes = 1
    saved_file = "token_head.npz"

    def __init__(self, classes: Sequence[str], settings, model_path: str | None = None, C: float = DEFAULT_TOKEN_C):
        super().__init__(classes, settings, model_path)
        self.C = C
        #: Token vectors by text, shared by every tagger this classifier fits (``backend.models.token_head``).
        self.token_vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.tagger = self._new_tagger()

    def _new_tagger(self) -> TokenHead:
        """A tagger with the current settings (the seed may change between fits), over the shared token vectors."""
        settings = self.settings
        return TokenHead(
            self.classes, self.model_path, settings.max_length, settings.batch_size, settings.seed, settings.device,
            C=self.C, cache=self.token_vectors,
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
        self.tagger = self._new_tagger().fit(texts, y)
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
        self.tagger.save(folder / self.saved_file)
        self.save_encoder_name(folder)

    @classmethod
    def load(cls, folder, settings):
        classifier = cls.unfitted(folder, settings)
        classifier.tagger = TokenHead.load(
            folder / cls.saved_file, classifier.model_path, settings.batch_size, settings.seed, settings.device
        )
        classifier.tagger.cache = classifier.token_vectors
        return classifier
