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

from backend.core.exceptions import NotConnected
from backend.jobs.connection import connect
from backend.jobs.context import project_job
from backend.jobs.queueing import RESYNC, enqueue_retrain
from backend.labelstudio.task_mirror import TaskMirror, mirror_folder

log = logging.getLogger(__name__)


def resync(project_id: int, reason: str) -> dict[str, Any]:
    """The RQ job: read every task of the project into a staging mirror, then swap it in under the project lock."""
    with project_job(project_id, RESYNC, scope="resync") as job:
        started = time.monotonic()
        try:
            connection = connect(job.service, job.store, job.redis, project_id)
        except NotConnected as why:
            log.warning("project %s: resync refused: %s", project_id, why)
            return {"status": "refused", "reason": str(why)}
        spec = connection.label_spec()
        folder = mirror_folder(job.store.project_dir(project_id))
        staging_folder = folder.parent / f".resync-{job.job.id}"
        try:
            staging = TaskMirror(staging_folder, job.service.resync_s)
            report = staging.refresh(connection.ls, project_id, spec, force_full=reason, progress=job.progress)
            with job.lock("retrain"):
                TaskMirror(folder, job.service.resync_s).replace_with(staging)
        finally:
            shutil.rmtree(staging_folder, ignore_errors=True)
    # The ranking should reflect whatever the resync found (a drift the webhooks never reported).
    enqueue_retrain(job.redis, job.service, project_id, reason="resync")
    log.info("project %s: resync (%s) read %d tasks in %.1f s", project_id, reason, report.read, time.monotonic() - started)
    return {"status": "done", **report.to_dict(), "seconds": round(time.monotonic() - started, 2)}
