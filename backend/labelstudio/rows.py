"""The rows the worker reads from Label Studio and keeps in the task mirror (``backend.labelstudio.task_mirror``):
one ``TaskRecord`` per task as read, and the labeled and unlabeled tasks a retrain trains on and ranks."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from backend.core.labels import LabelSpec, annotation_label

#: Task ids named in a skip report; the count is always complete.
NAMED_SKIPS = 20


@dataclass(frozen=True)
class LabeledTask:
    id: int
    text: str
    label: str


@dataclass(frozen=True)
class PoolTask:
    id: int
    text: str


@dataclass(frozen=True)
class TaskRecord:
    """What the worker keeps of one task: its text (None: unreadable under the config), the class of its newest
    submitted annotation (None: none of the config's classes), whether LS counts it completed, and LS's
    ``updated_at`` as UTC ISO 8601 (so that comparing two of them as text compares the times)."""

    id: int
    text: str | None
    label: str | None
    completed: bool
    updated_at: str


def task_record(task: dict[str, Any], spec: LabelSpec) -> TaskRecord:
    label = annotation_label(task.get("annotations") or [], spec)
    return TaskRecord(
        int(task["id"]), spec.text_of(task.get("data")), label if label is not None and spec.is_known(label) else None,
        bool(task.get("is_labeled")), ls_timestamp(task.get("updated_at")),
    )


def ls_timestamp(value: Any) -> str:
    """LS's timestamps (ISO text from the API, or a datetime from the SDK) as fixed-width UTC ISO 8601."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class SkippedTasks:
    """Tasks a retrain could not use (no text under the config's field, say): counted, named, never fatal."""

    count: int = 0
    task_ids: list[int] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, task_id: int, reason: str) -> None:
        self.count += 1
        if len(self.task_ids) < NAMED_SKIPS:
            self.task_ids.append(task_id)
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "task_ids": self.task_ids, "reasons": self.reasons}
