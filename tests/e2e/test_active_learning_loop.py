"""The whole loop through real parts: Label Studio 1.23, gunicorn backend, Redis, an RQ worker.

A project owner creates a project from a real dataset package, connects the backend, annotates a few tasks;
the worker must retrain, write a prediction of the new version on every unlabeled task, switch the
project to that version, and Label Studio must then serve the lowest-scored task next.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass

import pytest
import requests

from backend.stack import bbc_news

pytestmark = pytest.mark.e2e

PER_CLASS = 6
LABELS_PER_CLASS = 2


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
    """A project of BBC News articles connected to the backend, with the true topics to label it by."""

    stack: object
    id: int
    ml_id: int
    truth: dict[str, str]
    classes: list[str]

    @classmethod
    def create(cls, stack, title: str, per_class: int, extra_params: dict) -> "BbcProject":
        rows = list(bbc_news(per_class))
        truth = {text: topic for text, topic in rows}
        classes = sorted(set(truth.values()))
        project_id = stack.ls.create_project(title, classes)
        stack.ls.import_tasks(project_id, [text for text, _ in rows])
        ml_id = stack.ls.connect_backend(project_id, stack.backend_url, extra_params)
        return cls(stack, project_id, ml_id, truth, classes)

    @property
    def n_tasks(self) -> int:
        return len(self.stack.ls.call("GET", f"/api/tasks?project={self.id}&page_size=1000")["tasks"])

    def annotate(self, per_class: int) -> list[dict]:
        """Label the first ``per_class`` tasks of every topic with their true topic; returns those tasks."""
        tasks = self.stack.ls.call("GET", f"/api/tasks?project={self.id}&page_size=1000")["tasks"]
        chosen = [t for topic in self.classes for t in [t for t in tasks if self.truth[t["data"]["text"]] == topic][:per_class]]
        for task in chosen:
            self.stack.ls.annotate(task["id"], self.truth[task["data"]["text"]])
        return chosen


def backend_status(stack, project_id: int) -> dict:
    return requests.get(f"{stack.backend_url}/status", params={"project": project_id}, timeout=10).json()


def versions_with_predictions(stack, project_id: int) -> dict[str, int]:
    # LS also lists the backend's title (with count 0) as a version.
    counts = stack.ls.call("GET", f"/api/projects/{project_id}/model-versions")
    return {version: count for version, count in counts.items() if count}


def all_tasks(stack, project_id: int) -> list[dict]:
    query = json.dumps({"ordering": ["tasks:predictions_score"]})
    page = stack.ls.call("GET", f"/api/tasks?project={project_id}&fields=all&page_size=1000&query={query}")
    return page["tasks"]


@pytest.mark.parametrize(
    "extra_params",
    [
        pytest.param({"strategy": "margin", "model_mode": "finetune"}, id="margin-finetune"),
        pytest.param({"strategy": "cluster_margin", "model_mode": "finetune", "query_batch_size": 4}, id="batch-aware-cluster-margin"),
    ],
)
def test_annotations_retrain_and_rank_the_pool(stack, extra_params):
    bbc = BbcProject.create(stack, f"e2e {extra_params['strategy']}", PER_CLASS, extra_params)
    project_id, classes = bbc.id, bbc.classes
    n_tasks = bbc.n_tasks

    # Connecting ran /setup, which stored the project's settings for the worker.
    assert backend_status(stack, project_id)["settings"]["strategy"] == extra_params["strategy"]

    labeled_ids = {t["id"] for t in bbc.annotate(LABELS_PER_CLASS)}

    def retrained_on_every_label():
        body = backend_status(stack, project_id)
        project = stack.ls.call("GET", f"/api/projects/{project_id}")
        return body["n_labeled"] == len(labeled_ids) and project["model_version"] == body["model_version"] and body

    status = wait_for(retrained_on_every_label, "a retrain that saw every label to become the project's version")
    version = status["model_version"]
    assert status["n_pool"] == n_tasks - len(labeled_ids)
    assert status["evaluation"]["n_train"] + status["evaluation"]["n_eval"] == len(labeled_ids)
    assert set(status["stopping"]["recommendation"]) >= {"stop", "reason"}
    assert (stack.model_dir / f"project-{project_id}" / version / "meta.json").is_file()

    project = stack.ls.call("GET", f"/api/projects/{project_id}")
    assert project["sampling"] == "Uncertainty sampling"

    unlabeled = [t for t in all_tasks(stack, project_id) if t["id"] not in labeled_ids]
    scores = {}
    for task in unlabeled:
        current = [p for p in task["predictions"] if p["model_version"] == version]
        assert len(current) == 1, f"task {task['id']} has no prediction of {version}: {task['predictions']}"
        (prediction,) = current
        (region,) = prediction["result"]
        assert region["from_name"] == "topic" and region["to_name"] == "text"
        assert region["value"]["choices"][0] in classes
        assert 0.0 <= prediction["score"] < 1.0
        scores[task["id"]] = prediction["score"]
    assert len(set(scores.values())) == len(scores), "rank-based scores must be distinct"

    served = stack.ls.call("GET", f"/api/projects/{project_id}/next")
    assert served["id"] == min(scores, key=scores.get)

    # /predict serves the same ranking for pool tasks, and a suggestion for a task it never ranked.
    pool_task = next(t for t in unlabeled if t["id"] == served["id"])
    body = {
        "project": f"{project_id}.1700000000",
        "label_config": project["label_config"],
        "tasks": [{"id": pool_task["id"], "data": pool_task["data"]}, {"id": 10**9, "data": {"text": "The striker scored twice in the cup final."}}],
    }
    response = requests.post(f"{stack.backend_url}/predict", json=body, timeout=60)
    assert response.status_code == 200, response.text
    ranked, fresh = response.json()["results"]
    assert ranked[0]["score"] == pytest.approx(scores[pool_task["id"]])
    assert ranked[0]["model_version"] == fresh[0]["model_version"] == version
    assert fresh[0]["result"][0]["value"]["choices"][0] in classes

    versions = requests.get(f"{stack.backend_url}/versions", params={"project": project_id}, timeout=10).json()
    assert versions["versions"][0] == version

    # Older versions' predictions are pruned from LS by the low-priority job; the current one stays whole.
    def only_current_version_left():
        return versions_with_predictions(stack, project_id) == {version: len(unlabeled)}

    wait_for(only_current_version_left, "older prediction versions to be pruned", timeout_s=120)


def settled_outcome(stack, project_id: int) -> dict | None:
    """The last retrain's outcome once nothing is queued or running for the project."""
    status = backend_status(stack, project_id)
    idle = status["queue"]["pending_job"] is None and not status["queue"]["running"]
    return status["last_retrain"] if idle and status["last_retrain"] else None


