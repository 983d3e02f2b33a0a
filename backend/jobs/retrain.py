"""The retrain job, run by the worker: the active-learning step for one project.

A retrain confirms with Label Studio that the project connected this backend (``backend.jobs.connection``) and
reads the owner's settings from that connection, then reads the project's labels, trains, evaluates, ranks
the unlabeled pool with the project's strategy, publishes a model version, writes its predictions in
bounded chunks, switches the project to it, and finally prunes this backend's older versions from Label
Studio. All of it runs under the project lock (``backend.jobs.project_lock``).

Problems a retry cannot fix (a project that never connected, a bad label config, too few labels) end the
job with a ``refused`` or ``skipped`` result instead of an exception, so RQ does not retry them.
"""
from __future__ import annotations

import logging
import resource
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from redis import Redis
from rq import get_current_job

from backend.jobs.chunked_embedding import embed_in_chunks
from backend.models.families import head_classifier, save_classifier
from backend.jobs.connection import Connection, NotConnected, connect
from backend.store.encoder_registry import EncoderRegistry
from backend.learning.evaluation import Evaluation, cross_validated_head, cross_validated_multilabel_head, cross_validated_tagger
from backend.store.history import span_acceptance, suggestion_acceptance
from backend.core.labels import LabelSpec, UnsupportedLabelConfig, label_counts, parse_label_config, training_targets
from backend.labelstudio.client import LabeledTask, LabelStudioClient
from backend.core.metrics import StageTimes, record_embedding_cache, record_predictions_written, record_retrain
from backend.store.model_store import ModelStore, ModelVersion, PoolRanking, write_json
from backend.learning.phases import can_train, choose_phase
from backend.jobs.project_lock import HeldLock, lock_for, project_lock
from backend.store.setup_record import save_retrain_outcome
from backend.learning.stopping_signal import pool_uncertainty, stopping_signal
from backend.jobs.queueing import RESYNC, enqueue, enqueue_finetune_if_due, is_dead, pending_key, release_pending
from backend.learning.scoring import (
    StrategyUnavailable,
    collect_outputs,
    ls_scores,
    needs_trained_model,
)
from backend.core.settings import ProjectSettings, ServiceSettings, SettingsError
from backend.jobs.task_hints import clear_hints, clear_resync, pending_hints, pending_resync
from backend.labelstudio.task_mirror import RefreshReport, TaskMirror, mirror_folder
from backend.models.base import TextClassifier
from strategies import NER, MissingOutputsError, make_strategy

log = logging.getLogger(__name__)

#: Local model versions kept per project besides the active one.
KEEP_LOCAL_VERSIONS = 3


def publish_version(
    store: ModelStore, project_id: int, classifier: TextClassifier | None, ranking: PoolRanking, meta: dict[str, Any]
) -> str:
    """Write classifier, ranking and metadata as one atomic version; returns its name."""
    with store.publish(project_id) as (version, folder):
        if classifier is not None:
            save_classifier(classifier, folder)
        ranking.save(folder)
        write_json(folder / "meta.json", {**meta, "version": version, "created_at": time.time()})
    return version


class Skip(Exception):
    """The retrain cannot do anything useful now; retrying will not help."""


def retrain(project_id: int) -> dict[str, Any]:
    job = get_current_job()
    redis = job.connection
    service = ServiceSettings.from_env()
    store = ModelStore(service.model_dir)
    with project_lock(redis, project_id, job.id, lambda holder: is_dead(redis, holder)) as held:
        release_pending(redis, project_id, job.id)
        times = StageTimes()
        try:
            with times.stage("connect"):
                connection = connect(service, store, redis, project_id)
            result = Retrain(connection, service, store, held, JobProgress(job), redis, times).run()
            record_predictions_written(redis, result["predictions_written"])
            record_embedding_cache(redis, **result["embedding_cache"])
            keys = ("status", "model_version", "seconds", "n_labeled", "n_pool", "phase", "skipped_tasks", "pruned", "embedding_cache", "read")
            outcome = {key: result[key] for key in keys} | {
                "peak_rss_mb": peak_rss_mb(), "stages": {name: round(s, 3) for name, s in times.with_total().items()},
            }
        except NotConnected as why:
            log.warning("project %s: refused: %s", project_id, why)
            result = outcome = {"status": "refused", "reason": str(why)}
        except (Skip, SettingsError, UnsupportedLabelConfig, StrategyUnavailable, MissingOutputsError) as why:
            log.warning("project %s: retrain skipped: %s", project_id, why)
            result = outcome = {"status": "skipped", "reason": str(why)}
        except Exception as error:
            # Re-raised so RQ retries (an LS or Redis outage); recorded so the owner sees why in /status.
            record_retrain(redis, "failed", times.with_total())
            save_retrain_outcome(
                redis, project_id,
                {"status": "failed", "reason": f"{type(error).__name__}: {error}", "job_id": job.id, "finished_at": time.time()},
            )
            raise
        record_retrain(redis, outcome["status"], times.with_total())
        save_retrain_outcome(redis, project_id, {**outcome, "job_id": job.id, "finished_at": time.time()})
        return result


