"""Enqueue retrains so that a webhook burst costs at most one queued and one running job per project.

Two Redis keys per project:
- ``pending``: the id of the retrain waiting to run. Set with NX, so a burst of webhooks enqueues once.
- ``lock``: held by the running retrain. A pending job that a second worker picks up waits for it, so
  two retrains of one project never run at once.
The running job clears ``pending`` only after taking the lock; a label added while it trains therefore
enqueues exactly one follow-up job, which re-reads everything from Label Studio.
"""
from __future__ import annotations

import logging
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from redis import Redis
from redis.lock import Lock
from rq import Queue, Retry, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from backend.settings import ServiceSettings

log = logging.getLogger(__name__)

#: LS or Redis outages are usually short; back off before giving up on a retrain.
RETRAIN_RETRY = Retry(max=3, interval=[10, 60, 300])
_ALIVE = {JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.STARTED}


def pending_key(project_id: int) -> str:
    return f"al:project:{int(project_id)}:retrain:pending"


def lock_for(redis: Redis, project_id: int, timeout_s: int) -> Lock:
    return redis.lock(f"al:project:{int(project_id)}:retrain:lock", timeout=timeout_s)


@contextmanager
def project_lock(redis: Redis, project_id: int, job_id: str, timeout_s: int, poll_s: float = 1.0) -> Iterator[None]:
    """Hold the project's retrain lock for the length of a job.

    The lock's value is the holder's job id. A holder that is no longer running (its worker was killed,
    say) would otherwise block the project until the lock times out, an hour by default; a waiting job
    that finds such a holder takes the lock over. So does a retry of the holder itself: RQ retries a
    job whose work horse was killed under the same id, and that attempt's lock was never released.
    """
    lock = lock_for(redis, project_id, timeout_s)
    while not lock.acquire(blocking=False, token=job_id):
        holder = redis.get(lock.name)
        if holder is not None and (holder.decode() == job_id or not _is_running(redis, holder.decode())):
            log.warning("project %s: taking over the retrain lock of a dead attempt of %s", project_id, holder.decode())
            _delete_if_equal(redis, lock.name, holder)
            continue
        time.sleep(poll_s)
    try:
        yield
    finally:
        lock.release()


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
    _delete_if_equal(redis, pending_key(project_id), job_id.encode())


def _delete_if_equal(redis: Redis, key: str, expected: bytes) -> None:
    """Compare-and-delete in one transaction, so a value written meanwhile by another job survives."""
    with redis.pipeline() as pipe:
        pipe.watch(key)
        current = pipe.get(key)
        pipe.multi()
        if current == expected:
            pipe.delete(key)
        pipe.execute()


def enqueue_prune(redis: Redis, service: ServiceSettings, project_id: int, keep_version: str) -> str:
    job = Queue(service.prune_queue_name, connection=redis).enqueue(
        "backend.jobs.prune",
        project_id,
        keep_version,
        description=f"prune old prediction versions of project {project_id}",
        job_timeout=service.job_timeout_s,
        retry=Retry(max=3, interval=[30, 120, 600]),
        result_ttl=24 * 3600,
    )
    return job.id


def _fetch(redis: Redis, job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=redis)
    except NoSuchJobError:
        return None


def _is_alive(redis: Redis, job_id: str) -> bool:
    job = _fetch(redis, job_id)
    return job is not None and job.get_status() in _ALIVE


def _is_running(redis: Redis, job_id: str) -> bool:
    """Started, on a worker whose heartbeat key still exists (a SIGKILLed worker's key expires)."""
    job = _fetch(redis, job_id)
    if job is None or job.get_status() != JobStatus.STARTED:
        return False
    return not job.worker_name or bool(redis.exists(Worker.redis_worker_namespace_prefix + job.worker_name))
