"""The retrain job, run by the worker: the active-learning step for one project, from Label Studio and back.

A retrain confirms with Label Studio that the project connected this backend (``backend.jobs.connection``) and
reads the owner's settings from that connection, then reads what changed in the project (the task mirror),
embeds new tasks, and takes the active-learning step (``backend.learning.step``: phase, fit, cross-validate,
rank). It publishes the version, writes its predictions in bounded chunks and switches the project to it,
and finally prunes this backend's older versions from Label Studio (``backend.jobs.publish``). All of it runs
under the project lock (``backend.jobs.project_lock``).

Problems a retry cannot fix (a project that never connected, a bad label config, too few labels) end the
job with a ``refused`` or ``skipped`` result instead of an exception, so RQ does not retry them
(``backend.jobs.context.settled``).
"""
from __future__ import annotations

import logging
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from backend.core.exceptions import Skip
from backend.core.labels import LabelSpec, label_counts, training_targets
from backend.core.metrics import (
    StageTimes,
    record_embedding_cache,
    record_predictions_written,
    record_retrain,
)
from backend.core.settings import ProjectSettings
from backend.jobs.chunked_embedding import embed_in_chunks
from backend.jobs.connection import Connection, connect
from backend.jobs.context import SKIPPED, ProjectJob, project_job, settled
from backend.jobs.outcomes import save_retrain_outcome
from backend.jobs.project_lock import lock_for
from backend.jobs.publish import KEEP_LOCAL_VERSIONS, prune, publish_version, write_back
from backend.jobs.queueing import (
    RESYNC,
    RETRAIN,
    enqueue,
    enqueue_finetune_if_due,
    pending_key,
)
from backend.jobs.task_hints import (
    clear_hints,
    clear_resync,
    pending_hints,
    pending_resync,
)
from backend.labelstudio.rows import LabeledTask, PoolTask, SkippedTasks
from backend.labelstudio.task_mirror import RefreshReport, TaskMirror, mirror_folder
from backend.learning.acceptance import span_acceptance, suggestion_acceptance
from backend.learning.step import ActiveLearningStep
from backend.learning.stopping_signal import pool_uncertainty, stopping_signal
from backend.models.families import head_classifier
from backend.models.frozen_classifier import FrozenEncoderClassifier
from backend.store.encoder_registry import EncoderRegistry
from backend.store.history import history_record
from backend.store.model_store import ModelVersion
from backend.store.version_meta import VersionMeta
from strategies import NER

log = logging.getLogger(__name__)

#: The outcome's fields that ``/status`` and the dashboard show of a retrain that published a version.
OUTCOME_FIELDS = ("status", "model_version", "seconds", "n_labeled", "n_pool", "phase", "skipped_tasks", "pruned",
                  "embedding_cache", "read")


def retrain(project_id: int) -> dict[str, Any]:
    """The RQ job: one retrain of one project, its outcome recorded for ``/status`` and ``/metrics``."""
    with project_job(project_id, RETRAIN) as job:
        times = StageTimes()
        try:
            with times.stage("connect"):
                connection = connect(job.service, job.store, job.redis, project_id)
            result = Retrain(connection, job, times).run()
            record_predictions_written(job.redis, result["predictions_written"])
            record_embedding_cache(job.redis, **result["embedding_cache"])
            outcome = {key: result[key] for key in OUTCOME_FIELDS} | {
                "peak_rss_mb": peak_rss_mb(), "stages": {name: round(s, 3) for name, s in times.with_total().items()},
            }
        except Exception as error:
            ending = settled(error)
            if ending is None:
                # Re-raised so RQ retries (an LS or Redis outage); recorded so the owner sees why in /status.
                record_retrain(job.redis, "failed", times.with_total())
                save_retrain_outcome(
                    job.redis, project_id,
                    {"status": "failed", "reason": f"{type(error).__name__}: {error}", "job_id": job.job.id, "finished_at": time.time()},
                )
                raise
            log.warning("project %s: retrain %s: %s", project_id, *ending)
            result = outcome = {"status": ending[0], "reason": ending[1]}
        record_retrain(job.redis, outcome["status"], times.with_total())
        save_retrain_outcome(job.redis, project_id, {**outcome, "job_id": job.job.id, "finished_at": time.time()})
        return result


