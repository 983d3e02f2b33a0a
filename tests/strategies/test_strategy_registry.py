"""Registry, uniform construction, and the error messages people will read."""

from __future__ import annotations

import numpy as np
import pytest

import strategies
from strategies import (
    DEFAULT_STRATEGIES,
    MULTI_LABEL,
    NER,
    SINGLE_LABEL,
    STRATEGIES,
    STRATEGY_NAMES,
    TASK_TYPES,
    MissingOutputsError,
    ModelOutputs,
    QueryStrategy,
    make_strategy,
    strategies_for,
)

EXPECTED_NAMES = (
    "balanced_margin",
    "bald",
    "cluster_margin",
    "cold_start",
    "coreset",
    "difficulty",
    "entropy",
    "information_density",
    "label_cardinality_inconsistency",
    "least_confidence",
    "margin",
    "max_token_entropy",
    "mean_binary_entropy",
    "mean_token_entropy",
    "mnlp",
    "qbc_kl",
    "qbc_vote_entropy",
    "random",
)


def full_outputs(n_pool: int = 30, seed: int = 0) -> ModelOutputs:
    """Every field, so every strategy of every task type can score it."""
    rng = np.random.default_rng(seed)
    token_mask = np.arange(12) < rng.integers(0, 13, n_pool)[:, None]
    return ModelOutputs(
        proba=rng.dirichlet(np.ones(4), n_pool),
        embeddings=rng.normal(size=(n_pool, 6)),
        committee_proba=rng.dirichlet(np.ones(4), (5, n_pool)),
        labeled_embeddings=rng.normal(size=(8, 6)),
        labeled_losses=rng.random(8),
        label_proba=rng.random((n_pool, 5)),
        labeled_targets=rng.integers(0, 2, (8, 5)),
        token_proba=rng.dirichlet(np.ones(9), (n_pool, 12)) * token_mask[..., None],
        token_mask=token_mask,
    )


EXPECTED_TASK_TYPES = {
    SINGLE_LABEL: (
        "balanced_margin",
        "bald",
        "cluster_margin",
        "cold_start",
        "coreset",
        "difficulty",
        "entropy",
        "information_density",
        "least_confidence",
        "margin",
        "qbc_kl",
        "qbc_vote_entropy",
        "random",
    ),
    MULTI_LABEL: ("cold_start", "coreset", "label_cardinality_inconsistency", "mean_binary_entropy", "random"),
    NER: ("cold_start", "coreset", "max_token_entropy", "mean_token_entropy", "mnlp", "random"),
}


def test_registry_names():
    assert STRATEGY_NAMES == EXPECTED_NAMES
    assert set(STRATEGIES) == set(EXPECTED_NAMES)
    for name, cls in STRATEGIES.items():
        assert issubclass(cls, QueryStrategy) and cls.name == name
        assert cls.requires <= ModelOutputs.field_names()
        assert cls.optional <= ModelOutputs.field_names()
        assert cls.task_types and cls.task_types <= set(TASK_TYPES)


def test_task_type_constants():
    assert (SINGLE_LABEL, MULTI_LABEL, NER) == ("single_label", "multi_label", "ner") == TASK_TYPES
    assert QueryStrategy.task_types == frozenset({SINGLE_LABEL})
    assert {"label_proba", "labeled_targets", "token_proba", "token_mask"} <= ModelOutputs.field_names()
    assert ModelOutputs(token_proba=np.zeros((1, 1, 1))).missing(frozenset({"token_proba", "token_mask"})) == [
        "token_mask"
    ]


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_strategies_for_lists_exactly_the_strategies_of_a_task_type(task_type):
    assert strategies_for(task_type) == EXPECTED_TASK_TYPES[task_type]
    assert all(task_type in STRATEGIES[name].task_types for name in strategies_for(task_type))


def test_embedding_only_strategies_serve_every_task_type():
    for name in ("random", "coreset", "cold_start"):
        assert STRATEGIES[name].task_types == frozenset(TASK_TYPES)


def test_strategies_for_an_unknown_type_names_the_valid_ones():
    with pytest.raises(ValueError) as info:
        strategies_for("regression")
    assert "'regression'" in str(info.value)
    assert all(task_type in str(info.value) for task_type in TASK_TYPES)


def test_every_task_type_has_a_default_that_supports_it():
    assert DEFAULT_STRATEGIES == {SINGLE_LABEL: "margin", MULTI_LABEL: "mean_binary_entropy", NER: "mnlp"}
    for task_type, name in DEFAULT_STRATEGIES.items():
        assert name in strategies_for(task_type)


