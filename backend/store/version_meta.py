"""What a model version records about itself (``meta.json``): one dataclass that the retrain writes and the
predictor, ``/status``, the dashboard, the history and the stopping signal read, by field, never by string key.

Nested parts stay the JSON documents of the modules that compute them: ``evaluation``
(``backend.learning.evaluation.Evaluation.to_dict``), ``stopping`` (``backend.learning.stopping_signal``),
``read`` (``backend.labelstudio.task_mirror.RefreshReport``) and ``skipped_tasks``. Versions written by older
releases lack some fields; they read as the defaults below, which is what those releases did.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from strategies import SINGLE_LABEL

META_FILE = "meta.json"


@dataclass(frozen=True)
class VersionMeta:
    project: int
    #: Whether a model was trained; False for a ranking without one (the cold-start phase).
    trained: bool
    strategy: str
    phase: str | None
    phase_reason: str | None
    #: The settings the version was trained with (``ProjectSettings.to_dict``).
    settings: dict[str, Any]
    classes: list[str]
    task_type: str = SINGLE_LABEL
    #: The encoder the head reads: an adopted fine-tune's folder, or "base".
    encoder: str = "base"
    n_labeled: int = 0
    n_pool: int = 0
    skipped_tasks: dict[str, Any] | None = None
    read: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    #: NER versions: token vectors from the cache and computed (``{"hits", "misses"}``).
    token_cache: dict[str, int] | None = None
    #: Annotated spans the version could not use, by reason (``backend.core.spans.DROP_REASONS``).
    dropped_spans: dict[str, int] = field(default_factory=dict)
    stopping: dict[str, Any] = field(default_factory=lambda: {"history": [], "recommendation": {}})
    #: Set when the version is published.
    version: str = ""
    created_at: float = 0.0

    def published_as(self, version: str, created_at: float) -> "VersionMeta":
        return replace(self, version=version, created_at=created_at)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "VersionMeta":
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in payload.items() if key in known})

    def save(self, folder: Path) -> None:
        (Path(folder) / META_FILE).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))

    @classmethod
    def load(cls, folder: Path) -> "VersionMeta":
        return cls.from_dict(json.loads((Path(folder) / META_FILE).read_text()))
