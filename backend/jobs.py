"""RQ jobs, run by the worker: ``retrain`` (the active-learning step) and ``prune`` (cleanup, low priority).

A retrain reads a project's labels from Label Studio, trains, evaluates, ranks the unlabeled pool with the
project's strategy, publishes a model version, writes its predictions in bulk and switches the project to
it. Problems a retry cannot fix (a bad label config, too few labels) end the job with a ``skipped`` result
instead of an exception, so RQ does not retry them.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from redis import Redis
from rq import get_current_job

from backend.labels import UnsupportedLabelConfig, parse_label_config
from backend.ls_client import LabelStudioClient, PoolTask
from backend.model_store import ModelStore, ModelVersion, PoolRanking, write_json
from backend.project_state import ProjectState, load_project_state, save_retrain_outcome
from backend.queueing import enqueue_prune, project_lock, release_pending
from backend.scoring import StrategyUnavailable, collect_outputs, ls_scores, needs_trained_model
from backend.settings import ProjectSettings, ServiceSettings, SettingsError
from backend.training import TextClassifier, build_classifier, evaluate_holdout, save_classifier
from strategies import MissingOutputsError, make_strategy
from strategies.stopping import RoundStatistics, StoppingCriterion, round_statistics

log = logging.getLogger(__name__)

#: Local model versions kept per project; older ones go in the prune job.
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
    service = ServiceSettings.from_env()
    with project_lock(job.connection, project_id, job.id, service.job_timeout_s):
        release_pending(job.connection, project_id, job.id)
        state = load_project_state(job.connection, project_id)
        try:
            result = Retrain(project_id, service, state, job.connection, JobProgress(job)).run()
            outcome = {key: result[key] for key in ("status", "model_version", "seconds", "n_labeled", "n_pool")}
        except (Skip, SettingsError, UnsupportedLabelConfig, StrategyUnavailable, MissingOutputsError) as why:
            log.warning("project %s: retrain skipped: %s", project_id, why)
            result = outcome = {"status": "skipped", "reason": str(why)}
        except Exception as error:
            # Re-raised so RQ retries (an LS or Redis outage); recorded so the owner sees why in /status.
            save_retrain_outcome(
                job.connection, project_id,
                {"status": "failed", "reason": f"{type(error).__name__}: {error}", "job_id": job.id, "finished_at": time.time()},
            )
            raise
        save_retrain_outcome(job.connection, project_id, {**outcome, "job_id": job.id, "finished_at": time.time()})
        return result


def prune(project_id: int, keep_version: str) -> dict[str, Any]:
    """Delete other versions' predictions from LS, then old local model versions.

    LS deletes about 150 predictions a second, which is why this never runs inside a retrain.
    """
    service = ServiceSettings.from_env()
    state = load_project_state(get_current_job().connection, project_id)
    ls = connect(service, state)
    current = ls.project_version(project_id)
    deleted = []
    for version, count in ls.prediction_versions(project_id).items():
        if count and version not in (keep_version, current):
            ls.delete_version(project_id, version)
            deleted.append(version)
    removed = ModelStore(service.model_dir).remove_older_than(project_id, KEEP_LOCAL_VERSIONS)
    log.info("project %s: pruned LS versions %s and local versions %s", project_id, deleted, removed)
    return {"status": "pruned", "ls_versions": deleted, "local_versions": removed}


def connect(service: ServiceSettings, state: ProjectState) -> LabelStudioClient:
    url = service.label_studio_url or state.hostname
    key = service.label_studio_api_key or state.access_token
    if not url or not key:
        raise Skip("set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY for the worker (or connect the backend from LS first)")
    return LabelStudioClient(url, key)


class JobProgress:
    """Progress of long stages, in the job's meta (for /status) and the worker log, at most every 2 s."""

    def __init__(self, job):
        self.job = job
        self._last = 0.0

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
    project_id: int
    service: ServiceSettings
    state: ProjectState
    redis: Redis
    progress: JobProgress

    @property
    def settings(self) -> ProjectSettings:
        return self.state.settings

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        strategy = make_strategy(
            self.settings.strategy, batch_size=self.settings.query_batch_size, random_state=self.settings.seed
        )
        ls = connect(self.service, self.state)
        spec = parse_label_config(ls.label_config(self.project_id))
        labeled = ls.labeled_tasks(self.project_id, spec)
        pool = ls.pool_tasks(self.project_id, spec)
        labeled_texts = [task.text for task in labeled]
        y = np.array([spec.classes.index(task.label) for task in labeled], dtype=np.int64)
        log.info("project %s: %d labeled, %d unlabeled tasks", self.project_id, len(labeled), len(pool))

        trainable = len(labeled) >= self.settings.min_labels and len(set(y.tolist())) >= 2
        if not trainable and needs_trained_model(strategy):
            raise Skip(
                f"{len(labeled)} labels in {len(set(y.tolist()))} classes; strategy {strategy.name!r} needs a trained "
                f"model, which needs min_labels={self.settings.min_labels} labels in at least 2 classes"
            )
        classifier = build_classifier(spec.classes, self.settings)
        evaluation = None
        if trainable:
            evaluation = evaluate_holdout(
                lambda: build_classifier(spec.classes, self.settings), labeled_texts, y, self.settings
            )
            log.info("project %s: held-out evaluation %s", self.project_id, evaluation.to_dict())
            classifier.fit(labeled_texts, y, self.progress)

        pool_texts = [task.text for task in pool]
        proba, informativeness = None, np.zeros(0)
        if pool:
            proba = classifier.predict_proba(pool_texts, self.progress) if trainable else None
            outputs = collect_outputs(
                classifier, strategy, pool_texts, labeled_texts, y,
                committee_size=self.settings.committee_size, seed=self.settings.seed, proba=proba, progress=self.progress,
            )
            informativeness = strategy.query(outputs)
        scores = ls_scores(informativeness)

        store = ModelStore(self.service.model_dir)
        ranking = PoolRanking.build([t.id for t in pool], scores, informativeness, proba)
        meta = {
            "project": self.project_id,
            "trained": trainable,
            "strategy": strategy.name,
            "settings": self.settings.to_dict(),
            "classes": list(spec.classes),
            "n_labeled": len(labeled),
            "n_pool": len(pool),
            "evaluation": evaluation.to_dict() if evaluation else None,
            "stopping": self._stopping(store.latest(self.project_id), pool, proba),
        }
        version = publish_version(store, self.project_id, classifier if trainable else None, ranking, meta)
        log.info("project %s: published %s; stopping signal: %s", self.project_id, version, meta["stopping"]["recommendation"]["reason"])

        predictions = [
            {"task": task_id, **spec.prediction(version, score, label, p)} for task_id, (score, label, p) in ranking.rows().items()
        ]
        ls.write_predictions(self.project_id, predictions, self.progress)
        ls.activate_version(self.project_id, version)
        enqueue_prune(self.redis, self.service, self.project_id, version)
        seconds = round(time.monotonic() - started, 2)
        log.info("project %s: %s active after %.1f s", self.project_id, version, seconds)
        return {"status": "trained" if trainable else "ranked", "model_version": version, "seconds": seconds, **meta}

    def _stopping(self, previous: ModelVersion | None, pool: list[PoolTask], proba: np.ndarray | None) -> dict:
        """Stopping signal for this version, from its pool predictions and the previous version's."""
        history = [RoundStatistics.from_dict(row) for row in (previous.meta()["stopping"]["history"] if previous else [])]
        if proba is not None:
            history.append(_round_statistics(previous, pool, proba))
        recommendation = StoppingCriterion().recommend(history)
        return {"history": [row.to_dict() for row in history], "recommendation": recommendation.to_dict()}


def _round_statistics(previous: ModelVersion | None, pool: list[PoolTask], proba: np.ndarray) -> RoundStatistics:
    """Uncertainty over the whole pool; agreement over the tasks both versions predicted."""
    whole = round_statistics(proba, None)
    old = previous.pool() if previous is not None and previous.meta().get("trained") else None
    if old is None:
        return whole
    old_by_task = dict(zip(old.task_ids.tolist(), old.predicted.tolist()))
    common = [i for i, task in enumerate(pool) if task.id in old_by_task]
    if not common:
        return whole
    agreement = round_statistics(proba[common], np.array([old_by_task[pool[i].id] for i in common]))
    return RoundStatistics.from_dict(
        {**agreement.to_dict(), "mean_normalized_entropy": whole.mean_normalized_entropy, "n_pool": whole.n_pool}
    )
