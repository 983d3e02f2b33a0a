"""Multi-label strategies: hand-computed values, the threshold's edge, and the errors people will read."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strategies import (
    MULTI_LABEL,
    MissingOutputsError,
    ModelOutputs,
    make_strategy,
    strategies_for,
)
from strategies.multi_label import (
    LabelCardinalityInconsistency,
    label_cardinality_inconsistency,
)

LABEL_PROBA = np.array(
    [
        [0.5, 0.5],  # both labels a coin flip; 0.5 is not above the threshold, so 0 labels predicted
        [0.0, 1.0],  # certain: exactly one label
        [0.9, 0.1],
        [0.2, 0.6],
        [0.7, 0.8],  # two labels predicted
    ]
)
# Label sets of the labeled tasks: sizes 1, 2, 0, 2, average cardinality 5/4.
LABELED_TARGETS = np.array([[1, 0], [1, 1], [0, 0], [1, 1]])


def h(p: float) -> float:
    return -sum(x * math.log(x) for x in (p, 1 - p) if x > 0)


def test_mean_binary_entropy_hand_computed():
    scores = make_strategy("mean_binary_entropy").query(ModelOutputs(label_proba=LABEL_PROBA))
    expected = [math.log(2), 0.0, h(0.9), (h(0.2) + h(0.6)) / 2, (h(0.7) + h(0.8)) / 2]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-12)
    # h(0.9) = -(0.9 log 0.9 + 0.1 log 0.1), written out once.
    assert scores[2] == pytest.approx(0.3250829733914482, abs=1e-12)
    assert scores.dtype == np.float64


def test_label_cardinality_inconsistency_hand_computed():
    outputs = ModelOutputs(label_proba=LABEL_PROBA, labeled_targets=LABELED_TARGETS)
    scores = make_strategy("label_cardinality_inconsistency").query(outputs)
    # Predicted counts 0, 1, 1, 1, 2 against the average 1.25.
    np.testing.assert_allclose(scores, [1.25, 0.25, 0.25, 0.25, 0.75], rtol=0, atol=1e-12)
    assert scores.dtype == np.float64


def test_label_cardinality_threshold_is_strict_and_adjustable():
    at_threshold = np.array([[0.5, 0.5, 0.5]])
    targets = np.array([[1, 1, 1]])
    # small-text counts a label only when its probability exceeds the threshold.
    assert label_cardinality_inconsistency(at_threshold, targets)[0] == 3.0
    assert label_cardinality_inconsistency(at_threshold, targets, prediction_threshold=0.4)[0] == 0.0
    strategy = LabelCardinalityInconsistency(prediction_threshold=0.4)
    assert strategy.query(ModelOutputs(label_proba=at_threshold, labeled_targets=targets))[0] == 0.0
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="prediction_threshold must be in"):
            LabelCardinalityInconsistency(prediction_threshold=bad)


def test_label_cardinality_reads_any_positive_target_as_a_label():
    as_bool = label_cardinality_inconsistency(LABEL_PROBA, LABELED_TARGETS.astype(bool))
    as_float = label_cardinality_inconsistency(LABEL_PROBA, LABELED_TARGETS * 1.0)
    np.testing.assert_array_equal(as_bool, as_float)


def test_label_cardinality_needs_a_labeled_task_and_matching_labels():
    with pytest.raises(ValueError, match="at least 1 labeled task, got 0"):
        label_cardinality_inconsistency(LABEL_PROBA, np.empty((0, 2)))
    with pytest.raises(ValueError, match="label_proba has 2 labels but labeled_targets has 3"):
        label_cardinality_inconsistency(LABEL_PROBA, np.ones((4, 3)))


def test_mean_binary_entropy_is_zero_without_labels_and_never_warns():
    with np.errstate(all="raise"):
        scores = make_strategy("mean_binary_entropy").query(ModelOutputs(label_proba=np.empty((3, 0))))
        np.testing.assert_array_equal(scores, 0.0)
        edges = make_strategy("mean_binary_entropy").query(ModelOutputs(label_proba=np.array([[0.0, 1.0, 1.0]])))
    assert edges[0] == 0.0 and not np.signbit(edges[0])


def test_missing_labeled_targets_is_named():
    with pytest.raises(MissingOutputsError, match="labeled_targets"):
        make_strategy("label_cardinality_inconsistency").query(ModelOutputs(label_proba=LABEL_PROBA))


def test_multi_label_strategies_are_registered_for_multi_label_only():
    for name in ("mean_binary_entropy", "label_cardinality_inconsistency"):
        assert name in strategies_for(MULTI_LABEL)
        assert make_strategy(name).task_types == frozenset({MULTI_LABEL})
