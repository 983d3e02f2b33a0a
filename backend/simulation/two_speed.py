"""The worker's ``model_mode: finetune`` in the simulation: a head every round, and the full path every
``finetune_every`` labels, judged and adopted by the worker's own rules.

The worker fits a head over the newest adopted encoder on every label (the fast path) and queues a fine-tune
of the encoder every ``finetune_every`` labels (``backend.jobs.queueing.finetune_due``). The fine-tune is judged on
held-out labels against the head over the encoder in use (``backend.jobs.full_path.contest`` and ``judge``); only an
adopted one replaces the encoder, and the pool is re-embedded with it. Here the same functions decide, and the
round that made the full path due already ranks over the adopted encoder: as if the fine-tune finished before
the annotators asked for the next batch (seconds on a GPU; on a CPU a minute or more, while labels keep coming).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field

import numpy as np

from backend.core.exceptions import Skip
from backend.learning.contest import contest, judge
from backend.learning.phases import finetune_due


@dataclass
class FullPathRun:
    """One simulated project's full path: when it last ran, and the encoder it adopted."""

    classes: list[str]
    multi_label: bool
    every: int
    requested_at: int = 0
    adopted: object | None = None  # the head classifier over the adopted encoder; None: the base encoder
    adopted_labels: int = 0
    _folder: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    def head(self, base):
        """The fast path's classifier this round: the head over the adopted encoder, else ``base``."""
        return self.adopted or base

    def run_if_due(self, base, texts: list[str], y: np.ndarray, every_text: list[str], progress=None) -> dict | None:
        """Run the full path on the labeled ``texts``/``y`` when the schedule says so; on adoption, embed
        ``every_text`` (pool and test) with the new encoder. The decision, or None when not due."""
        if not finetune_due(len(y), self.requested_at, self.every):
            return None
        self.requested_at = len(y)
        in_use = self.head(base)
        try:
            finetuned, finetuned_eval, baseline_eval = contest(
                in_use, self.classes, self.multi_label, in_use.settings, texts, y, progress
            )
        except Skip as why:
            decision = {"n_labels": len(y), "outcome": "skipped", "reason": str(why)}
        else:
            outcome, reason = judge(finetuned_eval, baseline_eval, len(y), self.adopted_labels)
            decision = {"n_labels": len(y), "outcome": outcome, "reason": reason,
                        "finetuned_accuracy": finetuned_eval.accuracy, "baseline_accuracy": baseline_eval.accuracy}
            if outcome == "adopted":
                self._adopt(finetuned, in_use.settings, len(y), every_text, progress)
        return decision

    def _adopt(self, finetuned, settings, n_labels: int, every_text: list[str], progress) -> None:
        from backend.models.families import build_classifier

        # The encoder loads lazily, so its folder lives as long as it is the one in use; the one it replaces goes.
        folder = tempfile.TemporaryDirectory(prefix="al-simulate-encoder-")
        finetuned.save_encoder(folder.name)
        adopted = build_classifier(self.classes, settings, self.multi_label, model_path=folder.name)
        adopted.embed(every_text, progress)
        self.adopted, self.adopted_labels, self._folder = adopted, n_labels, folder
