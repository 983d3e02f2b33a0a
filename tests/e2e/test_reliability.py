"""Faults produced for real against Label Studio 1.23, Redis, gunicorn and RQ workers, and what must survive them.

Each test records what it measured through the ``reliability`` fixture; ``bench/reliability.py`` runs this
file and writes RELIABILITY.md from those records.
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import threading
import time

import pytest
import requests
from ls_project import BbcProject, backend_status, settled_outcome, wait_for

from backend.ops.processes import free_port
from backend.ops.stack import start_redis

pytestmark = pytest.mark.e2e

HEAD = {"model_mode": "head", "strategy": "margin"}


def trained_on(stack, project: BbcProject, n_labeled: int, timeout_s: float = 300) -> dict:
    """The status once a version that saw ``n_labeled`` labels is the one Label Studio uses."""
    def done():
        status = backend_status(stack, project.id)
        return status["n_labeled"] == n_labeled and project.project()["model_version"] == status["model_version"] and status
    return wait_for(done, f"a version trained on {n_labeled} labels to be active", timeout_s=timeout_s, every_s=1)


def ours(versions: dict[str, int]) -> dict[str, int]:
    return {version: count for version, count in versions.items() if version.startswith("al-p")}


def test_owner_predictions_survive_retrains_and_prunes(stack, reliability):
    bbc = BbcProject.create(stack, "reliability: owner predictions", 6, HEAD)
    kept = bbc.import_owner_predictions("gpt-labels", 20)
    for _ in range(3):
        bbc.annotate(1)  # one more label per class, then wait for that retrain
        trained_on(stack, bbc, bbc.n_labeled())
    status = wait_for(lambda: settled_outcome(stack, bbc.id), "the last retrain to settle")
    versions = bbc.versions_with_predictions()
    assert versions["gpt-labels"] == len(kept)
    assert list(ours(versions)) == [status["model_version"]]  # this backend's older versions are pruned
    reliability.update(
        fault="an owner's own prediction version next to 3 retrains and prunes",
        owner_predictions_before=len(kept), owner_predictions_after=versions["gpt-labels"],
        backend_versions_left=len(ours(versions)), retrains=3,
    )


class Listener:
    """A TCP port that records every connection: proof that nothing was sent to a host named in a request."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()


def test_forged_webhooks_and_setups_change_nothing_in_label_studio(stack, reliability):
    bbc = BbcProject.create(stack, "reliability: never connected", 4, None, connect=False)
    bbc.annotate(2)
    before = bbc.project()
    schema = before["label_config"]
    attacker = Listener()

    no_secret = requests.post(f"{stack.backend_root}/webhook", json={"action": "START_TRAINING", "project": bbc.id}, timeout=10)
    never_connected = requests.post(f"{stack.backend_url}/webhook", json={"action": "START_TRAINING", "project": bbc.id}, timeout=10)
    # With a leaked secret, a forged /setup records the project, and the webhook is queued; the worker then
    # asks Label Studio, which has no connection of this project to the backend.
    forged_setup = requests.post(
        f"{stack.backend_url}/setup",
        json={"project": f"{bbc.id}.1", "schema": schema, "hostname": f"http://127.0.0.1:{attacker.port}", "access_token": "x" * 40},
        timeout=10,
    )
    forged_webhook = requests.post(f"{stack.backend_url}/webhook", json={"action": "START_TRAINING", "project": bbc.id}, timeout=10)
    assert (no_secret.status_code, never_connected.status_code, forged_setup.status_code, forged_webhook.status_code) == (404, 404, 200, 201)
    outcome = wait_for(lambda: settled_outcome(stack, bbc.id), "the forged retrain to be refused")
    assert outcome["status"] == "refused" and "no ML backend connected" in outcome["reason"]

    after = bbc.project()
    for field in ("model_version", "sampling", "label_config"):
        assert after[field] == before[field], field
    assert bbc.versions_with_predictions() == {}
    assert attacker.connections == 0  # the environment's key never went to the host the forged /setup named
    reliability.update(
        fault="forged webhooks and a forged /setup for a project that never connected",
        responses={"no secret": 404, "never connected": 404, "forged setup": 200, "forged webhook": 201},
        worker_outcome=outcome["status"], ls_project_changed=False, predictions_written=0,
        connections_to_forged_host=attacker.connections,
    )


