"""Model versions on disk, published atomically.

Layout: ``MODEL_DIR/project-<id>/<version>/`` holds ``meta.json``, the model files and ``pool.npz`` (the
pool ranking this version wrote to Label Studio), and ``MODEL_DIR/project-<id>/ledger.json`` records which
versions went to Label Studio (``backend.store.ledger``). A version is written under a hidden staging folder and
renamed into place once complete, so a reader never sees a half-written version; a staging folder left by
a killed worker is removed by the next job that holds the project's lock. Versions are immutable after
that, which lets readers cache them by path.

Version names carry the project: ``al-p<project>-v<sequence>-<UTC time>``. The name tells a person whose
version it is; the ledger is what proves it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from backend.store.history import VersionHistory
from backend.store.ledger import LedgerFile
from backend.models.multilabel_head import label_sets
from backend.store.setup_record import SetupFile

_VERSION_RE = re.compile(r"^al-p(\d+)-v(\d{4,})-(\d{8}T\d{6}Z)$")
_STAGING_PREFIX = ".staging-"


@dataclass(frozen=True)
class ModelVersion:
    project_id: int
    name: str
    path: Path

    @property
    def sequence(self) -> int:
        return int(_VERSION_RE.match(self.name).group(2))

    def meta(self) -> dict[str, Any]:
        return json.loads((self.path / "meta.json").read_text())

    def pool(self) -> "PoolRanking":
        return PoolRanking.load(self.path)


@dataclass(frozen=True)
class PoolRanking:
    """What a version wrote to Label Studio, one row per unlabeled task.

    ``predicted`` is the suggested class, -1 (and ``confidence`` 0) where the version ranked without a
    trained classifier (cold start). Multi-label versions suggest a set: ``chosen`` (n, n_labels) marks it,
    ``confidence`` is its probability (``backend.models.multilabel_head.label_sets``) and ``predicted`` is -1;
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


class ModelStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._files: dict[tuple[type, int], Any] = {}

    def _project_file(self, kind: type, project_id: int):
        """One reader per project file, so its parse cache lives as long as the store."""
        key = (kind, int(project_id))
        if key not in self._files:
            self._files[key] = kind(self.project_dir(project_id))
        return self._files[key]

    def ledger(self, project_id: int) -> LedgerFile:
        return self._project_file(LedgerFile, project_id)

    def setup_record(self, project_id: int) -> SetupFile:
        return self._project_file(SetupFile, project_id)

    def history(self, project_id: int) -> VersionHistory:
        return self._project_file(VersionHistory, project_id)

    def active(self, project_id: int) -> ModelVersion | None:
        """The version Label Studio was switched to (``Ledger.active``), if it is still on disk."""
        name = self.ledger(project_id).read().active
        return self.get(project_id, name) if name else None

    def project_dir(self, project_id: int) -> Path:
        return self.root / f"project-{int(project_id)}"

    def versions(self, project_id: int) -> list[ModelVersion]:
        """Complete versions, oldest first."""
        folder = self.project_dir(project_id)
        if not folder.is_dir():
            return []
        found = [
            ModelVersion(project_id, entry.name, Path(entry.path))
            for entry in os.scandir(folder)
            if entry.is_dir() and (match := _VERSION_RE.match(entry.name)) and int(match.group(1)) == int(project_id)
        ]
        return sorted(found, key=lambda version: version.sequence)

    def latest(self, project_id: int) -> ModelVersion | None:
        versions = self.versions(project_id)
        return versions[-1] if versions else None

    def get(self, project_id: int, name: str) -> ModelVersion | None:
        path = self.project_dir(project_id) / name
        match = _VERSION_RE.match(name)
        if match is None or int(match.group(1)) != int(project_id) or not path.is_dir():
            return None
        return ModelVersion(project_id, name, path)

    @contextmanager
    def publish(self, project_id: int) -> Iterator[tuple[str, Path]]:
        """Yield ``(version_name, staging_dir)``; on clean exit the folder becomes visible at once.

        The caller must hold the project's retrain lock, so sequence numbers cannot collide.
        """
        folder = self.project_dir(project_id)
        folder.mkdir(parents=True, exist_ok=True)
        latest = self.latest(project_id)
        sequence = latest.sequence + 1 if latest else 1
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        name = f"al-p{int(project_id)}-v{sequence:04d}-{stamp}"
        staging = Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{name}-", dir=folder))
        try:
            yield name, staging
            _fsync_tree(staging)
            os.rename(staging, folder / name)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def remove_stale_staging(self, project_id: int) -> list[str]:
        """Staging folders of publishes that never finished (their worker was killed).

        The caller must hold the project's retrain lock: then no publish of this project is under way.
        """
        folder = self.project_dir(project_id)
        stale = [entry for entry in folder.glob(f"{_STAGING_PREFIX}*") if entry.is_dir()] if folder.is_dir() else []
        for entry in stale:
            shutil.rmtree(entry, ignore_errors=True)
        return [entry.name for entry in stale]

    def remove_older_than(self, project_id: int, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` versions, never the active one; returns the names removed."""
        active = self.ledger(project_id).read().active
        doomed = [v for v in self.versions(project_id)[:-keep] if v.name != active]
        for version in doomed:
            shutil.rmtree(version.path, ignore_errors=True)
        return [version.name for version in doomed]


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True))


def _fsync_tree(folder: Path) -> None:
    # A crash right after the rename must not leave a published version with empty files.
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
