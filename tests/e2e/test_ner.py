"""NER projects (``<Labels>`` over ``<Text>``) through the whole loop, against the real Label Studio.

Short texts about people and places, written from word lists, some with an emoji before the entities (one
Python character, one Label Studio offset). Annotating some of them with PER and LOC spans must retrain the
token tagger, write span suggestions of the new version on every unlabeled task, let Label Studio serve the
lowest score next, and the suggestions must pass Label Studio's own validation as annotations.
"""
from __future__ import annotations

import itertools
import json

import pytest
import requests
from ls_project import all_tasks, backend_status, wait_for, wait_for_retrain_on

pytestmark = pytest.mark.e2e

CONFIG = """<View>
  <Labels name="ner" toName="text"><Label value="PER"/><Label value="LOC"/></Labels>
  <Text name="text" value="$text"/>
</View>"""
NAMES = ["Anna Novak", "Marek", "Lucia Berg", "Tomas", "Ines", "Karl Weber"]
PLACES = ["Paris", "Vienna", "Lima", "Oslo", "Cairo", "Kyoto"]
TEMPLATES = ["{name} flew to {place} last week", "🙂 {name} is moving to {place}", "In {place}, {name} opened a bakery",
             "{name} said the weather in {place} was mild"]


def rows() -> list[tuple[str, list[tuple[str, str]]]]:
    """(text, [(entity text, type)]) for every name, place and template, plus texts without entities."""
    out = []
    for (name, place), template in zip(itertools.product(NAMES, PLACES), itertools.cycle(TEMPLATES)):
        out.append((template.format(name=name, place=place), [(name, "PER"), (place, "LOC")]))
    out += [(f"Nothing happened on day {i}", []) for i in range(4)]
    return out


def regions(text: str, entities: list[tuple[str, str]]) -> list[dict]:
    found = []
    for entity, label in entities:
        start = text.index(entity)  # Label Studio's offsets count code points, as Python does
        found.append({"from_name": "ner", "to_name": "text", "type": "labels",
                      "value": {"start": start, "end": start + len(entity), "text": entity, "labels": [label]}})
    return found


