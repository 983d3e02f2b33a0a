"""NER (token tagging) strategies: hand-computed values, padding that never counts, empty texts that score 0."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import NER, ModelOutputs, make_strategy, strategies_for
from strategies.sequence import (
    max_token_entropy,
    mean_token_entropy,
    mnlp,
    token_entropies,
)

MEASURES = {"max_token_entropy": max_token_entropy, "mean_token_entropy": mean_token_entropy, "mnlp": mnlp}
LOG2, LOG3 = math.log(2), math.log(3)


def pad(tasks, max_tokens: int | None = None, n_tags: int | None = None, fill: float = 0.0):
    """``token_proba`` / ``token_mask`` for tasks given as lists of per-token tag distributions."""
    n_tags = max(len(token) for task in tasks for token in task) if n_tags is None else n_tags
    max_tokens = max(len(task) for task in tasks) if max_tokens is None else max_tokens
    proba = np.full((len(tasks), max_tokens, n_tags), fill)
    mask = np.zeros((len(tasks), max_tokens), dtype=bool)
    for i, task in enumerate(tasks):
        if task:
            proba[i, : len(task)] = task
            mask[i, : len(task)] = True
    return proba, mask


def textbook(task: list[list[float]]) -> dict[str, float]:
    """Plain-loop float64 definitions, one task at a time."""
    if not task:
        return dict.fromkeys(MEASURES, 0.0)
    entropies = [-sum(p * math.log(p) for p in token if p > 0) for token in task]
    return {
        "max_token_entropy": max(entropies),
        "mean_token_entropy": sum(entropies) / len(task),
        "mnlp": -sum(math.log(max(token)) for token in task) / len(task),
    }


TASKS = [
    [[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]],  # one coin-flip token, one certain token
    [[1 / 3, 1 / 3, 1 / 3]],  # one uniform token
    [],  # empty text
    [[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.9, 0.05, 0.05]],
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],  # fully confident
]


def test_hand_computed_values():
    proba, mask = pad(TASKS)
    np.testing.assert_allclose(max_token_entropy(proba, mask)[:3], [LOG2, LOG3, 0.0], atol=1e-12)
    np.testing.assert_allclose(mean_token_entropy(proba, mask)[:3], [LOG2 / 2, LOG3, 0.0], atol=1e-12)
    # -(log 0.5 + log 1) / 2 and -log(1/3): the best sequence's negated mean log-probability.
    np.testing.assert_allclose(mnlp(proba, mask)[:3], [LOG2 / 2, LOG3, 0.0], atol=1e-12)
    assert [float(mnlp(proba, mask)[4]), float(max_token_entropy(proba, mask)[4])] == [0.0, 0.0]


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_strategies_match_float64_textbook(name):
    rng = np.random.default_rng(5)
    tasks = TASKS + [rng.dirichlet(np.full(3, 0.4), rng.integers(1, 9)).tolist() for _ in range(30)]
    proba, mask = pad(tasks)
    scores = make_strategy(name).query(ModelOutputs(token_proba=proba, token_mask=mask))
    assert scores.dtype == np.float64
    np.testing.assert_allclose(scores, [textbook(task)[name] for task in tasks], rtol=0, atol=1e-12)


def test_mnlp_is_the_best_sequence_log_probability_by_brute_force():
    """MNLP's ``max_y (1/T) log P(y|x)`` over every tag sequence equals the per-token argmax's."""
    rng = np.random.default_rng(2)
    for length in (1, 2, 4):
        task = rng.dirichlet(np.ones(3), length)
        best = max(
            sum(math.log(task[t, tag]) for t, tag in enumerate(tags))
            for tags in itertools.product(range(3), repeat=length)
        )
        proba, mask = pad([task.tolist()])
        assert mnlp(proba, mask)[0] == pytest.approx(-best / length, abs=1e-12)


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_length_normalised_scores_do_not_grow_with_repetition(name):
    """A text repeated twice is no more informative: all three measures are per-token averages or maxima."""
    task = TASKS[3]
    proba, mask = pad([task, task * 2, task * 5])
    scores = MEASURES[name](proba, mask)
    np.testing.assert_allclose(scores, scores[0], atol=1e-12)


def test_mnlp_and_mean_entropy_disagree_where_the_runner_up_matters():
    # Same top probability, different spread of the rest: MNLP ties them, entropy does not.
    proba, mask = pad([[[0.6, 0.4, 0.0]], [[0.6, 0.2, 0.2]]])
    assert mnlp(proba, mask)[0] == mnlp(proba, mask)[1]
    assert mean_token_entropy(proba, mask)[1] > mean_token_entropy(proba, mask)[0]


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_pool_of_only_empty_tasks_and_zero_width_padding(name):
    for proba, mask in [
        (np.zeros((3, 4, 5)), np.zeros((3, 4), dtype=bool)),
        (np.zeros((3, 0, 5)), np.zeros((3, 0), dtype=bool)),
        (np.zeros((0, 4, 5)), np.zeros((0, 4), dtype=bool)),
    ]:
        with np.errstate(all="raise"):
            scores = make_strategy(name).query(ModelOutputs(token_proba=proba, token_mask=mask))
        assert scores.shape == (len(proba),)
        np.testing.assert_array_equal(scores, 0.0)
        assert not np.signbit(scores).any()


@pytest.mark.parametrize("name", sorted(MEASURES))
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), extra=st.integers(0, 6), garbage=st.sampled_from(["nan", "normal", "huge"]))
def test_padding_never_changes_a_score(name, seed, extra, garbage):
    """Padding at any position, holding anything (NaN, negatives, 1e300), leaves every score bit-identical."""
    rng = np.random.default_rng(seed)
    n_pool, max_tokens, n_tags = rng.integers(1, 8), rng.integers(0, 7), rng.integers(1, 6)
    lengths = rng.integers(0, max_tokens + 1, n_pool)
    tasks = [rng.dirichlet(np.ones(n_tags), n).tolist() for n in lengths]
    expected = MEASURES[name](*pad(tasks, max_tokens, n_tags))
    np.testing.assert_array_equal(expected[lengths == 0], 0.0)

    # ``extra`` more columns; each task's real tokens keep their order at sorted random columns, and
    # every other position holds garbage instead of zeros.
    width = max_tokens + extra
    shape = (n_pool, width, n_tags)
    padded = {"nan": np.full(shape, np.nan), "normal": 10 * rng.normal(size=shape), "huge": np.full(shape, 1e300)}[garbage]
    mask = np.zeros((n_pool, width), dtype=bool)
    real_at = np.sort(rng.choice(width, max_tokens, replace=False))
    for i, task in enumerate(tasks):
        if task:
            padded[i, real_at[: len(task)]] = task
            mask[i, real_at[: len(task)]] = True
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(MEASURES[name](padded, mask), expected)


def test_mask_may_be_zero_one_integers():
    proba, mask = pad(TASKS)
    for measure in MEASURES.values():
        np.testing.assert_array_equal(measure(proba, mask.astype(np.int8)), measure(proba, mask))


def test_token_entropies_are_zero_on_padding():
    proba, mask = pad(TASKS, fill=0.5)
    entropies = token_entropies(proba, mask)
    assert entropies.shape == mask.shape
    np.testing.assert_array_equal(entropies[~mask], 0.0)


def test_a_real_token_without_probability_mass_stays_finite():
    proba, mask = pad([[[0.0, 0.0], [0.5, 0.5]]])
    assert np.isfinite(mnlp(proba, mask)).all() and mnlp(proba, mask)[0] > 300


def test_shape_errors_name_the_field():
    proba, mask = pad(TASKS)
    with pytest.raises(ValueError, match="token_mask must have shape"):
        mnlp(proba, mask[:, :1])
    with pytest.raises(ValueError, match="token_proba must have 3 dimensions"):
        mnlp(proba[:, 0], mask)


def test_ner_strategies_are_registered_for_ner_only():
    for name in MEASURES:
        assert name in strategies_for(NER)
        assert make_strategy(name).task_types == frozenset({NER})