def test_cold_start_ranks_representative_tasks_before_any_label(stack):
    bbc = BbcProject.create(stack, "e2e cold start", 4, {"strategy": "cold_start", "query_batch_size": 5})
    project_id = bbc.id

    stack.ls.call("POST", f"/api/ml/{bbc.ml_id}/train", json={})  # LS sends START_TRAINING to /webhook

    outcome = wait_for(lambda: settled_outcome(stack, project_id), "a cold-start ranking")
    assert outcome["status"] == "ranked" and outcome["n_labeled"] == 0 and outcome["n_pool"] == bbc.n_tasks
    version = outcome["model_version"]
    assert stack.ls.call("GET", f"/api/projects/{project_id}")["model_version"] == version
    tasks = all_tasks(stack, project_id)
    scores = {}
    for task in tasks:
        (prediction,) = [p for p in task["predictions"] if p["model_version"] == version]
        assert prediction["result"] == []  # no model yet: a rank, no suggested label
        scores[task["id"]] = prediction["score"]
    assert stack.ls.call("GET", f"/api/projects/{project_id}/next")["id"] == min(scores, key=scores.get)


def test_a_strategy_that_cannot_run_yet_is_reported_not_replaced(stack):
    bbc = BbcProject.create(stack, "e2e difficulty too early", 3, {"strategy": "difficulty", "model_mode": "head"})
    project_id = bbc.id
    bbc.annotate(1)  # one label per class: no out-of-fold losses possible

    outcome = wait_for(lambda: settled_outcome(stack, project_id), "the last retrain to finish")
    assert outcome["status"] == "skipped"
    assert "difficulty" in outcome["reason"] and "at least 2 labels in each" in outcome["reason"]
    status = backend_status(stack, project_id)
    assert status["model_version"] is None  # nothing published under another strategy
    assert versions_with_predictions(stack, project_id) == {}


def newest_child(pid: int) -> int | None:
    """The most recently started child process: RQ forks a work horse per job, after its scheduler."""
    children = subprocess.run(["ps", "--ppid", str(pid), "-o", "pid=", "--sort=start_time"], capture_output=True, text=True)
    pids = [int(line) for line in children.stdout.split()]
    return pids[-1] if pids else None


def test_a_retrain_killed_mid_training_is_retried_to_completion(stack):
    # Slower training than the other tests, so that the kill lands while the model trains.
    bbc = BbcProject.create(stack, "e2e worker kill", 4, {"epochs": 6, "max_length": 128, "batch_size": 4})
    project_id = bbc.id
    n_tasks = bbc.n_tasks
    labeled = bbc.annotate(2)

    def training():
        running = backend_status(stack, project_id)["queue"]["running"]
        return running and (running[0]["progress"] or {}).get("stage") == "train" and running[0]
    killed = wait_for(training, "the retrain to reach training", every_s=0.5)
    horse = newest_child(stack.worker.process.pid)
    assert horse is not None
    os.kill(horse, signal.SIGKILL)  # the work horse dies mid-training, as under the OOM killer

    def finished_on_every_label():
        outcome = settled_outcome(stack, project_id)
        return outcome and outcome["status"] == "trained" and outcome["n_labeled"] == len(labeled) and outcome
    outcome = wait_for(finished_on_every_label, "the retried retrain to finish", timeout_s=600)
    assert stack.ls.call("GET", f"/api/projects/{project_id}")["model_version"] == outcome["model_version"]
    assert outcome["job_id"] == killed["job_id"]  # RQ retried the killed job itself; nothing was lost
    expected = {outcome["model_version"]: n_tasks - len(labeled)}
    wait_for(lambda: versions_with_predictions(stack, project_id) == expected, "a complete, pruned version", timeout_s=120)
