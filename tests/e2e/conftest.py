"""End-to-end stacks: a real Label Studio, the backend under gunicorn and real RQ workers, wired as a user would.

``stack`` is shared by the loop tests. ``make_stack`` builds a private one (its own queue, model folder,
URL secret, any Redis and any number of workers) for the fault tests, which kill and restart parts of it.
"""
from __future__ import annotations

import json
import os
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis import Redis

from backend.labelstudio.url_secret import connect_url
from backend.ops.demo import LabelStudioAPI
from backend.ops.processes import Service, free_port
from backend.ops.stack import backend_env, start_backend, start_worker

#: The e2e stack's Redis database, apart from the unit tests' (13), whose flushes must not hit the worker.
E2E_DB = 14

#: Tiny training so CPU tests stay fast; tests override per project through extra params.
TINY_TRAINING_ENV = {"AL_EPOCHS": "1", "AL_MAX_LENGTH": "32", "AL_BATCH_SIZE": "8", "AL_MIN_LABELS": "4"}


@dataclass
class Stack:
    ls: LabelStudioAPI
    ls_url: str
    #: The URL Label Studio is connected to: the backend's address plus its secret path segment.
    backend_url: str
    backend_root: str
    model_dir: Path
    redis: Redis
    env: dict[str, str]
    log_dir: Path
    backend: Service
    workers: list[Service] = field(default_factory=list)

    @property
    def worker(self) -> Service:
        return self.workers[0]

    def add_worker(self) -> Service:
        worker = start_worker(self.env, self.log_dir, name=f"worker-{len(self.workers) + 1}")
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.backend.stop()


def start_stack(ls_url: str, token: str, redis_url: str, run_dir: Path, workers: int = 1, **env_overrides: str) -> Stack:
    name = uuid.uuid4().hex[:8]
    log_dir, model_dir = run_dir / f"logs-{name}", run_dir / f"models-{name}"
    secret = f"e2e-{secrets.token_hex(12)}"
    env = {
        **backend_env(redis_url, ls_url, token, model_dir),
        **TINY_TRAINING_ENV,
        "AL_QUEUE": f"e2e-train-{name}",
        "AL_URL_SECRET": secret,
        **env_overrides,
    }
    backend, root = start_backend(free_port(), env, log_dir)
    stack = Stack(LabelStudioAPI(ls_url, token), ls_url, connect_url(root, secret), root, model_dir, Redis.from_url(redis_url), env, log_dir, backend)
    for _ in range(workers):
        stack.add_worker()
    return stack


@pytest.fixture(scope="session")
def stack(label_studio, redis_server, run_dir):
    ls_url, account = label_studio
    redis_url = f"{redis_server}/{E2E_DB}"
    Redis.from_url(redis_url).flushdb()
    stack = start_stack(ls_url, account.token, redis_url, run_dir)
    yield stack
    stack.stop()


@dataclass
class StackMaker:
    redis_server: str
    run_dir: Path
    started: list[Stack] = field(default_factory=list)

    def __call__(self, label_studio, workers: int = 1, redis_url: str | None = None, **env_overrides: str) -> Stack:
        ls_url, account = label_studio
        redis_url = redis_url or f"{self.redis_server}/{E2E_DB}"
        self.started.append(start_stack(ls_url, account.token, redis_url, self.run_dir, workers, **env_overrides))
        return self.started[-1]


@pytest.fixture
def make_stack(redis_server, run_dir):
    """Start private stacks for one test; every one is stopped at its end."""
    maker = StackMaker(redis_server, run_dir)
    yield maker
    for stack in maker.started:
        stack.stop()


@pytest.fixture
def reliability(request):
    """Record what a fault test measured; ``bench/reliability.py`` collects these into RELIABILITY.md."""
    record: dict = {"test": request.node.name}
    yield record
    out = os.environ.get("RELIABILITY_OUT")
    if out and len(record) > 1:
        with open(out, "a") as handle:
            handle.write(json.dumps(record, default=str) + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On an e2e failure, attach the workers' and backend's logs: the cause is usually there."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    stacks = [item.funcargs.get("stack")] if "stack" in item.fixturenames else []
    maker = item.funcargs.get("make_stack")
    if maker is not None:
        stacks += maker.started
    for stack in filter(None, stacks):
        for worker in stack.workers:
            report.sections.append((f"{worker.name} log", worker.log_tail(80)))
        report.sections.append(("backend log", stack.backend.log_tail(40)))
