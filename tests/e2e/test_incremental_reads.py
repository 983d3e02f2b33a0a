"""Incremental reads against a real Label Studio: after every kind of change, the mirror equals a full read."""
from __future__ import annotations

import time

import pytest
import requests
from ls_project import BbcProject, backend_status, settled_outcome, wait_for

from backend.core.labels import parse_label_config
from backend.labelstudio.client import LabelStudioClient
from backend.labelstudio.task_mirror import TaskMirror
from backend.ops.demo import LabelStudioAPI

CLASSES = ["neg", "pos"]


@pytest.fixture
def project(label_studio):
    url, account = label_studio
    ls = LabelStudioAPI(url, account.token)
    project_id = ls.create_project("incremental reads", CLASSES)
    ls.import_tasks(project_id, [f"task number {i}" for i in range(8)])
    client = LabelStudioClient(url, account.token)
    yield ls, client, project_id
    ls.call("DELETE", f"/api/projects/{project_id}")


def tasks_of(ls: LabelStudioAPI, project_id: int) -> list[dict]:
    return ls.call("GET", "/api/tasks", params={"project": project_id, "page_size": 100})["tasks"]


def spec_of(client: LabelStudioClient, project_id: int):
    return parse_label_config(client.project(project_id)["label_config"])


def contents(mirror: TaskMirror):
    return mirror.labeled(), mirror.pool(), mirror.skipped("unreadable").task_ids


def assert_matches_full_read(mirror: TaskMirror, client: LabelStudioClient, project_id: int, tmp_path, expect_mode: str):
    """Refresh ``mirror`` and compare it with a mirror built by a full read right after."""
    spec = spec_of(client, project_id)
    report = mirror.refresh(client, project_id, spec)
    fresh = TaskMirror(tmp_path / f"fresh-{time.monotonic_ns()}", resync_after_s=3600)
    assert fresh.refresh(client, project_id, spec).mode == "full"
    assert report.mode == expect_mode, report
    assert contents(mirror) == contents(fresh)
    return report


def test_incremental_reads_match_a_full_read_after_every_kind_of_change(project, tmp_path):
    ls, client, project_id = project
    # No overlap window, so a refresh reads only the tasks changed since the last one began. LS's clock has
    # whole seconds: a second's pause keeps the import out of the first incremental read.
    mirror = TaskMirror(tmp_path / "mirror", resync_after_s=3600, overlap_s=0)
    time.sleep(1.1)
    assert_matches_full_read(mirror, client, project_id, tmp_path, "full")
    tasks = tasks_of(ls, project_id)

    # Annotations created: the tasks move from the pool to the labeled set.
    ls.annotate(tasks[0]["id"], "neg", from_name="topic", to_name="text")
    ls.annotate(tasks[1]["id"], "pos", from_name="topic", to_name="text")
    report = assert_matches_full_read(mirror, client, project_id, tmp_path, "incremental")
    assert {t.id: t.label for t in mirror.labeled()} == {tasks[0]["id"]: "neg", tasks[1]["id"]: "pos"}
    assert report.read == 2

    # An annotation edited: the label follows the edit.
    annotation = ls.call("GET", f"/api/tasks/{tasks[0]['id']}/annotations")[0]
    result = [{"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": ["pos"]}}]
    ls.call("PATCH", f"/api/annotations/{annotation['id']}", json={"result": result})
    assert_matches_full_read(mirror, client, project_id, tmp_path, "incremental")
    assert {t.id: t.label for t in mirror.labeled()}[tasks[0]["id"]] == "pos"

    # An annotation deleted: the task is back in the pool.
    ls.call("DELETE", f"/api/annotations/{annotation['id']}")
    assert_matches_full_read(mirror, client, project_id, tmp_path, "incremental")
    assert tasks[0]["id"] in {t.id for t in mirror.pool()}

    # Tasks created, and a task's text edited (one of them left without the config's field).
    ls.import_tasks(project_id, ["a brand new task", "another new one"])
    ls.call("PATCH", f"/api/tasks/{tasks[2]['id']}", json={"data": {"text": "an edited text"}})
    ls.call("PATCH", f"/api/tasks/{tasks[3]['id']}", json={"data": {"other": "no text field"}})
    assert_matches_full_read(mirror, client, project_id, tmp_path, "incremental")
    assert "an edited text" in {t.text for t in mirror.pool()}
    assert mirror.skipped("unreadable").task_ids == [tasks[3]["id"]]

    # A task deleted, with the webhook's hint: dropped without a full read.
    ls.call("DELETE", f"/api/tasks/{tasks[4]['id']}")
    report = mirror.refresh(client, project_id, spec_of(client, project_id), hinted_ids=[tasks[4]["id"]])
    assert (report.mode, report.dropped) == ("incremental", 1)
    assert_matches_full_read(mirror, client, project_id, tmp_path, "incremental")

    # A task deleted with no hint: the count check finds the drift and reads everything.
    ls.call("DELETE", f"/api/tasks/{tasks[5]['id']}")
    report = assert_matches_full_read(mirror, client, project_id, tmp_path, "full")
    assert "count" in report.why


