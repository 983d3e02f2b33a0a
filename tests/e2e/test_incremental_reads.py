"""Incremental reads against a real Label Studio: after every kind of change, the mirror equals a full read."""
from __future__ import annotations

import time

import pytest

from backend.demo import LabelStudioAPI
from backend.labels import parse_label_config
from backend.ls_client import LabelStudioClient
from backend.task_mirror import TaskMirror

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
    # No overlap window, so a refresh reads only the tasks changed since the last one.
    mirror = TaskMirror(tmp_path / "mirror", resync_after_s=3600, overlap_s=0)
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


def test_a_changed_label_config_a_resync_request_and_the_resync_period_read_everything(project, tmp_path):
    ls, client, project_id = project
    mirror = TaskMirror(tmp_path / "mirror", resync_after_s=3600)
    spec = spec_of(client, project_id)
    assert mirror.refresh(client, project_id, spec).mode == "full"
    assert mirror.refresh(client, project_id, spec).mode == "incremental"
    assert mirror.refresh(client, project_id, spec, force_full="asked").why == "asked"

    extended = spec_of(client, project_id).__class__(spec.from_name, spec.to_name, spec.value_field, (*CLASSES, "mixed"))
    assert mirror.refresh(client, project_id, extended).why == "the label config changed"

    periodic = TaskMirror(tmp_path / "mirror", resync_after_s=0)
    assert periodic.refresh(client, project_id, extended).why.startswith("periodic resync")
