"""The secret path segment that proves a request comes from a Label Studio the owner connected.

Label Studio sends webhooks without credentials, and it appends ``/setup``, ``/predict`` and ``/webhook`` to
the URL the owner enters. So the owner connects ``http://host:9090/<secret>``: every route but ``/health``
lives under that prefix, and a request without it is answered 404 before anything is read or enqueued.
The worker checks the same secret in Label Studio's own record of the connection before it touches a
project (``backend.jobs.connection``).

The secret is ``AL_URL_SECRET`` when set, else one generated on first start and kept in
``MODEL_DIR/url-secret`` (mode 0600), which the backend and every worker already share.
"""
from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from backend.core.exceptions import SettingsError
from backend.core.settings import MIN_URL_SECRET_CHARS, ServiceSettings

SECRET_FILE = "url-secret"


def resolve_url_secret(service: ServiceSettings) -> str:
    if service.url_secret:
        return service.url_secret
    path = service.model_dir / SECRET_FILE
    if not path.exists():
        _create_once(path, secrets.token_urlsafe(24))
    secret = path.read_text().strip()
    if len(secret) < MIN_URL_SECRET_CHARS:
        raise SettingsError(f"{path} holds no usable secret; delete it to generate a new one, or set AL_URL_SECRET")
    return secret


def _create_once(path: Path, secret: str) -> None:
    """Write the file complete, then link it into place: two processes starting at once agree on one secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{SECRET_FILE}-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secret)
        os.link(staging, path)
    except FileExistsError:
        pass  # another process won the race; its secret is the one
    finally:
        staging.unlink(missing_ok=True)


def url_carries_secret(url: str, secret: str) -> bool:
    """Whether a backend URL, as stored in Label Studio, ends with the secret path segment."""
    segments = [part for part in urlsplit(url or "").path.split("/") if part]
    return bool(segments) and hmac.compare_digest(segments[-1].encode(), secret.encode())


def connect_url(base_url: str, secret: str) -> str:
    """The URL an owner enters in Label Studio: the backend's address plus the secret segment."""
    return f"{base_url.rstrip('/')}/{secret}"


def main() -> None:
    """``python -m backend.labelstudio.url_secret http://backend:9090`` prints the URL to enter in Label Studio."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m backend.labelstudio.url_secret", description=main.__doc__)
    parser.add_argument("backend_url", help="the address Label Studio reaches the backend at, e.g. http://backend:9090")
    args = parser.parse_args()
    print(connect_url(args.backend_url, resolve_url_secret(ServiceSettings.from_env())))


if __name__ == "__main__":
    main()