def test_public_names_are_exported():
    for name in ("DEFAULT_STRATEGIES", "MULTI_LABEL", "NER", "SINGLE_LABEL", "TASK_TYPES", "strategies_for"):
        assert name in strategies.__all__ and hasattr(strategies, name)


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_every_strategy_builds_uniformly_and_scores_the_whole_pool(name):
    strategy = make_strategy(name, batch_size=4, random_state=7)
    assert (strategy.batch_size, strategy.random_state) == (4, 7)
    scores = strategy.query(full_outputs())
    assert scores.shape == (30,) and scores.dtype == np.float64 and np.isfinite(scores).all()
    assert name in repr(strategy) or type(strategy).__name__ in repr(strategy)


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_every_strategy_documents_formula_and_paper(name):
    doc = STRATEGIES[name].__doc__
    assert doc and any(str(year) in doc for year in range(1940, 2030))


def test_unknown_name_lists_every_valid_name():
    with pytest.raises(strategies.UnknownStrategyError) as info:
        make_strategy("badge")
    message = str(info.value)
    assert "'badge'" in message
    assert all(name in message for name in EXPECTED_NAMES)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("name", [n for n in EXPECTED_NAMES if n != "random"])
def test_missing_outputs_message_names_each_missing_field(name):
    strategy = make_strategy(name)
    with pytest.raises(MissingOutputsError) as info:
        strategy.query(ModelOutputs())
    for field in strategy.requires:
        assert field in str(info.value)


def test_random_needs_any_pool_sized_field():
    with pytest.raises(MissingOutputsError, match="proba or embeddings or label_proba or token_proba"):
        make_strategy("random").query(ModelOutputs())
    # Labeled-set fields say nothing about the pool's size.
    with pytest.raises(MissingOutputsError):
        make_strategy("random").query(ModelOutputs(labeled_targets=np.zeros((3, 2)), labeled_embeddings=np.zeros((3, 2))))
    expected = make_strategy("random", random_state=1).query(ModelOutputs(embeddings=np.zeros((5, 3))))
    assert expected.shape == (5,)
    for only in (
        ModelOutputs(proba=np.full((5, 2), 0.5)),
        ModelOutputs(label_proba=np.full((5, 3), 0.5)),
        ModelOutputs(token_proba=np.zeros((5, 4, 3))),
        ModelOutputs(token_mask=np.zeros((5, 4), dtype=bool)),
    ):
        np.testing.assert_array_equal(make_strategy("random", random_state=1).query(only), expected)


@pytest.mark.parametrize("n_labeled", [0, 1])
def test_difficulty_needs_two_labeled_items(n_labeled):
    outputs = ModelOutputs(
        embeddings=np.zeros((5, 3)),
        labeled_embeddings=np.zeros((n_labeled, 3)),
        labeled_losses=np.zeros(n_labeled),
    )
    with pytest.raises(ValueError, match=f"at least 2 labeled.*got {n_labeled}"):
        make_strategy("difficulty").query(outputs)


def test_difficulty_predicts_high_loss_near_hard_labeled_items():
    labeled = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [10.1, 10.0]])
    losses = np.array([0.05, 0.1, 2.0, 2.5])
    pool = np.array([[0.05, 0.05], [10.05, 9.95], [5.0, 5.0]])
    strategy = STRATEGIES["difficulty"](n_neighbors=2)
    scores = strategy.query(ModelOutputs(embeddings=pool, labeled_embeddings=labeled, labeled_losses=losses))
    assert scores[1] > scores[2] > scores[0]
    assert losses.min() <= scores.min() and scores.max() <= losses.max()


def test_difficulty_rejects_misaligned_losses():
    outputs = ModelOutputs(
        embeddings=np.zeros((5, 3)), labeled_embeddings=np.zeros((3, 3)), labeled_losses=np.zeros(2)
    )
    with pytest.raises(ValueError, match="3 rows but labeled_losses has 2"):
        make_strategy("difficulty").query(outputs)


def test_no_forbidden_imports_in_strategies():
    """Strategies stay pure numpy/scikit-learn so they run without the model stack."""
    from pathlib import Path

    forbidden = ("torch", "transformers", "label_studio_sdk", "flask", "rq")
    for path in Path(strategies.__file__).parent.rglob("*.py"):
        for line in path.read_text().splitlines():
            words = line.split()
            if words[:1] in (["import"], ["from"]):
                module = words[1].split(".")[0]
                assert module not in forbidden, f"{path} imports {module}"
