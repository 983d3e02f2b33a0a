"""docker-compose.yml cannot run here (no Docker engine); check its structure as a user's compose would read it,
run ``docker compose config`` where a compose plugin exists, and check that .env.example documents every
variable the project reads."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from backend.core.settings import (
    PROJECT_RANGES,
    SERVICE_RANGES,
    ProjectSettings,
    ServiceSettings,
)
from backend.ops.stack import LABEL_STUDIO_FAST_PREDICTION_IMPORT

ROOT = Path(__file__).resolve().parents[3]


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_postgres_label_studio_redis_backend_a_fast_worker_and_a_gpu_worker():
    services = compose()["services"]
    assert set(services) == {"postgres", "label-studio", "redis", "backend", "worker-fast", "worker"}
    assert services["label-studio"]["image"].endswith(":1.23.2")
    gpu = services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    settings = ServiceSettings.from_env({})
    # The GPU worker takes fine-tunes first; the CPU worker keeps the fast path going meanwhile.
    assert services["worker"]["command"][-3:] == [settings.finetune_queue, settings.score_queue, settings.queue_name]
    assert services["worker-fast"]["command"][-2:] == [settings.queue_name, settings.score_queue]
    assert "deploy" not in services["worker-fast"]
    assert services["worker-fast"]["environment"] == services["worker"]["environment"]


def test_backend_and_worker_share_settings_and_the_model_folder():
    services = compose()["services"]
    backend, worker = services["backend"], services["worker"]
    assert backend["environment"] == worker["environment"]
    for name in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "REDIS_URL", "MODEL_DIR", "BASIC_AUTH_USER", "BASIC_AUTH_PASS"):
        assert name in backend["environment"]
    model_dir = backend["environment"]["MODEL_DIR"]
    assert any(volume.endswith(":" + model_dir) for volume in backend["volumes"])
    assert backend["volumes"] == worker["volumes"]
    assert backend["environment"]["REDIS_URL"].startswith("redis://redis:")


def test_label_studio_allows_a_backend_on_the_compose_network():
    environment = compose()["services"]["label-studio"]["environment"]
    assert environment["ML_BLOCK_LOCAL_IP"] == "false" and environment["SSRF_PROTECTION_ENABLED"] == "false"
    assert environment["LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"] == "true"


def test_label_studio_runs_the_prediction_import_that_scales_with_the_batch():
    environment = compose()["services"]["label-studio"]["environment"]
    for name, value in LABEL_STUDIO_FAST_PREDICTION_IMPORT.items():
        assert environment[name] == value


SECRET_MARKERS = ("PASSWORD", "TOKEN", "API_KEY")
#: Switches whose names merely mention a secret; their values must be booleans, never a secret.
SWITCHES = {"LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"}
#: ``${NAME:?message}``: compose refuses to start while NAME is unset or empty.
REQUIRED_REFERENCE = re.compile(r"^\$\{(?P<name>[A-Z][A-Z0-9_]*):\?[^}]+\}$")
#: ``${NAME:-}``: optional, empty (off) unless set.
OPTIONAL_EMPTY = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:-\}$")


def environments():
    for name, service in compose()["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            yield name, variable, value


def test_compose_runs_label_studio_on_postgresql_once_it_is_healthy():
    services = compose()["services"]
    postgres, label_studio = services["postgres"], services["label-studio"]
    assert postgres["image"] == "postgres:16"
    (volume,) = postgres["volumes"]
    named, mount = volume.split(":", 1)
    assert named in compose()["volumes"] and mount == "/var/lib/postgresql/data"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])

    environment = label_studio["environment"]
    assert environment["DJANGO_DB"] == "default" and environment["POSTGRE_HOST"] == "postgres"
    assert str(environment["POSTGRE_PORT"]) == "5432"
    # LS logs in with exactly what the postgres container was initialised with.
    assert environment["POSTGRE_NAME"] == postgres["environment"]["POSTGRES_DB"]
    assert environment["POSTGRE_USER"] == postgres["environment"]["POSTGRES_USER"]
    assert environment["POSTGRE_PASSWORD"] == postgres["environment"]["POSTGRES_PASSWORD"]
    assert label_studio["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_redis_and_label_studio_have_healthchecks_the_backend_and_worker_wait_for():
    services = compose()["services"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "/health" in " ".join(services["label-studio"]["healthcheck"]["test"])
    assert services["label-studio"]["healthcheck"].get("start_period")  # the first start migrates
    for name in ("backend", "worker"):
        depends_on = services[name]["depends_on"]
        assert depends_on == {
            "redis": {"condition": "service_healthy"}, "label-studio": {"condition": "service_healthy"}
        }


def test_the_backend_and_the_worker_have_healthchecks_that_run_their_own_python():
    services = compose()["services"]
    backend, worker = services["backend"]["healthcheck"]["test"], services["worker"]["healthcheck"]["test"]
    assert backend[:2] == ["CMD", "python"] and "127.0.0.1:9090/health" in backend[-1]
    assert worker[:2] == ["CMD", "python"] and "Worker.all" in worker[-1]
    # The probes are real Python: they must at least compile.
    for probe in (backend[-1], worker[-1]):
        compile(probe, "healthcheck", "exec")


def test_no_password_or_token_has_a_default_compose_refuses_to_start_without_them():
    seen = set()
    for service, variable, value in environments():
        if variable in SWITCHES:
            assert str(value).lower() in ("true", "false"), (service, variable, value)
        elif any(marker in variable for marker in SECRET_MARKERS):
            match = REQUIRED_REFERENCE.match(str(value))
            assert match, f"{service}.{variable} = {value!r}: use ${{NAME:?message}}, not a default"
            seen.add(match["name"])
        elif "PASS" in variable or "SECRET" in variable:  # optional ones (basic auth) may be unset, never preset
            assert REQUIRED_REFERENCE.match(str(value)) or OPTIONAL_EMPTY.match(str(value)), (service, variable, value)
    assert {"LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_API_KEY", "POSTGRES_PASSWORD"} <= seen
    text = (ROOT / "docker-compose.yml").read_text()
    for leaked in ("admin-password", "al-backend-dev-token"):  # the local stack's dev defaults
        assert leaked not in text


# -- .env.example: every variable the project reads, with its default ------------------------------------------

#: ``NAME=value`` (set) or ``# NAME=value`` (documented default, commented out).
ENV_LINE = re.compile(r"^(?P<commented>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
#: A compose reference: ``${NAME}``, ``${NAME:-default}``, ``${NAME:?message}`` (``$${`` is escaped, not one).
COMPOSE_REFERENCE = re.compile(r"(?<!\$)\$\{(?P<name>[A-Z_][A-Z0-9_]*)")
#: Environment reads in the backend's code: env.get("X"), os.environ.get("X"), os.getenv("X"), and os.environ["X"]
#: or env["X"] unless assigned to (a child process's environment being built).
CODE_READ = re.compile(
    r"""(?:\benv|\benviron)\.get\(\s*["'](?P<get>[A-Z][A-Z0-9_]*)["']"""
    r"""|\bgetenv\(\s*["'](?P<getenv>[A-Z][A-Z0-9_]*)["']"""
    r"""|(?:\benv|\benviron)\[\s*["'](?P<item>[A-Z][A-Z0-9_]*)["']\s*\](?!\s*=[^=])"""
)
#: ``${NAME:-...}`` in the dev script: the knobs it reads.
SHELL_DEFAULT = re.compile(r"\$\{(?P<name>[A-Z][A-Z0-9_]*):-")


def env_example() -> dict[str, dict]:
    """Each documented variable: its value, whether it is commented out, and the comment block above it."""
    entries: dict[str, dict] = {}
    comment: list[str] = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            assert match["name"] not in entries, f"{match['name']} is documented twice"
            entries[match["name"]] = {
                "value": match["value"], "commented": bool(match["commented"]), "comment": " ".join(comment)
            }
            comment = []
        elif line.startswith("#"):
            comment.append(line.lstrip("# ").strip())
        else:
            comment = []
    return entries


class RecordingEnv(dict):
    """An empty environment that remembers every name the code looked up in it."""

    def __init__(self):
        super().__init__()
        self.read: set[str] = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)


