"""Stopping signal: tell the project owner when more labels are unlikely to improve the model."""

from __future__ import annotations

from .criterion import Recommendation, StoppingCriterion
from .statistics import RoundStatistics, agreement_kappa, pool_statistics, round_statistics

__all__ = ["Recommendation", "RoundStatistics", "StoppingCriterion", "agreement_kappa", "pool_statistics", "round_statistics"]
