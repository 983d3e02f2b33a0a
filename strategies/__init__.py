"""Query strategies: turn what the model says about the pool into "which task to label next".

``make_strategy(name)`` builds one by its registry name; ``STRATEGY_NAMES`` lists them all.
``strategies_for(task_type)`` lists those that can rank a task type (``TASK_TYPES``: single-label
classification, multi-label classification, NER), and ``DEFAULT_STRATEGIES`` names each type's default.
"""

from __future__ import annotations

from .bald import BALD
from .base import MULTI_LABEL, NER, SINGLE_LABEL, TASK_TYPES, MissingOutputsError, ModelOutputs, QueryStrategy
from .class_balanced import ClassBalancedMargin
from .cluster_margin import ClusterMargin
from .cold_start import ColdStart
from .committee import AverageKLDivergence, VoteEntropy
from .coreset import CoreSet
from .difficulty import PredictedLoss
from .information_density import InformationDensity
from .multi_label import LabelCardinalityInconsistency, MeanBinaryEntropy
from .random_sampling import RandomSampling
from .sequence import MNLP, MaxTokenEntropy, MeanTokenEntropy
from .uncertainty import Entropy, LeastConfidence, Margin

STRATEGIES: dict[str, type[QueryStrategy]] = {
    strategy.name: strategy
    for strategy in (
        LeastConfidence,
        Margin,
        Entropy,
        RandomSampling,
        PredictedLoss,
        VoteEntropy,
        AverageKLDivergence,
        BALD,
        CoreSet,
        ClusterMargin,
        ColdStart,
        InformationDensity,
        ClassBalancedMargin,
        MeanBinaryEntropy,
        LabelCardinalityInconsistency,
        MaxTokenEntropy,
        MeanTokenEntropy,
        MNLP,
    )
}
STRATEGY_NAMES: tuple[str, ...] = tuple(sorted(STRATEGIES))

#: The strategy a project of each task type gets unless its owner picks another.
DEFAULT_STRATEGIES: dict[str, str] = {SINGLE_LABEL: "margin", MULTI_LABEL: "mean_binary_entropy", NER: "mnlp"}


class UnknownStrategyError(ValueError):
    """The requested strategy name is not in the registry."""


def make_strategy(name: str, *, batch_size: int = 10, random_state: int | None = None) -> QueryStrategy:
    """Build the strategy registered as ``name`` with its default parameters."""
    try:
        strategy = STRATEGIES[name]
    except KeyError:
        raise UnknownStrategyError(
            f"unknown query strategy {name!r}; valid names are: {', '.join(STRATEGY_NAMES)}"
        ) from None
    return strategy(batch_size=batch_size, random_state=random_state)


def strategies_for(task_type: str) -> tuple[str, ...]:
    """Registry names, sorted, of the strategies that can rank pools of ``task_type``."""
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task type {task_type!r}; valid task types are: {', '.join(TASK_TYPES)}")
    return tuple(name for name in STRATEGY_NAMES if task_type in STRATEGIES[name].task_types)


__all__ = [
    "DEFAULT_STRATEGIES",
    "MULTI_LABEL",
    "NER",
    "SINGLE_LABEL",
    "STRATEGIES",
    "STRATEGY_NAMES",
    "TASK_TYPES",
    "MissingOutputsError",
    "ModelOutputs",
    "QueryStrategy",
    "UnknownStrategyError",
    "make_strategy",
    "strategies_for",
]
