"""Shared fixtures: a real Redis for every test, and (for ``e2e`` tests) a real Label Studio, backend and worker."""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis import Redis

from backend.settings import ServiceSettings
from backend.stack import (
    LabelStudioAccount,
    LabelStudioAPI,
    Service,
    backend_env,
    free_port,
    redis_alive,
    start_backend,
    start_label_studio,
    start_redis,
    start_worker,
)

#: Database indexes no developer uses by hand, so flushing them is safe. The end-to-end stack gets its own,
#: so a unit test's flush never touches the running worker's queues.
TEST_DB = 13
E2E_DB = 14

#: Tiny training so CPU tests stay fast; the e2e test overrides per project through extra params.
TINY_TRAINING_ENV = {"AL_EPOCHS": "1", "AL_MAX_LENGTH": "32", "AL_BATCH_SIZE": "8", "AL_MIN_LABELS": "4"}


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="session")
def redis_server(run_dir):
    """The machine's Redis when one answers (CI has one on 6379); otherwise a private one."""
    base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if redis_alive(base):
        yield base.rsplit("/", 1)[0]
        return
    service, url = start_redis(free_port(), run_dir / "logs")
    yield url.rsplit("/", 1)[0]
    service.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server):
    return f"{redis_server}/{TEST_DB}"


@pytest.fixture
def redis(redis_url) -> Redis:
    connection = Redis.from_url(redis_url)
    connection.flushdb()
    yield connection
    connection.flushdb()


@pytest.fixture
def service_settings(redis_url, tmp_path) -> ServiceSettings:
    suffix = uuid.uuid4().hex[:8]
    return ServiceSettings.from_env(
        {
            "REDIS_URL": redis_url,
            "MODEL_DIR": str(tmp_path / "models"),
            "AL_QUEUE": f"test-train-{suffix}",
            "AL_PRUNE_QUEUE": f"test-prune-{suffix}",
        }
    )


@dataclass
class Stack:
    ls: LabelStudioAPI
    ls_url: str
    backend_url: str
    model_dir: Path
    redis: Redis
    worker: Service
    backend: Service


@pytest.fixture(scope="session")
def label_studio(run_dir):
    account = LabelStudioAccount()
    service, url = start_label_studio(free_port(), run_dir / "label-studio", run_dir / "logs", account)
    yield url, account
    service.stop()


@pytest.fixture(scope="session")
def stack(label_studio, redis_server, run_dir):
    """Label Studio, the backend under gunicorn and one RQ worker, wired as a user would wire them."""
    ls_url, account = label_studio
    redis_url = f"{redis_server}/{E2E_DB}"
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    suffix = uuid.uuid4().hex[:8]
    env = {
        **backend_env(redis_url, ls_url, account.token, run_dir / "models"),
        **TINY_TRAINING_ENV,
        "AL_QUEUE": f"e2e-train-{suffix}",
        "AL_PRUNE_QUEUE": f"e2e-prune-{suffix}",
    }
    backend, backend_url = start_backend(free_port(), env, run_dir / "logs")
    worker = start_worker(env, run_dir / "logs")
    yield Stack(LabelStudioAPI(ls_url, account.token), ls_url, backend_url, run_dir / "models", redis, worker, backend)
    worker.stop()
    backend.stop()


def pytest_runtest_makereport(item, call):
    """On an e2e failure, attach the worker and backend logs: the cause is usually there."""
    if call.when == "call" and call.excinfo is not None and "stack" in item.fixturenames:
        stack = item.funcargs.get("stack")
        if stack is not None:
            item.add_report_section("call", "worker log", stack.worker.log_tail(80))
            item.add_report_section("call", "backend log", stack.backend.log_tail(40))
