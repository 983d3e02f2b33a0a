"""Every Redis key the backend writes, in one place.

Per project, under ``al:project:<id>:``:
- ``<kind>:pending``: the id of the job of that kind waiting to run (``backend.jobs.queueing``);
- ``<scope>:lock``: the project lock of a scope (``backend.jobs.project_lock``);
- ``task-hints``: task ids webhooks named since the last read, and ``resync``: a full re-read asked for
  (``backend.jobs.task_hints``);
- ``finetune:requested-at``: the label count at the last full-path request (``backend.jobs.queueing``);
- ``retrains``: the last retrains' outcomes (``backend.jobs.outcomes``).

Shared: ``al:ls-writer:<hash of the Label Studio URL>``, the write gate of one Label Studio
(``backend.labelstudio.write_gate``), and the metrics hashes under ``al:metrics:`` (``backend.core.metrics``).
"""
from __future__ import annotations

import hashlib


def project_key(project_id: int, *parts: str) -> str:
    """``al:project:<id>:<part>:...``; ``int()`` keeps a request's text out of every key."""
    return ":".join(("al", "project", str(int(project_id)), *parts))


def pending_key(project_id: int, kind: str) -> str:
    return project_key(project_id, kind, "pending")


def lock_key(project_id: int, scope: str) -> str:
    return project_key(project_id, scope, "lock")


def task_hints_key(project_id: int) -> str:
    return project_key(project_id, "task-hints")


def resync_key(project_id: int) -> str:
    return project_key(project_id, "resync")


def finetune_requested_key(project_id: int) -> str:
    return project_key(project_id, "finetune", "requested-at")


def outcomes_key(project_id: int) -> str:
    return project_key(project_id, "retrains")


def write_gate_key(ls_url: str) -> str:
    return "al:ls-writer:" + hashlib.sha256(ls_url.rstrip("/").encode()).hexdigest()[:16]


METRICS_PREFIX = "al:metrics:"
WEBHOOKS_KEY = METRICS_PREFIX + "webhooks"
RETRAINS_KEY = METRICS_PREFIX + "retrains"
RETRAIN_SECONDS_KEY = METRICS_PREFIX + "retrain_seconds"
COUNTERS_KEY = METRICS_PREFIX + "counters"
