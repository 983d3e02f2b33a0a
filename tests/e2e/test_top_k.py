"""Top-K write-back against a real Label Studio: a version writes only its K most informative tasks, and LS's
/next still serves the lowest score of the current version, label after label."""
from __future__ import annotations

import pytest
from ls_project import (
    BbcProject,
    all_tasks,
    backend_status,
    versions_with_predictions,
    wait_for,
)

pytestmark = pytest.mark.e2e

TOP_K = 10


def current_scores(stack, project_id: int, version: str) -> dict[int, float]:
    return {
        task["id"]: prediction["score"]
        for task in all_tasks(stack, project_id)
        for prediction in task["predictions"]
        if prediction["model_version"] == version
    }


def test_top_k_write_back_keeps_next_on_the_lowest_score_of_the_current_version(stack):
    bbc = BbcProject.create(stack, "e2e top-k", 6, {"model_mode": "head", "strategy": "margin", "top_k": TOP_K})
    labeled = bbc.annotate(1)
    most_stored = 0
    for round_ in range(2):
        def settled_on_every_label():
            status = backend_status(stack, bbc.id)
            return status["n_labeled"] == len(labeled) and bbc.project()["model_version"] == status["model_version"] and status

        status = wait_for(settled_on_every_label, f"round {round_}: a version that saw every label")
        version = status["model_version"]
        scores = current_scores(stack, bbc.id, version)
        assert len(scores) == TOP_K and not set(scores) & {t["id"] for t in labeled}
        most_stored = max(most_stored, sum(versions_with_predictions(stack, bbc.id).values()))

        served = stack.ls.call("GET", f"/api/projects/{bbc.id}/next")
        assert served["id"] == min(scores, key=scores.get), f"round {round_}: /next did not serve the lowest score"
        stack.ls.annotate(served["id"], bbc.topic_of(served))
        labeled.append(served)
    # The backend's stored predictions stay within the pool plus 2 K; once no retrain waits, only the active
    # version's K remain (a retrain that finds a label waiting defers the deletion, LS's slowest write).
    assert most_stored <= bbc.n_tasks + 2 * TOP_K
    wait_for(
        lambda: versions_with_predictions(stack, bbc.id) == {bbc.project()["model_version"]: TOP_K},
        "older versions pruned once no retrain waits", timeout_s=180,
    )