def test_an_ner_project_is_annotated_retrained_ranked_and_its_span_suggestions_validate(stack):
    ls = stack.ls
    truth = dict(rows())
    project_id = ls.call("POST", "/api/projects", json={"title": "e2e ner", "label_config": CONFIG})["id"]
    ls.import_tasks(project_id, list(truth))
    ls.connect_backend(project_id, stack.backend_url, {"model_mode": "head", "max_length": 32})

    tasks = ls.call("GET", f"/api/tasks?project={project_id}&page_size=1000")["tasks"]
    to_label = [t for t in tasks if truth[t["data"]["text"]]][:10] + [t for t in tasks if not truth[t["data"]["text"]]][:2]
    for task in to_label:
        text = task["data"]["text"]
        ls.call("POST", f"/api/tasks/{task['id']}/annotations", json={"result": regions(text, truth[text])})
    labeled_ids = {t["id"] for t in to_label}

    status = wait_for_retrain_on(
        stack, project_id, len(labeled_ids), "an NER retrain that saw every label to become the project's version"
    )
    version = status["model_version"]
    meta = json.loads((stack.model_dir / f"project-{project_id}" / version / "meta.json").read_text())
    assert (meta["task_type"], meta["phase"], meta["strategy"]) == ("ner", "strategy", "mnlp")
    assert meta["dropped_spans"] == {}
    evaluation = status["evaluation"]
    assert "entity-level" in evaluation["note"] and 0.0 <= evaluation["f1_micro"] <= 1.0
    assert 0.0 <= evaluation["precision_micro"] <= 1.0 and 0.0 <= evaluation["recall_micro"] <= 1.0
    assert (status["task_type"], status["dropped_spans"]) == ("ner", {})

    unlabeled = [t for t in all_tasks(stack, project_id) if t["id"] not in labeled_ids]
    scores, suggestions = {}, {}
    for task in unlabeled:
        (prediction,) = [p for p in task["predictions"] if p["model_version"] == version]
        text = task["data"]["text"]
        for region in prediction["result"]:
            value = region["value"]
            assert region["from_name"] == "ner" and region["type"] == "labels" and value["labels"][0] in ("PER", "LOC")
            assert text[value["start"]:value["end"]] == value["text"]
        spans = sorted((r["value"]["start"], r["value"]["end"]) for r in prediction["result"])
        assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), "spans overlap"
        scores[task["id"]] = prediction["score"]
        suggestions[task["id"]] = prediction["result"]
    assert len(set(scores.values())) == len(scores), "rank-based scores must be distinct"
    found = {(r["value"]["text"], r["value"]["labels"][0]) for result in suggestions.values() for r in result}
    assert found & {(name, "PER") for name in NAMES} and found & {(place, "LOC") for place in PLACES}

    assert ls.call("GET", f"/api/projects/{project_id}")["sampling"] == "Uncertainty sampling"
    assert ls.call("GET", f"/api/projects/{project_id}/next")["id"] == min(scores, key=scores.get)

    response = requests.post(
        f"{stack.backend_url}/predict",
        json={"project": f"{project_id}.1700000000", "label_config": CONFIG,
              "tasks": [{"id": 10**9, "data": {"text": "🙂 Anna Novak flew to Oslo last week"}}]},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    ((fresh,),) = response.json()["results"]
    assert fresh["model_version"] == version
    assert all("🙂 Anna Novak flew to Oslo last week"[r["value"]["start"]:r["value"]["end"]] == r["value"]["text"]
               for r in fresh["result"])

    # Label Studio's own validation: span suggestions, submitted as annotations, are accepted and read back whole.
    def spans_of(result):
        return sorted((r["value"]["start"], r["value"]["end"], r["value"]["text"], r["value"]["labels"][0]) for r in result)

    for task_id, result in [item for item in suggestions.items() if item[1]][:5]:
        created = ls.call("POST", f"/api/tasks/{task_id}/annotations", json={"result": result})
        assert spans_of(ls.call("GET", f"/api/annotations/{created['id']}")["result"]) == spans_of(result)


def test_the_ner_full_path_fine_tunes_a_token_classifier_and_judges_it_on_held_out_spans(stack):
    ls = stack.ls
    truth = dict(rows())
    project_id = ls.call("POST", "/api/projects", json={"title": "e2e ner full path", "label_config": CONFIG})["id"]
    ls.import_tasks(project_id, list(truth))
    params = {"model_mode": "finetune", "finetune_every": 10, "eval_fraction": 0.5, "max_length": 32}
    ls.connect_backend(project_id, stack.backend_url, params)
    tasks = ls.call("GET", f"/api/tasks?project={project_id}&page_size=1000")["tasks"]
    to_label = [t for t in tasks if truth[t["data"]["text"]]][:12]
    for task in to_label:
        text = task["data"]["text"]
        ls.call("POST", f"/api/tasks/{task['id']}/annotations", json={"result": regions(text, truth[text])})

    def decided_and_settled():
        status = backend_status(stack, project_id)
        full = status["full_path"]
        idle = not (full["pending_job"] or full["running"] or status["queue"]["pending_job"] or status["queue"]["running"])
        decided = full["decisions"] and full["decisions"][0]["outcome"] in ("adopted", "rejected")
        return idle and decided and status["n_labeled"] == len(to_label) and status

    status = wait_for(decided_and_settled, "a token fine-tune decision and a settled fast path", timeout_s=600)
    decision = status["full_path"]["decisions"][0]
    assert decision["n_labels"] >= 10 and "entity micro-F1" in decision["reason"]
    for side in ("finetuned", "baseline"):
        assert decision[side]["n_eval"] >= 1 and 0.0 <= decision[side]["f1_micro"] <= 1.0
    if decision["outcome"] == "adopted":
        # The next fast retrain tags over the fine-tuned encoder.
        meta_version = status["model_version"]
        meta = json.loads((stack.model_dir / f"project-{project_id}" / meta_version / "meta.json").read_text())
        assert meta["encoder"] == decision["folder"]
