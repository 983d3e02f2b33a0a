"""The stopping signal for every task type: scaled uncertainty, and agreement on whole suggestions."""
import numpy as np
import pytest

from backend.jobs.publish import publish_version
from backend.learning.stopping_signal import (
    pool_uncertainty,
    stopping_signal,
    suggestion_keys,
)
from backend.store.model_store import ModelStore
from backend.store.pool_ranking import PoolRanking
from backend.store.version_meta import VersionMeta


def test_uncertainty_is_scaled_to_one_for_each_task_type():
    assert pool_uncertainty({"proba": np.array([[0.5, 0.5], [1.0, 0.0]])}) == pytest.approx([1.0, 0.0])
    assert pool_uncertainty({"label_proba": np.array([[0.5, 0.5, 0.5], [1.0, 0.0, 0.5]])}) == pytest.approx([1.0, 1 / 3])
    tokens = np.zeros((2, 3, 3))
    tokens[0, 1] = 1 / 3  # one real token, uniform over 3 tags; the others are special or padding
    tokens[1, 1:] = [1.0, 0.0, 0.0]
    assert pool_uncertainty({"token_proba": tokens, "token_mask": tokens.sum(-1) > 0}) == pytest.approx([1.0, 0.0])


def test_suggestions_compare_whole_and_span_scores_do_not_count():
    spans = PoolRanking.build([1, 2], [0, 1], [1, 0], None, spans=[((0, 4, 0, 0.9, "Anna"),), ()])
    rescored = PoolRanking.build([1, 2], [0, 1], [1, 0], None, spans=[((0, 4, 0, 0.2, "Anna"),), ()])
    assert suggestion_keys(spans) == suggestion_keys(rescored) == ["0-4-0", ""]
    sets = PoolRanking.build([1, 2], [0, 1], [1, 0], np.array([[0.9, 0.8], [0.1, 0.2]]), thresholds=np.full(2, 0.5))
    assert suggestion_keys(sets) == ["0;1", ""]


def test_a_multi_label_version_is_compared_with_the_previous_one_on_the_tasks_both_ranked(tmp_path):
    store = ModelStore(tmp_path)
    thresholds = np.full(2, 0.5)
    first = PoolRanking.build([1, 2, 3], [0, 0.3, 0.6], [3, 2, 1], np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.7]]), thresholds)
    signal = stopping_signal(None, first, pool_uncertainty({"label_proba": np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.7]])}))
    assert signal["history"][0]["kappa"] is None
    version = publish_version(store, 5, None, first, VersionMeta(
        project=5, trained=True, strategy="mean_binary_entropy", phase="strategy", phase_reason="", settings={},
        classes=["a", "b"], task_type="multi_label", stopping=signal,
    ))
    proba = np.array([[0.8, 0.1], [0.9, 0.1], [0.6, 0.6]])  # task 2 changed its set; task 4 is new
    second = PoolRanking.build([1, 2, 4], [0, 0.3, 0.6], [3, 2, 1], proba, thresholds)
    signal = stopping_signal(store.get(5, version), second, pool_uncertainty({"label_proba": proba}))
    latest = signal["history"][-1]
    assert len(signal["history"]) == 2 and latest["n_pool"] == 3
    assert latest["changed_fraction"] == pytest.approx(1 / 2)  # of tasks 1 and 2, both ranked twice
    assert set(signal["recommendation"]) >= {"stop", "reason"}
