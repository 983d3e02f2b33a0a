"""Jobs that an earlier release queued still run after an upgrade.

RQ stores a job's function as a dotted path. Releases before the package split queued retrains as
``backend.jobs.retrain``, fine-tunes as ``backend.full_path.finetune``, resyncs as ``backend.resync.resync`` and
embedding chunks as ``backend.chunked_embedding.embed_chunk``; a job still waiting in Redis (queued, scheduled
for a retry, or deferred) names one of those. The worker runs every job as a ``BackendJob``, which maps them to
today's functions.
"""
from __future__ import annotations

from rq.job import Job
from rq.utils import import_attribute

from backend.jobs.queueing import FINETUNE, RESYNC, RETRAIN

#: Function paths of earlier releases -> today's.
LEGACY_FUNCTIONS = {
    "backend.jobs.retrain": RETRAIN.function,
    "backend.full_path.finetune": FINETUNE.function,
    "backend.resync.resync": RESYNC.function,
    "backend.chunked_embedding.embed_chunk": "backend.jobs.chunked_embedding.embed_chunk",
}


class BackendJob(Job):
    @property
    def func(self):
        if self.func_name in LEGACY_FUNCTIONS and not self.instance:
            return import_attribute(LEGACY_FUNCTIONS[self.func_name])
        return super().func
