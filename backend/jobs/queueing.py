"""Enqueue retrains so that a webhook burst costs at most one queued and one running job per project.

Two Redis keys per project:
- ``pending``: the id of the retrain waiting to run. Set with NX, so a burst of webhooks enqueues once.
- the project lock (``backend.jobs.project_lock``): held by the running retrain. A pending job that a second
  worker picks up waits for it, so two retrains of one project never run at once.
The running job clears ``pending`` only after taking the lock; a label added while it trains therefore
enqueues exactly one follow-up job, which reads what changed in Label Studio.

The full path's fine-tunes (``FINETUNE``) coalesce the same way under their own ``pending`` key and queue.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from redis import Redis
from rq import Queue, Retry, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from backend.core import keys
from backend.core.settings import ServiceSettings
from backend.jobs.project_lock import delete_if_equal
from backend.learning.phases import finetune_due

log = logging.getLogger(__name__)

#: LS or Redis outages are usually short; back off before giving up on a retrain.
RETRAIN_RETRY = Retry(max=3, interval=[10, 60, 300])
_ALIVE = {JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.STARTED}


@dataclass(frozen=True)
class JobKind:
    """A job per project that coalesces: the fast retrain, or the full path's fine-tune (``backend.jobs.full_path``)."""

    name: str
    function: str
    description: str
    #: The ``ServiceSettings`` field naming the kind's queue.
    queue_setting: str

    def queue(self, service: ServiceSettings) -> str:
        return getattr(service, self.queue_setting)


RETRAIN = JobKind("retrain", "backend.jobs.retrain.retrain", "retrain", "queue_name")
FINETUNE = JobKind("finetune", "backend.jobs.full_path.finetune", "fine-tune the encoder of", "finetune_queue")
#: Full re-reads of a project's tasks share the slow lane with fine-tunes (``backend.jobs.resync``).
RESYNC = JobKind("resync", "backend.jobs.resync.resync", "re-read every task of", "finetune_queue")


def pending_key(project_id: int, kind: JobKind = RETRAIN) -> str:
    return keys.pending_key(project_id, kind.name)


@dataclass(frozen=True)
class Enqueued:
    job_id: str
    coalesced: bool


def enqueue_retrain(redis: Redis, service: ServiceSettings, project_id: int, reason: str) -> Enqueued:
    return enqueue(redis, service, project_id, reason, RETRAIN)


def enqueue(
    redis: Redis, service: ServiceSettings, project_id: int, reason: str, kind: JobKind, args: tuple = ()
) -> Enqueued:
    key = pending_key(project_id, kind)
    job_id = f"{kind.name}-{int(project_id)}-{uuid.uuid4().hex[:12]}"
    if not redis.set(key, job_id, nx=True):
        waiting = redis.get(key)
        if waiting is not None and _is_alive(redis, waiting.decode(), kind.queue(service)):
            return Enqueued(waiting.decode(), coalesced=True)
        # The job named in ``pending`` died without clearing it (worker killed, Redis flushed), or waits in a
        # queue no worker serves any more (the queue was renamed): replace it.
        redis.set(key, job_id)
    Queue(kind.queue(service), connection=redis).enqueue(
        kind.function,
        project_id,
        *args,
        job_id=job_id,
        description=f"{kind.description} project {project_id} ({reason})",
        job_timeout=service.job_timeout_s,
        retry=RETRAIN_RETRY,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
    )
    return Enqueued(job_id, coalesced=False)


def release_pending(redis: Redis, project_id: int, job_id: str, kind: JobKind = RETRAIN) -> None:
    """Clear ``pending`` if it still names this job."""
    delete_if_equal(redis, pending_key(project_id, kind), job_id.encode())


def _fetch(redis: Redis, job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=redis)
    except NoSuchJobError:
        return None


def _is_alive(redis: Redis, job_id: str, queue: str) -> bool:
    job = _fetch(redis, job_id)
    return job is not None and job.origin == queue and job.get_status() in _ALIVE


def is_dead(redis: Redis, job_id: str) -> bool:
    """No longer running: vanished, ended, or started on a worker whose heartbeat key expired."""
    job = _fetch(redis, job_id)
    if job is None or job.get_status() != JobStatus.STARTED:
        return True
    return bool(job.worker_name) and not redis.exists(Worker.redis_worker_namespace_prefix + job.worker_name)


def enqueue_finetune_if_due(
    redis: Redis, service: ServiceSettings, project_id: int, n_labels: int, every: int, reason: str | None = None
) -> Enqueued | None:
    """Queue the full path when ``every`` labels arrived since the last request (at ``every`` labels first),
    or at once when ``reason`` says why (START_TRAINING, /train)."""
    requested_at = int(redis.get(keys.finetune_requested_key(project_id)) or 0)
    if reason is None and not finetune_due(n_labels, requested_at, every):
        return None
    redis.set(keys.finetune_requested_key(project_id), n_labels)
    return enqueue(redis, service, project_id, reason or f"{n_labels} labels, {n_labels - requested_at} new", FINETUNE)


def queue_status(redis: Redis, service: ServiceSettings, project_id: int, kind: JobKind = RETRAIN) -> dict:
    """For ``/status``: the project's job of ``kind`` waiting to run, those running (with their progress), and how
    many jobs wait in the kind's queue in all."""
    queue = Queue(kind.queue(service), connection=redis)
    pending = redis.get(pending_key(project_id, kind))
    running = []
    for job_id in queue.started_job_registry.get_job_ids():
        job = _fetch(redis, job_id)
        if job is not None and job.args and job.args[0] == project_id and job.func_name == kind.function:
            running.append({"job_id": job_id, "progress": job.get_meta(refresh=False).get("progress")})
    return {"pending_job": pending.decode() if pending else None, "running": running, "queued_total": queue.count}
