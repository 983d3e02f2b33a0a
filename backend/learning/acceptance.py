"""How often annotators took a version's suggestions, and how good the suggestions were on those labels.

A version's suggestion acceptance is only known once the next version reads the labels given while it was
live; those labels are fresh test points for it (prequential evaluation, Dawid 1984), so the same pass scores
its suggestions as predictions on data it never saw. ``backend.store.history`` keeps the result per version.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from backend.core.labels import SpanLabelingSpec, TextClassificationSpec
from backend.core.spans import Span
from backend.learning.entity_metrics import entity_scores
from backend.learning.evaluation import classification_metrics, entity_evaluation
from backend.store.pool_ranking import PoolRanking


def suggestion_acceptance(
    ranking: PoolRanking, labeled: Iterable[tuple[int, str]], spec: TextClassificationSpec
) -> dict[str, Any] | None:
    """How often annotators took a version's suggestion: over tasks it suggested labels for that are labeled now.

    ``ranking`` is what the version wrote; ``labeled`` pairs task ids with their label now. A multi-label
    suggestion is taken when the whole set is. None when the version made no suggestions (a cold-start ranking).
    """
    if ranking.multi_label:
        suggested = dict(zip(ranking.task_ids.tolist(), ranking.chosen.astype(np.int64)))
    else:
        suggested = {task: label for task, label in zip(ranking.task_ids.tolist(), ranking.predicted.tolist()) if label >= 0}
    if not suggested:
        return None
    answered = [(task, label) for task, label in labeled if task in suggested]
    if not answered:
        return {"n": 0, "accepted": 0, "rate": None, "prequential": None}
    truth = spec.targets([label for _, label in answered])
    guess = np.array([suggested[task] for task, _ in answered])
    accepted = int((truth == guess).reshape(len(answered), -1).all(1).sum())
    # Prequential (Dawid 1984): each of these labels arrived after the version went live, so its suggestions
    # are predictions on data it never saw; macro P/R/F1 over them, next to the acceptance rate.
    return {"n": len(answered), "accepted": accepted, "rate": accepted / len(answered),
            "prequential": classification_metrics(truth, guess)}


def span_acceptance(ranking: PoolRanking, labeled: Iterable, spec: SpanLabelingSpec) -> dict[str, Any] | None:
    """``suggestion_acceptance`` for NER versions: a suggestion is taken when the annotator's spans are exactly
    the suggested ones; the prequential metrics are entity-level (``backend.learning.entity_metrics``). ``labeled``
    holds tasks with ``id``, ``label`` and ``text``."""
    if not ranking.spans:
        return None
    suggested = dict(zip(ranking.task_ids.tolist(), ranking.suggestions()))
    answered = [task for task in labeled if task.id in suggested]
    if not answered:
        return {"n": 0, "accepted": 0, "rate": None, "prequential": None}
    truth = [spec.spans_of(task.label, task.text)[0] for task in answered]
    guess = [[Span(start, end, spec.classes[label]) for start, end, label, _, _ in suggested[task.id]] for task in answered]
    accepted = sum({(s.start, s.end, s.label) for s in t} == {(s.start, s.end, s.label) for s in g} for t, g in zip(truth, guess))
    prequential = entity_evaluation(0, len(answered), entity_scores(truth, guess, spec.classes), "entity-level").to_dict()
    return {"n": len(answered), "accepted": int(accepted), "rate": accepted / len(answered), "prequential": prequential}
