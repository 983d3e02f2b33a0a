"""The worker's view of Label Studio: read labeled and unlabeled tasks, write predictions, switch versions.

Built on label-studio-sdk. Webhook bodies are only triggers; everything the worker trains on is re-read here.

Writes never starve Label Studio's own writers (an annotator's submit): each write is one bounded chunk,
sent while holding the write gate that every worker shares for this Label Studio (``backend.write_gate``),
and a chunk that Label Studio refuses with a 5xx or 429 (SQLite's "database is locked" is a 500) is
retried with exponential back-off by the SDK's own retry (``max_retries``).
"""
from __future__ import annotations

import json
import logging
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from label_studio_sdk import LabelStudio

from backend.labels import TextClassificationSpec

log = logging.getLogger(__name__)

UNCERTAINTY_SAMPLING = "Uncertainty sampling"
PAGE_SIZE = 500
#: Predictions per import request. LS imports 1k in about 1.6 s on SQLite; 500 keeps each write
#: transaction well inside SQLite's busy timeout, so an annotator's submit waits at most a moment.
PREDICTION_CHUNK = 500
#: Retries of one write with the SDK's exponential back-off (1, 2, 4, 8, 16 s, with jitter).
WRITE_RETRIES = 5
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


def _completed_filter(completed: bool) -> str:
    """Data Manager filter on ``completed_at``: a task is labeled once it has enough annotations."""
    item = {"filter": "filter:tasks:completed_at", "operator": "empty", "type": "Datetime", "value": not completed}
    return json.dumps({"filters": {"conjunction": "and", "items": [item]}})


class LabelStudioClient:
    def __init__(
        self,
        url: str,
        api_key: str,
        timeout_s: float = 60.0,
        write_gate: Callable[[], AbstractContextManager] = nullcontext,
    ):
        self.url = url.rstrip("/")
        self.sdk = LabelStudio(base_url=self.url, api_key=api_key, timeout=timeout_s)
        self.write_gate = write_gate
        self.skipped = SkippedTasks()

    def project(self, project_id: int) -> dict[str, Any]:
        """The project fields the worker acts on: label config, model version, sampling."""
        project = self.sdk.projects.get(project_id)
        return {"label_config": project.label_config, "model_version": project.model_version or "", "sampling": project.sampling}

    def ml_backends(self, project_id: int) -> list[dict[str, Any]]:
        """The project's ML-backend connections as Label Studio records them (url, extra_params, ...)."""
        return [_as_dict(record) for record in self.sdk.ml.list(project=project_id)]

    def labeled_tasks(self, project_id: int, spec: TextClassificationSpec) -> list[LabeledTask]:
        """Tasks whose newest submitted annotation picks one of the config's classes."""
        labeled = []
        for task in self._tasks(project_id, fields="all", query=_completed_filter(True)):
            label = _latest_label(task.get("annotations") or [], spec)
            text = self._text(task, spec)
            if label in spec.classes and text is not None:
                labeled.append(LabeledTask(task["id"], text, label))
        return labeled

    def pool_tasks(self, project_id: int, spec: TextClassificationSpec) -> list[PoolTask]:
        pool = []
        for task in self._tasks(project_id, fields="task_only", query=_completed_filter(False)):
            text = self._text(task, spec)
            if text is not None:
                pool.append(PoolTask(task["id"], text))
        return pool

    def _text(self, task: dict[str, Any], spec: TextClassificationSpec) -> str | None:
        """The task's text, or None (and a skip on record) when the task cannot be read under the config."""
        text = spec.text_of(task.get("data"))
        if text is None:
            self.skipped.add(task["id"], spec.missing_field_reason)
        return text

    def _tasks(self, project_id: int, *, fields: str, query: str) -> Iterator[dict[str, Any]]:
        pager = self.sdk.tasks.list(project=project_id, fields=fields, query=query, page_size=PAGE_SIZE)
        for task in pager:
            yield _as_dict(task)

    def write_predictions(
        self,
        project_id: int,
        predictions: Sequence[dict[str, Any]],
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Bulk import in bounded chunks, one gated request per chunk, so other writers get turns between them."""
        total = len(predictions)
        for start in range(0, total, PREDICTION_CHUNK):
            with self.write_gate():
                self.sdk.projects.import_predictions(
                    project_id,
                    request=list(predictions[start : start + PREDICTION_CHUNK]),
                    request_options={"max_retries": WRITE_RETRIES},
                )
            if progress:
                progress("write predictions", min(start + PREDICTION_CHUNK, total), total)

    def activate_version(self, project_id: int, model_version: str, *, set_sampling: bool) -> None:
        """Make LS rank by this version's scores; set Uncertainty sampling only when asked (the first time)."""
        changes: dict[str, Any] = {"model_version": model_version}
        if set_sampling:
            changes["sampling"] = UNCERTAINTY_SAMPLING
        with self.write_gate():
            self.sdk.projects.update(project_id, **changes, request_options={"max_retries": WRITE_RETRIES})

    def prediction_versions(self, project_id: int) -> dict[str, int]:
        """Model versions that have predictions in the project, with their counts."""
        payload = self._raw("GET", f"api/projects/{project_id}/model-versions").json()
        return {str(version): int(count) for version, count in _version_counts(payload)}

    def delete_version(self, project_id: int, model_version: str) -> None:
        with self.write_gate():
            self._raw("DELETE", f"api/projects/{project_id}/model-versions/", json={"model_version": model_version})

    def _raw(self, method: str, path: str, json: Any = None):
        """The SDK has no model-versions routes; reuse its authenticated, retrying HTTP client for them."""
        response = self.sdk._client_wrapper.httpx_client.request(
            path, method=method, json=json, request_options={"max_retries": WRITE_RETRIES}
        )
        response.raise_for_status()
        return response


def _as_dict(record: Any) -> dict[str, Any]:
    return record.model_dump() if hasattr(record, "model_dump") else dict(record)


def _version_counts(payload: Any) -> Iterator[tuple[str, int]]:
    # LS answers either {"version": count} or [{"model_version": v, "count": n}] depending on the route flavour.
    if isinstance(payload, dict):
        yield from payload.items()
    else:
        for row in payload:
            yield row["model_version"], row.get("count", 0)


def _latest_label(annotations: list[dict[str, Any]], spec: TextClassificationSpec) -> str | None:
    submitted = [a for a in annotations if not a.get("was_cancelled")]
    for annotation in sorted(submitted, key=lambda a: (a.get("updated_at") or "", a.get("id") or 0), reverse=True):
        label = spec.label_of(annotation.get("result") or [])
        if label is not None:
            return label
    return None