def settings_variables() -> set[str]:
    env = RecordingEnv()
    ServiceSettings.from_env(env)
    ProjectSettings.parse({}, env=env)
    fields = {f"AL_{name.upper()}" for name in ProjectSettings.__dataclass_fields__}
    return env.read | fields | set(SERVICE_RANGES)


def test_env_example_documents_every_setting_the_backend_reads():
    documented = env_example()
    names = settings_variables()
    assert {"LABEL_STUDIO_URL", "REDIS_URL", "AL_URL_SECRET", "AL_COLD_START_PHASE", "AL_TOP_K", "AL_QUEUE"} <= names
    for path in sorted((ROOT / "backend").rglob("*.py")):
        for match in CODE_READ.finditer(path.read_text()):
            names.add(match["get"] or match["getenv"] or match["item"])
    missing = sorted(names - set(documented))
    assert not missing, f".env.example lacks {missing}"


def test_env_example_documents_every_compose_and_dev_script_variable():
    documented = env_example()
    compose_names = {m["name"] for m in COMPOSE_REFERENCE.finditer((ROOT / "docker-compose.yml").read_text())}
    assert {"POSTGRES_PASSWORD", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_API_KEY"} <= compose_names
    dev_names = {m["name"] for m in SHELL_DEFAULT.finditer((ROOT / "dev").read_text())}
    assert {"PYTHON", "TORCH_SPEC", "LABEL_STUDIO_SPEC", "LABEL_STUDIO_BIN"} <= dev_names
    missing = sorted((compose_names | dev_names | {"HF_HUB_OFFLINE", "TOKENIZERS_PARALLELISM"}) - set(documented))
    assert not missing, f".env.example lacks {missing}"
    for name in compose_names:  # the reader can tell which variables reach the containers
        assert "[compose]" in documented[name]["comment"], name


def test_env_example_comments_every_variable_leaves_secrets_empty_and_states_the_real_defaults():
    documented = env_example()
    for name, entry in documented.items():
        assert entry["comment"], f"{name} has no comment"
        parts = name.split("_")
        if name.endswith("API_KEY") or {"PASSWORD", "PASS", "SECRET", "TOKEN"} & set(parts):
            assert entry["value"] == "", f"{name} is a secret: leave it empty"
    # compose's required secrets are active (and empty), so a copied .env makes compose ask for them.
    for name in ("LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_API_KEY", "POSTGRES_PASSWORD"):
        assert not documented[name]["commented"], name

    defaults = ProjectSettings()
    for field in ProjectSettings.__dataclass_fields__:
        entry = documented.get(f"AL_{field.upper()}")
        assert entry is not None, f".env.example lacks AL_{field.upper()}"
        parsed = ProjectSettings.parse({}, env={f"AL_{field.upper()}": entry["value"]})
        assert getattr(parsed, field) == getattr(defaults, field), f"AL_{field.upper()}: the default is not {entry['value']!r}"
    service_defaults = ServiceSettings.from_env({})
    for name in [*SERVICE_RANGES, "AL_QUEUE", "REDIS_URL"]:
        assert ServiceSettings.from_env({name: documented[name]["value"]}) == service_defaults, name

    ranges = {**{f"AL_{name.upper()}": bounds for name, bounds in PROJECT_RANGES.items()}, **SERVICE_RANGES}
    for name, (low, high) in ranges.items():
        stated = re.search(r"range: (\S+) to (\S+?)\.?(?:\s|$)", documented[name]["comment"])
        assert stated, f"{name}: state its range as 'range: LOW to HIGH'"
        assert (float(stated[1]), float(stated[2])) == (low, high), name


# -- docker compose config, where a compose plugin exists -------------------------------------------------------

def docker_compose_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    try:
        probe = subprocess.run(["docker", "compose", "version"], check=False, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker compose version` failed: {exc}"
    if probe.returncode != 0:
        said = (probe.stderr or probe.stdout).strip().splitlines()
        return f"`docker compose version` exited {probe.returncode}: {said[0][:200] if said else 'no output'}"
    return None


REQUIRED_DUMMIES = {"LABEL_STUDIO_PASSWORD": "dummy-password", "LABEL_STUDIO_API_KEY": "dummy-token", "POSTGRES_PASSWORD": "dummy-db"}


def test_docker_compose_config_accepts_the_file_and_refuses_without_the_secrets(tmp_path):
    reason = docker_compose_unavailable()
    if reason:
        pytest.skip(reason)
    empty_env_file = tmp_path / "empty.env"  # a developer's own .env must not decide the outcome
    empty_env_file.write_text("")
    argv = ["docker", "compose", "--env-file", str(empty_env_file), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"]
    base = {k: v for k, v in os.environ.items() if k not in REQUIRED_DUMMIES}
    ok = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120, env={**base, **REQUIRED_DUMMIES}, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    refused = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120, env=base, cwd=tmp_path)
    assert refused.returncode != 0 and "set " in refused.stderr
