"""docker-compose.yml cannot run here (no Docker engine); check its structure as a user's compose would read it."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_postgres_label_studio_redis_backend_and_a_gpu_worker():
    services = compose()["services"]
    assert set(services) == {"postgres", "label-studio", "redis", "backend", "worker"}
    assert services["label-studio"]["image"].endswith(":1.23.2")
    gpu = services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    assert services["worker"]["command"][-1] == "backend.worker"


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
