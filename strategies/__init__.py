"""Query strategies: turn what the model says about the pool into "which task to label next".

``make_strategy(name)`` builds one by its registry name; ``STRATEGY_NAMES`` lists them all.
"""

from __future__ import annotations

from .bald import BALD
from .base import MissingOutputsError, ModelOutputs, QueryStrategy
from .class_balanced import ClassBalancedMargin
from .cluster_margin import ClusterMargin
from .cold_start import ColdStart
from .committee import AverageKLDivergence, VoteEntropy
from .coreset import CoreSet
from .difficulty import PredictedLoss
from .information_density import InformationDensity
from .random_sampling import RandomSampling
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
    )
}
STRATEGY_NAMES: tuple[str, ...] = tuple(sorted(STRATEGIES))


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


__all__ = [
    "STRATEGIES",
    "STRATEGY_NAMES",
    "MissingOutputsError",
    "ModelOutputs",
    "QueryStrategy",
    "UnknownStrategyError",
    "make_strategy",
]
