"""Batch-aware strategies pick what their papers say they pick, and rank everything else sensibly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from strategies import ModelOutputs, make_strategy
from strategies.base import as_features
from strategies.cluster_margin import ClusterMargin
from strategies.uncertainty import margin


def top(scores: np.ndarray, k: int) -> list[int]:
    return np.argsort(-scores, kind="stable")[:k].tolist()


def textbook_k_center_greedy(pool, labeled, k):
    """Sener & Savarese (2018), Algorithm 1, written with plain loops in float64."""
    centres = [tuple(x) for x in labeled]
    picked = []
    for _ in range(k):

        def gap(i):
            return min(np.linalg.norm(pool[i] - np.array(c)) for c in centres)

        best = max((i for i in range(len(pool)) if i not in picked), key=gap)
        picked.append(best)
        centres.append(tuple(pool[best]))
    return picked


@pytest.mark.parametrize("seed", range(5))
def test_coreset_matches_textbook_k_center_greedy(seed):
    rng = np.random.default_rng(seed)
    pool, labeled = rng.normal(size=(60, 4)), rng.normal(size=(5, 4))
    scores = make_strategy("coreset", batch_size=8).query(
        ModelOutputs(embeddings=pool, labeled_embeddings=labeled)
    )
    assert top(scores, 8) == textbook_k_center_greedy(pool, labeled, 8)


def test_coreset_ranks_the_rest_by_distance_to_the_cover():
    rng = np.random.default_rng(0)
    pool, labeled = rng.normal(size=(40, 3)), rng.normal(size=(4, 3))
    scores = make_strategy("coreset", batch_size=5).query(
        ModelOutputs(embeddings=pool, labeled_embeddings=labeled)
    )
    batch = top(scores, 5)
    centres = np.vstack([labeled, pool[batch]])
    rest = [i for i in np.argsort(-scores) if i not in batch]
    gaps = [np.linalg.norm(centres - pool[i], axis=1).min() for i in rest]
    assert gaps == sorted(gaps, reverse=True)


def test_coreset_cold_start_begins_at_the_most_central_item():
    pool = np.array([[-3.0, 0.0], [0.1, 0.0], [2.0, 0.0], [5.0, 5.0]])
    scores = make_strategy("coreset", batch_size=2).query(
        ModelOutputs(embeddings=pool, labeled_embeddings=np.empty((0, 2)))
    )
    mean = pool.mean(axis=0)
    assert top(scores, 1) == [int(np.argmin(np.linalg.norm(pool - mean, axis=1)))]


def test_coreset_cold_start_breaks_ties_by_value_not_position():
    pool = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])  # all equally central
    firsts = set()
    for perm in itertools.permutations(range(4)):
        scores = make_strategy("coreset", batch_size=1).query(
            ModelOutputs(embeddings=pool[list(perm)], labeled_embeddings=np.empty((0, 2)))
        )
        firsts.add(tuple(pool[list(perm)][top(scores, 1)[0]]))
    assert len(firsts) == 1


def blobs(rng, centres, sizes, spread=0.05):
    return np.vstack([c + spread * rng.normal(size=(n, len(c))) for c, n in zip(centres, sizes)])


def test_cold_start_takes_one_representative_per_cluster_biggest_first():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    sizes = [5, 20, 10]
    pool = blobs(rng, centres, sizes)
    scores = make_strategy("cold_start", batch_size=3, random_state=0).query(ModelOutputs(embeddings=pool))
    batch = top(scores, 3)
    owner = [int(np.argmin(np.linalg.norm(centres - pool[i], axis=1))) for i in batch]
    assert owner == [1, 2, 0]
    for i, blob in zip(batch, owner):
        members = np.flatnonzero(np.linalg.norm(centres[blob] - pool, axis=1) < 1)
        centroid = pool[members].mean(axis=0)
        assert i == members[np.argmin(np.linalg.norm(pool[members] - centroid, axis=1))]


def test_cold_start_clusters_float32_embeddings_as_they_are_and_picks_the_same_representatives():
    # The worker's embeddings are float32; a float64 copy of a 100k-task pool would cost 300 MB per copy.
    rng = np.random.default_rng(1)
    pool = blobs(rng, np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]), [5, 20, 10])
    strategy = make_strategy("cold_start", batch_size=3, random_state=0)
    as_float32 = strategy.query(ModelOutputs(embeddings=pool.astype(np.float32)))
    assert top(as_float32, 3) == top(strategy.query(ModelOutputs(embeddings=pool)), 3)
    labeled = pool[:2].astype(np.float32)
    assert len(strategy.query(ModelOutputs(embeddings=pool.astype(np.float32), labeled_embeddings=labeled))) == len(pool)


def test_features_keep_their_float_type_and_anything_else_becomes_float64():
    assert as_features(np.zeros((2, 3), np.float32), 2, "x").dtype == np.float32
    assert as_features(np.zeros((2, 3), np.float64), 2, "x").dtype == np.float64
    assert as_features(np.zeros((2, 3), np.int64), 2, "x").dtype == np.float64
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        as_features(np.zeros(3, np.float32), 2, "x")


def test_cold_start_moves_away_from_regions_that_already_hold_labels():
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    pool = blobs(rng, centres, [30, 10, 10, 10])
    strategy = make_strategy("cold_start", batch_size=2, random_state=0)

    def owners(scores):
        return sorted(int(np.argmin(np.linalg.norm(centres - pool[i], axis=1))) for i in top(scores, 2))

    assert 0 in owners(strategy.query(ModelOutputs(embeddings=pool)))  # the biggest region leads without labels
    # Labels in the biggest region and one more: the batch now asks about the two regions no label covers.
    labeled = blobs(rng, centres[[0, 1]], [3, 1])
    assert owners(strategy.query(ModelOutputs(embeddings=pool, labeled_embeddings=labeled))) == [2, 3]
    # An empty labeled set is the same as none.
    empty = ModelOutputs(embeddings=pool, labeled_embeddings=np.empty((0, 2)))
    assert np.array_equal(strategy.query(empty), strategy.query(ModelOutputs(embeddings=pool)))


def test_cluster_margin_batch_comes_from_the_uncertain_candidates_and_spreads_across_clusters():
    rng = np.random.default_rng(2)
    n_pool = 200
    proba = rng.dirichlet(np.ones(3), n_pool)
    centres = rng.normal(scale=10, size=(4, 5))
    embeddings = centres[np.arange(n_pool) % 4] + 0.01 * rng.normal(size=(n_pool, 5))
    strategy = ClusterMargin(candidate_factor=5, n_clusters=4, batch_size=4, random_state=0)
    scores = strategy.query(ModelOutputs(proba=proba, embeddings=embeddings))
    batch = top(scores, 4)
    candidates = set(np.argsort(-margin(proba))[:20].tolist())
    assert set(batch) <= candidates
    # Each candidate lies in one of the 4 blobs; a batch of 4 takes one from each.
    assert len({i % 4 for i in batch}) == len({i % 4 for i in candidates}) == 4
    rest = [i for i in np.argsort(-scores, kind="stable") if i not in batch]
    rest_margins = margin(proba)[rest]
    assert np.all(np.diff(rest_margins) <= 0)


def test_cluster_margin_visits_smallest_cluster_first():
    # Uncertain items: one lone outlier and a tight group of five; the outlier's cluster is smaller.
    embeddings = np.vstack(
        [[[50.0, 50.0]], 0.01 * np.arange(10).reshape(5, 2), 100 + np.arange(20).reshape(10, 2)]
    )
    proba = np.vstack([np.full((6, 2), 0.5), np.tile([[0.99, 0.01]], (10, 1))])
    strategy = ClusterMargin(candidate_factor=3, n_clusters=2, batch_size=2, random_state=0)
    scores = strategy.query(ModelOutputs(proba=proba, embeddings=embeddings))
    batch = top(scores, 2)
    assert batch[0] == 0 and 1 <= batch[1] <= 5
