"""The worker process: an RQ worker on the fast-path queue and, unless told otherwise, the full path's.

    python -m backend.worker                 # al-train, al-score, then al-finetune (fast retrains first)
    python -m backend.worker al-finetune     # only fine-tunes: a GPU machine sharing Redis and MODEL_DIR
    al-worker al-train                       # the same, as the installed command

Equivalent to ``rq worker -u $REDIS_URL --with-scheduler <queues>``; this wrapper only reads the same settings
as the app, so both always agree on queue names and Redis, and runs every job as a
``backend.jobs.legacy.BackendJob``, so jobs an earlier release queued still run. The scheduler runs the retries
that ``Retry(interval=...)`` schedules. A worker runs one job at a time: while it fine-tunes, labels wait for
another worker on ``al-train``, so run one of each where labels must keep re-ranking during a fine-tune.
"""
from __future__ import annotations

import logging
import sys

from redis import Redis
from rq import Worker

# Imported here, before RQ forks a work horse per job, so each job inherits torch and transformers
# already loaded instead of paying seconds of imports on every retrain.
import backend.jobs.chunked_embedding  # noqa: F401
import backend.jobs.full_path  # noqa: F401
import backend.jobs.resync  # noqa: F401
import backend.jobs.retrain  # noqa: F401
from backend.core.settings import ServiceSettings
from backend.jobs.legacy import BackendJob


def main(queues: list[str] | None = None) -> None:
    """Serve ``queues`` (default: the command line's, else the fast path's, the chunks' and the full path's)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per Label Studio page read would bury the retrain's own progress lines.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    service = ServiceSettings.from_env()
    queues = sys.argv[1:] if queues is None else queues
    worker = Worker(
        queues or [service.queue_name, service.score_queue, service.finetune_queue],
        connection=Redis.from_url(service.redis_url), job_class=BackendJob,
    )
    worker.work(with_scheduler=True, logging_level="INFO")


if __name__ == "__main__":
    main()
