"""The worker's view of Label Studio: read labeled and unlabeled tasks, write predictions, switch versions.

Built on label-studio-sdk. Webhook bodies are only triggers; everything the worker trains on is re-read here.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from label_studio_sdk import LabelStudio

from backend.labels import TextClassificationSpec

log = logging.getLogger(__name__)

UNCERTAINTY_SAMPLING = "Uncertainty sampling"
PAGE_SIZE = 500
PREDICTION_CHUNK = 1000


@dataclass(frozen=True)
class LabeledTask:
    id: int
    text: str
    label: str


@dataclass(frozen=True)
class PoolTask:
    id: int
    text: str


def _completed_filter(completed: bool) -> str:
    """Data Manager filter on ``completed_at``: a task is labeled once it has enough annotations."""
    item = {"filter": "filter:tasks:completed_at", "operator": "empty", "type": "Datetime", "value": not completed}
    return json.dumps({"filters": {"conjunction": "and", "items": [item]}})


class LabelStudioClient:
    def __init__(self, url: str, api_key: str, timeout_s: float = 60.0):
        self.url = url.rstrip("/")
        self.sdk = LabelStudio(base_url=self.url, api_key=api_key, timeout=timeout_s)

    def label_config(self, project_id: int) -> str:
        return self.sdk.projects.get(project_id).label_config

    def labeled_tasks(self, project_id: int, spec: TextClassificationSpec) -> list[LabeledTask]:
        """Tasks whose newest submitted annotation picks one of the config's classes."""
        labeled = []
        for task in self._tasks(project_id, fields="all", query=_completed_filter(True)):
            label = _latest_label(task.get("annotations") or [], spec)
            if label in spec.classes:
                labeled.append(LabeledTask(task["id"], spec.text_of(task["data"]), label))
        return labeled

    def pool_tasks(self, project_id: int, spec: TextClassificationSpec) -> list[PoolTask]:
        return [
            PoolTask(task["id"], spec.text_of(task["data"]))
            for task in self._tasks(project_id, fields="task_only", query=_completed_filter(False))
        ]

    def _tasks(self, project_id: int, *, fields: str, query: str) -> Iterator[dict[str, Any]]:
        pager = self.sdk.tasks.list(project=project_id, fields=fields, query=query, page_size=PAGE_SIZE)
        for task in pager:
            yield task.model_dump() if hasattr(task, "model_dump") else dict(task)

    def write_predictions(
        self,
        project_id: int,
        predictions: Sequence[dict[str, Any]],
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Bulk import in chunks: one request per 1k predictions instead of one per task."""
        total = len(predictions)
        for start in range(0, total, PREDICTION_CHUNK):
            self.sdk.projects.import_predictions(project_id, request=list(predictions[start : start + PREDICTION_CHUNK]))
            if progress:
                progress("write predictions", min(start + PREDICTION_CHUNK, total), total)

    def activate_version(self, project_id: int, model_version: str) -> None:
        """Make LS rank by this version's scores: /next serves the lowest score first."""
        self.sdk.projects.update(project_id, model_version=model_version, sampling=UNCERTAINTY_SAMPLING)

    def project_version(self, project_id: int) -> str:
        return self.sdk.projects.get(project_id).model_version or ""

    def prediction_versions(self, project_id: int) -> dict[str, int]:
        """Model versions that have predictions in the project, with their counts."""
        payload = self._raw("GET", f"api/projects/{project_id}/model-versions").json()
        return {str(version): int(count) for version, count in _version_counts(payload)}

    def delete_version(self, project_id: int, model_version: str) -> None:
        self._raw("DELETE", f"api/projects/{project_id}/model-versions/", json={"model_version": model_version})

    def _raw(self, method: str, path: str, json: Any = None):
        """The SDK has no model-versions routes; reuse its authenticated HTTP client for them."""
        response = self.sdk._client_wrapper.httpx_client.request(path, method=method, json=json)
        response.raise_for_status()
        return response


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
