"""The full path: fine-tune the encoder on the labels, judge it, and hand it to the fast path if it is better.

Runs on its own RQ queue (``AL_FINETUNE_QUEUE``, default ``al-finetune``), so a GPU worker on another machine
can serve only it while CPU workers keep the fast path going. It is queued every ``finetune_every`` labels of
a ``model_mode: finetune`` project, and at once on START_TRAINING or ``/train``.

One training per run, no second model for metrics: the fine-tune trains on all labels but the
``eval_fraction`` it holds out, and is judged on those against the head over the encoder in use, trained on
the same labels. Adopted (``backend.store.encoder_registry``) only when it is at least as good and trained on at least as
many labels as the encoder in use; then the pool is re-embedded with it and a fast retrain is queued, which
refits the head on all labels over the new embeddings and activates the version. The full path itself never
activates a version, so it can never put an older model in front of a newer one.

The project lock is held only to read the labels and to adopt, never while training: labels given during a
fine-tune still get their fast retrains.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from redis import Redis
from rq import get_current_job

from backend.models.families import head_classifier
from backend.jobs.connection import NotConnected, connect
from backend.store.embedding_cache import EmbeddingCache
from backend.store.encoder_registry import Decision, EncoderRegistry
from backend.models.encoder import resolve_model_path
from backend.learning.entity_metrics import entity_scores
from backend.learning.evaluation import Evaluation, entity_evaluation, holdout_evaluation, holdout_split
from backend.models.finetuned_classifier import FineTunedClassifier
from backend.models.frozen_classifier import FrozenEncoderClassifier
from backend.jobs.retrain import JobProgress, Skip
from backend.core.labels import UnsupportedLabelConfig, parse_label_config, training_targets
from backend.labelstudio.client import LabeledTask, PoolTask
from backend.store.model_store import ModelStore
from backend.learning.phases import can_train
from backend.jobs.project_lock import project_lock
from backend.jobs.queueing import FINETUNE, enqueue_retrain, is_dead, release_pending
from backend.core.settings import ProjectSettings, ServiceSettings, SettingsError
from backend.models.setfit_classifier import SetFitClassifier
from backend.labelstudio.task_mirror import TaskMirror, mirror_folder
from backend.models.finetuned_tagger import FineTunedTagger
from backend.models.token_head import TokenHead
from strategies import NER, SINGLE_LABEL

log = logging.getLogger(__name__)

#: Held-out labels a fine-tune is judged on at least: fewer make adoption a coin toss.
MIN_JUDGED = 5
SETFIT_SINGLE_LABEL = "finetune_method: setfit tunes single-label projects only; use finetune_method: classifier"


def finetune(project_id: int) -> dict[str, Any]:
    job = get_current_job()
    redis = job.connection
    service = ServiceSettings.from_env()
    store = ModelStore(service.model_dir)
    registry = EncoderRegistry(store.project_dir(project_id))
    with project_lock(redis, project_id, job.id, lambda holder: is_dead(redis, holder), scope="finetune"):
        release_pending(redis, project_id, job.id, FINETUNE)
        started = time.monotonic()
        try:
            decision = FullPath(project_id, service, store, redis, registry, job).run()
        except NotConnected as why:
            decision = _ended("refused", str(why), job.id)
        except (Skip, SettingsError, UnsupportedLabelConfig) as why:
            decision = _ended("skipped", str(why), job.id)
        except Exception as error:
            registry.record(_ended("failed", f"{type(error).__name__}: {error}", job.id), None)
            raise
        if decision.outcome in ("refused", "skipped"):
            registry.record(decision, None)
        log.info("project %s: full path %s in %.1f s: %s", project_id, decision.outcome, time.monotonic() - started, decision.reason)
        return {**decision.to_dict(), "seconds": round(time.monotonic() - started, 2)}


def _ended(outcome: str, reason: str, job_id: str) -> Decision:
    return Decision(outcome, 0, {}, {}, reason, time.time(), job_id=job_id)


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


class FullPath:
    def __init__(self, project_id: int, service: ServiceSettings, store: ModelStore, redis: Redis, registry: EncoderRegistry, job):
        self.project_id, self.service, self.store, self.redis = project_id, service, store, redis
        self.registry, self.job_id, self.progress = registry, job.id, JobProgress(job)

    def _locked(self):
        """The project lock, which the fast path holds while it reads the mirror, the registry and the cache."""
        return project_lock(self.redis, self.project_id, self.job_id, lambda holder: is_dead(self.redis, holder))

    def run(self) -> Decision:
        with self._locked():
            connection = connect(self.service, self.store, self.redis, self.project_id)
            settings, ls = connection.settings, connection.ls
            spec = parse_label_config(ls.project(self.project_id)["label_config"])
            mirror = TaskMirror(mirror_folder(self.store.project_dir(self.project_id)), self.service.resync_s)
            mirror.refresh(ls, self.project_id, spec)
            labeled, pool = mirror.labeled(), mirror.pool()
            in_use = self.registry.newest()
            in_use_path = self.registry.path_of(in_use)
        if spec.task_type == NER:
            return self._tagger(spec, settings, labeled, pool, in_use, in_use_path)
        texts = [task.text for task in labeled]
        baseline = head_classifier(spec, settings, model_path=in_use_path)
        baseline.embed_through_cache(
            baseline.cache_for(self.store.project_dir(self.project_id)), [t.id for t in labeled], texts, store=False
        )
        y = spec.targets([task.label for task in labeled])
        finetuned, finetuned_eval, baseline_eval = contest(baseline, spec.classes, spec.multiple, settings, texts, y, self.progress)
        return self._conclude(finetuned_eval, baseline_eval, in_use, None, finetuned.save_encoder, spec, settings, labeled, pool)

    def _tagger(self, spec, settings, labeled, pool, in_use, in_use_path) -> Decision:
        """NER: fine-tune the encoder as a token classifier, then judge the token head over it against the head
        over the encoder in use, both trained on the same labels: what the fast path would serve either way."""
        if settings.finetune_method == "setfit":
            raise Skip(SETFIT_SINGLE_LABEL)
        spans, counted, _ = training_targets(spec, labeled)
        train, held = judging_split(counted, settings, NER)
        texts = [task.text for task in labeled]

        def judged(model_path: str) -> Evaluation:
            tagger = TokenHead(spec.classes, model_path, settings.max_length, settings.batch_size, settings.seed, settings.device)
            tagger.fit([texts[i] for i in train], [spans[i] for i in train])
            found = tagger.predict_spans([texts[i] for i in held])
            return entity_evaluation(len(train), len(held), entity_scores([spans[i] for i in held], found, spec.classes), "held out")

        baseline_eval = judged(in_use_path or resolve_model_path(settings.model_name))
        staged = self.registry.staging_folder()
        tuned = FineTunedTagger(spec.classes, settings, in_use_path or resolve_model_path(settings.model_name))
        tuned.fit([texts[i] for i in train], [spans[i] for i in train], self.progress).save_encoder(staged)
        finetuned_eval = judged(str(staged))
        return self._conclude(finetuned_eval, baseline_eval, in_use, staged, None, spec, settings, labeled, pool)

    def _conclude(
        self, finetuned: Evaluation, baseline: Evaluation, in_use, staged: Path | None, save_encoder, spec, settings, labeled, pool
    ) -> Decision:
        """Judge and record the fine-tune; adopt its encoder when it wins: the one ``staged`` already, or one
        ``save_encoder`` writes now (a sequence classifier saves only when adopted)."""
        outcome, reason = judge(finetuned, baseline, len(labeled), in_use.n_labels if in_use else 0)
        decision = Decision(
            outcome, len(labeled), finetuned.to_dict(), baseline.to_dict(), reason, time.time(), job_id=self.job_id,
            method=settings.finetune_method,
        )
        log.info("project %s: fine-tune %s (%s)", self.project_id, outcome, reason)
        if outcome != "adopted":
            with self._locked():
                return self.registry.record(decision, staged)
        if staged is None:
            staged = self.registry.staging_folder()
            save_encoder(staged)
        return self._adopt(decision, staged, spec, settings, [*labeled, *pool])

    def _adopt(self, decision: Decision, staged, spec, settings, tasks: list[LabeledTask | PoolTask]) -> Decision:
        """Embed the tasks with the staged encoder (unlocked: minutes), then record it and store the vectors at once."""
        encoder = FrozenEncoderClassifier(spec.classes, settings, model_path=str(staged))
        # The fingerprint names what the encoder computes, not where it lives: it holds after the move below.
        fingerprint, dim = encoder.fingerprint, encoder.dim
        vectors = encoder.embed([t.text for t in tasks], self.progress)
        with self._locked():
            decision = self.registry.record(decision, staged)
            cache = EmbeddingCache(self.store.project_dir(self.project_id) / "embeddings", fingerprint, dim)
            cache.store([t.id for t in tasks], [t.text for t in tasks], vectors)
        enqueue_retrain(self.redis, self.service, self.project_id, reason="encoder adopted")
        return decision


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
