"""Shared fixtures: a real Redis for every test, and (for ``e2e`` tests) a real Label Studio, backend and worker."""
from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path

import pytest
from redis import Redis

from backend.core.settings import ServiceSettings
from backend.ops.ls_database import (
    LabelStudioDatabase,
    create_postgres_database,
    drop_postgres_database,
    postgres_unavailable_reason,
)
from backend.ops.processes import free_port
from backend.ops.stack import (
    LabelStudioAccount,
    redis_alive,
    start_label_studio,
    start_redis,
)

#: A database index no developer uses by hand, so flushing it is safe. The end-to-end stacks use another
#: (tests/e2e/conftest.py), so a unit test's flush never touches a running worker's queues.
TEST_DB = 13


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
        }
    )


class LabelStudioOnSQLiteWarning(UserWarning):
    """The e2e Label Studio fell back to SQLite because no PostgreSQL answers."""


@pytest.fixture(scope="session")
def label_studio_database():
    """A fresh PostgreSQL database for this session's Label Studio (dropped at the end) when a PostgreSQL
    answers on 127.0.0.1:5432; otherwise SQLite, with a warning: LS's production database is PostgreSQL."""
    database = LabelStudioDatabase.postgres(f"ls_test_{os.getpid()}_{uuid.uuid4().hex[:10]}")
    reason = postgres_unavailable_reason(database)
    if reason is not None:
        warnings.warn(LabelStudioOnSQLiteWarning(f"Label Studio runs on SQLite in these tests: {reason}"))
        yield LabelStudioDatabase.sqlite()
        return
    create_postgres_database(database)
    try:
        yield database
    finally:
        drop_postgres_database(database)


@pytest.fixture(scope="session")
def label_studio(run_dir, label_studio_database):
    account = LabelStudioAccount()
    service, url = start_label_studio(
        free_port(), run_dir / "label-studio", run_dir / "logs", account, label_studio_database
    )
    yield url, account
    service.stop()


@pytest.fixture(scope="session")
def label_studio_sqlite(run_dir):
    """A second Label Studio on SQLite (own port, data dir and logs), for tests that must pass on both."""
    account = LabelStudioAccount()
    service, url = start_label_studio(
        free_port(), run_dir / "label-studio-sqlite", run_dir / "logs-sqlite", account, LabelStudioDatabase.sqlite()
    )
    yield url, account
    service.stop()
