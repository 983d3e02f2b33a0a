"""The worker process: an RQ worker on the retrain queue.

Equivalent to ``rq worker -u $REDIS_URL --with-scheduler al-train``; this wrapper only reads the
same settings as the app, so both always agree on queue names and Redis. The scheduler runs the retries
that ``Retry(interval=...)`` schedules.
"""
from __future__ import annotations

import logging

from redis import Redis
from rq import Worker

# Imported here, before RQ forks a work horse per job, so each job inherits torch and transformers
# already loaded instead of paying seconds of imports on every retrain.
import backend.jobs  # noqa: F401
from backend.settings import ServiceSettings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per Label Studio page read would bury the retrain's own progress lines.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    service = ServiceSettings.from_env()
    worker = Worker([service.queue_name], connection=Redis.from_url(service.redis_url))
    worker.work(with_scheduler=True, logging_level="INFO")


if __name__ == "__main__":
    main()
