"""Driving a real Label Studio as a project owner would, for the end-to-end tests."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import requests

from backend.ops.demo import bbc_news


def wait_for(condition, what: str, timeout_s: float = 420.0, every_s: float = 2.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@dataclass
class BbcProject:
    """A project of BBC News articles, with the true topics to label it by; connected unless told not to be."""

    stack: object
    id: int
    ml_id: int | None
    truth: dict[str, str]
    classes: list[str]

    @classmethod
    def create(cls, stack, title: str, per_class: int, extra_params: dict | None, connect: bool = True) -> "BbcProject":
        rows = list(bbc_news(per_class))
        truth = {text: topic for text, topic in rows}
        classes = sorted(set(truth.values()))
        project_id = stack.ls.create_project(title, classes)
        stack.ls.import_tasks(project_id, [text for text, _ in rows])
        ml_id = stack.ls.connect_backend(project_id, stack.backend_url, extra_params) if connect else None
        return cls(stack, project_id, ml_id, truth, classes)

    def tasks(self) -> list[dict]:
        return self.stack.ls.call("GET", f"/api/tasks?project={self.id}&page_size=10000")["tasks"]

    @property
    def n_tasks(self) -> int:
        return len(self.tasks())

    def topic_of(self, task: dict) -> str:
        return self.truth[task["data"]["text"]]

    def annotate(self, per_class: int) -> list[dict]:
        """Label ``per_class`` more unlabeled tasks of every topic with their true topic; returns those tasks."""
        tasks = [t for t in self.tasks() if not t["is_labeled"] and "text" in t["data"]]
        chosen = [t for topic in self.classes for t in [t for t in tasks if self.topic_of(t) == topic][:per_class]]
        for task in chosen:
            self.stack.ls.annotate(task["id"], self.topic_of(task))
        return chosen

    def n_labeled(self) -> int:
        return sum(1 for task in self.tasks() if task["is_labeled"])

    def import_owner_predictions(self, model_version: str, count: int) -> list[int]:
        """Predictions the owner imported themselves (from another model, say): never the backend's to delete."""
        tasks = self.tasks()[:count]
        predictions = [
            {
                "task": task["id"], "model_version": model_version, "score": 0.5,
                "result": [{"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": [self.topic_of(task)]}}],
            }
            for task in tasks
        ]
        self.stack.ls.call("POST", f"/api/projects/{self.id}/import/predictions", json=predictions)
        return [task["id"] for task in tasks]

    def project(self) -> dict:
        return self.stack.ls.call("GET", f"/api/projects/{self.id}")

    def versions_with_predictions(self) -> dict[str, int]:
        return versions_with_predictions(self.stack, self.id)


def backend_status(stack, project_id: int) -> dict:
    return requests.get(f"{stack.backend_url}/status", params={"project": project_id}, timeout=10).json()


def wait_for_retrain_on(stack, project_id: int, n_labeled: int, what: str) -> dict:
    """The backend's status once a retrain that saw ``n_labeled`` labels is the version Label Studio uses."""
    def retrained_on_every_label():
        body = backend_status(stack, project_id)
        project = stack.ls.call("GET", f"/api/projects/{project_id}")
        return body.get("n_labeled") == n_labeled and project["model_version"] == body["model_version"] and body

    return wait_for(retrained_on_every_label, what)


def versions_with_predictions(stack, project_id: int) -> dict[str, int]:
    # LS also lists the backend's title (with count 0) as a version.
    counts = stack.ls.call("GET", f"/api/projects/{project_id}/model-versions")
    return {version: count for version, count in counts.items() if count}


def all_tasks(stack, project_id: int) -> list[dict]:
    query = json.dumps({"ordering": ["tasks:predictions_score"]})
    page = stack.ls.call("GET", f"/api/tasks?project={project_id}&fields=all&page_size=10000&query={query}")
    return page["tasks"]


def settled_outcome(stack, project_id: int) -> dict | None:
    """The last retrain's outcome once nothing is queued or running for the project."""
    status = backend_status(stack, project_id)
    idle = status["queue"]["pending_job"] is None and not status["queue"]["running"]
    return status["last_retrain"] if idle and status["last_retrain"] else None
