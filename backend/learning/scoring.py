"""From a trained classifier and a strategy to Label Studio's lowest-first scores.

Shared by the worker and the offline simulation, so both rank a pool with the same code.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from backend.core.exceptions import StrategyUnavailable
from backend.core.progress import Progress
from backend.learning.evaluation import out_of_fold_losses
from backend.models.base import TextClassifier
from strategies import ModelOutputs, QueryStrategy

#: Outputs that need a trained classifier; the rest come from the encoder alone.
_NEEDS_TRAINED_MODEL = frozenset(
    {"proba", "label_proba", "token_proba", "token_mask", "committee_proba", "labeled_losses", "labeled_targets"}
)
#: The classifier's probabilities, in whichever fields its task type fills (``TextClassifier.probability_outputs``).
_PROBABILITIES = frozenset({"proba", "label_proba", "token_proba", "token_mask"})



def collect_outputs(
    classifier: TextClassifier,
    strategy: QueryStrategy,
    pool_texts: Sequence[str],
    labeled_texts: Sequence[str],
    labeled_y: np.ndarray,
    *,
    committee_size: int,
    seed: int,
    proba: np.ndarray | None = None,
    progress: Progress | None = None,
) -> ModelOutputs:
    """Compute the ``ModelOutputs`` fields the strategy requires or can use (``proba``, the classifier's
    probabilities of the pool, may be passed in)."""
    values = pool_outputs(classifier, pool_fields(strategy, proba is not None), pool_texts, committee_size, progress)
    if proba is not None:
        values.update(classifier.probability_outputs(proba))
    return ModelOutputs(**values, **labeled_outputs(classifier, strategy, labeled_texts, labeled_y, seed, progress))


def pool_fields(strategy: QueryStrategy, trained: bool) -> frozenset[str]:
    """The per-pool-task outputs to compute: row by row, so any split of the pool gives the same rows.
    ``"proba"`` stands for the classifier's probabilities, whichever field they fill."""
    needs = strategy.requires | strategy.optional
    # Probabilities are passed on even when not required: a strategy like ``random`` works from whatever
    # output is present.
    fields = {name for name in ("embeddings", "committee_proba") if name in needs}
    if trained or _PROBABILITIES & needs:
        fields.add("proba")
    return frozenset(fields)


def pool_outputs(
    classifier: TextClassifier, fields: frozenset[str], texts: Sequence[str], committee_size: int, progress: Progress | None = None
) -> dict[str, np.ndarray]:
    values: dict[str, np.ndarray] = {}
    if "proba" in fields:
        values.update(classifier.probability_outputs(classifier.predict_proba(texts, progress)))
    if "embeddings" in fields:
        values["embeddings"] = classifier.embed(texts, progress)
    if "committee_proba" in fields:
        values["committee_proba"] = classifier.committee_proba(texts, committee_size, progress)
    return values


def labeled_outputs(
    classifier: TextClassifier, strategy: QueryStrategy, texts: Sequence[str], y: np.ndarray, seed: int, progress: Progress | None = None
) -> dict[str, np.ndarray]:
    """Outputs over the labeled tasks; optional ones only when there is something to compute them from."""
    needs = strategy.requires | strategy.optional
    values: dict[str, np.ndarray] = {"labeled_targets": y} if "labeled_targets" in needs else {}
    if not ({"labeled_embeddings", "labeled_losses"} & strategy.requires or ("labeled_embeddings" in needs and len(texts))):
        return values
    values["labeled_embeddings"] = classifier.embed(texts, progress)
    if "labeled_losses" in needs:
        try:
            values["labeled_losses"] = out_of_fold_losses(values["labeled_embeddings"], y, seed)
        except ValueError as exc:
            raise StrategyUnavailable(f"strategy {strategy.name!r} cannot run yet: {exc}") from None
    return values


def needs_trained_model(strategy: QueryStrategy) -> bool:
    return bool(strategy.requires & _NEEDS_TRAINED_MODEL)


def ls_scores(informativeness: np.ndarray) -> np.ndarray:
    """Rank-based score in [0, 1): the most informative item gets 0, so Label Studio serves it first.

    Ranks rather than raw values keep every strategy on one scale, and ties keep pool order
    (a stable sort), so equal items are served in a deterministic order.
    """
    n = len(informativeness)
    order = np.argsort(-np.asarray(informativeness, dtype=np.float64), kind="stable")
    scores = np.empty(n, dtype=np.float64)
    scores[order] = np.arange(n) / max(n, 1)
    return scores


def score_against(reference_informativeness: np.ndarray, informativeness: np.ndarray) -> np.ndarray:
    """Scores for items outside the ranked pool, placed where they would rank in it.

    Used by ``/predict`` for tasks created after the last retrain: the score is the fraction of the ranked
    pool that is more informative, the same scale ``ls_scores`` gives the pool itself.
    """
    reference = np.sort(np.asarray(reference_informativeness, dtype=np.float64))
    n = max(len(reference), 1)
    more_informative = len(reference) - np.searchsorted(reference, informativeness, side="right")
    return more_informative / n
