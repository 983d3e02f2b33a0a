"""Stopping signal: per-version statistics and the stop/continue recommendation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from strategies.stopping import (
    Recommendation,
    RoundStatistics,
    StoppingCriterion,
    round_statistics,
)


def test_first_version_has_no_comparison():
    stats = round_statistics(np.array([[0.5, 0.5], [1.0, 0.0]]), None)
    assert stats.kappa is None and stats.changed_fraction is None and stats.n_pool == 2
    # entropy / log(C): 1 for the uniform row, 0 for the one-hot row.
    assert stats.mean_normalized_entropy == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(5))
def test_kappa_matches_sklearn_and_changed_fraction_counts_flips(seed):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(4), 300)
    current = proba.argmax(axis=1)
    previous = np.where(rng.random(300) < 0.2, rng.integers(0, 4, 300), current)
    stats = round_statistics(proba, previous)
    assert stats.kappa == pytest.approx(cohen_kappa_score(previous, current), abs=1e-12)
    assert stats.changed_fraction == pytest.approx(np.mean(previous != current))


def test_explicit_current_predictions_override_argmax():
    proba = np.array([[0.6, 0.4], [0.6, 0.4]])
    stats = round_statistics(proba, np.array([0, 1]), current_predictions=np.array([1, 1]))
    assert stats.changed_fraction == 0.5


def test_single_class_identical_predictions_have_kappa_one():
    proba = np.tile([[0.9, 0.1]], (10, 1))
    stats = round_statistics(proba, np.zeros(10, dtype=int))
    assert stats.kappa == 1.0 and stats.changed_fraction == 0.0


def test_misaligned_previous_predictions_are_rejected():
    with pytest.raises(ValueError, match="align"):
        round_statistics(np.full((3, 2), 0.5), np.zeros(4, dtype=int))


def test_round_statistics_round_trip_through_json():
    for stats in (RoundStatistics(0.25, None, None, 10), RoundStatistics(0.1, 0.97, 0.02, 500)):
        restored = RoundStatistics.from_dict(json.loads(json.dumps(stats.to_dict())))
        assert restored == stats


def history_of(kappas, changed=0.004, entropy=0.2):
    first = [RoundStatistics(0.5, None, None, 1000)]
    return first + [RoundStatistics(entropy, k, changed, 1000) for k in kappas]


def test_recommends_stopping_on_stable_history():
    advice = StoppingCriterion().recommend(history_of([0.9, 0.995, 0.996, 0.997]))
    assert advice.stop is True and advice.versions_needed == 0
    assert advice.mean_kappa == pytest.approx(0.996)
    assert "mean kappa 0.996 over the last 3 versions ≥ 0.99" in advice.reason
    assert "0.4% of pool predictions changed" in advice.reason
    assert "stopped paying" in advice.reason
    json.dumps(advice.to_dict())


def test_keeps_going_while_predictions_move():
    advice = StoppingCriterion().recommend(history_of([0.995, 0.97, 0.99]))
    assert advice.stop is False and "mean kappa 0.985" in advice.reason and "<" in advice.reason


def test_keeps_going_when_too_many_predictions_changed():
    advice = StoppingCriterion().recommend(history_of([0.995, 0.995, 0.995], changed=0.03))
    assert advice.stop is False and "3.0% of pool predictions changed (> 1.0%)" in advice.reason


def test_optional_uncertainty_ceiling():
    history = history_of([0.995, 0.995, 0.995], entropy=0.4)
    assert StoppingCriterion().recommend(history).stop is True
    advice = StoppingCriterion(max_uncertainty=0.3).recommend(history)
    assert advice.stop is False and "mean normalized entropy 0.400 > 0.3" in advice.reason


@pytest.mark.parametrize(
    "history, needed",
    [
        ([], 4),
        (history_of([]), 3),
        (history_of([0.999]), 2),
        (history_of([0.999, 0.999]), 1),
        # A version without a comparison (e.g. after the pool was rebuilt) restarts the count.
        (history_of([0.999, 0.999]) + [RoundStatistics(0.2, None, None, 900)], 3),
    ],
)
def test_short_history_says_how_many_more_versions_are_needed(history, needed):
    advice = StoppingCriterion().recommend(history)
    assert advice == Recommendation(
        stop=False,
        reason=advice.reason,
        mean_kappa=None,
        versions_needed=needed,
    )
    assert f"{needed} more model version" in advice.reason


def test_end_to_end_from_probabilities():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), 200)
    history, previous = [], None
    for _ in range(4):
        stats = round_statistics(proba, previous)
        history.append(stats)
        previous = proba.argmax(axis=1)
    advice = StoppingCriterion().recommend(history)
    assert advice.stop is True and advice.mean_kappa == 1.0
