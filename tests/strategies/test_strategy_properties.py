"""Hypothesis property tests: what must hold for any pool, not just the examples we thought of."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import (
    MULTI_LABEL,
    NER,
    SINGLE_LABEL,
    STRATEGIES,
    ModelOutputs,
    make_strategy,
)
from strategies.bald import mutual_information
from strategies.base import ranks_to_informativeness
from strategies.multi_label import (
    binary_entropy,
    label_cardinality_inconsistency,
    mean_binary_entropy,
)
from strategies.uncertainty import entropy, least_confidence, margin

FAST = settings(max_examples=50, deadline=None)
# k-means fits dominate the run time; fewer examples keep the suite fast on two cores.
BATCH = settings(max_examples=25, deadline=None)
POINTWISE = sorted(name for name, cls in STRATEGIES.items() if not cls.batch_aware and name != "random")
BATCH_AWARE = sorted(name for name, cls in STRATEGIES.items() if cls.batch_aware)
#: The axis along which each field lists the pool; fields about the labeled set are absent.
POOL_AXIS = {"proba": 0, "embeddings": 0, "committee_proba": 1, "label_proba": 0, "token_proba": 0, "token_mask": 0}


@st.composite
def pools(draw, name, min_pool=2, max_pool=40):
    """Model outputs for a random pool of one of the task types strategy ``name`` ranks (drawn, so a
    strategy for every type meets each without running its examples three times): continuous values,
    so ties have probability zero. Every pool carries embeddings."""
    task_type = draw(st.sampled_from(sorted(STRATEGIES[name].task_types)))
    n_pool = draw(st.integers(min_pool, max_pool))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    fields = {"embeddings": rng.normal(size=(n_pool, draw(st.integers(1, 5))))}
    if task_type == SINGLE_LABEL:
        n_classes = draw(st.integers(2, 7))
        fields["proba"] = rng.dirichlet(np.ones(n_classes), n_pool)
        fields["committee_proba"] = rng.dirichlet(np.ones(n_classes), (draw(st.integers(2, 6)), n_pool))
    elif task_type == MULTI_LABEL:
        # Uniform probabilities, some pushed to the confident ends, as sigmoid heads give.
        fields["label_proba"] = rng.random((n_pool, draw(st.integers(1, 7)))) ** rng.choice([0.2, 1.0, 5.0])
    else:
        assert task_type == NER, task_type
        max_tokens, n_tags = draw(st.integers(0, 12)), draw(st.integers(1, 9))
        mask = np.arange(max_tokens) < rng.integers(0, max_tokens + 1, n_pool)[:, None]
        fields["token_proba"] = np.where(mask[..., None], rng.dirichlet(np.ones(n_tags), (n_pool, max_tokens)), 0.0)
        fields["token_mask"] = mask
    return ModelOutputs(**fields), rng


def pool_size(outputs: ModelOutputs) -> int:
    return len(outputs.embeddings)


def with_labeled(outputs: ModelOutputs, rng: np.random.Generator, n_labeled: int) -> ModelOutputs:
    dim = outputs.embeddings.shape[1]
    labeled = {"labeled_embeddings": rng.normal(size=(n_labeled, dim)), "labeled_losses": rng.random(n_labeled)}
    if outputs.label_proba is not None:
        labeled["labeled_targets"] = (rng.random((n_labeled, outputs.label_proba.shape[1])) < 0.4).astype(np.int64)
    return replace(outputs, **labeled)


def permuted(outputs: ModelOutputs, perm: np.ndarray) -> ModelOutputs:
    """The same pool listed in another order; the labeled set is not part of the pool."""
    return replace(
        outputs,
        **{
            name: np.take(getattr(outputs, name), perm, axis=axis)
            for name, axis in POOL_AXIS.items()
            if getattr(outputs, name) is not None
        },
    )


def top(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-scores, kind="stable")[:k]


@pytest.mark.parametrize("name", POINTWISE)
@FAST
@given(data=st.data(), n_labeled=st.integers(2, 6), seed=st.integers(0, 2**32 - 1))
def test_pointwise_scores_follow_pool_permutation(name, data, n_labeled, seed):
    outputs, rng = data.draw(pools(name))
    outputs = with_labeled(outputs, rng, n_labeled)
    perm = np.random.default_rng(seed).permutation(pool_size(outputs))
    strategy = make_strategy(name)
    np.testing.assert_allclose(
        strategy.query(permuted(outputs, perm)), strategy.query(outputs)[perm], atol=1e-12
    )


@pytest.mark.parametrize("name", BATCH_AWARE)
@BATCH
@given(
    data=st.data(),
    n_labeled=st.integers(0, 5),
    batch_size=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
    random_state=st.integers(0, 1000),
)
def test_batch_set_invariant_to_pool_permutation(name, data, n_labeled, batch_size, seed, random_state):
    outputs, rng = data.draw(pools(name))
    outputs = with_labeled(outputs, rng, n_labeled)
    perm = np.random.default_rng(seed).permutation(pool_size(outputs))
    k = min(batch_size, pool_size(outputs))
    original = make_strategy(name, batch_size=batch_size, random_state=random_state).query(outputs)
    shuffled = make_strategy(name, batch_size=batch_size, random_state=random_state).query(
        permuted(outputs, perm)
    )
    assert set(perm[top(shuffled, k)]) == set(top(original, k))


@pytest.mark.parametrize("name", BATCH_AWARE + ["random"])
@BATCH
@given(
    data=st.data(), n_labeled=st.integers(0, 5), batch_size=st.integers(1, 8), random_state=st.integers(0, 1000)
)
def test_selection_deterministic_under_seed(name, data, n_labeled, batch_size, random_state):
    outputs, rng = data.draw(pools(name))
    outputs = with_labeled(outputs, rng, n_labeled)
    first = make_strategy(name, batch_size=batch_size, random_state=random_state)
    again = first.query(outputs)
    np.testing.assert_array_equal(first.query(outputs), again)
    np.testing.assert_array_equal(
        make_strategy(name, batch_size=batch_size, random_state=random_state).query(outputs), again
    )


@pytest.mark.parametrize("name", BATCH_AWARE)
@BATCH
@given(
    n_distinct=st.integers(1, 4),
    copies=st.integers(1, 5),
    batch_size=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
)
def test_batch_never_repeats_a_task_even_with_duplicate_items(name, n_distinct, copies, batch_size, seed):
    rng = np.random.default_rng(seed)
    embeddings = np.repeat(rng.normal(size=(n_distinct, 3)), copies, axis=0)
    proba = np.repeat(rng.dirichlet(np.ones(3), n_distinct), copies, axis=0)
    outputs = ModelOutputs(proba=proba, embeddings=embeddings, labeled_embeddings=np.empty((0, 3)))
    scores = make_strategy(name, batch_size=batch_size, random_state=0).query(outputs)
    assert scores.shape == (len(embeddings),) and np.isfinite(scores).all()
    # The batch is lifted strictly above the rest, so its scores are distinct and come first. Cold start
    # takes one item per k-means cluster and cannot form more clusters than there are distinct items.
    k = min(batch_size, n_distinct if name == "cold_start" else len(embeddings))
    batch = np.sort(scores)[::-1][:k]
    assert len(np.unique(batch)) == len(batch)


@FAST
@given(
    n_pool=st.integers(1, 30),
    data=st.data(),
)
def test_top_batch_items_are_the_selected_batch_in_order(n_pool, data):
    selected = data.draw(st.lists(st.integers(0, n_pool - 1), unique=True, max_size=n_pool))
    base = np.array(data.draw(st.lists(st.floats(-1e6, 1e6), min_size=n_pool, max_size=n_pool)))
    scores = ranks_to_informativeness(selected, base)
    assert top(scores, len(selected)).tolist() == selected
    rest = np.setdiff1d(np.arange(n_pool), selected)
    np.testing.assert_array_equal(scores[rest], base[rest])


def test_repeated_selection_is_rejected():
    with pytest.raises(ValueError, match="repeat"):
        ranks_to_informativeness([1, 1], np.zeros(3))


@FAST
@given(n_classes=st.integers(2, 7), n_pool=st.integers(1, 30), seed=st.integers(0, 2**32 - 1))
def test_uniform_is_most_and_one_hot_least_uncertain(n_classes, n_pool, seed):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(n_classes) * rng.uniform(0.1, 3), n_pool)
    uniform = np.full((1, n_classes), 1.0 / n_classes)
    one_hot = np.eye(n_classes)[[rng.integers(n_classes)]]
    for measure, at_uniform, at_one_hot in [
        (least_confidence, 1 - 1 / n_classes, 0.0),
        (margin, 0.0, -1.0),
        (entropy, np.log(n_classes), 0.0),
    ]:
        scores = measure(proba)
        assert measure(uniform)[0] == pytest.approx(at_uniform, abs=1e-12)
        assert measure(one_hot)[0] == pytest.approx(at_one_hot, abs=1e-12)
        assert np.all(scores <= at_uniform + 1e-12) and np.all(scores >= at_one_hot - 1e-12)


@FAST
@given(n_members=st.integers(1, 8), n_classes=st.integers(2, 7), seed=st.integers(0, 2**32 - 1))
def test_bald_is_zero_for_identical_members_and_never_negative(n_members, n_classes, seed):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(n_classes), 20)
    identical = np.broadcast_to(proba, (n_members, *proba.shape))
    np.testing.assert_allclose(mutual_information(identical), 0.0, atol=1e-12)
    disagreeing = rng.dirichlet(np.ones(n_classes), (n_members, 20))
    assert np.all(mutual_information(disagreeing) >= 0.0)
    # Confident members that disagree completely carry the most information: log of the classes they split.
    split = np.eye(n_classes)[np.arange(n_members) % n_classes][:, None, :]
    assert mutual_information(split)[0] == pytest.approx(entropy(split.mean(axis=0))[0], abs=1e-12)


@pytest.mark.parametrize("name", POINTWISE + ["random"])
@FAST
@given(data=st.data(), n_labeled=st.integers(2, 6), random_state=st.integers(0, 1000))
def test_every_strategy_gives_one_finite_float64_score_per_task_of_its_type(name, data, n_labeled, random_state):
    outputs, rng = data.draw(pools(name, min_pool=0))
    scores = make_strategy(name, random_state=random_state).query(with_labeled(outputs, rng, n_labeled))
    assert scores.shape == (pool_size(outputs),) and scores.dtype == np.float64 and np.isfinite(scores).all()


@FAST
@given(n_labels=st.integers(1, 7), n_pool=st.integers(1, 30), n_labeled=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_multi_label_scores_are_bounded_symmetric_and_ignore_label_order(n_labels, n_pool, n_labeled, seed):
    rng = np.random.default_rng(seed)
    label_proba = rng.random((n_pool, n_labels))
    targets = rng.integers(0, 2, (n_labeled, n_labels))
    entropies = binary_entropy(label_proba)
    assert np.all(entropies >= 0) and np.all(entropies <= np.log(2) + 1e-12)
    np.testing.assert_allclose(binary_entropy(1 - label_proba), entropies, atol=1e-12)
    assert mean_binary_entropy(np.full((1, n_labels), 0.5))[0] == pytest.approx(np.log(2), abs=1e-12)
    assert mean_binary_entropy(rng.integers(0, 2, (1, n_labels)).astype(float))[0] == 0.0
    order = rng.permutation(n_labels)
    np.testing.assert_allclose(mean_binary_entropy(label_proba[:, order]), mean_binary_entropy(label_proba), atol=1e-12)
    lci = label_cardinality_inconsistency(label_proba, targets)
    np.testing.assert_array_equal(label_cardinality_inconsistency(label_proba[:, order], targets[:, order]), lci)
    # A distance from an average of counts in [0, n_labels] to a count in [0, n_labels].
    assert np.all(lci >= 0) and np.all(lci <= n_labels)


@FAST
@given(data=st.data())
def test_ner_min_entropy_bounds_mean_entropy_bounds_max_entropy(data):
    """Per token, ``-log max p <= H(p) <= log n_tags``, so mnlp <= mean_token_entropy <= max_token_entropy."""
    outputs, _ = data.draw(pools("mnlp"))
    scores = [
        make_strategy(name).query(outputs) for name in ("mnlp", "mean_token_entropy", "max_token_entropy")
    ]
    assert np.all(scores[0] >= 0)
    assert np.all(scores[0] <= scores[1] + 1e-12) and np.all(scores[1] <= scores[2] + 1e-12)
    assert np.all(scores[2] <= np.log(outputs.token_proba.shape[-1]) + 1e-12)
