"""Latency of the routes Label Studio calls often, as ratios to /health on the same server in the same run.

    python bench/http_latency.py          # starts its own gunicorn backend; needs a Redis (REDIS_URL or 6379)

LS gives /webhook 1 s and calls /setup on nearly every page touch, so both must stay close to /health.
/predict is measured for a task the published version ranked (served from the stored ranking) and for a
fresh one (a live forward pass of the head-mode classifier).
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

from backend.core.settings import ProjectSettings
from backend.jobs.publish import publish_version
from backend.learning.scoring import ls_scores
from backend.models.families import build_classifier
from backend.ops.processes import free_port
from backend.ops.stack import start_backend
from backend.store.model_store import ModelStore
from backend.store.pool_ranking import PoolRanking
from backend.store.version_meta import VersionMeta
from strategies.uncertainty import margin

CONFIG = """<View><Text name="text" value="$text"/><Choices name="topic" toName="text" choice="single">
<Choice value="pos"/><Choice value="neg"/></Choices></View>"""
REQUESTS = 300


def publish(model_dir: Path, project_id: int) -> None:
    settings = ProjectSettings(model_mode="head", max_length=64)
    texts = ["great movie", "awful film", "loved it", "hated it"]
    classifier = build_classifier(["pos", "neg"], settings).fit(texts, np.array([0, 1, 0, 1]))
    pool = {100 + i: f"review number {i}" for i in range(200)}
    proba = classifier.predict_proba(list(pool.values()))
    informativeness = margin(proba)
    ranking = PoolRanking.build(list(pool), ls_scores(informativeness), informativeness, proba)
    meta = VersionMeta(project=project_id, trained=True, strategy="margin", phase="strategy", phase_reason="",
                       settings=settings.to_dict(), classes=["pos", "neg"])
    publish_version(ModelStore(model_dir), project_id, classifier, ranking, meta)


def measure(session: requests.Session, method: str, url: str, body) -> list[float]:
    """``body(i)`` gives request i's JSON body, so a fresh task can carry a new text every time."""
    session.request(method, url, json=body(-1))  # warm-up: loads the model version on first use
    timings = []
    for i in range(REQUESTS):
        started = time.perf_counter()
        response = session.request(method, url, json=body(i))
        timings.append(time.perf_counter() - started)
        response.raise_for_status()
    return timings


def main() -> None:
    model_dir = Path(tempfile.mkdtemp())
    publish(model_dir, 7)
    env = {"REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12"), "MODEL_DIR": str(model_dir),
           "AL_QUEUE": "bench-train", "AL_PRUNE_QUEUE": "bench-prune"}
    backend, url = start_backend(free_port(), env, model_dir / "logs", workers=1)
    try:
        session = requests.Session()
        predict = {"project": "7.1", "label_config": CONFIG}
        cases = {
            "/health": ("GET", "/health", lambda i: None),
            "/setup": ("POST", "/setup", lambda i: {"project": "7.1", "schema": CONFIG, "extra_params": {"strategy": "margin"}}),
            "/webhook (coalesced retrain)": ("POST", "/webhook", lambda i: {"action": "ANNOTATION_CREATED", "project": {"id": 7}}),
            "/predict, ranked task": ("POST", "/predict", lambda i: {**predict, "tasks": [{"id": 100, "data": {"text": "x"}}]}),
            "/predict, fresh task": (
                "POST", "/predict", lambda i: {**predict, "tasks": [{"id": 9, "data": {"text": f"a new review, number {i}"}}]}
            ),
        }
        results = {name: measure(session, method, url + path, body) for name, (method, path, body) in cases.items()}
    finally:
        backend.stop()
    baseline = statistics.median(results["/health"])
    print(f"{REQUESTS} sequential requests per route, 1 gunicorn worker\n")
    print("| route | p50 ms | p99 ms | p50 / health p50 |\n|---|---|---|---|")
    for name, timings in results.items():
        p50, p99 = statistics.median(timings), float(np.percentile(timings, 99))
        print(f"| {name} | {p50 * 1e3:.1f} | {p99 * 1e3:.1f} | {p50 / baseline:.1f} |")


if __name__ == "__main__":
    main()
