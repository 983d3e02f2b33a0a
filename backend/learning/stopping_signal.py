"""Each version's stopping signal (``strategies.stopping``), for every task type.

Per version: the pool's mean uncertainty, scaled to [0, 1], and how many suggestions changed since the
previous version (Cohen's kappa over the tasks both ranked). The uncertainty is the entropy of the class
distribution over log(n_classes) for single-label projects, the mean binary entropy over log 2 for
multi-label ones, and the mean token entropy over log(n_tags) for NER; a suggestion is the class, the
label set, or the spans (boundaries and type), compared as a whole.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from backend.store.model_store import ModelVersion
from backend.store.pool_ranking import PoolRanking
from strategies.multi_label import mean_binary_entropy
from strategies.sequence import mean_token_entropy
from strategies.stopping import RoundStatistics, StoppingCriterion, pool_statistics
from strategies.uncertainty import entropy


def pool_uncertainty(outputs: dict[str, np.ndarray]) -> np.ndarray:
    """Each pool task's uncertainty in [0, 1], from the classifier's ``probability_outputs``."""
    if "label_proba" in outputs:
        return mean_binary_entropy(outputs["label_proba"]) / np.log(2)
    proba = outputs["token_proba"] if "token_proba" in outputs else outputs["proba"]
    n_outputs = proba.shape[-1]
    if n_outputs < 2:
        return np.zeros(len(proba))
    per_task = mean_token_entropy(proba, outputs["token_mask"]) if "token_mask" in outputs else entropy(proba)
    return per_task / np.log(n_outputs)


def suggestion_keys(ranking: PoolRanking) -> list[str]:
    """Each task's suggestion as a value equal exactly when the suggestions are (span scores left out)."""
    return [
        ";".join(f"{item[0]}-{item[1]}-{item[2]}" if isinstance(item, tuple) else str(item) for item in suggestion)
        if isinstance(suggestion, tuple) else str(suggestion)
        for suggestion in ranking.suggestions()
    ]


def stopping_signal(
    previous: ModelVersion | None, ranking: PoolRanking, uncertainty: np.ndarray | None
) -> dict[str, Any]:
    """The history of round statistics, this version's appended (when it trained), and the recommendation."""
    history = [RoundStatistics.from_dict(row) for row in (previous.meta().stopping["history"] if previous else [])]
    if uncertainty is not None:
        history.append(_round(previous, ranking, uncertainty))
    recommendation = StoppingCriterion().recommend(history)
    return {"history": [row.to_dict() for row in history], "recommendation": recommendation.to_dict()}


def _round(previous: ModelVersion | None, ranking: PoolRanking, uncertainty: np.ndarray) -> RoundStatistics:
    """Uncertainty over the whole pool; agreement over the tasks both versions ranked with a trained model."""
    current = suggestion_keys(ranking)
    whole = pool_statistics(uncertainty, None, np.array(current))
    old = previous.pool() if previous is not None and previous.meta().trained else None
    if old is None:
        return whole
    old_by_task = dict(zip(old.task_ids.tolist(), suggestion_keys(old)))
    common = [i for i, task in enumerate(ranking.task_ids.tolist()) if task in old_by_task]
    if not common:
        return whole
    agreement = pool_statistics(
        uncertainty[common], np.array([old_by_task[ranking.task_ids[i]] for i in common]), np.array([current[i] for i in common])
    )
    return RoundStatistics.from_dict(
        {**agreement.to_dict(), "mean_normalized_entropy": whole.mean_normalized_entropy, "n_pool": whole.n_pool}
    )


