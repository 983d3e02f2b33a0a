"""The full resync: read every task of a project again, off the fast path.

LS stays the source of truth for the task mirror (``backend.labelstudio.task_mirror``): every ``AL_RESYNC_S`` seconds, and
when an owner asks (``/train``, START_TRAINING), all tasks are read again. At 100k tasks that takes minutes, so
it runs as its own job on the slow lane (``AL_FINETUNE_QUEUE``, beside fine-tunes), building a staging mirror
without the project lock. Only the swap takes the lock; the next fast retrain then reads what changed since
the resync began, so nothing that happened during it is lost.
"""
from __future__ import annotations

import logging
import shutil
import time
from typing import Any

from rq import get_current_job

from backend.jobs.connection import NotConnected, connect
from backend.jobs.retrain import JobProgress
from backend.core.labels import parse_label_config
from backend.store.model_store import ModelStore
from backend.jobs.project_lock import project_lock
from backend.jobs.queueing import RESYNC, enqueue_retrain, is_dead, release_pending
from backend.core.settings import ServiceSettings
from backend.labelstudio.task_mirror import TaskMirror, mirror_folder

log = logging.getLogger(__name__)


def resync(project_id: int, reason: str) -> dict[str, Any]:
    job = get_current_job()
    redis = job.connection
    service = ServiceSettings.from_env()
    store = ModelStore(service.model_dir)
    alive = lambda holder: is_dead(redis, holder)  # noqa: E731
    with project_lock(redis, project_id, job.id, alive, scope="resync"):
        release_pending(redis, project_id, job.id, RESYNC)
        started = time.monotonic()
        try:
            connection = connect(service, store, redis, project_id)
        except NotConnected as why:
            log.warning("project %s: resync refused: %s", project_id, why)
            return {"status": "refused", "reason": str(why)}
        ls = connection.ls
        spec = parse_label_config(ls.project(project_id)["label_config"])
        folder = mirror_folder(store.project_dir(project_id))
        staging_folder = folder.parent / f".resync-{job.id}"
        try:
            staging = TaskMirror(staging_folder, service.resync_s)
            report = staging.refresh(ls, project_id, spec, force_full=reason, progress=JobProgress(job))
            with project_lock(redis, project_id, job.id, alive):
                TaskMirror(folder, service.resync_s).replace_with(staging)
        finally:
            shutil.rmtree(staging_folder, ignore_errors=True)
    # The ranking should reflect whatever the resync found (a drift the webhooks never reported).
    enqueue_retrain(redis, service, project_id, reason="resync")
    log.info("project %s: resync (%s) read %d tasks in %.1f s", project_id, reason, report.read, time.monotonic() - started)
    return {"status": "done", **report.to_dict(), "seconds": round(time.monotonic() - started, 2)}
