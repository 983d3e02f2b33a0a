"""One backend writer per Label Studio at a time, across every worker process and machine that shares Redis.

Label Studio on SQLite serialises all writes: a prediction import in one worker and a version deletion in
another would hold the database long enough for an annotator's submit to fail with "database is locked".
Each bounded write therefore runs while holding this Redis lock, keyed by the Label Studio URL. The lock
expires by itself, so a worker killed mid-write blocks the others for at most ``hold_timeout_s``.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from redis import Redis
from redis.exceptions import LockError

from backend.core.keys import write_gate_key

#: Longest one write may hold the gate: a 500-prediction chunk takes about a second, a version deletion
#: longer on SQLite; the SDK's retries (``ls_client.WRITE_RETRIES``) also happen inside.
HOLD_TIMEOUT_S = 300
#: Longest a writer waits for its turn before its job fails (and RQ retries it).
WAIT_TIMEOUT_S = 900


class WriteGate:
    def __init__(self, redis: Redis, ls_url: str, hold_timeout_s: float = HOLD_TIMEOUT_S, wait_timeout_s: float = WAIT_TIMEOUT_S):
        self.redis = redis
        self.key = write_gate_key(ls_url)
        self.hold_timeout_s = hold_timeout_s
        self.wait_timeout_s = wait_timeout_s

    @contextmanager
    def __call__(self) -> Iterator[None]:
        lock = self.redis.lock(self.key, timeout=self.hold_timeout_s, sleep=0.05, blocking_timeout=self.wait_timeout_s)
        if not lock.acquire():
            raise TimeoutError(f"waited {self.wait_timeout_s:.0f} s for another worker's write to Label Studio")
        try:
            yield
        finally:
            try:
                lock.release()
            except LockError:
                pass  # held past its timeout: another writer may already have it, and that is theirs to release
