"""NER projects in the worker: the <Labels> spec, the span tagger, its evaluation, ranking rows and predictions."""
import json

import numpy as np
import pytest

from backend.core.exceptions import UnsupportedLabelConfig
from backend.core.labels import label_counts, parse_label_config, training_targets
from backend.core.settings import ProjectSettings
from backend.learning.evaluation import cross_validated_tagger
from backend.learning.phases import choose_phase
from backend.learning.scoring import collect_outputs
from backend.models.families import head_classifier, load_classifier, save_classifier
from backend.store.pool_ranking import PoolRanking
from strategies import make_strategy

CONFIG = """<View>
  <Labels name="ner" toName="text"><Label value="PER"/><Label value="LOC"/></Labels>
  <Text name="text" value="$text"/>
</View>"""
NAMES, CITIES = ["Anna", "Marek", "Lucia", "Tomas"], ["Paris", "Vienna", "Lima", "Oslo"]


class Task:
    def __init__(self, id, text, label):
        self.id, self.text, self.label = id, text, label


def region(text, word, label):
    start = text.index(word)
    return {"from_name": "ner", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": start + len(word), "text": word, "labels": [label]}}


def labeled_tasks(spec, n=16):
    tasks = []
    for i in range(n):
        name, city = NAMES[i % 4], CITIES[(i // 4) % 4]
        text = f"{name} flew to {city} on day {i}"
        tasks.append(Task(i, text, spec.label_of([region(text, name, "PER"), region(text, city, "LOC")])))
    return tasks


def test_a_labels_config_is_an_ner_spec_and_other_controls_are_still_refused():
    spec = parse_label_config(CONFIG)
    assert spec.task_type == "ner" and spec.classes == ("PER", "LOC") and spec.value_field == "text"
    with pytest.raises(UnsupportedLabelConfig, match="exactly one <Choices> or <Labels>"):
        parse_label_config(CONFIG.replace("</View>", '<Choices name="c" toName="text"><Choice value="a"/><Choice value="b"/></Choices></View>'))


def test_span_labels_become_training_spans_and_unusable_regions_are_counted():
    spec = parse_label_config(CONFIG)
    text = "Anna met Bob in Oslo"
    bad = {**region(text, "Bob", "PER"), "value": {"start": 9, "end": 12, "text": "Rob", "labels": ["PER"]}}
    unknown = region(text, "Oslo", "ORG")
    task = Task(1, text, spec.label_of([region(text, "Anna", "PER"), bad, unknown, region(text, "Oslo", "LOC")]))
    empty = Task(2, "nothing here", spec.label_of([]))
    spans, counted, dropped = training_targets(spec, [task, empty])
    assert [(s.start, s.end, s.label) for s in spans[0]] == [(0, 4, "PER"), (16, 20, "LOC")] and spans[1] == []
    assert counted.tolist() == [2, 0] and dropped == {"text_mismatch": 1, "unknown_label": 1}
    assert label_counts(spec, spans) == {"PER": 1, "LOC": 1}
    # A tagger trains once min_labels labels hold a span; no second class is needed.
    assert choose_phase(ProjectSettings(min_labels=2), counted, "ner")[:2] == ("strategy", "mnlp")
    assert choose_phase(ProjectSettings(min_labels=2), np.array([0, 0]), "ner")[0] == "cold_start"


def test_the_tagger_learns_spans_ranks_with_token_strategies_and_round_trips(tmp_path):
    spec = parse_label_config(CONFIG)
    settings = ProjectSettings(model_mode="head", max_length=16)
    tasks = labeled_tasks(spec)
    texts = [t.text for t in tasks]
    spans, _, _ = training_targets(spec, tasks)
    tagger = head_classifier(spec, settings).fit(texts, spans)
    pool = ["Lucia flew to Lima on day 99", "Marek stayed home"]
    proba = tagger.predict_proba(pool)
    outputs = collect_outputs(tagger, make_strategy("mnlp"), pool, texts, spans, committee_size=2, seed=0, proba=proba)
    assert outputs.token_proba.shape[:2] == outputs.token_mask.shape and outputs.proba is None
    assert make_strategy("mnlp").query(outputs).shape == (2,)
    suggestions = tagger.suggestions(pool, proba)
    assert {(text, label) for _, _, label, _, text in suggestions[0]} == {("Lucia", 0), ("Lima", 1)}
    evaluation = cross_validated_tagger(tagger.tagger, texts, spans, seed=0)
    assert evaluation.f1_micro > 0.8 and evaluation.accuracy is None and "entity-level" in evaluation.note
    save_classifier(tagger, tmp_path)
    np.testing.assert_allclose(load_classifier(tmp_path, settings).predict_proba(pool), proba, atol=1e-6)

    ranking = PoolRanking.build([7, 8], [0.0, 0.5], [2.0, 1.0], proba, spans=suggestions)
    ranking.save(tmp_path)
    (score, suggestion, confidence) = PoolRanking.load(tmp_path).rows()[7]
    prediction = spec.prediction("v1", score, suggestion, confidence)
    assert {(r["value"]["text"], r["value"]["labels"][0]) for r in prediction["result"]} == {("Lucia", "PER"), ("Lima", "LOC")}
    for r in prediction["result"]:
        assert pool[0][r["value"]["start"]:r["value"]["end"]] == r["value"]["text"] and r["type"] == "labels"
    # What the tagger suggests reads back, as an annotation, to the same spans.
    assert json.loads(spec.label_of(prediction["result"]))[0]["text"] in {"Lucia", "Lima"}


def test_the_full_path_fine_tunes_a_token_classifier_whose_encoder_the_token_head_reads(tmp_path):
    from backend.learning.contest import judge, judging_split
    from backend.learning.evaluation import Evaluation
    from backend.models.finetuned_tagger import FineTunedTagger
    from backend.models.token_head import TokenHead

    spec = parse_label_config(CONFIG)
    settings = ProjectSettings(model_mode="finetune", max_length=16, epochs=1, batch_size=4, eval_fraction=0.35, min_labels=4)
    tasks = labeled_tasks(spec)
    texts = [t.text for t in tasks]
    spans, counted, _ = training_targets(spec, tasks)
    train, held = judging_split(counted, settings, "ner")
    assert len(held) == 6 and len(train) == 10
    with pytest.raises(Exception, match="and a span"):
        judging_split(np.zeros(8, dtype=np.int64), settings, "ner")
    from backend.models.encoder import resolve_model_path

    tuned = FineTunedTagger(spec.classes, settings, resolve_model_path(settings.model_name))
    tuned.fit([texts[i] for i in train], [spans[i] for i in train]).save_encoder(tmp_path)
    assert tuned.model.config.num_labels == 5  # O, B-PER, I-PER, B-LOC, I-LOC
    head = TokenHead(spec.classes, str(tmp_path), 16).fit([texts[i] for i in train], [spans[i] for i in train])
    assert all(s.label in spec.classes for found in head.predict_spans([texts[i] for i in held]) for s in found)

    def tagger_eval(f1_micro, f1_macro):
        return Evaluation(12, 4, None, 0.5, 0.5, f1_macro, f1_micro, note="held out")

    verdict, reason = judge(tagger_eval(0.9, 0.1), tagger_eval(0.8, 0.9), 16, 0)
    assert verdict == "adopted" and "entity micro-F1 0.900" in reason


def test_a_span_suggestion_is_accepted_only_when_the_annotator_gives_exactly_those_spans():
    from backend.learning.acceptance import span_acceptance

    spec = parse_label_config(CONFIG)
    a, b = "Anna flew to Oslo", "Marek stayed in Lima"
    ranking = PoolRanking.build([1, 2, 3], [0.0, 0.3, 0.6], [3.0, 2.0, 1.0], None,
                                spans=[((0, 4, 0, 0.9, "Anna"), (13, 17, 1, 0.8, "Oslo")), ((0, 5, 0, 0.7, "Marek"),), ()])
    labeled = [Task(1, a, spec.label_of([region(a, "Anna", "PER"), region(a, "Oslo", "LOC")])),
               Task(2, b, spec.label_of([region(b, "Marek", "PER"), region(b, "Lima", "LOC")])),
               Task(9, "elsewhere", spec.label_of([]))]
    acceptance = span_acceptance(ranking, labeled, spec)
    assert (acceptance["n"], acceptance["accepted"]) == (2, 1)
    assert acceptance["prequential"]["f1_micro"] == pytest.approx(2 * 3 / (3 + 4))  # 3 of 3 suggested right, 4 true
    assert span_acceptance(PoolRanking.build([1], [0.0], [1.0], None), labeled, spec) is None


def test_token_vectors_are_cached_on_disk_so_a_retrain_encodes_only_new_or_edited_texts(tmp_path):
    spec = parse_label_config(CONFIG)
    settings = ProjectSettings(model_mode="head", max_length=16)
    texts = ["Anna flew to Oslo", "Marek stayed in Lima", "Lucia met Tomas"]
    first = head_classifier(spec, settings)
    first.embed_through_cache(first.cache_for(tmp_path), [1, 2, 3], texts)
    assert first.token_cache_counts == (0, 3)
    computed = first.tagger.token_embeddings(texts)

    second = head_classifier(spec, settings)  # a new job: nothing in memory
    edited = [texts[0], "Marek stayed in Kyoto", texts[2], "Ines is new"]
    second.embed_through_cache(second.cache_for(tmp_path), [1, 2, 3, 4], edited)
    assert second.token_cache_counts == (2, 2)
    cached_offsets, cached_vectors = second.tagger.cache[texts[0]]
    np.testing.assert_array_equal(cached_offsets, computed[0][0])
    np.testing.assert_allclose(cached_vectors, computed[0][1], atol=2e-2, rtol=1e-2)  # stored as float16
