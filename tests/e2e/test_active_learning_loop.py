"""The whole loop through real parts: Label Studio 1.23, gunicorn backend, Redis, an RQ worker.

A project owner creates a project from a real dataset package, connects the backend, annotates a few tasks;
the worker must retrain, write a prediction of the new version on every unlabeled task, switch the
project to that version, and Label Studio must then serve the lowest-scored task next.
"""
from __future__ import annotations

import os
import signal
import subprocess

import pytest
import requests
from ls_project import (
    BbcProject,
    all_tasks,
    backend_status,
    settled_outcome,
    versions_with_predictions,
    wait_for,
    wait_for_retrain_on,
)

pytestmark = pytest.mark.e2e

PER_CLASS = 6
LABELS_PER_CLASS = 2


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

    status = wait_for_retrain_on(stack, project_id, len(labeled_ids), "a retrain that saw every label to become the project's version")
    version = status["model_version"]
    assert status["n_pool"] == n_tasks - len(labeled_ids)
    # Cross-validated over every label: no second model trained only to measure the first.
    assert status["evaluation"]["n_eval"] == len(labeled_ids) and "cross-validation" in status["evaluation"]["note"]
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

    # Older versions' predictions are pruned right after the switch; the current one stays whole.
    def only_current_version_left():
        return versions_with_predictions(stack, project_id) == {version: len(unlabeled)}

    wait_for(only_current_version_left, "older prediction versions to be pruned", timeout_s=120)

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


@pytest.mark.parametrize("method", ["classifier", "setfit"])
def test_the_full_path_fine_tunes_beside_the_fast_path_and_no_older_version_is_ever_activated(stack, method):
    """Every label gets a fast retrain; the 10th also queues a fine-tune on al-finetune (end to end, or SetFit's
    contrastive pairs), judged on held-out labels. Watching LS's project version all along: its sequence number
    never goes down."""
    params = {"strategy": "margin", "model_mode": "finetune", "finetune_every": 10, "eval_fraction": 0.5,
              "finetune_method": method}
    bbc = BbcProject.create(stack, f"e2e two speeds {method}", PER_CLASS, params)
    labeled = bbc.annotate(LABELS_PER_CLASS)
    seen: list[int] = []

    def full_path_decided_and_settled():
        version = bbc.project()["model_version"] or ""
        if version.startswith(f"al-p{bbc.id}-v"):
            seen.append(int(version.split("-v")[1].split("-")[0]))
        status = backend_status(stack, bbc.id)
        full = status["full_path"]
        idle = not (full["pending_job"] or full["running"] or status["queue"]["pending_job"] or status["queue"]["running"])
        decided = full["decisions"] and full["decisions"][0]["outcome"] in ("adopted", "rejected")
        return idle and decided and status["n_labeled"] == len(labeled) and version == status["model_version"] and status

    status = wait_for(full_path_decided_and_settled, "a fine-tune decision and a settled fast path", every_s=0.5)
    assert seen == sorted(seen), f"LS's version went back: {seen}"
    decision = status["full_path"]["decisions"][0]
    assert decision["n_labels"] == len(labeled)
    for side in ("finetuned", "baseline"):
        assert decision[side]["n_eval"] == 5 and 0.0 <= decision[side]["accuracy"] <= 1.0
    # The fast path refits its head on the adopted encoder, or keeps the base one when the fine-tune lost.
    expected = decision["folder"] if decision["outcome"] == "adopted" else "base"
    assert status["encoder"] == status["full_path"]["encoder_in_use"] == expected


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
    # Connecting ranked the pool with cold start: the documented first phase, before any model can train.
    cold = wait_for(lambda: settled_outcome(stack, project_id), "the connect-time ranking")
    assert cold["status"] == "ranked" and cold["phase"] == "cold_start"
    bbc.annotate(1)  # one label per class: a model can train, but no out-of-fold losses are possible yet

    outcome = wait_for(lambda: (o := settled_outcome(stack, project_id)) and o["status"] != "ranked" and o, "the retrain")
    assert outcome["status"] == "skipped"
    assert "difficulty" in outcome["reason"] and "at least 2 labels in each" in outcome["reason"]
    status = backend_status(stack, project_id)
    # Nothing was published under another strategy: LS keeps the cold-start ranking (re-ranked as labels came).
    assert status["strategy"] == "cold_start" and status["phase"] == "cold_start"
    assert list(versions_with_predictions(stack, project_id)) == [status["model_version"]]


def newest_child(pid: int) -> int | None:
    """The most recently started child process: RQ forks a work horse per job, after its scheduler."""
    children = subprocess.run(["ps", "--ppid", str(pid), "-o", "pid=", "--sort=start_time"], capture_output=True, text=True)
    pids = [int(line) for line in children.stdout.split()]
    return pids[-1] if pids else None


def test_a_fine_tune_killed_mid_training_is_retried_to_completion(stack):
    # Slower training than the other tests, so that the kill lands while the encoder fine-tunes.
    params = {"model_mode": "finetune", "finetune_every": 8, "eval_fraction": 0.5, "epochs": 6, "max_length": 128, "batch_size": 4}
    bbc = BbcProject.create(stack, "e2e worker kill", 4, params)
    labeled = bbc.annotate(2)

    def training():
        running = backend_status(stack, bbc.id)["full_path"]["running"]
        return running and (running[0]["progress"] or {}).get("stage") == "train" and running[0]
    killed = wait_for(training, "the fine-tune to reach training", every_s=0.5)
    horse = newest_child(stack.worker.process.pid)
    assert horse is not None
    os.kill(horse, signal.SIGKILL)  # the work horse dies mid-training, as under the OOM killer

    def decided():
        status = backend_status(stack, bbc.id)
        decisions = status["full_path"]["decisions"]
        return decisions and decisions[0]["outcome"] in ("adopted", "rejected") and decisions[0]
    decision = wait_for(decided, "the retried fine-tune to finish", timeout_s=600)
    assert decision["job_id"] == killed["job_id"]  # RQ retried the killed job itself; nothing was lost
    assert decision["n_labels"] == len(labeled)
    # The fast path kept the project ranked throughout, on every label.
    outcome = wait_for(lambda: settled_outcome(stack, bbc.id), "the fast path to settle")
    assert outcome["status"] == "trained" and outcome["n_labeled"] == len(labeled)
    assert bbc.project()["model_version"] == outcome["model_version"]
