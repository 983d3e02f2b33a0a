"""The two strategies measured as label-efficiency levers (issue 11): their maths against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from strategies import ModelOutputs, make_strategy
from strategies.class_balanced import balanced_picks
from strategies.information_density import InformationDensity, mean_similarity
from strategies.uncertainty import margin


def brute_force_mean_similarity(embeddings: np.ndarray) -> np.ndarray:
    """Settles & Craven's density, pair by pair: (1/U) sum_u (1 + cos(x, x_u)) / 2."""
    n = len(embeddings)
    result = np.zeros(n)
    for i in range(n):
        for j in range(n):
            a, b = embeddings[i], embeddings[j]
            norms = np.linalg.norm(a) * np.linalg.norm(b)
            cosine = float(a @ b / norms) if norms > 0 else 0.0
            result[i] += (1.0 + cosine) / 2.0 / n
    return result


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_similarity_equals_the_pairwise_mean(seed):
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(25, 6)).astype(np.float32)
    embeddings[3] = 0.0  # no direction: its cosine to everything counts as 0
    np.testing.assert_allclose(mean_similarity(embeddings), brute_force_mean_similarity(embeddings.astype(np.float64)),
                               rtol=0, atol=1e-6)


def test_information_density_is_shifted_margin_times_density():
    rng = np.random.default_rng(4)
    proba, embeddings = rng.dirichlet(np.ones(3), 20), rng.normal(size=(20, 5))
    outputs = ModelOutputs(proba=proba, embeddings=embeddings)
    expected = (1.0 + margin(proba)) * brute_force_mean_similarity(embeddings) ** 2.0
    np.testing.assert_allclose(InformationDensity(beta=2.0).query(outputs), expected, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(InformationDensity(beta=2.0).query(outputs), InformationDensity(beta=2.0).query(outputs))
    # beta = 0 is plain margin sampling, shifted by a constant
    np.testing.assert_allclose(InformationDensity(beta=0.0).query(outputs), 1.0 + margin(proba), atol=1e-12)


def test_information_density_prefers_the_uncertain_item_in_a_dense_region_over_an_equally_uncertain_outlier():
    cluster = np.array([[1.0, 0.0]] * 8 + [[0.9, 0.1]])
    outlier = np.array([[-1.0, 0.05]])
    embeddings = np.vstack([cluster, outlier])
    proba = np.tile([0.9, 0.1], (10, 1))
    proba[8] = proba[9] = [0.5, 0.5]  # items 8 (dense) and 9 (outlier) are equally, and most, uncertain
    scores = make_strategy("information_density").query(ModelOutputs(proba=proba, embeddings=embeddings))
    assert np.argmax(scores) == 8 and scores[8] > scores[9]
    assert make_strategy("margin").query(ModelOutputs(proba=proba))[8] == make_strategy("margin").query(ModelOutputs(proba=proba))[9]


def test_negative_beta_is_refused():
    with pytest.raises(ValueError, match="beta"):
        InformationDensity(beta=-1.0)


def test_balanced_picks_take_each_predicted_class_in_turn_rarest_first():
    predicted = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2])
    uncertainty = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.1, 0.2, 0.05])
    # class 2 (1 item) first, then class 1 (2 items), then class 0; each gives its most uncertain item left
    assert balanced_picks(predicted, uncertainty, 5) == [8, 7, 0, 6, 1]
    assert balanced_picks(predicted, uncertainty, 20) == [8, 7, 0, 6, 1, 2, 3, 4, 5]


def test_balanced_margin_gives_a_rare_predicted_class_its_share_where_margin_would_not():
    rng = np.random.default_rng(0)
    majority = rng.dirichlet([5, 5, 1], 90)  # uncertain between classes 0 and 1
    rare = np.tile([0.05, 0.05, 0.9], (10, 1)) + rng.uniform(0, 0.01, (10, 3))  # confidently class 2
    proba = np.vstack([majority, rare / rare.sum(1, keepdims=True)])
    outputs = ModelOutputs(proba=proba)
    batch_size = 9
    balanced = np.argsort(-make_strategy("balanced_margin", batch_size=batch_size).query(outputs), kind="stable")[:batch_size]
    plain = np.argsort(-make_strategy("margin").query(outputs), kind="stable")[:batch_size]
    predicted = proba.argmax(1)
    assert set(predicted[plain]) <= {0, 1}
    counts = np.bincount(predicted[balanced], minlength=3)
    assert counts.tolist() == [3, 3, 3]
    # within its share, each class gives its smallest margins
    for label in range(3):
        members = np.flatnonzero(predicted == label)
        best = members[np.argsort(margin(proba[members]))[::-1][:3]]
        assert set(balanced[predicted[balanced] == label]) == set(best)
