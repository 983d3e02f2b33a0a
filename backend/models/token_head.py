"""The NER fast path: a per-token logistic-regression head over the frozen bundled encoder's token embeddings.

The encoder's last hidden state gives one vector per token; a multinomial logistic regression maps each
vector to a BIO tag (``backend.core.spans.bio_tags``), one independent softmax per token, which is what the
sequence strategies (``strategies.sequence``) rank with. Labels come in as character spans and go through
``backend.core.spans.spans_to_tags``; predictions go back through ``tags_to_spans``. Each text's token
embeddings are cached in memory, so refitting the head after a new label costs the fit alone.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import cached_property

import numpy as np
from sklearn.linear_model import LogisticRegression

from backend.core.spans import IGNORE, Span, bio_tags, spans_to_tags, tags_to_spans

#: The head's inverse regularisation strength: tokens are many even with few labeled texts, and a token's
#: vector carries its context, so the head needs less freedom than the text-level head's C = 10.
DEFAULT_TOKEN_C = 1.0


class TokenHead:
    """Frozen encoder token embeddings + a logistic-regression tagger over BIO tags."""

    def __init__(
        self,
        labels: Sequence[str],
        model_path: str | None = None,
        max_length: int = 128,
        batch_size: int = 64,
        seed: int = 0,
        device: str = "cpu",
        C: float = DEFAULT_TOKEN_C,
        class_weight: str | None = None,
        cache: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ):
        from backend.core.settings import DEFAULT_MODEL
        from backend.models.encoder import resolve_model_path

        self.labels = tuple(labels)
        self.tags = bio_tags(self.labels)
        self.model_path = model_path or resolve_model_path(DEFAULT_MODEL)
        self.max_length = max_length
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.C = C
        self.class_weight = class_weight
        self.head: LogisticRegression | None = None
        self._constant: int | None = None  # the one tag every labeled token had, when only one
        #: Spans the last ``fit`` could not use, by reason (``backend.core.spans.DROP_REASONS``).
        self.dropped: Counter = Counter()
        #: text -> (offsets (T, 2), vectors (T, d)); pass one dict to several heads over the same encoder and
        #: max_length to embed each text once for all of them.
        self.cache: dict[str, tuple[np.ndarray, np.ndarray]] = {} if cache is None else cache

    # ---- encoder ----

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)

    @cached_property
    def _model(self):
        from transformers import AutoModel

        from backend.models.devices import select_device
        from backend.models.encoder import check_max_length

        model = AutoModel.from_pretrained(self.model_path, local_files_only=True).eval()
        check_max_length(model.config, self.max_length)
        return model.to(select_device(self.device))

    def token_embeddings(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text: the tokenizer's offsets (T, 2) and the encoder's last hidden state (T, d), special tokens
        included (offset (0, 0)); computed once per distinct text, batched by length."""
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self._encode(missing)
        return [self.cache[t] for t in texts]

    def _encode(self, texts: list[str]) -> None:
        import torch

        from backend.models.devices import inference_autocast

        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length, return_offsets_mapping=True)
        offsets = encoded.pop("offset_mapping")
        order = np.argsort([len(ids) for ids in encoded["input_ids"]], kind="stable")
        model = self._model
        device = next(model.parameters()).device
        with torch.inference_mode():
            for begin in range(0, len(order), self.batch_size):
                rows = order[begin : begin + self.batch_size]
                batch = self.tokenizer.pad({key: [encoded[key][i] for i in rows] for key in encoded}, return_tensors="pt")
                with inference_autocast(device):
                    hidden = model(**{k: v.to(device) for k, v in batch.items()}).last_hidden_state
                hidden = hidden.float().cpu().numpy()
                for j, i in enumerate(rows):
                    n = len(encoded["input_ids"][i])
                    self.cache[texts[i]] = (np.asarray(offsets[i], dtype=np.int64).reshape(-1, 2), hidden[j, :n].copy())

    # ---- head ----

    def fit(self, texts: Sequence[str], spans: Sequence[Sequence[Span]]) -> TokenHead:
        """Fit the head on the texts' tokens, tagged from their spans; special tokens are left out."""
        if len(texts) != len(spans):
            raise ValueError(f"{len(texts)} texts but {len(spans)} span lists")
        X, y, self.dropped = [], [], Counter()
        for text, (offsets, vectors), text_spans in zip(texts, self.token_embeddings(texts), spans):
            alignment = spans_to_tags(offsets, text_spans, self.labels, text=text)
            self.dropped.update(alignment.dropped)
            tags = np.asarray(alignment.tags)
            keep = tags != IGNORE
            X.append(vectors[keep])
            y.append(tags[keep])
        X = np.concatenate(X) if X else np.zeros((0, 0), np.float32)
        y = np.concatenate(y) if y else np.zeros(0, np.int64)
        if len(y) == 0:
            raise ValueError("no token to fit on: every text is empty")
        seen = np.unique(y)
        if len(seen) == 1:
            self.head, self._constant = None, int(seen[0])
        else:
            self._constant = None
            self.head = LogisticRegression(C=self.C, max_iter=1000, class_weight=self.class_weight, random_state=self.seed)
            self.head.fit(X, y)
        return self

    def _require_fit(self) -> None:
        if self.head is None and self._constant is None:
            raise RuntimeError("the token head is not trained yet; call fit first")

    def _proba_rows(self, X: np.ndarray) -> np.ndarray:
        proba = np.zeros((len(X), len(self.tags)), dtype=np.float64)
        if self.head is None:
            proba[:, self._constant] = 1.0
        else:
            proba[:, self.head.classes_.astype(int)] = self.head.predict_proba(X)
        return proba

    def predict_token_proba(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(token_proba, token_mask)``: (n, max_tokens, n_tags) tag distributions at the tokenizer's
        positions (special tokens included, zero rows there) and (n, max_tokens) True on real tokens;
        ``max_tokens`` is the longest text's token count. The layout ``strategies.sequence`` reads."""
        self._require_fit()
        embedded = self.token_embeddings(texts)
        width = max((len(offsets) for offsets, _ in embedded), default=0)
        proba = np.zeros((len(texts), width, len(self.tags)), dtype=np.float32)
        mask = np.zeros((len(texts), width), dtype=bool)
        if not embedded:
            return proba, mask
        real = [offsets[:, 1] > offsets[:, 0] for offsets, _ in embedded]
        rows = self._proba_rows(np.concatenate([vectors[keep] for (_, vectors), keep in zip(embedded, real)]))
        at = 0
        for i, keep in enumerate(real):
            positions = np.flatnonzero(keep)
            proba[i, positions] = rows[at : at + len(positions)]
            mask[i, positions] = True
            at += len(positions)
        return proba, mask

    def predict_spans(self, texts: Sequence[str]) -> list[list[Span]]:
        """Each text's entities: the most probable tag per token, decoded by ``tags_to_spans``; a span's score
        is the mean over its tokens of their tag's probability."""
        return self.decode(texts, *self.predict_token_proba(texts))

    def decode(self, texts: Sequence[str], proba: np.ndarray, mask: np.ndarray) -> list[list[Span]]:
        """``predict_spans`` from probabilities ``predict_token_proba`` already gave for these texts."""
        best, score = proba.argmax(-1), proba.max(-1)
        spans = []
        for i, text in enumerate(texts):
            offsets = self.cache[text][0]
            tags = np.where(mask[i, : len(offsets)], best[i, : len(offsets)], 0)
            spans.append(tags_to_spans(text, offsets, tags, self.labels, token_scores=score[i, : len(offsets)]))
        return spans

    def save(self, path) -> None:
        """The fitted tagger (not the encoder, which ``model_path`` names) as one ``.npz`` file."""
        self._require_fit()
        head = self.head
        np.savez(
            path, labels=np.array(self.labels), C=self.C, max_length=self.max_length,
            constant=-1 if self._constant is None else self._constant,
            coef=head.coef_ if head is not None else np.zeros((0, 0)),
            intercept=head.intercept_ if head is not None else np.zeros(0),
            classes=head.classes_ if head is not None else np.zeros(0, dtype=np.int64),
        )

    @classmethod
    def load(cls, path, model_path: str, batch_size: int = 64, seed: int = 0, device: str = "cpu") -> "TokenHead":
        with np.load(path) as data:
            tagger = cls(
                [str(label) for label in data["labels"]], model_path, int(data["max_length"]), batch_size, seed, device,
                C=float(data["C"]),
            )
            if int(data["constant"]) >= 0:
                tagger._constant = int(data["constant"])
            else:
                tagger.head = LogisticRegression(C=tagger.C)
                tagger.head.coef_, tagger.head.intercept_, tagger.head.classes_ = data["coef"], data["intercept"], data["classes"]
        return tagger
