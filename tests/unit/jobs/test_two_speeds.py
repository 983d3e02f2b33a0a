"""The fast and full paths' rules: when a fine-tune is queued, when it is adopted, and what the registry keeps."""
from __future__ import annotations

import time

import numpy as np
import pytest
from rq import Queue

from backend.core.exceptions import Skip
from backend.core.labels import TextClassificationSpec
from backend.core.settings import ProjectSettings
from backend.jobs.queueing import FINETUNE, enqueue_finetune_if_due, pending_key
from backend.learning.acceptance import suggestion_acceptance
from backend.learning.contest import MIN_JUDGED, judge, judging_split
from backend.learning.evaluation import Evaluation
from backend.store.encoder_registry import (
    KEEP_DECISIONS,
    KEEP_ENCODERS,
    Decision,
    EncoderRegistry,
)
from backend.store.pool_ranking import PoolRanking


def evaluation(accuracy: float, f1: float) -> Evaluation:
    return Evaluation(8, 4, accuracy, f1, f1, f1, note="held out")


def test_a_fine_tune_is_adopted_only_when_not_worse_and_not_trained_on_fewer_labels():
    assert judge(evaluation(0.9, 0.9), evaluation(0.8, 0.8), 40, 20)[0] == "adopted"
    assert judge(evaluation(0.8, 0.8), evaluation(0.8, 0.8), 40, 20)[0] == "adopted"  # a tie: it saw the labels end to end
    verdict, reason = judge(evaluation(0.7, 0.9), evaluation(0.8, 0.1), 40, 20)
    assert verdict == "rejected" and "0.700" in reason and "0.800" in reason
    assert judge(evaluation(1.0, 1.0), evaluation(0.5, 0.5), 30, 40)[0] == "stale"


def test_a_fine_tune_is_judged_only_on_enough_held_out_labels():
    settings = ProjectSettings(eval_fraction=0.2, min_labels=4)
    labels = np.array([0, 1] * 10)  # 20 labels: 0.2 holds out 4, one short of the minimum
    with pytest.raises(Skip, match=f"holds out 4; .* at least {MIN_JUDGED} held-out labels"):
        judging_split(labels, settings)

    train, held = judging_split(np.array([0, 1] * 13), settings)  # 26 labels: 6 held out
    assert len(held) >= MIN_JUDGED and len(train) + len(held) == 26 and not set(train) & set(held)

    with pytest.raises(Skip, match="too few to fine-tune"):
        judging_split(np.array([0, 0, 0, 0, 0]), settings)  # one class only


def decision(outcome: str, n_labels: int, at: float) -> Decision:
    return Decision(outcome, n_labels, {"accuracy": 0.9}, {"accuracy": 0.8}, "why", at)


def test_the_registry_adopts_into_a_folder_discards_the_rest_and_keeps_the_newest_encoders(tmp_path):
    registry = EncoderRegistry(tmp_path)
    assert registry.newest() is None and registry.path_of(registry.newest()) is None  # the base model
    staged = registry.staging_folder()
    (staged / "config.json").write_text("{}")
    rejected = registry.record(decision("rejected", 10, time.time()), staged)
    assert rejected.folder is None and not staged.exists() and registry.newest() is None

    adopted = []
    for n in range(KEEP_ENCODERS + 2):
        staged = registry.staging_folder()
        (staged / "config.json").write_text("{}")
        adopted.append(registry.record(decision("adopted", 20 + n, 1000.0 + n), staged))
        assert registry.path_of(registry.newest()) == str(registry.folder / adopted[-1].folder)
    on_disk = sorted(p.name for p in registry.folder.iterdir())
    assert on_disk == sorted(d.folder for d in adopted[-KEEP_ENCODERS:])
    assert [d.outcome for d in registry.decisions()] == ["rejected"] + ["adopted"] * len(adopted)


def test_a_run_of_rejections_never_pushes_the_encoder_in_use_out_of_the_registry(tmp_path):
    registry = EncoderRegistry(tmp_path)
    staged = registry.staging_folder()
    (staged / "config.json").write_text("{}")
    in_use = registry.record(decision("adopted", 20, 1000.0), staged)
    for n in range(KEEP_DECISIONS + 10):
        registry.record(decision("rejected", 21 + n, 1001.0 + n), None)
    assert registry.newest() == in_use and (registry.folder / in_use.folder).is_dir()
    assert len(registry.decisions()) == KEEP_DECISIONS + 1  # the 50 newest, and the adoption in use


def test_the_full_path_is_queued_every_n_labels_and_at_once_when_asked(redis, service_settings):
    queue = Queue(service_settings.finetune_queue, connection=redis)
    assert enqueue_finetune_if_due(redis, service_settings, 5, n_labels=9, every=10) is None
    first = enqueue_finetune_if_due(redis, service_settings, 5, n_labels=10, every=10)
    assert first is not None and queue.job_ids == [first.job_id]
    assert enqueue_finetune_if_due(redis, service_settings, 5, n_labels=15, every=10) is None
    redis.delete(pending_key(5, FINETUNE))  # the first one started
    second = enqueue_finetune_if_due(redis, service_settings, 5, n_labels=20, every=10)
    assert second is not None and not second.coalesced
    asked = enqueue_finetune_if_due(redis, service_settings, 5, n_labels=21, every=10, reason="START_TRAINING")
    assert asked is not None and asked.coalesced  # the second is still waiting: no third job


def test_suggestion_acceptance_is_a_prequential_evaluation_of_the_version():
    ranking = PoolRanking.build(
        [1, 2, 3, 4, 5], np.linspace(0, 1, 5), np.zeros(5), np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6], [0.5, 0.5]])
    )
    suggested = ranking.predicted.tolist()
    labels = {1: "a", 2: "b", 3: "b", 9: "a"}  # task 9 was not in the version's pool
    acceptance = suggestion_acceptance(ranking, labels.items(), TextClassificationSpec("c", "t", "text", ("a", "b")))
    answers = [["a", "b"].index(labels[t]) for t in (1, 2, 3)]
    accepted = sum(int(s == a) for s, a in zip(suggested[:3], answers))
    assert (acceptance["n"], acceptance["accepted"]) == (3, accepted)
    assert acceptance["prequential"]["accuracy"] == pytest.approx(accepted / 3)
    assert set(acceptance["prequential"]) == {"accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_micro"}


def test_a_multi_label_suggestion_is_accepted_only_when_the_whole_set_is():
    spec = TextClassificationSpec("c", "t", "text", ("a", "b", "c"), multiple=True)
    proba = np.array([[0.9, 0.1, 0.8], [0.2, 0.7, 0.1], [0.6, 0.6, 0.1]])
    ranking = PoolRanking.build([1, 2, 3], np.linspace(0, 1, 3), np.zeros(3), proba, thresholds=np.full(3, 0.5))
    assert ranking.suggestions() == [(0, 2), (1,), (0, 1)]
    assert ranking.confidence[1] == pytest.approx(0.8 * 0.7 * 0.9)  # the probability of exactly {b}
    labels = {1: '["a", "c"]', 2: '["b", "c"]', 3: '["a", "b"]'}
    acceptance = suggestion_acceptance(ranking, labels.items(), spec)
    assert (acceptance["n"], acceptance["accepted"]) == (3, 2)
    assert acceptance["prequential"]["accuracy"] == pytest.approx(2 / 3)  # subset accuracy
    assert acceptance["prequential"]["f1_micro"] == pytest.approx(2 * 5 / (6 + 5))  # 5 of 5 predicted right, 6 true
