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

from backend.core.exceptions import (
    Skip,
)
from backend.core.labels import training_targets
from backend.jobs.connection import connect
from backend.jobs.context import ProjectJob, project_job, settled
from backend.jobs.queueing import FINETUNE, enqueue_retrain
from backend.labelstudio.rows import LabeledTask, PoolTask
from backend.labelstudio.task_mirror import TaskMirror, mirror_folder
from backend.learning.contest import SETFIT_SINGLE_LABEL, contest, judge, judging_split
from backend.learning.entity_metrics import entity_scores
from backend.learning.evaluation import (
    Evaluation,
    entity_evaluation,
)
from backend.models.encoder import resolve_model_path
from backend.models.families import head_classifier
from backend.models.finetuned_tagger import FineTunedTagger
from backend.models.frozen_classifier import FrozenEncoderClassifier
from backend.models.token_head import TokenHead
from backend.store.embedding_cache import EmbeddingCache
from backend.store.encoder_registry import Decision, EncoderRegistry
from strategies import NER

log = logging.getLogger(__name__)



def finetune(project_id: int) -> dict[str, Any]:
    """The RQ job: one full path of one project, one at a time per project (the "finetune" lock)."""
    with project_job(project_id, FINETUNE, scope="finetune") as job:
        registry = EncoderRegistry(job.store.project_dir(project_id))
        started = time.monotonic()
        try:
            decision = FullPath(job, registry).run()
        except Exception as error:
            ending = settled(error)
            if ending is None:
                registry.record(_ended("failed", f"{type(error).__name__}: {error}", job.job.id), None)
                raise
            decision = registry.record(_ended(*ending, job.job.id), None)
        log.info("project %s: full path %s in %.1f s: %s", project_id, decision.outcome, time.monotonic() - started, decision.reason)
        return {**decision.to_dict(), "seconds": round(time.monotonic() - started, 2)}


def _ended(outcome: str, reason: str, job_id: str) -> Decision:
    return Decision(outcome, 0, {}, {}, reason, time.time(), job_id=job_id)


class FullPath:
    def __init__(self, job: ProjectJob, registry: EncoderRegistry):
        self.job, self.registry = job, registry
        self.project_id, self.store, self.progress = job.project_id, job.store, job.progress

    def _locked(self):
        """The project lock, which the fast path holds while it reads the mirror, the registry and the cache."""
        return self.job.lock("retrain")

    def run(self) -> Decision:
        with self._locked():
            connection = connect(self.job.service, self.store, self.job.redis, self.project_id)
            settings, ls = connection.settings, connection.ls
            spec = connection.label_spec()
            mirror = TaskMirror(mirror_folder(self.store.project_dir(self.project_id)), self.job.service.resync_s)
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
            outcome, len(labeled), finetuned.to_dict(), baseline.to_dict(), reason, time.time(), job_id=self.job.job.id,
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
        enqueue_retrain(self.job.redis, self.job.service, self.project_id, reason="encoder adopted")
        return decision