def test_settings_come_back_after_redis_restarts_empty(make_stack, label_studio, run_dir, reliability):
    port = free_port()
    redis_service, redis_url = start_redis(port, run_dir / f"logs-redis-{port}")
    try:
        stack = make_stack(label_studio, redis_url=redis_url)
        chosen = {"strategy": "entropy", "model_mode": "head"}
        bbc = BbcProject.create(stack, "reliability: redis loss", 4, chosen)
        first = len(bbc.annotate(1))
        trained_on(stack, bbc, first)
        wait_for(lambda: settled_outcome(stack, bbc.id), "the retrain to settle")  # nothing in flight at the kill

        redis_service.process.send_signal(signal.SIGKILL)  # no save, no goodbye: the data is gone
        redis_service.process.wait()
        restarted_at = time.monotonic()
        redis_service, _ = start_redis(port, run_dir / f"logs-redis-{port}")
        assert stack.redis.keys("al:*") == []  # every key of the backend's is gone (RQ re-registers its workers)

        labeled = first + len(bbc.annotate(1))
        status = trained_on(stack, bbc, labeled)
        recovered_s = time.monotonic() - restarted_at
        meta = (stack.model_dir / f"project-{bbc.id}" / status["model_version"] / "meta.json").read_text()
        assert '"strategy": "entropy"' in meta and '"model_mode": "head"' in meta
        assert {k: status["settings"][k] for k in chosen} == chosen
        reliability.update(
            fault="Redis killed (SIGKILL) and restarted empty between two labels",
            settings_before=chosen, settings_after={k: status["settings"][k] for k in chosen},
            annotations_seen_by_final_model=status["n_labeled"], annotations_given=labeled,
            seconds_from_restart_to_new_version=round(recovered_s, 1),
        )
    finally:
        redis_service.stop()


def test_a_new_worker_finishes_the_next_retrain_within_60_s_after_kill_9(make_stack, label_studio, reliability):
    stack = make_stack(label_studio, AL_MAX_LENGTH="128")
    bbc = BbcProject.create(stack, "reliability: worker kill", 40, HEAD)
    labeled = len(bbc.annotate(1))

    def mid_retrain():
        running = backend_status(stack, bbc.id)["queue"]["running"]
        return running and (running[0]["progress"] or {}).get("stage") in ("embed", "predict") and running[0]
    wait_for(mid_retrain, "the retrain to be mid-way", every_s=0.2)
    os.killpg(stack.worker.process.pid, signal.SIGKILL)  # the worker and its work horse, at once
    stack.worker.process.wait()

    started = time.monotonic()
    stack.add_worker()
    labeled += len(bbc.annotate(1))
    status = trained_on(stack, bbc, labeled, timeout_s=180)
    took_s = time.monotonic() - started
    assert took_s <= 60, f"the next retrain took {took_s:.0f} s after a new worker started"
    project_dir = stack.model_dir / f"project-{bbc.id}"
    assert not list(project_dir.glob(".staging-*"))
    versions = ours(bbc.versions_with_predictions())
    assert versions[status["model_version"]] == min(500, status["n_pool"])  # the active version is whole
    reliability.update(
        fault="kill -9 of the whole worker (and its work horse) mid-retrain; a new worker started",
        seconds_from_new_worker_to_new_version=round(took_s, 1), limit_seconds=60,
        annotations_seen_by_final_model=status["n_labeled"], annotations_given=labeled,
        staging_leftovers=0, active_version_predictions=versions[status["model_version"]],
    )


def test_a_task_without_the_text_field_is_skipped_not_fatal(stack, reliability):
    bbc = BbcProject.create(stack, "reliability: a broken task", 4, HEAD)
    broken = bbc.tasks()[-1]
    # The field the config reads disappears from one task (edited through the API after import).
    stack.ls.call("PATCH", f"/api/tasks/{broken['id']}", json={"data": {"body": broken["data"]["text"]}})
    labeled = len(bbc.annotate(1))
    status = trained_on(stack, bbc, labeled)
    assert status["skipped_tasks"]["count"] == 1 and status["skipped_tasks"]["task_ids"] == [broken["id"]]
    assert status["n_pool"] == bbc.n_tasks - labeled - 1
    outcome = wait_for(lambda: settled_outcome(stack, bbc.id), "the retrain's outcome")
    assert outcome["status"] == "trained" and outcome["skipped_tasks"]["count"] == 1
    reliability.update(
        fault="a task without the config's text field",
        skipped=status["skipped_tasks"], retrain_outcome=outcome["status"], pool_ranked=status["n_pool"],
    )