def peak_rss_mb() -> float:
    """This process's peak resident memory: RQ runs each job in a fresh work horse, so it is the job's."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def prune(
    ls: LabelStudioClient, store: ModelStore, project_id: int, held: HeldLock, keep_within: int | None = None
) -> list[str]:
    """Delete this backend's older versions from Label Studio; the caller holds the project lock.

    Only versions in the project's ledger are candidates, so an owner's own versions are never touched,
    and neither the version active in Label Studio nor the one this backend activated is deleted.

    LS deletes predictions one by one (a signal per row: about 150 per second), so with ``keep_within`` (a
    retrain is waiting: an annotator is labeling) only the oldest versions are deleted, just enough that the
    backend's predictions stored in LS stay within ``keep_within``; the rest waits for a quieter retrain.
    """
    ledger_file = store.ledger(project_id)
    ledger = ledger_file.read()
    counts = {version: count for version, count in ls.prediction_versions(project_id).items() if count}
    ls_active = ls.project(project_id)["model_version"]
    doomed = ledger.prunable(set(counts), ls_active)
    if keep_within is not None:
        stored = sum(counts[version] for version in ledger.written if version in counts)
        needed = []
        for version in doomed:
            if stored <= keep_within:
                break
            needed.append(version)
            stored -= counts[version]
        doomed = needed
    for version in doomed:
        held.ensure_held()
        ls.delete_version(project_id, version)
    # Versions Label Studio no longer holds (deleted here, or by the owner) leave the ledger.
    gone = {version for version in ledger.written if version not in counts or version in doomed} - {ledger.active, ls_active}
    ledger_file.write(ledger.without(gone))
    return doomed


class JobProgress:
    """Progress of long stages, in the job's meta (for /status) and the worker log, at most every 2 s."""

    def __init__(self, job):
        self.job = job
        self._last = 0.0

    @property
    def job_name(self) -> str:
        return self.job.id if self.job is not None else "inline"

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 2.0:
            return
        self._last = now
        log.info("%s: %d/%d", stage, done, total)
        if self.job is not None:
            self.job.meta["progress"] = {"stage": stage, "done": done, "total": total}
            self.job.save_meta()


