"""Embedding a big batch of new tasks in chunk jobs that any number of RQ workers, on any machines, run at once.

Embedding uncached tasks is the one step of a retrain that grows with the pool (the head over cached
embeddings takes a fraction of a second at 100k tasks). So the new tasks, in task-id order, are cut into
chunks of ``AL_SCORE_CHUNK_TASKS``, and each chunk is embedded by itself: in the retrain's own process when
there is one chunk, as RQ jobs on ``AL_SCORE_QUEUE`` (default ``al-score``) when there are more. The
retrain is the final job: it waits for the chunks (running any that no worker has taken yet itself, so one
worker alone never deadlocks), merges them in chunk order, stores them in the embedding cache, ranks and
writes. A chunk is embedded by the same code on the same texts either way, so the merged ranking equals
the unchunked one exactly (``tests/unit/jobs/test_chunked_scoring.py``) on workers with the same torch build and
the same kind of processor (bf16 support decides the precision, ``backend.models.devices``).

What workers on other machines must share: Redis, and ``MODEL_DIR`` on a shared volume (the plan, the chunk
results and the encoder live there). A chunk job that fails is run again by the retrain itself.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus

from backend.core.progress import Progress
from backend.core.settings import ProjectSettings, ServiceSettings
from backend.models.frozen_classifier import FrozenEncoderClassifier

log = logging.getLogger(__name__)

#: How long a chunk result may take before the retrain stops waiting and computes the chunk itself.
CHUNK_TIMEOUT_S = 1800


def chunk_bounds(n: int, chunk_tasks: int) -> list[tuple[int, int]]:
    return [(start, min(start + chunk_tasks, n)) for start in range(0, n, chunk_tasks)]


def embed_chunk(plan_dir: str, index: int) -> str:
    """The RQ job: embed chunk ``index`` of a plan with the plan's encoder; writes ``chunk-<index>.npy``."""
    plan = Path(plan_dir)
    spec = json.loads((plan / "plan.json").read_text())
    texts = json.loads((plan / f"chunk-{index}.json").read_text())
    settings = ProjectSettings(**spec["settings"])
    encoder = FrozenEncoderClassifier(spec["classes"], settings, model_path=spec["model_path"])
    _save(plan / f"chunk-{index}.npy", encoder.encode(texts))
    return str(plan / f"chunk-{index}.npy")


def _save(path: Path, vectors: np.ndarray) -> None:
    """Atomically, so a reader sees a whole result or none."""
    partial = path.with_suffix(".partial.npy")
    np.save(partial, vectors)
    partial.rename(path)


def embed_in_chunks(
    classifier: FrozenEncoderClassifier,
    texts: Sequence[str],
    *,
    redis: Redis,
    service: ServiceSettings,
    plan_dir: Path,
    progress: Progress | None = None,
) -> np.ndarray:
    """Embeddings of ``texts`` (in order), one chunk at a time, in chunk jobs when there is more than one chunk."""
    bounds = chunk_bounds(len(texts), service.score_chunk_tasks)
    if len(bounds) <= 1:
        return classifier.encode(list(texts), progress)
    shutil.rmtree(plan_dir, ignore_errors=True)
    plan_dir.mkdir(parents=True)
    plan = {"model_path": classifier.model_path, "classes": classifier.classes, "settings": classifier.settings.to_dict()}
    (plan_dir / "plan.json").write_text(json.dumps(plan))
    for index, (start, end) in enumerate(bounds):
        (plan_dir / f"chunk-{index}.json").write_text(json.dumps(list(texts[start:end])))
    queue = Queue(service.score_queue, connection=redis)
    jobs = [
        queue.enqueue(
            "backend.jobs.chunked_embedding.embed_chunk", str(plan_dir), index, job_id=f"{plan_dir.name}-chunk-{index}",
            job_timeout=CHUNK_TIMEOUT_S, result_ttl=600, failure_ttl=24 * 3600,
            description=f"embed chunk {index + 1}/{len(bounds)} of {plan_dir.name}",
        )
        for index in range(len(bounds))
    ]
    try:
        _wait_and_help(classifier, queue, jobs, plan_dir, bounds, texts, progress)
        return _merged(plan_dir, bounds)
    finally:
        for job in jobs:
            queue.remove(job.id)
        shutil.rmtree(plan_dir, ignore_errors=True)


def _merged(plan_dir: Path, bounds: list[tuple[int, int]]) -> np.ndarray:
    """The chunk results in chunk order, copied one mapped chunk at a time into one array (never two copies)."""
    first = np.load(plan_dir / "chunk-0.npy", mmap_mode="r")
    merged = np.empty((bounds[-1][1], *first.shape[1:]), dtype=first.dtype)
    for index, (start, end) in enumerate(bounds):
        merged[start:end] = np.load(plan_dir / f"chunk-{index}.npy", mmap_mode="r")
    return merged


def _wait_and_help(classifier, queue: Queue, jobs: list[Job], plan_dir: Path, bounds, texts, progress) -> None:
    """Until every chunk has a result: take back chunks still queued (or failed, or overdue) and run them here."""
    started = time.monotonic()
    pending = set(range(len(jobs)))
    while pending:
        for index in sorted(pending):
            if (plan_dir / f"chunk-{index}.npy").exists():
                pending.discard(index)
                continue
            taken_back = queue.remove(jobs[index].id) == 1
            failed = jobs[index].get_status(refresh=True) in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)
            overdue = time.monotonic() - started > CHUNK_TIMEOUT_S
            if taken_back or failed or overdue:
                start, end = bounds[index]
                log.info("embedding chunk %d/%d here (%s)", index + 1, len(jobs), "no worker took it" if taken_back else "its job failed")
                _save(plan_dir / f"chunk-{index}.npy", classifier.encode(list(texts[start:end]), progress))
                pending.discard(index)
        if progress:
            progress("embed chunks", len(jobs) - len(pending), len(jobs))
        if pending:
            time.sleep(0.2)
