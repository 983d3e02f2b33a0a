"""Multi-label projects (``<Choices choice="multiple">``) through the whole loop, against the real Label Studio.

The data: BBC News articles whose config lists four of the five topics. A single article's label set is its
topic, or nothing for a "tech" article ("none of these"); a digest of two articles of different topics
carries both. Annotating some of them must retrain a one-vs-rest head, write a label-set suggestion of the
new version on every unlabeled task, let Label Studio serve the lowest score next, and the suggestions must
pass Label Studio's own validation when imported as annotations.
"""
from __future__ import annotations

import itertools
import json

import pytest
import requests
from ls_project import all_tasks, wait_for_retrain_on

from backend.ops.demo import bbc_news

pytestmark = pytest.mark.e2e

LABELS = ["business", "entertainment", "politics", "sports"]  # "tech" is left out: its articles take no label
CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="topics" toName="text" choice="multiple">
{choices}
  </Choices>
</View>""".format(choices="\n".join(f'    <Choice value="{name}"/>' for name in LABELS))


def multi_label_rows(per_class: int) -> list[tuple[str, list[str]]]:
    """Single articles with their topic (none for tech) and two-topic digests, as (text, label set)."""
    by_topic: dict[str, list[str]] = {}
    for text, topic in bbc_news(per_class + 2):
        by_topic.setdefault(topic, []).append(text)
    rows = [(text, [topic] if topic in LABELS else []) for topic in sorted(by_topic) for text in by_topic[topic][:per_class]]
    for first, second in itertools.combinations(LABELS, 2):
        a, b = by_topic[first][per_class], by_topic[second][per_class + 1]
        rows.append((f"{a}\n\n{b}", [first, second]))
    return rows


def choices_result(labels: list[str]) -> list[dict]:
    if not labels:
        return []
    return [{"from_name": "topics", "to_name": "text", "type": "choices", "value": {"choices": labels}}]


def test_a_multi_label_project_is_annotated_retrained_ranked_and_its_suggestions_validate(stack):
    ls = stack.ls
    rows = multi_label_rows(per_class=5)
    truth = {text: labels for text, labels in rows}
    project_id = ls.call("POST", "/api/projects", json={"title": "e2e multi-label", "label_config": CONFIG})["id"]
    ls.import_tasks(project_id, [text for text, _ in rows])
    ls.connect_backend(project_id, stack.backend_url, {"model_mode": "head"})

    # Two of each single-label kind (tech: the empty set) and two digests.
    tasks = ls.call("GET", f"/api/tasks?project={project_id}&page_size=1000")["tasks"]
    def label_set(task):
        return truth[task["data"]["text"]]

    to_label = [t for kind in [[name] for name in LABELS] + [[]] for t in [t for t in tasks if label_set(t) == kind][:2]]
    to_label += [t for t in tasks if len(label_set(t)) == 2][:2]
    assert len(to_label) == 12
    for task in to_label:
        ls.call("POST", f"/api/tasks/{task['id']}/annotations", json={"result": choices_result(truth[task["data"]["text"]])})
    labeled_ids = {t["id"] for t in to_label}

    status = wait_for_retrain_on(
        stack, project_id, len(labeled_ids), "a multi-label retrain that saw every label to become the project's version"
    )
    version = status["model_version"]
    meta = json.loads((stack.model_dir / f"project-{project_id}" / version / "meta.json").read_text())
    # "margin", the default setting, reads single-label probabilities: the multi-label default ranks instead.
    assert (meta["task_type"], meta["phase"], meta["strategy"]) == ("multi_label", "strategy", "mean_binary_entropy")
    assert "the setting 'margin' ranks only single_label tasks" in meta["phase_reason"]
    evaluation = status["evaluation"]
    assert evaluation["n_eval"] == len(labeled_ids) and "cross-validation" in evaluation["note"]
    assert 0.0 <= evaluation["accuracy"] <= 1.0 and 0.0 <= evaluation["f1_micro"] <= 1.0
    history = requests.get(f"{stack.backend_url}/versions", params={"project": project_id}, timeout=10).json()
    assert history["versions"][0] == version

    unlabeled = [t for t in all_tasks(stack, project_id) if t["id"] not in labeled_ids]
    scores, suggestions = {}, {}
    for task in unlabeled:
        (prediction,) = [p for p in task["predictions"] if p["model_version"] == version]
        assert 0.0 <= prediction["score"] < 1.0
        scores[task["id"]] = prediction["score"]
        chosen = [c for region in prediction["result"] for c in region["value"]["choices"]]
        assert all(r["from_name"] == "topics" and r["type"] == "choices" for r in prediction["result"])
        assert set(chosen) <= set(LABELS) and len(chosen) == len(set(chosen))
        suggestions[task["id"]] = prediction["result"]
    assert len(set(scores.values())) == len(scores), "rank-based scores must be distinct"
    assert any(suggestions.values()), "no task got a suggested label"

    assert ls.call("GET", f"/api/projects/{project_id}")["sampling"] == "Uncertainty sampling"
    served = ls.call("GET", f"/api/projects/{project_id}/next")
    assert served["id"] == min(scores, key=scores.get)

    # /predict suggests a label set for a task the version never ranked.
    response = requests.post(
        f"{stack.backend_url}/predict",
        json={"project": f"{project_id}.1700000000", "label_config": CONFIG,
              "tasks": [{"id": 10**9, "data": {"text": "The striker scored twice as the minister watched the cup final."}}]},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    ((fresh,),) = response.json()["results"]
    assert fresh["model_version"] == version
    assert all(set(r["value"]["choices"]) <= set(LABELS) for r in fresh["result"])

    # Label Studio's own validation: the suggestions, submitted as annotations, are accepted and read back whole.
    for task_id, result in list(suggestions.items())[:5]:
        created = ls.call("POST", f"/api/tasks/{task_id}/annotations", json={"result": result})
        stored = ls.call("GET", f"/api/annotations/{created['id']}")["result"]
        assert [(r["from_name"], r["value"]["choices"]) for r in stored] == [(r["from_name"], r["value"]["choices"]) for r in result]
