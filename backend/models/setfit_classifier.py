"""The full path's SetFit method (``finetune_method: setfit``): a contrastive update of the encoder, then the head.

SetFit (Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts") fine-tunes a sentence encoder on
pairs drawn from the labels: texts of the same class are pulled together and texts of different classes pushed
apart (cosine-similarity loss), ``num_iterations`` positive and negative pairs per label. A classifier head is
then fitted over the tuned encoder. Here that head is the fast path's own (``backend.models.logistic_head``), so the model the
full path judges is exactly the one the fast path serves once the encoder is adopted.

The training is setfit's own (``setfit.Trainer.train_embeddings``), installed with the ``setfit`` extra. On the
benchmark's short-text sets it raised accuracy at 90 labels by about 6 pp over the frozen head
(``bench/levers_costly.md``); it costs minutes on a CPU, so it runs on the occasional full path, never per label.
"""
from __future__ import annotations

import tempfile
from typing import Sequence

import numpy as np

from backend.core.exceptions import SettingsError
from backend.models.encoder import Encoder
from backend.models.frozen_classifier import FrozenEncoderClassifier

#: setfit's recipe from the paper: one epoch over 20 positive and 20 negative pairs per label.
NUM_ITERATIONS = 20
NUM_EPOCHS = 1


def require_setfit() -> None:
    """A clear error where the extra is missing, before any training starts."""
    try:
        import setfit  # noqa: F401
    except ModuleNotFoundError as missing:
        if missing.name != "setfit":
            raise  # installed but broken (a dependency missing or shadowed): say which, not "not installed"
        raise SettingsError(
            "finetune_method: setfit needs the setfit package: pip install 'ls-active-learning[setfit]'"
        ) from None


class SetFitClassifier(FrozenEncoderClassifier):
    """The head over an encoder tuned by SetFit on the labels it is fitted on."""

    def __init__(self, classes: Sequence[str], settings, model_path: str | None = None):
        require_setfit()
        super().__init__(classes, settings, model_path)

    def fit(self, texts, y, progress=None):
        from setfit import SetFitModel, Trainer, TrainingArguments

        y = np.asarray(y, dtype=np.int64)
        model = SetFitModel.from_pretrained(self.model_path, device=str(self.device), local_files_only=True)
        with tempfile.TemporaryDirectory(prefix="setfit-") as scratch:
            # Nothing is saved or logged on the way: the tuned encoder is saved only if the full path adopts it.
            args = TrainingArguments(
                batch_size=self.settings.batch_size, num_epochs=NUM_EPOCHS, num_iterations=NUM_ITERATIONS,
                max_length=self.settings.max_length, seed=self.settings.seed, output_dir=scratch, save_strategy="no",
                logging_strategy="no", report_to="none", show_progress_bar=False,
            )
            Trainer(model=model, args=args).train_embeddings(list(texts), y.tolist())
        if progress:
            progress("train", 1, 1)
        transformer = model.model_body[0]
        # The tuned encoder replaces the base one; embeddings of the base encoder no longer apply.
        self.encoder = Encoder(
            transformer.auto_model.eval(), transformer.tokenizer, self.device, self.settings.max_length, self.settings.batch_size
        )
        self._cache.clear()
        return super().fit(texts, y, progress)

    def save_encoder(self, folder) -> None:
        """Weights and tokenizer in Hugging Face's layout, as the fast path loads an adopted encoder."""
        self.encoder.model.save_pretrained(folder)
        self.encoder.tokenizer.save_pretrained(folder)
