"""What every job of a project runs in: its RQ job, the settings, the store, the project lock and its progress.

``project_job`` is the one preamble of the retrain, the full path and the resync: it reads the settings the
app reads, takes the project lock of the job's scope (a holder whose job is dead is taken over at once), and
clears the job's ``pending`` key only once it holds the lock, so a label that arrives meanwhile queues exactly
one follow-up. ``settled`` is the one rule that sorts a job's failures: those a retry cannot mend end the job
as ``refused`` or ``skipped`` (RQ then does not retry it); anything else is raised, and retried.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from redis import Redis
from rq import get_current_job
from rq.job import Job

from backend.core.exceptions import (
    NotConnected,
    SettingsError,
    Skip,
    StrategyUnavailable,
    UnsupportedLabelConfig,
)
from backend.core.settings import ServiceSettings
from backend.jobs.project_lock import HeldLock, project_lock
from backend.jobs.queueing import JobKind, is_dead, release_pending
from backend.store.model_store import ModelStore
from strategies import MissingOutputsError

log = logging.getLogger(__name__)

#: Failures that end a job as ``skipped``: nothing to do now, and retrying would not change that.
SKIPPED = (Skip, SettingsError, UnsupportedLabelConfig, StrategyUnavailable, MissingOutputsError)


def settled(error: Exception) -> tuple[str, str] | None:
    """``("refused" | "skipped", reason)`` for a failure a retry cannot mend; None for one to raise and retry."""
    if isinstance(error, NotConnected):
        return "refused", str(error)
    if isinstance(error, SKIPPED):
        return "skipped", str(error)
    return None


class JobProgress:
    """Progress of long stages, in the job's meta (for /status) and the worker log, at most every 2 s."""

    def __init__(self, job: Job | None):
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
class ProjectJob:
    """One job of one project, holding the project lock of its scope."""

    project_id: int
    job: Job
    redis: Redis
    service: ServiceSettings
    store: ModelStore
    held: HeldLock
    progress: JobProgress

    def lock(self, scope: str = "retrain"):
        """Another scope's project lock, for as long as the ``with`` block (the full path holds "finetune"
        throughout and "retrain" only to read and to adopt)."""
        return project_lock(self.redis, self.project_id, self.job.id, lambda holder: is_dead(self.redis, holder), scope=scope)


@contextmanager
def project_job(project_id: int, kind: JobKind, scope: str = "retrain") -> Iterator[ProjectJob]:
    """The running RQ job's context, under the project lock of ``scope``, its ``pending`` key cleared."""
    job = get_current_job()
    redis = job.connection
    service = ServiceSettings.from_env()
    store = ModelStore(service.model_dir)
    with project_lock(redis, project_id, job.id, lambda holder: is_dead(redis, holder), scope=scope) as held:
        release_pending(redis, project_id, job.id, kind)
        yield ProjectJob(project_id, job, redis, service, store, held, JobProgress(job))
