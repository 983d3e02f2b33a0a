"""The per-project lock: one job at a time touches a project's versions, in Label Studio and on disk.

Retrains take it, and the pruning at the end of a retrain runs under it, so a version is never deleted
while it is being written, nor written while another is activated.

The lock lives ``TTL_S`` seconds and a heartbeat thread in the holder renews it every ``TTL_S / 3``, so a
worker killed outright (``kill -9``, the OOM killer, a lost machine) frees the project within ``TTL_S``
instead of a job timeout. The holder checks ``HeldLock.ensure_held()`` before each write to Label Studio:
if the lock was lost (Redis restarted empty, or the heartbeat stalled past the TTL), it stops rather than
write beside another holder.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from redis import Redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from backend.core.exceptions import LockLost
from backend.core.keys import lock_key

log = logging.getLogger(__name__)

TTL_S = 15



def lock_for(redis: Redis, project_id: int, ttl_s: float = TTL_S, scope: str = "retrain") -> Lock:
    """``scope`` "retrain": the project's versions, mirror and caches; "finetune": one full path at a time."""
    # Not thread-local: the heartbeat thread renews the token the job's thread acquired.
    return redis.lock(lock_key(project_id, scope), timeout=ttl_s, thread_local=False)


class HeldLock:
    def __init__(self, lock: Lock, project_id: int):
        self.lock = lock
        self.project_id = project_id
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"project-{project_id}-lock", daemon=True)

    def _renew(self) -> None:
        while not self._stop.wait(self.lock.timeout / 3):
            try:
                self.lock.reacquire()
            except (LockError, RedisError) as error:
                log.error("project %s: lost the project lock (%s)", self.project_id, error)
                self.lost.set()
                return

    def ensure_held(self) -> None:
        if self.lost.is_set() or not self.lock.owned():
            raise LockLost(f"project {self.project_id}: the project lock was lost; stopping before any further write")


@contextmanager
def project_lock(
    redis: Redis,
    project_id: int,
    job_id: str,
    is_dead: Callable[[str], bool],
    poll_s: float = 0.5,
    ttl_s: float = TTL_S,
    scope: str = "retrain",
) -> Iterator[HeldLock]:
    """Hold the project's lock for the length of a job; the lock's value is the holder's job id.

    A holder that ``is_dead`` (its job failed or vanished) is taken over at once rather than waited out;
    so is a lock left by an earlier attempt of this same job, which RQ retries under the same id after
    its work horse was killed.
    """
    lock = lock_for(redis, project_id, ttl_s, scope)
    while not lock.acquire(blocking=False, token=job_id):
        holder = redis.get(lock.name)
        if holder is not None and (holder.decode() == job_id or is_dead(holder.decode())):
            log.warning("project %s: taking over the lock of a dead attempt of %s", project_id, holder.decode())
            delete_if_equal(redis, lock.name, holder)
            continue
        time.sleep(poll_s)
    held = HeldLock(lock, project_id)
    held._thread.start()
    try:
        yield held
    finally:
        held._stop.set()
        held._thread.join()
        try:
            lock.release()
        except LockError:
            log.warning("project %s: the project lock had already expired at release", project_id)


def delete_if_equal(redis: Redis, key: str, expected: bytes) -> None:
    """Compare-and-delete in one transaction, so a value written meanwhile by another job survives."""
    with redis.pipeline() as pipe:
        pipe.watch(key)
        current = pipe.get(key)
        pipe.multi()
        if current == expected:
            pipe.delete(key)
        pipe.execute()