class Annotator(threading.Thread):
    """Submits a label every ``every_s`` seconds, alternating projects, and records every failure."""

    def __init__(self, projects: list[BbcProject], count: int, every_s: float):
        super().__init__(daemon=True)
        unlabeled = [random.Random(project.id).sample([t for t in project.tasks() if not t["is_labeled"]], count) for project in projects]
        self.queue = [(project, task) for tasks in zip(*unlabeled) for project, task in zip(projects, tasks)][:count]
        self.every_s = every_s
        self.posted = 0
        self.failures: list[str] = []

    def run(self):
        for project, task in self.queue:
            started = time.monotonic()
            try:
                project.stack.ls.annotate(task["id"], project.topic_of(task))
                self.posted += 1
            except RuntimeError as error:
                self.failures.append(str(error)[:300])
            time.sleep(max(0.0, self.every_s - (time.monotonic() - started)))


def active_version_gaps(stack, projects: list[BbcProject], stop: threading.Event, gaps: list, peak: dict) -> None:
    """While labels arrive, the version each project uses in LS must always hold all of its predictions."""
    while not stop.is_set():
        for project in projects:
            active = project.project()["model_version"]
            versions = project.versions_with_predictions()
            peak["backend_versions"] = max(peak.get("backend_versions", 0), len(ours(versions)))
            peak["predictions"] = max(peak.get("predictions", 0), sum(versions.values()))
            meta_path = stack.model_dir / f"project-{project.id}" / active / "meta.json"
            if active.startswith("al-p") and meta_path.exists():
                meta = json.loads(meta_path.read_text())
                expected = min(meta["settings"]["top_k"], meta["n_pool"])
                if versions.get(active, 0) != expected:
                    gaps.append((project.id, active, versions.get(active, 0), expected))
        time.sleep(0.3)


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_annotators_never_fail_during_write_back_and_prune_with_two_workers(database, make_stack, request, reliability):
    label_studio = request.getfixturevalue("label_studio" if database == "postgresql" else "label_studio_sqlite")
    stack = make_stack(label_studio, workers=2)
    projects = [BbcProject.create(stack, f"reliability: {database} {n}", 60, {**HEAD, "top_k": 250}) for n in (1, 2)]
    for project in projects:
        project.import_owner_predictions("owner-model", 30)
        project.annotate(1)
    annotator = Annotator(projects, count=40, every_s=1.0)
    stop, gaps, peak = threading.Event(), [], {}
    checker = threading.Thread(target=active_version_gaps, args=(stack, projects, stop, gaps, peak), daemon=True)
    checker.start()
    annotator.start()
    annotator.join(timeout=300)
    finals = [trained_on(stack, project, project.n_labeled(), timeout_s=300) for project in projects]
    stop.set()
    checker.join()

    assert annotator.failures == [] and annotator.posted == 40
    assert gaps == [], f"a project's active version was missing predictions: {gaps[:5]}"
    for project in projects:
        wait_for(lambda: settled_outcome(stack, project.id), "the last retrain to settle")
        # A follow-up retrain may have replaced the version that first saw every label: check the active one.
        status, versions = backend_status(stack, project.id), project.versions_with_predictions()
        assert versions["owner-model"] == 30 and list(ours(versions)) == [status["model_version"]]
        assert status["n_labeled"] == project.n_labeled()
    reliability.update(
        fault=f"labels every second on 2 projects while 2 workers retrain, write back and prune (LS on {database})",
        annotations_posted=annotator.posted, annotation_failures=len(annotator.failures),
        incomplete_active_versions_seen=len(gaps),
        annotations_seen_by_final_models=[final["n_labeled"] for final in finals],
        owner_predictions_kept=[project.versions_with_predictions()["owner-model"] for project in projects],
        peak_backend_versions_in_ls_per_project=peak.get("backend_versions"), peak_predictions_per_project=peak.get("predictions"),
    )
