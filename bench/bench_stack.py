"""The real stack the speed benchmarks run on: Label Studio on a fresh PostgreSQL database, the backend under
gunicorn and one RQ worker, on Redis 127.0.0.1:6379 db 11 (emptied first, so no key of an earlier run can
join this one's jobs). Every part is stopped, and the database dropped, when ``cleanup`` closes."""
from __future__ import annotations

import secrets
import shutil
import tempfile
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from redis import Redis

from backend.labelstudio.url_secret import connect_url
from backend.ops.demo import LabelStudioAPI
from backend.ops.ls_database import LabelStudioDatabase, drop_postgres_database
from backend.ops.processes import Service, free_port
from backend.ops.stack import (
    LabelStudioAccount,
    backend_env,
    start_backend,
    start_label_studio,
    start_worker,
)

BENCH_REDIS = "redis://127.0.0.1:6379/11"


@dataclass
class BenchStack:
    ls: LabelStudioAPI
    ls_url: str
    backend_url: str
    model_dir: Path
    worker: Service


def start_bench_stack(cleanup: ExitStack, prefix: str, extra_env: dict[str, str] | None = None) -> BenchStack:
    run_dir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    cleanup.callback(shutil.rmtree, run_dir, True)
    Redis.from_url(BENCH_REDIS).flushdb()
    account, secret = LabelStudioAccount(), f"bench-{secrets.token_hex(12)}"
    database = LabelStudioDatabase.postgres(f"ls_bench_{uuid.uuid4().hex[:10]}")
    ls_service, ls_url = start_label_studio(free_port(), run_dir / "ls", run_dir / "logs", account, database)
    cleanup.callback(drop_postgres_database, database)
    cleanup.callback(ls_service.stop)
    env = {**backend_env(BENCH_REDIS, ls_url, account.token, run_dir / "models"), "AL_URL_SECRET": secret, **(extra_env or {})}
    backend, root = start_backend(free_port(), env, run_dir / "logs")
    cleanup.callback(backend.stop)
    worker = start_worker(env, run_dir / "logs")
    cleanup.callback(worker.stop)
    return BenchStack(LabelStudioAPI(ls_url, account.token), ls_url, connect_url(root, secret), run_dir / "models", worker)
