"""The full path's contest: a fine-tuned encoder against the head over the encoder in use, on the same labels.

One training per contest, no second model for metrics: the fine-tune trains on all labels but the
``eval_fraction`` it holds out (``judging_split``), and is judged on those against the head over the encoder
in use, trained on the same labels (``contest``). ``judge`` adopts it only when it is at least as good and was
trained on at least as many labels as the encoder in use. The worker's full path (``backend.jobs.full_path``)
and ``al-simulate``'s two-speed mode (``backend.simulation.two_speed``) both decide with these functions, on one schedule (``backend.learning.phases.finetune_due``).
"""
from __future__ import annotations

import numpy as np

from backend.core.exceptions import Skip
from backend.core.settings import ProjectSettings
from backend.learning.evaluation import Evaluation, holdout_evaluation, holdout_split
from backend.learning.phases import can_train
from backend.models.finetuned_classifier import FineTunedClassifier
from backend.models.setfit_classifier import SetFitClassifier
from strategies import NER, SINGLE_LABEL

#: Held-out labels a fine-tune is judged on at least: fewer make adoption a coin toss.
MIN_JUDGED = 5
SETFIT_SINGLE_LABEL = "finetune_method: setfit tunes single-label projects only; use finetune_method: classifier"


def judging_split(y: np.ndarray, settings: ProjectSettings, task_type: str = SINGLE_LABEL) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) label indices for a fine-tune and its judgement; ``Skip`` when it could not be judged fairly.
    ``y`` is what ``backend.learning.phases`` counts: classes, label sets, or (NER) each task's span count."""
    if not can_train(settings, y, task_type):
        raise Skip(f"{len(y)} labels: too few to fine-tune (min_labels={settings.min_labels}, {_needed(task_type)})")
    # A tagger's labels are span counts, not classes: it needs a span to train on, not two classes.
    split = holdout_split(y, settings.eval_fraction, settings.seed, min_distinct=1 if task_type == NER else 2)
    if split is not None and task_type == NER and not y[split[0]].sum():
        split = None
    if split is None:
        raise Skip(
            f"eval_fraction={settings.eval_fraction} of {len(y)} labels holds none out, so a fine-tune could not be "
            "judged against the encoder in use; raise eval_fraction or label more"
        )
    train, held = split
    if len(held) < MIN_JUDGED:
        raise Skip(
            f"eval_fraction={settings.eval_fraction} of {len(y)} labels holds out {len(held)}; judging a fine-tune "
            f"against the encoder in use needs at least {MIN_JUDGED} held-out labels"
        )
    return train, held


def tuned_classifier(classes, multi_label: bool, settings: ProjectSettings):
    """The classifier the full path trains, by ``settings.finetune_method``; both start from the base model."""
    if settings.finetune_method == "setfit":
        if multi_label:
            raise Skip(SETFIT_SINGLE_LABEL)
        return SetFitClassifier(classes, settings)
    return FineTunedClassifier(classes, settings, multi_label=multi_label)


def contest(baseline, classes, multi_label: bool, settings: ProjectSettings, texts: list[str], y: np.ndarray, progress=None):
    """Tune a classifier (``tuned_classifier``) on all labels but the held-out ones, and evaluate it and
    ``baseline`` (the head over the encoder in use, refit here on the same labels) on those: (tuned classifier,
    its evaluation, the baseline's). The worker's full path and ``al-simulate``'s two-speed mode both judge with this."""
    train, held = judging_split(y, settings)
    train_texts, held_texts = [texts[i] for i in train], [texts[i] for i in held]
    finetuned = tuned_classifier(classes, multi_label, settings)
    baseline.fit(train_texts, y[train])
    baseline_eval = holdout_evaluation(y[held], baseline.decide(baseline.predict_proba(held_texts)), len(train))
    finetuned.fit(train_texts, y[train], progress)
    finetuned_eval = holdout_evaluation(y[held], finetuned.decide(finetuned.predict_proba(held_texts, progress)), len(train))
    return finetuned, finetuned_eval, baseline_eval


def judge(finetuned: Evaluation, baseline: Evaluation, n_labels: int, in_use_labels: int) -> tuple[str, str]:
    """``adopted`` only when the fine-tune is at least as good on the held-out labels and not trained on fewer
    labels than the encoder in use; ties go to the fine-tune, which saw the same labels end to end. Classifiers
    compare accuracy, then macro-F1; taggers (no accuracy) entity micro-F1, then macro-F1."""
    if n_labels < in_use_labels:
        return "stale", f"trained on {n_labels} labels; the encoder in use saw {in_use_labels}"
    first = "accuracy" if finetuned.accuracy is not None else "f1_micro"
    mine = (getattr(finetuned, first), finetuned.f1_macro)
    theirs = (getattr(baseline, first), baseline.f1_macro)
    verdict = "adopted" if mine >= theirs else "rejected"
    name = "accuracy" if first == "accuracy" else "entity micro-F1"
    return verdict, (
        f"held-out {name} {mine[0]:.3f} / macro-F1 {mine[1]:.3f} against the head over the "
        f"encoder in use at {theirs[0]:.3f} / {theirs[1]:.3f}, on {finetuned.n_eval} held-out labels"
    )


def _needed(task_type: str) -> str:
    return "and a span" if task_type == NER else "in at least 2 classes"
