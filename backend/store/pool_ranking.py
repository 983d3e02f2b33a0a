"""What a version wrote to Label Studio, one row per unlabeled task: its score, the suggestion and the
suggestion's probability, saved beside the model as ``pool.npz``. ``/predict`` serves from it, and the next
version compares its own suggestions with it (the stopping signal, the suggestion acceptance)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.core.labels import label_sets


@dataclass(frozen=True)
class PoolRanking:
    """What a version wrote to Label Studio, one row per unlabeled task.

    ``predicted`` is the suggested class, -1 (and ``confidence`` 0) where the version ranked without a
    trained classifier (cold start). Multi-label versions suggest a set: ``chosen`` (n, n_labels) marks it,
    ``confidence`` is its probability (``backend.core.labels.label_sets``) and ``predicted`` is -1;
    single-label versions keep ``chosen`` empty, (n, 0). NER versions suggest spans, kept flat: span k
    belongs to row ``span_row[k]`` (``span_start``, ``span_end``, ``span_label``, ``span_score``,
    ``span_text``); their ``confidence`` is the lowest span score of the row (1 without spans).
    """

    task_ids: np.ndarray
    scores: np.ndarray
    informativeness: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    chosen: np.ndarray
    span_row: np.ndarray
    span_start: np.ndarray
    span_end: np.ndarray
    span_label: np.ndarray
    span_score: np.ndarray
    span_text: np.ndarray

    @classmethod
    def build(
        cls, task_ids, scores, informativeness, proba: np.ndarray | None, thresholds: np.ndarray | None = None,
        spans: list[tuple] | None = None,
    ) -> "PoolRanking":
        """From the pool's probabilities: the argmax class, or with per-label ``thresholds`` (multi-label) the
        set; or, NER, each row's suggested ``spans`` (``span_tagger.SpanSuggestion`` tuples)."""
        n = len(task_ids)
        predicted, confidence, chosen = np.full(n, -1), np.zeros(n), np.zeros((n, 0), dtype=bool)
        flat = [(row, *span) for row, row_spans in enumerate(spans or []) for span in row_spans]
        columns = list(zip(*flat)) if flat else [[]] * 6
        if spans is not None:
            confidence = np.array([min((span[3] for span in row), default=1.0) for row in spans], dtype=np.float64)
        elif proba is not None and thresholds is not None:
            chosen, confidence = label_sets(proba, thresholds)
        elif proba is not None:
            predicted, confidence = proba.argmax(1), proba.max(1)
        return cls(
            np.asarray(task_ids, dtype=np.int64), np.asarray(scores, dtype=np.float64),
            np.asarray(informativeness, dtype=np.float64), predicted, confidence, chosen,
            np.asarray(columns[0], dtype=np.int64), np.asarray(columns[1], dtype=np.int64),
            np.asarray(columns[2], dtype=np.int64), np.asarray(columns[3], dtype=np.int64),
            np.asarray(columns[4], dtype=np.float64), np.asarray(columns[5], dtype=str),
        )

    @property
    def multi_label(self) -> bool:
        return self.chosen.shape[1] > 0

    @property
    def spans(self) -> bool:
        """An NER version that suggested at least one span."""
        return len(self.span_row) > 0

    def save(self, folder: Path) -> None:
        np.savez(folder / "pool.npz", **self.__dict__)

    @classmethod
    def load(cls, folder: Path) -> "PoolRanking":
        with np.load(folder / "pool.npz") as data:
            arrays = {key: data[key] for key in data.files}
        # Versions saved before multi-label and NER support were all single-label.
        arrays.setdefault("chosen", np.zeros((len(arrays["task_ids"]), 0), dtype=bool))
        for name, dtype in _SPAN_COLUMNS.items():
            arrays.setdefault(name, np.zeros(0, dtype=dtype))
        return cls(**arrays)

    def suggestions(self) -> list[int | tuple]:
        """Per task: the suggested class (-1: none); multi-label, the tuple of suggested labels; NER, the tuple
        of ``(start, end, label index, score, text)`` spans."""
        if self.spans:
            rows: list[list[tuple]] = [[] for _ in self.task_ids]
            for row, *span in zip(self.span_row.tolist(), self.span_start.tolist(), self.span_end.tolist(),
                                  self.span_label.tolist(), self.span_score.tolist(), self.span_text.tolist()):
                rows[row].append(tuple(span))
            return [tuple(row) for row in rows]
        if self.multi_label:
            return [tuple(np.flatnonzero(row).tolist()) for row in self.chosen]
        return self.predicted.tolist()

    def rows(self) -> dict[int, tuple[float, int | tuple, float]]:
        """task id -> (score, suggestion, its probability)."""
        return {
            int(task): (float(score), suggestion, float(p))
            for task, score, suggestion, p in zip(self.task_ids, self.scores, self.suggestions(), self.confidence)
        }


_SPAN_COLUMNS = {"span_row": np.int64, "span_start": np.int64, "span_end": np.int64, "span_label": np.int64,
                 "span_score": np.float64, "span_text": str}
