"""What ``/setup`` learns about a project, kept in Redis for the worker.

``/setup`` runs on nearly every Label Studio page touch, so this is one small SET per call.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from redis import Redis

from backend.settings import ProjectSettings


@dataclass(frozen=True)
class ProjectState:
    settings: ProjectSettings
    #: Where Label Studio said it lives, and the project owner's token, from ``/setup``. The worker prefers
    #: LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY from its environment and falls back to these.
    hostname: str | None = None
    access_token: str | None = None


def _key(project_id: int) -> str:
    return f"al:project:{int(project_id)}:state"


def parse_project_id(raw: object) -> int:
    """LS sends projects as ``"<id>.<created-timestamp>"`` in ML calls and as ``{"id": ...}`` in webhooks."""
    if isinstance(raw, dict):
        raw = raw.get("id")
    if isinstance(raw, bool):
        raise ValueError(f"project must be an id, got {raw!r}")
    text = str(raw if raw is not None else "").split(".", 1)[0]
    if not text.isdigit():
        raise ValueError(f"project must be an id like 12 or '12.1700000000', got {raw!r}")
    return int(text)


def save_project_state(redis: Redis, project_id: int, state: ProjectState) -> None:
    payload = {"settings": state.settings.to_dict(), "hostname": state.hostname, "access_token": state.access_token}
    redis.set(_key(project_id), json.dumps(payload))


def load_project_state(redis: Redis, project_id: int) -> ProjectState:
    """The state saved by the last ``/setup``; environment defaults when LS never called it."""
    raw = redis.get(_key(project_id))
    if raw is None:
        return ProjectState(ProjectSettings.parse(None))
    payload = json.loads(raw)
    return ProjectState(
        ProjectSettings.parse(payload["settings"]), payload.get("hostname"), payload.get("access_token")
    )


def _outcome_key(project_id: int) -> str:
    return f"al:project:{int(project_id)}:last_retrain"


def save_retrain_outcome(redis: Redis, project_id: int, outcome: dict) -> None:
    """What the last retrain did (trained, ranked or skipped, and why), for the owner's /status page."""
    redis.set(_outcome_key(project_id), json.dumps(outcome, default=str))


def load_retrain_outcome(redis: Redis, project_id: int) -> dict | None:
    raw = redis.get(_outcome_key(project_id))
    return json.loads(raw) if raw is not None else None
