"""Enqueue retrains so that a webhook burst costs at most one queued and one running job per project.

Two Redis keys per project:
- ``pending``: the id of the retrain waiting to run. Set with NX, so a burst of webhooks enqueues once.
- the project lock (``backend.project_lock``): held by the running retrain. A pending job that a second
  worker picks up waits for it, so two retrains of one project never run at once.
The running job clears ``pending`` only after taking the lock; a label added while it trains therefore
enqueues exactly one follow-up job, which re-reads everything from Label Studio.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from redis import Redis
from rq import Queue, Retry, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from backend.project_lock import delete_if_equal
from backend.settings import ServiceSettings

log = logging.getLogger(__name__)

#: LS or Redis outages are usually short; back off before giving up on a retrain.
RETRAIN_RETRY = Retry(max=3, interval=[10, 60, 300])
_ALIVE = {JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.STARTED}


def pending_key(project_id: int) -> str:
    return f"al:project:{int(project_id)}:retrain:pending"


@dataclass(frozen=True)
class Enqueued:
    job_id: str
    coalesced: bool


def enqueue_retrain(redis: Redis, service: ServiceSettings, project_id: int, reason: str) -> Enqueued:
    key = pending_key(project_id)
    job_id = f"retrain-{int(project_id)}-{uuid.uuid4().hex[:12]}"
    if not redis.set(key, job_id, nx=True):
        waiting = redis.get(key)
        if waiting is not None and _is_alive(redis, waiting.decode()):
            return Enqueued(waiting.decode(), coalesced=True)
        # The job named in ``pending`` died without clearing it (worker killed, Redis flushed): replace it.
        redis.set(key, job_id)
    Queue(service.queue_name, connection=redis).enqueue(
        "backend.jobs.retrain",
        project_id,
        job_id=job_id,
        description=f"retrain project {project_id} ({reason})",
        job_timeout=service.job_timeout_s,
        retry=RETRAIN_RETRY,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
    )
    return Enqueued(job_id, coalesced=False)


def release_pending(redis: Redis, project_id: int, job_id: str) -> None:
    """Clear ``pending`` if it still names this job."""
    delete_if_equal(redis, pending_key(project_id), job_id.encode())


def _fetch(redis: Redis, job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=redis)
    except NoSuchJobError:
        return None


def _is_alive(redis: Redis, job_id: str) -> bool:
    job = _fetch(redis, job_id)
    return job is not None and job.get_status() in _ALIVE


def is_dead(redis: Redis, job_id: str) -> bool:
    """No longer running: vanished, ended, or started on a worker whose heartbeat key expired."""
    job = _fetch(redis, job_id)
    if job is None or job.get_status() != JobStatus.STARTED:
        return True
    return bool(job.worker_name) and not redis.exists(Worker.redis_worker_namespace_prefix + job.worker_name)
