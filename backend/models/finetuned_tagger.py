"""The NER full path's training: the encoder fine-tuned end to end as a BIO token classifier.

``AutoModelForTokenClassification`` on the project's encoder, one tag per token from ``backend.core.spans``
(special tokens ignored by the loss), trained with the sequence classifier's loop
(``backend.models.finetuned_classifier.train_epochs``). What the fast path gains is the encoder: after adoption the token head
(``backend.models.token_head``) tags over its token vectors, as the sentence heads read its sentence vectors.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from backend.core.progress import Progress
from backend.core.settings import ProjectSettings
from backend.core.spans import IGNORE, Span, bio_tags, spans_to_tags
from backend.models.devices import select_device
from backend.models.encoder import check_max_length, seed_everything
from backend.models.finetuned_classifier import train_epochs


class FineTunedTagger:
    """Fine-tunes a copy of the encoder at ``model_path`` on spans; ``save_encoder`` writes it for ``AutoModel``."""

    def __init__(self, labels: Sequence[str], settings: ProjectSettings, model_path: str):
        self.labels, self.settings = tuple(labels), settings
        self.device = select_device(settings.device)
        tags = bio_tags(self.labels)
        seed_everything(settings.seed)  # the new classification layer's initial weights follow the seed
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
        self.model = AutoModelForTokenClassification.from_pretrained(
            model_path, num_labels=len(tags), id2label=dict(enumerate(tags)), label2id={tag: i for i, tag in enumerate(tags)},
            ignore_mismatched_sizes=True, local_files_only=True,
        )
        check_max_length(self.model.config, settings.max_length)
        self.model.to(self.device)
        #: Spans the last ``fit`` could not align to tokens, by reason.
        self.dropped: Counter = Counter()

    def fit(self, texts: Sequence[str], spans: Sequence[Sequence[Span]], progress: Progress | None = None) -> "FineTunedTagger":
        seed_everything(self.settings.seed)
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.settings.max_length, return_offsets_mapping=True)
        offsets = encoded.pop("offset_mapping")
        tags, self.dropped = [], Counter()
        for text, text_offsets, text_spans in zip(texts, offsets, spans):
            alignment = spans_to_tags(text_offsets, text_spans, self.labels, text=text)
            tags.append(alignment.tags)
            self.dropped.update(alignment.dropped)

        def batch_of(index):
            batch = self.tokenizer.pad({key: [encoded[key][i] for i in index] for key in encoded.keys()}, return_tensors="pt")
            labels = torch.full(batch["input_ids"].shape, IGNORE, dtype=torch.long)
            for row, i in enumerate(index):
                labels[row, : len(tags[i])] = torch.as_tensor(tags[i])
            return {**{key: value.to(self.device) for key, value in batch.items()}, "labels": labels.to(self.device)}

        train_epochs(self.model, self.settings, self.device, len(texts), batch_of, progress)
        return self

    def save_encoder(self, folder: Path) -> None:
        """Weights and tokenizer in Hugging Face's layout: ``AutoModel`` loads the encoder alone from it."""
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
