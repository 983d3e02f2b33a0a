"""Every setting, parsed and validated in one place.

Two kinds:
- ``ServiceSettings``: one per process, from the environment (names follow Label Studio's ML-backend
  conventions: LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY, MODEL_DIR, REDIS_URL, BASIC_AUTH_USER/PASS).
- ``ProjectSettings``: one per Label Studio project, from the ML backend's ``extra_params`` (sent in
  ``/setup``), falling back to ``AL_*`` environment defaults.

Invalid values raise ``SettingsError`` with a message naming the setting and its valid values.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from strategies import STRATEGY_NAMES

MODEL_MODES = ("finetune", "head")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_MODEL = "bundled:all-MiniLM-L6-v2"


class SettingsError(ValueError):
    """A setting has a value the backend cannot use."""


@dataclass(frozen=True)
class ProjectSettings:
    """Per-project knobs. Field names are the keys accepted in the ML backend's extra params."""

    strategy: str = "margin"
    model_name: str = DEFAULT_MODEL
    model_mode: str = "finetune"
    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 5e-5
    max_length: int = 128
    eval_fraction: float = 0.2
    min_labels: int = 4
    query_batch_size: int = 10
    committee_size: int = 5
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        _one_of("strategy", self.strategy, STRATEGY_NAMES)
        _one_of("model_mode", self.model_mode, MODEL_MODES)
        _one_of("device", self.device, DEVICES)
        if not self.model_name.strip():
            raise SettingsError("model_name must name a Hugging Face model or a local path")
        for name in ("epochs", "batch_size", "max_length", "query_batch_size", "committee_size"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.min_labels < 2:
            raise SettingsError(f"min_labels must be at least 2 (one per class is the least a classifier needs), got {self.min_labels}")
        if not 0.0 < self.learning_rate < 1.0:
            raise SettingsError(f"learning_rate must be in (0, 1), got {self.learning_rate}")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise SettingsError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")

    @classmethod
    def parse(cls, extra_params: Any, env: Mapping[str, str] | None = None) -> "ProjectSettings":
        """Build settings from ``extra_params`` (dict, JSON text or empty) over ``AL_*`` env defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            env_name = f"AL_{f.name.upper()}"
            if env_name in env:
                values[f.name] = _coerce(f.name, env[env_name], f.type, source=env_name)
        for key, raw in _as_mapping(extra_params).items():
            if key not in _FIELD_TYPES:
                raise SettingsError(
                    f"unknown extra param {key!r}; valid params: {', '.join(sorted(_FIELD_TYPES))}"
                )
            values[key] = _coerce(key, raw, _FIELD_TYPES[key], source="extra_params")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_FIELD_TYPES = {f.name: f.type for f in fields(ProjectSettings)}


@dataclass(frozen=True)
class ServiceSettings:
    """Process-wide settings from the environment."""

    label_studio_url: str | None
    label_studio_api_key: str | None
    model_dir: Path
    redis_url: str
    basic_auth_user: str | None
    basic_auth_pass: str | None
    queue_name: str
    prune_queue_name: str
    job_timeout_s: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ServiceSettings":
        env = os.environ if env is None else env
        user, password = env.get("BASIC_AUTH_USER") or None, env.get("BASIC_AUTH_PASS") or None
        if bool(user) != bool(password):
            raise SettingsError("set both BASIC_AUTH_USER and BASIC_AUTH_PASS, or neither")
        timeout = _coerce("AL_JOB_TIMEOUT", env.get("AL_JOB_TIMEOUT", "3600"), "int", source="AL_JOB_TIMEOUT")
        if timeout < 10:
            raise SettingsError(f"AL_JOB_TIMEOUT must be at least 10 seconds, got {timeout}")
        return cls(
            label_studio_url=(env.get("LABEL_STUDIO_URL") or "").rstrip("/") or None,
            label_studio_api_key=env.get("LABEL_STUDIO_API_KEY") or None,
            model_dir=Path(env.get("MODEL_DIR") or "./models").resolve(),
            redis_url=env.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
            basic_auth_user=user,
            basic_auth_pass=password,
            queue_name=env.get("AL_QUEUE") or "al-train",
            prune_queue_name=env.get("AL_PRUNE_QUEUE") or "al-prune",
            job_timeout_s=timeout,
        )


def _one_of(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise SettingsError(f"{name} {value!r} is not valid; choose one of: {', '.join(valid)}")


def _as_mapping(extra_params: Any) -> Mapping[str, Any]:
    if extra_params in (None, "", {}):
        return {}
    if isinstance(extra_params, str):
        try:
            extra_params = json.loads(extra_params)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"extra_params is not valid JSON: {exc}") from None
    if not isinstance(extra_params, Mapping):
        raise SettingsError(f"extra_params must be a JSON object, got {type(extra_params).__name__}")
    return extra_params


def _coerce(name: str, raw: Any, type_name: Any, *, source: str) -> Any:
    """Convert env text or JSON values to the field's type, refusing lossy conversions."""
    type_name = getattr(type_name, "__name__", type_name)
    try:
        if type_name == "str":
            if not isinstance(raw, str):
                raise TypeError
            return raw
        if type_name == "int":
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise TypeError
            return int(raw)
        if type_name == "float":
            if isinstance(raw, bool):
                raise TypeError
            return float(raw)
    except (TypeError, ValueError):
        pass
    else:
        raise AssertionError(f"unhandled settings type {type_name}")
    raise SettingsError(f"{name} (from {source}) must be {_ARTICLE[type_name]}, got {raw!r}")


_ARTICLE = {"str": "a string", "int": "an integer", "float": "a number"}