def test_a_changed_label_config_reads_everything_and_a_due_resync_is_left_to_the_resync_job(project, tmp_path):
    ls, client, project_id = project
    mirror = TaskMirror(tmp_path / "mirror", resync_after_s=3600)
    spec = spec_of(client, project_id)
    assert mirror.refresh(client, project_id, spec).mode == "full"
    report = mirror.refresh(client, project_id, spec)
    assert report.mode == "incremental" and report.resync_due is None
    assert mirror.refresh(client, project_id, spec, force_full="asked").why == "asked"
    assert mirror.last_full_read()["why"] == "asked"

    extended = spec_of(client, project_id).__class__(spec.from_name, spec.to_name, spec.value_field, (*CLASSES, "mixed"))
    assert mirror.refresh(client, project_id, extended).why == "the label config changed"

    # A due periodic resync never runs inline (minutes at 100k tasks, under the project lock): it is reported.
    periodic = TaskMirror(tmp_path / "mirror", resync_after_s=0)
    report = periodic.refresh(client, project_id, extended)
    assert report.mode == "incremental" and report.resync_due.startswith("periodic resync")


def test_a_change_made_while_a_full_read_pages_is_read_again_next_time(project, tmp_path):
    """The watermark is LS's clock when the read began, not the newest ``updated_at`` the read happened to see:
    a label edited on a task already read, followed by an edit of a task read later, is not lost."""
    ls, client, project_id = project
    tasks = tasks_of(ls, project_id)
    ls.annotate(tasks[0]["id"], "neg", from_name="topic", to_name="text")
    annotation = ls.call("GET", f"/api/tasks/{tasks[0]['id']}/annotations")[0]
    spec = spec_of(client, project_id)
    mirror = TaskMirror(tmp_path / "mirror", resync_after_s=3600, overlap_s=0)
    records = client.all_tasks

    def paging_while_annotators_work(pid, spec_):
        for index, record in enumerate(records(pid, spec_)):
            yield record
            if index == 0:  # the labeled task was read (completed tasks come first); now it is relabeled...
                result = [{"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": ["pos"]}}]
                ls.call("PATCH", f"/api/annotations/{annotation['id']}", json={"result": result})
                time.sleep(1.1)
                # ...and then a task not read yet is edited, so the read sees a newer updated_at than the relabel.
                ls.call("PATCH", f"/api/tasks/{tasks[-1]['id']}", json={"data": {"text": "edited meanwhile"}})

    client.all_tasks = paging_while_annotators_work
    assert mirror.refresh(client, project_id, spec).mode == "full"
    client.all_tasks = records
    assert_matches_full_read(mirror, client, project_id, tmp_path, "incremental")
    assert {t.id: t.label for t in mirror.labeled()} == {tasks[0]["id"]: "pos"}


def test_train_resyncs_off_the_fast_path_and_the_mirror_keeps_serving(stack):
    bbc = BbcProject.create(stack, "resync", 3, {"model_mode": "head"})
    wait_for(lambda: settled_outcome(stack, bbc.id), "the connect-time ranking")
    before = backend_status(stack, bbc.id)["task_mirror"]["last_full_read"]
    assert before["why"] == "first read"
    response = requests.post(f"{stack.backend_url}/train", json={"project": bbc.id}, timeout=10)
    assert response.status_code == 201

    def resynced():
        status = backend_status(stack, bbc.id)
        last = status["task_mirror"]["last_full_read"]
        idle = not (status["task_mirror"]["resync"]["running"] or status["task_mirror"]["resync"]["pending_job"])
        return idle and last["at"] > before["at"] and last
    last = wait_for(resynced, "the resync job to swap in a fresh mirror")
    assert last["why"] == "resync asked for (train)"
    # The retrain /train queued read incrementally; the resync ran as its own job and queued one more.
    outcome = wait_for(lambda: settled_outcome(stack, bbc.id), "the retrains after the resync")
    assert outcome["status"] == "ranked" and outcome["read"]["mode"] == "incremental"
