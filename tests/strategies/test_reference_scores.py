"""Scores agree with independent reference implementations within 1e-6.

References: scikit-activeml (``skactiveml.pool.uncertainty_scores``,
``skactiveml.pool._query_by_committee.vote_entropy`` / ``average_kl_divergence``), baal
(``baal.active.heuristics.BALD``) and small-text (``small_text.query_strategies.LabelCardinalityInconsistency``,
2.0.0.dev1 and later: the stable 1.4.1 does not have it). Each reference test is skipped, with the reason
shown, when its library (or that part of it) is not installed; the float64 textbook tests at the bottom
always run.
"""

from __future__ import annotations

import numpy as np
import pytest

from strategies.bald import mutual_information
from strategies.committee import average_kl_divergence, vote_entropy
from strategies.multi_label import label_cardinality_inconsistency
from strategies.uncertainty import entropy, least_confidence, margin

TOL = 1e-6
# (n_pool, n_classes) and (n_members, n_pool, n_classes) shapes, including 2 and 7 classes.
PROBA_SHAPES = [(3, 2), (50, 2), (40, 3), (30, 7), (25, 10)]
COMMITTEE_SHAPES = [(2, 30, 2), (5, 40, 2), (3, 20, 7), (10, 25, 7), (7, 15, 4)]
# (n_pool, n_labels, n_labeled) for multi-label outputs, including one label and a single labeled task.
MULTI_LABEL_SHAPES = [(20, 1, 3), (40, 3, 1), (30, 5, 8), (50, 10, 20), (25, 20, 6)]


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


def random_multi_label(rng: np.random.Generator, shape: tuple[int, int, int]):
    """Sigmoid-like label probabilities, some exactly 0, 1/2 or 1, plus 0/1 label sets of the labeled tasks."""
    n_pool, n_labels, n_labeled = shape
    label_proba = rng.random((n_pool, n_labels)) ** rng.choice([0.3, 1.0, 3.0], (n_pool, 1))
    label_proba[0], label_proba[1], label_proba[2, 0] = 0.5, 1.0, 0.0
    targets = (rng.random((n_labeled, n_labels)) < rng.uniform(0.1, 0.6)).astype(np.int64)
    return label_proba, targets


@pytest.mark.parametrize("shape", MULTI_LABEL_SHAPES)
def test_label_cardinality_inconsistency_matches_small_text(shape):
    multi_label = pytest.importorskip("small_text.query_strategies.multi_label")
    if not hasattr(multi_label, "LabelCardinalityInconsistency"):
        pytest.skip("the installed small-text has no LabelCardinalityInconsistency (added in 2.0.0.dev1)")
    from scipy.sparse import csr_matrix

    label_proba, targets = random_multi_label(np.random.default_rng(sum(shape)), shape)

    class FixedClassifier:  # small-text scores what its classifier's predict_proba returns
        def predict_proba(self, rows):
            return label_proba[rows]

    n_pool = shape[0]
    expected = multi_label.LabelCardinalityInconsistency().score(
        FixedClassifier(), np.arange(n_pool), np.arange(n_pool), np.array([], dtype=int), csr_matrix(targets)
    )
    np.testing.assert_allclose(label_cardinality_inconsistency(label_proba, targets), expected, rtol=0, atol=TOL)


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


@pytest.mark.parametrize("shape", MULTI_LABEL_SHAPES)
def test_label_cardinality_inconsistency_matches_float64_textbook(shape):
    label_proba, targets = random_multi_label(np.random.default_rng(sum(shape)), shape)
    average = sum(sum(1 for y in row if y) for row in targets) / len(targets)
    scores = label_cardinality_inconsistency(label_proba, targets)
    for row, score in zip(label_proba, scores):
        assert score == pytest.approx(abs(sum(1 for p in row if p > 0.5) - average), abs=TOL)