def peak_rss_mb() -> float:
    """This process's peak resident memory: RQ runs each job in a fresh work horse, so it is the job's."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@dataclass
class Labels:
    """What a retrain read: the labeled and unlabeled tasks, and what the model trains on."""

    spec: LabelSpec
    labeled: list[LabeledTask]
    pool: list[PoolTask]
    #: What the model trains on, what the phase rule counts, and spans that could not be read (NER).
    targets: Any
    counted: Any
    dropped_spans: Counter
    read: RefreshReport
    #: Tasks without a readable text under the config: counted and named, never trained on or ranked.
    skipped: SkippedTasks

    @property
    def labeled_texts(self) -> list[str]:
        return [task.text for task in self.labeled]

    @property
    def pool_texts(self) -> list[str]:
        return [task.text for task in self.pool]


@dataclass
class Retrain:
    connection: Connection
    job: ProjectJob
    times: StageTimes = field(default_factory=StageTimes)
    cache_hits: int = 0
    cache_misses: int = 0

    @property
    def settings(self) -> ProjectSettings:
        return self.connection.settings

    @property
    def project_id(self) -> int:
        return self.connection.project_id

    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        except SKIPPED:
            # Nothing to publish, but a prune deferred by an earlier retrain (a label was waiting) is done now,
            # unless a label is waiting again.
            if not self.job.redis.exists(pending_key(self.project_id)):
                prune(self.connection.ls, self.job.store, self.project_id, self.job.held)
            raise

    def _run(self) -> dict[str, Any]:
        started = time.monotonic()
        stage, store = self.times.stage, self.job.store
        leftovers = store.remove_stale_staging(self.project_id)
        if leftovers:
            log.warning("project %s: removed staging folders of killed publishes: %s", self.project_id, leftovers)
        with stage("read"):
            labels = self._read()
        encoders = EncoderRegistry(store.project_dir(self.project_id))
        # The fast path: a head over the newest encoder the full path adopted (the base model until then).
        in_use = encoders.newest()
        classifier = head_classifier(labels.spec, self.settings, model_path=encoders.path_of(in_use))
        step = ActiveLearningStep(classifier, self.settings, labels.spec.task_type, self.settings.seed, self.job.progress)
        plan = step.plan(labels.counted)
        log.info("project %s: %d labeled, %d unlabeled tasks; phase %s", self.project_id, len(labels.labeled),
                 len(labels.pool), plan.phase)
        with stage("embed"):
            self._embed(classifier, [*labels.labeled, *labels.pool])
        evaluation = None
        if plan.trainable:
            with stage("train"):
                step.fit(plan, labels.labeled_texts, labels.targets)
            with stage("evaluate"):
                evaluation = step.evaluate(plan, labels.labeled_texts, labels.targets)
            log.info("project %s: cross-validated head %s", self.project_id, evaluation.to_dict())
        with stage("score"):
            proba = step.predict(plan, labels.pool_texts)
            informativeness = step.query(plan, labels.pool_texts, labels.labeled_texts, labels.targets, proba)
            ranking = step.ranking([t.id for t in labels.pool], labels.pool_texts, informativeness, proba)
        previous = store.active(self.project_id)
        meta = self._meta(labels, plan, classifier, in_use, evaluation, ranking, proba)
        with stage("publish"):
            version = publish_version(store, self.project_id, classifier if plan.trainable else None, ranking, meta)
        log.info("project %s: published %s; stopping signal: %s", self.project_id, version,
                 meta.stopping["recommendation"]["reason"])
        with stage("write"):
            written = write_back(self.connection.ls, store, self.job.held, self.project_id, version, ranking,
                                 labels.spec, self.settings.top_k, self.job.progress)
        self._record_history(version, meta, previous, labels)
        if self.settings.model_mode == "finetune" and plan.trainable:
            enqueue_finetune_if_due(self.job.redis, self.job.service, self.project_id, len(labels.labeled),
                                    self.settings.finetune_every)
        with stage("prune"):
            pruned, removed = self._prune(len(labels.pool))
        seconds = round(time.monotonic() - started, 2)
        log.info("project %s: %s active after %.1f s; pruned LS versions %s, local %s", self.project_id, version, seconds,
                 pruned, removed)
        return {
            "status": "trained" if plan.trainable else "ranked", "model_version": version, "seconds": seconds,
            "pruned": pruned, "predictions_written": written,
            "embedding_cache": {"hits": self.cache_hits, "misses": self.cache_misses}, **meta.to_dict(),
        }

    def _meta(self, labels: Labels, plan, classifier, in_use, evaluation, ranking, proba) -> VersionMeta:
        ner = labels.spec.task_type == NER
        return VersionMeta(
            project=self.project_id, trained=plan.trainable, strategy=plan.strategy.name, phase=plan.phase,
            phase_reason=plan.reason, settings=self.settings.to_dict(), classes=list(labels.spec.classes),
            task_type=labels.spec.task_type, encoder=in_use.folder if in_use else "base", n_labeled=len(labels.labeled),
            n_pool=len(labels.pool), skipped_tasks=labels.skipped.to_dict(), read=labels.read.to_dict(),
            evaluation=evaluation.to_dict() if evaluation else None,
            token_cache=dict(zip(("hits", "misses"), classifier.token_cache_counts)) if ner else None,
            # Annotated spans that could not be used, by reason (``backend.core.spans``): read, then aligned to tokens.
            dropped_spans=dict(labels.dropped_spans + (classifier.dropped if plan.trainable and ner else Counter())),
            stopping=stopping_signal(
                self.job.store.latest(self.project_id), ranking,
                pool_uncertainty(classifier.probability_outputs(proba)) if plan.trainable else None,
            ),
        )

    def _read(self) -> Labels:
        """The project's labels and pool, from the task mirror refreshed with what changed in Label Studio."""
        spec = self.connection.label_spec()
        mirror = TaskMirror(mirror_folder(self.job.store.project_dir(self.project_id)), self.job.service.resync_s)
        read = self._refresh(mirror, spec)
        labeled, pool = mirror.labeled(), mirror.pool()
        log.info("project %s: %s read of %d tasks (%s)", self.project_id, read.mode, read.read, read.why or "changes only")
        skipped = mirror.skipped(spec.missing_field_reason)
        if not pool:
            raise Skip(f"every one of the {len(labeled)} readable tasks is labeled: there is nothing to rank")
        if skipped.count:
            log.warning("project %s: skipped %d tasks: %s", self.project_id, skipped.count, skipped.to_dict())
        targets, counted, dropped_spans = training_targets(spec, labeled)
        return Labels(spec, labeled, pool, targets, counted, dropped_spans, read, skipped)

    def _refresh(self, mirror: TaskMirror, spec) -> RefreshReport:
        """Read what changed; the webhook hints used are then forgotten. A full resync that is due (periodic, or
        asked for by the owner) is queued for ``backend.jobs.resync``, never run here under the project lock."""
        redis = self.job.redis
        hints, asked = pending_hints(redis, self.project_id), pending_resync(redis, self.project_id)
        report = mirror.refresh(self.connection.ls, self.project_id, spec, hinted_ids=hints, progress=self.job.progress)
        clear_hints(redis, self.project_id, hints)
        reason = f"resync asked for ({asked})" if asked else report.resync_due
        resync_running = lock_for(redis, self.project_id, scope="resync").locked()
        if reason and report.mode == "incremental" and (asked or not resync_running):
            enqueue(redis, self.job.service, self.project_id, reason, RESYNC, args=(reason,))
        if asked:
            clear_resync(redis, self.project_id, asked)
        return report

    def _embed(self, classifier: FrozenEncoderClassifier, tasks: list[LabeledTask | PoolTask]) -> None:
        """Every task's embedding from the project's cache; misses are computed (in chunk jobs when many) and stored."""
        project_dir = self.job.store.project_dir(self.project_id)
        cache = classifier.cache_for(project_dir)
        cache.clear_other_fingerprints()
        progress = self.job.progress
        self.cache_hits, self.cache_misses = classifier.embed_through_cache(
            cache, [t.id for t in tasks], [t.text for t in tasks], progress,
            embed_misses=lambda texts: embed_in_chunks(
                classifier, texts, redis=self.job.redis, service=self.job.service, progress=progress,
                plan_dir=project_dir / "scoring" / progress.job_name,
            ),
        )
        log.info("project %s: embeddings: %d from the cache, %d computed", self.project_id, self.cache_hits, self.cache_misses)
        if classifier.output_field == "token_proba":
            log.info("project %s: token vectors: %d from the cache, %d computed", self.project_id, *classifier.token_cache_counts)

    def _record_history(self, version: str, meta: VersionMeta, previous: ModelVersion | None, labels: Labels) -> None:
        """The dashboard's point for this version, and the suggestion acceptance of the one it replaces."""
        spec = labels.spec
        acceptance = (
            None if previous is None
            else span_acceptance(previous.pool(), labels.labeled, spec) if spec.task_type == NER
            else suggestion_acceptance(previous.pool(), ((task.id, task.label) for task in labels.labeled), spec)
        )
        record = history_record(meta.published_as(version, time.time()), label_counts(spec, labels.targets))
        self.job.store.history(self.project_id).append(record, acceptance)

    def _prune(self, n_pool: int) -> tuple[list[str], list[str]]:
        """Older versions out of Label Studio and off the disk. With a label waiting, keep room for its version's
        write: stored <= pool + 2 * top_k at any time."""
        waiting = self.job.redis.exists(pending_key(self.project_id))
        keep_within = n_pool + self.settings.top_k if waiting else None
        pruned = prune(self.connection.ls, self.job.store, self.project_id, self.job.held, keep_within)
        return pruned, self.job.store.remove_older_than(self.project_id, KEEP_LOCAL_VERSIONS)

