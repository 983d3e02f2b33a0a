"""The first hour of a project, as a new owner meets it: ranked before any label, then a dashboard and metrics.

Tasks are imported in class order (all business articles first), as a real export often is; the backend must
still make Label Studio serve a diverse set from the very first task.
"""
from __future__ import annotations

import json

import pytest
import requests
from headless_browser import headless_chromium, needs_chromium, severe_console_entries
from ls_project import BbcProject, backend_status, settled_outcome, wait_for
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e



def scrape(stack) -> dict[tuple[str, tuple], float]:
    response = requests.get(f"{stack.backend_url}/metrics", timeout=10)
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


@pytest.fixture(scope="module")
def first_hour(stack):
    """A project connected with default settings, then labeled through /next, ten tasks, as an annotator would."""
    bbc = BbcProject.create(stack, "first hour", 12, {"model_mode": "head"})
    ranked = wait_for(lambda: bbc.project()["model_version"].startswith("al-p") and bbc.project(), "the first ranking")
    # LS switches to the version before the retrain records its outcome (pruning comes after the switch).
    status_before_labels = wait_for(
        lambda: (status := backend_status(stack, bbc.id))["last_retrain"] and status, "the first ranking's outcome"
    )
    served_topics = []
    for _ in range(10):
        task = stack.ls.call("GET", f"/api/projects/{bbc.id}/next")
        served_topics.append(bbc.topic_of(task))
        stack.ls.annotate(task["id"], bbc.topic_of(task))
    final = wait_for(lambda: settled_outcome(stack, bbc.id), "the last retrain to settle")
    return bbc, ranked, status_before_labels, served_topics, final


def test_label_studio_serves_diverse_tasks_before_any_label(first_hour):
    bbc, ranked, status, served_topics, _ = first_hour
    # Connecting alone ranked the pool: LS's version is the backend's, not the title LS set on connect.
    assert ranked["model_version"].startswith(f"al-p{bbc.id}-") and ranked["model_version"] != "Active learning"
    assert ranked["sampling"] == "Uncertainty sampling"
    assert status["phase"] == "cold_start" and status["n_labeled"] == 0 and "min_labels" in status["phase_reason"]
    assert status["last_retrain"]["status"] == "ranked"
    assert len(set(served_topics[:10])) >= 3, f"the first 10 tasks served covered only {set(served_topics)}"


def test_the_owners_strategy_takes_over_once_a_model_can_train(first_hour, stack):
    bbc, _, _, _, final = first_hour
    status = backend_status(stack, bbc.id)
    assert final["status"] == "trained" and status["phase"] == "strategy" and status["strategy"] == "margin"
    assert final["embedding_cache"]["misses"] == 0  # every text was embedded by an earlier retrain
    assert status["n_labeled"] == 10


def test_metrics_after_retrains(first_hour, stack):
    samples = scrape(stack)
    assert samples[("al_retrains_total", (("outcome", "ranked"),))] >= 1
    assert samples[("al_retrains_total", (("outcome", "trained"),))] >= 1
    assert samples[("al_predictions_written_total", ())] >= first_hour[0].n_tasks - 10
    assert samples[("al_retrain_duration_seconds_count", (("stage", "total"),))] >= 2
    assert samples[("al_webhooks_total", (("action", "ANNOTATION_CREATED"), ("result", "queued")))] >= 1
    assert samples[("al_metrics_redis_up", ())] == 1
    # Head mode keeps every task's embedding: later retrains take the pool from the cache.
    assert samples[("al_embedding_cache_hits_total", ())] >= first_hour[0].n_tasks
    assert samples[("al_retrain_duration_seconds_count", (("stage", "embed"),))] >= 2
    assert not any("task" in dict(labels) or "project" in dict(labels) for _, labels in samples)


@needs_chromium
def test_the_dashboard_in_a_browser_has_one_point_per_version(first_hour, stack, tmp_path):
    bbc = first_hour[0]
    history = json.loads((stack.model_dir / f"project-{bbc.id}" / "history.json").read_text())
    assert [record["version"] for record in history][-1] == bbc.project()["model_version"]
    scored = [record["version"] for record in history if (record["evaluation"] or {}).get("accuracy") is not None]
    assert scored, "no version with held-out accuracy to plot"
    with headless_chromium(tmp_path / "profile") as driver:
        driver.get(f"{stack.backend_url}/dashboard?project={bbc.id}")
        assert driver.title == f"Project {bbc.id} · active learning"
        plotted = driver.execute_script(
            "return [...document.querySelectorAll('g.series[data-series=\"accuracy\"] circle.point')].map(c => c.dataset.version)"
        )
        assert plotted == scored  # one point per version that had a held-out score, in order
        assert severe_console_entries(driver) == []
