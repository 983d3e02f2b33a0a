"""The worker's view of Label Studio: read labeled and unlabeled tasks, write predictions, switch versions.

Built on label-studio-sdk. Webhook bodies are only triggers; everything the worker trains on is re-read here.

Writes never starve Label Studio's own writers (an annotator's submit): each write is one bounded chunk,
sent while holding the write gate that every worker shares for this Label Studio (``backend.labelstudio.write_gate``),
and a chunk that Label Studio refuses with a 5xx or 429 (SQLite's "database is locked" is a 500) is
retried with exponential back-off by the SDK's own retry (``max_retries``).
"""
from __future__ import annotations

import json
import logging
from contextlib import AbstractContextManager, nullcontext
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterator, Sequence

from label_studio_sdk import LabelStudio

from backend.core.labels import LabelSpec
from backend.labelstudio.rows import TaskRecord, ls_timestamp, task_record

log = logging.getLogger(__name__)

UNCERTAINTY_SAMPLING = "Uncertainty sampling"
PAGE_SIZE = 500
#: Predictions per import request. LS imports 1k in about 1.6 s on SQLite; 500 keeps each write
#: transaction well inside SQLite's busy timeout, so an annotator's submit waits at most a moment.
PREDICTION_CHUNK = 500
#: Retries of one write with the SDK's exponential back-off (1, 2, 4, 8, 16 s, with jitter).
WRITE_RETRIES = 5


def _completed_item(completed: bool) -> dict[str, Any]:
    """Data Manager filter on ``completed_at``: a task is labeled once it has enough annotations."""
    return {"filter": "filter:tasks:completed_at", "operator": "empty", "type": "Datetime", "value": not completed}


def _filter_query(item: dict[str, Any]) -> str:
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

    def project(self, project_id: int) -> dict[str, Any]:
        """The project fields the worker acts on: label config, model version, sampling."""
        project = self.sdk.projects.get(project_id)
        return {"label_config": project.label_config, "model_version": project.model_version or "", "sampling": project.sampling}

    def ml_backends(self, project_id: int) -> list[dict[str, Any]]:
        """The project's ML-backend connections as Label Studio records them (url, extra_params, ...)."""
        return [_as_dict(record) for record in self.sdk.ml.list(project=project_id)]

    def server_time(self) -> str:
        """Label Studio's clock now (its ``Date`` header, whole seconds, rounded down), in ``ls_timestamp`` form:
        the same clock that stamps ``updated_at``."""
        return ls_timestamp(parsedate_to_datetime(self._raw("GET", "api/version").headers["Date"]))

    def task_count(self, project_id: int) -> int:
        """How many tasks the project holds, as LS counts them."""
        return int(self.sdk.projects.get(project_id).task_number or 0)

    def all_tasks(self, project_id: int, spec: LabelSpec) -> Iterator[TaskRecord]:
        """Every task: completed ones with their annotations, the rest without (their predictions are not needed)."""
        for fields, completed in (("all", True), ("task_only", False)):
            for task in self._tasks(project_id, fields=fields, query=_filter_query(_completed_item(completed))):
                yield task_record(task, spec)

    def tasks_updated_since(self, project_id: int, spec: LabelSpec, since: str) -> Iterator[TaskRecord]:
        """Tasks whose ``updated_at`` is past ``since`` (ISO 8601): created, edited or (re-)annotated since."""
        item = {"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime", "value": since}
        for task in self._tasks(project_id, fields="all", query=_filter_query(item)):
            yield task_record(task, spec)

    def tasks_by_id(self, project_id: int, spec: LabelSpec, task_ids: Sequence[int]) -> Iterator[TaskRecord]:
        """The named tasks that still exist."""
        for start in range(0, len(task_ids), PAGE_SIZE):
            selected = {"all": False, "included": [int(i) for i in task_ids[start : start + PAGE_SIZE]]}
            for task in self._tasks(project_id, fields="all", query=json.dumps({"selectedItems": selected})):
                yield task_record(task, spec)

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