@dataclass
class Retrain:
    connection: Connection
    service: ServiceSettings
    store: ModelStore
    held: HeldLock
    progress: JobProgress
    redis: Redis
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
        except (Skip, UnsupportedLabelConfig, StrategyUnavailable, MissingOutputsError):
            # Nothing to publish, but a prune deferred by an earlier retrain (a label was waiting) is done now,
            # unless a label is waiting again.
            if not self.redis.exists(pending_key(self.project_id)):
                prune(self.connection.ls, self.store, self.project_id, self.held)
            raise

    def _run(self) -> dict[str, Any]:
        started = time.monotonic()
        ls, store, stage = self.connection.ls, self.store, self.times.stage
        leftovers = store.remove_stale_staging(self.project_id)
        if leftovers:
            log.warning("project %s: removed staging folders of killed publishes: %s", self.project_id, leftovers)
        with stage("read"):
            spec = parse_label_config(ls.project(self.project_id)["label_config"])
            mirror = TaskMirror(mirror_folder(store.project_dir(self.project_id)), self.service.resync_s)
            read = self._refresh(mirror, spec)
            labeled, pool = mirror.labeled(), mirror.pool()
        log.info("project %s: %s read of %d tasks (%s)", self.project_id, read.mode, read.read, read.why or "changes only")
        skipped = mirror.skipped(spec.missing_field_reason)
        if not pool:
            raise Skip(f"every one of the {len(labeled)} readable tasks is labeled: there is nothing to rank")
        if skipped.count:
            log.warning("project %s: skipped %d tasks: %s", self.project_id, skipped.count, skipped.to_dict())
        labeled_texts = [task.text for task in labeled]
        y, counted, dropped_spans = training_targets(spec, labeled)
        phase, strategy_name, phase_reason = choose_phase(self.settings, counted, spec.task_type)
        strategy = make_strategy(strategy_name, batch_size=self.settings.query_batch_size, random_state=self.settings.seed)
        log.info("project %s: %d labeled, %d unlabeled tasks; phase %s", self.project_id, len(labeled), len(pool), phase)

        trainable = can_train(self.settings, counted, spec.task_type)
        if not trainable and needs_trained_model(strategy):
            raise Skip(f"strategy {strategy.name!r} needs a trained model, and none can train yet: {phase_reason}")
        encoders = EncoderRegistry(store.project_dir(self.project_id))
        # The fast path: a head over the newest encoder the full path adopted (the base model until then).
        in_use = encoders.newest()
        classifier = head_classifier(spec, self.settings, model_path=encoders.path_of(in_use))
        with stage("embed"):
            cache = classifier.cache_for(store.project_dir(self.project_id))
            cache.clear_other_fingerprints()
            tasks = [*labeled, *pool]
            self.cache_hits, self.cache_misses = classifier.embed_through_cache(
                cache, [t.id for t in tasks], [t.text for t in tasks], self.progress,
                embed_misses=lambda texts: embed_in_chunks(
                    classifier, texts, redis=self.redis, service=self.service, progress=self.progress,
                    plan_dir=store.project_dir(self.project_id) / "scoring" / self.progress.job_name,
                ),
            )
        log.info("project %s: embeddings: %d from the cache, %d computed", self.project_id, self.cache_hits, self.cache_misses)
        if spec.task_type == NER:
            log.info("project %s: token vectors: %d from the cache, %d computed", self.project_id, *classifier.token_cache_counts)
        evaluation = None
        if trainable:
            with stage("train"):
                classifier.fit(labeled_texts, y, self.progress)
            with stage("evaluate"):
                evaluation = self._evaluate(spec, classifier, labeled_texts, y)
            log.info("project %s: cross-validated head %s", self.project_id, evaluation.to_dict())

        pool_texts = [task.text for task in pool]
        with stage("score"):
            proba = classifier.predict_proba(pool_texts, self.progress) if trainable else None
            outputs = collect_outputs(
                classifier, strategy, pool_texts, labeled_texts, y,
                committee_size=self.settings.committee_size, seed=self.settings.seed, proba=proba, progress=self.progress,
            )
            informativeness = strategy.query(outputs)
            ranking = PoolRanking.build(
                [t.id for t in pool], ls_scores(informativeness), informativeness, proba, classifier.thresholds if trainable else None,
                spans=classifier.suggestions(pool_texts, proba) if trainable and spec.task_type == NER else None,
            )

        previous = store.active(self.project_id)
        meta = {
            "project": self.project_id,
            "trained": trainable,
            "strategy": strategy.name,
            "phase": phase,
            "phase_reason": phase_reason,
            "encoder": in_use.folder if in_use else "base",
            "settings": self.settings.to_dict(),
            "classes": list(spec.classes),
            "task_type": spec.task_type,
            "n_labeled": len(labeled),
            "n_pool": len(pool),
            "skipped_tasks": skipped.to_dict(),
            "read": read.to_dict(),
            "evaluation": evaluation.to_dict() if evaluation else None,
            # Annotated spans that could not be used, by reason (``backend.core.spans``): read, then aligned to tokens.
            "token_cache": dict(zip(("hits", "misses"), classifier.token_cache_counts)) if spec.task_type == NER else None,
            "dropped_spans": dict(dropped_spans + (classifier.dropped if trainable and spec.task_type == NER else Counter())),
            "stopping": stopping_signal(
                store.latest(self.project_id), ranking, pool_uncertainty(classifier.probability_outputs(proba)) if trainable else None
            ),
        }
        with stage("publish"):
            version = publish_version(store, self.project_id, classifier if trainable else None, ranking, meta)
        log.info("project %s: published %s; stopping signal: %s", self.project_id, version, meta["stopping"]["recommendation"]["reason"])
        with stage("write"):
            written = self._write_back(version, ranking, spec)
        self._record_history(version, meta, previous, labeled, spec, y)
        if self.settings.model_mode == "finetune" and trainable:
            enqueue_finetune_if_due(self.redis, self.service, self.project_id, len(labeled), self.settings.finetune_every)
        with stage("prune"):
            # With a label waiting, keep room for its version's write: stored <= pool + 2 * top_k at any time.
            waiting = self.redis.exists(pending_key(self.project_id))
            keep_within = len(pool) + self.settings.top_k if waiting else None
            pruned = prune(ls, store, self.project_id, self.held, keep_within)
            removed = store.remove_older_than(self.project_id, KEEP_LOCAL_VERSIONS)
        seconds = round(time.monotonic() - started, 2)
        log.info("project %s: %s active after %.1f s; pruned LS versions %s, local %s", self.project_id, version, seconds, pruned, removed)
        return {
            "status": "trained" if trainable else "ranked", "model_version": version, "seconds": seconds,
            "pruned": pruned, "predictions_written": written,
            "embedding_cache": {"hits": self.cache_hits, "misses": self.cache_misses}, **meta,
        }

    def _refresh(self, mirror: TaskMirror, spec) -> RefreshReport:
        """Read what changed; the webhook hints used are then forgotten. A full resync that is due (periodic, or
        asked for by the owner) is queued for ``backend.jobs.resync``, never run here under the project lock."""
        hints, asked = pending_hints(self.redis, self.project_id), pending_resync(self.redis, self.project_id)
        report = mirror.refresh(self.connection.ls, self.project_id, spec, hinted_ids=hints, progress=self.progress)
        clear_hints(self.redis, self.project_id, hints)
        reason = f"resync asked for ({asked})" if asked else report.resync_due
        resync_running = lock_for(self.redis, self.project_id, scope="resync").locked()
        if reason and report.mode == "incremental" and (asked or not resync_running):
            enqueue(self.redis, self.service, self.project_id, reason, RESYNC, args=(reason,))
        if asked:
            clear_resync(self.redis, self.project_id, asked)
        return report

    def _evaluate(self, spec: LabelSpec, classifier: TextClassifier, texts: list[str], y) -> Evaluation:
        """Cross-validated metrics of the model that ranks the pool (the served head's own C)."""
        if spec.task_type == NER:
            return cross_validated_tagger(classifier.tagger, texts, y, self.settings.seed)
        if spec.multiple:
            return cross_validated_multilabel_head(classifier.train_X, y, self.settings.seed, classifier.head.C)
        return cross_validated_head(classifier.train_X, y, self.settings.seed, classifier.head.C)

    def _record_history(
        self, version: str, meta: dict[str, Any], previous: ModelVersion | None, labeled: list[LabeledTask], spec: LabelSpec,
        targets: Any,
    ) -> None:
        """The dashboard's point for this version, and the suggestion acceptance of the one it replaces."""
        stopping = meta["stopping"]
        last_round = stopping["history"][-1] if stopping["history"] and meta["trained"] else None
        record = {
            "version": version, "created_at": time.time(), "n_labeled": meta["n_labeled"], "n_pool": meta["n_pool"],
            "strategy": meta["strategy"], "phase": meta["phase"], "evaluation": meta["evaluation"], "acceptance": None,
            "task_type": meta["task_type"],
            "label_counts": label_counts(spec, targets),
            "stopping": {**last_round, **stopping["recommendation"]} if last_round else None,
        }
        acceptance = (
            None if previous is None
            else span_acceptance(previous.pool(), labeled, spec) if spec.task_type == NER
            else suggestion_acceptance(previous.pool(), ((task.id, task.label) for task in labeled), spec)
        )
        self.store.history(self.project_id).append(record, acceptance)

    def _write_back(self, version: str, ranking: PoolRanking, spec) -> int:
        """Predictions to Label Studio, then the switch; the version becomes active here only after both."""
        ls, ledger_file = self.connection.ls, self.store.ledger(self.project_id)
        self.held.ensure_held()
        # On record before the first prediction leaves, so a write killed halfway is still pruned later.
        ledger_file.write(ledger_file.read().with_written(version))
        rows = sorted(ranking.rows().items(), key=lambda row: row[1][0])[: self.settings.top_k]
        predictions = [{"task": task_id, **spec.prediction(version, score, label, p)} for task_id, (score, label, p) in rows]
        self.held.ensure_held()
        ls.write_predictions(self.project_id, predictions, self.progress)
        self.held.ensure_held()
        # Uncertainty sampling is set once, at the first activation; an owner's later choice is kept.
        ls.activate_version(self.project_id, version, set_sampling=not ledger_file.read().sampling_set)
        project = ls.project(self.project_id)
        ledger_file.write(
            replace(
                ledger_file.read(), active=version, sampling_set=True,
                ls_model_version=project["model_version"], ls_sampling=project["sampling"], checked_at=time.time(),
            )
        )
        return len(predictions)
