"""Entity-level precision, recall and F1 (CoNLL style: an entity counts only with its exact boundaries and type),
computed by seqeval (Nakayama 2018; it scores entities as the CoNLL shared tasks' conlleval script does) from BIO tags.

``entity_scores`` takes character spans: each text is cut at every boundary of a true or predicted span,
and the pieces are tagged BIO from each side, so seqeval's entities are exactly the spans, whatever
tokenizer produced them.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from itertools import pairwise

from backend.core.spans import Span


def entity_scores_from_tags(
    true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]], labels: Sequence[str] = ()
) -> dict:
    """Micro precision / recall / F1 and the same per entity type, from BIO tag strings (seqeval's default
    mode: an ``I-`` that continues no entity of its type starts one). ``support`` is the number of true
    entities, ``predicted`` the number of predicted ones; a type in ``labels`` that occurs on neither side
    gets zeros. A ratio with a zero denominator is 0."""
    from seqeval.metrics.sequence_labeling import (
        get_entities,
        precision_recall_fscore_support,
    )

    true_tags, pred_tags = [list(s) for s in true_tags], [list(s) for s in pred_tags]
    if len(true_tags) != len(pred_tags) or any(len(t) != len(p) for t, p in zip(true_tags, pred_tags)):
        raise ValueError("true and predicted tag sequences must have the same lengths")
    n_true = len(get_entities(true_tags)) if true_tags else 0
    n_pred = len(get_entities(pred_tags)) if pred_tags else 0
    if n_true == 0 and n_pred == 0:
        micro = (0.0, 0.0, 0.0)
        types: list[str] = []
        per = ([], [], [], [])
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p, r, f, _ = precision_recall_fscore_support(true_tags, pred_tags, average="micro", zero_division=0)
            micro = (float(p), float(r), float(f))
            per = precision_recall_fscore_support(true_tags, pred_tags, average=None, zero_division=0)
        types = sorted({e[0] for e in get_entities(true_tags)} | {e[0] for e in get_entities(pred_tags)})
    predicted_per_type = {t: 0 for t in types}
    for entity in get_entities(pred_tags) if pred_tags else []:
        predicted_per_type[entity[0]] += 1
    per_type = {
        label: {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 0} for label in labels
    }
    for i, label in enumerate(types):
        per_type[label] = {
            "precision": float(per[0][i]), "recall": float(per[1][i]), "f1": float(per[2][i]),
            "support": int(per[3][i]), "predicted": predicted_per_type[label],
        }
    return {
        "precision": micro[0], "recall": micro[1], "f1": micro[2], "support": n_true, "predicted": n_pred,
        "per_type": per_type,
    }


def _non_overlapping(spans: Sequence[Span]) -> list[Span]:
    """The spans in (start, longest first) order, each one overlapping an earlier one left out."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if span.end > span.start and (not kept or span.start >= kept[-1].end):
            kept.append(span)
    return kept


def spans_to_bio(true: Sequence[Span], pred: Sequence[Span]) -> tuple[list[str], list[str]]:
    """Both span lists as BIO tags over one segmentation of their text: the pieces between consecutive span
    boundaries of either list. Overlapping spans within one list keep the first (start, longest first)."""
    true, pred = _non_overlapping(true), _non_overlapping(pred)
    cuts = sorted({b for s in (*true, *pred) for b in (s.start, s.end)})
    pieces = list(pairwise(cuts))

    def tags(spans: list[Span]) -> list[str]:
        out = ["O"] * len(pieces)
        for span in spans:
            inside = [k for k, (a, b) in enumerate(pieces) if a >= span.start and b <= span.end]
            for n, k in enumerate(inside):
                out[k] = f"{'B' if n == 0 else 'I'}-{span.label}"
        return out

    if not pieces:
        return ["O"], ["O"]
    return tags(true), tags(pred)


def entity_scores(true_spans: Sequence[Sequence[Span]], pred_spans: Sequence[Sequence[Span]], labels: Sequence[str]) -> dict:
    """Entity-level micro precision / recall / F1 over all texts, plus per type (``entity_scores_from_tags``):
    a predicted span counts as correct only when a true span has the same start, end and label."""
    if len(true_spans) != len(pred_spans):
        raise ValueError(f"{len(true_spans)} true span lists but {len(pred_spans)} predicted ones")
    pairs = [spans_to_bio(t, p) for t, p in zip(true_spans, pred_spans)]
    return entity_scores_from_tags([t for t, _ in pairs], [p for _, p in pairs], labels)
