"""Scores agree with independent reference implementations within 1e-6.

References: scikit-activeml (``skactiveml.pool.uncertainty_scores``,
``skactiveml.pool._query_by_committee.vote_entropy`` / ``average_kl_divergence``) and baal
(``baal.active.heuristics.BALD``). Each reference test is skipped, with the reason shown, when its library
is not installed; the float64 textbook tests at the bottom always run.
"""

from __future__ import annotations

import numpy as np
import pytest

from strategies.bald import mutual_information
from strategies.committee import average_kl_divergence, vote_entropy
from strategies.uncertainty import entropy, least_confidence, margin

TOL = 1e-6
# (n_pool, n_classes) and (n_members, n_pool, n_classes) shapes, including 2 and 7 classes.
PROBA_SHAPES = [(3, 2), (50, 2), (40, 3), (30, 7), (25, 10)]
COMMITTEE_SHAPES = [(2, 30, 2), (5, 40, 2), (3, 20, 7), (10, 25, 7), (7, 15, 4)]


def random_proba(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Dirichlet rows, some sharpened towards one-hot, plus exact zeros to exercise 0 log 0."""
    proba = rng.dirichlet(np.full(shape[-1], 0.5), size=shape[:-1])
    proba[..., :3, :] = proba[..., :3, :] ** 8
    proba[..., 0, :] = 0.0
    proba[..., 0, -1] = 1.0
    proba[..., 1, 0] = 0.0
    return proba / proba.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("shape", PROBA_SHAPES)
@pytest.mark.parametrize(
    "ours, method, offset",
    [
        # skactiveml's scores: 1 - max p, 1 - (p1 - p2), -sum p log p (nats). Ours equal them except
        # margin, which is skactiveml's value minus the constant 1 (same ranking).
        (least_confidence, "least_confident", 0.0),
        (margin, "margin_sampling", -1.0),
        (entropy, "entropy", 0.0),
    ],
)
def test_uncertainty_matches_skactiveml_uncertainty_scores(shape, ours, method, offset):
    pool = pytest.importorskip("skactiveml.pool")
    proba = random_proba(np.random.default_rng(sum(shape)), shape)
    expected = pool.uncertainty_scores(proba.copy(), method=method) + offset
    np.testing.assert_allclose(ours(proba), expected, rtol=0, atol=TOL)


@pytest.mark.parametrize("shape", COMMITTEE_SHAPES)
def test_vote_entropy_matches_skactiveml_vote_entropy(shape):
    qbc = pytest.importorskip("skactiveml.pool._query_by_committee")
    committee = random_proba(np.random.default_rng(sum(shape)), shape)
    # skactiveml takes hard votes, shape (n_pool, n_members), plus the list of classes.
    votes = np.argmax(committee, axis=-1).T
    expected = qbc.vote_entropy(votes, classes=np.arange(shape[-1]))
    np.testing.assert_allclose(vote_entropy(committee), expected, rtol=0, atol=TOL)


@pytest.mark.parametrize("shape", COMMITTEE_SHAPES)
def test_average_kl_matches_skactiveml_average_kl_divergence(shape):
    qbc = pytest.importorskip("skactiveml.pool._query_by_committee")
    committee = random_proba(np.random.default_rng(sum(shape)), shape)
    # skactiveml clips probabilities to eps before taking logs; a tiny eps makes that clipping negligible
    # (the exact zeros here would otherwise shift its scores by about eps * log(eps)).
    expected = qbc.average_kl_divergence(committee.copy(), eps=1e-12)
    np.testing.assert_allclose(average_kl_divergence(committee), expected, rtol=0, atol=TOL)


@pytest.mark.parametrize("shape", COMMITTEE_SHAPES)
def test_bald_matches_baal_bald_heuristic(shape):
    heuristics = pytest.importorskip("baal.active.heuristics")
    committee = random_proba(np.random.default_rng(sum(shape)), shape)
    # baal's layout is [n_samples, n_classes, n_iterations].
    expected = heuristics.BALD().get_uncertainties(committee.transpose(1, 2, 0).copy())
    np.testing.assert_allclose(mutual_information(committee), expected, rtol=0, atol=TOL)


# Float64 textbook implementations: plain loops over items, independent of numpy vectorisation tricks.


def textbook_entropy(p):
    return -sum(x * np.log(x) for x in p if x > 0)


@pytest.mark.parametrize("shape", PROBA_SHAPES)
def test_uncertainty_matches_float64_textbook(shape):
    proba = random_proba(np.random.default_rng(sum(shape)), shape)
    for row, lc, mg, h in zip(proba, least_confidence(proba), margin(proba), entropy(proba)):
        first, second = sorted(row, reverse=True)[:2]
        assert lc == pytest.approx(1 - first, abs=TOL)
        assert mg == pytest.approx(-(first - second), abs=TOL)
        assert h == pytest.approx(textbook_entropy(row), abs=TOL)


@pytest.mark.parametrize("shape", COMMITTEE_SHAPES)
def test_committee_scores_match_float64_textbook(shape):
    committee = random_proba(np.random.default_rng(sum(shape)), shape)
    n_members, n_pool, n_classes = shape
    for i in range(n_pool):
        members = committee[:, i, :]
        consensus = members.mean(axis=0)
        votes = [int(np.argmax(m)) for m in members]
        shares = [votes.count(c) / n_members for c in range(n_classes)]
        kl = np.mean([sum(p * np.log(p / q) for p, q in zip(m, consensus) if p > 0) for m in members])
        bald = textbook_entropy(consensus) - np.mean([textbook_entropy(m) for m in members])
        assert vote_entropy(committee)[i] == pytest.approx(textbook_entropy(shares), abs=TOL)
        assert average_kl_divergence(committee)[i] == pytest.approx(kl, abs=TOL)
        assert mutual_information(committee)[i] == pytest.approx(max(bald, 0.0), abs=TOL)


def test_average_kl_equals_bald_mutual_information():
    """Mean KL to the consensus is the committee's mutual information: qbc_kl and bald rank alike."""
    committee = random_proba(np.random.default_rng(3), (6, 100, 5))
    np.testing.assert_allclose(average_kl_divergence(committee), mutual_information(committee), atol=1e-12)
