"""Every setting, parsed and validated in one place.

Two kinds:
- ``ServiceSettings``: one per process, from the environment (names follow Label Studio's ML-backend
  conventions: LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY, MODEL_DIR, REDIS_URL, BASIC_AUTH_USER/PASS).
- ``ProjectSettings``: one per Label Studio project, from the ML backend's ``extra_params`` (sent in
  ``/setup``), falling back to ``AL_*`` environment defaults.

Every number has a documented range (``PROJECT_RANGES``, ``SERVICE_RANGES``): a value outside it is refused
here, before any job runs, so a typo cannot tie up a worker for hours or crash a retrain on every retry.
Invalid values raise ``SettingsError`` with a message naming the setting and its valid values.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from backend.core.exceptions import SettingsError
from strategies import STRATEGY_NAMES

MODEL_MODES = ("finetune", "head")
DEVICES = ("auto", "cpu", "cuda")
#: ``fixed``: the head's C is 10; ``cv``: C is chosen per retrain by cross-validated log-loss (``backend.models.logistic_head``).
HEAD_REGULARIZATIONS = ("fixed", "cv")
#: How the full path tunes the encoder: ``classifier``, end to end with a classification head
#: (``backend.models.finetuned_classifier``); ``setfit``, contrastively on pairs of labeled texts (``backend.models.setfit_classifier``).
FINETUNE_METHODS = ("classifier", "setfit")
DEFAULT_MODEL = "bundled:all-MiniLM-L6-v2"

#: Inclusive ranges of the numeric project settings. Upper bounds keep one retrain within minutes on a CPU
#: and within a BERT model's 512 positions; the README's settings table lists the same ranges.
PROJECT_RANGES: dict[str, tuple[float, float]] = {
    "epochs": (1, 50),
    "batch_size": (1, 256),
    "learning_rate": (1e-7, 0.1),
    "max_length": (8, 512),
    "eval_fraction": (0.0, 0.5),
    "min_labels": (2, 10_000),
    "query_batch_size": (1, 1_000),
    "committee_size": (2, 20),
    "finetune_every": (1, 100_000),
    "top_k": (10, 100_000),
    "seed": (0, 2**32 - 1),
}
MAX_MODEL_NAME_CHARS = 200



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
    #: ``model_mode: finetune`` only: labels between full-path fine-tunes of the encoder. Every label still
    #: gets a fast retrain (a head over the newest encoder's cached embeddings).
    finetune_every: int = 50
    #: ``model_mode: finetune`` only: how the full path tunes the encoder, one of ``FINETUNE_METHODS``.
    finetune_method: str = "classifier"
    #: Predictions each version writes to Label Studio: its K most informative tasks. LS serves tasks with a
    #: prediction of the current version first, lowest score first, so K only has to exceed the labels
    #: given before the next re-rank; and LS deletes a version in one transaction, which K keeps short.
    top_k: int = 500
    seed: int = 0
    device: str = "auto"
    #: Rank with ``cold_start`` until ``min_labels`` labels in at least 2 classes exist, then with ``strategy``.
    cold_start_phase: bool = True
    #: How the frozen-encoder head is regularised: one of ``HEAD_REGULARIZATIONS``.
    head_regularization: str = "fixed"

    def __post_init__(self) -> None:
        _one_of("strategy", self.strategy, STRATEGY_NAMES)
        _one_of("model_mode", self.model_mode, MODEL_MODES)
        _one_of("device", self.device, DEVICES)
        _one_of("head_regularization", self.head_regularization, HEAD_REGULARIZATIONS)
        _one_of("finetune_method", self.finetune_method, FINETUNE_METHODS)
        if not self.model_name.strip() or len(self.model_name) > MAX_MODEL_NAME_CHARS:
            raise SettingsError(
                f"model_name must name a Hugging Face model or a local path of at most {MAX_MODEL_NAME_CHARS} characters"
            )
        for name, (low, high) in PROJECT_RANGES.items():
            _in_range(name, getattr(self, name), low, high)

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


#: Inclusive ranges of the numeric service settings (environment variables).
SERVICE_RANGES: dict[str, tuple[float, float]] = {
    "AL_JOB_TIMEOUT": (10, 24 * 3600),
    "AL_MAX_BODY_MB": (1, 1024),
    "AL_MAX_WEBHOOK_KB": (16, 64 * 1024),
    "AL_MAX_PREDICT_TASKS": (1, 100_000),
    "AL_RESYNC_S": (60, 7 * 24 * 3600),
    "AL_SCORE_CHUNK_TASKS": (100, 1_000_000),
}
_URL_SECRET_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
MIN_URL_SECRET_CHARS = 16


@dataclass(frozen=True)
class ServiceSettings:
    """Process-wide settings from the environment."""

    #: Where the worker reads and writes Label Studio, and with which key: both from the environment, or
    #: neither (then both come from the ``/setup`` of the project being trained). Never one from each,
    #: so the environment's key is never sent to a host that came in a request.
    label_studio_url: str | None
    label_studio_api_key: str | None
    model_dir: Path
    redis_url: str
    basic_auth_user: str | None
    basic_auth_pass: str | None
    queue_name: str
    job_timeout_s: int
    #: The queue of full-path fine-tunes (``backend.jobs.full_path``), so a GPU worker elsewhere can serve only it.
    finetune_queue: str = "al-finetune"
    #: The secret path segment Label Studio reaches the backend under (``http://host:9090/<secret>``);
    #: None means "generate one under MODEL_DIR" (``backend.labelstudio.url_secret``).
    url_secret: str | None = None
    max_body_bytes: int = 16 * 1024 * 1024
    max_webhook_bytes: int = 16 * 1024 * 1024
    max_predict_tasks: int = 1000
    #: Seconds between full re-reads of a project's tasks; reads in between fetch only what changed
    #: (``backend.labelstudio.task_mirror``), and the full read repairs any drift they missed.
    resync_s: int = 3600
    #: Uncached tasks per embedding chunk; more than one chunk's worth go out as chunk jobs on ``score_queue``,
    #: which any number of workers run in parallel (``backend.jobs.chunked_embedding``).
    score_chunk_tasks: int = 20_000
    score_queue: str = "al-score"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ServiceSettings":
        env = os.environ if env is None else env
        user, password = env.get("BASIC_AUTH_USER") or None, env.get("BASIC_AUTH_PASS") or None
        if bool(user) != bool(password):
            raise SettingsError("set both BASIC_AUTH_USER and BASIC_AUTH_PASS, or neither")
        ls_url = (env.get("LABEL_STUDIO_URL") or "").rstrip("/") or None
        ls_key = env.get("LABEL_STUDIO_API_KEY") or None
        if bool(ls_url) != bool(ls_key):
            raise SettingsError(
                "set both LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY, or neither (then each project's own /setup "
                "supplies both): a key must only ever go to the host it belongs to"
            )
        secret = env.get("AL_URL_SECRET") or None
        if secret is not None and (len(secret) < MIN_URL_SECRET_CHARS or not set(secret) <= _URL_SECRET_CHARS):
            raise SettingsError(
                f"AL_URL_SECRET must be at least {MIN_URL_SECRET_CHARS} characters of letters, digits, '-' and '_'"
            )
        numbers = {
            name: _in_range(name, _coerce(name, env.get(name, default), "int", source=name), *SERVICE_RANGES[name])
            for name, default in (("AL_JOB_TIMEOUT", "3600"), ("AL_MAX_BODY_MB", "16"), ("AL_MAX_WEBHOOK_KB", "16384"), ("AL_MAX_PREDICT_TASKS", "1000"),
                                  ("AL_RESYNC_S", "3600"), ("AL_SCORE_CHUNK_TASKS", "20000"))
        }
        return cls(
            label_studio_url=ls_url,
            label_studio_api_key=ls_key,
            model_dir=Path(env.get("MODEL_DIR") or "./models").resolve(),
            redis_url=env.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
            basic_auth_user=user,
            basic_auth_pass=password,
            queue_name=env.get("AL_QUEUE") or "al-train",
            finetune_queue=env.get("AL_FINETUNE_QUEUE") or "al-finetune",
            job_timeout_s=numbers["AL_JOB_TIMEOUT"],
            url_secret=secret,
            max_body_bytes=numbers["AL_MAX_BODY_MB"] * 1024 * 1024,
            max_webhook_bytes=numbers["AL_MAX_WEBHOOK_KB"] * 1024,
            max_predict_tasks=numbers["AL_MAX_PREDICT_TASKS"],
            resync_s=numbers["AL_RESYNC_S"],
            score_chunk_tasks=numbers["AL_SCORE_CHUNK_TASKS"],
            score_queue=env.get("AL_SCORE_QUEUE") or "al-score",
        )


def _in_range(name: str, value: float, low: float, high: float) -> float:
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {_plain(low)} and {_plain(high)}, got {value!r}")
    return value


def _plain(number: float) -> str:
    """Whole bounds in full (1000000, not 1e+06), others in short (1e-07)."""
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def _one_of(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise SettingsError(f"{name} {value!r} is not valid; choose one of: {', '.join(valid)}")


def _as_mapping(extra_params: Any) -> Mapping[str, Any]:
    if extra_params in (None, "", {}):
        return {}
    if isinstance(extra_params, str):
        try:
            extra_params = json.loads(extra_params)
        except (ValueError, RecursionError) as exc:  # also an over-long integer, or nesting past the parser's depth
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
        if type_name == "bool":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lower() in _BOOL_TEXT:
                return _BOOL_TEXT[raw.strip().lower()]
            raise TypeError
    except (TypeError, ValueError, OverflowError):  # OverflowError: float() of an integer past 1e308
        pass
    else:
        raise AssertionError(f"unhandled settings type {type_name}")
    raise SettingsError(f"{name} (from {source}) must be {_ARTICLE[type_name]}, got {raw!r}")


_ARTICLE = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false"}
#: How environment text spells a boolean (JSON extra params use true and false).
_BOOL_TEXT = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
