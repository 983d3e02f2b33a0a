"""Chunk jobs on real RQ workers give exactly the embeddings, and so the ranking, of the unchunked run."""
from __future__ import annotations

import os

import numpy as np
import pytest
from rq import Queue, Worker
from rq.registry import FinishedJobRegistry

from backend.core.settings import ProjectSettings, ServiceSettings
from backend.jobs.chunked_embedding import chunk_bounds, embed_in_chunks
from backend.learning.scoring import ls_scores
from backend.models.frozen_classifier import FrozenEncoderClassifier
from backend.ops.demo import demo_rows
from backend.ops.processes import wait_until
from backend.ops.stack import start_worker
from strategies import ModelOutputs, make_strategy

CHUNK = 100


@pytest.fixture
def scoring_service(redis_url, tmp_path, redis):
    env = {"REDIS_URL": redis_url, "MODEL_DIR": str(tmp_path / "models"), "AL_SCORE_CHUNK_TASKS": str(CHUNK),
           "AL_SCORE_QUEUE": f"test-score-{os.getpid()}", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return ServiceSettings.from_env(env), env


def rows():
    return demo_rows(50)  # 250 articles in a seeded random order: three chunks of at most 100


def classifier(classes):
    return FrozenEncoderClassifier(classes, ProjectSettings(model_mode="head", max_length=32, batch_size=16))


def ranking(model: FrozenEncoderClassifier, vectors: np.ndarray, texts, y, n_labeled: int) -> np.ndarray:
    """Fit the head on the first ``n_labeled`` texts and rank the rest by margin, from these vectors."""
    model._cache.update(zip(texts, vectors))
    model.fit(texts[:n_labeled], y[:n_labeled])
    proba = model.predict_proba(texts[n_labeled:])
    return ls_scores(make_strategy("margin").query(ModelOutputs(proba=proba)))


def test_chunks_split_the_tasks_in_order():
    assert chunk_bounds(250, 100) == [(0, 100), (100, 200), (200, 250)]
    assert chunk_bounds(100, 100) == [(0, 100)]


def test_chunk_jobs_on_two_workers_give_the_unchunked_ranking_exactly(scoring_service, redis, tmp_path):
    service, env = scoring_service
    data = rows()
    texts = [text for text, _ in data]
    classes = sorted({topic for _, topic in data})
    y = np.array([classes.index(topic) for _, topic in data])

    # No worker on the queue: the retrain takes every chunk back and embeds it itself.
    alone = embed_in_chunks(classifier(classes), texts, redis=redis, service=service, plan_dir=tmp_path / "plan-alone")

    workers = [start_worker(env, tmp_path / "logs", f"score-worker-{i}", (service.score_queue,)) for i in range(2)]
    try:
        wait_until(lambda: len(Worker.all(queue=Queue(service.score_queue, connection=redis))) == 2, "two chunk workers", 120)
        spread = embed_in_chunks(classifier(classes), texts, redis=redis, service=service, plan_dir=tmp_path / "plan-spread")
    finally:
        for worker in workers:
            worker.stop()
    by_workers = FinishedJobRegistry(service.score_queue, connection=redis).get_job_ids()
    assert any(job_id.startswith("plan-spread-chunk-") for job_id in by_workers), "no chunk ran on a worker"

    assert alone.shape == (len(texts), 384)
    assert np.array_equal(alone, spread)
    # The ranking from the chunked embeddings is the ranking of the same pool embedded in one pass.
    model = classifier(classes)
    whole = model.embed(texts)
    np.testing.assert_allclose(whole, spread, atol=1e-5)
    n_labeled = 30
    assert np.array_equal(ranking(classifier(classes), spread, texts, y, n_labeled), ranking(model, whole, texts, y, n_labeled))
