"""What changed between two model versions, summarised for the stopping criterion.

The backend calls ``round_statistics`` once per model version and keeps the history as JSON, so every
field is a plain float, int or None.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import cohen_kappa_score

from ..base import as_array
from ..uncertainty import entropy


@dataclass(frozen=True)
class RoundStatistics:
    """Pool-level statistics of one model version.

    mean_normalized_entropy: mean over the pool of entropy / log(n_classes), in [0, 1].
    kappa:                   Cohen's kappa between the previous and this version's predicted classes;
                             None for the first version.
    changed_fraction:        fraction of pool items whose predicted class changed; None for the first version.
    n_pool:                  number of pool items the statistics were computed on.
    """

    mean_normalized_entropy: float
    kappa: float | None
    changed_fraction: float | None
    n_pool: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoundStatistics:
        return cls(
            mean_normalized_entropy=float(data["mean_normalized_entropy"]),
            kappa=_optional_float(data.get("kappa")),
            changed_fraction=_optional_float(data.get("changed_fraction")),
            n_pool=int(data["n_pool"]),
        )


def round_statistics(
    proba: np.ndarray,
    previous_predictions: np.ndarray | None,
    current_predictions: np.ndarray | None = None,
) -> RoundStatistics:
    """Summarise this model version's pool ``proba`` against the previous version's predictions.

    ``previous_predictions`` are the previous version's predicted class indices on the same pool items in
    the same order (the caller aligns them), or None for the first version. ``current_predictions``
    defaults to ``argmax(proba)``; pass them when the model decides with something other than the argmax.
    """
    proba = as_array(proba, 2, "proba")
    n_pool, n_classes = proba.shape
    current = np.argmax(proba, axis=1) if current_predictions is None else np.asarray(current_predictions)
    # With one class there is nothing to be uncertain about; log(1) = 0 would otherwise divide by zero.
    normalized = entropy(proba) / np.log(n_classes) if n_classes > 1 else np.zeros(n_pool)
    return pool_statistics(normalized, previous_predictions, current)


def pool_statistics(
    normalized_uncertainty: np.ndarray, previous_predictions: np.ndarray | None, current_predictions: np.ndarray
) -> RoundStatistics:
    """``round_statistics`` for any model: its per-item uncertainty scaled to [0, 1] (for a classifier, entropy
    over log(n_classes)), and its predictions as comparable values (class indices, or for label sets and span
    lists any value that is equal exactly when the predictions are), the previous version's aligned to them."""
    uncertainty = as_array(normalized_uncertainty, 1, "normalized_uncertainty")
    current = np.asarray(current_predictions)
    n_pool = len(uncertainty)
    if current.shape != (n_pool,):
        raise ValueError(f"current_predictions must have shape ({n_pool},), got {current.shape}")
    mean_normalized_entropy = float(uncertainty.mean()) if n_pool else 0.0
    if previous_predictions is None:
        return RoundStatistics(mean_normalized_entropy, None, None, n_pool)
    previous = np.asarray(previous_predictions)
    if previous.shape != current.shape:
        raise ValueError(
            f"previous_predictions must align with the pool: shape {previous.shape}, expected {current.shape}"
        )
    changed_fraction = float(np.mean(previous != current)) if n_pool else 0.0
    return RoundStatistics(
        mean_normalized_entropy, agreement_kappa(previous, current), changed_fraction, n_pool
    )


def agreement_kappa(previous: np.ndarray, current: np.ndarray) -> float:
    """Cohen's kappa between two prediction vectors, defined as 1.0 when they are identical.

    sklearn returns NaN when both versions predict one and the same class everywhere (chance agreement
    is then 1 and kappa is 0/0); identical predictions are perfectly stable, which is what kappa is
    used to detect here.
    """
    if np.array_equal(previous, current):
        return 1.0
    return float(cohen_kappa_score(previous, current))


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
